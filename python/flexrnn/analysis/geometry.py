"""Dimensionality and representational geometry of network states (pure NumPy).

State matrices ``X`` are ``(samples, units)``: e.g. a run's states ``out.x`` of shape
``(T, B, n)`` reshaped to ``(T * B, n)``. Every function here also accepts the time-major
``(T, B, n)`` array itself and does that reshape. Two networks are compared on the *same*
samples (the same trials and time steps), so ``X`` and ``Y`` must have the same number of
rows; their numbers of units may differ. All computations are in float64 on centred data
(the mean over samples is removed), as ``docs/dynamics_analysis.md`` states:

- :func:`participation_ratio`: ``(sum λ)² / sum λ²`` of the covariance eigenvalues.
- :func:`cca`: canonical correlations (and directions) between two state matrices.
- :func:`svcca`: keep the top singular directions explaining ``variance`` of each, then
  CCA; similarity = mean canonical correlation, distance = 1 - similarity (Raghu et al. 2017).
- :func:`linear_cka`: linear centred kernel alignment (Kornblith et al. 2019).
- :func:`procrustes_distance`: orthogonal Procrustes after centring and normalising.
- :func:`distance_matrix`: any of these distances over a population of networks.
- :func:`mds`: classical (Torgerson) multidimensional scaling of a distance matrix, or
  (``method="rows"``) metric MDS (SMACOF) of the rows of the distance matrix used as feature
  vectors, as the learning-rule study (McMahan et al. 2021) did.
- :func:`silhouette_score`, :func:`silhouette_samples`: cluster quality from distances
  (Rousseeuw 1987), on the distance matrix itself or on its rows used as feature vectors.
- :func:`row_distances`: Euclidean distances between the rows of a distance matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from flexrnn import _validate as check

__all__ = [
    "CCAResult",
    "MDSResult",
    "SVCCAResult",
    "cca",
    "distance_matrix",
    "linear_cka",
    "mds",
    "participation_ratio",
    "procrustes_distance",
    "row_distances",
    "silhouette_samples",
    "silhouette_score",
    "svcca",
]

METRICS = ("svcca", "cka", "procrustes")
METHODS = ("precomputed", "rows")
Metric = Union[str, Callable[[np.ndarray, np.ndarray], float]]

# A cumulative variance fraction that equals the threshold in exact arithmetic may land a
# rounding error below it; this slack keeps the number of kept directions the same for a
# matrix and its rotated or rescaled copy.
_VARIANCE_SLACK = 1e-12


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class CCAResult:
    """Canonical correlation analysis of ``X: (samples, n_x)`` and ``Y: (samples, n_y)``.

    Attributes
    ----------
    correlations : (k,) ndarray
        Canonical correlations in descending order, in [0, 1].
    x_weights : (n_x, k) ndarray
        Canonical directions of ``X``: the variates ``(X - X.mean(0)) @ x_weights`` have unit
        variance (``ddof=1``) and are mutually uncorrelated.
    y_weights : (n_y, k) ndarray
        The same for ``Y``; variate ``i`` of ``X`` and of ``Y`` correlate by
        ``correlations[i]`` (with a positive sign).
    x_rank, y_rank : int
        Numerical ranks of the centred ``X`` and ``Y``; ``k <= min(x_rank, y_rank)``.
    """

    correlations: np.ndarray
    x_weights: np.ndarray
    y_weights: np.ndarray
    x_rank: int
    y_rank: int


@dataclass
class SVCCAResult:
    """SVCCA of two state matrices.

    Attributes
    ----------
    similarity : float
        Mean canonical correlation of the kept singular directions, in [0, 1].
    distance : float
        ``1 - similarity``.
    correlations : (min(dims),) ndarray
        The canonical correlations, descending.
    dims : tuple of int
        Number of singular directions kept of ``X`` and of ``Y``.
    """

    similarity: float
    distance: float
    correlations: np.ndarray
    dims: tuple[int, int]


@dataclass
class MDSResult:
    """Classical MDS of a ``(P, P)`` distance matrix.

    Attributes
    ----------
    embedding : (P, dims) ndarray
        Coordinates of the ``P`` items, centred, axes in order of decreasing eigenvalue.
    eigenvalues : (P,) ndarray
        All eigenvalues of the double-centred matrix ``-J D² J / 2``, descending; negative
        ones mean that ``D`` is not Euclidean.
    stress : float
        Kruskal's stress-1 of the embedding, ``sqrt(sum (D - d)² / sum D²)`` over pairs, with
        ``d`` the distances between embedded points: 0 when ``D`` is reproduced exactly.
    """

    embedding: np.ndarray
    eigenvalues: np.ndarray
    stress: float


# ---------------------------------------------------------------------------------------------
# Argument checks


def _states(name: str, value: Any) -> np.ndarray:
    """(samples, units) float64 from a (samples, units) or (T, B, units) array."""
    arr = check.real_array(name, value)
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0] * arr.shape[1], arr.shape[2])
    elif arr.ndim != 2:
        raise ValueError(
            f"{name}: expected shape (samples, units) or (T, B, units), got {arr.shape}"
        )
    if arr.shape[0] < 2:
        raise ValueError(f"{name}: expected at least 2 samples (rows), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name}: expected at least 1 unit (column), got shape {arr.shape}")
    return check.array(name, arr, np.dtype(np.float64))


def _centred(name: str, value: Any) -> np.ndarray:
    X = _states(name, value)
    return X - X.mean(axis=0)


def _same_samples(name: str, Y: np.ndarray, x_name: str, X: np.ndarray) -> None:
    if Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{name}: expected {X.shape[0]} samples (rows) like {x_name}, got {Y.shape[0]}"
        )


def _tolerance(name: str, tol: float | None, shape: tuple) -> float:
    if tol is None:
        return max(shape) * np.finfo(np.float64).eps
    return check.scalar(name, tol, nonneg=True)


def _no_variance(name: str) -> ValueError:
    return ValueError(f"{name}: has no variance (every column is constant over samples)")


def _distance_matrix_arg(name: str, value: Any) -> np.ndarray:
    D = check.array(name, check.real_array(name, value), np.dtype(np.float64))
    if D.ndim != 2 or D.shape[0] != D.shape[1] or D.shape[0] < 1:
        raise ValueError(f"{name}: expected a square (P, P) distance matrix, got {D.shape}")
    scale = float(np.abs(D).max()) if D.size else 0.0
    if not np.allclose(D, D.T, rtol=1e-8, atol=1e-12 * scale):
        raise ValueError(f"{name}: distance matrix is not symmetric")
    if np.any(D < -1e-12 * scale):
        raise ValueError(f"{name}: distance matrix has negative entries")
    if np.any(np.abs(np.diag(D)) > 1e-12 * scale):
        raise ValueError(f"{name}: distance matrix has a nonzero diagonal")
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    return np.maximum(D, 0.0)


# ---------------------------------------------------------------------------------------------
# Dimensionality


def participation_ratio(X: Any) -> float:
    """Participation ratio ``(sum λ)² / sum λ²`` of the covariance eigenvalues of ``X``.

    A linear measure of dimensionality: 1 when the states vary along one direction only,
    ``n`` when they vary equally along ``n`` orthogonal directions, and in general between
    1 and the rank of the centred ``X``.

    Parameters
    ----------
    X : (samples, n) or (T, B, n) array
        States; a ``(T, B, n)`` array is treated as ``T * B`` samples.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        ``X`` has the wrong shape, non-finite values or no variance.
    """
    Xc = _centred("X", X)
    # sum λ = trace(C) and sum λ² = ||C||_F², with C the covariance or, when there are fewer
    # samples than units, the Gram matrix (same nonzero eigenvalues, smaller); the 1/(m - 1)
    # normalisation cancels in the ratio.
    C = Xc.T @ Xc if Xc.shape[0] >= Xc.shape[1] else Xc @ Xc.T
    sum_sq = float(np.sum(C * C))
    if sum_sq == 0.0:
        raise _no_variance("X")
    return float(np.trace(C)) ** 2 / sum_sq


# ---------------------------------------------------------------------------------------------
# CCA and SVCCA


def _orthonormal_basis(
    Xc: np.ndarray, tol: float, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left singular vectors (samples, r), singular values (r,) and right singular vectors
    (n, r) of the centred Xc, keeping the r values above tol times the largest."""
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        raise _no_variance(name)
    r = int(np.count_nonzero(s > tol * s[0]))
    return U[:, :r], s[:r], Vt[:r].T


