"""Populations of runs on Dask: every (configuration, seed) pair once, resumable.

>>> import flexrnn as fr
>>> rows = fr.sweep.run(train_one, fr.sweep.grid(n=[50, 100], lr=[1e-3]), seeds=range(5),
...                     out="runs/")                  # LocalCluster, one worker per core
>>> table = fr.sweep.load("runs/")                    # DataFrame (pandas) or list of dicts

``fn(config, seed)`` is a picklable function (defined in an importable module) returning a
dict: numbers, strings, lists and dicts are its *metrics* (JSON), NumPy arrays and flexrnn
models are *kept* (``arrays.npz`` and ``model-<name>.npz``) and loaded lazily.

Layout of ``out``::

    sweep.json             the planned runs (id, config, seed) and the function's name
    log.jsonl              append-only: one line per start, end, error and failure
    runs/<id>/result.json  written last, atomically, with a checksum: the completion marker
    runs/<id>/arrays.npz, runs/<id>/model-<name>.npz      what the run kept
    runs/<id>/error-<attempt>.json                        traceback of each failed attempt
    runs/<id>/failed.json                                 all attempts failed

A run's id is a hash of its configuration and seed, so calling :func:`run` again (after the
client, a worker or the machine died) skips every run whose result verifies and runs the
rest; a result that does not verify (truncated, edited, a kept file missing or changed) is
pending. Dask reschedules the run of a worker that died; a run that raised is retried up to
``retries`` times and then reported failed, without stopping the others.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import socket
import sys
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from flexrnn._io import atomic_savez, atomic_write_json

PathLike = Union[str, Path]

__all__ = [
    "Kept",
    "SweepError",
    "format_status",
    "grid",
    "load",
    "read_log",
    "read_spec",
    "run",
    "run_id",
    "status",
]

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


class SweepError(RuntimeError):
    """Raised by ``run(..., strict=True)`` when runs failed (after the others finished)."""


# ------------------------------------------------------------------------------------------
# Configurations, seeds and ids


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types (numpy scalars -> Python, tuples -> lists)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _jsonable(value.item(), where)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{where}: expected JSON values (numbers, strings, bools, None, lists, dicts), "
        f"got {type(value).__name__}"
    )


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_config(config: Any, where: str = "config") -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise TypeError(f"{where}: expected a dict of JSON values, got {type(config).__name__}")
    return _jsonable(config, where)


def _check_seed(seed: Any, where: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{where}: expected an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{where}: expected an int >= 0, got {seed}")
    return int(seed)


def run_id(config: Mapping[str, Any], seed: int) -> str:
    """The stable id of a run: 16 hex digits of the SHA-256 of the canonical JSON of
    ``{"config": config, "seed": seed}`` (sorted keys; ``1`` and ``1.0`` differ)."""
    payload = {"config": _check_config(config), "seed": _check_seed(seed)}
    return _sha256(_canonical(payload))[:16]


def grid(spec: Mapping[str, Any] | None = None, /, **values: Any) -> list[dict[str, Any]]:
    """All combinations of the given values, as a list of configurations.

    ``grid(n=[50, 100], lr=[1e-3, 1e-2])`` -> 4 dicts; a dict may be given instead of
    keywords (for keys that are not identifiers). Each value is a list, tuple or range;
    the last key varies fastest.
    """
    items = dict(spec or {})
    overlap = set(items) & set(values)
    if overlap:
        raise ValueError(f"grid: {sorted(overlap)} given twice")
    items.update(values)
    if not items:
        raise ValueError("grid: give at least one key with a list of values")
    lists = []
    for key, options in items.items():
        if not isinstance(key, str):
            raise TypeError(f"grid: keys must be strings, got {key!r}")
        if isinstance(options, (str, bytes, Mapping)) or not isinstance(
            options, (list, tuple, range, np.ndarray)
        ):
            raise TypeError(
                f"grid: {key} must be a list of values (e.g. {key}=[...]), "
                f"got {type(options).__name__}"
            )
        options = [_jsonable(v, f"grid: {key}") for v in options]
        if not options:
            raise ValueError(f"grid: {key} has no values")
        lists.append(options)
    return [dict(zip(items, combo)) for combo in itertools.product(*lists)]


def _plan(configs: Any, seeds: Any) -> list[dict[str, Any]]:
    """[{"id", "config", "seed"}] in the order configs x seeds (seeds fastest)."""
    if isinstance(configs, Mapping):
        configs = [configs]
    if isinstance(configs, (str, bytes)) or not isinstance(configs, Iterable):
        raise TypeError(f"configs: expected a list of dicts, got {type(configs).__name__}")
    configs = [_check_config(c, f"configs[{i}]") for i, c in enumerate(configs)]
    if isinstance(seeds, (int, np.integer)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds: expected a sequence of ints (e.g. range(5)), got {seeds!r}")
    seeds = [_check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds)]
    if not configs or not seeds:
        raise ValueError("configs, seeds: need at least one configuration and one seed")
    plan, seen = [], {}
    for i, config in enumerate(configs):
        for seed in seeds:
            rid = run_id(config, seed)
            if rid in seen:
                raise ValueError(
                    f"configs: configs[{i}] with seed {seed} repeats {seen[rid]} (same id {rid})"
                )
            seen[rid] = f"configs[{i}] with seed {seed}"
            plan.append({"id": rid, "config": config, "seed": seed})
    return plan


# ------------------------------------------------------------------------------------------
# Files: log, results, errors


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


# ------------------------------------------------------------------------------------------
# One run, on a worker


def _execute(
    fn: Callable[[dict, int], Mapping[str, Any]],
    out: str,
    rid: str,
    config: dict[str, Any],
    seed: int,
    retries: int,
    threads: int | None,
    function: str,
) -> dict[str, Any]:
    """Run ``fn(config, seed)`` until it succeeds or ``retries + 1`` attempts failed; write
    its result (kept files first, result.json last). Returns {"id", "status", "error"}."""
    out_path = Path(out)
    folder = out_path / "runs" / rid
    folder.mkdir(parents=True, exist_ok=True)
    if _read_result(folder, rid) is not None:  # a rescheduled task whose result is written
        _append_log(out_path, event="skip", id=rid)
        return {"id": rid, "status": "done", "error": None}
    if threads is not None:
        import flexrnn

        flexrnn.set_num_threads(threads)
    first = len(_errors(folder)) + 1
    error = None
    for attempt in range(first, first + retries + 1):
        _append_log(out_path, event="start", id=rid, attempt=attempt)
        t0 = time.perf_counter()
        started = time.time()
        try:
            with _blas_threads(threads):
                returned = fn(dict(config), seed)
            wall = time.perf_counter() - t0
            metrics, arrays, models = _classify(returned)
            _write_result(folder, rid, config, seed, metrics, arrays, models, wall, started,
                          attempt, function)  # fmt: skip
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            _write_error(folder, rid, attempt, error, traceback.format_exc())
            _append_log(out_path, event="error", id=rid, attempt=attempt, error=error)
            continue
        _append_log(out_path, event="end", id=rid, attempt=attempt, wall_time=wall)
        (folder / _FAILED).unlink(missing_ok=True)
        return {"id": rid, "status": "done", "error": None}
    _write_failed(out_path, rid, retries + 1, error or "")
    return {"id": rid, "status": "failed", "error": error}


class _blas_threads:
    """threadpoolctl's limit on BLAS/OpenMP pools around a run, when it is installed."""

    def __init__(self, threads: int | None) -> None:
        self.limiter = None
        if threads is not None:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                return
            self.limiter = threadpool_limits(limits=threads)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        if self.limiter is not None:
            self.limiter.restore_original_limits()


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


