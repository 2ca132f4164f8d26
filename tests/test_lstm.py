"""LSTM: the C++ rollout against flexrnn.reference, and properties of the gates."""

import flexrnn as fr
import numpy as np
import pytest
from conftest import (
    DTYPES,
    assert_close,
    assert_same_dtype_and_shape,
    batches,
    dtypes,
    initial_state,
    input_sizes,
    numpy_seeds,
    output_sizes,
    random_lstm,
    reference_lstm,
    sizes,
    steps,
)
from hypothesis import given
from hypothesis import strategies as st


@st.composite
def lstm_cases(draw):
    rng = np.random.default_rng(draw(numpy_seeds))
    T, B, n = draw(steps), draw(batches), draw(sizes)
    n_in, n_out = draw(input_sizes), draw(output_sizes)
    net = random_lstm(rng, n, n_in, n_out, dtype=draw(dtypes))
    u = rng.normal(0, 1.0, (T, B, n_in))
    return net, u, draw(initial_state(rng, B, n)), draw(initial_state(rng, B, n))


@given(lstm_cases())
def test_rollout_matches_reference(case):
    net, u, h0, c0 = case
    T, B = u.shape[:2]
    out = net.run(u, h0=h0, c0=c0)
    expected = reference_lstm(net, u, h0=h0, c0=c0)
    assert_same_dtype_and_shape(
        vars(out), net.dtype, {"h": (T, B, net.n), "c": (T, B, net.n), "y": (T, B, net.n_out)}
    )
    for key in ("h", "c", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)
    np.testing.assert_array_equal(net.outputs(u, h0=h0, c0=c0), out.y)


@pytest.mark.parametrize("n", [10, 70])  # chunks of 8 rows (4n < 256) and 32 rows (4n >= 256)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rollout_matches_reference_over_several_batch_chunks(n, dtype):
    rng = np.random.default_rng(n)
    T, B = 6, 45
    net = random_lstm(rng, n, 3, 2, dtype=dtype)
    u = rng.normal(size=(T, B, 3))
    h0, c0 = rng.uniform(-1, 1, (B, n)), rng.uniform(-1, 1, (B, n))
    out = net.run(u, h0=h0, c0=c0)
    expected = reference_lstm(net, u, h0=h0, c0=c0)
    for key in ("h", "c", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)


def _gate_biased_lstm(n, i, f, g, o):
    """LSTM with no weights, gate pre-activations set by the bias blocks (i, f, g, o)."""
    b = np.concatenate([np.full(n, v) for v in (i, f, g, o)])
    return fr.LSTM(W_ih=np.zeros((4 * n, 1)), W_hh=np.zeros((4 * n, n)), C=np.eye(n), b=b)


def test_saturated_forget_gate_holds_the_cell():
    # f = sigmoid(40) = 1, i = sigmoid(-40) = 0 (to within 1e-17): c stays c0, h = o tanh(c0)
    n = 4
    net = _gate_biased_lstm(n, i=-40.0, f=40.0, g=0.3, o=0.0)
    c0 = np.array([-2.0, -0.5, 0.5, 2.0])
    out = net.run(np.zeros((30, 2, 1)), c0=c0)
    np.testing.assert_allclose(out.c, np.broadcast_to(c0, out.c.shape), rtol=1e-14)
    np.testing.assert_allclose(out.h, 0.5 * np.tanh(out.c), rtol=1e-14)
    np.testing.assert_allclose(out.y, out.h, rtol=1e-14)  # C = I, d = 0


def test_constant_gates_give_geometric_cell_dynamics():
    # c[t+1] = f c[t] + i g  =>  c[t] = f^t c0 + i g (1 - f^t) / (1 - f)
    n, T = 3, 25
    pre = {"i": 0.4, "f": 0.7, "g": -0.2, "o": 1.1}
    net = _gate_biased_lstm(n, **pre)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, g = sig(pre["i"]), sig(pre["f"]), np.tanh(pre["g"])
    c0 = np.array([1.0, 0.0, -1.0])
    out = net.run(np.zeros((T, 1, 1)), c0=c0)
    ft = f ** np.arange(1, T + 1)[:, None]
    expected = ft * c0 + i * g * (1 - ft) / (1 - f)
    np.testing.assert_allclose(out.c[:, 0], expected, rtol=1e-12, atol=1e-14)


def test_random_init_is_pytorch_uniform():
    n = 50
    net = fr.LSTM.random(n=n, n_in=7, n_out=3, seed=0)
    k = 1 / np.sqrt(n)
    for name in ("W_ih", "W_hh", "C", "b"):
        value = getattr(net, name)
        assert np.all(np.abs(value) <= k), name
        np.testing.assert_allclose(value.var(), k**2 / 3, rtol=0.2, err_msg=name)
    assert not net.d.any() and not net.h0.any() and not net.c0.any()
    assert (net.n, net.n_in, net.n_out) == (n, 7, 3)