def _principal_cosines(Ux: np.ndarray, Uy: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cosines of the principal angles between the column spaces of orthonormal Ux and Uy
    (= the canonical correlations of data with these column spaces), with the rotations."""
    A, c, Bt = np.linalg.svd(Ux.T @ Uy, full_matrices=False)
    return np.clip(c, 0.0, 1.0), A, Bt.T


def cca(X: Any, Y: Any, k: int | None = None, *, tol: float | None = None) -> CCAResult:
    """Canonical correlation analysis of two state matrices on the same samples.

    Computed stably from orthonormal bases of the centred data (Björck & Golub 1973): the
    canonical correlations are the singular values of ``Ux^T Uy``, with ``Ux``, ``Uy`` the
    left singular vectors of the centred ``X``, ``Y``. Directions whose singular value is at
    most ``tol`` times the largest are dropped, so rank-deficient data (duplicate or
    constant units) is handled without inverting a singular covariance.

    With as many samples as ``x_rank + y_rank`` or fewer, every correlation is 1 whatever the
    data: use many more samples than units.

    Parameters
    ----------
    X : (samples, n_x) or (T, B, n_x) array
    Y : (samples, n_y) or (T, B, n_y) array
        Same number of samples as ``X``.
    k : int, optional
        Return at most the ``k`` largest correlations (default: all ``min(x_rank, y_rank)``).
    tol : float, optional
        Relative singular-value cutoff for the ranks (default ``max(shape) * eps``).

    Returns
    -------
    CCAResult
        ``correlations`` (descending), ``x_weights``, ``y_weights``, ``x_rank``, ``y_rank``.

    Raises
    ------
    ValueError
        Wrong shapes, different numbers of samples, non-finite values, no variance, ``k < 1``.
    """
    Xc = _centred("X", X)
    Yc = _centred("Y", Y)
    _same_samples("Y", Yc, "X", Xc)
    if k is not None:
        k = check.integer("k", k, minimum=1)
    Ux, sx, Vx = _orthonormal_basis(Xc, _tolerance("tol", tol, Xc.shape), "X")
    Uy, sy, Vy = _orthonormal_basis(Yc, _tolerance("tol", tol, Yc.shape), "Y")
    c, A, B = _principal_cosines(Ux, Uy)
    k = c.size if k is None else min(k, c.size)
    # Variates Ux A = Xc Vx diag(1/sx) A have unit norm; sqrt(m - 1) gives unit variance.
    scale = np.sqrt(Xc.shape[0] - 1)
    x_weights = (Vx / sx) @ A[:, :k] * scale
    y_weights = (Vy / sy) @ B[:, :k] * scale
    return CCAResult(c[:k].copy(), x_weights, y_weights, int(sx.size), int(sy.size))


def _svcca_basis(name: str, Xc: np.ndarray, variance: float, dims: int | None) -> np.ndarray:
    """Orthonormal basis (samples, d) of the top singular directions of the centred Xc."""
    U, s, _ = _orthonormal_basis(Xc, _tolerance("tol", None, Xc.shape), name)
    if dims is not None:
        d = min(dims, s.size)
    else:
        fraction = np.cumsum(s**2) / np.sum(s**2)
        d = min(int(np.searchsorted(fraction, variance - _VARIANCE_SLACK)) + 1, s.size)
    return U[:, :d]


def _svcca_from_bases(Ux: np.ndarray, Uy: np.ndarray) -> SVCCAResult:
    c, _, _ = _principal_cosines(Ux, Uy)
    similarity = float(np.mean(c))
    return SVCCAResult(similarity, 1.0 - similarity, c, (Ux.shape[1], Uy.shape[1]))


def _svcca_options(variance: Any, dims: Any) -> tuple[float, int | None]:
    variance = check.scalar("variance", variance)
    if not 0.0 < variance <= 1.0:
        raise ValueError(f"variance: expected a fraction in (0, 1], got {variance}")
    if dims is not None:
        dims = check.integer("dims", dims, minimum=1)
    return variance, dims


def svcca(X: Any, Y: Any, variance: float = 0.95, *, dims: int | None = None) -> SVCCAResult:
    """Singular vector CCA (Raghu et al. 2017) of two state matrices on the same samples.

    Each centred matrix is reduced to its top singular directions, as few as explain at least
    ``variance`` of its variance (or exactly ``dims`` of them); the canonical correlations of
    the two reduced matrices are averaged into a similarity in [0, 1], and the distance is
    ``1 - similarity``. The result depends only on the two kept subspaces of sample space, so
    it is invariant to rotations, reflections, isotropic scalings and translations of ``X``
    or ``Y`` (which leave the kept directions unchanged): a network against a rotated and
    rescaled copy of itself is at distance 0, and against independent noise at a distance
    near 1 (up to about ``sqrt(dims / samples)``). With ``variance=1`` (all directions kept)
    it is invariant to any invertible linear map, like CCA.

    Parameters
    ----------
    X : (samples, n_x) or (T, B, n_x) array
    Y : (samples, n_y) or (T, B, n_y) array
        Same number of samples as ``X``.
    variance : float, default 0.95
        Fraction of variance, in (0, 1], that the kept singular directions explain.
    dims : int, optional
        Keep exactly this many directions of each (at most its rank) instead.

    Returns
    -------
    SVCCAResult
        ``similarity``, ``distance``, ``correlations`` (descending) and ``dims`` (the number
        of directions kept of ``X`` and of ``Y``).

    Raises
    ------
    ValueError
        Wrong shapes, different numbers of samples, non-finite values, no variance, a
        ``variance`` outside (0, 1] or ``dims < 1``.
    """
    Xc = _centred("X", X)
    Yc = _centred("Y", Y)
    _same_samples("Y", Yc, "X", Xc)
    variance, dims = _svcca_options(variance, dims)
    return _svcca_from_bases(
        _svcca_basis("X", Xc, variance, dims), _svcca_basis("Y", Yc, variance, dims)
    )


# ---------------------------------------------------------------------------------------------
# CKA and Procrustes


def _cka_prepared(name: str, Xc: np.ndarray) -> tuple[np.ndarray, float]:
    """The centred Xc and ||Xc^T Xc||_F."""
    norm = float(np.linalg.norm(Xc.T @ Xc if Xc.shape[0] >= Xc.shape[1] else Xc @ Xc.T))
    if norm == 0.0:
        raise _no_variance(name)
    return Xc, norm


def _cka_from_prepared(x: tuple[np.ndarray, float], y: tuple[np.ndarray, float]) -> float:
    (Xc, x_norm), (Yc, y_norm) = x, y
    m, nx, ny = Xc.shape[0], Xc.shape[1], Yc.shape[1]
    if m * nx * ny <= m * m * (nx + ny):  # feature space: ||Y^T X||_F²
        cross = float(np.sum((Yc.T @ Xc) ** 2))
    else:  # sample space, same number: tr(K L) with Gram matrices K = X X^T, L = Y Y^T
        cross = float(np.sum((Xc @ Xc.T) * (Yc @ Yc.T)))
    return cross / (x_norm * y_norm)


def linear_cka(X: Any, Y: Any) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019) of two state matrices.

    ``CKA = ||Y^T X||_F² / (||X^T X||_F ||Y^T Y||_F)`` on the centred ``X`` and ``Y``: a
    similarity in [0, 1], 1 for identical representations, invariant to orthogonal
    transformations and isotropic scaling of either matrix (not to arbitrary invertible
    maps, unlike CCA). Use ``1 - linear_cka(X, Y)`` as a distance.

    Parameters
    ----------
    X : (samples, n_x) or (T, B, n_x) array
    Y : (samples, n_y) or (T, B, n_y) array
        Same number of samples as ``X``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Wrong shapes, different numbers of samples, non-finite values or no variance.
    """
    Xc = _centred("X", X)
    Yc = _centred("Y", Y)
    _same_samples("Y", Yc, "X", Xc)
    return _cka_from_prepared(_cka_prepared("X", Xc), _cka_prepared("Y", Yc))


def _procrustes_prepared(name: str, Xc: np.ndarray) -> np.ndarray:
    """The centred Xc scaled to unit Frobenius norm."""
    norm = float(np.linalg.norm(Xc))
    if norm == 0.0:
        raise _no_variance(name)
    return Xc / norm


def _procrustes_from_prepared(Xn: np.ndarray, Yn: np.ndarray, angular: bool) -> float:
    # min over orthogonal Q of ||Xn - Yn Q||_F² = 2 - 2 ||Yn^T Xn||_* for unit-norm Xn, Yn;
    # units of different numbers are padded with zero columns, which leaves the nuclear norm
    # unchanged.
    nuclear = min(1.0, float(np.sum(np.linalg.svd(Yn.T @ Xn, compute_uv=False))))
    if angular:
        return float(np.arccos(nuclear))
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * nuclear)))


