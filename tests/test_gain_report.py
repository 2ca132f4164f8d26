"""`flexrnn reproduce gain`: a tiny run end to end, its figures, and the pieces it is made of."""

from __future__ import annotations

import json

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn.cli import main
from flexrnn.experiments import gain as study
from flexrnn.presets import costacurta2024


@pytest.fixture
def tiny(monkeypatch):
    """The study at a size that runs in seconds (small networks, few trials)."""
    monkeypatch.setattr(study, "N", 12)
    monkeypatch.setattr(study, "NM_SIZES", {"n": 10, "rank": 2, "n_mod": 3})
    monkeypatch.setitem(study.QUICK, "eval_trials", 8)
    monkeypatch.setitem(study.QUICK, "iters", 5)


def test_tiny_run_writes_report_json_and_every_figure(tiny, tmp_path):
    res = study.gain_report(out=tmp_path, quick=True, only=["measure_wait_go"], seeds=3,
                            scheduler="serial", progress=False)  # fmt: skip
    folder = tmp_path / "reproductions"
    text = (folder / "gain.md").read_text()
    for name in ("gain_measure_wait_go.png", "gain_measure_wait_go_continuation.png"):
        assert (folder / "figures" / name).stat().st_size > 10_000
        assert f"figures/{name}" in text
    assert "## (d) What the data show" in text and "## Conditions not run" in text
    data = json.loads((folder / "gain.json").read_text())
    conds = data["results"]["measure_wait_go"]
    assert set(conds) == set(study.CONDITIONS)
    gains = res["meta"]["gains"]
    assert 1.0 in gains and min(gains) == 0.5 and max(gains) == 2.0
    for cond, cres in conds.items():
        assert cres["seeds"] == [0, 1, 2]
        acc = np.array(cres["accuracy.global"]["mean"])
        assert acc.shape == (len(gains),) and np.all((acc >= 0) & (acc <= 1))
        svcca = np.array(cres["svcca_to_gain_1"]["mean"])
        assert svcca[gains.index(1.0)] == pytest.approx(0.0, abs=1e-9)  # the same states
        assert ("fixed_points" in cres) == (cond != "NM-RNN")
    # the not-run list follows the build's capability, never claims a site condition ran
    sites_ran = any(k.startswith("accuracy.pre") for k in conds["gain 1"])
    assert sites_ran == data["meta"]["site_gains"]
    assert ("pre_gain" in text.split("## Conditions not run")[1]) != sites_ran
    if sites_ran:  # pre, post, E-only, I-only: their accuracies, figure and summary
        assert set(conds["gain 1"]) >= {f"accuracy.{s}" for s in study.SITES}
        assert (folder / "figures" / "gain_measure_wait_go_sites.png").stat().st_size > 10_000
        assert "E-only" in text.split("## (d)")[1]


def test_gain_1_and_gain_varied_networks_start_from_the_same_weights():
    task = study.make_task("context_integration")
    a = study.make_network("gain 1", task, seed=4)
    b = study.make_network("gain-varied", task, seed=4)
    np.testing.assert_array_equal(a.W, b.W)
    assert (a.cell_type > 0).mean() == pytest.approx(study.DALE)


def test_nmrnn_at_gain_scales_the_recurrent_weights_of_a_copy():
    net = costacurta2024("NMRNN", n=10, rank=2, n_mod=3, n_in=3, n_out=1, seed=1)
    V = net.V.copy()
    scaled = study.nmrnn_at_gain(net, 1.7)
    np.testing.assert_array_equal(net.V, V)  # the original is untouched
    np.testing.assert_allclose(scaled.V, 1.7 * V)
    u = np.random.default_rng(0).standard_normal((20, 2, 3))
    np.testing.assert_array_equal(study.nmrnn_at_gain(net, 1.0).run(u).y, net.run(u).y)
    # gain 0 removes the recurrence: the first step is the leak and the input alone
    silent = study.nmrnn_at_gain(net, 0.0).run(u)
    a = net.alpha_x
    expected = (1 - a) * net.x0[None, :] + a * u[0] @ net.B_x.T
    np.testing.assert_allclose(silent.x[0], expected, atol=1e-12)
    assert not np.allclose(silent.y, net.run(u).y)


