"""Gains on the NM-RNN's low-rank recurrent term: gain[t] post[t] * (U diag(s) V^T (pre[t] *
tanh(x))) / n_scale, in run, loss_and_grad (BPTT), bptt and fixed points.

The C++ forward and gradients are checked against flexrnn.reference, against a network whose
factors carry constant gains explicitly, and against central differences of the C++ loss.
"""

from __future__ import annotations

from types import SimpleNamespace

import flexrnn as fr
import numpy as np
import pytest
from conftest import (
    DTYPES,
    assert_close,
    batches,
    check_finite_differences,
    dtypes,
    numpy_seeds,
    raises_naming,
    random_nmrnn,
    steps,
)
from flexrnn import reference as ref
from flexrnn.train import loss_and_grad
from hypothesis import given
from hypothesis import strategies as st

NAMES = ("W_z", "B_z", "b_z", "A_z", "c_z", "U", "V", "B_x", "C", "d", "x0", "z0")


def _neuron_gain(draw, rng, T, B, n):
    """None, or a per-neuron gain of one of the accepted shapes."""
    shape = draw(st.sampled_from([None, (n,), (T, 1, n), (1, B, n), (T, B, n), (B, n)]))
    return None if shape is None else rng.uniform(0.5, 1.5, shape)


@st.composite
def gains(draw, rng, T, B, n):
    """Any combination of gain (scalar, (T, B), (T, 1), (1, B)), pre_gain and post_gain."""
    options = {}
    mode = draw(st.sampled_from(["none", "scalar", "TB", "T1", "1B"]))
    if mode == "scalar":
        options["gain"] = float(rng.uniform(0.0, 1.5))
    elif mode != "none":
        options["gain"] = rng.uniform(0.0, 1.5, {"TB": (T, B), "T1": (T, 1), "1B": (1, B)}[mode])
    for name in ("pre_gain", "post_gain"):
        value = _neuron_gain(draw, rng, T, B, n)
        if value is not None:
            options[name] = value
    return options


@st.composite
def cases(draw, n_max=12):
    rng = np.random.default_rng(draw(numpy_seeds))
    T, B, n = draw(steps), draw(batches), draw(st.integers(1, n_max))
    rank = draw(st.integers(1, min(3, n)))
    net = random_nmrnn(
        rng, n, rank, draw(st.integers(1, 4)), 2, 2,
        n_scale=draw(st.sampled_from([1.0, float(n)])), feedback=draw(st.booleans()),
        dtype=draw(dtypes),
    )  # fmt: skip
    return net, rng.normal(0, 0.5, (T, B, 2)), draw(gains(rng, T, B, n)), rng


def _reference_args(net):
    p = {k: np.asarray(v, np.float64) for k, v in net.effective_params().items()}
    return [p[k] for k in NAMES], p.get("W_zx")


def _reference_grads(net, trials, **gain_kwargs):
    args, W_zx = _reference_args(net)
    value, grads, _ = ref.nmrnn_loss_and_grad(
        np.asarray(trials.u, np.float64), trials.target, trials.mask, *args, W_zx=W_zx,
        alpha_x=net.alpha_x, alpha_z=net.alpha_z, n_scale=net.n_scale, **gain_kwargs,
    )  # fmt: skip
    return value, {k: g.sum(axis=0) if k in ("x0", "z0") else g for k, g in grads.items()}


def _trials(rng, T, B, n_out=2):
    return SimpleNamespace(
        u=rng.normal(0, 1, (T, B, 2)),
        target=rng.normal(0, 1, (T, B, n_out)),
        mask=(rng.random((T, B, n_out)) < 0.7).astype(float),
    )