def procrustes_distance(X: Any, Y: Any, *, angular: bool = False) -> float:
    """Orthogonal Procrustes distance between two state matrices on the same samples.

    Both matrices are centred and scaled to unit Frobenius norm; the distance is
    ``min_Q ||X - Y Q||_F`` over orthogonal ``Q`` (a matrix with fewer units is padded with
    zero units), which equals ``sqrt(2 - 2 ν)`` with ``ν = ||Y^T X||_*`` the nuclear norm,
    in [0, sqrt(2)]. With ``angular=True`` it is ``arccos(ν)`` in [0, π/2], the shape metric
    of Williams et al. (2021). Both are metrics, invariant to translation, rotation,
    reflection and isotropic scaling of either matrix. ``scipy.spatial.procrustes``, which
    also rescales ``Y``, reports the disparity ``1 - ν²``.

    Parameters
    ----------
    X : (samples, n_x) or (T, B, n_x) array
    Y : (samples, n_y) or (T, B, n_y) array
        Same number of samples as ``X``.
    angular : bool, default False
        Return the angle ``arccos(ν)`` instead of the Euclidean distance.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Wrong shapes, different numbers of samples, non-finite values or no variance.
    """
    Xc = _centred("X", X)
    Yc = _centred("Y", Y)
    _same_samples("Y", Yc, "X", Xc)
    return _procrustes_from_prepared(
        _procrustes_prepared("X", Xc), _procrustes_prepared("Y", Yc), bool(angular)
    )


