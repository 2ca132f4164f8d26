"""`flexrnn demo`: the default run (no NumPy baseline) finishes within 15 s and agrees with
mean-field theory; ``--baseline`` adds the NumPy reference's timing."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import flexrnn
from flexrnn.experiments import demo
from flexrnn.experiments.demo import MEAN_FIELD_VARIANCE


def test_default_demo_finishes_within_15_seconds_and_matches_mean_field(tmp_path):
    path = os.pathsep.join(
        [str(Path(flexrnn.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    )
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "flexrnn", "demo", "--json", "--out", "demo.png"],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": path})  # fmt: skip
    wall = time.perf_counter() - t0
    assert run.returncode == 0, run.stderr
    assert wall < 15.0
    summary = json.loads(run.stdout)
    assert (tmp_path / "demo.png").stat().st_size > 0
    assert summary["time_reference_s"] is None and summary["speedup"] is None
    assert summary["max_abs_diff_vs_reference"] < 1e-10
    for g, (lo, hi) in MEAN_FIELD_VARIANCE.items():
        v = summary["variance"][summary["gains"].index(g)]
        assert 0.9 * lo < v < 1.1 * hi


def test_baseline_times_the_numpy_reference(tmp_path):
    summary = demo(out=tmp_path / "d.png", n=40, steps=200, show_progress=False, baseline=True)
    assert summary["time_reference_s"] > 0
    assert summary["speedup"] == summary["time_reference_s"] / summary["time_core_s"]
    assert summary["max_abs_diff_vs_reference"] < 1e-10
