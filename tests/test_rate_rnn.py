"""RateRNN: the C++ rollout against flexrnn.reference, and invariants with closed forms."""

import flexrnn as fr
import numpy as np
import pytest
from conftest import (
    DTYPES,
    FORMS,
    PHI_NAMES,
    READOUTS,
    assert_close,
    assert_same_dtype_and_shape,
    batches,
    dtypes,
    forms,
    gain_options,
    initial_state,
    input_sizes,
    noise_options,
    numpy_seeds,
    output_sizes,
    phis,
    random_rate_rnn,
    readouts,
    reference_rate_rnn,
    sizes,
    steps,
    taus,
)
from hypothesis import given
from hypothesis import strategies as st


@st.composite
def rate_rnn_cases(draw):
    """A random RateRNN, inputs and run options (every phi, form, readout, gain mode, noise)."""
    rng = np.random.default_rng(draw(numpy_seeds))
    T, B, n = draw(steps), draw(batches), draw(sizes)
    n_in, n_out = draw(input_sizes), draw(output_sizes)
    net = random_rate_rnn(
        rng,
        n,
        n_in,
        n_out,
        g=draw(st.floats(0.0, 0.8)),
        tau=draw(taus),
        phi=draw(phis),
        form=draw(forms),
        readout=draw(readouts),
        dtype=draw(dtypes),
    )
    u = rng.normal(0, 0.5, (T, B, n_in))
    options = draw(gain_options(T, B, rng))
    if draw(st.booleans()):
        options["neuron_gain"] = rng.uniform(0.5, 1.25, n)
    options.update(draw(noise_options(rng)))
    x0 = draw(initial_state(rng, B, n))
    return net, u, x0, options


@given(rate_rnn_cases())
def test_rollout_matches_reference(case):
    net, u, x0, options = case
    T, B = u.shape[:2]
    out = net.run(u, x0=x0, **options)
    expected = reference_rate_rnn(net, u, x0=x0, **options)
    assert_same_dtype_and_shape(
        vars(out), net.dtype, {"x": (T, B, net.n), "r": (T, B, net.n), "y": (T, B, net.n_out)}
    )
    for key in ("x", "r", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)
    # outputs only: the states never stored (the same arithmetic; Eigen's reductions may round
    # differently at other buffer alignments)
    only = net.run(u, x0=x0, states=False, **options)
    assert only.x is None and only.r is None
    assert_close(only.y, out.y, err_msg="y, states=False")
    assert_close(net.outputs(u, x0=x0, **options), out.y, err_msg="outputs")


@pytest.mark.parametrize("n", [20, 300])  # batch chunks of 8 rows (n < 256) and 32 (n >= 256)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rollout_matches_reference_over_several_batch_chunks(n, form, dtype):
    rng = np.random.default_rng(n)
    T, B, n_in = 6, 45, 3  # 45 = several full chunks and a ragged last one
    net = random_rate_rnn(rng, n, n_in, 2, g=0.8, form=form, dtype=dtype)
    u = rng.normal(0, 0.5, (T, B, n_in))
    options = {
        "x0": rng.normal(0, 0.5, (B, n)),
        "gain": rng.uniform(0.5, 1.2, (T, B)),
        "neuron_gain": rng.uniform(0.5, 1.2, n),
        "noise_std": 0.1,
        "seed": 3,
    }
    out = net.run(u, **options)
    expected = reference_rate_rnn(net, u, **options)
    for key in ("x", "r", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)
    assert_close(net.outputs(u, **options), out.y, err_msg="outputs")  # per-chunk state buffers
    batch_major = {**options, "gain": options["gain"].T}
    assert_close(net.run(u.swapaxes(0, 1), states=False, batch_first=True, **batch_major).y,
                 out.y.swapaxes(0, 1), err_msg="batch_first")  # fmt: skip


def test_states_must_be_a_boolean():
    net = random_rate_rnn(np.random.default_rng(0), 4, 1, 1)
    with pytest.raises(TypeError, match="states"):
        net.run(np.zeros((3, 2, 1)), states="no")


def _zero_network(n, n_in, n_out, tau, phi, form, dtype, rng):
    return fr.RateRNN(
        W=np.zeros((n, n)),
        W_in=rng.normal(size=(n, n_in)),
        W_out=rng.normal(size=(n_out, n)),
        b_out=rng.normal(size=n_out),
        x0=rng.normal(size=n),
        tau=tau,
        phi=phi,
        form=form,
        dtype=dtype,
    )


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("phi", ["tanh", "relu", "identity"])  # phi(0) = 0 for the rate form
def test_zero_weights_decay_geometrically(form, dtype, phi):
    rng = np.random.default_rng(0)
    T, B, n, tau = 40, 3, 7, 4.0
    net = _zero_network(n, 2, 2, tau, phi, form, dtype, rng)
    x0 = rng.normal(size=(B, n))
    out = net.run(np.zeros((T, B, 2)), x0=x0)
    t = np.arange(1, T + 1)[:, None, None]
    expected = (1 - 1 / tau) ** t * x0
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(out.x, expected, rtol=4 * T * eps, atol=0)
    phi_x = fr.reference.phi(phi, out.x)
    assert_close(out.y, phi_x @ net.W_out.T + net.b_out)


