"""NMRNN: the C++ rollout against flexrnn.reference, clamping/ablation, and special cases."""

import flexrnn as fr
import numpy as np
import pytest
from conftest import (
    DTYPES,
    assert_close,
    assert_rounding_equal,
    assert_same_dtype_and_shape,
    batches,
    dtypes,
    initial_state,
    input_sizes,
    modulator_sizes,
    numpy_seeds,
    output_sizes,
    raises_naming,
    random_nmrnn,
    ranks,
    reference_nmrnn,
    sizes,
    steps,
    taus,
)
from hypothesis import given
from hypothesis import strategies as st


@st.composite
def clamp_options(draw, rng, rank):
    """Nothing, s_clamp (NaN = free), ablate (component indices) or both."""
    options = {}
    if draw(st.booleans()):
        clamp = rng.uniform(0, 1.5, rank)
        clamp[rng.random(rank) < 0.5] = np.nan
        options["s_clamp"] = clamp
    if draw(st.booleans()):
        options["ablate"] = draw(st.lists(st.integers(0, rank - 1), max_size=rank))
    return options


def _effective_clamp(options, rank):
    """What the reference's s_clamp argument must be for run(s_clamp=..., ablate=...)."""
    if "s_clamp" not in options and "ablate" not in options:
        return None
    clamp = np.array(options.get("s_clamp", np.full(rank, np.nan)), dtype=float)
    clamp[list(options.get("ablate", []))] = 0.0
    return clamp


@st.composite
def nmrnn_cases(draw):
    rng = np.random.default_rng(draw(numpy_seeds))
    T, B, n, rank = draw(steps), draw(batches), draw(sizes), draw(ranks)
    n_mod = draw(modulator_sizes)
    n_in, n_out = draw(input_sizes), draw(output_sizes)
    n_scale = draw(st.sampled_from([1.0, float(n)]))
    net = random_nmrnn(
        rng,
        n,
        rank,
        n_mod,
        n_in,
        n_out,
        n_scale=n_scale,
        feedback=draw(st.booleans()),
        tau_x=draw(taus),
        tau_z=draw(st.floats(20.0, 100.0)),
        dtype=draw(dtypes),
    )
    u = rng.normal(0, 0.5, (T, B, n_in))
    options = {
        "x0": draw(initial_state(rng, B, n, std=0.3)),
        "z0": draw(initial_state(rng, B, n_mod, std=0.3)),
    }
    options.update(draw(clamp_options(rng, rank)))
    return net, u, options


@given(nmrnn_cases())
def test_rollout_matches_reference(case):
    net, u, options = case
    T, B = u.shape[:2]
    out = net.run(u, **options)
    expected = reference_nmrnn(
        net, u, x0=options["x0"], z0=options["z0"], s_clamp=_effective_clamp(options, net.rank)
    )
    assert_same_dtype_and_shape(
        vars(out),
        net.dtype,
        {
            "x": (T, B, net.n),
            "r": (T, B, net.n),
            "z": (T, B, net.n_mod),
            "s": (T, B, net.rank),
            "y": (T, B, net.n_out),
        },
    )
    for key in ("x", "z", "s", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)
    assert_close(out.r, np.tanh(expected["x"]), err_msg="r")
    np.testing.assert_array_equal(net.outputs(u, **options), out.y)


@pytest.mark.parametrize("n", [20, 300])  # batch chunks of 8 rows (n < 256) and 32 (n >= 256)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rollout_matches_reference_over_several_batch_chunks(n, dtype):
    rng = np.random.default_rng(n)
    T, B, n_mod, rank = 6, 45, 5, 3
    net = random_nmrnn(rng, n, rank, n_mod, 2, 1, n_scale=float(n), feedback=True, dtype=dtype)
    u = rng.normal(0, 0.5, (T, B, 2))
    x0, z0 = rng.normal(0, 0.3, (B, n)), rng.normal(0, 0.3, (B, n_mod))
    out = net.run(u, x0=x0, z0=z0)
    expected = reference_nmrnn(net, u, x0=x0, z0=z0)
    for key in ("x", "z", "s", "y"):
        assert_close(getattr(out, key), expected[key], err_msg=key)


