"""Running a sweep: one run on a worker (:func:`_execute`), the Dask client and cluster,
and :func:`run`."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from flexrnn.sweep._ids import _plan
from flexrnn.sweep._store import (
    _FAILED,
    _append_log,
    _classify,
    _errors,
    _read_result,
    _row,
    _update_manifest,
    _write_error,
    _write_failed,
    _write_result,
)

PathLike = Union[str, Path]


class SweepError(RuntimeError):
    """Raised by ``run(..., strict=True)`` when runs failed (after the others finished)."""


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


def _function_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


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
        import dask

        n = workers if workers is not None else (os.cpu_count() or 1)
        # Worker saturation 1: a worker holds only the run it is running, none queued behind
        # it, so a run that kills its worker takes no other run down with it (which would
        # count against that run's allowed failures), and long runs spread evenly.
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
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
