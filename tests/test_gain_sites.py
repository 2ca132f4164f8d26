"""Where a gain acts: pre_gain (W diag(g)), post_gain (diag(g) W), a time-varying neuron_gain
and the global gain, composed in one run of RateRNN (both forms) and LowRankRNN.

The C++ forward and backward are checked against flexrnn.reference, against networks whose
modulated matrix is formed explicitly (and run with no gain), and the gradients of the gains
(loss_and_grad(wrt=...)) against central differences of the C++ loss.
"""

from __future__ import annotations

from types import SimpleNamespace

import flexrnn as fr
import numpy as np
import pytest
from conftest import (
    DTYPES,
    FORMS,
    assert_close,
    batches,
    dtypes,
    forms,
    gain_options,
    noise_options,
    numpy_seeds,
    phis,
    raises_naming,
    random_low_rank_rnn,
    random_rate_rnn,
    readouts,
    reference_low_rank_rnn,
    reference_rate_rnn,
    sizes,
    steps,
)
from flexrnn import reference as ref
from flexrnn.train import loss_and_grad
from hypothesis import given
from hypothesis import strategies as st

GAINS = ("neuron_gain", "pre_gain", "post_gain")
REF_RTOL = 1e-9  # C++ vs reference gradients in float64, relative to the largest entry


def per_neuron_gain(draw, rng, T, B, n):
    """None, or a gain of one of the accepted shapes: (n,), (T, 1, n), (1, B, n), (T, B, n),
    (B, n) (broadcast over steps)."""
    shape = draw(st.sampled_from([None, (n,), (T, 1, n), (1, B, n), (T, B, n), (B, n)]))
    return None if shape is None else rng.uniform(0.5, 1.5, shape)


@st.composite
def modulated_cases(draw, low_rank=False):
    """A random RateRNN (or LowRankRNN), inputs and every gain drawn independently."""
    rng = np.random.default_rng(draw(numpy_seeds))
    T, B, n = draw(steps), draw(batches), draw(sizes)
    kwargs = {"phi": draw(phis), "readout": draw(readouts), "dtype": draw(dtypes)}
    if low_rank:
        net = random_low_rank_rnn(rng, n, draw(st.integers(1, 3)), 2, 2, **kwargs)
    else:
        net = random_rate_rnn(rng, n, 2, 2, g=0.8, form=draw(forms), **kwargs)
    u = rng.normal(0, 0.5, (T, B, 2))
    options = draw(gain_options(T, B, rng))
    for name in GAINS:
        options[name] = per_neuron_gain(draw, rng, T, B, n)
    options.update(draw(noise_options(rng)))
    return net, u, options


def reference_of(net, u, **options):
    if isinstance(net, fr.LowRankRNN):
        return reference_low_rank_rnn(net, u, **options)
    return reference_rate_rnn(net, u, **options)


@given(modulated_cases())
def test_rate_rnn_with_every_gain_matches_reference(case):
    net, u, options = case
    out = net.run(u, batch_first=False, **options)
    expected = reference_of(net, u, **options)
    for key in ("x", "r", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)


@given(modulated_cases(low_rank=True))
def test_low_rank_rnn_with_every_gain_matches_reference(case):
    net, u, options = case
    out = net.run(u, batch_first=False, **options)
    expected = reference_of(net, u, **options)
    for key in ("x", "r", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)


def _explicit(net, pre, post):
    """The same network with the modulated matrix formed: diag(post) W diag(pre) (U, V scaled
    for a LowRankRNN: diag(post) U (diag(pre) V)^T / n)."""
    other = net.copy()
    if isinstance(net, fr.LowRankRNN):
        other.U = (post[:, None] * net.U).astype(net.dtype)
        other.V = (pre[:, None] * net.V).astype(net.dtype)
    else:
        other.W = (post[:, None] * net.W * pre[None, :]).astype(net.dtype)
    return other