# ---------------------------------------------------------------------------------------------
# Populations


def distance_matrix(
    states: Sequence[Any] | np.ndarray, metric: Metric = "svcca", **options: Any
) -> np.ndarray:
    """Pairwise distances between the representations of a population of networks.

    Parameters
    ----------
    states : sequence of P arrays, or an array whose first axis indexes networks
        State matrix of each network, ``(samples, n_p)`` or ``(T, B, n_p)``: e.g. each
        network's responses to the same trials. Numbers of units may differ; numbers of
        samples may not.
    metric : {"svcca", "cka", "procrustes"} or callable, default "svcca"
        ``"svcca"``: :func:`svcca` distance (``options``: ``variance``, ``dims``);
        ``"cka"``: ``1 - linear_cka``; ``"procrustes"``: :func:`procrustes_distance`
        (``options``: ``angular``). A callable ``metric(X, Y) -> float`` gets the
        ``(samples, n)`` float64 matrices and the ``options`` as keyword arguments. Each
        network is decomposed once, not once per pair. Only the Procrustes distances are
        metrics: SVCCA puts a network at distance 0 from any whose kept subspace contains its
        own, so the triangle inequality can fail.
    **options
        Keyword arguments of the metric.

    Returns
    -------
    (P, P) ndarray
        Symmetric, zero diagonal; entry ``[i, j]`` is the distance from network ``j`` to
        network ``i`` (computed once per pair, for ``i < j``).

    Raises
    ------
    ValueError
        An unknown metric name or a bad option value; no networks; a network's states of
        the wrong shape, with non-finite values, without variance or with another number of
        samples than the first (named ``states[p]``); a callable that returns a non-finite
        value.
    TypeError
        ``metric`` is neither a name nor a callable, or a callable returns no number;
        ``options`` that the metric does not take.
    """
    if isinstance(metric, str):
        check.choice("metric", metric, METRICS)
        allowed = {"svcca": ("variance", "dims"), "cka": (), "procrustes": ("angular",)}
        _only_options(options, allowed[metric])
        if metric == "svcca":
            variance, dims = _svcca_options(options.get("variance", 0.95), options.get("dims"))
    elif not callable(metric):
        raise TypeError(
            f"metric: expected one of {', '.join(METRICS)} or a callable, "
            f"got {type(metric).__name__}"
        )

    if isinstance(states, np.ndarray):
        if states.ndim < 3:
            raise ValueError(
                "states: expected an array (P, samples, n) or (P, T, B, n), or a sequence of "
                f"P state arrays; got one array of shape {states.shape}"
            )
        states = list(states)
    elif isinstance(states, (str, bytes)) or not isinstance(states, Sequence):
        raise TypeError(f"states: expected a sequence of state arrays, got {type(states).__name__}")
    if len(states) < 1:
        raise ValueError("states: expected at least one network's states, got none")
    names = [f"states[{p}]" for p in range(len(states))]
    arrays = [_states(name, value) for name, value in zip(names, states)]
    for name, X in zip(names[1:], arrays[1:]):
        _same_samples(name, X, names[0], arrays[0])
    centred = [] if callable(metric) else [X - X.mean(axis=0) for X in arrays]

    # Each network is decomposed once; a pair then costs only a small product.
    prepared: list[Any]
    if callable(metric):
        prepared = arrays

        def pair(x: Any, y: Any) -> float:
            return metric(x, y, **options)  # type: ignore[call-arg]

    elif metric == "svcca":
        prepared = [_svcca_basis(n, Xc, variance, dims) for n, Xc in zip(names, centred)]

        def pair(x: Any, y: Any) -> float:
            return _svcca_from_bases(x, y).distance

    elif metric == "cka":
        prepared = [_cka_prepared(n, Xc) for n, Xc in zip(names, centred)]

        def pair(x: Any, y: Any) -> float:
            return 1.0 - _cka_from_prepared(x, y)

    else:
        angular = bool(options.get("angular", False))
        prepared = [_procrustes_prepared(n, Xc) for n, Xc in zip(names, centred)]

        def pair(x: Any, y: Any) -> float:
            return _procrustes_from_prepared(x, y, angular)

    P = len(prepared)
    D = np.zeros((P, P))
    for i in range(P):
        for j in range(i + 1, P):
            d = pair(prepared[i], prepared[j])
            try:
                d = float(d)
            except (TypeError, ValueError) as err:
                raise TypeError(f"metric: expected a real number, got {type(d).__name__}") from err
            if not np.isfinite(d):
                raise ValueError(f"metric: returned {d} for networks {i} and {j}")
            D[i, j] = D[j, i] = d
    return D


