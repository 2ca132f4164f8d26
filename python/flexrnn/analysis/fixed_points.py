"""Fixed and slow points of a network at constant input (docs/dynamics_analysis.md).

A network at constant input ``u`` is an autonomous map ``x -> F(x)`` (its rollout without
noise). :func:`fixed_points` minimises ``q(x) = ½||F(x) - x||²`` from many initial states at
once with Adam in C++ (analytic gradient ``(J - I)^T (F(x) - x)``), refines the states where
q is small by Levenberg-Marquardt on ``F(x) - x = 0`` (Jacobians from C++, solves in NumPy),
classifies them (fixed, slow, discarded), merges duplicates and computes the Jacobian's
eigenvalues and stability. :func:`line_attractor` follows the stable fixed point as ``u``
sweeps a range.

Models: RateRNN (both forms) and LowRankRNN, at any ``gain`` and ``neuron_gain``; NMRNN on
its joint state ``[x, z]`` (size ``n + n_mod``).

Thresholds, all on q as returned (the spec's objective):

- fixed point: ``q <= fp_tol * max(1, mean(x²))``; default ``fp_tol`` ``N * 1e-18`` in
  float64 and ``N * 1e-12`` in float32 (``N`` the state size): an RMS residual
  ``|F(x) - x| / sqrt(N)`` of about ``1.4e-9`` (float64) or ``1.4e-6`` (float32) for states
  of order one, well above rounding; the rounding of ``F(x) - x`` grows with ``|x|``, and
  so does the threshold for larger states;
- slow point: ``fp_tol < q <= slow_tol`` (default ``1e-6``). Since ``F(x) - x = alpha * dx/dt``
  for the rate networks, q scales with ``alpha²``: ``q = 1e-6`` is a speed
  ``|dx/dt| = sqrt(2e-6) / alpha`` per unit of tau;
- points with larger q are discarded;
- duplicates: two points closer than ``dedup_tol`` in RMS distance per state variable,
  ``|a - b| / sqrt(N)``, are one; the lowest q of a cluster is kept, its size is ``count``.

Stability is that of the map: stable iff every eigenvalue of ``J = dF/dx`` has modulus < 1.
The flow's eigenvalues ``(eig - 1) / alpha`` (per unit of tau; ``tau_x`` for the NMRNN) are
the continuous-time reading.

Continuum (line, ring, plane attractors): at a point, the slow space is spanned by the
eigenvectors of the flow eigenvalues with ``|mu| <= zero_tol`` (per tau), ``s_i`` of them.
The point is on a continuum when the displacement to its nearest other point lies in its
slow space (at least 90 % of its squared length); its local dimension ``d_i`` is the number
of directions the displacements to its ``2 s_i + 2`` nearest points take inside the slow
space (principal directions for 95 % of their summed, normalised, squared length), at most
``s_i``. The found points form a continuum of dimension ``d`` = the median of ``d_i`` over the
points on it, when there are at least ``min_continuum_points`` points and at least half of
those with ``s_i >= 1`` are on it. A slow but non-zero mode raises ``s_i`` but not ``d_i``:
the points do not spread along it. This local test (tangent of the set inside the
eigenvectors of eigenvalue 1) also accepts curved continua such as rings, which a global PCA
of the points would call two-dimensional; ``FixedPoints.spread_dimension`` reports that PCA
count (directions for 95 % of the points' variance) alongside.

When nothing is found (every minimisation ended with q above ``slow_tol``), a
``RuntimeWarning`` says so. The ``_ALWAYS_REFINE`` lowest-q endpoints are refined whatever
their q, so a root far from the sampled states, where Adam's fixed-size steps stall, is still
reached by Levenberg-Marquardt.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flexrnn import _validate as check

__all__ = ["FixedPoints", "LineAttractor", "fixed_points", "line_attractor"]

KINDS = ("fixed", "slow")
_ALIGNED = 0.9  # share of a neighbour displacement inside the near-zero eigenspace
_ALWAYS_REFINE = 8  # lowest-q minimiser endpoints refined whatever their q
_SPREAD_VARIANCE = 0.95


# ---------------------------------------------------------------------------------------------
# The map of a network at constant input, as the C++ core computes it


class _NetworkMap:
    """A model at constant input (and gain) as the map of its state: q, F, gradient,
    Jacobians and the Adam minimiser from ``_core``; the state size N; runs for sampling."""

    def __init__(
        self, net: Any, u_const: Any, gain: Any, neuron_gain: Any, pre_gain=None, post_gain=None
    ):
        # pre_gain, post_gain: None or (N,), folded into the map's matrix (rate networks)
        self.site_gains = {"pre_gain": pre_gain, "post_gain": post_gain}
        if getattr(net, "takes_gain", False):  # a rate network: its bound parameters and options
            p = net._check_shapes()
            self.dtype = net.dtype
            self.n_in = p["W_in"].shape[1]
            self.N = p["x0"].shape[0]
            self.gain = check.scalar("gain", gain)
            self.neuron_gain = (
                None
                if neuron_gain is None
                else check.array("neuron_gain", neuron_gain, self.dtype, (self.N,))
            )
            self.u = _u_const(u_const, self.n_in, self.dtype)
            self.alpha = net.alpha
            kernel = net._map_kernel(p, pre_gain, post_gain)
            self._args = (kernel, net._options(), self.u, self.gain, self.neuron_gain)
            self._map_at, self._minimize = net.kernels["map_at"], net.kernels["minimize_q"]
            self.run_alpha = net.alpha
        elif getattr(net, "has_modulator", False):  # the NM-RNN: its joint state [x, z]
            if neuron_gain is not None:
                raise ValueError("neuron_gain: applies to RateRNN and LowRankRNN only")
            p = net._check_shapes()
            self.dtype = net.dtype
            self.n_in = p["B_z"].shape[1]
            self.N = p["U"].shape[0] + p["W_z"].shape[0]
            # gain, pre_gain, post_gain (n,): on the low-rank term, folded into its factors
            self.gain, self.neuron_gain = check.scalar("gain", gain), None
            kernel = net._map_kernel(p, pre_gain, post_gain, self.gain)
            self.u = _u_const(u_const, self.n_in, self.dtype)
            self.alpha = net.alpha_x
            self._args = (kernel, net._options(), self.u)
            self._map_at, self._minimize = net.kernels["map_at"], net.kernels["minimize_q"]
            self.run_alpha = min(net.alpha_x, net.alpha_z)
        else:
            raise TypeError(
                f"net: expected a RateRNN, LowRankRNN or NMRNN, got {type(net).__name__}"
            )
        self.net = net

    def at(self, X: np.ndarray, gradient: bool = False, jacobian: bool = False) -> tuple:
        """(q (K,), F(X) (K, N), gradient (K, N) or None, J (K, N, N) or None)."""
        X = np.ascontiguousarray(X, dtype=self.dtype)
        return self._map_at(*self._args, X, gradient, jacobian)

    def minimize(self, X0: np.ndarray, iters: int, lr: float, tol: float) -> tuple:
        """Adam from every row of X0: (X (K, N), q (K,), steps (K,))."""
        X0 = np.ascontiguousarray(X0, dtype=self.dtype)
        return self._minimize(*self._args, X0, iters, lr, tol)

    def sample_run(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        """States (T, batch, N) of the network under u_const from x0 ~ N(0, 1), T = 5 time
        constants (of the slowest variable) in steps, at most 2000."""
        T = int(min(2000, max(10, np.ceil(5.0 / self.run_alpha))))
        u = np.broadcast_to(self.u, (T, batch, self.n_in))
        if self.net.has_modulator:
            n = self.net.n
            x0 = rng.standard_normal((batch, self.N))
            gains = {k: v for k, v in self.site_gains.items() if v is not None}
            out = self.net.run(u, x0=x0[:, :n], z0=x0[:, n:], gain=self.gain, **gains)
            return np.concatenate([out.x, out.z], axis=2)
        x0 = rng.standard_normal((batch, self.N))
        return self.net.run(
            u, x0=x0, gain=self.gain, neuron_gain=self.neuron_gain, **self.site_gains
        ).x

    def as_states(self, name: str, value: Any) -> np.ndarray:
        """(samples, N) float64 from (samples, N) or (T, B, N) states."""
        arr = check.real_array(name, value)
        shape = arr.shape
        if arr.ndim == 3:
            arr = arr.reshape(shape[0] * shape[1], shape[2])
        if arr.ndim != 2 or arr.shape[1] != self.N or arr.shape[0] == 0:
            what = "[x, z] joint states" if self.net.has_modulator else "states"
            raise ValueError(
                f"{name}: expected {what} of shape (K, {self.N}) or (T, B, {self.N}) with "
                f"K >= 1, got {shape}"
            )
        arr = np.asarray(arr, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        return arr


def _u_const(u_const: Any, n_in: int, dtype: np.dtype) -> np.ndarray:
    if u_const is None:
        return np.zeros(n_in, dtype=dtype)
    arr = check.real_array("u_const", u_const)
    if arr.ndim == 0 and n_in == 1:
        arr = arr.reshape(1)
    return check.array("u_const", arr, dtype, (n_in,))


# ---------------------------------------------------------------------------------------------
# Result


@dataclass
class FixedPoints:
    """Fixed and slow points of a network at constant input, one row per distinct point,
    in order of increasing q.

    Attributes
    ----------
    x : (m, N) ndarray
        The points (N = n, or n + n_mod for the NMRNN's joint state [x, z]).
    q : (m,) ndarray
        ``½||F(x) - x||²`` at each point.
    eigenvalues : (m, N) complex ndarray
        Eigenvalues of the map's Jacobian ``dF/dx``, by decreasing modulus.
    stable : (m,) bool ndarray
        Every eigenvalue of modulus < 1.
    kind : (m,) str ndarray
        ``"fixed"`` (``q <= fp_tol``) or ``"slow"``.
    count : (m,) int ndarray
        How many of the ``n_init`` minimisations ended at this point.
    n_init : int
        Number of initial states.
    jacobians : (m, N, N) ndarray
        The Jacobians ``dF/dx`` themselves.
    alpha : float
        ``dt / tau`` (``dt / tau_x`` for the NMRNN): flow eigenvalues are ``(eig - 1) / alpha``.
    u : (n_in,) ndarray
        The constant input.
    gain : float
        The recurrent gain of the map.
    continuum_dimension : int
        Dimension of the continuum the points form (0: isolated points); see the module
        docstring for the test.
    tolerances : dict
        fp_tol, slow_tol, dedup_tol, zero_tol used.
    """

    x: np.ndarray
    q: np.ndarray
    eigenvalues: np.ndarray
    stable: np.ndarray
    kind: np.ndarray
    count: np.ndarray
    n_init: int
    jacobians: np.ndarray
    alpha: float
    u: np.ndarray
    gain: float = 1.0
    continuum_dimension: int = 0
    tolerances: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def flow_eigenvalues(self) -> np.ndarray:
        """(m, N) eigenvalues of the continuous-time flow, ``(eig - 1) / alpha``, per tau."""
        return (self.eigenvalues - 1) / self.alpha

    @property
    def is_continuum(self) -> bool:
        """The points form a continuum (line, ring, ... attractor): continuum_dimension >= 1."""
        return self.continuum_dimension >= 1

    @property
    def marginal(self) -> np.ndarray:
        """(m,) bool: the largest eigenvalue modulus is within ``alpha * zero_tol`` of 1 (a
        flow eigenvalue near 0, as along a line attractor): ``stable`` then rests on
        rounding or on slow dynamics."""
        slack = self.alpha * self.tolerances.get("zero_tol", 0.0)
        top = np.abs(self.eigenvalues).max(axis=1, initial=0.0)
        return np.abs(top - 1) <= slack

    @property
    def fixed(self) -> np.ndarray:
        """(m,) bool: which points are fixed points (not slow points)."""
        return self.kind == "fixed"

    @property
    def spread_dimension(self) -> int:
        """Number of principal directions holding 95 % of the variance of the points' positions
        (0 for fewer than two points)."""
        if len(self) < 2:
            return 0
        s = np.linalg.svd(self.x - self.x.mean(axis=0), compute_uv=False) ** 2
        if s.sum() == 0:
            return 0
        return int(np.searchsorted(np.cumsum(s) / s.sum(), _SPREAD_VARIANCE - 1e-12) + 1)

    def select(self, mask: Any) -> FixedPoints:
        """The points where ``mask`` (bool (m,) or indices) holds, same settings
        (``continuum_dimension`` stays that of the whole set found)."""
        idx = np.arange(len(self))[mask]
        return FixedPoints(
            x=self.x[idx],
            q=self.q[idx],
            eigenvalues=self.eigenvalues[idx],
            stable=self.stable[idx],
            kind=self.kind[idx],
            count=self.count[idx],
            n_init=self.n_init,
            jacobians=self.jacobians[idx],
            alpha=self.alpha,
            u=self.u,
            gain=self.gain,
            continuum_dimension=self.continuum_dimension,
            tolerances=self.tolerances,
        )

    def summary(self) -> str:
        """A few lines: counts by kind and stability, continuum, then one line per point."""
        n_fixed = int(self.fixed.sum())
        lines = [
            f"{len(self)} points from {self.n_init} initial states: {n_fixed} fixed "
            f"({int((self.stable & self.fixed).sum())} stable), {len(self) - n_fixed} slow "
            f"({int((self.stable & ~self.fixed).sum())} stable)",
        ]
        if self.is_continuum:
            lines.append(
                f"continuum of dimension {self.continuum_dimension} "
                f"(points spread over {self.spread_dimension} principal directions)"
            )
        lines.append("   #  kind   stable      q          max|eig|  max Re(flow)  count")
        lines[0] += "" if not self.marginal.any() else f"; {int(self.marginal.sum())} marginal (~)"
        marginal = self.marginal
        for i in range(len(self)):
            eig = self.eigenvalues[i]
            stable = ("yes" if self.stable[i] else "no") + ("~" if marginal[i] else "")
            lines.append(
                f"{i:4d}  {self.kind[i]:5s}  {stable:4s}  "
                f"{self.q[i]:10.3e}  {np.abs(eig).max():8.5f}  "
                f"{self.flow_eigenvalues[i].real.max():11.4g}  {self.count[i]:5d}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def plot(self, trajectories: Any = None, ax: Any = None) -> Any:
        """The points in the top two principal components of ``trajectories`` (or of the
        points themselves when None): filled markers stable, open unstable; circles fixed
        points, squares slow points; trajectories as thin grey lines.

        trajectories: None, (T, B, N) (drawn as lines) or (K, N) states, e.g. ``net.run(u).x``
        (for an NMRNN, ``np.concatenate([out.x, out.z], 2)``). ax: None (a new figure) or
        an Axes to draw in. Returns the Figure (like every ``plot()`` of flexrnn).
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 4))
        N = self.x.shape[1]
        data = self.x if trajectories is None else np.asarray(trajectories, dtype=np.float64)
        if data.shape[-1] != N or data.ndim not in (2, 3):
            raise ValueError(
                f"trajectories: expected shape (T, B, {N}) or (K, {N}), got {data.shape}"
            )
        flat = data.reshape(-1, N)
        mean = flat.mean(axis=0) if len(flat) else np.zeros(N)
        if len(flat) > 1:
            components = np.linalg.svd(flat - mean, full_matrices=False)[2][:2]
        else:
            components = np.eye(N)[:2]
        if components.shape[0] < 2:
            components = np.vstack([components, np.zeros((2 - components.shape[0], N))])

        def project(a):
            return (a - mean) @ components.T

        if trajectories is not None and data.ndim == 3:
            P = project(data.reshape(-1, N)).reshape(data.shape[0], data.shape[1], 2)
            for b in range(P.shape[1]):
                ax.plot(P[:, b, 0], P[:, b, 1], color="0.75", lw=0.6, zorder=1)
        points = project(self.x)
        for kind, marker in (("fixed", "o"), ("slow", "s")):
            for stable, face in ((True, "C0"), (False, "none")):
                sel = (self.kind == kind) & (self.stable == stable)
                if sel.any():
                    ax.scatter(points[sel, 0], points[sel, 1], marker=marker, s=36,
                               facecolors=face, edgecolors="C0", zorder=3,
                               label=f"{kind}, {'stable' if stable else 'unstable'}")  # fmt: skip
        ax.set(xlabel="PC 1", ylabel="PC 2")
        if len(self):
            ax.legend(frameon=False, fontsize="small")
        return ax.figure


