"""Fixed points: the C++ map, q, gradient and Jacobians against the NumPy reference and finite
differences; the minimiser against a NumPy Adam; fixed points of networks with known
answers (linear, bistable, line attractor); NMRNN joint state; float32; bad input."""

from __future__ import annotations

import flexrnn as fr
import matplotlib
import numpy as np
import pytest
from conftest import (
    assert_close,
    dtypes,
    forms,
    numpy_seeds,
    raises_naming,
    random_low_rank_rnn,
    random_nmrnn,
    random_rate_rnn,
)
from flexrnn import _core
from flexrnn import reference as ref
from flexrnn.analysis import FixedPoints, fixed_points, line_attractor
from hypothesis import given, settings
from hypothesis import strategies as st

matplotlib.use("Agg")

SMOOTH_PHIS = ("tanh", "softplus", "shifted_tanh", "identity")  # no kink for differences


# ---------------------------------------------------------------------------------------------
# Kernels: map, q, gradient, Jacobian


def _rate_core_args(net, u, gain=1.0, neuron_gain=None):
    return (net._kernel(), net._options(), u, gain, neuron_gain)


def _rate_reference_kwargs(net, u, gain=1.0, neuron_gain=None):
    W = net.W  # LowRankRNN.W forms U V^T / n
    return (W, net.W_in, net.b, u), dict(alpha=net.alpha, phi_name=net.phi, form=net.form,
                                          gain=gain, neuron_gain=neuron_gain)  # fmt: skip


def _nmrnn_core_args(net, u):
    return (net._kernel(), net._options(), u)


def _nmrnn_reference_kwargs(net, u):
    args = (net.W_z, net.B_z, net.b_z, net.A_z, net.c_z, net.U, net.V, net.B_x, u)
    return args, dict(alpha_x=net.alpha_x, alpha_z=net.alpha_z, n_scale=net.n_scale,
                      W_zx=net.W_zx)  # fmt: skip


@st.composite
def rate_networks(draw, dtype=None, phis=ref.PHI_NAMES):
    """(net, u, gain, neuron_gain, X) for a small RateRNN (either form) or LowRankRNN."""
    rng = np.random.default_rng(draw(numpy_seeds))
    dtype = draw(dtypes) if dtype is None else dtype
    n, n_in = draw(st.integers(1, 8)), draw(st.integers(0, 3))
    phi = draw(st.sampled_from(phis))
    if draw(st.booleans()):
        net = random_rate_rnn(rng, n, n_in, 1, g=1.2, phi=phi, form=draw(forms), dtype=dtype)
    else:
        net = random_low_rank_rnn(rng, n, draw(st.integers(1, 3)), n_in, 1, phi=phi, dtype=dtype)
    u = rng.normal(0, 1, n_in).astype(dtype)
    gain = float(rng.uniform(0.2, 2.0))
    neuron_gain = rng.uniform(0.5, 1.5, n).astype(dtype) if draw(st.booleans()) else None
    X = rng.normal(0, 1, (draw(st.integers(1, 20)), n)).astype(dtype)
    return net, u, gain, neuron_gain, X


@st.composite
def nmrnn_networks(draw, dtype=None):
    rng = np.random.default_rng(draw(numpy_seeds))
    dtype = draw(dtypes) if dtype is None else dtype
    n, rank, n_mod = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    n_in = draw(st.integers(0, 3))
    n_scale = draw(st.sampled_from([1.0, float(n)]))
    net = random_nmrnn(rng, n, rank, n_mod, n_in, 1, n_scale=n_scale, feedback=draw(st.booleans()),
                       dtype=dtype)  # fmt: skip
    u = rng.normal(0, 1, n_in).astype(dtype)
    X = rng.normal(0, 1, (draw(st.integers(1, 20)), n + n_mod)).astype(dtype)
    return net, u, X


@given(rate_networks())
def test_rate_map_q_gradient_and_jacobian_match_reference(case):
    net, u, gain, neuron_gain, X = case
    q, FX, G, J = _core.rate_map_at(*_rate_core_args(net, u, gain, neuron_gain), X, True, True)
    args, kw = _rate_reference_kwargs(net, u, gain, neuron_gain)
    F_ref = ref.rate_map(X, *args, **kw)
    J_ref = ref.rate_map_jacobian(X, *args, **kw)
    q_ref, G_ref = ref.q_and_gradient(X, F_ref, J_ref)
    for name, actual, expected in (("F", FX, F_ref), ("J", J, J_ref), ("q", q, q_ref),
                                   ("gradient", G, G_ref)):  # fmt: skip
        assert actual.dtype == X.dtype
        assert_close(actual, expected, err_msg=name)


