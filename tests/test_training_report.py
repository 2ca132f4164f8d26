"""`flexrnn reproduce training` end to end, in its quick (smoke-test) mode."""

import json

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn.cli import main
from flexrnn.experiments import training_report


def test_quick_training_report_writes_markdown_json_and_figures(tmp_path):
    main(["reproduce", "training", "--quick", "--no-progress", "--out", str(tmp_path),
          "--only", "perceptual_decision", "measure_wait_go"])  # fmt: skip
    report = (tmp_path / "training.md").read_text()
    data = json.loads((tmp_path / "training.json").read_text())
    assert set(data["results"]) == {"perceptual_decision", "measure_wait_go"}
    assert data["meta"]["quick"] is True
    pd = data["results"]["perceptual_decision"]
    assert 0.0 <= pd["test_accuracy"] <= 1.0 and pd["iterations"] >= 1
    mwg = data["results"]["measure_wait_go"]
    assert mwg["per_step_mean_mse"] == pytest.approx(0.0095, abs=1e-4)
    assert mwg["constant_predictor_mse"] == pytest.approx(0.227, abs=1e-3)
    for line in report.splitlines():
        if line.startswith("![") and "](" in line:
            assert (tmp_path / line.split("](")[1].rstrip(")")).is_file()


def test_unknown_part_is_named():
    with raises_naming("only"):
        training_report(out="unused", only=["nope"], progress=False)


def test_fixed_trials_returns_the_same_batch_and_scores_like_the_task():
    task = fr.tasks.MeasureWaitGo()
    train = task.training_set()
    fixed = fr.tasks.FixedTrials(task, train)
    a, b = fixed.batch(7, rng=0), fixed.batch(64, rng=1, dtype=np.float32)
    np.testing.assert_array_equal(a.u, train.u)
    assert b.u.dtype == np.float32 and b.u.shape == train.u.shape
    assert fixed.score(train.target, train) == task.score(train.target, train) == 1.0
    with raises_naming("trials"):
        fr.tasks.FixedTrials(task, train.u)
