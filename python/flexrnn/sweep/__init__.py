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

from flexrnn.sweep._ids import grid, run_id
from flexrnn.sweep._run import SweepError, run
from flexrnn.sweep._spec import format_status, read_spec
from flexrnn.sweep._store import Kept, load, read_log, status

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