@given(nmrnn_networks())
def test_nmrnn_map_q_gradient_and_jacobian_match_reference(case):
    net, u, X = case
    q, FX, G, J = _core.nmrnn_map_at(*_nmrnn_core_args(net, u), X, True, True)
    args, kw = _nmrnn_reference_kwargs(net, u)
    F_ref = ref.nmrnn_map(X, *args, **kw)
    J_ref = ref.nmrnn_map_jacobian(X, *args, **kw)
    q_ref, G_ref = ref.q_and_gradient(X, F_ref, J_ref)
    for name, actual, expected in (("F", FX, F_ref), ("J", J, J_ref), ("q", q, q_ref),
                                   ("gradient", G, G_ref)):  # fmt: skip
        assert_close(actual, expected, err_msg=name)


def _central_differences(f, X, h=1e-6):
    """d f(X)_k / d X_kj for each row k: f maps (K, N) -> (K, ...); returns (K, ..., N)."""
    cols = []
    for j in range(X.shape[1]):
        E = np.zeros_like(X)
        E[:, j] = h
        cols.append((f(X + E) - f(X - E)) / (2 * h))
    return np.stack(cols, axis=-1)


# Central differences with h = 1e-6 in float64 err by O(h² f''') + O(eps / h) ~ 1e-10 for
# these O(1) maps: 1e-6 relative to the largest entry is a wide margin that still catches
# any wrong term (which is O(1)).
FD_TOL = 1e-6


@given(rate_networks(dtype=np.float64, phis=SMOOTH_PHIS))
def test_rate_gradient_and_jacobian_match_finite_differences(case):
    net, u, gain, neuron_gain, X = case
    args = _rate_core_args(net, u, gain, neuron_gain)
    _, _, G, J = _core.rate_map_at(*args, X, True, True)
    G_fd = _central_differences(lambda Y: _core.rate_map_at(*args, Y, False, False)[0], X)
    J_fd = _central_differences(lambda Y: _core.rate_map_at(*args, Y, False, False)[1], X)
    scale = max(1.0, np.abs(G).max())
    np.testing.assert_allclose(G, G_fd, rtol=FD_TOL, atol=FD_TOL * scale)
    np.testing.assert_allclose(J, J_fd, rtol=FD_TOL, atol=FD_TOL * max(1.0, np.abs(J).max()))


@given(nmrnn_networks(dtype=np.float64))
def test_nmrnn_gradient_and_jacobian_match_finite_differences(case):
    net, u, X = case
    args = _nmrnn_core_args(net, u)
    _, _, G, J = _core.nmrnn_map_at(*args, X, True, True)
    G_fd = _central_differences(lambda Y: _core.nmrnn_map_at(*args, Y, False, False)[0], X)
    J_fd = _central_differences(lambda Y: _core.nmrnn_map_at(*args, Y, False, False)[1], X)
    np.testing.assert_allclose(G, G_fd, rtol=FD_TOL, atol=FD_TOL * max(1.0, np.abs(G).max()))
    np.testing.assert_allclose(J, J_fd, rtol=FD_TOL, atol=FD_TOL * max(1.0, np.abs(J).max()))


# Adam divides by sqrt(v): rounding differences in the gradient grow by at most
# lr / sqrt(v) ~ 1 per step relative to the gradient, so 10 steps agree to a few hundred
# ulps of lr-sized steps in float64 and to ~1e-4 relative in float32.
ADAM_TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}


@settings(max_examples=25)
@given(rate_networks(phis=SMOOTH_PHIS), st.integers(1, 10))
def test_rate_minimizer_matches_numpy_adam(case, iters):
    net, u, gain, neuron_gain, X = case
    X = X[:16]  # one chunk: the C++ stops per chunk of 16 states
    args = _rate_core_args(net, u, gain, neuron_gain)
    Xc, qc, steps = _core.rate_minimize_q(*args, X, iters, 0.01, 0.0)
    a, kw = _rate_reference_kwargs(net, u, gain, neuron_gain)
    Xr, qr, steps_ref = ref.minimize_q(
        lambda Y: ref.rate_map(Y, *a, **kw),
        lambda Y: ref.rate_map_jacobian(Y, *a, **kw),
        X,
        iters=iters,
        lr=0.01,
    )
    tol = ADAM_TOL[X.dtype]
    np.testing.assert_allclose(Xc, Xr, rtol=tol, atol=tol * max(1.0, np.abs(Xr).max()))
    np.testing.assert_array_equal(steps, steps_ref)


