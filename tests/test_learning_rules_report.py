"""The learning-rule study's presets and `flexrnn reproduce learning-rules` end to end (at a
toy scale: short trials, two networks per rule, a few updates)."""

from __future__ import annotations

import json

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn.cli import main
from flexrnn.experiments import learning_rules as lr
from flexrnn.experiments import learning_rules_report as lrr


def test_study_network_has_the_study_initialisation():
    net = lr.study_network(n_in=4, n=400, seed=1)
    assert net.phi == "shifted_tanh" and net.readout == "state"
    assert net.W.std() == pytest.approx(0.02, rel=0.02)
    assert net.W_in.std() == pytest.approx(0.5, rel=0.05)
    assert net.W_out.std() == pytest.approx(0.1, rel=0.1)
    assert not net.b.any() and not net.x0.any()
    # options, not defaults: the package's random network is unchanged
    assert fr.RateRNN.random(n=4, n_in=1, n_out=1).phi == "tanh"


@pytest.mark.parametrize("task", [lr.study_task(None, T=30), lr.study_task(3, T=30)])
def test_study_validation_trials_cycle_through_the_study_coherences(task):
    val = lr.study_validation_trials(task, 45, seed=2)
    np.testing.assert_array_equal(val.info["coherence"], np.resize(lr.VALIDATION_COHERENCES, 45))
    # the noise-free part of the input is the signed coherence of the (cued) channel
    noise = lr.study_validation_trials(task, 45, coherences=[0.0], seed=2).u
    signal = (val.u - noise)[:, :, : getattr(task, "N", 1)]
    signs = val.info["signs"] if "signs" in val.info else val.info["sign"][:, None]
    np.testing.assert_allclose(signal, np.broadcast_to(signs * val.info["coherence"][:, None],
                                                       signal.shape), atol=1e-12)  # fmt: skip
    assert val.u.shape == (30, 45, task.n_in)
    assert task.score(np.broadcast_to(val.info["sign"][None, :, None], (30, 45, 1)), val) == 1.0


def test_hebbian_task_stimulus_then_silent_response():
    task = lr.HebbianDecision(T=70, stimulus=50)
    trials = task.batch(8, 0)
    np.testing.assert_array_equal(trials.u[:50, :, 0], np.broadcast_to(trials.info["sign"] * 0.25,
                                                                        (50, 8)))  # fmt: skip
    assert not trials.u[50:].any()
    assert trials.mask[:50].sum() == 0 and trials.mask[50:].all()
    y = -np.broadcast_to(trials.info["sign"][None, :, None], (70, 8, 1))
    assert task.score(y, trials) == 0.0 and task.score(-y, trials) == 1.0


def test_hebbian_network_holds_the_study_bias_units():
    net = lr.hebbian_network(n=20, seed=0)
    x = net.run(np.zeros((30, 2, 1))).x
    np.testing.assert_allclose(x[:, :, [1, 10, 11]], np.broadcast_to([1.0, 1.0, -1.0], (30, 2, 3)),
                               atol=1e-12)  # fmt: skip


def test_psychometric_curve_of_a_perfect_integrator_is_a_step():
    # one linear unit that integrates the input, read out: choice = sign of the evidence
    net = fr.RateRNN(np.eye(1), np.ones((1, 1)), np.ones((1, 1)), tau=10.0, dt=1.0,
                     phi="identity", form="current")  # fmt: skip
    task = lr.study_task(None, sigma=0.0, T=20)
    levels, p = lr.psychometric(net, task, levels=[-0.1, -0.01, 0.01, 0.1], trials=20)
    np.testing.assert_array_equal(p, [0.0, 0.0, 1.0, 1.0])


def tiny_scale(quick, networks):
    return {
        "networks": networks or 2,
        "contexts": [2],
        "noise": [0.1, 1.0],
        "T": 40,
        "budgets": {"bptt": 3, "genetic": 2, "full_force": 2, "hebbian": 2},
        "bptt": {"lr": 1e-2, "batch_size": 16, "val_every": 1, "val_count": 40},
        "genetic": {"population": 4, "batch_size": 8, "val_count": 40, "dtype": "float32"},
        "analysis": {"fp_init": 8, "fp_iters": 100, "psychometric_trials": 10},
    }


def test_learning_rules_report_writes_markdown_json_and_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(lrr, "scale", tiny_scale)
    main(["reproduce", "learning-rules", "--quick", "--no-progress", "--out", str(tmp_path),
          "--only", "decision", "--scheduler", "serial"])  # fmt: skip
    out = tmp_path / "reproductions"
    report = (out / "learning_rules.md").read_text()
    data = json.loads((out / "learning_rules.json").read_text())
    assert data["meta"]["quick"] is True
    nets = data["results"]["networks"]
    assert sorted({n["rule"] for n in nets}) == ["bptt", "full_force", "genetic", "hebbian"]
    assert len(nets) == 8
    for n in nets:
        assert 0.0 <= n["accuracy"] <= 1.0
    sil = data["results"]["comparisons"]["decision"]["silhouettes"]
    for key in ("topology_strict", "topology_loose", "geometry"):
        for method in ("precomputed", "rows"):
            assert -1.0 <= sil[key][method] <= 1.0
            assert sil[key][f"{method}_sem"] >= 0.0
    D = np.array(data["results"]["comparisons"]["decision"]["matrices"]["geometry"])
    assert D.shape == (8, 8) and np.allclose(D, D.T)
    figures = [line for line in report.splitlines() if line.startswith("![")]
    assert len(figures) >= 3
    for line in figures:
        assert (out / line.split("](")[1].rstrip(")")).is_file()
    assert "--quick" in report and "not** the study's sizes" in report


