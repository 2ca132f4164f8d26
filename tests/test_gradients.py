"""C++ BPTT (flexrnn.train.loss_and_grad) against finite differences and the NumPy reference.

Every entry of every parameter of every model is checked against central differences of the
C++ loss in float64, over forms, transfer functions, readouts, gains, noise and both losses;
the same gradients are compared with flexrnn.reference's backward pass, in float64 and in
float32 (where they must agree to float32 precision).
"""

from __future__ import annotations

from types import SimpleNamespace

import flexrnn as fr
import numpy as np
import pytest
from conftest import (
    FORMS,
    PHI_NAMES,
    READOUTS,
    check_finite_differences,
    gain_options,
    noise_options,
    numpy_seeds,
    raises_naming,
    random_low_rank_rnn,
    random_lstm,
    random_nmrnn,
    random_rate_rnn,
)
from flexrnn import reference as ref
from flexrnn.train import loss_and_grad
from hypothesis import assume, given
from hypothesis import strategies as st

REF_RTOL = 1e-9  # C++ vs reference in float64, relative to the largest gradient entry
F32_RTOL = 2e-3  # float32 C++ vs float64 reference, relative to the largest gradient entry

losses = st.sampled_from(["mse", "cross_entropy"])
models = st.sampled_from(["RateRNN", "LowRankRNN", "NMRNN", "LSTM"])


def random_trials(rng, T, B, n_in, n_out, loss, sparse_mask=True):
    u = rng.normal(0, 1, (T, B, n_in))
    if loss == "mse":
        target = rng.normal(0, 1, (T, B, n_out))
        mask = (rng.random((T, B, n_out)) < 0.6).astype(float) if sparse_mask else None
    else:
        target = rng.integers(0, n_out, (T, B))
        mask = (rng.random((T, B)) < 0.6).astype(float) if sparse_mask else None
    return SimpleNamespace(u=u, target=target, mask=mask)


def relu_safe(net, trials, **kwargs):
    """No relu argument within reach of the finite-difference step of its kink."""
    if getattr(net, "phi", "tanh") != "relu":
        return True
    out = net.run(trials.u, **{k: v for k, v in kwargs.items() if k != "loss"})
    return np.abs(out.x).min() > 1e-4


@given(
    seed=numpy_seeds,
    phi=st.sampled_from(PHI_NAMES),
    form=st.sampled_from(FORMS),
    readout=st.sampled_from(READOUTS),
    loss=losses,
    data=st.data(),
)
def test_rate_rnn_gradient_matches_finite_differences(seed, phi, form, readout, loss, data):
    rng = np.random.default_rng(seed)
    T, B, n = 5, 3, 4
    net = random_rate_rnn(rng, n, 2, 3, phi=phi, form=form, readout=readout, tau=3.0)
    trials = random_trials(rng, T, B, 2, 3, loss)
    kwargs = {**data.draw(gain_options(T, B, rng)), **data.draw(noise_options(rng)), "loss": loss}
    if data.draw(st.booleans()):
        kwargs["neuron_gain"] = rng.uniform(0.5, 1.5, n)
    # relu in form "rate": its kink is in the (unobserved) pre-activation, so finite
    # differences are not checked there; test_gradient_matches_reference covers it
    assume(not (phi == "relu" and form == "rate"))
    assume(relu_safe(net, trials, **kwargs))
    check_finite_differences(net, trials, **kwargs)


@given(seed=numpy_seeds, phi=st.sampled_from(["tanh", "softplus"]), loss=losses, data=st.data())
def test_low_rank_rnn_gradient_matches_finite_differences(seed, phi, loss, data):
    rng = np.random.default_rng(seed)
    T, B = 5, 3
    net = random_low_rank_rnn(
        rng, 5, 2, 2, 3, phi=phi, readout=data.draw(st.sampled_from(READOUTS))
    )
    trials = random_trials(rng, T, B, 2, 3, loss)
    kwargs = {**data.draw(gain_options(T, B, rng)), **data.draw(noise_options(rng)), "loss": loss}
    check_finite_differences(net, trials, **kwargs)


@given(seed=numpy_seeds, feedback=st.booleans(), n_scale=st.sampled_from([1.0, 5.0]), loss=losses)
def test_nmrnn_gradient_matches_finite_differences(seed, feedback, n_scale, loss):
    rng = np.random.default_rng(seed)
    net = random_nmrnn(rng, 5, 2, 3, 2, 3, n_scale=n_scale, feedback=feedback, tau_z=4.0)
    trials = random_trials(rng, 5, 3, 2, 3, loss)
    check_finite_differences(net, trials, loss=loss)


@given(seed=numpy_seeds, loss=losses)
def test_lstm_gradient_matches_finite_differences(seed, loss):
    rng = np.random.default_rng(seed)
    net = random_lstm(rng, 3, 2, 3)
    trials = random_trials(rng, 4, 2, 2, 3, loss)
    check_finite_differences(net, trials, loss=loss)