@pytest.mark.parametrize("phi", ["softplus", "shifted_tanh"])
def test_zero_weights_in_rate_form_relax_to_phi_of_zero(phi):
    # phi(0) != 0: x[t] = (1-alpha)^t x0 + (1 - (1-alpha)^t) phi(0)
    rng = np.random.default_rng(1)
    T, B, n, tau = 40, 2, 5, 4.0
    net = _zero_network(n, 1, 1, tau, phi, "rate", np.float64, rng)
    x0 = rng.normal(size=(B, n))
    out = net.run(np.zeros((T, B, 1)), x0=x0)
    decay = (1 - 1 / tau) ** np.arange(1, T + 1)[:, None, None]
    phi0 = fr.reference.phi(phi, 0.0)
    np.testing.assert_allclose(out.x, decay * x0 + (1 - decay) * phi0, rtol=1e-13, atol=1e-14)


def _linear_network(rng, n, form, radius=0.9, tau=3.0, n_in=0):
    """identity-phi network whose W has spectral radius ``radius``, zero bias."""
    W = rng.normal(size=(n, n))
    W *= radius / np.max(np.abs(np.linalg.eigvals(W)))
    return fr.RateRNN(
        W=W,
        W_in=rng.normal(size=(n, n_in)),
        W_out=rng.normal(size=(2, n)),
        tau=tau,
        phi="identity",
        form=form,
        readout="state",
    )


