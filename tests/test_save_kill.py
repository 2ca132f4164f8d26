"""SIGKILL during saves: a subprocess saves a large model (or a training checkpoint) in a loop
and is killed at random moments, many times. The previous good file always stays loadable
and holds one of the versions written, and the temporaries the killed writers left behind
are removed by the next load (or save)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import flexrnn as fr
import numpy as np
import pytest

N = 700  # W: 700 x 700 float64 = 3.9 MB, a save of a few milliseconds to tens of them
KILLS = 10

# the writer: version k of the model has W = base * (k + 1); it reports "ready" once its
# first save has completed, then saves versions until it is killed
WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import flexrnn as fr

    kind, path, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    base = fr.RateRNN.random(n=n, n_in=2, n_out=2, seed=0)
    k = start
    while True:
        net = fr.RateRNN(base.W * (k + 1), base.W_in, base.W_out)
        if kind == "model":
            net.save(path)
        else:
            from flexrnn.train.checkpoint import save_checkpoint
            from flexrnn.train.history import History
            save_checkpoint(path, net=net, iteration=0, history=History(),
                            optimizer_state={"m/W": net.W}, rng_states={}, args={"k": k})
        if k == start:
            print("ready", flush=True)
        k += 1
    """
)


def _version(kind: str, path: Path, base_W: np.ndarray) -> int:
    """Which version the file holds (it must load and be one of them)."""
    if kind == "model":
        W = fr.load(path).W
    else:
        ckpt = fr.train.load_checkpoint(path)
        W = ckpt.net.W
        np.testing.assert_array_equal(ckpt.optimizer_state["m/W"], W)
    k = int(round(W[0, 0] / base_W[0, 0])) - 1
    np.testing.assert_array_equal(W, base_W * (k + 1))
    return k


def _temporaries(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".")]


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_killed_saves_never_destroy_the_previous_file(kind, tmp_path):
    path = tmp_path / f"{kind}.npz"
    base_W = fr.RateRNN.random(n=N, n_in=2, n_out=2, seed=0).W
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = np.random.default_rng(18)
    seen, leftovers = [], 0
    start = 0
    for _ in range(KILLS):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, kind, str(path), str(N), str(start)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert writer.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.25))  # somewhere in one of the next saves
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        leftovers += len(_temporaries(path))
        k = _version(kind, path, base_W)  # loadable, one whole version; cleans up
        assert k >= start
        seen.append(k)
        assert _temporaries(path) == []  # the dead writer's temporary is gone
        start = k + 1
    # the kills landed at different moments: several versions were saved in between
    assert len(set(seen)) == KILLS
    # a kill mid-save leaves a temporary (removed above); with these sizes most kills do
    assert leftovers > 0


def test_next_save_removes_the_temporary_of_a_killed_save(tmp_path):
    path = tmp_path / "model.npz"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(20):  # until a kill lands mid-save (a temporary is left)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, "model", str(path), str(N), "0"],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert writer.stdout.readline().strip() == b"ready"
        time.sleep(0.05)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        if _temporaries(path):
            break
    assert _temporaries(path), "no kill landed during a save"
    fr.RateRNN.random(n=3, n_in=1, n_out=1).save(path)
    assert _temporaries(path) == []
    assert fr.load(path).n == 3