# ---------------------------------------------------------------------------------------------
# Against the NumPy reference backward, in float64 and float32.


def reference_grads(net, trials, loss, **kwargs):
    """flexrnn.reference's (loss, grads) for net, initial states summed over the batch."""
    p = {k: np.asarray(v, np.float64) for k, v in net.params().items()}
    u, target, mask = trials.u, trials.target, trials.mask
    if isinstance(net, fr.RateRNN):
        out = ref.rate_rnn_loss_and_grad(
            u, target, mask, p["W"], p["W_in"], p["b"], p["W_out"], p["b_out"], p["x0"],
            alpha=net.alpha, phi=net.phi, form=net.form, readout=net.readout, loss=loss, **kwargs,
        )  # fmt: skip
    elif isinstance(net, fr.LowRankRNN):
        out = ref.low_rank_rnn_loss_and_grad(
            u, target, mask, p["U"], p["V"], p["W_in"], p["b"], p["W_out"], p["b_out"], p["x0"],
            alpha=net.alpha, phi=net.phi, readout=net.readout, loss=loss, **kwargs,
        )  # fmt: skip
    elif isinstance(net, fr.NMRNN):
        names = ("W_z", "B_z", "b_z", "A_z", "c_z", "U", "V", "B_x", "C", "d", "x0", "z0")
        out = ref.nmrnn_loss_and_grad(
            u, target, mask, *(p[k] for k in names), W_zx=p.get("W_zx"),
            alpha_x=net.alpha_x, alpha_z=net.alpha_z, n_scale=net.n_scale, loss=loss,
        )  # fmt: skip
    else:
        names = ("W_ih", "W_hh", "b", "C", "d", "h0", "c0")
        out = ref.lstm_loss_and_grad(u, target, mask, *(p[k] for k in names), loss=loss)
    value, grads, _ = out
    return value, {
        k: g.sum(axis=0) if k in ("x0", "z0", "h0", "c0") else g for k, g in grads.items()
    }


def assert_grads_close(actual, expected, rtol, what):
    assert actual.keys() == expected.keys(), what
    scale = max(1e-12, *(float(np.abs(g).max()) for g in expected.values() if g.size))
    for name in expected:
        assert actual[name].shape == expected[name].shape, f"{what}: {name} shape"
        np.testing.assert_allclose(
            actual[name], expected[name], rtol=rtol, atol=rtol * scale, err_msg=f"{what}: {name}"
        )


def any_model(rng, kind, dtype):
    if kind == "RateRNN":
        phi, form, readout = (str(rng.choice(c)) for c in (PHI_NAMES, FORMS, READOUTS))
        return random_rate_rnn(rng, 7, 2, 3, phi=phi, form=form, readout=readout, dtype=dtype)
    if kind == "LowRankRNN":
        return random_low_rank_rnn(rng, 7, 2, 2, 3, dtype=dtype)
    if kind == "NMRNN":
        return random_nmrnn(rng, 7, 2, 3, 2, 3, feedback=bool(rng.integers(2)), dtype=dtype)
    return random_lstm(rng, 4, 2, 3, dtype=dtype)


@given(
    seed=numpy_seeds,
    kind=models,
    loss=losses,
    T=st.integers(1, 12),
    B=st.integers(1, 20),
)
def test_gradient_matches_reference(seed, kind, loss, T, B):
    rng = np.random.default_rng(seed)
    net = any_model(rng, kind, np.float64)
    trials = random_trials(rng, T, B, 2, 3, loss)
    value, grads = loss_and_grad(net, trials, loss=loss)
    ref_value, ref_grads = reference_grads(net, trials, loss)
    np.testing.assert_allclose(value, ref_value, rtol=REF_RTOL, atol=1e-14)
    assert_grads_close(grads, ref_grads, REF_RTOL, kind)


@given(
    seed=numpy_seeds, kind=st.sampled_from(["RateRNN", "LowRankRNN", "NMRNN", "LSTM"]), loss=losses
)
def test_float32_gradient_matches_float64(seed, kind, loss):
    rng = np.random.default_rng(seed)
    net64 = any_model(rng, kind, np.float64)
    net32 = net64.astype(np.float32)
    trials = random_trials(rng, 10, 6, 2, 3, loss)
    value, grads = loss_and_grad(net32, trials, loss=loss)
    assert all(g.dtype == np.float32 for g in grads.values())
    ref_value, ref_grads = loss_and_grad(net64, trials, loss=loss)
    np.testing.assert_allclose(value, ref_value, rtol=F32_RTOL)
    assert_grads_close(grads, ref_grads, F32_RTOL, f"{kind} float32")


def test_long_run_over_many_chunks_and_windows_matches_reference():
    """T and B large enough for several batch chunks and several accumulation windows."""
    rng = np.random.default_rng(3)
    for form in FORMS:
        net = random_rate_rnn(rng, 12, 3, 2, form=form, g=1.2)
        trials = random_trials(rng, 90, 37, 3, 2, "mse")
        kwargs = {"gain": rng.uniform(0.5, 1.5, (90, 37)), "noise_std": 0.2, "seed": 5}
        value, grads = loss_and_grad(net, trials, **kwargs)
        ref_value, ref_grads = reference_grads(net, trials, "mse", **kwargs)
        np.testing.assert_allclose(value, ref_value, rtol=REF_RTOL)
        assert_grads_close(grads, ref_grads, 1e-8, form)


