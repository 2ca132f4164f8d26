"""Quick checks of flexrnn.reference on its own (no compiled core needed)."""

import numpy as np
import pytest
from flexrnn.reference import (
    PHI_NAMES,
    dphi,
    low_rank_rnn,
    lstm,
    nmrnn,
    phi,
    philox4x32,
    philox_normal,
    rate_rnn,
    sigmoid,
)

# Random123 known-answer tests for philox4x32_10: (counter, key, expected output).
PHILOX_KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]


def _random_net(rng, n=12, n_in=3, n_out=2, dtype=np.float64):
    W = rng.normal(0, 1.2 / np.sqrt(n), (n, n)).astype(dtype)
    W_in = rng.normal(0, 1, (n, n_in)).astype(dtype)
    b = rng.normal(0, 0.1, n).astype(dtype)
    W_out = rng.normal(0, 1 / np.sqrt(n), (n_out, n)).astype(dtype)
    b_out = rng.normal(0, 0.1, n_out).astype(dtype)
    return W, W_in, b, W_out, b_out


def test_philox_matches_random123_known_answers():
    for counter, key, expected in PHILOX_KAT:
        out = philox4x32(np.array(counter, dtype=np.uint32), np.array(key, dtype=np.uint32))
        np.testing.assert_array_equal(out, np.array(expected, dtype=np.uint32))
    batched = philox4x32(
        np.array([c for c, _, _ in PHILOX_KAT[:1]] * 3, dtype=np.uint32),
        np.zeros(2, dtype=np.uint32),
    )
    np.testing.assert_array_equal(batched, np.array([PHILOX_KAT[0][2]] * 3, dtype=np.uint32))


def test_normals_have_zero_mean_and_unit_variance():
    z = philox_normal(1234, np.arange(100)[:, None], np.arange(20), 100)  # 200k draws
    assert z.shape == (100, 20, 100) and z.dtype == np.float64
    assert abs(z.mean()) < 0.01
    assert abs(z.var() - 1) < 0.01


def test_normals_are_indexed_by_seed_stream_step_and_position():
    full = philox_normal(7, np.arange(4)[:, None], np.arange(3), 9)
    assert np.array_equal(full[2, 1], philox_normal(7, 2, 1, 9))
    assert np.array_equal(philox_normal(7, 2, 1, 5), full[2, 1, :5])  # odd n is a prefix
    assert not np.array_equal(philox_normal(8, 2, 1, 9), full[2, 1])
    big_stream = philox_normal(7, 2**40 + 3, 1, 4)
    assert not np.array_equal(big_stream, philox_normal(7, 3, 1, 4))


@pytest.mark.parametrize("name", PHI_NAMES)
def test_dphi_matches_finite_differences(name):
    x = np.linspace(-3, 3, 41) + 0.013  # avoid relu's kink at 0
    h = 1e-6
    numeric = (phi(name, x + h) - phi(name, x - h)) / (2 * h)
    np.testing.assert_allclose(dphi(name, x), numeric, rtol=1e-6, atol=1e-8)


