"""Dimensionality and geometry (flexrnn.analysis.geometry): known answers, invariances under
random rotations and scalings, agreement with textbook formulas and peer libraries, bad input."""

from __future__ import annotations

import itertools

import flexrnn as fr
import numpy as np
import pytest
from conftest import numpy_seeds, raises_naming
from flexrnn import analysis as an
from hypothesis import given
from hypothesis import strategies as st

samples = st.integers(30, 80)
units = st.integers(1, 8)
scales = st.floats(1e-3, 1e3)


def random_orthogonal(rng, n):
    """Haar-distributed orthogonal matrix (QR of a Gaussian, signs fixed)."""
    Q, R = np.linalg.qr(rng.normal(size=(n, n)))
    return Q * np.sign(np.diag(R))


def correlated_states(rng, m, n, spread=1.0):
    """(m, n) states with unequal variances along random directions and a random offset."""
    Z = rng.normal(size=(m, n)) * np.exp(spread * rng.normal(size=n))
    return Z @ random_orthogonal(rng, n) + rng.normal(size=n)


def centred_rank(X):
    Xc = X - X.mean(axis=0)
    return np.linalg.matrix_rank(Xc)


@pytest.fixture(scope="module")
def network_states():
    """States (T, B, n) of a chaotic rate network driven by random inputs, with state noise."""
    net = fr.RateRNN.random(n=30, n_in=3, n_out=1, g=1.5, tau=5.0, seed=1)
    rng = np.random.default_rng(2)
    u = rng.normal(size=(100, 20, 3))
    return net.run(u, x0=rng.normal(0, 1, (20, 30)), noise_std=0.1, seed=3).x


# ---------------------------------------------------------------------------------------------
# Participation ratio


@given(numpy_seeds, samples, units, st.integers(1, 8))
def test_participation_ratio_lies_between_one_and_rank(seed, m, n, r):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(m, r)) * np.exp(rng.normal(size=r))) @ rng.normal(size=(r, n))
    pr = an.participation_ratio(X)
    assert 1 - 1e-10 <= pr <= centred_rank(X) + 1e-10


@given(numpy_seeds, samples, units)
def test_participation_ratio_matches_covariance_eigenvalues(seed, m, n):
    X = correlated_states(np.random.default_rng(seed), m, n)
    lam = np.linalg.eigvalsh(np.atleast_2d(np.cov(X, rowvar=False)))
    np.testing.assert_allclose(an.participation_ratio(X), lam.sum() ** 2 / np.sum(lam**2))


@given(numpy_seeds, st.integers(2, 10), st.integers(11, 40))
def test_participation_ratio_with_fewer_samples_than_units(seed, m, n):
    X = np.random.default_rng(seed).normal(size=(m, n))
    lam = np.linalg.eigvalsh(np.cov(X, rowvar=False))
    np.testing.assert_allclose(an.participation_ratio(X), lam.sum() ** 2 / np.sum(lam**2))


@given(numpy_seeds, samples, units, scales)
def test_participation_ratio_is_invariant_to_rotation_scaling_and_translation(seed, m, n, c):
    rng = np.random.default_rng(seed)
    X = correlated_states(rng, m, n)
    Y = c * X @ random_orthogonal(rng, n) + rng.normal(size=n)
    np.testing.assert_allclose(an.participation_ratio(Y), an.participation_ratio(X), rtol=1e-9)


@given(numpy_seeds, samples, units)
def test_participation_ratio_of_rank_one_data_is_one(seed, m, n):
    rng = np.random.default_rng(seed)
    X = np.outer(rng.normal(size=m), rng.normal(size=n)) + rng.normal(size=n)
    np.testing.assert_allclose(an.participation_ratio(X), 1.0, rtol=1e-9)


def test_participation_ratio_of_isotropic_data_is_close_to_n():
    n, m = 10, 20000
    X = np.random.default_rng(0).normal(size=(m, n))
    # finite samples spread the eigenvalues by about sqrt(n / m): PR ~ n / (1 + n / m)
    assert abs(an.participation_ratio(X) - n) < 0.05 * n


