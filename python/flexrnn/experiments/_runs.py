"""The reproductions' populations (networks per condition, seeds) run through flexrnn.sweep."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from flexrnn import sweep


def dask_installed() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


class Populations:
    """Runs a report's populations through :func:`flexrnn.sweep.run` in one sweep folder.

    workers, scheduler : as ``sweep.run``'s; with neither given and Dask not installed, the
        runs go one after another in this process (``scheduler="serial"``).
    runs : the sweep folder, kept (rerunning the report resumes from it); None: a temporary
        folder, removed by :meth:`close`.
    """

    def __init__(
        self,
        study: str,
        workers: int | None = None,
        scheduler: str | None = None,
        runs: str | Path | None = None,
        progress: bool = True,
    ) -> None:
        if scheduler is None and workers is None and not dask_installed():
            scheduler = "serial"
        if workers is not None and scheduler is not None:
            raise ValueError("workers: only for the local cluster (no scheduler given)")
        self.scheduler, self.workers, self.progress = scheduler, workers, progress
        self._tmp = None
        if runs is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"flexrnn-{study}-runs-")
            self.out = Path(self._tmp.name)
        else:
            self.out = Path(runs) / study

    def describe(self) -> dict[str, Any]:
        """For a report's meta: where the runs went and on how many processes."""
        if self.scheduler == "serial":
            return {"scheduler": "serial (this process)", "workers": 1, "threads_per_run": None}
        if self.scheduler is None:
            return {"scheduler": "local Dask cluster", "threads_per_run": 1,
                    "workers": self.workers or os.cpu_count() or 1}  # fmt: skip
        return {"scheduler": str(self.scheduler), "workers": None, "threads_per_run": 1}

    def run(
        self, fn: Callable[[dict, int], dict], configs: list[dict], seeds: list[int]
    ) -> list[dict[str, Any]]:
        """``sweep.run`` (failures raise), with each row's kept arrays read into ``row["kept"]``
        as a dict (the temporary folder does not outlive the report)."""
        serial = self.scheduler == "serial"
        rows = sweep.run(
            fn, configs, seeds, self.out, scheduler=self.scheduler, workers=self.workers,
            progress=self.progress, retries=0, threads=None if serial else 1, strict=True,
        )  # fmt: skip
        for row in rows:
            kept = row["kept"]
            row["kept"] = {k: kept[k] for k in kept} if kept is not None else {}
        return rows

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Populations:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def history_arrays(hist) -> dict[str, Any]:
    """A training History as a run's result entries (``history.<field>``)."""
    return {f"history.{k}": v for k, v in hist.as_dict().items()}


def history_from_row(row: dict[str, Any]):
    """The History that :func:`history_arrays` stored."""
    from flexrnn.train.history import History

    data: dict[str, Any] = {}
    for key, value in list(row["kept"].items()) + list(row.items()):
        if isinstance(key, str) and key.startswith("history."):
            data.setdefault(key[len("history.") :], value)
    return History.from_dict({k: np.asarray(v) if k != "stopped" else v for k, v in data.items()})


def sweep_sentence(meta: dict[str, Any], what: str) -> str:
    """A report's sentence on how ``what`` (its populations) ran, from :meth:`describe`."""
    if "scheduler" not in meta:
        return ""
    if meta["threads_per_run"] is None:
        return f" {what} ran one after another in this process (flexrnn.sweep, serial)."
    workers = f"{meta['workers']} worker processes" if meta["workers"] else "its workers"
    return (
        f" {what} ran in parallel through `flexrnn.sweep` ({meta['scheduler']}, {workers} "
        "of 1 thread each; their times are per run)."
    )