@given(cases())
def test_rollout_under_gains_matches_reference(case):
    net, u, options, _ = case
    out = net.run(u, **options)
    expected = ref.nmrnn(
        np.asarray(u, net.dtype), *(getattr(net, k) for k in NAMES),
        alpha_x=net.alpha_x, alpha_z=net.alpha_z, n_scale=net.n_scale, W_zx=net.W_zx,
        **{k: np.asarray(v, net.dtype) if np.ndim(v) else v for k, v in options.items()},
    )  # fmt: skip
    for key in ("x", "z", "s", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)


@given(cases())
def test_gradients_under_gains_match_reference(case):
    net, u, options, rng = case
    T, B = u.shape[:2]
    trials = _trials(rng, T, B)
    value, grads = loss_and_grad(net, trials, **options)
    ref_value, expected = _reference_grads(net, trials, **options)
    rtol = 1e-9 if net.dtype == np.float64 else 2e-3
    assert value == pytest.approx(ref_value, rel=rtol, abs=rtol)
    scale = max(1e-12, *(float(np.abs(g).max()) for g in expected.values() if g.size))
    assert grads.keys() == expected.keys()
    for name, g in expected.items():
        np.testing.assert_allclose(grads[name], g, rtol=rtol, atol=rtol * scale, err_msg=name)


@given(seed=numpy_seeds, feedback=st.booleans(), parametrize=st.sampled_from([None, "qr"]),
       data=st.data())  # fmt: skip
def test_every_gradient_under_gains_matches_finite_differences(seed, feedback, parametrize, data):
    rng = np.random.default_rng(seed)
    T, B, n = 5, 3, 5
    net = random_nmrnn(rng, n, 2, 3, 2, 2, feedback=feedback, tau_z=4.0)
    net.parametrize = parametrize
    trials = _trials(rng, T, B)
    options = data.draw(gains(rng, T, B, n))
    check_finite_differences(net, trials, **options)


@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_gains_equal_a_network_with_the_gains_in_its_factors(dtype):
    rng = np.random.default_rng(4)
    n, T, B = 9, 12, 4
    net = random_nmrnn(rng, n, 3, 4, 2, 2, feedback=True, dtype=dtype)
    g, pre, post = 0.7, rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, n)
    folded = net.copy()
    folded.U[...] = (g * post)[:, None] * net.U
    folded.V[...] = pre[:, None] * net.V
    u = rng.normal(0, 0.5, (T, B, 2))
    out = net.run(u, gain=g, pre_gain=pre, post_gain=post)
    expected = folded.run(u)
    for key in ("x", "z", "s", "y"):
        assert_close(getattr(out, key), getattr(expected, key), err_msg=key)


@pytest.mark.parametrize("parametrize", [None, "qr"])
def test_unit_gains_are_bitwise_the_run_without_gains(parametrize):
    rng = np.random.default_rng(7)
    n, T, B = 20, 15, 9
    net = random_nmrnn(rng, n, 3, 4, 2, 2, feedback=True)
    net.parametrize = parametrize
    trials = _trials(rng, T, B)
    ones = np.ones(n)
    plain = loss_and_grad(net, trials, return_output=True)
    unit = loss_and_grad(net, trials, gain=1.0, pre_gain=ones, post_gain=ones,
                         return_output=True)  # fmt: skip
    assert plain[0] == unit[0]
    np.testing.assert_array_equal(plain[2], unit[2])
    for name in plain[1]:
        np.testing.assert_array_equal(plain[1][name], unit[1][name], err_msg=name)


def test_gains_take_the_batch_major_layout_with_batch_first():
    rng = np.random.default_rng(2)
    n, T, B = 6, 8, 3
    net = random_nmrnn(rng, n, 2, 3, 2, 2)
    u = rng.normal(0, 0.5, (T, B, 2))
    gain, pre = rng.uniform(0.5, 1.5, (T, B)), rng.uniform(0.5, 1.5, (T, B, n))
    time_major = net.run(u, gain=gain, pre_gain=pre)
    batch_major = net.run(u.swapaxes(0, 1), gain=gain.T, pre_gain=pre.swapaxes(0, 1),
                          batch_first=True)  # fmt: skip
    np.testing.assert_array_equal(batch_major.y.swapaxes(0, 1), time_major.y)