@pytest.mark.parametrize("kind", ["current", "rate", "low_rank"])
@given(seed=numpy_seeds, n=sizes, which=st.sampled_from(["pre", "post", "both"]))
def test_constant_gains_equal_the_explicitly_modulated_matrix(kind, seed, n, which):
    rng = np.random.default_rng(seed)
    if kind == "low_rank":
        net = random_low_rank_rnn(rng, n, 2, 2, 1)
    else:
        net = random_rate_rnn(rng, n, 2, 1, g=0.9, form=kind)
    u = rng.normal(0, 0.5, (12, 3, 2))
    pre = rng.uniform(0.3, 2.0, n) if which != "post" else np.ones(n)
    post = rng.uniform(0.3, 2.0, n) if which != "pre" else np.ones(n)
    out = net.run(u, pre_gain=pre, post_gain=post, batch_first=False)
    expected = _explicit(net, pre, post).run(u, batch_first=False)
    for key in ("x", "r", "y"):
        np.testing.assert_allclose(getattr(out, key), getattr(expected, key), atol=1e-12)


@pytest.mark.parametrize("form", FORMS)
def test_gains_switched_in_time_equal_two_runs_with_explicit_matrices(form):
    # pre/post gains that change at step k: the first k steps are a network with
    # diag(post1) W diag(pre1), the rest one with diag(post2) W diag(pre2) from where it was
    rng = np.random.default_rng(3)
    n, T, k = 15, 20, 8
    net = random_rate_rnn(rng, n, 2, 1, g=1.2, form=form)
    u = rng.normal(0, 0.5, (T, 4, 2))
    pre, post = rng.uniform(0.5, 1.5, (2, n)), rng.uniform(0.5, 1.5, (2, n))
    switch = (np.arange(T) >= k).astype(int)
    out = net.run(
        u, pre_gain=pre[switch][:, None], post_gain=post[switch][:, None], batch_first=False
    )
    first = _explicit(net, pre[0], post[0]).run(u[:k], batch_first=False)
    second = _explicit(net, pre[1], post[1]).run(u[k:], x0=first.x[-1], batch_first=False)
    np.testing.assert_allclose(out.x, np.concatenate([first.x, second.x]), atol=1e-12)


def test_gains_given_batch_first_are_read_batch_major():
    rng = np.random.default_rng(0)
    net = random_rate_rnn(rng, 6, 2, 1)
    u = rng.normal(0, 0.5, (3, 5, 2))  # (B, T, n_in)
    post = rng.uniform(0.5, 1.5, (3, 5, 6))  # (B, T, n)
    pre = rng.uniform(0.5, 1.5, (3, 1, 6))  # per trial
    out = net.run(u, pre_gain=pre, post_gain=post, batch_first=True)
    expected = net.run(
        u.swapaxes(0, 1),
        pre_gain=pre.swapaxes(0, 1),
        post_gain=post.swapaxes(0, 1),
        batch_first=False,
    )
    np.testing.assert_array_equal(out.x, expected.x.swapaxes(0, 1))


# --- gradients -------------------------------------------------------------------------------


def _trials(rng, T, B, n_out):
    target = rng.normal(0, 1, (T, B, n_out))
    mask = (rng.random((T, B, n_out)) < 0.7).astype(float)
    return SimpleNamespace(u=rng.normal(0, 1, (T, B, 2)), target=target, mask=mask)


def _reference_grads(net, trials, options, wrt):
    common = dict(alpha=net.alpha, phi=net.phi, readout=net.readout, wrt=wrt, **options)
    u, target, mask = trials.u, trials.target, trials.mask
    if isinstance(net, fr.LowRankRNN):
        p = (net.U, net.V, net.W_in, net.b, net.W_out, net.b_out, net.x0)
        return ref.low_rank_rnn_loss_and_grad(u, target, mask, *p, **common)
    p = (net.W, net.W_in, net.b, net.W_out, net.b_out, net.x0)
    return ref.rate_rnn_loss_and_grad(u, target, mask, *p, form=net.form, **common)