@pytest.mark.parametrize("form", FORMS)
@given(seed=numpy_seeds, n=st.integers(1, 20), gain=st.floats(0.0, 1.1))
def test_linear_network_equals_matrix_power(form, seed, n, gain):
    rng = np.random.default_rng(seed)
    net = _linear_network(rng, n, form)
    T, B = 25, 3
    x0 = rng.normal(size=(B, n))
    out = net.run(np.zeros((T, B, 0)), x0=x0, gain=gain)
    M = (1 - net.alpha) * np.eye(n) + net.alpha * gain * net.W
    for t in range(T):
        expected = x0 @ np.linalg.matrix_power(M, t + 1).T
        np.testing.assert_allclose(out.x[t], expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.y, out.x @ net.W_out.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("form", FORMS)
def test_neuron_gain_scales_phi_argument_in_linear_network(form):
    # current form: W phi(ng x) = W diag(ng) x; rate form: phi(ng (W x)) = diag(ng) W x
    rng = np.random.default_rng(5)
    n, T = 8, 15
    net = _linear_network(rng, n, form, radius=0.7)
    ng = rng.uniform(0.5, 1.5, n)
    x0 = rng.normal(size=(2, n))
    out = net.run(np.zeros((T, 2, 0)), x0=x0, neuron_gain=ng)
    W_eff = net.W * ng if form == "current" else ng[:, None] * net.W
    M = (1 - net.alpha) * np.eye(n) + net.alpha * W_eff
    expected = x0 @ np.linalg.matrix_power(M, T).T
    np.testing.assert_allclose(out.x[-1], expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.r, out.x * ng, rtol=1e-14)  # r = phi(ng x) in both forms


@pytest.mark.parametrize("form", FORMS)
def test_constant_input_drives_linear_network_to_its_fixed_point(form):
    # x* = gain W x* + W_in u + b  =>  x* = (I - gain W)^-1 (W_in u + b)
    rng = np.random.default_rng(6)
    n, n_in, B, gain = 10, 3, 4, 0.8
    net = _linear_network(rng, n, form, radius=0.5, tau=2.0, n_in=n_in)
    net.b = rng.normal(size=n)
    u_const = rng.normal(size=(B, n_in))
    x_star = np.linalg.solve(np.eye(n) - gain * net.W, (u_const @ net.W_in.T + net.b).T).T
    # from the fixed point, the state stays there
    stay = net.run(np.broadcast_to(u_const, (5, B, n_in)), x0=x_star, gain=gain)
    np.testing.assert_allclose(
        stay.x, np.broadcast_to(x_star, stay.x.shape), rtol=1e-12, atol=1e-12
    )
    # from elsewhere, it converges there (contraction factor <= 1 - alpha (1 - 0.4) = 0.7)
    T = 150
    out = net.run(np.broadcast_to(u_const, (T, B, n_in)), x0=rng.normal(size=(B, n)), gain=gain)
    np.testing.assert_allclose(out.x[-1], x_star, rtol=1e-10, atol=1e-10)
    assert not np.allclose(out.x[0], x_star, atol=1e-3)  # it did start away from x*


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("phi", PHI_NAMES)
def test_zero_gain_removes_recurrence(form, phi):
    rng = np.random.default_rng(7)
    T, B, n, n_in = 12, 3, 9, 2
    net = random_rate_rnn(rng, n, n_in, 2, g=1.5, phi=phi, form=form)
    no_recurrence = net.copy()
    no_recurrence.W = np.zeros((n, n))
    u = rng.normal(size=(T, B, n_in))
    expected = no_recurrence.run(u).x
    for gain in (0.0, np.zeros((T, B)), np.zeros((T, 1))):
        assert_close(net.run(u, gain=gain).x, expected)
    assert not np.allclose(net.run(u).x, expected, atol=1e-3)  # the recurrence does matter


@pytest.mark.parametrize("form", FORMS)
def test_time_varying_gain_equals_per_step_scaled_weights(form):
    # gain[t, b] multiplies W at step t of trial b: one step with gain g from a state equals one
    # step of a network whose W is g W
    rng = np.random.default_rng(8)
    T, B, n, n_in = 6, 3, 7, 2
    net = random_rate_rnn(rng, n, n_in, 1, g=1.0, form=form)
    u = rng.normal(size=(T, B, n_in))
    gain = rng.uniform(0.2, 2.0, (T, B))
    out = net.run(u, gain=gain)
    x_prev = np.broadcast_to(net.x0, (B, n))
    for t in range(T):
        for b in range(B):
            scaled = net.copy()
            scaled.W = gain[t, b] * net.W
            step = scaled.run(u[t : t + 1, b : b + 1], x0=x_prev[b]).x[0, 0]
            np.testing.assert_allclose(out.x[t, b], step, rtol=1e-12, atol=1e-13)
        x_prev = out.x[t]


@pytest.mark.parametrize("phi", PHI_NAMES)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("readout", READOUTS)
def test_outputs_are_phi_of_state_and_its_readout(phi, form, readout):
    rng = np.random.default_rng(9)
    net = random_rate_rnn(rng, 11, 2, 3, phi=phi, form=form, readout=readout)
    ng = rng.uniform(0.5, 1.5, 11)
    out = net.run(rng.normal(size=(8, 4, 2)), neuron_gain=ng)
    np.testing.assert_allclose(out.r, fr.reference.phi(phi, ng * out.x), rtol=1e-13, atol=1e-15)
    read = out.r if readout == "rate" else out.x
    np.testing.assert_allclose(out.y, read @ net.W_out.T + net.b_out, rtol=1e-12, atol=1e-14)


def test_float32_model_tracks_float64_model():
    rng = np.random.default_rng(10)
    net = random_rate_rnn(rng, 30, 3, 2, g=0.8)
    u = rng.normal(size=(20, 5, 3))
    x64 = net.run(u, noise_std=0.1, seed=1).x
    out32 = net.astype(np.float32).run(u, noise_std=0.1, seed=1)
    assert out32.x.dtype == np.float32 and out32.y.dtype == np.float32
    np.testing.assert_allclose(out32.x, x64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inputs_of_another_dtype_are_converted_to_the_model_dtype(dtype):
    rng = np.random.default_rng(11)
    net = random_rate_rnn(rng, 6, 2, 1, dtype=dtype)
    u = rng.integers(-2, 3, (5, 3, 2))
    out = net.run(u, x0=np.zeros(6, dtype=np.float16), gain=np.ones((5, 3), dtype=np.int64))
    assert out.x.dtype == dtype and out.y.dtype == dtype
    np.testing.assert_array_equal(out.x, net.run(u.astype(dtype), x0=np.zeros(6)).x)


def test_random_init_follows_documented_statistics():
    n, n_in, n_out, g = 400, 50, 30, 1.5
    net = fr.RateRNN.random(n=n, n_in=n_in, n_out=n_out, g=g, seed=0)
    assert (net.n, net.n_in, net.n_out) == (n, n_in, n_out)
    np.testing.assert_allclose(net.W.var(), g**2 / n, rtol=0.02)
    np.testing.assert_allclose(net.W_in.var(), 1 / n_in, rtol=0.05)
    np.testing.assert_allclose(net.W_out.var(), 1 / n, rtol=0.05)
    assert not net.b.any() and not net.b_out.any() and not net.x0.any()
    sparse = fr.RateRNN.random(n=n, n_in=1, n_out=1, g=g, p=0.25, zero_diag=True, seed=1)
    np.testing.assert_allclose((sparse.W != 0).mean(), 0.25, atol=0.01)
    np.testing.assert_allclose(sparse.W.var(), g**2 / n, rtol=0.05)
    assert not np.diag(sparse.W).any()
    again = fr.RateRNN.random(n=n, n_in=1, n_out=1, g=g, p=0.25, zero_diag=True, seed=1)
    np.testing.assert_array_equal(again.W, sparse.W)
    assert fr.RateRNN.random(n=5, n_in=1, n_out=1, dtype="float32").W.dtype == np.float32