def test_gains_act_on_the_low_rank_term_and_not_on_the_modulator():
    rng = np.random.default_rng(3)
    net = random_nmrnn(rng, 8, 2, 3, 2, 2)  # no feedback: z does not see x
    u = rng.normal(0, 0.5, (10, 2, 2))
    plain, zero = net.run(u), net.run(u, gain=0.0)
    np.testing.assert_array_equal(zero.z, plain.z)
    expected = ref.nmrnn(u, *(getattr(net, k) for k in NAMES), alpha_x=net.alpha_x,
                         alpha_z=net.alpha_z, n_scale=net.n_scale, s_clamp=np.zeros(2))  # fmt: skip
    assert_close(zero.x, expected["x"])  # gain 0 removes the recurrence, like s = 0
    assert np.abs(zero.x - plain.x).max() > 1e-3


def test_bad_gain_shapes_name_the_argument():
    rng = np.random.default_rng(0)
    net = random_nmrnn(rng, 5, 2, 3, 2, 2)
    u = rng.normal(0, 1, (4, 3, 2))
    trials = _trials(rng, 4, 3)
    bad_gains = [
        ("gain", np.ones((5, 3))),
        ("pre_gain", np.ones(4)),
        ("post_gain", np.ones((4, 2, 5))),
        ("pre_gain", np.full(5, np.nan)),
    ]
    for name, bad in bad_gains:
        with raises_naming(name):
            net.run(u, **{name: bad})
        with raises_naming(name):
            loss_and_grad(net, trials, **{name: bad})
    with raises_naming("neuron_gain"):
        loss_and_grad(net, trials, neuron_gain=np.ones(5))
    with raises_naming("pre_gain"):
        fr.analysis.fixed_points(net, n_init=2, pre_gain=np.ones(3))


def test_fixed_points_under_gains_are_fixed_points_of_the_gained_run():
    rng = np.random.default_rng(5)
    n, n_mod = 10, 3
    net = random_nmrnn(rng, n, 2, n_mod, 2, 1)
    net.V *= 3.0  # a recurrence strong enough to move the fixed points
    u_const = np.array([0.5, -0.3])
    g, pre, post = 1.4, rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, n)
    fps = fr.analysis.fixed_points(
        net, u_const, n_init=20, gain=g, pre_gain=pre, post_gain=post, seed=1
    )
    X = fps.x[fps.kind == "fixed"]
    assert len(X) > 0
    u = np.broadcast_to(u_const, (1, len(X), 2))
    out = net.run(u, x0=X[:, :n], z0=X[:, n:], gain=g, pre_gain=pre, post_gain=post)
    np.testing.assert_allclose(out.x[0], X[:, :n], atol=1e-6)
    np.testing.assert_allclose(out.z[0], X[:, n:], atol=1e-6)
    # the gains matter: the same states are not fixed without them
    plain = net.run(u, x0=X[:, :n], z0=X[:, n:])
    assert np.abs(plain.x[0] - X[:, :n]).max() > 1e-4


def test_bptt_trains_an_nmrnn_under_gains_and_modulation():
    task = fr.tasks.MeasureWaitGo()
    net = fr.NMRNN.random(12, 2, 3, task.n_in, task.n_out, seed=0)
    runs = {}
    for key, options in {
        "plain": {},
        "pre": {"pre_gain": np.full(12, 0.5)},
        "modulated": {"modulation": fr.modulation.uniform(0.5, 1.5)},
    }.items():
        trained = net.copy()
        fr.train.bptt(trained, task, iters=3, batch_size=4, lr=1e-2, val_every=2, val_batch=4,
                      seed=0, progress=False, **options)  # fmt: skip
        runs[key] = trained.U
    assert not np.array_equal(runs["plain"], runs["pre"])
    assert not np.array_equal(runs["plain"], runs["modulated"])