def test_time_major_states_are_treated_as_samples(network_states):
    flat = network_states.reshape(-1, network_states.shape[-1])
    other = np.tanh(flat[:, ::-1] + 0.3)
    assert an.participation_ratio(network_states) == an.participation_ratio(flat)
    assert an.svcca(network_states, other).distance == an.svcca(flat, other).distance
    assert an.linear_cka(network_states, other) == an.linear_cka(flat, other)
    assert an.procrustes_distance(network_states, other) == an.procrustes_distance(flat, other)
    np.testing.assert_array_equal(
        an.cca(network_states, other).correlations, an.cca(flat, other).correlations
    )


# ---------------------------------------------------------------------------------------------
# CCA


@given(numpy_seeds, samples, units)
def test_cca_of_data_with_an_invertible_map_of_itself_is_all_ones(seed, m, n):
    rng = np.random.default_rng(seed)
    X = correlated_states(rng, m, n)
    M = random_orthogonal(rng, n) * np.exp(rng.normal(size=n))  # invertible, condition ~ e^4
    for Y in (X, X @ M + rng.normal(size=n)):
        res = an.cca(X, Y)
        assert res.correlations.shape == (n,)
        np.testing.assert_allclose(res.correlations, 1.0, atol=1e-9)


@given(numpy_seeds, samples, units, units)
def test_cca_is_symmetric(seed, m, nx, ny):
    rng = np.random.default_rng(seed)
    X, Y = correlated_states(rng, m, nx), correlated_states(rng, m, ny)
    Y[:, 0] += X[:, 0]
    np.testing.assert_allclose(an.cca(X, Y).correlations, an.cca(Y, X).correlations, atol=1e-12)


@given(numpy_seeds, st.integers(1, 6), st.integers(1, 6))
def test_cca_matches_the_covariance_eigenproblem(seed, nx, ny):
    rng = np.random.default_rng(seed)
    m = 200
    X, Y = correlated_states(rng, m, nx, 0.5), correlated_states(rng, m, ny, 0.5)
    Y[:, 0] += X[:, 0]
    C = np.cov(np.hstack([X, Y]), rowvar=False)
    Cxx, Cxy, Cyy = C[:nx, :nx], C[:nx, nx:], C[nx:, nx:]
    # rho² are the eigenvalues of Cxx^-1 Cxy Cyy^-1 Cyx (textbook, Hotelling 1936)
    M = np.linalg.solve(Cxx, Cxy) @ np.linalg.solve(Cyy, Cxy.T)
    rho2 = np.sort(np.linalg.eigvals(M).real)[::-1][: min(nx, ny)]
    np.testing.assert_allclose(an.cca(X, Y).correlations ** 2, rho2, atol=1e-9)


@given(numpy_seeds, samples, units, units)
def test_cca_weights_give_uncorrelated_unit_variance_variates(seed, m, nx, ny):
    rng = np.random.default_rng(seed)
    X, Y = correlated_states(rng, m, nx), correlated_states(rng, m, ny)
    Y[:, 0] += X[:, 0]
    res = an.cca(X, Y)
    a = (X - X.mean(0)) @ res.x_weights
    b = (Y - Y.mean(0)) @ res.y_weights
    k = res.correlations.size
    C = np.cov(np.hstack([a, b]), rowvar=False)
    expected = np.block(
        [[np.eye(k), np.diag(res.correlations)], [np.diag(res.correlations), np.eye(k)]]
    )
    np.testing.assert_allclose(C, expected, atol=1e-8)


def test_cca_handles_rank_deficient_data():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(500, 3))
    # a duplicated unit, a constant unit and a sum of two others: rank 3 of 6 units
    X = np.column_stack([Z, Z[:, 0], np.full(500, 2.0), Z[:, 1] + Z[:, 2]])
    Y = Z @ rng.normal(size=(3, 4)) + rng.normal(0, 0.1, (500, 4))
    res = an.cca(X, Y)
    assert (res.x_rank, res.y_rank) == (3, 4)
    assert res.correlations.shape == (3,) and res.x_weights.shape == (6, 3)
    assert np.all(np.isfinite(res.x_weights)) and np.all(np.isfinite(res.y_weights))
    assert np.all((res.correlations > 0.9) & (res.correlations <= 1.0))
    np.testing.assert_allclose(an.cca(X, X).correlations, 1.0, atol=1e-10)