# ---------------------------------------------------------------------------------------------
# The search


def fixed_points(
    net: Any,
    u_const: Any = None,
    n_init: int = 100,
    *,
    states: Any = None,
    init_noise: float = 0.1,
    x_init: Any = None,
    seed: int = 0,
    gain: float = 1.0,
    neuron_gain: Any = None,
    pre_gain: Any = None,
    post_gain: Any = None,
    iters: int = 2000,
    lr: float = 0.01,
    refine: bool = True,
    refine_below: float = 1e-3,
    refine_iters: int = 50,
    fp_tol: float | None = None,
    slow_tol: float = 1e-6,
    dedup_tol: float = 1e-3,
    zero_tol: float = 1e-2,
    min_continuum_points: int = 5,
) -> FixedPoints:
    """Fixed and slow points of ``net`` at the constant input ``u_const``.

    Parameters
    ----------
    net : RateRNN, LowRankRNN or NMRNN (joint state ``[x, z]``).
    u_const : None (zeros) or (n_in,) constant input.
    n_init : number of initial states drawn (0: only those of ``x_init``).
    states : where initial states are drawn from: (T, B, N) or (K, N) states, e.g.
        ``net.run(u).x``; None runs the network under ``u_const`` from ``x0 ~ N(0, 1)``
        (``min(n_init, 32)`` trials, 5 time constants) and uses every step of it.
    init_noise : std of the Gaussian noise added to each drawn state.
    x_init : None or (K, N) initial states used as given, in addition to the n_init drawn.
    seed : seed of the draws (initial states and noise).
    gain, neuron_gain : the map at this recurrent gain (scalar) and per-neuron slope (N,)
        (RateRNN and LowRankRNN; an NMRNN takes ``gain``, on its low-rank term).
    pre_gain, post_gain : None or (N,): the map of the network whose recurrent matrix is
        ``diag(post_gain) W diag(pre_gain)`` (RateRNN and LowRankRNN; see ``RateRNN.run``);
        for an NMRNN, (n,) on its low-rank term, as ``gain`` (see ``NMRNN.run``).
    iters, lr : Adam steps and step size of the minimiser (C++).
    refine : Levenberg-Marquardt on ``F(x) - x = 0`` from the states with
        ``q < refine_below``, at most ``refine_iters`` iterations; a step is kept only where
        it lowers q.
    fp_tol, slow_tol, dedup_tol, zero_tol, min_continuum_points : thresholds (module
        docstring).

    Returns
    -------
    FixedPoints (possibly empty).
    """
    m = _NetworkMap(net, u_const, gain, neuron_gain, pre_gain, post_gain)
    n_init = check.integer("n_init", n_init, minimum=0)
    if n_init == 0 and x_init is None:
        raise ValueError("n_init: must be >= 1 when no x_init is given")
    init_noise = check.scalar("init_noise", init_noise, nonneg=True)
    rng = np.random.default_rng(check.seed("seed", seed))
    iters = check.integer("iters", iters, minimum=0, maximum=2**31 - 1)
    lr = check.scalar("lr", lr, positive=True)
    refine_below = check.scalar("refine_below", refine_below, nonneg=True)
    refine_iters = check.integer("refine_iters", refine_iters, minimum=0)
    if fp_tol is None:
        fp_tol = m.N * (1e-18 if m.dtype == np.float64 else 1e-12)
    fp_tol = check.scalar("fp_tol", fp_tol, nonneg=True)
    slow_tol = check.scalar("slow_tol", slow_tol, nonneg=True)
    if slow_tol < fp_tol:
        raise ValueError(f"slow_tol: must be >= fp_tol = {fp_tol}, got {slow_tol}")
    dedup_tol = check.scalar("dedup_tol", dedup_tol, nonneg=True)
    zero_tol = check.scalar("zero_tol", zero_tol, nonneg=True)
    min_continuum_points = check.integer("min_continuum_points", min_continuum_points, minimum=2)

    if n_init:
        pool = m.sample_run(min(n_init, 32), rng) if states is None else states
        pool = m.as_states("states", pool)
        X0 = pool[rng.integers(0, len(pool), n_init)]
        X0 = X0 + init_noise * rng.standard_normal(X0.shape)
    else:
        X0 = np.zeros((0, m.N))
    if x_init is not None:
        X0 = np.concatenate([m.as_states("x_init", x_init), X0])
    return _search(m, X0, iters, lr, refine, refine_below, refine_iters,
                   dict(fp_tol=fp_tol, slow_tol=slow_tol, dedup_tol=dedup_tol,
                        zero_tol=zero_tol),
                   min_continuum_points)  # fmt: skip


