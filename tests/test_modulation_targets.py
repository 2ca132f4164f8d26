"""Modulation over every gain target: the global gain, pre_gain, post_gain, neuron_gain and
one cell type's gain (E / I, pre- or post-synaptic), per trial and time-varying, in
bptt(modulation=...) and performance_vs_gain(target=...)."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest
from flexrnn import modulation as fm
from flexrnn.train import loss_and_grad

N = 10


def dale_net(seed: int = 0) -> fr.RateRNN:
    return fr.RateRNN.random(N, 1, 1, g=1.2, tau=5.0, dt=1.0, seed=seed, dale=0.8)


def plain_net(seed: int = 0) -> fr.RateRNN:
    return fr.RateRNN.random(N, 1, 1, g=1.2, tau=5.0, dt=1.0, seed=seed)


def task() -> fr.tasks.PerceptualDecision:
    return fr.tasks.PerceptualDecision(T=30)


class Recording:
    """An optimiser that records the gradients it is given (and applies plain SGD)."""

    lr = 1e-2

    def __init__(self) -> None:
        self.grads: list[dict[str, np.ndarray]] = []

    def step(self, params, grads, lr):
        self.grads.append({k: v.copy() for k, v in grads.items()})
        for k in grads:
            params[k] -= lr * grads[k]


def explicit(net, target: str, values: np.ndarray, T: int, B: int) -> dict[str, np.ndarray]:
    """The gain arrays of a draw formed by hand: (T, B) for the global gain, (T, B, n) for a
    per-neuron site, ones outside the chosen cells."""
    v = np.broadcast_to(values, (T, B))
    site, _, cells = fm.TARGET_ALIASES.get(target, target).partition(":")
    if site == "gain":
        return {"gain": np.array(v)}
    chosen = np.ones(N, bool) if not cells else (net.cell_type > 0) == (cells == "E")
    full = np.where(chosen[None, None, :], v[:, :, None], 1.0)
    return {fm.KEYWORDS[site]: full}


TARGETS = ["gain", "pre", "post", "neuron", "E", "I", "post:E", "post:I", "neuron:I"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("switches", [0, 2])
def test_modulated_loss_and_grad_equal_those_of_the_explicit_gain_arrays_bitwise(target, switches):
    net, T, B = dale_net(), 30, 6
    trials = task().batch(B, np.random.default_rng(1))
    mod = fm.uniform(0.5, 2.0, switches=switches, target=target)
    gains = mod.gains(np.random.default_rng(2), T, B, net)
    values = mod.sample(np.random.default_rng(2), T, B)
    hand = explicit(net, target, values, T, B)
    assert list(gains) == list(hand)
    a_loss, a_grads = loss_and_grad(net, trials, **gains)
    b_loss, b_grads = loss_and_grad(net, trials, **hand)
    assert a_loss == b_loss
    for name in a_grads:
        np.testing.assert_array_equal(a_grads[name], b_grads[name])
    np.testing.assert_array_equal(net.run(trials.u, **gains).x, net.run(trials.u, **hand).x)


@pytest.mark.parametrize("target", ["pre", "post:I", "E", "neuron"])
def test_bptt_under_a_site_modulation_steps_on_the_gradients_of_the_explicit_arrays(target):
    B, T, seed = 6, 30, 3
    net, opt = dale_net(), Recording()
    start = dale_net()
    mod = fm.log_uniform(0.5, 2.0, drift=7, target=target)
    fr.train.bptt(net, task(), iters=2, batch_size=B, optimizer=opt, modulation=mod,
                  val_every=None, progress=False, seed=seed)  # fmt: skip
    rng = np.random.default_rng(seed)  # the batch generator: a batch, then its gains
    for it in range(2):
        trials = task().batch(B, rng)
        hand = explicit(start, target, mod.sample(rng, T, B), T, B)
        _, grads = loss_and_grad(start, trials, **hand)
        start._mask_gradients(grads)
        for name, g in opt.grads[it].items():
            np.testing.assert_array_equal(g, grads[name])
        for name in opt.grads[it]:
            getattr(start, name)[...] -= opt.lr * opt.grads[it][name]
        start._constrain_W(start.W)
    np.testing.assert_array_equal(start.W, net.W)


def test_global_target_is_the_old_modulation_bitwise():
    options = dict(iters=3, batch_size=8, progress=False, val_every=None, seed=4)
    a, b = plain_net(), plain_net()
    fr.train.bptt(a, task(), modulation=fm.uniform(0.5, 1.5), **options)
    fr.train.bptt(b, task(), modulation=fm.uniform(0.5, 1.5, target="global"), **options)
    np.testing.assert_array_equal(a.W, b.W)
    assert repr(fm.uniform(0.5, 1.5, target="global")) == "modulation.uniform(0.5, 1.5)"


def test_cell_types_draw_e_then_i_from_separate_distributions():
    net, T, B = dale_net(), 12, 5
    both = fm.cell_types(E=fm.uniform(0.5, 0.6), I=fm.uniform(1.5, 2.0, switches=1))
    gains = both.gains(np.random.default_rng(0), T, B, net)
    rng = np.random.default_rng(0)
    e = fm.uniform(0.5, 0.6).sample(rng, T, B)
    i = fm.uniform(1.5, 2.0, switches=1).sample(rng, T, B)
    exc = net.cell_type > 0
    want = np.where(exc, e[..., None], 1.0) * np.where(~exc, i[..., None], 1.0)
    np.testing.assert_array_equal(np.broadcast_to(gains["pre_gain"], (T, B, N)), want)
    assert both.targets == ("pre:E", "pre:I")
    post = fm.cell_types(I=fm.uniform(0.5, 1.0), site="post")
    assert list(post.gains(np.random.default_rng(0), T, B, net)) == ["post_gain"]


def test_combined_modulations_at_one_site_multiply_and_at_two_sites_compose():
    net, T, B = dale_net(), 8, 4
    pre, post = fm.uniform(0.5, 2.0, target="pre"), fm.uniform(0.5, 2.0, target="post")
    both = fm.combine(pre, post)
    g = both.gains(np.random.default_rng(1), T, B, net)
    rng = np.random.default_rng(1)
    a, b = pre.sample(rng, T, B), post.sample(rng, T, B)
    np.testing.assert_array_equal(g["pre_gain"], a[..., None])
    np.testing.assert_array_equal(g["post_gain"], b[..., None])
    same = fm.combine(pre, fm.uniform(1.0, 3.0, target="pre"))
    g2 = same.gains(np.random.default_rng(1), T, B, net)
    rng = np.random.default_rng(1)
    want = pre.sample(rng, T, B)[..., None] * fm.uniform(1.0, 3.0).sample(rng, T, B)[..., None]
    np.testing.assert_array_equal(g2["pre_gain"], want)
    assert "combine" in repr(both) and "target='post'" in repr(both)


def test_a_modulation_multiplies_the_fixed_per_neuron_gain_at_its_site():
    B, seed = 6, 5
    fixed = np.linspace(0.5, 1.5, N)
    mod = fm.uniform(0.5, 2.0, target="pre")
    opt = Recording()
    fr.train.bptt(dale_net(), task(), iters=1, batch_size=B, optimizer=opt, modulation=mod,
                  pre_gain=fixed, val_every=None, progress=False, seed=seed)  # fmt: skip
    rng = np.random.default_rng(seed)
    trials = task().batch(B, rng)
    net = dale_net()
    _, grads = loss_and_grad(net, trials, pre_gain=fixed * mod.sample(rng, 30, B)[..., None])
    net._mask_gradients(grads)
    np.testing.assert_array_equal(opt.grads[0]["W"], grads["W"])


def test_site_modulated_training_with_validation_resumes_bitwise(tmp_path):
    mod = fm.combine(fm.cell_types(E=fm.uniform(0.5, 2.0, switches=1), I=fm.uniform(0.8, 1.2)),
                     fm.uniform(0.7, 1.3, target="post"))  # fmt: skip
    options = dict(batch_size=6, progress=False, val_every=2, val_batch=6, seed=2,
                   modulation=mod)  # fmt: skip
    full = dale_net()
    h_full = fr.train.bptt(full, task(), iters=4, **options)
    ckpt = tmp_path / "run.npz"
    fr.train.bptt(dale_net(), task(), iters=2, checkpoint=ckpt, checkpoint_every=2, **options)
    resumed = dale_net()
    h_res = fr.train.bptt(resumed, task(), iters=4, resume=ckpt, **options)
    for name, value in full.params().items():
        np.testing.assert_array_equal(value, resumed.params()[name])
    np.testing.assert_array_equal(h_full.loss, h_res.loss)
    other = {**options, "modulation": fm.uniform(0.5, 2.0, target="post")}
    with pytest.raises(ValueError, match="gain|modulation"):
        fr.train.bptt(dale_net(), task(), iters=4, resume=ckpt, **other)


def test_training_under_site_modulation_keeps_dale_signs_and_the_mask():
    net = fr.RateRNN.random(N, 1, 1, g=1.2, tau=5.0, dt=1.0, seed=0, dale=0.8, p=0.5)
    zero = net.W == 0
    mod = fm.cell_types(E=fm.uniform(0.2, 3.0), I=fm.uniform(0.2, 3.0))
    fr.train.bptt(net, task(), iters=5, batch_size=6, lr=0.05, progress=False, val_every=None,
                  modulation=mod)  # fmt: skip
    assert np.all(net.W[zero] == 0)
    exc = net.cell_type > 0
    assert np.all(net.W[:, exc] >= 0) and np.all(net.W[:, ~exc] <= 0)


# ---------------------------------------------------------------------------------------------
# performance_vs_gain(target=...)


@pytest.mark.parametrize(
    "target, kwargs",
    [
        ("pre", lambda net, g: {"pre_gain": np.full(N, g)}),
        ("post_gain", lambda net, g: {"post_gain": np.full(N, g)}),
        ("neuron", lambda net, g: {"neuron_gain": np.full(N, g)}),
        ("E", lambda net, g: {"pre_gain": net.cell_gains(E=g, I=1.0)}),
        ("I", lambda net, g: {"pre_gain": net.cell_gains(E=1.0, I=g)}),
        ("post:E", lambda net, g: {"post_gain": net.cell_gains(E=g, I=1.0, site="post")}),
    ],
)
def test_performance_at_a_site_is_the_score_of_runs_with_the_explicit_gain(target, kwargs):
    net, t = dale_net(), task()
    gains = [0.5, 1.0, 1.7]
    res = fr.analysis.performance_vs_gain(net, t, gains, target=target, batch_size=8, batches=2,
                                          seed=3)  # fmt: skip
    r = np.random.default_rng(3)
    batches = [t.batch(8, r) for _ in range(2)]
    for i, g in enumerate(gains):
        acc = [t.score(net.run(tr.u, **kwargs(net, g)).y, tr) for tr in batches]
        np.testing.assert_array_equal(res.batch_accuracy[i], acc)
    assert res.target == fm.TARGET_ALIASES.get(target, target)
    assert res.accuracy[1] == pytest.approx(
        fr.analysis.performance_vs_gain(net, t, [1.0], batch_size=8, batches=2, seed=3).accuracy[0]
    )


def test_performance_takes_the_target_of_a_modulation_given_as_gains():
    net = dale_net()
    res = fr.analysis.performance_vs_gain(net, task(), fm.uniform(0.5, 2.0, target="I"),
                                          batch_size=4, batches=2)  # fmt: skip
    assert res.target == "pre:I" and len(res) == 11 and res.trained.target == "pre:I"
    assert "pre:I" in res.plot().axes[0].get_title()
    import matplotlib.pyplot as plt

    plt.close("all")


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_targets_name_the_argument():
    with pytest.raises(ValueError, match="target"):
        fm.uniform(0.5, 2.0, target="dendrite")
    with pytest.raises(ValueError, match="target"):
        fm.uniform(0.5, 2.0, target="gain:E")  # a global gain has no cell type
    with pytest.raises(TypeError, match="target"):
        fm.uniform(0.5, 2.0, target=3)
    with pytest.raises(ValueError, match="target"):
        fr.analysis.performance_vs_gain(dale_net(), task(), [1.0], target="soma")
    with pytest.raises(ValueError, match="site"):
        fm.cell_types(E=fm.uniform(0.5, 2), site="gain")
    with pytest.raises(TypeError, match="I"):
        fm.cell_types(I=(0.5, 2.0))
    with pytest.raises(TypeError, match="modulations"):
        fm.Combined((fm.uniform(0.5, 2), "pre"))


def test_cell_type_targets_on_a_network_without_cell_types_name_the_argument():
    options = dict(iters=1, batch_size=4, progress=False, val_every=None)
    with pytest.raises(ValueError, match="modulation.*cell types"):
        fr.train.bptt(plain_net(), task(), modulation=fm.uniform(0.5, 2, target="E"), **options)
    with pytest.raises(ValueError, match="gains.*cell types"):
        fr.analysis.performance_vs_gain(plain_net(), task(), [1.0], target="post:I")
    with pytest.raises(ValueError, match="modulation.*cell types"):
        fm.uniform(0.5, 2, target="I").gains(np.random.default_rng(0), 5, 2, plain_net())


def test_negative_gains_on_dale_networks_name_the_argument():
    options = dict(iters=1, batch_size=4, progress=False, val_every=None)
    for target in ("gain", "pre", "post", "E", "post:I"):
        with pytest.raises(ValueError, match="modulation.*Dale"):
            fr.train.bptt(dale_net(), task(), modulation=fm.uniform(-0.5, 2, target=target),
                          **options)  # fmt: skip
        with pytest.raises(ValueError, match="gains.*Dale"):
            fr.analysis.performance_vs_gain(dale_net(), task(), [-0.5, 1.0], target=target)
    # a callable that draws a negative gain is caught at the draw
    neg = fm.from_callable(lambda r: -1.0, target="pre")
    with pytest.raises(ValueError, match="modulation.*Dale"):
        fr.train.bptt(dale_net(), task(), modulation=neg, **options)
    # the slope of phi may be negative: no sign of a weight flips
    fr.train.bptt(dale_net(), task(), modulation=fm.uniform(-0.5, 2, target="neuron"), **options)
    # a network without cell types takes negative weight gains
    fr.train.bptt(plain_net(), task(), modulation=fm.uniform(-0.5, 2, target="pre"), **options)


def test_bad_shapes_and_models_name_the_argument():
    with pytest.raises(ValueError, match="modulation.*shape"):
        fm.site_gains(dale_net(), "pre", np.ones((2, 3, 4)), "modulation")
    options = dict(iters=1, batch_size=4, progress=False, val_every=None)
    lstm = fr.LSTM.random(8, 1, 1)
    with pytest.raises(ValueError, match="modulation.*pre_gain"):
        fr.train.bptt(lstm, task(), modulation=fm.uniform(0.5, 2, target="pre"), **options)
    with pytest.raises(TypeError, match="net.*post_gain"):
        fr.analysis.performance_vs_gain(lstm, task(), [1.0], target="post")
    with pytest.raises(TypeError, match="gains"):
        fr.analysis.performance_vs_gain(
            dale_net(), task(), fm.combine(fm.uniform(0.5, 2.0), fm.uniform(0.5, 2.0))
        )
    with pytest.raises(ValueError, match="pre_gain"):  # a fixed gain of the wrong shape
        fr.train.bptt(dale_net(), task(), modulation=fm.uniform(0.5, 2, target="pre"),
                      pre_gain=np.ones(N + 1), **options)  # fmt: skip
