"""A sweep folder: the plan, the append-only log, each run's result (verified on read),
errors and kept files; the table that :func:`load` makes of it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from flexrnn._io import atomic_savez, atomic_write_json
from flexrnn.sweep._ids import _canonical, _jsonable, _sha256, run_id

PathLike = Union[str, Path]

_MANIFEST = "sweep.json"
_LOG = "log.jsonl"
_RESULT = "result.json"
_FAILED = "failed.json"
_ARRAYS = "arrays.npz"
_RESULT_FORMAT = "flexrnn-sweep-result"
_MANIFEST_FORMAT = "flexrnn-sweep"
_FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_ROW_FIELDS = ("id", "status", "seed", "wall_time", "version", "attempts", "error", "kept")


def _append_log(out: Path, **event: Any) -> None:
    """One JSON line appended with a single O_APPEND write (concurrent writers interleave
    whole lines on a local file system)."""
    event.setdefault("time", time.time())
    event.setdefault("pid", os.getpid())
    event.setdefault("host", socket.gethostname())
    line = (json.dumps(_jsonable(event, "event")) + "\n").encode("utf-8")
    fd = os.open(out / _LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_log(out: PathLike) -> list[dict[str, Any]]:
    """The events of ``out/log.jsonl`` (start, end, error, failed, skip), oldest first.

    Each has ``event``, ``id``, ``time``, ``pid``, ``host`` (and ``attempt`` for starts,
    ends and errors). A torn last line (a writer killed mid-line) is skipped.
    """
    path = Path(out) / _LOG
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_result(folder: Path, rid: str | None = None) -> dict[str, Any] | None:
    """The verified result of a run folder, or None when it is missing, unreadable, not a
    result of this format, of another id, fails its checksum, or a kept file is missing or
    changed."""
    try:
        data = json.loads((folder / _RESULT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _RESULT_FORMAT:
        return None
    checksum = data.pop("checksum", None)
    try:
        if checksum != _sha256(_canonical(data)):
            return None
        if rid is not None and data.get("id") != rid:
            return None
        if data.get("id") != run_id(data["config"], data["seed"]):
            return None
        for name, info in data.get("files", {}).items():
            path = folder / name
            if not path.is_file() or path.stat().st_size != info["size"]:
                return None
            if _file_digest(path) != info["sha256"]:
                return None
    except (KeyError, TypeError, ValueError, OSError):
        return None
    return data


def _errors(folder: Path) -> list[Path]:
    found = []
    for p in folder.glob("error-*.json"):
        attempt = p.stem.split("-", 1)[1]
        if attempt.isdigit():
            found.append((int(attempt), p))
    return [p for _, p in sorted(found)]


def _last_error(folder: Path) -> str | None:
    for path in reversed(_errors(folder)):
        try:
            return str(json.loads(path.read_text(encoding="utf-8"))["error"])
        except (OSError, ValueError, KeyError):
            continue
    return None


def _run_status(folder: Path, rid: str) -> tuple[str, dict[str, Any] | None]:
    result = _read_result(folder, rid)
    if result is not None:
        return "done", result
    return ("failed" if (folder / _FAILED).is_file() else "pending"), None


def _classify(result: Any) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Split fn's returned dict into metrics (JSON), arrays and models."""
    if not isinstance(result, Mapping):
        raise TypeError(
            f"fn: must return a dict of metrics (and arrays or models to keep), got "
            f"{type(result).__name__}"
        )
    metrics, arrays, models = {}, {}, {}
    for key, value in result.items():
        if not isinstance(key, str):
            raise TypeError(f"fn: returned keys must be strings, got {key!r}")
        if isinstance(value, np.ndarray) and value.ndim > 0:
            arrays[key] = value
        elif hasattr(value, "save") and type(value).__module__.startswith("flexrnn."):
            models[key] = value
        else:
            metrics[key] = _jsonable(value, f"fn: returned {key!r}")
        if (key in arrays or key in models) and not _NAME.match(key):
            raise ValueError(f"fn: a kept name must match {_NAME.pattern}, got {key!r}")
    return metrics, arrays, models


def _write_error(folder: Path, rid: str, attempt: int, error: str, tb: str) -> None:
    atomic_write_json(
        folder / f"error-{attempt}.json",
        {"format": "flexrnn-sweep-error", "format_version": _FORMAT_VERSION, "id": rid,
         "attempt": attempt, "error": error, "traceback": tb, "time": time.time(),
         "pid": os.getpid(), "host": socket.gethostname()},
    )  # fmt: skip


def _write_failed(out: Path, rid: str, attempts: int, error: str) -> None:
    folder = out / "runs" / rid
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        folder / _FAILED,
        {"format": "flexrnn-sweep-failed", "id": rid, "attempts": attempts, "error": error},
    )
    _append_log(out, event="failed", id=rid, attempts=attempts)