@pytest.mark.parametrize("low_rank", [False, True])
@given(data=st.data())
def test_gradients_under_every_gain_match_reference(low_rank, data):
    net, u, options = data.draw(modulated_cases(low_rank=low_rank))
    net = net.astype(np.float64)  # float32: test_gain_gradients_of_float32_track_float64
    rng = np.random.default_rng(0)
    T, B = u.shape[:2]
    trials = _trials(rng, T, B, net.n_out)
    trials.u = u
    wrt = ("gain", "pre_gain", "post_gain", "neuron_gain")
    value, grads = loss_and_grad(net, trials, wrt=wrt, **options)
    ref_value, ref_grads, _ = _reference_grads(net, trials, options, wrt)
    assert abs(value - ref_value) <= 1e-9 * max(1.0, abs(ref_value))
    ref_grads["x0"] = ref_grads["x0"].sum(axis=0)
    n = net.n
    shapes = {
        "gain": np.shape(options.get("gain", 1.0)),
        "pre_gain": (n,) if options["pre_gain"] is None else options["pre_gain"].shape,
        "post_gain": (n,) if options["post_gain"] is None else options["post_gain"].shape,
        "neuron_gain": (n,) if options["neuron_gain"] is None else options["neuron_gain"].shape,
    }
    for name, g in grads.items():
        expected = ref_grads[name]
        if name in wrt:
            expected = _sum_per_step(expected, shapes[name])
        assert np.shape(g) == np.shape(expected), name
        scale = max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(g, expected, rtol=0, atol=REF_RTOL * scale, err_msg=name)


def _sum_per_step(full, shape):
    """Sum a (T, B[, n]) per-step gradient to the shape of the gain as given."""
    lead = full.ndim - len(shape)
    g = full.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    g = g.sum(axis=axes, keepdims=True) if axes else g
    return g.reshape(shape) if shape else float(g)


def _central_difference(loss, value, index, step=1e-6):
    plus, minus = value.copy(), value.copy()
    plus[index] += step
    minus[index] -= step
    return (loss(plus) - loss(minus)) / (2 * step)


@pytest.mark.parametrize("kind", ["current", "rate", "low_rank"])
@pytest.mark.parametrize("phi", ["tanh", "softplus"])
@pytest.mark.parametrize("readout", ["rate", "state"])
def test_gain_gradients_match_finite_differences(kind, phi, readout):
    rng = np.random.default_rng(7)
    n, T, B = 5, 6, 3
    if kind == "low_rank":
        net = random_low_rank_rnn(rng, n, 2, 2, 2, phi=phi, readout=readout)
    else:
        net = random_rate_rnn(rng, n, 2, 2, g=1.0, form=kind, phi=phi, readout=readout)
    trials = _trials(rng, T, B, 2)
    gains = {
        "gain": rng.uniform(0.5, 1.5, (T, 1)),
        "pre_gain": rng.uniform(0.5, 1.5, (n,)),
        "post_gain": rng.uniform(0.5, 1.5, (T, B, n)),
        "neuron_gain": rng.uniform(0.5, 1.5, (T, 1, n)),
    }
    value, grads = loss_and_grad(net, trials, wrt=tuple(gains), **gains)
    scale = max(1.0, abs(value), *(float(np.abs(grads[k]).max()) for k in gains))
    for name, given_value in gains.items():

        def loss(v, name=name):
            return loss_and_grad(net, trials, **{**gains, name: v})[0]

        fd = np.zeros_like(given_value)
        for index in np.ndindex(given_value.shape):
            fd[index] = _central_difference(loss, given_value, index)
        np.testing.assert_allclose(grads[name], fd, rtol=1e-5, atol=1e-7 * scale, err_msg=name)
    # every parameter under the same modulation
    _, param_grads = loss_and_grad(net, trials, **gains)
    for name, param in net.params().items():
        fd = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            original = param[index]
            param[index] = original + 1e-6
            up = loss_and_grad(net, trials, **gains)[0]
            param[index] = original - 1e-6
            down = loss_and_grad(net, trials, **gains)[0]
            param[index] = original
            fd[index] = (up - down) / 2e-6
        np.testing.assert_allclose(
            param_grads[name], fd, rtol=1e-5, atol=1e-7 * scale, err_msg=name
        )


