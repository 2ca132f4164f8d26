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
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn, Union

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


# ------------------------------------------------------------------------------------------
# Reading: .npz files member by member, each array's header checked before its data.


class FileFormatError(ValueError):
    """A file flexrnn cannot read: truncated, not a zip, malformed metadata, arrays that do
    not fit. The message names the file and the problem."""


_MAX_META_BYTES = 1 << 20  # a file's JSON metadata: a few kB in practice
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError)


@dataclass(frozen=True)
class Declared:
    """What an ``.npy`` member's header declares, read before any of its data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int  # header and data: the member's size when its data is complete

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=object))


class _Counting:
    """A read-only file wrapper that counts the bytes read (the header's length)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.count = f, 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.count += len(data)
        return data


class NpzReader:
    """A ``.npz`` file opened for checked reading (use as a context manager).

    On opening: stale temporaries of ``path`` are removed (:func:`remove_stale_temporaries`),
    the zip directory is read, and every member's ``.npy`` header is read and checked for
    consistency (no object arrays, declared size equal to the stored size), without
    decompressing any data. ``members`` maps each key to its :class:`Declared` shape and
    dtype, so that callers can check them against the model before :meth:`read`. Every
    problem is a :class:`FileFormatError` (a ValueError) naming the file.
    """

    def __init__(self, path: PathLike, what: str = "flexrnn file") -> None:
        self.path = Path(path)
        self.what = what
        remove_stale_temporaries(self.path)
        if not self.path.exists():
            raise FileNotFoundError(f"path: no {what} at {self.path}")
        if self.path.is_dir():
            self.fail("is a folder, not a file")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _READ_ERRORS as err:
            self.fail(f"is not a .npz file (a zip archive) or is truncated ({err})")
        try:
            self.members = self._read_headers()
        except BaseException:
            self._zip.close()
            raise

    def fail(self, problem: str, cause: BaseException | None = None) -> NoReturn:
        raise FileFormatError(f"path: {self.path} ({self.what}) {problem}") from cause

    def _read_headers(self) -> dict[str, Declared]:
        members: dict[str, Declared] = {}
        for info in self._zip.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                self.fail(f"has a member {name!r} that is not an .npy array")
            key = name[: -len(".npy")]
            if key in members:
                self.fail(f"has the member {name!r} twice")
            try:
                with self._zip.open(info) as raw:
                    f = _Counting(raw)
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f"unsupported .npy format version {version}")
            except _READ_ERRORS as err:
                self.fail(f"has a damaged or unreadable array {key!r} ({err})", err)
            if dtype.hasobject:
                self.fail(f"holds an object array {key!r} (flexrnn files hold numbers only)")
            declared = Declared(tuple(int(s) for s in shape), dtype, 0)
            nbytes = f.count + declared.size * dtype.itemsize
            if nbytes != info.file_size:
                self.fail(
                    f"is truncated or corrupt: {key!r} declares shape {declared.shape} of "
                    f"{dtype} ({nbytes} bytes with its header) but holds {info.file_size} bytes"
                )
            members[key] = Declared(declared.shape, dtype, nbytes)
        return members

    def read(self, key: str) -> np.ndarray:
        """The array ``key`` (its data decompressed now; the header was checked on open)."""
        if key not in self.members:
            self.fail(f"has no array {key!r}")
        try:
            with self._zip.open(key + ".npy") as f:
                arr = np.lib.format.read_array(f, allow_pickle=False)
        except _READ_ERRORS as err:
            self.fail(f"has corrupt data in {key!r} ({err})", err)
        return arr

    def meta(self, key: str = "__meta__") -> dict[str, Any]:
        """The JSON metadata stored as a 0-d string array ``key``, as a dict."""
        declared = self.members.get(key)
        if declared is None:
            self.fail(f"is not a {self.what} (no {key} metadata)")
        if declared.dtype.kind != "U" or declared.shape != () or declared.nbytes > _MAX_META_BYTES:
            self.fail(
                f"has malformed metadata ({key}: {declared.dtype} of shape {declared.shape}, "
                "expected one JSON string)"
            )
        text = str(self.read(key))
        try:
            meta = json.loads(text)
        except ValueError as err:
            self.fail(f"has metadata that is not valid JSON ({err})", err)
        if not isinstance(meta, dict):
            self.fail(f"has metadata that is not a JSON object: {text[:80]!r}")
        return meta

    def check_format(self, meta: dict[str, Any], fmt: str, newest: int, oldest: int = 1) -> int:
        """The format version of ``meta``, checked: its ``format`` is ``fmt`` and its
        ``format_version`` an integer in ``oldest..newest`` (a file without a version is
        version ``oldest``)."""
        if meta.get("format") != fmt:
            self.fail(f"is not a {self.what} (format {meta.get('format')!r}, expected {fmt!r})")
        version = meta.get("format_version", oldest)
        if isinstance(version, bool) or not isinstance(version, int):
            self.fail(f"has a malformed format_version {version!r}")
        if version > newest:
            from flexrnn._version import __version__

            self.fail(
                f"has format version {version}, newer than this flexrnn ({__version__}) reads "
                f"({newest}); upgrade flexrnn"
            )
        if version < oldest:
            self.fail(f"has format version {version}, older than any flexrnn wrote")
        return version

    def check_dtype(self, key: str, dtype: np.dtype | tuple[str, ...]) -> None:
        """The declared dtype of ``key``: ``dtype`` (either byte order), or of one of the
        kinds in a tuple such as ("i", "u")."""
        declared = self.members[key].dtype
        if isinstance(dtype, tuple):
            if declared.kind not in dtype:
                self.fail(f"has {key!r} of dtype {declared}, expected kind {'/'.join(dtype)}")
        elif declared.newbyteorder("=") != np.dtype(dtype).newbyteorder("="):
            self.fail(f"has {key!r} of dtype {declared}, expected {np.dtype(dtype)}")

    def check_shape(self, key: str, shape: tuple) -> None:
        """The declared shape of ``key`` against ``shape`` (None entries match any size)."""
        declared = self.members[key].shape
        if len(declared) != len(shape) or any(
            s is not None and s != d for s, d in zip(shape, declared)
        ):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape)
            want += ",)" if len(shape) == 1 else ")"
            self.fail(f"has {key!r} of shape {declared}, which does not fit: expected {want}")

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