def test_learning_rules_report_names_bad_arguments():
    with raises_naming("only"):
        lrr.learning_rules_report(out="unused", only=["nope"], progress=False)
    with raises_naming("networks"):
        lrr.learning_rules_report(out="unused", networks=1, progress=False)


def test_run_options_choose_contexts_noise_levels_and_budgets():
    s = lrr.with_options(lrr.scale(True, None), contexts="1,3", noise="0.1,2",
                         noise_contexts=[6], budget_scale=0.5)  # fmt: skip
    assert s["contexts"] == [1, 3] and s["noise"] == [0.1, 2.0] and s["noise_contexts"] == [6]
    quick = lrr.scale(True, None)["budgets"]
    assert s["budgets"] == {k: max(1, round(v * 0.5)) for k, v in quick.items()}
    assert lrr.with_options(lrr.scale(True, None), budget_scale=1e-6)["budgets"]["bptt"] == 1
    full = lrr.with_options(lrr.scale(False, None))
    assert full["contexts"] == full["noise_contexts"] == [1, 2, 3, 4, 5, 6]
    assert len(full["noise"]) == 4
    # budgets of single rules, after the scale; the others keep the (scaled) defaults
    s = lrr.with_options(lrr.scale(False, None), budget_scale=0.1,
                         budgets=["genetic=150", "bptt=600"])  # fmt: skip
    full_budgets = lrr.scale(False, None)["budgets"]
    assert s["budgets"] == {"bptt": 600, "genetic": 150,
                            "full_force": round(full_budgets["full_force"] * 0.1),
                            "hebbian": round(full_budgets["hebbian"] * 0.1)}  # fmt: skip
    assert (
        lrr.with_options(lrr.scale(True, None), budgets={"hebbian": 7})["budgets"]["hebbian"] == 7
    )
    text = lrr._options_text(None, None, None, None, lrr.with_options(
        lrr.scale(False, None), budgets=["genetic=150"]))  # fmt: skip
    assert text == " --budget genetic=150"


@pytest.mark.parametrize(
    ("name", "value"),
    [("contexts", "0,2"), ("contexts", "2,2"), ("contexts", "two"), ("contexts", ""),
     ("noise_contexts", "7"), ("noise", "0.1"), ("noise", "-1,1"), ("noise", "1,1"),
     ("noise", "a,b"), ("budget_scale", 0.0), ("budgets", ["sgd=5"]), ("budgets", ["bptt=x"]),
     ("budgets", ["bptt=0"]), ("budgets", {"genetic": -1})],
)  # fmt: skip
def test_run_options_name_bad_values(name, value):
    with raises_naming(name):
        lrr.with_options(lrr.scale(True, None), **{name: value})


def test_cli_names_a_bad_learning_rules_option(capsys):
    for flag, value in (("--contexts", "1,9"), ("--noise-contexts", "x"), ("--noise", "1"),
                        ("--budget", "bptt=none"), ("--budget", "adam=3")):  # fmt: skip
        with pytest.raises(SystemExit) as info:
            main(["reproduce", "learning-rules", flag, value, "--out", "unused"])
        assert info.value.code == 2
        assert flag in capsys.readouterr().err


def test_noise_part_reuses_the_base_noise_networks_of_the_other_parts():
    s = lrr.with_options(tiny_scale(True, None), contexts=[2, 3], noise=[0.1, 0.5],
                         noise_contexts=[3])  # fmt: skip
    everything = lrr._all_configs(list(lrr.PARTS), s)
    # decision 4 rules, context 2 N x 3 rules, noise: BPTT at 0.1 on the decision task and N=3
    # (at 0.5 those of the decision and context parts)
    assert len(everything) == 4 + 6 + 2
    assert len({json.dumps(c, sort_keys=True) for c in everything}) == len(everything)
    alone = lrr._all_configs(["noise"], s)
    assert len(alone) == 4 and {c["sigma"] for c in alone} == {0.1, 0.5}
    # rows as flexrnn.sweep returns them: the config's entries
    rows = [{**c, "seed": k} for c in everything for k in range(2)]
    groups = lrr._noise_rows(rows, s)
    assert list(groups) == ["decision", "context N=3"]
    for name, sel in groups.items():
        assert sorted(r["sigma"] for r in sel) == [0.1, 0.1, 0.5, 0.5]
        assert {r["rule"] for r in sel} == {"bptt"}
        assert {r["part"] for r in sel} == {
            "noise",
            "decision" if name == "decision" else "context",
        }


def test_learning_rules_report_over_several_n_and_noise(tmp_path, monkeypatch):
    monkeypatch.setattr(lrr, "scale", tiny_scale)
    main(["reproduce", "learning-rules", "--quick", "--no-progress", "--out", str(tmp_path),
          "--only", "context", "noise", "--contexts", "1,2", "--noise", "0.1,0.5",
          "--noise-contexts", "2", "--scheduler", "serial"])  # fmt: skip
    out = tmp_path / "reproductions"
    data = json.loads((out / "learning_rules.json").read_text())
    nets = data["results"]["networks"]
    # context: 2 N x 3 rules x 2 networks; noise: decision at 0.1 and 0.5, N=2 at 0.1 only
    assert len(nets) == 12 + 4 + 2
    comparisons = data["results"]["comparisons"]
    assert {"context N=1", "context N=2", "noise decision", "noise context N=2"} <= set(comparisons)
    assert sorted(comparisons["noise context N=2"]["labels"]) == ["0.1", "0.1", "0.5", "0.5"]
    report = (out / "learning_rules.md").read_text()
    assert "--contexts 1,2 --noise 0.1,0.5 --noise-contexts 2" in report
    assert "![silhouettes against N](figures/lr_contexts.png)" in report
    assert (out / "figures" / "lr_contexts.png").is_file()
    assert "Across the 2 N of N-context integration" in report