def test_site_gains_supported_reads_the_run_signature():
    class Sites:
        def run(self, u, gain=1.0, pre_gain=None, post_gain=None):
            return u

    class GlobalOnly:
        def run(self, u, gain=1.0):
            return u

    assert study.site_gains_supported(Sites())
    assert not study.site_gains_supported(GlobalOnly())
    net = fr.RateRNN.random(5, 1, 1, seed=0)
    import inspect

    assert study.site_gains_supported(net) == ("pre_gain" in inspect.signature(net.run).parameters)


def test_summaries_are_means_and_standard_errors_over_seeds():
    gains = [0.5, 1.0, 2.0]
    rows = [
        {"seed": s, "accuracy.global": acc, "svcca_to_gain_1": sv, "final_loss": 0.1 * s,
         "updates": 3, "train_seconds": 1.0, "eval_seconds": 1.0}
        for s, acc, sv in [(0, [0.2, 1.0, 0.4], [0.3, 0.0, 0.5]),
                           (1, [0.6, 0.8, 0.0], [0.1, 0.0, 0.3])]
    ]  # fmt: skip
    res = study.summarise(rows, gains)
    np.testing.assert_allclose(res["accuracy.global"]["mean"], [0.4, 0.9, 0.2])
    np.testing.assert_allclose(res["accuracy.global"]["se"], [0.2, 0.1, 0.2])
    # off gain 1: the mean over gains 0.5 and 2 per network, then over networks
    np.testing.assert_allclose(res["per_network"]["accuracy_off_1"], [0.3, 0.3])
    np.testing.assert_allclose(res["per_network"]["svcca_off_1"], [0.4, 0.2])
    assert res["summary"]["svcca_off_1"]["mean"] == pytest.approx(0.3)
    # a per-site accuracy (when the build has pre/post gains) is summarised the same way
    rows[0]["accuracy.E-only"], rows[1]["accuracy.E-only"] = [0.0, 1.0, 1.0], [0.5, 1.0, 0.5]
    res = study.summarise(rows, gains)
    np.testing.assert_allclose(res["accuracy.E-only"]["mean"], [0.25, 1.0, 0.75])
    np.testing.assert_allclose(res["per_network"]["accuracy_off_1.E-only"], [0.5, 0.5])
    assert res["summary"]["accuracy_off_1.E-only"]["mean"] == pytest.approx(0.5)


def test_verdict_needs_a_difference_beyond_two_standard_errors_and_three_seeds():
    clear = {"mean": -0.3, "se": 0.05, "n": 5}
    null = {"mean": -0.05, "se": 0.05, "n": 5}
    few = {"mean": -0.3, "se": 0.0, "n": 2}
    assert study._verdict(clear, "less", "more") == "less"
    assert study._verdict({**clear, "mean": 0.3}, "less", "more") == "more"
    assert "no difference" in study._verdict(null, "less", "more")
    assert "no verdict" in study._verdict(few, "less", "more")
    assert study._short(clear, -1) == "yes" and study._short(clear, 1) == "no, the opposite"
    assert study._short(null, -1) == study._short(few, -1) == "not resolved"


def test_bad_arguments_are_named(tmp_path, capsys):
    with raises_naming("only"):
        study.gain_report(out=tmp_path, only=["cartpole"], progress=False)
    with raises_naming("scale"):
        study.gain_report(out=tmp_path, scale=-1.0, progress=False)
    with raises_naming("seeds"):
        study.gain_report(out=tmp_path, seeds=0, progress=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "gain", "--only", "cartpole", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "gain has no part 'cartpole'" in capsys.readouterr().err
    assert not (tmp_path / "reproductions").exists()