def test_cca_recovers_a_known_correlation():
    rng = np.random.default_rng(1)
    m, rho = 50000, 0.6
    x, z = rng.normal(size=(2, m))
    X = np.column_stack([x, rng.normal(size=(m, 2))])
    Y = np.column_stack([rng.normal(size=(m, 2)), rho * x + np.sqrt(1 - rho**2) * z])
    c = an.cca(X, Y).correlations
    assert abs(c[0] - rho) < 0.02 and np.all(c[1:] < 0.03)


def test_cca_k_keeps_the_largest_correlations():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(2, 100, 5))
    Y[:, 1] += X[:, 3]
    full = an.cca(X, Y)
    top = an.cca(X, Y, k=2)
    np.testing.assert_allclose(top.correlations, full.correlations[:2])
    assert top.x_weights.shape == (5, 2) and top.y_weights.shape == (5, 2)
    assert an.cca(X, Y, k=9).correlations.shape == (5,)


# ---------------------------------------------------------------------------------------------
# SVCCA


@given(numpy_seeds, scales, st.booleans())
def test_svcca_of_a_network_against_a_rotated_scaled_copy_is_zero(network_states, seed, c, flip):
    rng = np.random.default_rng(seed)
    X = network_states.reshape(-1, network_states.shape[-1])
    Q = random_orthogonal(rng, X.shape[1])
    if flip:
        Q[:, 0] *= -1
    res = an.svcca(X, c * X @ Q + rng.normal(size=X.shape[1]))
    assert res.distance < 1e-8 and abs(res.similarity - 1) < 1e-8
    assert res.dims[0] == res.dims[1] and 1 < res.dims[0] < X.shape[1]


def test_svcca_of_a_network_against_independent_noise_is_near_one(network_states):
    X = network_states.reshape(-1, network_states.shape[-1])
    m = X.shape[0]
    noise = np.random.default_rng(4).normal(size=X.shape)
    res = an.svcca(X, noise)
    # canonical correlations of independent d-dimensional subspaces of R^m are at most about
    # sqrt(dx / m) + sqrt(dy / m) (Wachter 1980); their mean is below that
    bound = np.sqrt(res.dims[0] / m) + np.sqrt(res.dims[1] / m)
    assert 1 - bound < res.distance <= 1
    assert res.correlations.max() < 1.5 * bound


def test_svcca_keeps_the_directions_explaining_the_variance():
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(400, 4))
    Q, _ = np.linalg.qr(Z - Z.mean(0))
    # variances 100, 25, 1, 0.01: cumulative fractions 0.794, 0.992, 0.99992, 1
    X = Q * [10.0, 5.0, 1.0, 0.1] @ random_orthogonal(rng, 4)
    Y = rng.normal(size=(400, 6))
    assert an.svcca(X, Y).dims == (2, 6)
    assert an.svcca(X, Y, variance=0.995).dims[0] == 3
    assert an.svcca(X, Y, variance=0.5).dims[0] == 1
    assert an.svcca(X, Y, variance=1.0).dims == (4, 6)
    assert an.svcca(X, Y, dims=3).dims == (3, 3)
    assert an.svcca(X, Y, dims=50).dims == (4, 6)


@given(numpy_seeds, samples, units, units)
def test_svcca_is_symmetric_and_bounded(seed, m, nx, ny):
    rng = np.random.default_rng(seed)
    X, Y = correlated_states(rng, m, nx), correlated_states(rng, m, ny)
    Y[:, 0] += X[:, 0]
    a, b = an.svcca(X, Y), an.svcca(Y, X)
    assert a.dims == b.dims[::-1]
    assert abs(a.distance - b.distance) < 1e-12
    assert 0 <= a.similarity <= 1 and a.distance == pytest.approx(1 - a.similarity)