# ------------------------------------------------------------------------------------------
# Reading


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


# ------------------------------------------------------------------------------------------
# Running


def _function_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


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


def _worker_env(threads: int | None) -> dict[str, str]:
    """BLAS and OpenMP pools of the LocalCluster's worker processes (read at their start)."""
    if threads is None:
        return {}
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def _client(scheduler: Any, workers: int | None, threads: int | None):
    """(client, whether we own it, cluster we own or None)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise ImportError(
            "scheduler: flexrnn.sweep runs on Dask; pip install 'flexrnn[dask]' "
            "(or pass scheduler='serial' to run in this process)"
        ) from err
    if scheduler is None:
        n = workers if workers is not None else (os.cpu_count() or 1)
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
            env=_worker_env(threads), silence_logs=40,
        )  # fmt: skip
        return Client(cluster), True, cluster
    if isinstance(scheduler, Client):
        return scheduler, False, None
    if isinstance(scheduler, str):
        return Client(scheduler), True, None
    if hasattr(scheduler, "scheduler_address"):  # a Cluster: LocalCluster, SLURMCluster, ...
        return Client(scheduler), True, None
    raise TypeError(
        "scheduler: expected None (a LocalCluster), 'serial', an address "
        f"('tcp://host:8786'), a distributed.Client or a Cluster, got {type(scheduler).__name__}"
    )


def run(
    fn: Callable[[dict, int], Mapping[str, Any]],
    configs: Any,
    seeds: Iterable[int] = (0,),
    out: PathLike = "runs",
    *,
    scheduler: Any = None,
    workers: int | None = None,
    progress: bool = True,
    retries: int = 2,
    threads: int | None = 1,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """Run ``fn(config, seed)`` for every configuration and seed not finished in ``out``.

    fn : a picklable function (importable by the workers: defined in a module, not in
        ``__main__`` of another machine) returning a dict. Numbers, strings, bools, None,
        lists and dicts are metrics (result.json); NumPy arrays (ndim >= 1) and flexrnn
        models are kept (``arrays.npz``, ``model-<name>.npz``).
    configs : a list of dicts of JSON values (e.g. :func:`grid`), or one dict.
    seeds : ints >= 0, e.g. ``range(5)``; every config runs with every seed.
    out : the sweep folder (created). Calling ``run`` again with it skips finished runs; a
        larger grid or more seeds add runs. A remote cluster needs it on a shared file system.
    scheduler : None (a LocalCluster of processes on this machine, closed at the end), an
        address (``"tcp://host:8786"``), a ``distributed.Client``, a Cluster (e.g.
        dask-jobqueue's ``SLURMCluster``) or ``"serial"`` (one run after another in this
        process, no Dask).
    workers : worker processes of the LocalCluster (default: one per core).
    progress : a tqdm bar over the runs. retries : a run that raised is run again up to this
        many times (each traceback in ``error-<attempt>.json``), then reported failed.
    threads : flexrnn and BLAS threads of each run (default 1: the workers fill the cores);
        None leaves them as the worker has them.
    strict : raise :class:`SweepError` naming the failed runs (after all others finished).

    Returns the rows of these runs (as :func:`load`'s, a list of dicts) in the order
    configs x seeds (seeds fastest).
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a function fn(config, seed), got {type(fn).__name__}")
    plan = _plan(configs, seeds)
    if isinstance(retries, bool) or not isinstance(retries, (int, np.integer)) or retries < 0:
        raise ValueError(f"retries: expected an int >= 0, got {retries!r}")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1
    ):
        raise ValueError(f"threads: expected None or an int >= 1, got {threads!r}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1
    ):
        raise ValueError(f"workers: expected None or an int >= 1, got {workers!r}")
    if workers is not None and scheduler is not None:
        raise ValueError("workers: only for the LocalCluster (scheduler=None)")
    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    function = _function_name(fn)
    _update_manifest(out, function, plan)
    todo = [p for p in plan if _read_result(out / "runs" / p["id"], p["id"]) is None]
    bar = _bar(progress, len(plan), len(plan) - len(todo))
    args = (str(out),)
    try:
        if todo and scheduler == "serial":
            import flexrnn

            before = flexrnn.get_num_threads()
            try:
                for p in todo:
                    _execute(fn, *args, p["id"], p["config"], p["seed"], int(retries), threads,
                             function)  # fmt: skip
                    _tick(bar)
            finally:
                flexrnn.set_num_threads(before)  # this process's setting, as it was
        elif todo:
            _run_dask(fn, args, todo, scheduler, workers, int(retries), threads, function, bar)
    finally:
        if bar is not None:
            bar.close()
    rows = [_row(out, p) for p in plan]
    failed = [r for r in rows if r["status"] != "done"]
    if failed and progress:
        print(f"sweep: {len(failed)} of {len(rows)} runs failed (see {out}/runs/<id>/error-*)",
              file=sys.stderr)  # fmt: skip
    if failed and strict:
        first = failed[0]
        raise SweepError(
            f"{len(failed)} of {len(rows)} runs failed, e.g. {first['id']} (seed "
            f"{first['seed']}): {first['error']} (tracebacks in {out}/runs/<id>/error-*.json)"
        )
    return rows


