"""The reproductions' populations through flexrnn.sweep: the same numbers as before (networks
trained together in one process), on workers or serially, and resumed from a runs folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import flexrnn
import numpy as np
import pytest
from flexrnn import mop, sweep
from flexrnn.cli import main
from flexrnn.experiments._runs import history_from_row
from flexrnn.experiments.neuromop import LEVEL, _envs, _rollout_metrics, network_run

pytest.importorskip("distributed")
sys.path.insert(0, str(Path(__file__).parent))  # the workers import sweep_functions
import sweep_functions  # noqa: E402


def _without_times(x):
    """Results minus wall-clock times (the only thing that differs between two runs)."""
    if isinstance(x, dict):
        return {k: _without_times(v) for k, v in x.items()
                if k not in ("wall_s", "seconds", "ms_per_trial")}  # fmt: skip
    if isinstance(x, list):
        return [_without_times(v) for v in x]
    return x


def test_neuromop_networks_run_apart_match_networks_trained_together():
    config = {"part": "energy", "condition": "MOP", "epochs": 3, "horizon": 100}
    apart = [network_run(config, seed) for seed in (0, 1)]
    # the report before the sweep: both networks' agents in one mop.train call
    agents = [mop.MOPAgent(env, seed=k) for k, env in enumerate(_envs(2, 0, mop.Energy(LEVEL)))]
    hists = mop.train(agents, 3, 10, 100, progress=False)
    rolls = mop.rollout(agents, trajectories=10, horizon=100)
    for k in range(2):
        np.testing.assert_array_equal(apart[k]["mean_lifetime"], hists[k].mean_lifetime)
        together = _rollout_metrics(rolls[k], LEVEL)
        np.testing.assert_equal(apart[k]["eval"], together)


def test_reproduce_neuromop_on_workers_matches_serial_and_resumes(tmp_path):
    def report(name, *options):
        main(["reproduce", "neuromop", "--quick", "--no-progress", "--only", "energy",
              "--out", str(tmp_path / name), *options])  # fmt: skip
        data = json.loads((tmp_path / name / "reproductions" / "neuromop.json").read_text())
        return data

    runs = tmp_path / "runs"
    parallel = report("parallel", "--workers", "2", "--runs", str(runs))
    serial = report("serial", "--scheduler", "serial")
    assert parallel["meta"]["workers"] == 2 and serial["meta"]["threads_per_run"] is None
    np.testing.assert_equal(_without_times(parallel["results"]), _without_times(serial["results"]))
    # 2 conditions x 2 networks, each run once
    folder = runs / "neuromop"
    assert sweep.status(folder)["done"] == 4
    starts = len([e for e in sweep.read_log(folder) if e["event"] == "start"])
    assert starts == 4
    again = report("again", "--workers", "2", "--runs", str(runs))
    assert len([e for e in sweep.read_log(folder) if e["event"] == "start"]) == starts
    assert again["results"] == parallel["results"]


def test_training_histories_round_trip_through_a_sweep(tmp_path):
    # the learning report's Hebbian networks come back as Histories this way
    (row,) = sweep.run(sweep_functions.short_training, [{"n": 8, "iters": 5}], seeds=[3],
                       out=tmp_path, workers=2, progress=False)  # fmt: skip
    row["kept"] = {k: row["kept"][k] for k in row["kept"]}
    hist = history_from_row(row)
    net = flexrnn.RateRNN.random(n=8, n_in=1, n_out=1, seed=3)
    direct = flexrnn.train.bptt(net, flexrnn.tasks.PerceptualDecision(), iters=5, batch_size=8,
                                val_every=2, val_batch=16, progress=False, seed=3)  # fmt: skip
    for field in ("loss", "grad_norm", "lr", "val_iteration", "val_accuracy", "val_loss"):
        np.testing.assert_array_equal(getattr(hist, field), getattr(direct, field))
    assert hist.stopped == direct.stopped and len(hist) == 5


def test_reproduce_training_rejects_population_options(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "training", "--quick", "--workers", "2"])
    assert "--workers" in capsys.readouterr().err