@settings(max_examples=15)
@given(nmrnn_networks(dtype=np.float64), st.integers(1, 10))
def test_nmrnn_minimizer_matches_numpy_adam(case, iters):
    net, u, X = case
    X = X[:16]
    Xc, _, _ = _core.nmrnn_minimize_q(*_nmrnn_core_args(net, u), X, iters, 0.01, 0.0)
    a, kw = _nmrnn_reference_kwargs(net, u)
    Xr, _, _ = ref.minimize_q(
        lambda Y: ref.nmrnn_map(Y, *a, **kw),
        lambda Y: ref.nmrnn_map_jacobian(Y, *a, **kw),
        X,
        iters=iters,
        lr=0.01,
    )
    np.testing.assert_allclose(Xc, Xr, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(Xr).max()))


# ---------------------------------------------------------------------------------------------
# Networks with known fixed points


@pytest.mark.parametrize("form", ["current", "rate"])
@pytest.mark.parametrize("radius", [0.6, 1.5])
def test_linear_network_has_its_unique_fixed_point_with_the_right_stability(form, radius):
    """phi = identity: x* solves (I - g W D) x = c (current) or (I - g D W) x = D c (rate),
    D = diag(neuron_gain), and is stable iff the map's eigenvalues are inside the unit disc."""
    rng = np.random.default_rng(1)
    n, gain = 12, 0.9
    W = rng.normal(0, radius / np.sqrt(n), (n, n))
    net = fr.RateRNN(W, rng.normal(0, 1, (n, 2)), np.zeros((1, n)), b=rng.normal(0, 0.3, n),
                     phi="identity", form=form, tau=4.0, dt=1.0)  # fmt: skip
    u, ng = np.array([0.3, -0.7]), rng.uniform(0.8, 1.2, n)
    c, D = net.W_in @ u + net.b, np.diag(ng)
    if form == "current":
        x_star = np.linalg.solve(np.eye(n) - gain * W @ D, c)
        J = (1 - net.alpha) * np.eye(n) + net.alpha * gain * W @ D
    else:
        x_star = np.linalg.solve(np.eye(n) - gain * D @ W, D @ c)
        J = (1 - net.alpha) * np.eye(n) + net.alpha * gain * D @ W
    fp = fixed_points(net, u, n_init=30, gain=gain, neuron_gain=ng, seed=3)
    assert len(fp) == 1 and fp.kind[0] == "fixed" and fp.count[0] == 30
    np.testing.assert_allclose(fp.x[0], x_star, atol=1e-10 * max(1, np.abs(x_star).max()))
    expected = np.sort_complex(np.linalg.eigvals(J))
    np.testing.assert_allclose(np.sort_complex(fp.eigenvalues[0]), expected, atol=1e-10)
    assert fp.stable[0] == (np.abs(expected).max() < 1)
    assert bool(fp.stable[0]) == (radius * gain < 1)  # circular law: radius g * |W| ~ 0.54, 1.35
    np.testing.assert_allclose(fp.flow_eigenvalues, (fp.eigenvalues - 1) / net.alpha)


def test_two_bistable_units_have_nine_fixed_points_four_stable():
    """x = 2 tanh(x) per unit: roots 0 and ±x1 (x1 = 1.91501); the product of two units has
    9 fixed points: 4 stable nodes (±x1, ±x1), 4 saddles, 1 unstable node at 0."""
    net = fr.RateRNN(np.diag([2.0, 2.0]), np.zeros((2, 0)), np.zeros((0, 2)), tau=1.0, dt=0.1)
    fp = fixed_points(net, n_init=100, init_noise=1.0, seed=0)
    x1 = 1.9150080481545986  # root of x = 2 tanh x
    assert len(fp) == 9 and (fp.kind == "fixed").all() and fp.count.sum() == 100
    grid = {(a, b) for a in (-x1, 0.0, x1) for b in (-x1, 0.0, x1)}
    for x, stable, eig in zip(fp.x, fp.stable, fp.eigenvalues):
        assert min(np.hypot(*(x - np.array(g))) for g in grid) < 1e-12
        assert stable == bool(np.all(np.abs(x) > 1))
        # map eigenvalues 1 - alpha + alpha * 2 tanh'(x_i), per unit
        expected = 1 - 0.1 + 0.1 * 2 * (1 - np.tanh(x) ** 2)
        np.testing.assert_allclose(np.sort(eig.real), np.sort(expected), atol=1e-12)
    assert not fp.is_continuum and fp.continuum_dimension == 0
    assert "9 fixed (4 stable)" in fp.summary()


