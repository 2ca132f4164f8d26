"""The learning-rule study's descriptors of a network (McMahan et al., NeurIPS 2021).

- :func:`topology`: the attractor-topology descriptor. Every fixed point, stable or not, is
  listed at each of a set of static inputs; the points are pooled in input order (within an
  input, in order of the network's first output at the point, then of the point's norm), and
  the network is summarised by the k-nearest-neighbour structure (``k = 3``) of the first
  ``n_points = 10`` pooled points: for each of them, the indices (in the pooled order) of
  its ``k`` nearest other points among the ``n_points``, nearest first. That is an
  ``n_points * k`` = 30-dimensional vector; networks are compared by the Euclidean distance
  between their vectors (:func:`topology_distances`). The vector is unchanged by relabelling
  the units (every quantity used is), and it records how many points each input has and
  how they lie relative to each other: a bistable network (three points per input) and a
  line attractor (a row of points at one input) give different vectors.
- Acceptance: ``"strict"`` keeps flexrnn's fixed points (``kind == "fixed"``, refined by
  Levenberg-Marquardt); ``"loose"`` mimics the study's root finder, which reports
  approximate roots: every minimiser endpoint (not refined) whose flow residual
  ``|dx/dt| = |F(x) - x| / alpha`` is at most ``loose_residual`` (default 0.15, the largest
  residual seen in the study's lists being about 0.12), endpoints closer than
  ``loose_dedup`` (RMS per unit, default 0.05) merged.
- :func:`svcca_protocol`: the study's input protocol for representational geometry: every
  network is run without noise on ``levels`` static input levels per context for ``steps``
  steps from its ``x0``, and the pre-activation states ``x`` of all runs are the samples of
  SVCCA; returns the states and the SVCCA distance matrix.

Inputs the study used: decision task ``0.03 * {0, ±0.1, ..., ±1}`` (:func:`decision_inputs`);
N-context integration ``linspace(-0.02, 0.02, 21)`` on the cued channel with the cue of each
context on (:func:`context_inputs`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flexrnn import _validate as check
from flexrnn.reference.phi import phi as _phi

from .fixed_points import fixed_points
from .geometry import distance_matrix

__all__ = [
    "SVCCAProtocol",
    "Topology",
    "context_inputs",
    "decision_inputs",
    "svcca_protocol",
    "topology",
    "topology_distances",
]

ACCEPTANCE = ("strict", "loose")
_KEY_DIGITS = 9  # orderings use values rounded to this many significant digits


def decision_inputs() -> np.ndarray:
    """(21, 1) static inputs of the decision task: ``0.03 * {0, ±0.1, ..., ±1}`` in the order
    0, 0.1, -0.1, 0.2, -0.2, ... (times 0.03)."""
    steps = [0.0] + [s * k / 10 for k in range(1, 11) for s in (1.0, -1.0)]
    return 0.03 * np.array(steps)[:, None]


def context_inputs(N: int, levels: Any = None) -> np.ndarray:
    """(N * L, 2N) static inputs of N-context integration: for each context c (in order),
    each level (default ``linspace(-0.02, 0.02, 21)``) on evidence channel c, with the
    context cue c (channel N + c) at 1."""
    N = check.integer("N", N, minimum=1)
    levels = np.linspace(-0.02, 0.02, 21) if levels is None else check.real_array("levels", levels)
    if levels.ndim != 1 or levels.size == 0:
        raise ValueError(f"levels: expected a non-empty 1-d array, got shape {levels.shape}")
    rows = []
    for c in range(N):
        for level in levels:
            u = np.zeros(2 * N)
            u[c] = level
            u[N + c] = 1.0
            rows.append(u)
    return np.array(rows)


@dataclass
class Topology:
    """The attractor-topology descriptor of one network.

    Attributes
    ----------
    descriptor : (n_points * k,) ndarray
        For each of the first ``n_points`` pooled points, the pooled indices of its ``k``
        nearest other points among them, nearest first; -1 where there are too few points.
    points : (M, N) ndarray
        Every accepted point, pooled in input order (within an input: by the first output
        at the point, then by its norm).
    input_index : (M,) int ndarray
        The input (row of ``inputs``) of each point.
    stable : (M,) bool ndarray
        Stability of each point (eigenvalues of the map's Jacobian inside the unit circle).
    residual : (M,) ndarray
        Flow residual ``|F(x) - x| / alpha`` of each point.
    counts : (K,) int ndarray
        Number of accepted points at each input.
    inputs : (K, n_in) ndarray
    acceptance : str
        ``"strict"`` or ``"loose"``.
    k, n_points : int
    """

    descriptor: np.ndarray
    points: np.ndarray
    input_index: np.ndarray
    stable: np.ndarray
    residual: np.ndarray
    counts: np.ndarray
    inputs: np.ndarray
    acceptance: str
    k: int
    n_points: int


def _readout(net: Any, X: np.ndarray) -> np.ndarray:
    """First output of the network at states X (M, n) (0 when it has no output)."""
    if net.W_out.shape[0] == 0:
        return np.zeros(len(X))
    r = X if net.readout == "state" else _phi(net.phi, X)
    return r @ np.asarray(net.W_out[0], dtype=np.float64) + float(net.b_out[0])


def _round(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(values == 0, 0.0, np.floor(np.log10(np.abs(values))))
    factor = 10.0 ** (_KEY_DIGITS - 1 - scale)
    return np.round(values * factor) / factor


def knn_descriptor(points: np.ndarray, k: int = 3, n_points: int = 10) -> np.ndarray:
    """(n_points * k,) kNN structure of the first ``n_points`` rows of ``points`` (M, N): for
    each, the indices of its k nearest other rows among them, nearest first (ties by index);
    -1 where fewer than ``n_points`` rows or fewer than ``k + 1`` of them exist."""
    points = np.asarray(points, dtype=np.float64)
    m = min(len(points), n_points)
    out = np.full((n_points, k), -1, dtype=np.int64)
    if m >= 2:
        X = points[:m]
        d = np.sqrt(np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1))
        d = _round(d)
        np.fill_diagonal(d, np.inf)
        order = np.argsort(d, axis=1, kind="stable")[:, : min(k, m - 1)]
        out[:m, : order.shape[1]] = order
    return out.reshape(-1)


def topology(
    net: Any,
    inputs: Any,
    *,
    k: int = 3,
    n_points: int = 10,
    acceptance: str = "strict",
    loose_residual: float = 0.15,
    loose_dedup: float = 0.05,
    n_init: int = 100,
    seed: int = 0,
    **options: Any,
) -> Topology:
    """The attractor-topology descriptor of ``net`` over the static ``inputs``.

    Parameters
    ----------
    net : RateRNN or LowRankRNN.
    inputs : (K, n_in) array (or (K,) when n_in = 1)
        The static inputs, in order: e.g. :func:`decision_inputs`, :func:`context_inputs`.
    k : int, default 3
        Neighbours per point.
    n_points : int, default 10
        Number of pooled points described.
    acceptance : {"strict", "loose"}, default "strict"
        flexrnn's fixed points, or the study's looser acceptance (module docstring).
    loose_residual : float, default 0.15
        Largest flow residual accepted with ``acceptance="loose"``.
    loose_dedup : float, default 0.05
        ``dedup_tol`` of :func:`fixed_points` with ``acceptance="loose"``.
    n_init, seed : initial states and seed of :func:`fixed_points` at every input.
    **options : other arguments of :func:`fixed_points` (``iters``, ``lr``, ...).

    Returns
    -------
    Topology
        ``descriptor`` (n_points * k,), the pooled ``points`` (M, n) with their
        ``input_index``, ``stable``, ``residual``, and ``counts`` (K,) per input.

    Raises
    ------
    ValueError / TypeError naming the argument.
    """
    if not getattr(net, "takes_gain", False):
        raise TypeError(f"net: expected a RateRNN or LowRankRNN, got {type(net).__name__}")
    U = check.real_array("inputs", inputs)
    if U.ndim == 1 and net.n_in == 1:
        U = U[:, None]
    if U.ndim != 2 or U.shape[1] != net.n_in or U.shape[0] == 0:
        raise ValueError(f"inputs: expected shape (K, {net.n_in}) with K >= 1, got {U.shape}")
    k = check.integer("k", k, minimum=1)
    n_points = check.integer("n_points", n_points, minimum=2)
    acceptance = check.choice("acceptance", acceptance, ACCEPTANCE)
    loose_residual = check.scalar("loose_residual", loose_residual, positive=True)
    loose_dedup = check.scalar("loose_dedup", loose_dedup, nonneg=True)
    for name in ("refine", "slow_tol", "dedup_tol"):
        if name in options and acceptance == "loose":
            raise ValueError(f"{name}: set by acceptance='loose'; pass acceptance='strict'")
    alpha = net.alpha
    if acceptance == "loose":
        options = {**options, "refine": False, "slow_tol": 0.5 * (alpha * loose_residual) ** 2,
                   "dedup_tol": loose_dedup}  # fmt: skip
    points, index, stable, residual = [], [], [], []
    counts = np.zeros(len(U), dtype=np.int64)
    for i, u in enumerate(U):
        with warnings.catch_warnings():  # an input without points is a result here (count 0)
            warnings.filterwarnings(
                "ignore", "fixed_points: no fixed or slow point", RuntimeWarning
            )
            fp = fixed_points(net, u, n_init, seed=seed, **options)
        keep = fp.fixed if acceptance == "strict" else np.ones(len(fp), dtype=bool)
        fp = fp.select(keep)
        X = fp.x.astype(np.float64)
        y = _round(_readout(net, X))
        norm = _round(np.linalg.norm(X, axis=1))
        order = np.lexsort((norm, y))
        points.append(X[order])
        index.append(np.full(len(order), i))
        stable.append(fp.stable[order])
        residual.append(np.sqrt(2.0 * fp.q[order]) / alpha)
        counts[i] = len(order)
    P = np.concatenate(points) if points else np.zeros((0, net.n))
    return Topology(
        descriptor=knn_descriptor(P, k, n_points),
        points=P,
        input_index=np.concatenate(index).astype(np.int64),
        stable=np.concatenate(stable).astype(bool),
        residual=np.concatenate(residual),
        counts=counts,
        inputs=U.astype(np.float64),
        acceptance=acceptance,
        k=k,
        n_points=n_points,
    )


def topology_distances(descriptors: Sequence[Any]) -> np.ndarray:
    """(P, P) Euclidean distances between the descriptors of P networks (:class:`Topology`
    objects or their ``descriptor`` vectors, all of one length)."""
    rows = [getattr(d, "descriptor", d) for d in descriptors]
    if len(rows) == 0:
        raise ValueError("descriptors: expected at least one descriptor, got none")
    V = np.array([np.asarray(r, dtype=np.float64) for r in rows])
    if V.ndim != 2:
        raise ValueError("descriptors: expected vectors of one length")
    D = np.sqrt(np.maximum(np.sum((V[:, None, :] - V[None, :, :]) ** 2, axis=-1), 0.0))
    np.fill_diagonal(D, 0.0)
    return D


@dataclass
class SVCCAProtocol:
    """Result of :func:`svcca_protocol`.

    Attributes
    ----------
    u : (steps, K, n_in) ndarray
        The static inputs (K = contexts x levels), constant in time.
    states : list of P (steps * K, n_p) ndarrays
        Each network's pre-activation states ``x`` on those inputs.
    distances : (P, P) ndarray
        SVCCA distances between the networks (:func:`distance_matrix`).
    """

    u: np.ndarray
    states: list
    distances: np.ndarray


def protocol_inputs(n_in: int, contexts: int | None, levels: Any, steps: int) -> np.ndarray:
    """(steps, K, n_in) constant inputs of :func:`svcca_protocol`."""
    levels = check.real_array("levels", levels)
    if levels.ndim != 1 or levels.size == 0:
        raise ValueError(f"levels: expected a non-empty 1-d array, got shape {levels.shape}")
    if contexts is None:
        static = np.repeat(levels[:, None], n_in, axis=1)
    else:
        if n_in != 2 * contexts:
            raise ValueError(
                f"contexts: {contexts} contexts need n_in = {2 * contexts}, not {n_in}"
            )
        static = context_inputs(contexts, levels)
    return np.broadcast_to(static, (steps, *static.shape)).copy()


def svcca_protocol(
    nets: Sequence[Any] | Any,
    *,
    contexts: int | None = None,
    levels: Any = None,
    steps: int = 750,
    variance: float = 0.95,
    dims: int | None = None,
) -> SVCCAProtocol:
    """The study's SVCCA protocol over a population of networks.

    Every network is run without noise, from its ``x0``, on ``levels`` static input levels
    per context (default ``linspace(-0.1875, 0.1875, 10)``) for ``steps`` steps; with
    ``contexts=N`` the level is on the cued evidence channel and the cue is on
    (:func:`context_inputs`), otherwise every input channel carries the level. The
    pre-activation states ``x`` of all runs, ``(steps * K, n)``, are the samples on which
    the SVCCA distances are computed.

    Parameters
    ----------
    nets : a RateRNN / LowRankRNN or a sequence of them, all with the same ``n_in``.
    contexts : None (the decision task) or N (N-context integration, n_in = 2N).
    levels : (L,) input levels.
    steps : steps per run.
    variance, dims : as in :func:`svcca`.

    Returns
    -------
    SVCCAProtocol
        ``u`` (steps, K, n_in), ``states`` (P arrays (steps * K, n_p)), ``distances`` (P, P).
    """
    nets = list(nets) if isinstance(nets, (list, tuple)) else [nets]
    if not nets:
        raise ValueError("nets: expected at least one network, got none")
    for i, net in enumerate(nets):
        if not getattr(net, "takes_gain", False):
            raise TypeError(
                f"nets[{i}]: expected a RateRNN or LowRankRNN, got {type(net).__name__}"
            )
        if net.n_in != nets[0].n_in:
            raise ValueError(f"nets[{i}]: n_in {net.n_in} differs from nets[0]'s {nets[0].n_in}")
    steps = check.integer("steps", steps, minimum=1)
    if contexts is not None:
        contexts = check.integer("contexts", contexts, minimum=1)
    levels = np.linspace(-0.1875, 0.1875, 10) if levels is None else levels
    u = protocol_inputs(nets[0].n_in, contexts, levels, steps)
    states = []
    for net in nets:
        x = net.run(u.astype(net.dtype)).x
        states.append(np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1]))
    D = distance_matrix(states, "svcca", variance=variance, dims=dims)
    return SVCCAProtocol(u=u, states=states, distances=D)
