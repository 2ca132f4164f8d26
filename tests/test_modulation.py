"""Gain modulation: the distributions and their time courses, bptt(modulation=...), and
performance_vs_gain."""

from __future__ import annotations

import flexrnn as fr
import matplotlib
import numpy as np
import pytest
from flexrnn.modulation import from_callable, log_uniform, uniform

matplotlib.use("Agg")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_uniform_gains_are_one_per_trial_inside_the_range_with_the_uniform_mean():
    g = uniform(0.5, 2.0).sample(rng(), T=30, B=20000)
    assert g.shape == (1, 20000) and g.dtype == np.float64
    assert g.min() >= 0.5 and g.max() <= 2.0
    assert abs(g.mean() - 1.25) < 5 * (1.5 / np.sqrt(12)) / np.sqrt(g.size)


def test_log_uniform_gains_have_a_uniform_logarithm():
    g = log_uniform(0.25, 4.0).sample(rng(), T=5, B=20000)
    assert g.min() >= 0.25 and g.max() <= 4.0
    log_g = np.log(g)
    sd = (np.log(16.0) / np.sqrt(12)) / np.sqrt(g.size)
    assert abs(log_g.mean()) < 5 * sd  # centred at log 1
    assert abs(np.mean(log_g < 0) - 0.5) < 0.02  # the median is the geometric mean


def test_switches_make_piecewise_constant_gains_with_at_most_k_changes():
    g = uniform(0.5, 2.0, switches=3).sample(rng(1), T=200, B=50)
    assert g.shape == (200, 50)
    changes = (np.diff(g, axis=0) != 0).sum(axis=0)
    assert changes.max() <= 3 and changes.mean() > 2.5  # distinct draws almost surely
    assert g.min() >= 0.5 and g.max() <= 2.0


def test_drift_stays_in_range_and_moves_at_most_the_range_per_knot_interval():
    L = 40
    g = uniform(0.5, 2.0, drift=L).sample(rng(2), T=300, B=30)
    assert g.shape == (300, 30)
    assert g.min() >= 0.5 - 1e-12 and g.max() <= 2.0 + 1e-12
    assert np.abs(np.diff(g, axis=0)).max() <= 1.5 / L + 1e-12  # linear between knots
    assert np.std(g[:, 0]) > 0.05  # it does move
    lg = log_uniform(0.5, 2.0, drift=L).sample(rng(2), T=300, B=30)
    assert lg.min() >= 0.5 - 1e-12 and lg.max() <= 2.0 + 1e-12


def test_callable_values_come_from_the_draw_and_batch_gains_are_one_value():
    draws = from_callable(lambda r: r.choice([0.5, 2.0])).sample(rng(), T=10, B=100)
    assert draws.shape == (1, 100) and set(np.unique(draws)) == {0.5, 2.0}
    one = uniform(0.5, 2.0, per="batch").sample(rng(), T=10, B=100)
    assert one.shape == (1, 1)
    np.broadcast_to(uniform(1, 2, per="batch", switches=2).sample(rng(), 10, 4), (10, 4))


def test_samples_are_reproducible_from_the_generator():
    mod = log_uniform(0.5, 2.0, switches=2)
    np.testing.assert_array_equal(mod.sample(rng(7), 50, 8), mod.sample(rng(7), 50, 8))
    assert not np.array_equal(mod.sample(rng(7), 50, 8), mod.sample(rng(8), 50, 8))