def _line_attractor_network(n=20, seed=0, dtype="float64"):
    """Linear rank-one network W = m m^T / |m|²: eigenvalue 1 along m, 0 across; with the
    input orthogonal to m, the fixed points are x = c + t m for every t."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0, 1, n)
    w_in = rng.normal(0, 1, n)
    w_in -= (w_in @ m) / (m @ m) * m
    net = fr.LowRankRNN(m[:, None], (n * m / (m @ m))[:, None], w_in[:, None], np.zeros((0, n)),
                        phi="identity", tau=1.0, dt=0.1, dtype=dtype)  # fmt: skip
    return net, m, w_in


def test_line_attractor_is_detected_as_a_one_dimensional_continuum():
    net, m, w_in = _line_attractor_network()
    u = 0.5
    fp = fixed_points(net, [u], n_init=60, init_noise=1.0, seed=1)
    assert len(fp) >= 20 and fp.fixed.all()
    assert fp.is_continuum and fp.continuum_dimension == 1 and fp.spread_dimension == 1
    # every point on the line c + t m, with exactly one flow eigenvalue 0 (map eigenvalue 1)
    c = u * w_in
    residual = (fp.x - c) - np.outer((fp.x - c) @ m / (m @ m), m)
    assert np.abs(residual).max() < 1e-10
    assert ((np.abs(fp.flow_eigenvalues) < 1e-8).sum(axis=1) == 1).all()
    assert fp.marginal.all() and "continuum of dimension 1" in fp.summary()


def test_a_slow_but_nonzero_mode_does_not_raise_the_continuum_dimension():
    """W = m m^T/|m|² + 0.995 w w^T/|w|² (m, w orthogonal): flow eigenvalues 0 along m (the
    line of fixed points), -0.005 along w (slow, below zero_tol) and -1 elsewhere. The
    points spread along m only, so the continuum is one-dimensional."""
    rng = np.random.default_rng(5)
    n = 20
    m, w = np.linalg.qr(rng.normal(0, 1, (n, 2)))[0].T
    W = np.outer(m, m) + 0.995 * np.outer(w, w)
    net = fr.RateRNN(W, np.zeros((n, 1)), np.zeros((0, n)), phi="identity", tau=1.0, dt=0.1)
    fp = fixed_points(net, [0.0], n_init=60, init_noise=1.0, seed=1)
    slow = (np.abs(fp.flow_eigenvalues[fp.fixed]) <= 1e-2).sum(axis=1)
    assert fp.fixed.sum() >= 20 and (slow == 2).all()
    assert fp.continuum_dimension == 1 and fp.spread_dimension == 1


def test_a_plane_attractor_is_two_dimensional():
    """W = P, the projection on a plane: flow eigenvalue 0 on the plane, -1 across."""
    rng = np.random.default_rng(6)
    n = 12
    basis = np.linalg.qr(rng.normal(0, 1, (n, 2)))[0]
    net = fr.RateRNN(basis @ basis.T, np.zeros((n, 1)), np.zeros((0, n)), phi="identity",
                     tau=1.0, dt=0.1)  # fmt: skip
    fp = fixed_points(net, [0.0], n_init=80, init_noise=1.0, seed=2)
    assert fp.fixed.sum() >= 30
    assert fp.continuum_dimension == 2 and fp.spread_dimension == 2


def test_a_saddle_node_ghost_is_a_slow_point():
    """One unit, dx/dt = -x + 1.2 tanh(x) + c just past the saddle-node bifurcation of its
    lower pair of fixed points (at x = -x_f): no fixed point there, but a slow point (a
    minimum of q above zero, q = (alpha 1e-3)² / 2) where the two met; the upper fixed point
    remains."""
    net = fr.RateRNN(np.array([[1.2]]), np.ones((1, 1)), np.zeros((0, 1)), tau=1.0, dt=0.1)
    # the fold: 1.2 tanh'(x) = 1 at x_f = atanh(sqrt(1 - 1/1.2)); c_f = x_f - 1.2 tanh(x_f)
    x_f = np.arctanh(np.sqrt(1 - 1 / 1.2))
    c = -(x_f - 1.2 * np.tanh(x_f)) + 1e-3  # just past the fold of the lower pair
    fp = fixed_points(net, [c], n_init=50, states=np.linspace(-3, 3, 61)[:, None], seed=0)
    slow = fp.select(~fp.fixed)
    assert fp.fixed.sum() == 1 and fp.stable[fp.fixed].all()
    assert len(slow) >= 1 and abs(slow.x[0, 0] + x_f) < 0.05
    assert 0 < slow.q[0] < 1e-6


def test_a_fixed_point_far_from_the_sampled_states_is_still_found():
    """A linear network driven hard (|x*| ~ 10² away from the states sampled near 0, beyond
    Adam's reach with its fixed step size): Levenberg-Marquardt from the lowest-q endpoints
    reaches it, in float64 and float32 (whose threshold grows with |x|²)."""
    rng = np.random.default_rng(7)
    n = 30
    W = rng.normal(0, 0.5 / np.sqrt(n), (n, n))
    net = fr.RateRNN(W, rng.normal(0, 1, (n, 1)), np.zeros((0, n)), phi="identity", tau=1.0,
                     dt=0.1)  # fmt: skip
    x_star = np.linalg.solve(np.eye(n) - W, net.W_in[:, 0] * 100.0)
    assert np.abs(x_star).max() > 100
    for dtype, atol in (("float64", 1e-8), ("float32", 1e-2)):
        fp = fixed_points(net.astype(dtype), [100.0], n_init=20, seed=0)
        assert len(fp) == 1 and fp.kind[0] == "fixed", fp.summary()
        np.testing.assert_allclose(fp.x[0], x_star, atol=atol * np.abs(x_star).max())


def test_nothing_found_warns():
    net = fr.RateRNN(np.array([[1.2]]), np.ones((1, 1)), np.zeros((0, 1)), tau=1.0, dt=0.1)
    with pytest.warns(RuntimeWarning, match="no fixed or slow point"):
        fp = fixed_points(net, [5.0], n_init=5, states=[[0.0]], init_noise=0.0, iters=0,
                          refine=False)  # fmt: skip
    assert len(fp) == 0


def test_line_attractor_follows_the_fixed_point_of_a_linear_network_as_u_sweeps():
    rng = np.random.default_rng(2)
    n = 8
    W = rng.normal(0, 0.5 / np.sqrt(n), (n, n))
    w_in = rng.normal(0, 1, (n, 1))
    net = fr.RateRNN(W, w_in, np.zeros((0, n)), phi="identity", tau=1.0, dt=0.2)
    u_values = np.linspace(-1, 1, 5)
    family = line_attractor(net, u_values, n_init=10)
    expected = np.array([np.linalg.solve(np.eye(n) - W, w_in[:, 0] * v) for v in u_values])
    assert family.found.all() and len(family) == 5
    np.testing.assert_allclose(family.x, expected, atol=1e-10)
    assert family.length == pytest.approx(np.linalg.norm(expected[-1] - expected[0]), rel=1e-9)
    assert (family.max_modulus < 1).all()


# ---------------------------------------------------------------------------------------------
# Models and dtypes


def test_float32_finds_the_float64_fixed_points():
    """A random tanh network (g = 1.5): the same points within float32 resolution; q below
    the float32 threshold N * 1e-12."""
    net = fr.RateRNN.random(30, 1, 1, g=1.5, tau=1.0, dt=0.1, seed=4)
    fp64 = fixed_points(net, n_init=40, seed=0)
    fp32 = fixed_points(net.astype("float32"), n_init=40, seed=0)
    assert fp32.x.dtype == np.float32 and fp32.jacobians.dtype == np.float32
    assert len(fp64) >= 1 and fp64.fixed.all() and fp32.fixed.all()
    assert (fp32.q <= 30 * 1e-12).all()
    for x in fp32.x:  # every float32 point is one of the float64 ones
        assert np.min(np.linalg.norm(fp64.x - x, axis=1)) < 1e-4


def test_low_rank_network_fixed_points_are_zeros_of_the_reference_map():
    rng = np.random.default_rng(5)
    net = random_low_rank_rnn(rng, 15, 2, 1, 1, g=2.5, tau=1.0, dt=0.2)
    fp = fixed_points(net, [0.2], n_init=40, seed=1)
    assert len(fp) >= 1
    F = ref.rate_map(fp.x, net.W, net.W_in, net.b, [0.2], alpha=net.alpha)
    assert np.abs(F - fp.x).max() < 1e-9
    J = ref.rate_map_jacobian(fp.x, net.W, net.W_in, net.b, [0.2], alpha=net.alpha)
    np.testing.assert_allclose(fp.jacobians, J, atol=1e-12)


def test_nmrnn_fixed_points_are_zeros_of_the_joint_map_with_its_eigenvalues():
    rng = np.random.default_rng(6)
    net = random_nmrnn(rng, 10, 2, 3, 2, 1, feedback=True)
    u = np.array([0.3, -0.1])
    fp = fixed_points(net, u, n_init=40, seed=2)
    assert len(fp) >= 1 and fp.x.shape[1] == 13 and fp.fixed.all()
    args, kw = _nmrnn_reference_kwargs(net, u)
    F = ref.nmrnn_map(fp.x, *args, **kw)
    assert np.abs(F - fp.x).max() < 1e-9
    for x, eig in zip(fp.x, fp.eigenvalues):
        J = ref.nmrnn_map_jacobian(x[None], *args, **kw)[0]
        np.testing.assert_allclose(np.sort_complex(eig), np.sort_complex(np.linalg.eigvals(J)),
                                   atol=1e-9)  # fmt: skip
    # a stable point is where the network settles
    if fp.stable.any():
        x = fp.x[np.flatnonzero(fp.stable)[0]]
        out = net.run(np.broadcast_to(u, (2000, 1, 2)), x0=x[:10] + 1e-3, z0=x[10:])
        np.testing.assert_allclose(out.x[-1, 0], x[:10], atol=1e-6)


def test_states_from_a_run_seed_the_search_and_results_are_deterministic():
    net = fr.RateRNN.random(20, 1, 1, g=1.8, tau=1.0, dt=0.1, seed=7)
    out = net.run(np.zeros((100, 4, 1)), x0=np.random.default_rng(0).normal(0, 1, (4, 20)))
    a = fixed_points(net, n_init=20, states=out.x, seed=3)
    b = fixed_points(net, n_init=20, states=out.x.reshape(-1, 20), seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    assert isinstance(a, FixedPoints) and a.n_init == 20 and a.count.sum() <= 20


def test_plots_draw_points_and_trajectories():
    import matplotlib.pyplot as plt

    net = fr.RateRNN(np.diag([2.0, 2.0]), np.zeros((2, 0)), np.zeros((0, 2)), tau=1.0, dt=0.1)
    fp = fixed_points(net, n_init=30, init_noise=1.0)
    out = net.run(np.zeros((50, 3, 0)), x0=np.random.default_rng(0).normal(0, 1, (3, 2)))
    ax = fp.plot(trajectories=out.x).axes[0]
    assert len(ax.lines) == 3 and len(ax.collections) == 2  # stable filled, unstable open
    fp.plot()
    family = line_attractor(*_line_attractor_network(n=6)[:1], np.linspace(0, 1, 3), n_init=5)
    family.plot()
    plt.close("all")


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_raises_naming_the_argument():
    net = fr.RateRNN.random(5, 2, 1, seed=0)
    with raises_naming("u_const"):
        fixed_points(net, [0.0, 1.0, 2.0])
    with raises_naming("u_const"):
        fixed_points(net, [np.nan, 0.0])
    with raises_naming("states"):
        fixed_points(net, states=np.zeros((10, 4)))
    with raises_naming("x_init"):
        fixed_points(net, x_init=np.zeros((2, 6)))
    with raises_naming("n_init"):
        fixed_points(net, n_init=0)
    with raises_naming("neuron_gain"):
        fixed_points(net, neuron_gain=np.ones(4))
    with raises_naming("gain"):
        fixed_points(net, gain=np.inf)
    with raises_naming("slow_tol"):
        fixed_points(net, fp_tol=1e-3, slow_tol=1e-6)
    with raises_naming("net"):
        fixed_points(fr.LSTM.random(4, 1, 1))
    with raises_naming("u_values"):
        line_attractor(net, np.zeros((3, 1)))
    nm = random_nmrnn(np.random.default_rng(0), 4, 1, 2, 1, 1)
    with raises_naming("gain"):  # an NMRNN takes a gain on its low-rank term, a finite one
        fixed_points(nm, gain=np.inf)
    with raises_naming("post_gain"):
        fixed_points(nm, post_gain=np.ones(3))
    with raises_naming("neuron_gain"):
        fixed_points(nm, neuron_gain=np.ones(4))
