"""LowRankRNN: the C++ rollout against flexrnn.reference, and equality with a dense RateRNN."""

import flexrnn as fr
import numpy as np
import pytest
from conftest import (
    DTYPES,
    PHI_NAMES,
    assert_close,
    assert_same_dtype_and_shape,
    batches,
    dtypes,
    gain_options,
    initial_state,
    input_sizes,
    noise_options,
    numpy_seeds,
    output_sizes,
    phis,
    random_low_rank_rnn,
    ranks,
    readouts,
    reference_low_rank_rnn,
    sizes,
    steps,
    taus,
)
from hypothesis import given
from hypothesis import strategies as st


@st.composite
def low_rank_cases(draw):
    rng = np.random.default_rng(draw(numpy_seeds))
    T, B, n, rank = draw(steps), draw(batches), draw(sizes), draw(ranks)
    n_in, n_out = draw(input_sizes), draw(output_sizes)
    net = random_low_rank_rnn(
        rng,
        n,
        rank,
        n_in,
        n_out,
        g=draw(st.floats(0.0, 0.9)),
        tau=draw(taus),
        phi=draw(phis),
        readout=draw(readouts),
        dtype=draw(dtypes),
    )
    u = rng.normal(0, 0.5, (T, B, n_in))
    options = draw(gain_options(T, B, rng))
    if draw(st.booleans()):
        options["neuron_gain"] = rng.uniform(0.5, 1.25, n)
    options.update(draw(noise_options(rng)))
    return net, u, draw(initial_state(rng, B, n)), options


@given(low_rank_cases())
def test_rollout_matches_reference(case):
    net, u, x0, options = case
    T, B = u.shape[:2]
    out = net.run(u, x0=x0, **options)
    expected = reference_low_rank_rnn(net, u, x0=x0, **options)
    assert_same_dtype_and_shape(
        vars(out), net.dtype, {"x": (T, B, net.n), "r": (T, B, net.n), "y": (T, B, net.n_out)}
    )
    for key in ("x", "r", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)
    assert_close(net.outputs(u, x0=x0, **options), out.y, err_msg="outputs")  # states unstored


@pytest.mark.parametrize("n", [20, 300])  # batch chunks of 8 rows (n < 256) and 32 (n >= 256)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rollout_matches_reference_over_several_batch_chunks(n, dtype):
    rng = np.random.default_rng(n)
    T, B = 6, 45
    net = random_low_rank_rnn(rng, n, 3, 2, 2, dtype=dtype)
    u = rng.normal(0, 0.5, (T, B, 2))
    options = {
        "x0": rng.normal(0, 0.5, (B, n)),
        "gain": rng.uniform(0.5, 1.2, (T, 1)),
        "noise_std": 0.1,
        "seed": 11,
    }
    out = net.run(u, **options)
    expected = reference_low_rank_rnn(net, u, **options)
    for key in ("x", "r", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)


@pytest.mark.parametrize("phi", PHI_NAMES)
@given(
    seed=numpy_seeds, n=st.integers(1, 30), rank=st.integers(1, 4), dtype=dtypes, readout=readouts
)
def test_low_rank_equals_rate_rnn_with_outer_product_weights(phi, seed, n, rank, dtype, readout):
    rng = np.random.default_rng(seed)
    low = random_low_rank_rnn(rng, n, rank, 2, 2, phi=phi, readout=readout, dtype=dtype)
    dense = fr.RateRNN(
        W=low.U.astype(np.float64) @ low.V.T.astype(np.float64) / n,
        W_in=low.W_in,
        W_out=low.W_out,
        b=low.b,
        b_out=low.b_out,
        x0=low.x0,
        tau=low.tau,
        dt=low.dt,
        phi=phi,
        form="current",
        readout=readout,
        dtype=dtype,
    )
    T, B = 15, 3
    u = rng.normal(0, 0.5, (T, B, 2))
    options = {
        "gain": rng.uniform(0.5, 1.2, (T, B)),
        "neuron_gain": rng.uniform(0.5, 1.2, n),
        "noise_std": 0.05,
        "seed": seed,
    }
    a, b = low.run(u, **options), dense.run(u, **options)
    for key in ("x", "r", "y"):
        assert_close(getattr(a, key), getattr(b, key), dtype=dtype, err_msg=key)


def test_w_property_is_the_outer_product_over_n():
    net = fr.LowRankRNN.random(n=9, rank=2, n_in=1, n_out=1, seed=3)
    assert net.rank == 2 and net.W.shape == (9, 9)
    np.testing.assert_allclose(net.W, net.U @ net.V.T / 9, rtol=1e-15)
    assert np.linalg.matrix_rank(net.W) == 2


def test_rank_one_linear_network_grows_along_its_left_vector():
    # W = u v^T / n with identity phi: the component along u evolves with eigenvalue
    # lambda = v.u / n, the orthogonal ones decay as (1 - alpha)^t
    n, T, alpha = 12, 30, 0.2
    rng = np.random.default_rng(4)
    u_vec = rng.normal(size=(n, 1))
    v_vec = 1.05 * n * u_vec / (u_vec.T @ u_vec)  # v.u / n = 1.05
    net = fr.LowRankRNN(
        U=u_vec,
        V=v_vec,
        W_in=np.zeros((n, 0)),
        W_out=np.zeros((0, n)),
        x0=u_vec[:, 0],
        tau=1 / alpha,
        phi="identity",
    )
    out = net.run(np.zeros((T, 1, 0)))
    growth = (1 - alpha + alpha * 1.05) ** np.arange(1, T + 1)
    np.testing.assert_allclose(out.x[:, 0, :], growth[:, None] * u_vec[:, 0], rtol=1e-12)