def _only_options(options: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no options"
        raise TypeError(f"options: unknown {', '.join(unknown)} for this metric (takes {takes})")


def row_distances(D: Any) -> np.ndarray:
    """Euclidean distances between the rows of a distance matrix, each row used as the feature
    vector of its item (the learning-rule study's way of clustering networks).

    Parameters
    ----------
    D : (P, P) array
        Symmetric, non-negative, zero diagonal.

    Returns
    -------
    (P, P) ndarray
        ``E[i, j] = ||D[i] - D[j]||``: symmetric, zero diagonal, a Euclidean metric.

    Raises
    ------
    ValueError
        ``D`` not a square symmetric non-negative matrix with zero diagonal, or non-finite.
    """
    return _row_distances(_distance_matrix_arg("D", D))


def _row_distances(D: np.ndarray) -> np.ndarray:
    sq = np.sum(D**2, axis=1)
    E2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (D @ D.T), 0.0)
    # exact differences where the Gram form loses digits (tiny distances)
    E = np.sqrt(E2)
    small = E2 <= 1e-8 * max(float(sq.max()), 1e-300)
    if small.any():
        i, j = np.nonzero(small)
        E[i, j] = np.linalg.norm(D[i] - D[j], axis=1)
    np.fill_diagonal(E, 0.0)
    return 0.5 * (E + E.T)