@given(numpy_seeds, samples, units, units)
def test_svcca_keeping_all_variance_is_mean_cca(seed, m, nx, ny):
    rng = np.random.default_rng(seed)
    X, Y = correlated_states(rng, m, nx), correlated_states(rng, m, ny)
    res = an.svcca(X, Y, variance=1.0)
    np.testing.assert_allclose(res.correlations, an.cca(X, Y).correlations, atol=1e-12)
    assert res.similarity == pytest.approx(np.mean(res.correlations))


# ---------------------------------------------------------------------------------------------
# Linear CKA


@given(numpy_seeds, samples, units, units, scales)
def test_linear_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling(seed, m, nx, ny, c):
    rng = np.random.default_rng(seed)
    X, Y = correlated_states(rng, m, nx), correlated_states(rng, m, ny)
    Y[:, 0] += X[:, 0]
    cka = an.linear_cka(X, Y)
    X2 = c * X @ random_orthogonal(rng, nx) + rng.normal(size=nx)
    Y2 = Y @ random_orthogonal(rng, ny) / c
    np.testing.assert_allclose(an.linear_cka(X2, Y2), cka, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(an.linear_cka(X, X2), 1.0, rtol=1e-9)


@given(numpy_seeds, st.integers(3, 30), units, st.integers(1, 40))
def test_linear_cka_matches_the_hsic_formula(seed, m, nx, ny):
    """Kornblith et al. (2019), eq. 2-4: HSIC(K, L) = tr(K H L H) with linear kernels; both
    the feature-space and the sample-space computations (ny > m) give it."""
    rng = np.random.default_rng(seed)
    X, Y = correlated_states(rng, m, nx), rng.normal(size=(m, ny))
    H = np.eye(m) - 1.0 / m
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    expected = np.trace(K @ L) / np.sqrt(np.trace(K @ K) * np.trace(L @ L))
    cka = an.linear_cka(X, Y)
    np.testing.assert_allclose(cka, expected, rtol=1e-9, atol=1e-12)
    assert 0 <= cka <= 1 + 1e-12
    np.testing.assert_allclose(an.linear_cka(Y, X), cka, rtol=1e-12)


def test_linear_cka_is_not_invariant_to_anisotropic_scaling():
    X = np.random.default_rng(6).normal(size=(500, 3))
    assert an.linear_cka(X, X * [1.0, 1.0, 10.0]) < 0.9
    assert an.svcca(X, X * [1.0, 1.0, 10.0], variance=1.0).distance < 1e-10  # CCA is


# ---------------------------------------------------------------------------------------------
# Procrustes


@given(numpy_seeds, samples, units, scales, st.integers(0, 3))
def test_procrustes_distance_is_zero_for_a_rotated_scaled_translated_copy(seed, m, n, c, pad):
    rng = np.random.default_rng(seed)
    X = correlated_states(rng, m, n)
    Y = c * X @ random_orthogonal(rng, n) + rng.normal(size=n)
    Y = np.hstack([Y, np.zeros((m, pad))])  # extra silent units change nothing
    assert an.procrustes_distance(X, Y) < 1e-6  # sqrt of a rounding error
    assert an.procrustes_distance(X, Y, angular=True) < 1e-6


@given(numpy_seeds, samples, units)
def test_procrustes_distance_matches_scipy(seed, m, n):
    spatial = pytest.importorskip("scipy.spatial")
    rng = np.random.default_rng(seed)
    X, Y = correlated_states(rng, m, n), correlated_states(rng, m, n)
    Y[:, 0] += X[:, 0]
    _, _, disparity = spatial.procrustes(X, Y)  # also rescales Y: disparity = 1 - nu^2
    nu = np.sqrt(1 - disparity)
    np.testing.assert_allclose(an.procrustes_distance(X, Y), np.sqrt(2 - 2 * nu), rtol=1e-7)
    np.testing.assert_allclose(an.procrustes_distance(X, Y, angular=True), np.arccos(nu))


@given(numpy_seeds, samples, units, units, units, st.booleans())
def test_procrustes_distance_is_a_metric(seed, m, n1, n2, n3, angular):
    rng = np.random.default_rng(seed)
    A, B, C = (correlated_states(rng, m, n) for n in (n1, n2, n3))
    d = lambda X, Y: an.procrustes_distance(X, Y, angular=angular)  # noqa: E731
    assert d(A, B) == pytest.approx(d(B, A), abs=1e-12)
    assert d(A, C) <= d(A, B) + d(B, C) + 1e-9
    assert 0 <= d(A, B) <= (np.pi / 2 if angular else np.sqrt(2)) + 1e-12


# ---------------------------------------------------------------------------------------------
# Populations: distance matrices, MDS, silhouette


@pytest.fixture(scope="module")
def population():
    """Six state matrices on the same 300 samples, with 3 to 8 units."""
    rng = np.random.default_rng(7)
    return [correlated_states(rng, 300, n) for n in (3, 5, 8, 4, 6, 3)]


@pytest.mark.parametrize(
    "metric, options, pair",
    [
        ("svcca", {}, lambda X, Y: an.svcca(X, Y).distance),
        ("svcca", {"variance": 0.5}, lambda X, Y: an.svcca(X, Y, 0.5).distance),
        ("svcca", {"dims": 2}, lambda X, Y: an.svcca(X, Y, dims=2).distance),
        ("cka", {}, lambda X, Y: 1 - an.linear_cka(X, Y)),
        ("procrustes", {}, an.procrustes_distance),
        ("procrustes", {"angular": True}, lambda X, Y: an.procrustes_distance(X, Y, angular=True)),
    ],
)
def test_distance_matrix_is_symmetric_and_matches_the_pairwise_distances(
    population, metric, options, pair
):
    D = an.distance_matrix(population, metric, **options)
    P = len(population)
    assert D.shape == (P, P)
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    for i, j in itertools.combinations(range(P), 2):
        assert D[i, j] == pytest.approx(pair(population[i], population[j]), abs=1e-12)


def test_distance_matrix_takes_a_callable_and_stacked_arrays(population):
    def mean_gap(X, Y, power=1.0):
        assert X.dtype == np.float64 and X.ndim == 2
        return abs(X.mean() - Y.mean()) ** power

    D = an.distance_matrix(population, mean_gap, power=2.0)
    assert D[0, 1] == pytest.approx((population[0].mean() - population[1].mean()) ** 2)
    stacked = np.stack([X[:, :3].reshape(30, 10, 3) for X in population])  # (P, T, B, n)
    np.testing.assert_allclose(
        an.distance_matrix(stacked, "cka"),
        an.distance_matrix([X[:, :3] for X in population], "cka"),
    )


def test_a_population_of_two_network_families_separates(network_states):
    """Rotated, rescaled and slightly perturbed copies of two networks' states: SVCCA puts the
    copies of each network together, MDS shows two groups, the silhouette is close to 1."""
    rng = np.random.default_rng(8)
    net = fr.RateRNN.random(n=30, n_in=3, n_out=1, g=1.5, tau=5.0, seed=11)
    u = rng.normal(size=(100, 20, 3))
    other = net.run(u, x0=rng.normal(0, 1, (20, 30)), noise_std=0.1, seed=3).x
    states, labels = [], []
    for label, base in enumerate((network_states, other)):
        flat = base.reshape(-1, 30)
        for _ in range(3):
            copy = rng.uniform(0.5, 2) * flat @ random_orthogonal(rng, 30)
            states.append(copy + rng.normal(0, 0.01, copy.shape))
            labels.append(label)
    D = an.distance_matrix(states, "svcca")
    within = D[np.equal.outer(labels, labels) & ~np.eye(6, dtype=bool)]
    between = D[~np.equal.outer(labels, labels)]
    assert within.max() < 0.05 < between.min()
    emb = an.mds(D, dims=2).embedding
    assert emb.shape == (6, 2)
    assert an.silhouette_score(D, labels) > 0.8


@given(numpy_seeds, st.integers(2, 12))
def test_mds_recovers_a_planar_configuration(seed, P):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(P, 2)) * [3.0, 1.0] + rng.normal(size=2)
    D = np.linalg.norm(points[:, None] - points[None], axis=-1)
    res = an.mds(D, dims=2)
    emb_D = np.linalg.norm(res.embedding[:, None] - res.embedding[None], axis=-1)
    scale = max(1.0, D.max())
    np.testing.assert_allclose(emb_D, D, atol=1e-9 * scale)
    assert res.stress < 1e-9
    np.testing.assert_allclose(res.embedding.mean(axis=0), 0.0, atol=1e-9 * scale)
    assert res.eigenvalues.shape == (P,) and np.all(np.diff(res.eigenvalues) <= 1e-9 * scale**2)
    np.testing.assert_allclose(res.eigenvalues[2:], 0.0, atol=1e-9 * scale**2)


