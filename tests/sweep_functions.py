"""Run functions for tests/test_sweep*.py: in a module of their own so that Dask's worker
processes import them by name (the workers inherit the test process's sys.path)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np


def sleepy(config: dict, seed: int) -> dict:
    """Sleeps ``config["sleep"]`` seconds; metrics and an array that depend on (x, seed)."""
    time.sleep(config.get("sleep", 0.0))
    x = config["x"]
    return {
        "value": x * 10 + seed,
        "label": f"x={x}",
        "curve": np.arange(3, dtype=float) * x + seed,
        "pid": os.getpid(),
    }


def flaky(config: dict, seed: int) -> dict:
    """Raises on its first ``config["fail"]`` calls (counted in files under
    ``config["marks"]``), or always when ``fail`` is -1."""
    marks = Path(config["marks"])
    calls = len(list(marks.glob(f"{config['x']}-{seed}-*")))
    (marks / f"{config['x']}-{seed}-{calls}").touch()
    if config["fail"] == -1 or calls < config["fail"]:
        raise RuntimeError(f"planned failure of x={config['x']}, call {calls}")
    return {"value": config["x"] + seed, "calls": calls + 1}


def threads_seen(config: dict, seed: int) -> dict:
    """The flexrnn thread count and OMP_NUM_THREADS of the process running the run."""
    import flexrnn

    return {
        "flexrnn_threads": flexrnn.get_num_threads(),
        "omp_env": os.environ.get("OMP_NUM_THREADS"),
        "pid": os.getpid(),
    }


def with_model(config: dict, seed: int) -> dict:
    """Keeps a model and an array; metrics of NumPy types, nested, NaN, and one named like
    a config key."""
    import flexrnn

    net = flexrnn.RateRNN.random(n=config["n"], n_in=1, n_out=1, seed=seed)
    return {
        "net": net,
        "x": np.ones((4, config["n"])),
        "norm": np.linalg.norm(net.W),
        "nested": {"a": (np.int64(1), 2), "b": None},
        "nan": float("nan"),
        "n": np.int64(config["n"]),
    }


def bad_return(config: dict, seed: int) -> dict:
    """Returns an object that is neither JSON, an array nor a model."""
    return {"history": object()}


def short_training(config: dict, seed: int) -> dict:
    """A few BPTT updates of a small RateRNN: its History as the reports store it."""
    import flexrnn
    from flexrnn.experiments._runs import history_arrays

    net = flexrnn.RateRNN.random(n=config["n"], n_in=1, n_out=1, seed=seed)
    hist = flexrnn.train.bptt(net, flexrnn.tasks.PerceptualDecision(), iters=config["iters"],
                              batch_size=8, val_every=2, val_batch=16, progress=False,
                              seed=seed)  # fmt: skip
    return {"loss_last": float(hist.loss[-1]), **history_arrays(hist)}


def dies(config: dict, seed: int) -> dict:
    """Kills its own worker process when ``config["die"]`` is true."""
    if config["die"]:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return {"value": config["x"]}
