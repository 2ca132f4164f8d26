"""Short reprs of run results and histories; the command's --version and help."""

import subprocess
import sys

import flexrnn as fr
import numpy as np
from flexrnn.mop.agents import MopHistory


def test_trajectory_repr_shows_shapes_not_contents():
    net = fr.RateRNN.random(n=300, n_in=1, n_out=2, seed=0)
    text = repr(net.run(np.zeros((400, 3, 1))))
    assert (
        text == "Trajectory(x=float64[400, 3, 300], r=float64[400, 3, 300], y=float64[400, 3, 2])"
    )


def test_nmrnn_and_lstm_trajectory_reprs_name_every_array():
    nm = fr.NMRNN.random(n=10, rank=2, n_mod=3, n_in=1, n_out=1, dtype="float32")
    text = repr(nm.run(np.zeros((4, 1, 1), np.float32)))
    assert text.startswith("NMRNNTrajectory(x=float32[4, 1, 10]")
    assert "z=float32[4, 1, 3]" in text and "s=float32[4, 1, 2]" in text
    lstm = fr.LSTM.random(n=4, n_in=1, n_out=1)
    assert repr(lstm.run(np.zeros((3, 2, 1)))).startswith("LSTMTrajectory(h=float64[3, 2, 4]")


def test_mop_history_repr_is_one_line():
    hist = MopHistory()
    assert repr(hist) == "MopHistory(epochs=0)"
    for e in range(3):
        hist._append(lifetime=[10 + e, 20 + e], entropy=5.0 - e, loss=0.1, eps=np.nan,
                     context=0, wall_time=float(e))  # fmt: skip
    assert repr(hist) == "MopHistory(epochs=3, mean lifetime 17, entropy 3 in the last epoch)"


def test_cli_version_and_plain_help():
    run = [sys.executable, "-m", "flexrnn"]
    version = subprocess.run([*run, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"flexrnn {fr.__version__}"
    help_text = subprocess.run([*run, "--help"], capture_output=True, text=True, check=True)
    assert "``" not in help_text.stdout and "reproduce" in help_text.stdout
