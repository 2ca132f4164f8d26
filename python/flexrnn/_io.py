"""Atomic file writes: every file flexrnn writes goes through here.

A file is written to a temporary file beside its target (``<name>.<pid>.<random>.tmp``),
flushed and synced, then moved into place with ``os.replace``: a crash or a kill mid-write
leaves the previous file intact. Temporary files left behind by a writer that was killed
(its process no longer exists) are removed by the next write to, or read of, the same path
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Union

import numpy as np

PathLike = Union[str, Path]

_SUFFIX = ".tmp"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM  # exists, owned by someone else
    return True


def remove_stale_temporaries(path: PathLike) -> list[Path]:
    """Remove temporary files of earlier writes to ``path`` whose writer process is gone.

    Returns the removed paths. Temporaries of a live process (a concurrent save) are kept.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    prefix = path.name + "."
    for entry in folder.iterdir():
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(_SUFFIX)):
            continue
        middle = name[len(prefix) : -len(_SUFFIX)]
        pid_text = middle.split(".", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        try:
            entry.unlink()
            removed.append(entry)
        except FileNotFoundError:
            pass
    return removed


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a binary temporary file beside ``path``, then move it into place.

    The folder must exist (a missing folder is a ``FileNotFoundError`` naming it, raised
    before ``write`` runs). Returns ``path`` as a Path.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"path: folder {folder} does not exist (writing {path})")
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.{os.getpid()}.", suffix=_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_savez(path: PathLike, content: dict[str, np.ndarray], compressed: bool = False) -> Path:
    """``np.savez`` (or ``np.savez_compressed``) of ``content`` to ``path``, atomically."""
    save = np.savez_compressed if compressed else np.savez
    return atomic_write(path, lambda f: save(f, **content))


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path``, atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON to ``path``, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent))


def atomic_savefig(fig: Any, path: PathLike, **kwargs: Any) -> Path:
    """``fig.savefig`` to ``path``, atomically (the format from the path's suffix)."""
    path = Path(path)
    kwargs.setdefault("format", path.suffix.lstrip(".") or None)
    return atomic_write(path, lambda f: fig.savefig(f, **kwargs))