def test_mds_of_points_in_three_dimensions_into_two_has_positive_stress():
    rng = np.random.default_rng(9)
    points = rng.normal(size=(20, 3))
    D = np.linalg.norm(points[:, None] - points[None], axis=-1)
    assert an.mds(D, dims=2).stress > 0.05
    assert an.mds(D, dims=3).stress < 1e-9
    # a 1-D embedding puts the items along the first principal axis
    axis = np.linalg.svd(points - points.mean(0))[2][0]
    np.testing.assert_allclose(
        np.abs(an.mds(D, dims=1).embedding[:, 0]), np.abs((points - points.mean(0)) @ axis)
    )


def test_silhouette_score_matches_a_hand_computation():
    # points 0, 2 | 5, 6 | 20 on a line; the last one alone in its cluster
    x = np.array([0.0, 2.0, 5.0, 6.0, 20.0])
    D = np.abs(x[:, None] - x[None])
    # a = mean distance within the cluster, b = nearest other cluster's mean distance
    #   item 0: a 2, b (5 + 6) / 2 = 5.5 -> 3.5 / 5.5;  item 1: a 2, b 3.5 -> 1.5 / 3.5
    #   item 2: a 1, b 4 -> 3 / 4;  item 3: a 1, b 5 -> 4 / 5;  item 4: singleton -> 0
    expected = np.array([7 / 11, 3 / 7, 3 / 4, 4 / 5, 0.0])
    np.testing.assert_allclose(an.silhouette_samples(D, ["a", "a", "b", "b", "c"]), expected)
    np.testing.assert_allclose(an.silhouette_score(D, [1, 1, 0, 0, 7]), expected.mean())
    # identical items of one cluster, at distance 0 from the other: 0, not NaN
    assert an.silhouette_score(np.zeros((4, 4)), [0, 0, 1, 1]) == 0.0