def _search(m, X0, iters, lr, refine, refine_below, refine_iters, tol, min_points):
    X, q, _ = m.minimize(X0, iters, lr, tol["fp_tol"])
    X, q = X.astype(np.float64), q.astype(np.float64)
    finite = np.isfinite(q) & np.isfinite(X).all(axis=1)
    X, q = X[finite], q[finite]
    # Merge first, refine one representative per cluster (the minimiser's endpoints near one
    # root are many, and Levenberg-Marquardt costs N³ per point), then merge the refined
    # representatives that reached the same root.
    lowest = np.zeros(len(q), dtype=bool)
    if refine and refine_iters:
        lowest[np.argsort(q, kind="stable")[:_ALWAYS_REFINE]] = True
    candidates = (q <= max(refine_below, tol["slow_tol"])) | lowest
    reps, counts = _deduplicate(X, q, tol["dedup_tol"], candidates)
    X, q, lowest = X[reps], q[reps], lowest[reps]
    if refine and refine_iters and len(reps):
        low = (q < refine_below) | lowest
        X[low], q[low] = _levenberg_marquardt(m, X[low], q[low], refine_iters, tol["fp_tol"])
    best = float(q.min()) if len(q) else float("nan")
    reps, counts = _deduplicate(X, q, tol["dedup_tol"], q <= tol["slow_tol"], counts)
    X, q = X[reps], q[reps]
    if len(reps) == 0:
        warnings.warn(
            f"fixed_points: no fixed or slow point found from {X0.shape[0]} initial states "
            f"(lowest q {best:.3g} > slow_tol {tol['slow_tol']:g}); try more iters, a larger "
            "lr, other states, or a larger slow_tol",
            RuntimeWarning,
            stacklevel=3,
        )
    N = m.N
    if len(reps):
        q_final, _, _, J = m.at(X, jacobian=True)  # q and J in the model's dtype, as returned
        J = J.astype(np.float64)
        eigenvalues, vectors = np.linalg.eig(J)
        order = np.argsort(-np.abs(eigenvalues), axis=1, kind="stable")
        eigenvalues = np.take_along_axis(eigenvalues, order, axis=1)
        vectors = np.take_along_axis(vectors, order[:, None, :], axis=2)
        q = q_final.astype(np.float64)
    else:
        J = np.zeros((0, N, N))
        eigenvalues = np.zeros((0, N), dtype=complex)
        vectors = np.zeros((0, N, N), dtype=complex)
    stable = np.abs(eigenvalues).max(axis=1, initial=0.0) < 1 if len(reps) else np.zeros(0, bool)
    scale = np.maximum(1.0, np.mean(X**2, axis=1)) if len(reps) else np.ones(0)
    kind = np.where(q <= tol["fp_tol"] * scale, "fixed", "slow").astype("<U5")
    dimension = _continuum_dimension(X, (eigenvalues - 1) / m.alpha, vectors, tol["zero_tol"],
                                     min_points)  # fmt: skip
    return FixedPoints(
        x=X.astype(m.dtype),
        q=q,
        eigenvalues=eigenvalues,
        stable=stable,
        kind=kind,
        count=counts,
        n_init=int(X0.shape[0]),
        jacobians=J.astype(m.dtype),
        alpha=float(m.alpha),
        u=m.u,
        gain=float(m.gain),
        continuum_dimension=dimension,
        tolerances=dict(tol),
    )