def _bar(progress: bool, total: int, done: int):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="run", desc="sweep", dynamic_ncols=True)


def _tick(bar) -> None:
    if bar is not None:
        bar.update(1)


def _run_dask(fn, args, todo, scheduler, workers, retries, threads, function, bar) -> None:
    from distributed import as_completed

    environ = dict(os.environ)  # a LocalCluster's nannies write the workers' variables here
    client, own_client, cluster = _client(scheduler, workers, threads)
    futures = {}
    try:
        for p in todo:
            future = client.submit(
                _execute, fn, *args, p["id"], p["config"], p["seed"], retries, threads,
                function, key=f"flexrnn-run-{p['id']}-{time.time_ns()}", pure=False,
            )  # fmt: skip
            futures[future] = p
        for future in as_completed(futures):
            p = futures[future]
            try:
                future.result()
            except Exception as err:  # the worker died too often (KilledWorker), or Dask failed
                _record_lost(Path(args[0]), p["id"], err)
            _tick(bar)
    finally:
        for future in futures:
            future.cancel()
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
            _restore_environ(environ)


def _restore_environ(environ: dict[str, str]) -> None:
    """Undo what the nannies of a LocalCluster set in this process's environment
    (OMP_NUM_THREADS=1 and the like), so that later subprocesses do not inherit it."""
    for key in set(os.environ) - set(environ):
        del os.environ[key]
    for key, value in environ.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _record_lost(out: Path, rid: str, err: BaseException) -> None:
    folder = out / "runs" / rid
    folder.mkdir(parents=True, exist_ok=True)
    if _read_result(folder, rid) is not None:
        return
    error = f"{type(err).__name__}: {err}"
    attempt = len(_errors(folder)) + 1
    tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    _write_error(folder, rid, attempt, error, tb)
    _append_log(out, event="error", id=rid, attempt=attempt, error=error)
    _write_failed(out, rid, attempt, error)