def test_phi_is_stable_and_keeps_dtype():
    x = np.array([-1000.0, 0.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for name in PHI_NAMES:
            assert phi(name, x).dtype == np.float32 and dphi(name, x).dtype == np.float32
        np.testing.assert_allclose(sigmoid(x), [0, 0.5, 1])
        np.testing.assert_allclose(phi("softplus", x), [0, np.log(2), 1000])
    assert dphi("relu", np.array([0.0]))[0] == 0


def test_unknown_option_raises_value_error():
    args = _random_net(np.random.default_rng(0))
    u = np.zeros((2, 1, 3))
    with pytest.raises(ValueError, match="phi"):
        phi("sigmoidal", u)
    for option in ({"phi": "sigmoidal"}, {"form": "voltage"}, {"readout": "both"}):
        with pytest.raises(ValueError, match=next(iter(option))):
            rate_rnn(u, *args, np.zeros(12), alpha=0.1, **option)


@pytest.mark.parametrize("form", ["current", "rate"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_weights_decay_as_one_minus_alpha_to_the_t(form, dtype):
    n, T, B, alpha = 5, 30, 2, 0.2
    z = np.zeros
    x0 = np.random.default_rng(1).normal(size=(B, n))
    out = rate_rnn(
        z((T, B, 1)),
        z((n, n), dtype),
        z((n, 1), dtype),
        z(n, dtype),
        z((1, n), dtype),
        z(1, dtype),
        x0,
        alpha=alpha,
        phi="identity",
        form=form,
    )
    assert out["x"].dtype == dtype and out["y"].dtype == dtype
    expected = (1 - alpha) ** np.arange(1, T + 1)[:, None, None] * x0
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out["x"], expected, rtol=rtol)


@pytest.mark.parametrize("form", ["current", "rate"])
def test_linear_network_equals_repeated_propagator(form):
    rng = np.random.default_rng(2)
    W, W_in, b, W_out, b_out = _random_net(rng)
    n, T, B, alpha = W.shape[0], 25, 3, 0.1
    x0 = rng.normal(size=(B, n))
    out = rate_rnn(
        np.zeros((T, B, 3)),
        W,
        W_in,
        0 * b,
        W_out,
        b_out,
        x0,
        alpha=alpha,
        phi="identity",
        form=form,
        readout="state",
    )
    propagator = (1 - alpha) * np.eye(n) + alpha * W
    x = x0
    for t in range(T):
        x = x @ propagator.T
        np.testing.assert_allclose(out["x"][t], x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["y"], out["x"] @ W_out.T + b_out)


def test_gain_and_neuron_gain_scale_the_recurrence():
    rng = np.random.default_rng(3)
    W, W_in, b, W_out, b_out = _random_net(rng)
    n, T, B = W.shape[0], 10, 2
    u, x0 = rng.normal(size=(T, B, 3)), rng.normal(size=n)
    ng = rng.uniform(0.5, 2, n)
    g = rng.uniform(0.5, 2, (T, B))
    for form in ("current", "rate"):
        # a per-step, per-trial gain equals running each trial with its own scaled W
        out = rate_rnn(
            u, W, W_in, b, W_out, b_out, x0, alpha=0.3, gain=g, neuron_gain=ng, form=form
        )
        const = rate_rnn(
            u, W, W_in, b, W_out, b_out, x0, alpha=0.3, gain=g[0, 0], neuron_gain=ng, form=form
        )
        scaled = rate_rnn(
            u[:1, :1], g[0, 0] * W, W_in, b, W_out, b_out, x0, alpha=0.3, neuron_gain=ng, form=form
        )
        np.testing.assert_allclose(out["x"][0, 0], scaled["x"][0, 0], rtol=1e-12)
        np.testing.assert_allclose(const["x"][0, 0], scaled["x"][0, 0], rtol=1e-12)
        np.testing.assert_allclose(out["r"], np.tanh(ng * out["x"]), rtol=1e-12)


def test_noise_is_the_documented_philox_stream():
    rng = np.random.default_rng(4)
    W, W_in, b, W_out, b_out = _random_net(rng)
    n, T, B, alpha, noise_std, seed = W.shape[0], 4, 3, 0.2, 0.5, 99
    u, x0 = rng.normal(size=(T, B, 3)), rng.normal(size=(B, n))
    out = rate_rnn(u, W, W_in, b, W_out, b_out, x0, alpha=alpha, noise_std=noise_std, seed=seed)
    x = x0
    for t in range(T):
        xi = philox_normal(seed, np.arange(B), t, n)
        x = (
            (1 - alpha) * x
            + alpha * (np.tanh(x) @ W.T + u[t] @ W_in.T + b)
            + np.sqrt(2 * alpha) * noise_std * xi
        )
        np.testing.assert_allclose(out["x"][t], x, rtol=1e-12, atol=1e-14)
    out32 = rate_rnn(
        u,
        *(a.astype(np.float32) for a in (W, W_in, b, W_out, b_out)),
        x0,
        alpha=alpha,
        noise_std=noise_std,
        seed=seed,
    )
    assert out32["x"].dtype == np.float32
    np.testing.assert_allclose(out32["x"], out["x"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("readout", ["rate", "state"])
def test_low_rank_equals_rate_rnn_with_outer_product_weights(readout):
    rng = np.random.default_rng(5)
    _, W_in, b, W_out, b_out = _random_net(rng)
    n, rank, T, B = 12, 2, 20, 3
    U, V = rng.normal(size=(n, rank)), rng.normal(size=(n, rank))
    u, x0 = rng.normal(size=(T, B, 3)), rng.normal(size=n)
    kwargs = dict(
        alpha=0.2,
        readout=readout,
        gain=rng.uniform(0.5, 1.5, (T, 1)),
        neuron_gain=rng.uniform(0.5, 2, n),
        noise_std=0.1,
        seed=3,
    )
    low = low_rank_rnn(u, U, V, W_in, b, W_out, b_out, x0, **kwargs)
    full = rate_rnn(u, U @ V.T / n, W_in, b, W_out, b_out, x0, **kwargs)
    for key in ("x", "r", "y"):
        np.testing.assert_allclose(low[key], full[key], rtol=1e-10, atol=1e-12)


def test_nmrnn_with_clamped_gains_is_a_low_rank_network():
    rng = np.random.default_rng(6)
    n, rank, n_mod, n_in, n_out, T, B = 10, 3, 4, 2, 1, 15, 2
    W_z, B_z = rng.normal(size=(n_mod, n_mod)), rng.normal(size=(n_mod, n_in))
    b_z = rng.normal(size=n_mod)
    A_z, c_z = rng.normal(size=(rank, n_mod)), rng.normal(size=rank)
    U, V, B_x = rng.normal(size=(n, rank)), rng.normal(size=(n, rank)), rng.normal(size=(n, n_in))
    C, d = rng.normal(size=(n_out, n)), rng.normal(size=n_out)
    u = rng.normal(size=(T, B, n_in))
    s_clamp = np.array([0.3, np.nan, 0.0])  # component 2 ablated, 1 free
    out = nmrnn(
        u,
        W_z,
        B_z,
        b_z,
        A_z,
        c_z,
        U,
        V,
        B_x,
        C,
        d,
        0.1 * np.ones(n),
        0.1 * np.ones(n_mod),
        alpha_x=0.1,
        alpha_z=0.01,
        n_scale=n,
        W_zx=rng.normal(size=(n_mod, n)),
        s_clamp=s_clamp,
    )
    assert out["s"].shape == (T, B, rank)
    assert np.all(out["s"][..., 0] == 0.3) and np.all(out["s"][..., 2] == 0)
    assert np.all((out["s"][..., 1] > 0) & (out["s"][..., 1] < 1))
    # all gains clamped: x is a low-rank tanh RNN with W = U diag(s) V^T / n, input B_x u
    s_fixed = np.array([0.3, 0.7, 0.0])
    out = nmrnn(
        u,
        W_z,
        B_z,
        b_z,
        A_z,
        c_z,
        U,
        V,
        B_x,
        C,
        d,
        0.1 * np.ones(n),
        0.1 * np.ones(n_mod),
        alpha_x=0.1,
        alpha_z=0.01,
        n_scale=n,
        s_clamp=s_fixed,
    )
    same = low_rank_rnn(u, U * s_fixed, V, B_x, np.zeros(n), C, d, 0.1 * np.ones(n), alpha=0.1)
    np.testing.assert_allclose(out["x"], same["x"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["y"], out["x"] @ C.T + d)


def test_lstm_matches_hand_written_step():
    rng = np.random.default_rng(7)
    n, n_in, n_out, B = 4, 3, 2, 2
    W_ih, W_hh = rng.normal(size=(4 * n, n_in)), rng.normal(size=(4 * n, n))
    b = rng.normal(size=4 * n)
    C, d = rng.normal(size=(n_out, n)), rng.normal(size=n_out)
    u, h0, c0 = rng.normal(size=(1, B, n_in)), rng.normal(size=(B, n)), rng.normal(size=(B, n))
    out = lstm(u, W_ih, W_hh, b, C, d, h0, c0)
    for trial in range(B):
        pre = W_ih @ u[0, trial] + W_hh @ h0[trial] + b
        logistic = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        i, f = logistic(pre[:n]), logistic(pre[n : 2 * n])
        g, o = np.tanh(pre[2 * n : 3 * n]), logistic(pre[3 * n :])
        c = f * c0[trial] + i * g
        h = o * np.tanh(c)
        np.testing.assert_allclose(out["c"][0, trial], c, rtol=1e-12)
        np.testing.assert_allclose(out["h"][0, trial], h, rtol=1e-12)
        np.testing.assert_allclose(out["y"][0, trial], C @ h + d, rtol=1e-12)