def _deduplicate(X, q, tol, candidates, weights=None):
    """Greedy clustering in order of increasing q: each candidate joins the nearest kept point
    if within RMS distance ``tol`` (``|a - b| / sqrt(N)``), else starts a cluster.
    Returns (indices of the kept points in order of increasing q, cluster sizes: sums of
    ``weights``, default ones)."""
    weights = np.ones(len(q), dtype=np.int64) if weights is None else weights
    order = np.flatnonzero(candidates)
    order = order[np.argsort(q[order], kind="stable")]
    if order.size == 0:
        return order, np.zeros(0, dtype=np.int64)
    limit = tol**2 * X.shape[1]
    kept: list[int] = []
    counts: list[int] = []
    for i in order:
        if kept:
            d2 = np.sum((X[kept] - X[i]) ** 2, axis=1)
            j = int(np.argmin(d2))
            if d2[j] <= limit:
                counts[j] += int(weights[i])
                continue
        kept.append(int(i))
        counts.append(int(weights[i]))
    return np.array(kept), np.array(counts, dtype=np.int64)


def _levenberg_marquardt(m, X, q, iters, fp_tol):
    """Solve F(x) - x = 0 from the rows of X (float64) by Levenberg-Marquardt:
    ``(A + lam I) step = -Jr^T r`` with ``Jr = J - I``, ``A = Jr^T Jr``; a step is taken only
    where it lowers q (then lam / 10, else lam * 10). Jacobians are recomputed only at moved
    points. Returns (X, q)."""
    K, N = X.shape
    if K == 0:
        return X, q
    X, q = X.copy(), q.copy()
    eye = np.eye(N)
    q_c, F, _, J = m.at(X, jacobian=True)
    q = q_c.astype(np.float64)
    R, Jr = F - X, J.astype(np.float64) - eye
    lam = np.full(K, 1e-6)
    # stop where q is at rounding level or lam has grown past any useful step
    floor = fp_tol * 1e-6 * np.maximum(1.0, np.mean(X**2, axis=1))  # per point, as in _search
    active = (q > floor) & np.isfinite(q)
    for _ in range(iters):
        if not active.any():
            break
        a = np.flatnonzero(active)
        JrT = np.transpose(Jr[a], (0, 2, 1))
        A = JrT @ Jr[a]
        g = np.einsum("kij,kj->ki", JrT, R[a])
        scale = np.maximum(np.einsum("kii->k", A) / N, 1e-300)
        A = A + (lam[a] * scale)[:, None, None] * eye
        try:
            step = -np.linalg.solve(A, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -np.stack([np.linalg.lstsq(Ak, gk, rcond=None)[0] for Ak, gk in zip(A, g)])
        X_try = X[a] + step
        q_try, F_try, _, J_try = m.at(X_try, jacobian=True)
        q_try = q_try.astype(np.float64)
        better = q_try < q[a]
        moved = a[better]
        X[moved] = X_try[better].astype(m.dtype).astype(np.float64)  # as the core saw it
        q[moved] = q_try[better]
        R[moved] = F_try[better] - X[moved]
        Jr[moved] = J_try[better] - eye
        lam[moved] = np.maximum(lam[moved] / 10, 1e-12)
        lam[a[~better]] *= 10
        active = (q > floor) & (lam < 1e8)
    return X, q


def _continuum_dimension(X, flow_eigenvalues, vectors, zero_tol, min_points):
    """Dimension of the continuum formed by the points X (m, N) (module docstring)."""
    m = X.shape[0]
    if m < min_points:
        return 0
    near_zero = np.abs(flow_eigenvalues) <= zero_tol  # (m, N)
    slow = near_zero.sum(axis=1)
    if int(np.round(np.median(slow))) == 0:
        return 0
    sq = np.sum(X**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * (X @ X.T), 0)  # (m, m), no (m, m, N)
    np.fill_diagonal(d2, np.inf)
    aligned, local = [], []
    for i in np.flatnonzero(slow >= 1):
        V = vectors[i][:, near_zero[i]]
        U, sv, _ = np.linalg.svd(np.concatenate([V.real, V.imag], axis=1), full_matrices=False)
        basis = U[:, sv > 1e-8 * sv[0]]  # real span of the slow eigenvectors
        near = np.argsort(d2[i], kind="stable")[: min(2 * slow[i] + 2, m - 1)]
        steps = X[near] - X[i]
        lengths = np.linalg.norm(steps, axis=1)
        if lengths[0] == 0:
            continue
        inside = np.sum((steps[0] @ basis) ** 2) / lengths[0] ** 2
        aligned.append(inside >= _ALIGNED)
        if aligned[-1]:
            P = (steps[lengths > 0] @ basis) / lengths[lengths > 0, None]
            energy = np.linalg.svd(P, compute_uv=False) ** 2
            rank = int(np.searchsorted(np.cumsum(energy) / energy.sum(), 0.95 - 1e-12) + 1)
            local.append(min(rank, int(slow[i])))
    if not aligned or np.mean(aligned) < 0.5:
        return 0
    return int(np.round(np.median(local)))


# ---------------------------------------------------------------------------------------------
# A family of fixed points under a sweep of the input


@dataclass
class LineAttractor:
    """The stable fixed point followed as the constant input sweeps ``u``.

    Attributes
    ----------
    u : (P, n_in) ndarray
        The inputs, in sweep order.
    x : (P, N) ndarray
        The followed stable fixed point at each input (NaN where none was found).
    q : (P,) ndarray
        q there (NaN where none).
    max_modulus : (P,) ndarray
        Largest eigenvalue modulus of the map's Jacobian there (NaN where none).
    points : list of FixedPoints
        Everything found at each input.
    """

    u: np.ndarray
    x: np.ndarray
    q: np.ndarray
    max_modulus: np.ndarray
    points: list

    def __len__(self) -> int:
        return int(self.u.shape[0])

    @property
    def found(self) -> np.ndarray:
        """(P,) bool: a stable fixed point was found at this input."""
        return np.isfinite(self.q)

    @property
    def length(self) -> float:
        """Arc length of the curve of followed points (over consecutive found inputs)."""
        x = self.x[self.found]
        return float(np.sum(np.linalg.norm(np.diff(x, axis=0), axis=1))) if len(x) > 1 else 0.0

    def plot(self, ax: Any = None) -> Any:
        """The followed points in their top two principal components, coloured by the
        position of the input in the sweep. ax: None (a new figure) or an Axes to draw in.
        Returns the Figure (like every ``plot()`` of flexrnn)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 4))
        x = self.x[self.found]
        if len(x) == 0:
            return ax.figure
        mean = x.mean(axis=0)
        comps = np.linalg.svd(x - mean, full_matrices=False)[2][:2] if len(x) > 1 else None
        P = np.zeros((len(x), 2)) if comps is None else (x - mean) @ comps.T
        if P.shape[1] < 2:
            P = np.column_stack([P, np.zeros(len(P))])
        ax.plot(P[:, 0], P[:, 1], color="0.6", lw=1, zorder=1)
        sc = ax.scatter(P[:, 0], P[:, 1], c=np.flatnonzero(self.found), cmap="viridis", zorder=2)
        ax.figure.colorbar(sc, ax=ax, label="input index")
        ax.set(xlabel="PC 1", ylabel="PC 2")
        return ax.figure


def line_attractor(
    net: Any, u_values: Any, n_init: int = 20, *, states: Any = None, **options: Any
) -> LineAttractor:
    """Follow the stable fixed point of ``net`` as the constant input sweeps ``u_values``.

    u_values : (P, n_in), or (P,) when n_in = 1: the inputs in sweep order.
    n_init, states : as in :func:`fixed_points`; at every input after the first, the point
        followed at the previous input is also an initial state (continuation).
    options : other arguments of :func:`fixed_points` (``seed``, ``gain``, tolerances...).

    At the first input the stable fixed point of lowest q is followed; afterwards the
    stable fixed point nearest to the previous one. Returns a :class:`LineAttractor`.
    """
    m = _NetworkMap(
        net,
        None,
        options.get("gain", 1.0),
        options.get("neuron_gain"),
        options.get("pre_gain"),
        options.get("post_gain"),
    )
    U = check.real_array("u_values", u_values)
    if U.ndim == 1 and m.n_in == 1:
        U = U[:, None]
    if U.ndim != 2 or U.shape[1] != m.n_in or U.shape[0] == 0:
        raise ValueError(f"u_values: expected shape (P, {m.n_in}) with P >= 1, got {U.shape}")
    U = check.array("u_values", U, m.dtype)
    P, N = U.shape[0], m.N
    x = np.full((P, N), np.nan)
    q = np.full(P, np.nan)
    modulus = np.full(P, np.nan)
    results = []
    previous = None
    for p in range(P):
        x_init = None if previous is None else previous[None]
        fp = fixed_points(net, U[p], n_init, states=states, x_init=x_init, **options)
        results.append(fp)
        stable = np.flatnonzero(fp.stable & fp.fixed)
        if stable.size == 0:
            continue
        if previous is None:
            i = stable[0]  # points come in order of increasing q
        else:
            i = stable[np.argmin(np.sum((fp.x[stable] - previous) ** 2, axis=1))]
        previous = fp.x[i].astype(np.float64)
        x[p], q[p] = previous, fp.q[i]
        modulus[p] = np.abs(fp.eigenvalues[i]).max()
    return LineAttractor(u=U, x=x, q=q, max_modulus=modulus, points=results)