def test_gradient_does_not_depend_on_thread_count(restore_threads):
    rng = np.random.default_rng(4)
    net = random_rate_rnn(rng, 40, 3, 2, dtype=np.float32)
    trials = random_trials(rng, 50, 33, 3, 2, "mse")
    results = []
    for threads in (1, 2, 3):
        fr.set_num_threads(threads)
        results.append(loss_and_grad(net, trials, noise_std=0.1))
    for value, grads in results[1:]:
        assert value == results[0][0]
        for name, g in grads.items():
            np.testing.assert_array_equal(g, results[0][1][name], err_msg=name)


# ---------------------------------------------------------------------------------------------
# Loss conventions and bad input.


def test_forward_output_and_loss_match_a_run():
    rng = np.random.default_rng(5)
    net = random_rate_rnn(rng, 8, 2, 2)
    trials = random_trials(rng, 6, 4, 2, 2, "mse")
    value, _, y = loss_and_grad(net, trials, return_output=True)
    np.testing.assert_array_equal(y, net.run(trials.u).y)
    expected = np.sum(trials.mask * (y - trials.target) ** 2) / trials.mask.sum()
    np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_mask_broadcasts_and_defaults_to_ones():
    rng = np.random.default_rng(6)
    net = random_rate_rnn(rng, 8, 2, 3)
    trials = random_trials(rng, 6, 4, 2, 3, "mse", sparse_mask=False)
    full = loss_and_grad(net, SimpleNamespace(u=trials.u, target=trials.target,
                                              mask=np.ones((6, 4, 3))))  # fmt: skip
    none = loss_and_grad(net, trials)
    column = loss_and_grad(net, SimpleNamespace(u=trials.u, target=trials.target,
                                                mask=np.ones((6, 4, 1))))  # fmt: skip
    for other in (none, column):
        assert other[0] == full[0]
        for name in full[1]:
            np.testing.assert_array_equal(other[1][name], full[1][name])


def test_zero_mask_gives_zero_loss_and_gradient():
    rng = np.random.default_rng(7)
    net = random_rate_rnn(rng, 5, 2, 2)
    trials = random_trials(rng, 4, 2, 2, 2, "mse")
    trials.mask = np.zeros((4, 2, 2))
    value, grads = loss_and_grad(net, trials)
    assert value == 0.0
    assert all(not g.any() for g in grads.values())


def test_loss_is_inferred_from_the_target_dtype():
    rng = np.random.default_rng(8)
    net = random_rate_rnn(rng, 5, 2, 3)
    trials = random_trials(rng, 4, 2, 2, 3, "cross_entropy")
    assert loss_and_grad(net, trials)[0] == loss_and_grad(net, trials, loss="cross_entropy")[0]


def test_bad_loss_arguments_name_the_argument():
    rng = np.random.default_rng(9)
    net = random_rate_rnn(rng, 5, 2, 3)
    trials = random_trials(rng, 4, 2, 2, 3, "cross_entropy")
    bad = SimpleNamespace(u=trials.u, target=np.full((4, 2), 3), mask=np.ones((4, 2)))
    with raises_naming("target"):
        loss_and_grad(net, bad)  # label 3 of 3 classes
    bad.mask[:] = 0
    loss_and_grad(net, bad)  # masked-out labels are ignored
    with raises_naming("mask"):
        loss_and_grad(net, SimpleNamespace(u=trials.u, target=trials.target, mask=np.ones(3)))
    with raises_naming("target"):
        loss_and_grad(net, SimpleNamespace(u=trials.u, target=np.ones((4, 2, 2)), mask=None))
    with raises_naming("loss"):
        loss_and_grad(net, trials, loss="hinge")
    with raises_naming("mask"):
        mask = np.ones((4, 2))
        mask[0, 0] = np.nan
        loss_and_grad(net, SimpleNamespace(u=trials.u, target=trials.target, mask=mask))
    with raises_naming("trials"):
        loss_and_grad(net, trials.u)
    with raises_naming("gain"):
        loss_and_grad(random_lstm(rng, 3, 2, 3), trials, gain=2.0)
    with raises_naming("u"):
        loss_and_grad(net, SimpleNamespace(u=np.ones((4, 2, 5)), target=trials.target, mask=None))


def test_divergence_raises_floating_point_error():
    rng = np.random.default_rng(10)
    net = random_rate_rnn(rng, 5, 2, 2, phi="identity", g=30.0, tau=1.0)
    trials = random_trials(rng, 400, 2, 2, 2, "mse")
    with pytest.raises(FloatingPointError, match="loss"):
        loss_and_grad(net, trials)