def test_gradient_of_a_scalar_gain_is_a_float_and_of_absent_gains_per_neuron():
    rng = np.random.default_rng(1)
    net = random_rate_rnn(rng, 4, 2, 1)
    trials = _trials(rng, 5, 2, 1)
    wrt = ("gain", "pre_gain", "post_gain", "neuron_gain")
    _, grads = loss_and_grad(net, trials, gain=1.3, wrt=wrt)
    assert isinstance(grads["gain"], float)
    assert grads["pre_gain"].shape == grads["post_gain"].shape == grads["neuron_gain"].shape
    assert grads["pre_gain"].shape == (4,)
    # the recurrent drive is gain * W diag(c 1) = (gain c) W: d/dc at c = 1 (the per-neuron
    # gradient at ones, summed) is gain * dL/dgain, through pre or post alike
    assert np.isclose(1.3 * grads["gain"], grads["pre_gain"].sum(), rtol=1e-10)
    assert np.isclose(1.3 * grads["gain"], grads["post_gain"].sum(), rtol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gain_gradients_of_float32_track_float64(dtype):
    rng = np.random.default_rng(2)
    net = random_rate_rnn(rng, 8, 2, 2, dtype=dtype)
    trials = _trials(rng, 10, 3, 2)
    pre, post = rng.uniform(0.5, 1.5, 8), rng.uniform(0.5, 1.5, (10, 1, 8))
    wrt = ("pre_gain", "post_gain", "gain")
    _, grads = loss_and_grad(net, trials, pre_gain=pre, post_gain=post, wrt=wrt)
    _, exact = loss_and_grad(net.astype(np.float64), trials, pre_gain=pre, post_gain=post, wrt=wrt)
    for name in wrt:
        assert np.asarray(grads[name]).dtype == np.dtype(dtype) or name == "gain"
        scale = float(np.max(np.abs(exact[name])))
        np.testing.assert_allclose(grads[name], exact[name], atol=2e-3 * scale, err_msg=name)


def test_unknown_gradient_name_is_reported():
    rng = np.random.default_rng(0)
    net = random_rate_rnn(rng, 4, 2, 1)
    with raises_naming("wrt", ValueError):
        loss_and_grad(net, _trials(rng, 3, 2, 1), wrt=("W_gain",))


def test_gain_gradients_of_a_network_without_gains_are_refused():
    rng = np.random.default_rng(0)
    net = fr.LSTM.random(n=4, n_in=2, n_out=1, seed=0)
    with raises_naming("wrt", ValueError):
        loss_and_grad(net, _trials(rng, 3, 2, 1), wrt=("pre_gain",))
    with raises_naming("pre_gain", ValueError):
        loss_and_grad(net, _trials(rng, 3, 2, 1), pre_gain=np.ones(4))


# --- training --------------------------------------------------------------------------------


@pytest.mark.parametrize("low_rank", [False, True])
def test_bptt_trains_under_the_given_pre_and_post_gains(low_rank):
    # the first loss of a run (before any update) is the modulated network's, i.e. that of
    # the network whose matrix is formed explicitly; the unmodulated one differs
    rng = np.random.default_rng(4)
    n = 12
    if low_rank:
        net = random_low_rank_rnn(rng, n, 2, 1, 1)
    else:
        net = random_rate_rnn(rng, n, 1, 1, g=1.2)
    pre, post = rng.uniform(0.3, 2.0, n), rng.uniform(0.3, 2.0, n)
    task = fr.tasks.PerceptualDecision()
    options = dict(iters=2, batch_size=8, lr=1e-3, val_every=None, progress=False, seed=5)
    modulated = fr.train.bptt(net.copy(), task, pre_gain=pre, post_gain=post, **options)
    explicit = fr.train.bptt(_explicit(net, pre, post), task, **options)
    plain = fr.train.bptt(net.copy(), task, **options)
    assert np.isclose(modulated.loss[0], explicit.loss[0], rtol=1e-10)
    assert not np.isclose(modulated.loss[0], plain.loss[0], rtol=1e-6)


def test_bptt_refuses_gains_of_the_wrong_shape_or_model():
    rng = np.random.default_rng(0)
    net = random_rate_rnn(rng, 6, 1, 1)
    task = fr.tasks.PerceptualDecision()
    with raises_naming("pre_gain", ValueError):
        fr.train.bptt(net, task, iters=1, pre_gain=np.ones(5), progress=False)
    with raises_naming("post_gain", ValueError):
        fr.train.bptt(net, task, iters=1, post_gain=[1.0] * 5 + [np.nan], progress=False)
    lstm = fr.LSTM.random(n=4, n_in=1, n_out=1, seed=0)
    with raises_naming("pre_gain", ValueError):
        fr.train.bptt(lstm, task, iters=1, pre_gain=np.ones(4), progress=False)


# --- dynamics: fixed points, Lyapunov spectra, gain sweeps --------------------------------------


@pytest.mark.parametrize("kind", ["current", "rate", "low_rank"])
def test_fixed_points_under_site_gains_are_those_of_the_explicit_matrix(kind):
    rng = np.random.default_rng(11)
    n = 10
    if kind == "low_rank":
        net = random_low_rank_rnn(rng, n, 2, 1, 1, g=2.0)
    else:
        net = random_rate_rnn(rng, n, 1, 1, g=1.8, form=kind)
    pre, post = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, n)
    options = dict(u_const=[0.3], n_init=20, seed=2)
    found = fr.analysis.fixed_points(net, pre_gain=pre, post_gain=post, **options)
    expected = fr.analysis.fixed_points(_explicit(net, pre, post), **options)
    assert len(found) == len(expected) > 0
    np.testing.assert_allclose(found.x, expected.x, atol=1e-8)
    # and they are fixed points of the modulated rollout
    u = np.full((1, len(found), 1), 0.3)
    step = net.run(u, x0=found.x, pre_gain=pre, post_gain=post, batch_first=False)
    np.testing.assert_allclose(step.x[0], found.x, atol=1e-6)