def _method(value: Any) -> str:
    return check.choice("method", value, METHODS)


def _classical(D: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Classical MDS: (embedding (P, dims), eigenvalues (P,) descending)."""
    D2 = D**2
    # 1. B = -J D² J / 2, written as row, column and grand means removed.
    B = -0.5 * (D2 - D2.mean(axis=0) - D2.mean(axis=1)[:, None] + D2.mean())
    # 2. eigen-decomposition, descending.
    lam, V = np.linalg.eigh(0.5 * (B + B.T))
    lam, V = lam[::-1], V[:, ::-1]
    # 3. coordinates along the top eigenvectors, with a deterministic sign.
    V = V[:, :dims]
    signs = np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(dims)])
    signs[signs == 0] = 1.0
    return V * signs * np.sqrt(np.maximum(lam[:dims], 0.0)), lam.copy()


def _pairwise(Z: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum((Z[:, None, :] - Z[None, :, :]) ** 2, axis=-1))


def _smacof(D: np.ndarray, Z: np.ndarray, max_iter: int, eps: float) -> np.ndarray:
    """Metric MDS by SMACOF (de Leeuw 1977): Guttman transforms from Z until the raw stress
    ``sum_{i<j} (D - d)²`` falls by less than ``eps`` relative to it (as scikit-learn)."""
    P = D.shape[0]
    old = None
    for _ in range(max_iter):
        d = _pairwise(Z)
        stress = 0.5 * float(np.sum((D - d) ** 2))
        ratio = np.divide(D, d, out=np.zeros_like(D), where=d > 0)
        Bz = -ratio
        Bz[np.arange(P), np.arange(P)] = ratio.sum(axis=1)
        Z = Bz @ Z / P
        if old is not None and old - stress < eps * max(stress, 1e-300):
            break
        old = stress
    return Z - Z.mean(axis=0)


def mds(
    D: Any, dims: int = 2, *, method: str = "precomputed", max_iter: int = 300, eps: float = 1e-6
) -> MDSResult:
    """Multidimensional scaling of a distance matrix.

    ``method="precomputed"`` (default): classical (Torgerson) MDS of ``D`` itself.
    Double-centres the squared distances, ``B = -J D² J / 2`` with ``J = I - 1 1^T / P``,
    and places the items at ``V sqrt(λ)`` for the ``dims`` largest eigenvalues ``λ`` of ``B``
    (negative ones count as 0). For Euclidean distances between points of dimension at most
    ``dims`` this recovers the points up to translation, rotation and reflection. Each axis
    is signed so that its largest-magnitude coordinate is positive.

    ``method="rows"``: each row of ``D`` is the feature vector of its item (as the
    learning-rule study did, with scikit-learn's metric MDS): the Euclidean distances ``E``
    between the rows (:func:`row_distances`) are embedded by metric MDS (SMACOF), started
    from the classical embedding of ``E`` (deterministic, no random restarts). Its stress
    and eigenvalues are then those of ``E``.

    Parameters
    ----------
    D : (P, P) array
        Symmetric, non-negative, zero diagonal: e.g. from :func:`distance_matrix`.
    dims : int, default 2
        Embedding dimension, at most P.
    method : {"precomputed", "rows"}, default "precomputed"
    max_iter, eps : SMACOF's iteration limit and relative stress decrease at which it
        stops (``method="rows"`` only).

    Returns
    -------
    MDSResult
        ``embedding`` (P, dims), ``eigenvalues`` (P,) descending (of the classical step),
        ``stress`` (Kruskal's stress-1 against ``D``, or against ``E`` for ``"rows"``).

    Raises
    ------
    ValueError
        ``D`` not a square symmetric non-negative matrix with zero diagonal, or with
        non-finite values; ``dims`` outside [1, P]; an unknown ``method``.
    """
    D = _distance_matrix_arg("D", D)
    method = _method(method)
    P = D.shape[0]
    dims = check.integer("dims", dims, minimum=1)
    if dims > P:
        raise ValueError(f"dims: expected at most P = {P} (the number of items), got {dims}")
    max_iter = check.integer("max_iter", max_iter, minimum=0)
    eps = check.scalar("eps", eps, nonneg=True)
    if method == "rows":
        D = _row_distances(D)
    embedding, lam = _classical(D, dims)
    if method == "rows":
        embedding = _smacof(D, embedding, max_iter, eps)
    d = _pairwise(embedding)
    total = float(np.sum(D**2))
    stress = float(np.sqrt(np.sum((D - d) ** 2) / total)) if total > 0 else 0.0
    return MDSResult(embedding, lam, stress)


def _labels(name: str, value: Any, P: int) -> tuple[np.ndarray, int]:
    labels = np.asarray(value)
    if labels.ndim != 1 or labels.shape[0] != P:
        raise ValueError(f"{name}: expected shape ({P},) (one label per item), got {labels.shape}")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    try:
        _, codes = np.unique(labels, return_inverse=True)
    except TypeError as err:
        raise TypeError(f"{name}: labels must be comparable ({err})") from err
    codes = codes.reshape(-1)
    k = int(codes.max()) + 1 if P else 0
    if not 2 <= k <= P - 1:
        raise ValueError(f"{name}: expected between 2 and P - 1 = {P - 1} distinct labels, got {k}")
    return codes, k


def silhouette_samples(D: Any, labels: Any, *, method: str = "precomputed") -> np.ndarray:
    """Silhouette of each item from a distance matrix (Rousseeuw 1987).

    ``s(i) = (b(i) - a(i)) / max(a(i), b(i))`` with ``a(i)`` the mean distance from ``i`` to
    the other members of its cluster and ``b(i)`` the smallest mean distance from ``i`` to
    the members of another cluster. Items alone in their cluster get 0 (as in
    scikit-learn), as does an item with ``a(i) = b(i) = 0``.

    Parameters
    ----------
    D : (P, P) array
        Symmetric, non-negative, zero diagonal.
    labels : (P,) array
        Cluster of each item (any comparable values); between 2 and P - 1 distinct ones.
    method : {"precomputed", "rows"}, default "precomputed"
        ``"precomputed"``: the distances are ``D`` itself; ``"rows"``: each row of ``D`` is
        the feature vector of its item and the distances are the Euclidean ones between rows
        (:func:`row_distances`), as the learning-rule study computed its silhouettes
        (``sklearn.metrics.silhouette_score(D, labels)`` on the matrix as features).

    Returns
    -------
    (P,) ndarray
        Silhouettes in [-1, 1].

    Raises
    ------
    ValueError
        A bad ``D``; ``labels`` of the wrong length or with fewer than 2 or more than
        ``P - 1`` distinct values; an unknown ``method``.
    """
    D = _distance_matrix_arg("D", D)
    if _method(method) == "rows":
        D = _row_distances(D)
    P = D.shape[0]
    codes, k = _labels("labels", labels, P)
    members = np.zeros((P, k))
    members[np.arange(P), codes] = 1.0
    counts = members.sum(axis=0)
    sums = D @ members  # (P, k): summed distance from each item to each cluster
    own = np.arange(P), codes
    own_count = counts[codes]
    a = sums[own] / np.maximum(own_count - 1, 1)
    means = sums / counts
    means[own] = np.inf
    b = means.min(axis=1)
    denom = np.maximum(a, b)
    s = np.divide(b - a, denom, out=np.zeros(P), where=denom > 0)
    s[own_count == 1] = 0.0
    return s


def silhouette_score(D: Any, labels: Any, *, method: str = "precomputed") -> float:
    """Mean silhouette of a clustering, from a distance matrix.

    The mean over items of :func:`silhouette_samples` (same arguments and errors): near 1
    for compact, well-separated clusters, near 0 for overlapping ones, negative when items
    sit closer to another cluster than to their own. With ``method="precomputed"`` it agrees
    with ``sklearn.metrics.silhouette_score(D, labels, metric="precomputed")``; with
    ``method="rows"`` with ``sklearn.metrics.silhouette_score(D, labels)`` (rows of ``D`` as
    Euclidean feature vectors), the learning-rule study's number.
    """
    return float(np.mean(silhouette_samples(D, labels, method=method)))
