"""`flexrnn reproduce gain`: a tiny run end to end, its figures, and the pieces it is made of."""

from __future__ import annotations

import json

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn.cli import main
from flexrnn.experiments import gain as study
from flexrnn.experiments import gain_markdown as markdown
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
    for suffix in ("", "_sites", "_continuation"):
        name = f"gain_measure_wait_go{suffix}.png"
        assert (folder / "figures" / name).stat().st_size > 10_000
        assert f"figures/{name}" in text
    assert "## (d) What the data show" in text and "## Conditions not run" in text
    data = json.loads((folder / "gain.json").read_text())
    conds = data["results"]["measure_wait_go"]
    nm_varied = study.nmrnn_takes_gains(
        costacurta2024("NMRNN", n=4, rank=1, n_mod=2, n_in=1, n_out=1)
    )
    assert data["meta"]["nmrnn_gains"] == nm_varied
    assert set(conds) == {c for c in study.CONDITIONS
                          if nm_varied or c != "NM-RNN varied: global"}  # fmt: skip
    not_run = text.split("## Conditions not run")[1].split("## Results")[0]
    assert ("NM-RNN varied: global" in not_run) != nm_varied
    gains = res["meta"]["gains"]
    assert 1.0 in gains and min(gains) == 0.5 and max(gains) == 2.0
    one = gains.index(1.0)
    for cond, cres in conds.items():
        assert cres["seeds"] == [0, 1, 2]
        sites = study.NM_SITES if cond.startswith("NM") else study.SITES
        for site in sites:
            acc = np.array(cres[f"accuracy.{site}"]["mean"])
            assert acc.shape == (len(gains),) and np.all((acc >= 0) & (acc <= 1))
            svcca = np.array(cres[f"svcca.{site}"]["mean"])
            assert svcca[one] == pytest.approx(0.0, abs=1e-9)  # the same states
        assert "stable.global" in cres and "fixed.global" in cres
        assert ("exponent.global" in cres) == (cond in study.RATE_CONDITIONS)
        if cond in study.RATE_CONDITIONS:
            assert {f"exponent.{s}" for s in study.REGIME_SITES} <= set(cres)
    assert set(data["comparisons"]["measure_wait_go"]) >= {"varied: global", "varied: E/I pre",
                                                            "varied: E/I post"}  # fmt: skip
    answer = text.split("## (d)")[1]
    assert "**varied: E/I post** vs gain 1" in answer and "I post" in answer


def test_training_modulations_put_the_gain_at_the_condition_site():
    assert study.training_modulation("gain 1") is None
    assert study.training_modulation("NM-RNN") is None
    assert study.training_modulation("varied: global").target == "gain"
    assert study.training_modulation("varied: E/I pre").targets == ("pre:E", "pre:I")
    assert study.training_modulation("varied: E/I post").targets == ("post:E", "post:I")
    with raises_naming("condition"):
        study.training_modulation("varied: dendrites")


def test_site_runs_are_runs_with_the_explicit_gain_vectors():
    task = study.make_task("context_integration")
    net = study.make_network("gain 1", task, seed=2)
    u = task.batch(4, np.random.default_rng(0)).u
    np.testing.assert_array_equal(study.site_run(net, "global", 1.5, u).x,
                                  net.run(u, gain=1.5).x)  # fmt: skip
    post = net.cell_gains(I=1.5, site="post")
    np.testing.assert_array_equal(study.site_run(net, "I post", 1.5, u).x,
                                  net.run(u, post_gain=post).x)  # fmt: skip
    np.testing.assert_array_equal(study.site_run(net, "E pre", 0.5, u).x,
                                  net.run(u, pre_gain=net.cell_gains(E=0.5)).x)  # fmt: skip
    nm = study.make_network("NM-RNN", task, seed=2)
    np.testing.assert_allclose(study.site_run(nm, "post", 1.5, u).y,
                               study.nmrnn_at_gain(nm, 1.5).run(u).y, atol=1e-12)  # fmt: skip
    # one value at every neuron: the pre- and post-synaptic gains are the global gain
    for site in ("pre", "post"):
        np.testing.assert_allclose(study.site_run(net, site, 1.7, u).x,
                                   net.run(u, gain=1.7).x, rtol=1e-12, atol=1e-12)  # fmt: skip
    with raises_naming("site"):
        study.site_run(net, "E sideways", 1.0, u)
    with raises_naming("site"):  # an NM-RNN has no cell types
        study.site_run(nm, "E pre", 1.0, u)