@pytest.mark.parametrize("low_rank", [False, True])
def test_lyapunov_spectrum_and_gain_sweep_under_site_gains_match_the_explicit_matrix(low_rank):
    rng = np.random.default_rng(12)
    n = 30
    if low_rank:
        net = random_low_rank_rnn(rng, n, 3, 1, 1, g=1.5)
    else:
        net = random_rate_rnn(rng, n, 1, 1, g=1.5, tau=5.0)
    pre, post = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, n)
    gains = [0.5, 1.5, 2.5]
    kw = dict(k=3, steps=400, transient=100, gain=gains)
    found = fr.analysis.lyapunov_spectrum(net, pre_gain=pre, post_gain=post, **kw)
    explicit = _explicit(net, pre, post)
    np.testing.assert_allclose(found, fr.analysis.lyapunov_spectrum(explicit, **kw), atol=1e-9)
    kw = dict(steps=200, transient=100)
    sweep = fr.analysis.gain_sweep(net, gains, pre_gain=pre, post_gain=post, **kw)
    expected = fr.analysis.gain_sweep(explicit, gains, **kw)
    np.testing.assert_allclose(sweep.largest_exponent, expected.largest_exponent, atol=1e-9)
    assert list(sweep.labels) == list(expected.labels)


def test_dynamics_refuse_time_varying_or_misshapen_site_gains():
    rng = np.random.default_rng(0)
    net = random_rate_rnn(rng, 6, 1, 1)
    with raises_naming("pre_gain", ValueError):
        fr.analysis.lyapunov_spectrum(net, k=2, steps=10, transient=0, pre_gain=np.ones((3, 6)))
    with raises_naming("post_gain", ValueError):
        fr.analysis.fixed_points(net, n_init=2, post_gain=np.ones(5))
    nm = fr.NMRNN.random(n=6, rank=1, n_mod=2, n_in=1, n_out=1, seed=0)
    with raises_naming("pre_gain", ValueError):  # an NMRNN's map takes constant (n,) gains
        fr.analysis.fixed_points(nm, n_init=2, pre_gain=np.ones((3, 6)))