@given(numpy_seeds, st.integers(3, 15), st.integers(2, 4))
def test_silhouette_samples_match_the_definition(seed, P, k):
    rng = np.random.default_rng(seed)
    k = min(k, P - 1)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, P - k)])
    points = rng.normal(size=(P, 2)) + labels[:, None]
    D = np.linalg.norm(points[:, None] - points[None], axis=-1)
    expected = []
    for i in range(P):
        same = (labels == labels[i]) & (np.arange(P) != i)
        if not same.any():
            expected.append(0.0)
            continue
        a = D[i, same].mean()
        b = min(D[i, labels == c].mean() for c in set(labels) - {labels[i]})
        expected.append((b - a) / max(a, b))
    np.testing.assert_allclose(an.silhouette_samples(D, labels), expected, atol=1e-12)


@given(numpy_seeds, st.integers(3, 15), st.integers(2, 4))
def test_silhouette_score_matches_sklearn(seed, P, k):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    k = min(k, P - 1)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, P - k)])
    points = rng.normal(size=(P, 3))
    D = np.linalg.norm(points[:, None] - points[None], axis=-1)
    expected = metrics.silhouette_score(D, labels, metric="precomputed")
    assert an.silhouette_score(D, labels) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Bad input

_rng = np.random.default_rng(10)
X = _rng.normal(size=(20, 3))
Y = _rng.normal(size=(20, 4))
D4 = np.abs(np.subtract.outer(np.arange(4.0), np.arange(4.0)))
with_nan = X.copy()
with_nan[3, 1] = np.nan
asymmetric = D4.copy()
asymmetric[0, 1] += 1.0
negative = -D4
diagonal = D4 + np.eye(4)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: an.participation_ratio(np.ones(5)), "X"),
        (lambda: an.participation_ratio(np.ones((2, 2, 2, 2))), "X"),
        (lambda: an.participation_ratio(np.ones((1, 3))), "X"),
        (lambda: an.participation_ratio(np.ones((5, 0))), "X"),
        (lambda: an.participation_ratio(with_nan), "X"),
        (lambda: an.participation_ratio(np.ones((5, 3))), "X"),
        (lambda: an.participation_ratio(np.array(["a", "b"])), "X"),
        (lambda: an.cca(X, Y[:-1]), "Y"),
        (lambda: an.cca(X, np.zeros((20, 2))), "Y"),
        (lambda: an.cca(X, Y, k=0), "k"),
        (lambda: an.cca(X, Y, k=1.5), "k"),
        (lambda: an.cca(X, Y, tol=-1.0), "tol"),
        (lambda: an.svcca(X, Y[:5]), "Y"),
        (lambda: an.svcca(with_nan, Y), "X"),
        (lambda: an.svcca(X, Y, variance=0.0), "variance"),
        (lambda: an.svcca(X, Y, variance=1.5), "variance"),
        (lambda: an.svcca(X, Y, variance=np.nan), "variance"),
        (lambda: an.svcca(X, Y, dims=0), "dims"),
        (lambda: an.linear_cka(X, Y[:-1]), "Y"),
        (lambda: an.linear_cka(np.ones((20, 3)), Y), "X"),
        (lambda: an.procrustes_distance(X, with_nan), "Y"),
        (lambda: an.procrustes_distance(X[:, 0], Y), "X"),
        (lambda: an.distance_matrix([]), "states"),
        (lambda: an.distance_matrix(X), "states"),
        (lambda: an.distance_matrix(5), "states"),
        (lambda: an.distance_matrix([X, Y[:-1]]), "states[1]"),
        (lambda: an.distance_matrix([X, Y, with_nan]), "states[2]"),
        (lambda: an.distance_matrix([X, Y], "euclid"), "metric"),
        (lambda: an.distance_matrix([X, Y], 3), "metric"),
        (lambda: an.distance_matrix([X, Y], lambda a, b: np.nan), "metric"),
        (lambda: an.distance_matrix([X, Y], lambda a, b: "far"), "metric"),
        (lambda: an.distance_matrix([X, Y], "cka", variance=0.9), "options"),
        (lambda: an.distance_matrix([X, Y], "svcca", variance=2.0), "variance"),
        (lambda: an.mds(np.ones((3, 4))), "D"),
        (lambda: an.mds(asymmetric), "D"),
        (lambda: an.mds(negative), "D"),
        (lambda: an.mds(diagonal), "D"),
        (lambda: an.mds(np.full((4, 4), np.inf)), "D"),
        (lambda: an.mds(D4, dims=0), "dims"),
        (lambda: an.mds(D4, dims=5), "dims"),
        (lambda: an.silhouette_score(D4, [0, 1, 1]), "labels"),
        (lambda: an.silhouette_score(D4, [0, 0, 0, 0]), "labels"),
        (lambda: an.silhouette_score(D4, [0, 1, 2, 3]), "labels"),
        (lambda: an.silhouette_score(D4, [0.0, 1.0, np.nan, 1.0]), "labels"),
        (lambda: an.silhouette_score(asymmetric, [0, 0, 1, 1]), "D"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, name):
    with raises_naming(name):
        call()


@given(st.lists(st.integers(0, 3), min_size=0, max_size=5))
def test_states_of_a_wrong_number_of_dimensions_are_rejected(shape):
    value = np.ones(shape)
    if value.ndim in (2, 3) and value.size:
        return
    with raises_naming("X"):
        an.participation_ratio(value)