def _write_result(folder, rid, config, seed, metrics, arrays, models, wall, started, attempt,
                  function) -> None:  # fmt: skip
    import flexrnn

    files, kept = {}, {}
    if arrays:
        atomic_savez(folder / _ARRAYS, arrays)
        files[_ARRAYS] = folder / _ARRAYS
        kept.update({k: "array" for k in arrays})
    for name, model in models.items():
        path = folder / f"model-{name}.npz"
        model.save(path)
        files[path.name] = path
        kept[name] = "model"
    body = {
        "format": _RESULT_FORMAT,
        "format_version": _FORMAT_VERSION,
        "id": rid,
        "config": config,
        "seed": seed,
        "status": "done",
        "metrics": metrics,
        "kept": kept,
        "files": {
            n: {"size": p.stat().st_size, "sha256": _file_digest(p)} for n, p in files.items()
        },  # fmt: skip
        "wall_time": wall,
        "started": started,
        "finished": time.time(),
        "attempt": attempt,
        "function": function,
        "version": flexrnn.__version__,
        "python": sys.version.split()[0],
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    body = _jsonable(body, "result")
    body["checksum"] = _sha256(_canonical(body))
    atomic_write_json(folder / _RESULT, body)  # last: its presence marks the run finished


class Kept(Mapping):
    """What a run kept, loaded on access: ``kept["W"]`` -> ndarray, ``kept["net"]`` -> model.

    Files are verified against the result's checksums when the run is read; a file changed
    afterwards raises an error naming it.
    """

    def __init__(self, folder: Path, kinds: dict[str, str]) -> None:
        self.folder = Path(folder)
        self.kinds = dict(kinds)

    def __getitem__(self, name: str) -> Any:
        kind = self.kinds[name]
        if kind == "model":
            import flexrnn

            return flexrnn.load(self.folder / f"model-{name}.npz")
        path = self.folder / _ARRAYS
        try:
            with np.load(path, allow_pickle=False) as data:
                return data[name]
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"kept: cannot read {name!r} from {path}: {err}") from err

    def __iter__(self):
        return iter(self.kinds)

    def __len__(self) -> int:
        return len(self.kinds)

    def __repr__(self) -> str:
        return f"Kept({', '.join(f'{k}: {v}' for k, v in self.kinds.items())})"


def _manifest(out: Path) -> dict[str, Any] | None:
    path = out / _MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"out: cannot read {path}: {err}") from err
    if not isinstance(data, dict) or data.get("format") != _MANIFEST_FORMAT:
        raise ValueError(f"out: {path} is not a flexrnn sweep manifest")
    return data


def _planned(out: Path) -> list[dict[str, Any]]:
    manifest = _manifest(out)
    if manifest is None:
        raise FileNotFoundError(f"out: {out} holds no sweep ({_MANIFEST} is missing)")
    return manifest["runs"]


def _row(out: Path, entry: dict[str, Any]) -> dict[str, Any]:
    rid = entry["id"]
    folder = out / "runs" / rid
    state, result = _run_status(folder, rid)
    row: dict[str, Any] = {"id": rid, "status": state}
    row.update(entry["config"])
    row["seed"] = entry["seed"]
    if result is not None:
        for key, value in result["metrics"].items():
            row[f"metrics.{key}" if key in row or key in _ROW_FIELDS else key] = value
    row["wall_time"] = result["wall_time"] if result else None
    row["version"] = result["version"] if result else None
    row["attempts"] = result["attempt"] if result else len(_errors(folder))
    row["error"] = None if result else _last_error(folder)
    row["kept"] = Kept(folder, result["kept"]) if result else None
    return row


def _table(rows: list[dict[str, Any]], as_frame: bool | None) -> Any:
    if as_frame is False:
        return rows
    try:
        import pandas as pd
    except ImportError as err:
        if as_frame:
            raise ImportError("as_frame: pandas is not installed (pip install pandas)") from err
        return rows
    return pd.DataFrame(rows)


def load(out: PathLike = "runs", *, as_frame: bool | None = None, status: str | None = None):
    """The table of a sweep folder: one row per planned run.

    Row: ``id``, ``status`` ("done", "failed" or "pending"), the config's keys, ``seed``,
    the metrics (a metric named like a config key or a row field is ``metrics.<name>``),
    ``wall_time`` (s), ``version`` (flexrnn's, of the run), ``attempts``, ``error`` (the
    last attempt's, when not done) and ``kept`` (a :class:`Kept` that loads arrays and
    models on access; None when not done). Only results that verify are done.

    as_frame : None (default) a pandas DataFrame when pandas is installed, else a list of
        dicts; True a DataFrame (ImportError without pandas); False a list of dicts.
    status : only rows of this status.
    """
    out = Path(out)
    if status is not None and status not in ("done", "failed", "pending"):
        raise ValueError(f"status: expected 'done', 'failed' or 'pending', got {status!r}")
    rows = [_row(out, e) for e in _planned(out)]
    if status is not None:
        rows = [r for r in rows if r["status"] == status]
    return _table(rows, as_frame)


def status(out: PathLike = "runs") -> dict[str, Any]:
    """Counts of a sweep folder: ``{"total", "done", "failed", "pending", "function",
    "failed_ids", "pending_ids"}`` (only verified results count as done)."""
    out = Path(out)
    manifest = _manifest(out)
    if manifest is None:
        raise FileNotFoundError(f"out: {out} holds no sweep ({_MANIFEST} is missing)")
    counts: dict[str, Any] = {"total": len(manifest["runs"]), "done": 0, "failed": 0,
                              "pending": 0, "function": manifest.get("function"),
                              "failed_ids": [], "pending_ids": []}  # fmt: skip
    for entry in manifest["runs"]:
        state, _ = _run_status(out / "runs" / entry["id"], entry["id"])
        counts[state] += 1
        if state != "done":
            counts[f"{state}_ids"].append(entry["id"])
    return counts


def _update_manifest(out: Path, function: str, plan: list[dict[str, Any]]) -> None:
    import flexrnn

    manifest = _manifest(out)
    if manifest is not None and manifest.get("function") != function:
        raise ValueError(
            f"out: {out} holds a sweep of {manifest.get('function')}, not {function}; "
            "use another folder"
        )
    runs = list(manifest["runs"]) if manifest else []
    known = {r["id"] for r in runs}
    new = [p for p in plan if p["id"] not in known]
    if manifest is not None and not new:
        return
    atomic_write_json(
        out / _MANIFEST,
        {"format": _MANIFEST_FORMAT, "format_version": _FORMAT_VERSION, "function": function,
         "version": flexrnn.__version__, "runs": runs + new},
    )  # fmt: skip
