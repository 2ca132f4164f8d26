"""`flexrnn reproduce nmrnn` (a smoke run) and the rank-1 theory it compares against."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import raises_naming
from flexrnn.cli import main
from flexrnn.experiments.nmrnn import nmrnn_report
from flexrnn.experiments.nmrnn_theory import rank1_gain, rank1_run


def test_rank1_gain_makes_the_linear_network_produce_the_target():
    rng = np.random.default_rng(3)
    n, tau_x, d = 20, 10.0, -1.0
    left, right, c = rng.standard_normal((3, n))
    r_dot_l = float(right @ left)
    t = np.arange(60)
    f = -0.5 + np.clip((t - 10) / 17, 0, 1)  # hold, ramp over 17 steps, hold
    s = rank1_gain(f, d, tau_x, r_dot_l)
    assert s.shape == (59,)
    np.testing.assert_allclose(rank1_run(s, left, right, c, d, tau_x, f[0]), f, atol=1e-12)
    np.testing.assert_allclose(s[:9], 1 / r_dot_l)  # holding the output: s = 1 / r^T l


def test_rank1_gain_drives_the_packages_linear_low_rank_network_along_the_target():
    import flexrnn as fr

    rng = np.random.default_rng(5)
    n, tau_x, d = 16, 10.0, -1.0
    left, right, c = rng.standard_normal((3, n))
    f = -0.5 + np.clip((np.arange(40) - 5) / 15, 0, 1)
    s = rank1_gain(f, d, tau_x, float(right @ left))
    net = fr.LowRankRNN(left[:, None], n * right[:, None], np.zeros((n, 1)), c[None, :],
                        b_out=[d], x0=(f[0] - d) * left / (c @ left), tau=tau_x,
                        phi="identity", readout="state")  # fmt: skip
    y = net.run(np.zeros((39, 1, 1)), gain=s[:, None]).y[:, 0, 0]  # gain[t] makes x[t+1]
    np.testing.assert_allclose(y, f[1:], atol=1e-12)


def test_longer_ramps_need_gains_closer_to_the_holding_gain():
    d, tau_x, r_dot_l = -1.0, 10.0, 0.8
    deviation = []
    for interval in (4, 8, 16, 32):
        f = -0.5 + np.linspace(0, 1, interval + 1)  # a ramp of duration I
        s = rank1_gain(f, d, tau_x, r_dot_l)
        deviation.append(np.max(np.abs(s - 1 / r_dot_l)))
    assert np.all(np.diff(deviation) < 0)
    # f' = 1 / I: at the ramp's start the excess gain is tau_x / (I (f - d) r^T l)
    f = -0.5 + np.linspace(0, 1, 11)
    s0 = rank1_gain(f, d, tau_x, r_dot_l)[0]
    assert s0 == pytest.approx((1 + tau_x * 0.1 / 0.5) / r_dot_l)


def test_rank1_gain_bad_arguments_are_named():
    with raises_naming("r_dot_l"):
        rank1_gain([0.0, 1.0], 0.5, 10.0, 0.0)
    with raises_naming("f"):
        rank1_gain([0.5, 1.0], 0.5, 10.0, 1.0)  # f - d = 0 at the first step
    with raises_naming("f"):
        rank1_gain([0.5], 0.0, 10.0, 1.0)


def test_quick_report_writes_markdown_json_and_figures(tmp_path):
    nmrnn_report(out=tmp_path, only=["mwg"], quick=True, progress=False)
    folder = tmp_path / "reproductions"
    report = (folder / "nmrnn.md").read_text()
    data = json.loads((folder / "nmrnn.json").read_text())
    assert data["meta"]["seeds"] == [0, 1] and data["meta"]["quick"] is True
    assert "flexrnn reproduce nmrnn --quick" in report
    mwg = data["results"]["mwg"]
    assert set(mwg) == {"NM-RNN", "LR-RNN", "vanilla", "LSTM"}
    assert mwg["NM-RNN"]["parameters"] == 1058  # + the untrained readout bias d: the study's 1059
    for m in mwg.values():
        assert len(m["train_mse"]["values"]) == 2 and m["seconds"]["mean"] > 0
    assert set(mwg["NM-RNN"]["ablation"]) == {"0", "1", "2"}
    for line in report.splitlines():
        if line.startswith("![") and "](" in line:
            assert (folder / line.split("](")[1].rstrip(")")).is_file()


def test_bad_report_arguments_are_named(tmp_path):
    with raises_naming("only"):
        nmrnn_report(out=tmp_path, only=["nope"], progress=False)
    with raises_naming("scale"):
        nmrnn_report(out=tmp_path, scale=2.0, progress=False)
    with raises_naming("part_scale"):
        nmrnn_report(out=tmp_path, part_scale={"multitask": 0.0}, progress=False)
    with pytest.raises(SystemExit):
        main(["reproduce", "nmrnn", "--part-scale", "multitask", "--out", str(tmp_path)])


def test_every_part_runs_through_the_sweep_and_a_rerun_resumes(tmp_path):
    runs = tmp_path / "runs"
    first = nmrnn_report(out=tmp_path / "a", quick=True, seeds=1, scheduler="serial", runs=runs,
                         progress=False)  # fmt: skip
    res = first["results"]
    assert set(res) >= {"mwg", "element_finder", "multitask", "rank1"}
    assert first["meta"]["runs"] == 4 + 6 + 3 + 1
    ef = res["element_finder"]["NM-RNN M=5 N=18 R=8"]
    assert ef["parameters"] == 497 and 1 <= ef["best_update"]["mean"] <= ef["updates"]
    assert len(res["rank1"]["per_seed"][0]["intervals"]) == 12
    assert len(list((runs / "nmrnn" / "runs").iterdir())) == 14
    # the second call finds every network finished: the same numbers, nothing retrained
    second = nmrnn_report(out=tmp_path / "b", quick=True, seeds=1, scheduler="serial",
                          runs=runs, progress=False)  # fmt: skip
    assert json.dumps(second["results"], sort_keys=True) == json.dumps(res, sort_keys=True)
    report = (tmp_path / "b" / "reproductions" / "nmrnn.md").read_text()
    assert "one after another in this process" in report