def test_ablation_holds_component_at_zero_and_others_free():
    rng = np.random.default_rng(1)
    net = random_nmrnn(rng, 10, 3, 4, 2, 1)
    u = rng.normal(size=(20, 3, 2))
    free = net.run(u)
    ablated = net.run(u, ablate=[1])
    assert np.all(ablated.s[..., 1] == 0)
    assert np.all((free.s > 0) & (free.s < 1))  # sigmoid outputs
    # without feedback the modulator does not see x: the free components are unchanged
    assert_rounding_equal(ablated.z, free.z)
    assert_rounding_equal(ablated.s[..., [0, 2]], free.s[..., [0, 2]])
    assert not np.allclose(ablated.x, free.x)
    # ablate=k is shorthand for s_clamp with 0 at k and NaN elsewhere
    clamped = net.run(u, s_clamp=[np.nan, 0.0, np.nan])
    assert_rounding_equal(clamped.x, ablated.x)
    assert_rounding_equal(net.run(u, ablate=np.int64(1)).x, ablated.x)


def test_clamped_gains_make_it_a_low_rank_rnn():
    # every s held: x is LowRankRNN(U diag(s) n / n_scale, V) with tanh, input B_x u, no bias
    rng = np.random.default_rng(2)
    n, rank, n_scale = 12, 3, 1.0
    net = random_nmrnn(rng, n, rank, 4, 2, 2, n_scale=n_scale, feedback=True)
    s = np.array([0.2, 0.9, 0.5])
    low = fr.LowRankRNN(
        U=net.U * s * n / n_scale,
        V=net.V,
        W_in=net.B_x,
        W_out=net.C,
        b_out=net.d,
        x0=net.x0,
        tau=net.tau_x,
        dt=net.dt,
        phi="tanh",
        readout="state",
    )
    u = rng.normal(size=(25, 4, 2))
    out, expected = net.run(u, s_clamp=s), low.run(u)
    np.testing.assert_allclose(out.x, expected.x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.y, expected.y, rtol=1e-10, atol=1e-12)
    assert np.all(out.s == s)


def test_feedback_lets_x_drive_the_modulator():
    rng = np.random.default_rng(3)
    with_feedback = random_nmrnn(rng, 10, 2, 3, 1, 1, feedback=True)
    without = with_feedback.copy()
    without.W_zx = None
    u = rng.normal(size=(10, 2, 1))
    x0_a, x0_b = rng.normal(size=10), rng.normal(size=10)
    # without feedback z does not depend on x0; with feedback it does
    assert_rounding_equal(without.run(u, x0=x0_a).z, without.run(u, x0=x0_b).z)
    assert not np.allclose(with_feedback.run(u, x0=x0_a).z, with_feedback.run(u, x0=x0_b).z)


def test_readout_reads_the_state_not_the_rate():
    rng = np.random.default_rng(4)
    net = random_nmrnn(rng, 8, 2, 3, 1, 2)
    out = net.run(rng.normal(size=(6, 2, 1)))
    np.testing.assert_allclose(out.y, out.x @ net.C.T + net.d, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out.r, np.tanh(out.x), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("n_scale", [1.0, "n"])
@pytest.mark.parametrize("feedback", [False, True])
def test_random_init_has_the_documented_structure(n_scale, feedback):
    net = fr.NMRNN.random(
        n=50, rank=3, n_mod=5, n_in=2, n_out=1, n_scale=n_scale, feedback=feedback, seed=0
    )
    assert (net.n, net.rank, net.n_mod, net.n_in, net.n_out) == (50, 3, 5, 2, 1)
    assert net.n_scale == (1.0 if n_scale == 1.0 else 50.0)
    if n_scale == 1.0:
        np.testing.assert_allclose(net.U.T @ net.U, np.eye(3), atol=1e-12)  # orthonormal U
    assert (net.W_zx is not None) == feedback
    np.testing.assert_array_equal(net.x0, np.full(50, 0.1))
    np.testing.assert_array_equal(net.z0, np.full(5, 0.1))
    assert (net.alpha_x, net.alpha_z) == (0.1, 0.01)


@given(n=st.integers(1, 6), data=st.data())
def test_random_init_works_for_every_rank_up_to_n(n, data):
    rank = data.draw(st.integers(1, n))
    net = fr.NMRNN.random(n=n, rank=rank, n_mod=2, n_in=1, n_out=1, seed=0)
    assert net.U.shape == net.V.shape == (n, rank)
    assert net.A_z.shape == (rank, 2)


def test_random_init_with_rank_above_n_names_rank():
    # an orthonormal (n, rank) U needs rank <= n: otherwise the error must be about rank
    with raises_naming("rank", ValueError):
        fr.NMRNN.random(n=2, rank=3, n_mod=2, n_in=1, n_out=1, seed=0)


def test_random_init_with_n_scale_n_accepts_rank_above_n():
    net = fr.NMRNN.random(n=2, rank=3, n_mod=2, n_in=1, n_out=1, n_scale="n", seed=0)
    assert net.rank == 3 and net.n_scale == 2.0
    assert net.run(np.zeros((3, 1, 1))).x.shape == (3, 1, 2)
