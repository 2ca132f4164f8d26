"""Metrics of NeuroMOP rollouts (``docs/neuromop.md``, "Metrics"), pure NumPy.

Every function takes the arrays of a rollout as the drivers return them:

- ``states``: (T + 1, B, d), time-major, zero past the end of each trajectory;
- ``actions``: (T, B) int64 joint-action indices, -1 past the end; bit m of index k gives
  the action ``a_m = 2 ((k >> m) & 1) - 1`` (k = 0 is all -1);
- ``entropy``: (T, B) action entropy ``H(A|x_t)`` in nats;
- ``lifetime``: (B,) int64, the steps before the terminal state, capped at T;
- ``terminated``: (B,) bool, whether trajectory b reached a terminal state.

Trajectory b visited the states ``x_0 .. x_{lifetime[b]}`` (the last one terminal when
``terminated[b]``, else ``x_T``) and took the actions ``0 .. lifetime[b] - 1``. Everything
past those is padding: no metric reads it, so the padded values (zeros, -1, NaN) never change
a result. Statistics are computed in float64 whatever the dtype of the rollout.

- :func:`action_bits`, :func:`step_mask`, :func:`state_mask`: the building blocks.
- :func:`energy`, :func:`near_threshold`: ``E(x) = sqrt(sum_i (x_i - c)^2) / d`` and the
  taken steps just below the threshold ``L`` (E in ``[L - width, L]``).
- :func:`action_entropy`: mean ``H(A|x)`` over the taken steps (max ``M ln 2``).
- :func:`effective_dimensionality`: ``(sum λ)² / sum λ²`` of the M x M covariance of the
  action bits (max M).
- :func:`variability`, :func:`jump_variability`: ``<sigma>`` of the states and of the jumps
  ``x[t+1] - x[t]``.
- :func:`occupancy`: 2-D histogram of the visited states on two coordinates.
- :func:`mean_and_sem`: mean and standard error over repeats (e.g. over epochs or seeds).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "action_bits",
    "action_entropy",
    "effective_dimensionality",
    "energy",
    "jump_variability",
    "mean_and_sem",
    "near_threshold",
    "occupancy",
    "state_mask",
    "step_mask",
    "variability",
]

# Joint-action indices are int64: bit 62 is the last one that keeps 2^n_bits positive.
MAX_BITS = 62


# ---------------------------------------------------------------------------------------------
# Argument checks (every error names the argument)


def _real(name: str, value: Any, ndim: int | None) -> np.ndarray:
    """A real array (bool, int or float) with ``ndim`` dimensions (any when None)."""
    try:
        arr = np.asarray(value)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array of real numbers ({err})") from err
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        want = {1: "(B,)", 2: "(T, B)", 3: "(T + 1, B, d)"}[ndim]
        raise ValueError(f"{name}: expected {ndim} dimensions {want}, got shape {arr.shape}")
    return arr


def _integers(name: str, value: Any, ndim: int) -> np.ndarray:
    arr = _real(name, value, ndim)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _count(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}: expected an integer {bounds}, got {value}")
    return value


def _finite(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return float(value)


def _lifetime(lifetime: Any, T: int, B: int | None = None) -> np.ndarray:
    """(B,) int64 in [0, T], with B trajectories when B is given."""
    lt = _integers("lifetime", lifetime, 1)
    if B is not None and lt.shape[0] != B:
        raise ValueError(f"lifetime: expected shape ({B},) (one per trajectory), got {lt.shape}")
    if lt.size and (lt.min() < 0 or lt.max() > T):
        raise ValueError(
            f"lifetime: expected values in [0, T] = [0, {T}], "
            f"got values in [{lt.min()}, {lt.max()}]"
        )
    return lt


def _states(states: Any) -> np.ndarray:
    x = _real("states", states, 3)
    if x.shape[0] < 1:
        raise ValueError(f"states: expected at least one time step (T + 1 >= 1), got {x.shape}")
    if x.shape[2] < 1:
        raise ValueError(f"states: expected at least one coordinate (d >= 1), got {x.shape}")
    return x


def _where(where: Any, shape: tuple) -> np.ndarray:
    """The optional (T, B) bool selection of steps; all True when None."""
    if where is None:
        return np.ones(shape, dtype=bool)
    w = _real("where", where, 2)
    if w.dtype != np.bool_:
        raise TypeError(f"where: expected a bool array, got dtype {w.dtype}")
    if w.shape != shape:
        raise ValueError(f"where: expected shape {shape} (T, B), got {w.shape}")
    return w


# ---------------------------------------------------------------------------------------------
# Building blocks


def action_bits(actions: Any, n_bits: int) -> np.ndarray:
    """The +-1 action bits of joint-action indices.

    Parameters
    ----------
    actions : (T, B) int array
        Joint-action indices in ``[0, 2^n_bits)``, -1 past the end.
    n_bits : int
        M, the number of binary actions (1 .. 62).

    Returns
    -------
    (T, B, n_bits) float64
        ``a_m = 2 ((k >> m) & 1) - 1``; NaN where ``actions`` is -1.
    """
    n_bits = _count("n_bits", n_bits, 1, MAX_BITS)
    k = _integers("actions", actions, 2)
    if k.size and (k.min() < -1 or k.max() >= 2**n_bits):
        raise ValueError(
            f"actions: expected indices in [0, 2^n_bits) = [0, {2**n_bits}) or -1, "
            f"got values in [{k.min()}, {k.max()}]"
        )
    bits = (k[..., None] >> np.arange(n_bits, dtype=np.int64)) & 1
    out = 2.0 * bits - 1.0
    out[k < 0] = np.nan
    return out


def step_mask(lifetime: Any, T: int) -> np.ndarray:
    """(T, B) bool: True at the taken steps, ``t < lifetime[b]``.

    lifetime: (B,) int in [0, T]; T: the rollout's horizon (``actions.shape[0]``).
    """
    T = _count("T", T, 0)
    lt = _lifetime(lifetime, T)
    return np.arange(T)[:, None] < lt[None, :]


def state_mask(lifetime: Any, T: int) -> np.ndarray:
    """(T + 1, B) bool: True at the visited states, ``t <= lifetime[b]``.

    lifetime: (B,) int in [0, T]; T: the rollout's horizon (``states.shape[0] - 1``).
    """
    T = _count("T", T, 0)
    lt = _lifetime(lifetime, T)
    return np.arange(T + 1)[:, None] <= lt[None, :]


# ---------------------------------------------------------------------------------------------
# Energy and the threshold region


def energy(states: Any, center: float = -1.0) -> np.ndarray:
    """The spec's energy ``E(x) = sqrt(sum_i (x_i - center)^2) / d`` of every state.

    states: (T + 1, B, d) (any leading shape ``(..., d)`` works alike). Returns (T + 1, B)
    float64, padding included (the caller masks it with :func:`state_mask`).
    """
    try:
        x = np.asarray(states)
    except Exception as err:
        raise TypeError(f"states: expected an array of real numbers ({err})") from err
    if x.dtype.kind not in "biuf":
        raise TypeError(f"states: expected an array of real numbers, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"states: expected shape (..., d) with d >= 1, got {x.shape}")
    center = _finite("center", center)
    diff = x.astype(np.float64, copy=False) - center
    return np.sqrt(np.sum(diff * diff, axis=-1)) / x.shape[-1]


def near_threshold(
    states: Any,
    lifetime: Any,
    level: float,
    width: float = 0.001,
    center: float = -1.0,
) -> np.ndarray:
    """(T, B) bool: the taken steps whose state is just below the energy threshold.

    Step t of trajectory b is selected when ``t < lifetime[b]`` and
    ``level - width <= E(x_t) <= level`` (the spec's "near the threshold", E in
    ``[L - 0.001, L]``). The terminal state itself (E > level) takes no step and is never
    selected. Use the result as ``where`` of :func:`action_entropy` or
    :func:`effective_dimensionality`.

    states: (T + 1, B, d); lifetime: (B,) int in [0, T]; level: L; width >= 0; center: c.
    """
    x = _states(states)
    T, B = x.shape[0] - 1, x.shape[1]
    lt = _lifetime(lifetime, T, B)
    level = _finite("level", level)
    width = _finite("width", width)
    if width < 0:
        raise ValueError(f"width: expected a number >= 0, got {width}")
    E = energy(x[:T], center)
    taken = np.arange(T)[:, None] < lt[None, :]
    return taken & (E >= level - width) & (E <= level)


# ---------------------------------------------------------------------------------------------
# Action statistics


def action_entropy(entropy: Any, lifetime: Any, where: Any = None) -> float:
    """Mean action entropy ``H(A|x)`` (nats) over the taken steps of all trajectories.

    entropy: (T, B); lifetime: (B,) int in [0, T]; where: optional (T, B) bool restricting the
    steps (e.g. :func:`near_threshold`). NaN when no step is selected.
    """
    H = _real("entropy", entropy, 2)
    T, B = H.shape
    lt = _lifetime(lifetime, T, B)
    sel = (np.arange(T)[:, None] < lt[None, :]) & _where(where, (T, B))
    count = int(np.count_nonzero(sel))
    if count == 0:
        return float("nan")
    return float(np.sum(H[sel], dtype=np.float64) / count)


def effective_dimensionality(actions: Any, lifetime: Any, n_bits: int, where: Any = None) -> float:
    """Effective dimensionality ``(sum λ)² / sum λ²`` of the actions (max ``n_bits``).

    λ are the eigenvalues of the ``n_bits x n_bits`` covariance of the +-1 action bits over
    the selected steps, all trajectories pooled: ``n_bits`` for independent unbiased bits, 1
    when every bit copies one. Computed exactly as ``trace(C)² / ||C||_F²`` (no
    eigendecomposition); the covariance's normalisation cancels.

    Parameters
    ----------
    actions : (T, B) int array
        Joint-action indices, -1 past the end.
    lifetime : (B,) int array in [0, T]
    n_bits : int
        M, the number of binary actions.
    where : (T, B) bool array, optional
        Restricts the taken steps (e.g. :func:`near_threshold`).

    Returns
    -------
    float
        NaN with fewer than 2 selected steps; 0.0 when the bits do not vary at all.
    """
    k = _integers("actions", actions, 2)
    T, B = k.shape
    lt = _lifetime(lifetime, T, B)
    sel = (np.arange(T)[:, None] < lt[None, :]) & _where(where, (T, B))
    if np.any(k[sel] < 0):
        raise ValueError("actions: -1 (no action) at a step before the trajectory's lifetime")
    if np.count_nonzero(sel) < 2:
        _count("n_bits", n_bits, 1, MAX_BITS)
        return float("nan")
    bits = action_bits(k[sel][:, None], n_bits)[:, 0, :]  # (steps, n_bits)
    centred = bits - bits.mean(axis=0)
    C = centred.T @ centred
    sum_sq = float(np.sum(C * C))
    if sum_sq == 0.0:  # +-1 bits: the mean and the deviations are exact, so this is exact
        return 0.0
    return float(np.trace(C)) ** 2 / sum_sq


# ---------------------------------------------------------------------------------------------
# Variability of the states


def _mean_std_over_time(values: np.ndarray, mask: np.ndarray) -> float:
    """values (S, B, d), mask (S, B): each neuron's std (ddof 0) over the masked times of
    each trajectory, averaged over neurons and over the trajectories with >= 2 samples."""
    count = np.count_nonzero(mask, axis=0)  # (B,)
    keep = count >= 2
    if not np.any(keep):
        return float("nan")
    # np.where, not a product: the padding may hold NaN or inf and must not leak in
    v = np.where(mask[..., None], values, 0.0)[:, keep]
    m = mask[:, keep, None]
    n = count[keep][:, None].astype(np.float64)
    mean = v.sum(axis=0) / n
    dev = np.where(m, v - mean, 0.0)  # two passes: no cancellation in E[x²] - E[x]²
    std = np.sqrt((dev * dev).sum(axis=0) / n)  # (B_kept, d)
    return float(std.mean())


def variability(states: Any, lifetime: Any) -> float:
    """``<sigma>``: each neuron's standard deviation over the visited states of a
    trajectory, averaged over neurons and trajectories.

    The standard deviation is the population one (ddof 0) over ``x_0 .. x_{lifetime[b]}``;
    trajectories with fewer than 2 visited states (lifetime 0) are skipped, and every kept
    trajectory weighs the same. NaN when none is kept.

    states: (T + 1, B, d); lifetime: (B,) int in [0, T].
    """
    x = _states(states)
    T, B = x.shape[0] - 1, x.shape[1]
    lt = _lifetime(lifetime, T, B)
    visited = np.arange(T + 1)[:, None] <= lt[None, :]
    return _mean_std_over_time(x.astype(np.float64, copy=False), visited)


def jump_variability(states: Any, lifetime: Any) -> float:
    """:func:`variability` of the jumps ``x[t+1] - x[t]`` between visited states.

    Trajectory b has ``lifetime[b]`` jumps (t = 0 .. lifetime[b] - 1); trajectories with fewer
    than 2 jumps are skipped. NaN when none is kept.

    states: (T + 1, B, d); lifetime: (B,) int in [0, T].
    """
    x = _states(states)
    T, B = x.shape[0] - 1, x.shape[1]
    lt = _lifetime(lifetime, T, B)
    taken = np.arange(T)[:, None] < lt[None, :]
    x = x.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):  # padding may be NaN or inf
        jumps = x[1:] - x[:-1]
    return _mean_std_over_time(jumps, taken)


# ---------------------------------------------------------------------------------------------
# Occupancy


def occupancy(
    states: Any,
    lifetime: Any,
    dims: tuple[int, int] = (0, 1),
    bins: int = 50,
    range: Any = None,  # np.histogram2d's name, kept for familiarity
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Occupancy of the plane of two coordinates by the visited states.

    Parameters
    ----------
    states : (T + 1, B, d) array
    lifetime : (B,) int array in [0, T]
    dims : (i, j)
        The coordinates on the x and y axes.
    bins : int
        Bins per axis.
    range : ((xmin, xmax), (ymin, ymax)), optional
        As in ``np.histogram2d``; by default the extent of the visited states. States outside
        it are not counted.

    Returns
    -------
    counts : (bins, bins) float64
        ``counts[i, j]``: the fraction of the counted states in x bin i and y bin j; sums to 1
        (all zeros when no visited state falls inside ``range``).
    xedges, yedges : (bins + 1,) float64
    """
    x = _states(states)
    T, B, d = x.shape[0] - 1, x.shape[1], x.shape[2]
    lt = _lifetime(lifetime, T, B)
    try:
        i, j = (int(_count("dims", k, 0, d - 1)) for k in dims)
    except TypeError as err:
        raise TypeError(f"dims: expected two coordinate indices, got {dims!r}") from err
    except ValueError as err:
        raise ValueError(f"dims: expected two indices in [0, {d - 1}], got {dims!r}") from err
    bins = _count("bins", bins, 1)
    visited = np.arange(T + 1)[:, None] <= lt[None, :]
    px = x[..., i][visited].astype(np.float64, copy=False)
    py = x[..., j][visited].astype(np.float64, copy=False)
    if not (np.all(np.isfinite(px)) and np.all(np.isfinite(py))):
        raise ValueError("states: NaN or infinite values among the visited states")
    try:
        counts, xedges, yedges = np.histogram2d(px, py, bins=bins, range=range)
    except ValueError as err:
        raise ValueError(f"range: {err}") from err
    total = counts.sum()
    if total > 0:
        counts /= total
    return counts, xedges, yedges


# ---------------------------------------------------------------------------------------------
# Repeats


def mean_and_sem(values: Any) -> tuple[Any, Any]:
    """Mean and standard error of the mean over the first axis, ignoring NaN.

    values: (R, ...) (e.g. a metric per epoch and seed). Returns (mean, sem), each of shape
    ``values.shape[1:]`` (floats for a 1-D input): the mean of the non-NaN entries and
    ``std(ddof=1) / sqrt(count)``. The mean is NaN where every entry is NaN, the SEM where
    fewer than 2 are not.
    """
    v = _real("values", values, None)
    if v.ndim < 1:
        raise ValueError(f"values: expected at least one dimension (R, ...), got shape {v.shape}")
    v = v.astype(np.float64, copy=False)
    ok = ~np.isnan(v)
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, v, 0.0).sum(axis=0) / count
        dev = np.where(ok, v - mean, 0.0)
        var = (dev * dev).sum(axis=0) / (count - 1)
        sem = np.sqrt(var / count)
    mean = np.where(count > 0, mean, np.nan)
    sem = np.where(count > 1, sem, np.nan)
    if mean.ndim == 0:
        return float(mean), float(sem)
    return mean, sem