def test_grid_spans_the_range_evenly_or_evenly_in_log():
    np.testing.assert_allclose(uniform(0.5, 2.0).grid(4), [0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(log_uniform(0.25, 4.0).grid(5), [0.25, 0.5, 1.0, 2.0, 4.0])


def test_bad_modulation_arguments_name_the_argument():
    with pytest.raises(ValueError, match="high"):
        uniform(2.0, 1.0)
    with pytest.raises(ValueError, match="low"):
        log_uniform(0.0, 1.0)
    with pytest.raises(ValueError, match="low"):
        uniform(np.nan, 1.0)
    with pytest.raises(ValueError, match="drift"):
        uniform(0.5, 1.0, switches=1, drift=10)
    with pytest.raises(ValueError, match="drift"):
        uniform(0.5, 1.0, drift=0.5)
    with pytest.raises(ValueError, match="switches"):
        uniform(0.5, 1.0, switches=-1)
    with pytest.raises(ValueError, match="per"):
        uniform(0.5, 1.0, per="step")
    with pytest.raises(TypeError, match="draw"):
        from_callable(3.0)
    with pytest.raises(ValueError, match="draw"):
        from_callable(lambda r: r.uniform(size=2)).sample(rng(), 5, 3)
    with pytest.raises(ValueError, match="draw"):
        from_callable(lambda r: np.inf).sample(rng(), 5, 3)
    with pytest.raises(ValueError, match="G"):
        from_callable(lambda r: 1.0).grid(5)
    with pytest.raises(TypeError, match="rng"):
        uniform(0.5, 1.0).sample(0, 5, 3)


# ---------------------------------------------------------------------------------------------
# bptt(modulation=...)


def small_net(seed: int = 0) -> fr.RateRNN:
    return fr.RateRNN.random(12, 1, 1, g=1.2, tau=5.0, dt=1.0, seed=seed)


def task() -> fr.tasks.PerceptualDecision:
    return fr.tasks.PerceptualDecision(T=40)


def test_bptt_modulation_draws_the_gains_of_the_equivalent_callable_after_each_batch():
    B = 8
    a, b = small_net(), small_net()
    options = dict(iters=3, batch_size=B, progress=False, val_every=None, seed=4)
    fr.train.bptt(a, task(), modulation=uniform(0.5, 1.5), **options)
    fr.train.bptt(b, task(), gain=lambda r: r.uniform(0.5, 1.5, B)[None, :], **options)
    for name, value in a.params().items():
        np.testing.assert_array_equal(value, b.params()[name])
    c = small_net()
    fr.train.bptt(c, task(), **options)  # gain 1: different updates
    assert not np.array_equal(a.W, c.W)


def test_bptt_trains_under_time_varying_modulation_and_resumes_bitwise(tmp_path):
    mod = log_uniform(0.5, 2.0, switches=2)
    options = dict(batch_size=8, progress=False, val_every=2, val_batch=8, seed=1,
                   modulation=mod)  # fmt: skip
    full = small_net()
    fr.train.bptt(full, task(), iters=4, **options)
    part = small_net()
    ckpt = tmp_path / "run.npz"
    fr.train.bptt(part, task(), iters=2, checkpoint=ckpt, checkpoint_every=2, **options)
    resumed = small_net()
    fr.train.bptt(resumed, task(), iters=4, resume=ckpt, **options)
    for name, value in full.params().items():
        np.testing.assert_array_equal(value, resumed.params()[name])
    with pytest.raises(ValueError, match="modulation|gain"):
        fr.train.bptt(small_net(), task(), iters=4, resume=ckpt,
                      **{**options, "modulation": uniform(0.5, 2.0)})  # fmt: skip


def test_bptt_modulation_bad_input_names_the_argument():
    options = dict(iters=1, batch_size=4, progress=False, val_every=None)
    with pytest.raises(TypeError, match="modulation"):
        fr.train.bptt(small_net(), task(), modulation=(0.5, 2.0), **options)
    with pytest.raises(ValueError, match="modulation"):
        fr.train.bptt(small_net(), task(), modulation=uniform(0.5, 2), gain=2.0, **options)
    lstm = fr.LSTM.random(8, 1, 1)
    with pytest.raises(ValueError, match="modulation"):
        fr.train.bptt(lstm, task(), modulation=uniform(0.5, 2), **options)


# ---------------------------------------------------------------------------------------------
# performance_vs_gain


def test_performance_at_each_gain_is_the_score_of_runs_at_that_gain_on_the_same_trials():
    net, t = small_net(), task()
    res = fr.analysis.performance_vs_gain(net, t, [0.5, 1.0, 2.0], batch_size=16, batches=3,
                                          seed=5)  # fmt: skip
    r = np.random.default_rng(5)
    batches = [t.batch(16, r) for _ in range(3)]
    for i, g in enumerate([0.5, 1.0, 2.0]):
        acc = [t.score(net.run(tr.u, gain=g).y, tr) for tr in batches]
        np.testing.assert_allclose(res.batch_accuracy[i], acc)
        assert res.accuracy[i] == pytest.approx(np.mean(acc))
        assert res.accuracy_se[i] == pytest.approx(np.std(acc, ddof=1) / np.sqrt(3))
        y = net.run(batches[0].u, gain=g).y
        mse = np.sum(batches[0].mask * (y - batches[0].target) ** 2) / np.sum(
            np.broadcast_to(batches[0].mask, y.shape)
        )
        assert res.batch_loss[i, 0] == pytest.approx(mse)
    assert res.settings["loss"] == "mse"


def test_performance_of_a_network_without_recurrence_does_not_depend_on_the_gain():
    net = small_net()
    net.W[...] = 0.0
    res = fr.analysis.performance_vs_gain(net, task(), uniform(0.5, 2.0), batch_size=8,
                                          batches=2)  # fmt: skip
    assert len(res) == 11 and res.trained is not None
    np.testing.assert_array_equal(res.loss, np.full(11, res.loss[0]))
    np.testing.assert_array_equal(res.accuracy, np.full(11, res.accuracy[0]))


def test_performance_plot_labels_its_axes_and_shades_the_trained_range():
    res = fr.analysis.performance_vs_gain(small_net(), task(), [0.5, 1.0, 1.5], batch_size=4,
                                          batches=2, trained=uniform(0.8, 1.2))  # fmt: skip
    fig = res.plot()
    top, bottom = fig.axes
    assert top.get_ylabel() == "accuracy" and bottom.get_xlabel() == "gain"
    assert "trained range" in [t.get_text() for t in top.get_legend().get_texts()]
    assert "gain" in res.summary()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_performance_vs_gain_bad_input_names_the_argument():
    net, t = small_net(), task()
    with pytest.raises(ValueError, match="target"):
        fr.analysis.performance_vs_gain(net, t, [1.0], target="sideways")
    with pytest.raises(ValueError, match="gains"):
        fr.analysis.performance_vs_gain(net, t, [[1.0]])
    with pytest.raises(ValueError, match="gains"):
        fr.analysis.performance_vs_gain(net, t, [np.nan])
    with pytest.raises(ValueError, match="batches"):
        fr.analysis.performance_vs_gain(net, t, [1.0], batches=0)
    with pytest.raises(TypeError, match="net"):
        fr.analysis.performance_vs_gain(fr.LSTM.random(8, 1, 1), t, [1.0])
    with pytest.raises(ValueError, match="task"):
        fr.analysis.performance_vs_gain(fr.RateRNN.random(8, 2, 1), t, [1.0])
    with pytest.raises(TypeError, match="trained"):
        fr.analysis.performance_vs_gain(net, t, [1.0], trained=(0.5, 2.0))