def test_gain_1_and_gain_varied_networks_start_from_the_same_weights():
    task = study.make_task("context_integration")
    a = study.make_network("gain 1", task, seed=4)
    b = study.make_network("varied: E/I post", task, seed=4)
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
        {"seed": s, "accuracy.global": acc, "svcca.global": sv, "fixed.global": fx,
         "stable.global": st, "final_loss": 0.1 * s, "updates": 3, "train_seconds": 1.0,
         "eval_seconds": 1.0, "bifurcations": bif}
        for s, acc, sv, fx, st, bif in [
            (0, [0.2, 1.0, 0.4], [0.3, 0.0, 0.5], [1, 1, 3], [1, 1, 1], [["hopf", 1.5]]),
            (1, [0.6, 0.8, 0.0], [0.1, 0.0, 0.3], [1, 1, 1], [1, 1, 0], []),
        ]
    ]  # fmt: skip
    res = study.summarise(rows, gains)
    np.testing.assert_allclose(res["accuracy.global"]["mean"], [0.4, 0.9, 0.2])
    np.testing.assert_allclose(res["accuracy.global"]["se"], [0.2, 0.1, 0.2])
    per = res["per_network"]
    # off gain 1: the mean over gains 0.5 and 2 per network, then over networks
    np.testing.assert_allclose(per["accuracy_off_1.global"], [0.3, 0.3])
    np.testing.assert_allclose(per["svcca_off_1.global"], [0.4, 0.2])
    assert res["summary"]["svcca_off_1.global"]["mean"] == pytest.approx(0.3)
    # gain 2 of network 0 has 3 fixed points, gain 2 of network 1 one unstable: 1/2 each
    np.testing.assert_allclose(per["same_fixed_points.global"], [0.5, 0.5])
    np.testing.assert_allclose(per["bifurcations"], [1.0, 0.0])
    # a per-site measure is summarised the same way
    rows[0]["accuracy.E pre"], rows[1]["accuracy.E pre"] = [0.0, 1.0, 1.0], [0.5, 1.0, 0.5]
    res = study.summarise(rows, gains)
    np.testing.assert_allclose(res["accuracy.E pre"]["mean"], [0.25, 1.0, 0.75])
    np.testing.assert_allclose(res["per_network"]["accuracy_off_1.E pre"], [0.5, 0.5])
    varied = study.summarise([{**r, "accuracy.global": [1.0, 1.0, 1.0]} for r in rows], gains)
    cmp = study.compare({"gain 1": res, "varied: global": varied})
    assert cmp["varied: global"]["accuracy_off_1.global"]["mean"] == pytest.approx(0.7)
    assert cmp["varied: global"]["svcca_off_1.global"]["mean"] == pytest.approx(0.0)


def test_verdict_needs_a_difference_beyond_two_standard_errors_and_three_seeds():
    clear = {"mean": -0.3, "se": 0.05, "n": 5}
    null = {"mean": -0.05, "se": 0.05, "n": 5}
    few = {"mean": -0.3, "se": 0.0, "n": 2}
    assert markdown._verdict(clear, "less", "more") == "less"
    assert markdown._verdict({**clear, "mean": 0.3}, "less", "more") == "more"
    assert "no difference" in markdown._verdict(null, "less", "more")
    assert "no verdict" in markdown._verdict(few, "less", "more")
    assert markdown._short(clear, -1) == "yes" and markdown._short(clear, 1) == "no, the opposite"
    assert markdown._short(null, -1) == markdown._short(few, -1) == "not resolved"


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


def test_mechanism_reads_function_and_structure_from_resolved_differences():
    clear = {"mean": 0.2, "se": 0.02, "n": 5}
    null = {"mean": 0.01, "se": 0.05, "n": 5}
    neg = {"mean": -0.2, "se": 0.02, "n": 5}
    sites = ("E pre", "I pre")
    kept_same = {"accuracy_off_1.E pre": clear, "accuracy_off_1.I pre": null,
                 "svcca_off_1.E pre": neg, "same_fixed_points.I pre": null}  # fmt: skip
    text = markdown.mechanism(kept_same, sites)
    assert text.startswith("function kept better, and its trajectories stay closer")
    assert "fixed points at more gains" not in text  # only what was resolved is claimed
    kept_moving = {**kept_same, "svcca_off_1.E pre": clear}  # trajectories move more
    assert "different mechanisms per gain" in markdown.mechanism(kept_moving, sites)
    nothing = {"accuracy_off_1.E pre": null, "accuracy_off_1.I pre": null}
    assert markdown.mechanism(nothing, sites).startswith("neither")
    mixed = {"accuracy_off_1.E pre": clear, "accuracy_off_1.I pre": neg}
    assert "accuracy off gain 1: mixed" in markdown.mechanism(mixed, sites)
    assert markdown.mechanism({"accuracy_off_1.global": neg}, ("global",)).startswith(
        "function kept worse"
    )