@pytest.mark.parametrize("mode", ["target", "task"])
def test_force_under_site_gains_trains_the_readout_of_the_explicit_matrix(mode):
    rng = np.random.default_rng(13)
    n = 20
    net = random_rate_rnn(rng, n, 1, 1, g=1.3)
    pre, post = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, n)
    if mode == "target":
        data = np.sin(np.arange(200) / 10.0)
        options = dict(epochs=1, chunk=100, progress=False, seed=1)
    else:
        data = fr.tasks.PerceptualDecision()
        options = dict(iters=3, batch_size=4, val_every=3, val_batch=8, progress=False, seed=1)
    W = net.W.copy()
    explicit = _explicit(net, pre, post)  # a copy, before training
    hist = fr.train.force(net, data, pre_gain=pre, post_gain=post, **options)
    expected = fr.train.force(explicit, data, **options)
    np.testing.assert_array_equal(net.W, W)  # W is not trained, the gains are not folded in
    np.testing.assert_allclose(net.W_out, explicit.W_out, atol=1e-10)
    np.testing.assert_allclose(hist.P, expected.P, atol=1e-10)
    y, _ = fr.train.feedback_run(net, hist.W_fb, T=30, pre_gain=pre, post_gain=post)
    y_explicit, _ = fr.train.feedback_run(explicit, hist.W_fb, T=30)
    np.testing.assert_allclose(y, y_explicit, atol=1e-10)


# --- E/I networks ----------------------------------------------------------------------------


def test_cell_type_gains_act_as_pre_and_post_gains():
    net = fr.RateRNN.random(n=40, n_in=1, n_out=1, dale=0.8, seed=3)
    u = np.random.default_rng(0).normal(0, 0.5, (15, 2, 1))
    pre = net.cell_gains(E=1.2, I=0.8)
    post = net.cell_gains(E=0.9, I=1.5, site="post")
    out = net.run(u, pre_gain=pre, post_gain=post, batch_first=False)
    expected = _explicit(net, pre, post).run(u, batch_first=False)
    np.testing.assert_allclose(out.x, expected.x, atol=1e-12)


@pytest.mark.parametrize("gain", ["gain", "pre_gain", "post_gain"])
def test_negative_gain_on_a_dale_network_is_reported(gain):
    net = fr.RateRNN.random(n=10, n_in=1, n_out=1, dale=0.8, seed=0)
    u = np.zeros((4, 2, 1))
    value = np.ones((4, 1, 10)) if gain != "gain" else np.ones((4, 2))
    value[1, 0, ...] = -0.5
    with raises_naming(gain, ValueError):
        net.run(u, **{gain: value}, batch_first=False)
    if gain == "gain":
        with raises_naming("gain", ValueError):
            net.run(u, gain=-1.0, batch_first=False)
    # without cell types a negative gain is a valid modulation
    plain = fr.RateRNN.random(n=10, n_in=1, n_out=1, seed=0)
    plain.run(u, **{gain: value}, batch_first=False)