# ------------------------------------------------------------------------------------------
# Specs (the `flexrnn sweep SPEC.toml` command)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError as err:
            raise ImportError(
                "spec: reading TOML needs Python >= 3.11 or the tomli package (pip install tomli)"
            ) from err
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise FileNotFoundError(f"spec: cannot read {path}: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"spec: {path} is not valid TOML: {err}") from err


def _import_function(name: Any, where: str = "function") -> Callable:
    import importlib

    if not isinstance(name, str) or name.count(":") != 1:
        raise ValueError(f"{where}: expected 'module:function', got {name!r}")
    module_name, attr = name.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{where}: cannot import module {module_name!r}: {err}") from err
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise ValueError(f"{where}: {module_name!r} has no function {attr!r}")
    return fn


def read_spec(path: PathLike) -> dict[str, Any]:
    """A sweep spec (TOML) as ``run``'s arguments: ``{"fn", "configs", "seeds", "out",
    "retries"}``.

    Keys: ``function = "module:function"`` (importable from the current folder or the
    spec's), ``seeds = [0, 1, 2]`` or ``seeds = {start = 0, stop = 10}``, a ``[grid]`` table
    of lists, optional ``[fixed]`` values added to every configuration, ``out`` (relative to
    the spec's folder; default ``"runs"``) and ``retries`` (default 2).
    """
    path = Path(path)
    spec = _read_toml(path)
    unknown = set(spec) - {"function", "seeds", "grid", "fixed", "out", "retries"}
    if unknown:
        raise ValueError(f"spec: unknown keys {sorted(unknown)} in {path}")
    if "function" not in spec:
        raise ValueError(f"function: {path} names no function ('module:function')")
    for folder in (str(path.parent.absolute()), os.getcwd()):
        if folder not in sys.path:
            sys.path.insert(0, folder)  # LocalCluster workers inherit sys.path
    fn = _import_function(spec["function"])
    if not isinstance(spec.get("grid"), dict) or not spec["grid"]:
        raise ValueError(f"grid: {path} needs a [grid] table of lists")
    configs = grid(spec["grid"])
    fixed = spec.get("fixed", {})
    if not isinstance(fixed, dict):
        raise ValueError("fixed: expected a table of values")
    overlap = set(fixed) & set(spec["grid"])
    if overlap:
        raise ValueError(f"fixed: {sorted(overlap)} are in [grid] too")
    configs = [{**fixed, **c} for c in configs]
    seeds = spec.get("seeds", [0])
    if isinstance(seeds, dict):
        if set(seeds) - {"start", "stop"} or "stop" not in seeds:
            raise ValueError("seeds: expected a list of ints or {start = a, stop = b}")
        seeds = list(range(int(seeds.get("start", 0)), int(seeds["stop"])))
    if not isinstance(seeds, list):
        raise ValueError(f"seeds: expected a list of ints, got {seeds!r}")
    out = Path(spec.get("out", "runs"))
    return {
        "fn": fn,
        "configs": configs,
        "seeds": seeds,
        "out": out if out.is_absolute() else path.parent / out,
        "retries": spec.get("retries", 2),
    }


def format_status(out: PathLike) -> str:
    """``status(out)`` as lines of text (the failed runs with their last error)."""
    counts = status(out)
    lines = [
        f"{out}: {counts['total']} runs of {counts['function']}: {counts['done']} done, "
        f"{counts['failed']} failed, {counts['pending']} pending"
    ]
    for rid in counts["failed_ids"]:
        lines.append(f"  failed {rid}: {_last_error(Path(out) / 'runs' / rid)}")
    return "\n".join(lines)
