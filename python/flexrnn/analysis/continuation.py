"""Bifurcation continuation of fixed points under the recurrent gain (docs/dynamics_analysis.md,
"Bifurcation continuation").

The flow of a rate network at constant input ``u`` and gain ``g`` is
``f(x, g) = (F(x; g) - x) / alpha`` (``F`` the noiseless map of one step, from C++). Its
fixed points form curves in ``(x, g)``. :func:`continuation` follows every curve through the
fixed points found at the first gain of a path (and the curves born at branch points on the
way) by pseudo-arclength predictor-corrector steps, in the scaled coordinates
``y = (x / sqrt(N), g)``:

1. tangent ``t``: ``[J_x, J_g / sqrt(N); t_prev^T] t = [0; 1]``, normalised, oriented along
   ``t_prev`` (``J_x = (dF/dx - I) / alpha`` from the C++ Jacobian, ``J_g = df/dg``);
2. predictor ``y_p = y + ds t``;
3. corrector: Newton-chord on ``f(x, g) = 0`` and ``t . (y - y_p) = 0`` (the bordered
   system): the LU factorisation of the previous point's bordered matrix, its last row
   replaced by ``t`` (Sherman-Morrison), refactorised only where the iterations contract
   slowly; the tangent and the sign of ``det J_x`` (``z_g det A``, Cramer's rule) come from
   the factorisation at the converged point, the next step's chord matrix. A step that
   fails, or turns the tangent by more than 30 degrees, is retried at ``ds / 2``; ``ds``
   grows by 1.5 after an easy step, up to ``ds_max``.

Stability at each point: the eigenvalues of ``J_x`` (per unit of tau; all of them, or for
large N the few with the largest real parts from ARPACK, see :class:`_Spectrum`); the point
is stable when every real part is negative. A real eigenvalue crossing 0 changes the sign of
``det J_x``: a saddle-node (fold) when the curve turns back in g there (the tangent's g
component changes sign), else a branch point, where a second curve crosses: a pitchfork
when that curve lies on one side of the branch point's gain, a transcritical point when it
crosses it. A complex pair crossing the imaginary axis is a Hopf point. Each is located on
the curve by regula falsi (Illinois) on a test function: ``det J_x`` relative to its value at
the previous point (real crossings), the real part of the crossing pair (Hopf). New curves
start at branch points from the null vector of ``J_x`` there. Chaos begins where the largest
Lyapunov exponent (:func:`flexrnn.analysis.gain_sweep` over the path) crosses 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flexrnn import _validate as check

from .fixed_points import _deduplicate, _NetworkMap, _u_const
from .regimes import GainSweep, gain_sweep

__all__ = ["Bifurcation", "Branch", "Continuation", "continuation", "TARGETS", "KINDS",
           "EIGENSOLVERS"]  # fmt: skip

TARGETS = ("gain",)  # where the continued gain acts (per-site gains come with their kernels)
KINDS = ("saddle-node", "pitchfork", "transcritical", "hopf", "chaos")
_MAX_TURN = math.cos(math.radians(30.0))  # largest tangent turn accepted in one step
_MAX_CORRECTION = 0.3  # largest corrector displacement, in units of the step
_CHORD_ITERS = 60  # corrector iterations, all factorisations together
_CHORD_CONTRACTION = 0.5  # a chord step larger than this times the previous: refactorise
_MAX_FACTORISATIONS = 10  # per corrector call
_EASY_ITERS = 8  # a step converged in this many chord iterations lets ds grow
EIGENSOLVERS = ("auto", "dense", "arnoldi")
_ARNOLDI_MIN_N = 200  # "auto" takes ARPACK from this N (dense eigenvalues cost 10 N^3)
_ARNOLDI_MIN_K = 8  # eigenvalues ARPACK returns at first (doubled while all are unstable)
_ARNOLDI_TOL = 1e-12  # ARPACK's relative residual: located crossings need ~1e-10
_RITZ_TOL = 1e-13  # residual of a Rayleigh-Ritz eigenpair, relative to a bound on |J_x|
_START_ITERS = 500  # Adam steps of the starting search: Newton finishes the job
_LEADING = 6  # eigenvalues kept per point (largest real parts)
_COLOURS = {
    "saddle-node": "C1",
    "pitchfork": "C2",
    "transcritical": "C4",
    "hopf": "C3",
    "chaos": "k",
}
_MARKERS = {"saddle-node": "s", "pitchfork": "D", "transcritical": "v", "hopf": "o", "chaos": "*"}


# ---------------------------------------------------------------------------------------------
# The flow of a rate network as a function of its state and gain


class _GainFlow:
    """``f(x, g) = (F(x; g) - x) / alpha`` and its Jacobians, from the model's C++ map."""

    def __init__(self, net: Any, u_const: Any, neuron_gain: Any):
        if not getattr(net, "takes_gain", False):  # RateRNN, LowRankRNN
            raise TypeError(f"net: expected a RateRNN or LowRankRNN, got {type(net).__name__}")
        p = net._check_shapes()
        self.net = net
        self.dtype = net.dtype
        self.N = int(p["x0"].shape[0])
        self.alpha = float(net.alpha)
        self.u = _u_const(u_const, p["W_in"].shape[1], self.dtype)
        self.neuron_gain = (
            None
            if neuron_gain is None
            else check.array("neuron_gain", neuron_gain, self.dtype, (self.N,))
        )
        self.affine_in_gain = net.form == "current"  # LowRankRNN is current-form too
        self._kernel, self._options = net._kernel(p), net._options()
        self._map_at = net.kernels["map_at"]
        self.eps = float(np.finfo(self.dtype).eps)
        self.spectrum = _Spectrum(self.N, "dense")  # continuation() sets the one it uses

    def _map(self, x: np.ndarray, g: float, jacobian: bool) -> tuple:
        X = np.ascontiguousarray(x[None, :], dtype=self.dtype)
        _, F, _, J = self._map_at(self._kernel, self._options, self.u, float(g),
                                  self.neuron_gain, X, False, jacobian)  # fmt: skip
        F = F[0].astype(np.float64, copy=False)
        return F, None if J is None else J[0].astype(np.float64, copy=False)

    def f(self, x: np.ndarray, g: float) -> np.ndarray:
        """(N,) the flow per unit of tau."""
        F, _ = self._map(x, g, False)
        return (F - x) / self.alpha

    def linearise(self, x: np.ndarray, g: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(f (N,), J_x = df/dx (N, N), J_g = df/dg (N,)) at (x, g)."""
        F, J = self._map(x, g, True)
        f = (F - x) / self.alpha
        Jx = J if J.flags.writeable and J.dtype == np.float64 else J.astype(np.float64)
        Jx *= 1.0 / self.alpha  # in place: at N = 1000 a copy of J costs as much as forming it
        Jx.flat[:: self.N + 1] -= 1.0 / self.alpha
        if self.affine_in_gain:  # F = (1 - alpha) x + alpha (g W phi + c): exact secant
            F1, _ = self._map(x, g + 1.0, False)
            Jg = (F1 - F) / self.alpha
        elif abs(g) > 1e-6:  # rate form: dF/dg = (dF/dx - (1 - alpha) I) x / g
            Jg = (Jx @ x + x) / g
        else:
            h = self.eps ** (1 / 3)
            Jg = (self._map(x, g + h, False)[0] - self._map(x, g - h, False)[0]) / (
                2 * h * self.alpha
            )
        return f, Jx, Jg


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Bifurcation:
    """A bifurcation on the gain path.

    Attributes
    ----------
    kind : str
        ``"saddle-node"``, ``"pitchfork"``, ``"transcritical"``, ``"hopf"`` or ``"chaos"``.
    gain : float
        Where it is (the located gain; for ``"chaos"``, where the largest Lyapunov exponent
        crosses 0 between two gains of the path, by linear interpolation).
    x : (N,) ndarray or None
        The fixed point at the bifurcation (None for ``"chaos"``).
    eigenvalue : complex
        The critical eigenvalue of the flow's Jacobian (per tau; ``Im`` is the angular
        frequency of a Hopf point); NaN for ``"chaos"``.
    branch : int
        Index of the branch it lies on in ``Continuation.branches`` (-1 for ``"chaos"``).
    target : str
        Where the continued gain acts (``"gain"``).
    """

    kind: str
    gain: float
    x: np.ndarray | None
    eigenvalue: complex
    branch: int
    target: str = "gain"

    @property
    def frequency(self) -> float:
        """Cycles per unit of tau of the oscillation born at a Hopf point (NaN otherwise)."""
        if self.kind != "hopf":
            return float("nan")
        return abs(self.eigenvalue.imag) / (2 * math.pi)

    def __repr__(self) -> str:
        extra = f", frequency={self.frequency:.4g}/tau" if self.kind == "hopf" else ""
        return f"Bifurcation({self.kind!r}, gain={self.gain:.6g}, branch={self.branch}{extra})"


@dataclass
class Branch:
    """One curve of fixed points, in the order it was followed.

    Attributes
    ----------
    gain : (P,) ndarray
        The gain at each point.
    x : (P, N) ndarray
        The fixed points.
    stable : (P,) bool ndarray
        Every eigenvalue of the flow's Jacobian has a negative real part.
    n_unstable : (P,) int ndarray
        Number of eigenvalues with a positive real part.
    eigenvalues : (P, k) complex ndarray
        The ``k = min(6, N)`` eigenvalues of the flow's Jacobian with the largest real
        parts (per tau), where they were computed (NaN rows elsewhere; ``n_unstable`` there
        is inferred from the points around, see ``eig_every``).
    origin : str
        ``"fixed point"`` (found at the first gain) or ``"branch point"`` (switched onto).
    end : str
        Why following stopped: ``"boundary"`` (left the gain range), ``"closed"`` (came back
        to its start), ``"max_steps"`` or ``"step failed"``.
    """

    gain: np.ndarray
    x: np.ndarray
    stable: np.ndarray
    n_unstable: np.ndarray
    eigenvalues: np.ndarray
    origin: str
    end: str

    def __len__(self) -> int:
        return int(self.gain.shape[0])


@dataclass
class Continuation:
    """Branches of fixed points and bifurcations along a path of gains.

    Attributes
    ----------
    target : str
        Where the gain acts (``"gain"``: it multiplies the recurrent weights).
    gains : (G,) ndarray
        The path; the branches are followed over ``[min(gains), max(gains)]``.
    branches : list of Branch
    bifurcations : list of Bifurcation
        Sorted by gain.
    regimes : GainSweep or None
        The regime (largest Lyapunov exponent, label) at each gain of the path, when
        ``chaos=True``.
    u : (n_in,) ndarray
        The constant input.
    alpha : float
        ``dt / tau`` of the network.
    truncated : bool
        ``max_branches`` was reached: some branch points were not switched at.
    options : dict
        ds_max, eig_every, locate, switch_branches and eigensolver (``"dense"`` or
        ``"arnoldi"``) used.
    """

    target: str
    gains: np.ndarray
    branches: list
    bifurcations: list
    regimes: GainSweep | None
    u: np.ndarray
    alpha: float
    truncated: bool = False
    options: dict = field(default_factory=dict)

    def of_kind(self, kind: str) -> list:
        """The bifurcations of one kind (one of ``KINDS``), by gain."""
        check.choice("kind", kind, KINDS)
        return [b for b in self.bifurcations if b.kind == kind]

    def points_at(self, gain: float) -> tuple[np.ndarray, np.ndarray]:
        """The fixed points at ``gain`` on every branch (linear interpolation between the
        followed points that bracket it; a folded branch can contribute several):
        ``(x (m, N), stable (m,) bool)``."""
        g = check.scalar("gain", gain)
        xs, st = [], []
        for br in self.branches:
            for i in range(len(br) - 1):
                g0, g1 = br.gain[i], br.gain[i + 1]
                if (g0 - g) * (g1 - g) > 0 or g0 == g1 or (g == g1 and i + 2 < len(br)):
                    continue
                w = (g - g0) / (g1 - g0)
                xs.append((1 - w) * br.x[i] + w * br.x[i + 1])
                st.append(bool(br.stable[i] if w < 0.5 else br.stable[i + 1]))
        N = self.branches[0].x.shape[1] if self.branches else 0
        if not xs:
            return np.zeros((0, N)), np.zeros(0, dtype=bool)
        return np.array(xs), np.array(st, dtype=bool)

    def summary(self) -> str:
        """Branches and bifurcations, one line each."""
        lo, hi = float(self.gains.min()), float(self.gains.max())
        lines = [f"continuation over {self.target} in [{lo:g}, {hi:g}]: "
                 f"{len(self.branches)} branches, {len(self.bifurcations)} bifurcations"
                 + (" (max_branches reached)" if self.truncated else "")]  # fmt: skip
        for i, br in enumerate(self.branches):
            lines.append(
                f"  branch {i}: {len(br)} points, gain {br.gain.min():.4g}..{br.gain.max():.4g}"
                f", stable at {int(br.stable.sum())}, from a {br.origin}, end: {br.end}"
            )
        lines += [f"  {b!r}" for b in self.bifurcations]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def projection(self, measure: Any = "pc1") -> np.ndarray | None:
        """The direction (N,) the diagram projects the states on for ``measure="pc1"``:
        the first right singular vector of all branch points (uncentred, so the origin
        stays at 0), signed so its largest entry is positive; None for other measures."""
        if not (isinstance(measure, str) and measure == "pc1"):
            return None
        X = np.concatenate([br.x for br in self.branches]) if self.branches else np.zeros((0, 1))
        if X.size == 0 or not np.any(X):
            N = X.shape[1]
            v = np.zeros(N)
            v[0] = 1.0
            return v
        v = np.linalg.svd(X, full_matrices=False)[2][0]
        return v if v[np.argmax(np.abs(v))] > 0 else -v

    def _coordinate(self, X: np.ndarray, measure: Any, v: np.ndarray | None) -> np.ndarray:
        if v is not None:
            return X @ v
        if isinstance(measure, str) and measure == "rms":
            return np.sqrt(np.mean(X**2, axis=1))
        if isinstance(measure, (int, np.integer)) and not isinstance(measure, bool):
            N = X.shape[1]
            if not 0 <= int(measure) < N:
                raise ValueError(f"measure: a unit index must be in 0..{N - 1}, got {measure}")
            return X[:, int(measure)]
        raise ValueError(f"measure: expected 'pc1', 'rms' or a unit index, got {measure!r}")

    def plot(self, measure: Any = "pc1", axes: Any = None) -> Any:
        """The bifurcation diagram: the fixed points against the gain (solid stable, dashed
        unstable; ``measure``: ``"pc1"`` their projection on the first principal direction
        of all points, ``"rms"`` their RMS, or a unit index), the bifurcations marked by
        kind; below it, when ``regimes`` were computed, the largest Lyapunov exponent over
        the path, coloured by regime. Returns the figure."""
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        from .regimes import _COLOURS as REGIME_COLOURS

        panels = 2 if self.regimes is not None else 1
        if axes is None:
            fig, axes = plt.subplots(panels, 1, figsize=(5.5, 3.2 * panels + 0.4), sharex=True,
                                     constrained_layout=True, squeeze=False)  # fmt: skip
            axes = axes[:, 0]
        else:
            axes = np.atleast_1d(axes)
            if len(axes) < panels:
                raise ValueError(f"axes: expected {panels} Axes, got {len(axes)}")
            fig = axes[0].figure
        ax = axes[0]
        v = self.projection(measure)
        for br in self.branches:
            c = self._coordinate(br.x, measure, v)
            for stable, style, colour in ((True, "-", "C0"), (False, "--", "C3")):
                y = np.where(br.stable == stable, c, np.nan)
                # join each run to its neighbour so the curve has no gaps at stability changes
                edge = np.zeros(len(br), dtype=bool)
                edge[:-1] |= (br.stable[:-1] != stable) & (br.stable[1:] == stable)
                edge[1:] |= (br.stable[1:] != stable) & (br.stable[:-1] == stable)
                y = np.where(edge, c, y)
                ax.plot(br.gain, y, style, color=colour, lw=1.5)
        handles = [Line2D([], [], color="C0", ls="-", label="stable"),
                   Line2D([], [], color="C3", ls="--", label="unstable")]  # fmt: skip
        for kind in KINDS[:-1]:
            found = [b for b in self.bifurcations if b.kind == kind]
            if not found:
                continue
            xs = self._coordinate(np.array([b.x for b in found]), measure, v)
            ax.scatter([b.gain for b in found], xs, marker=_MARKERS[kind], s=40,
                       color=_COLOURS[kind], zorder=3, edgecolors="k", linewidths=0.5)  # fmt: skip
            handles.append(Line2D([], [], marker=_MARKERS[kind], color=_COLOURS[kind], ls="",
                                  markeredgecolor="k", label=kind))  # fmt: skip
        for b in self.of_kind("chaos"):
            for a in axes[:panels]:
                a.axvline(b.gain, color=_COLOURS["chaos"], lw=1, ls=":")
        if self.of_kind("chaos"):
            handles.append(Line2D([], [], color="k", ls=":", label="onset of chaos"))
        names = {"pc1": "fixed point, projection on PC 1", "rms": "fixed point, RMS of x"}
        ylabel = names.get(measure, f"fixed point, x[{measure}]") if not isinstance(
            measure, (int, np.integer)) else f"fixed point, x[{int(measure)}]"  # fmt: skip
        ax.set(ylabel=ylabel, title=f"bifurcation diagram ({self.target})")
        ax.legend(handles=handles, frameon=False, fontsize="small", loc="best")
        if self.regimes is not None:
            r = self.regimes
            ax2 = axes[1]
            ax2.plot(r.gains, r.largest_exponent, color="0.7", lw=1, zorder=1)
            colours = [REGIME_COLOURS[label] for label in r.labels]
            ax2.scatter(r.gains, r.largest_exponent, c=colours, s=18, zorder=2)
            ax2.axhline(0, color="0.4", lw=0.8, ls="--")
            for label in dict.fromkeys(r.labels):
                ax2.scatter([], [], color=REGIME_COLOURS[label], s=18, label=label)
            ax2.legend(frameon=False, fontsize="small", title="regime")
            ax2.set(ylabel="largest Lyapunov exponent (1/tau)")
        axes[panels - 1].set(xlabel=self.target)
        return fig


# ---------------------------------------------------------------------------------------------
# The continuation


def continuation(
    net: Any,
    gains: Any,
    u_const: Any = None,
    target: str = "gain",
    *,
    neuron_gain: Any = None,
    n_init: int = 50,
    x_init: Any = None,
    seed: int = 0,
    ds_max: float | None = None,
    max_steps: int = 1000,
    max_branches: int = 16,
    switch_branches: bool = True,
    locate: bool = True,
    eig_every: int | None = None,
    eigensolver: str = "auto",
    chaos: bool = True,
    chaos_threshold: float = 0.02,
    lyapunov_steps: int | None = None,
) -> Continuation:
    """Follow every fixed point of ``net`` along a path of gains and find its bifurcations.

    Parameters
    ----------
    net : RateRNN (either form) or LowRankRNN.
    gains : (G,) the gain path, G >= 2, strictly increasing or decreasing; the branches
        are followed over ``[min(gains), max(gains)]``, starting at ``gains[0]``.
    u_const : None (zeros) or (n_in,) constant input.
    target : where the gain acts: ``"gain"`` (multiplies the recurrent weights). Other
        targets (``"pre_gain"``, ``"post_gain"``) are a ValueError in this version.
    neuron_gain : None or (n,) per-neuron slope of phi, held fixed.
    n_init, x_init, seed : the search for the starting fixed points at ``gains[0]``
        (:func:`flexrnn.analysis.fixed_points`, 500 Adam steps; its fixed and slow points,
        polished by Newton at ``gains[0]``, start branches where Newton converges). ``seed``
        also seeds ``gain_sweep``.
    ds_max : largest step, in the scaled arclength ``sqrt(|dx|^2 / N + dg^2)`` (default:
        the largest spacing of ``gains``).
    max_steps : most points per branch.
    max_branches : most branches followed (``truncated`` says when it was reached).
    switch_branches : start new branches at the branch points found.
    locate : locate each bifurcation on its branch (else: linear interpolation between the
        ends of the piece of the step that holds it). Locating a Hopf point costs a few
        eigenvalue decompositions of N x N matrices.
    eig_every : eigenvalues at every ``eig_every``-th point (and wherever the stability
        may change between two of them: bisection); default 1 for N <= 256, else
        ``ceil(N / 256)``. ``det J_x`` is checked at every point.
    eigensolver : ``"dense"`` (every eigenvalue of J_x, ``10 N^3``), ``"arnoldi"`` (only
        the few with the largest real parts, by ARPACK started from the previous point's
        eigenvectors; more where all of those are unstable; dense where ARPACK does not
        converge; needs SciPy) or ``"auto"`` (Arnoldi for N >= 200 when SciPy is
        installed, else dense).
    chaos : also run :func:`flexrnn.analysis.gain_sweep` over ``gains`` (Lyapunov
        exponents and regimes; ``regimes``) and report where chaos begins.
    chaos_threshold, lyapunov_steps : passed to ``gain_sweep``.

    Returns
    -------
    Continuation (``.branches``, ``.bifurcations``, ``.regimes``, ``.plot()``,
    ``.summary()``).
    """
    if not (isinstance(target, str) and target in TARGETS):
        _bad_target(target)
    flow = _GainFlow(net, u_const, neuron_gain)
    path = check.real_array("gains", gains)
    if path.ndim != 1 or path.size < 2:
        raise ValueError(f"gains: expected shape (G,) with G >= 2, got {path.shape}")
    path = check.array("gains", path, np.dtype(np.float64))
    steps = np.diff(path)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise ValueError("gains: must be strictly increasing or strictly decreasing")
    lo, hi = float(path.min()), float(path.max())
    ds_max = float(np.abs(steps).max()) if ds_max is None else check.scalar(
        "ds_max", ds_max, positive=True)  # fmt: skip
    max_steps = check.integer("max_steps", max_steps, minimum=2)
    max_branches = check.integer("max_branches", max_branches, minimum=1)
    N = flow.N
    eig_every = None if eig_every is None else check.integer("eig_every", eig_every, minimum=1)
    chaos_threshold = check.scalar("chaos_threshold", chaos_threshold, nonneg=True)
    flow.spectrum = _Spectrum(N, eigensolver)
    tol = 1e-10 if flow.dtype == np.float64 else 2e-4
    eig_every = max(1, math.ceil(N / 256)) if eig_every is None else eig_every
    opts = _Options(lo=lo, hi=hi, ds_max=ds_max, max_steps=max_steps, eig_every=eig_every,
                    locate=bool(locate), tol=tol)  # fmt: skip

    starts = _starting_points(net, flow, float(path[0]), n_init, x_init, seed, opts)
    if not starts:
        warnings.warn(f"continuation: no fixed point found at gain {path[0]:g}; try more n_init "
                      "or x_init", RuntimeWarning, stacklevel=2)  # fmt: skip
    scale = math.sqrt(N)
    direction = 1.0 if steps[0] > 0 else -1.0
    queue = [(np.append(x / scale, path[0]), np.append(np.zeros(N), direction), "fixed point",
              None, fac) for x, fac in starts]  # fmt: skip
    branches: list[_Followed] = []
    bifurcations: list[Bifurcation] = []
    truncated = False
    while queue:
        y0, t0, origin, parent, factor = queue.pop(0)
        if any(b.contains(y0) for k, b in enumerate(branches) if k != parent):
            continue
        if len(branches) == max_branches:
            truncated = True
            warnings.warn(f"continuation: max_branches = {max_branches} reached; "
                          f"{len(queue) + 1} branch starts not followed", RuntimeWarning,
                          stacklevel=2)  # fmt: skip
            break
        br = _follow(flow, y0, t0, origin, opts, factor)
        if br is None:
            continue
        index = len(branches)
        branches.append(br)
        for kind, y, eig, plane in _events(flow, br, opts):
            bifurcations.append(Bifurcation(kind, float(y[-1]), y[:-1] * scale, eig, index,
                                            target))  # fmt: skip
            if plane is not None and switch_branches:
                queue.extend((start, tangent, "branch point", index, None)
                             for start, tangent in plane)  # fmt: skip
    if chaos:
        regimes = gain_sweep(net, path, u_const=flow.u, neuron_gain=flow.neuron_gain, seed=seed,
                             chaos_threshold=chaos_threshold,
                             lyapunov_steps=lyapunov_steps)  # fmt: skip
        bifurcations += _chaos_onsets(regimes, chaos_threshold, target)
    else:
        regimes = None
    bifurcations.sort(key=lambda b: b.gain)
    return Continuation(target=target, gains=path, branches=[b.result(scale) for b in branches],
                        bifurcations=bifurcations, regimes=regimes, u=flow.u, alpha=flow.alpha,
                        truncated=truncated,
                        options=dict(ds_max=ds_max, eig_every=eig_every, locate=bool(locate),
                                     switch_branches=bool(switch_branches),
                                     eigensolver=flow.spectrum.solver))  # fmt: skip


def _starting_points(net, flow, gain, n_init, x_init, seed, o) -> list:
    """Fixed points at the first gain: the minimiser's fixed and slow points (those of
    :func:`fixed_points` with 500 Adam steps and without its Levenberg-Marquardt refinement:
    the same draws, Adam and de-duplication, without the eigendecomposition of every point
    found), polished by Newton on f(x, gain) = 0; those where Newton converges, without
    duplicates, each with the factorisation there: ``[(x (N,), _Factor)]``."""
    s = math.sqrt(flow.N)
    row = np.zeros(flow.N + 1)
    row[-1] = 1.0
    starts: list[np.ndarray] = []
    factors: list[_Factor] = []
    for x in _minimiser_points(net, flow, gain, n_init, x_init, seed):
        y, ok, _, _, fac = _correct(flow, np.append(x / s, gain), row, o.tol, fixed_gain=True)
        if ok and not any(np.linalg.norm(y - z) <= 1e-6 * (1 + np.linalg.norm(y)) for z in starts):
            starts.append(y)
            factors.append(fac)
    return [(y[:-1] * s, fac) for y, fac in zip(starts, factors)]


def _minimiser_points(net, flow, gain, n_init, x_init, seed) -> np.ndarray:
    """(K, N) the points ``fixed_points(net, u, n_init, x_init=x_init, seed=seed, gain=gain,
    iters=500, refine=False).x`` holds (its defaults: noise 0.1, lr 0.01, q <= 1e-6, RMS
    de-duplication 1e-3)."""
    m = _NetworkMap(net, flow.u, gain, flow.neuron_gain, None, None)
    n_init = check.integer("n_init", n_init, minimum=0)
    if n_init == 0 and x_init is None:
        raise ValueError("n_init: must be >= 1 when no x_init is given")
    rng = np.random.default_rng(check.seed("seed", seed))
    X0 = np.zeros((0, m.N))
    if n_init:
        pool = m.as_states("states", m.sample_run(min(n_init, 32), rng))
        X0 = pool[rng.integers(0, len(pool), n_init)]
        X0 = X0 + 0.1 * rng.standard_normal(X0.shape)
    if x_init is not None:
        X0 = np.concatenate([m.as_states("x_init", x_init), X0])
    fp_tol = m.N * (1e-18 if m.dtype == np.float64 else 1e-12)
    X, q, _ = m.minimize(X0, _START_ITERS, 0.01, fp_tol)
    X, q = X.astype(np.float64), q.astype(np.float64)
    finite = np.isfinite(q) & np.isfinite(X).all(axis=1)
    X, q = X[finite], q[finite]
    reps, counts = _deduplicate(X, q, 1e-3, q <= 1e-3)
    X, q = X[reps], q[reps]
    reps, _ = _deduplicate(X, q, 1e-3, q <= 1e-6, counts)
    return X[reps].astype(m.dtype).astype(np.float64).reshape(-1, m.N)


def _bad_target(target: Any) -> None:
    raise ValueError(
        f"target: expected one of {', '.join(TARGETS)} (the global recurrent gain); got "
        f"{target!r}. Continuation in per-site gains ('pre_gain', 'post_gain') needs those "
        "gains in the core's kernels, which this version does not have"
    )


@dataclass
class _Options:
    lo: float
    hi: float
    ds_max: float
    max_steps: int
    eig_every: int
    locate: bool
    tol: float


class _Followed:
    """A branch being followed, in scaled coordinates y = (x / sqrt(N), g)."""

    def __init__(self, origin: str, every: int):
        self.origin = origin
        self.every = every
        self.y: list[np.ndarray] = []
        self.t: list[np.ndarray] = []
        self.det_sign: list[float] = []
        self.logdet: list[float] = []
        self.eig: dict[int, np.ndarray] = {}  # point index -> eigenvalues of J_x (_Spectrum)
        self.end = "max_steps"
        self.factor: tuple[int, _Factor] | None = None  # (point index, its factorisation)
        self.last_Jx: np.ndarray | None = None

    def add(self, flow: _GainFlow, y: np.ndarray, t: np.ndarray, fac: _Factor) -> None:
        """Point y with tangent t; sign and log|.| of det J_x from its factorisation, and
        the eigenvalues at every ``every``-th point while J_x is at hand."""
        i = len(self.y)
        self.y.append(y)
        self.t.append(t)
        self.det_sign.append(fac.det_sign)
        self.logdet.append(fac.logdet)
        if i % self.every == 0:
            self.eig[i] = flow.spectrum(fac.Jx)
        self.last_Jx = fac.Jx  # the last point's eigenvalues are needed whatever its index

    def factor_at(self, flow: _GainFlow, i: int) -> _Factor:
        """The bordered matrix at point i with its tangent as last row (the corrector's
        matrix of the step from i), factorised once for all the offsets tried from it."""
        if self.factor is None or self.factor[0] != i:
            self.factor = (i, _Factor.at(flow, self.y[i], self.t[i]))
        return self.factor[1]

    def contains(self, y: np.ndarray) -> bool:
        """y lies on this branch's polyline (within a tenth of the local segment length)."""
        if len(self.y) < 2:
            return len(self.y) == 1 and np.linalg.norm(self.y[0] - y) < 1e-6
        Y = np.array(self.y)
        a, b = Y[:-1], Y[1:]
        d = b - a
        length2 = np.maximum(np.sum(d * d, axis=1), 1e-300)
        tau = np.clip(np.sum((y - a) * d, axis=1) / length2, 0, 1)
        dist = np.linalg.norm(a + tau[:, None] * d - y, axis=1)
        return bool(np.any(dist <= 0.1 * np.sqrt(length2) + 1e-7 * (1 + np.linalg.norm(y))))

    def result(self, scale: float) -> Branch:
        Y = np.array(self.y)
        P = len(Y)
        n_unstable = np.array([self._count(i) for i in range(P)], dtype=np.int64)
        k = min(_LEADING, Y.shape[1] - 1)
        eigenvalues = np.full((P, k), np.nan + 0j)
        for i, e in self.eig.items():
            top = e[np.argsort(-e.real, kind="stable")][:k]
            eigenvalues[i, : len(top)] = top
        return Branch(gain=Y[:, -1].copy(), x=Y[:, :-1] * scale, stable=n_unstable == 0,
                      n_unstable=n_unstable, eigenvalues=eigenvalues, origin=self.origin,
                      end=self.end)  # fmt: skip

    def _count(self, i: int) -> int:
        return int(np.sum(self.eig[i].real > 0)) if i in self.eig else self.counts[i]


# ---------------------------------------------------------------------------------------------
# Linear algebra: the bordered system, factorised once per point, and the spectrum of J_x


def _scipy_linalg():
    """(scipy.linalg, scipy.sparse.linalg) or None: SciPy is optional. With it, one LU
    factorisation serves every corrector iteration of a step and the eigenvalues nearest the
    imaginary axis come from ARPACK; without it, NumPy inverses and dense eigenvalues."""
    global _SCIPY
    if _SCIPY is None:
        try:
            import scipy.linalg
            import scipy.sparse.linalg

            _SCIPY = (scipy.linalg, scipy.sparse.linalg)
        except ImportError:
            _SCIPY = False
    return _SCIPY or None


_SCIPY: Any = None


def _lu_factor(linalg: Any, M: np.ndarray) -> tuple:
    """scipy.linalg.lu_factor of M (overwritten), quietly: a singular M shows as a zero
    pivot, which the callers check."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.lu_factor(M, overwrite_a=True, check_finite=False)


class _Factor:
    """The bordered matrix ``A = [J_x, J_g / sqrt(N); row^T]`` at one point, factorised once.

    ``solve(b, row')`` solves with A's last row replaced by row' (Sherman-Morrison on the
    factorisation), so a point's factorisation serves the chord corrector of the next step,
    whose row is the new tangent. ``z = A^{-1} e_{N+1}`` is the tangent before normalisation,
    and ``det J_x = z_g det A`` (Cramer's rule) gives the sign and log|.| of det J_x from the
    same factorisation. Raises LinAlgError when A is singular or not finite.
    """

    def __init__(self, Jx: np.ndarray, c: np.ndarray, row: np.ndarray):
        N = Jx.shape[0]
        A = np.empty((N + 1, N + 1))
        A[:-1, :-1] = Jx
        A[:-1, -1] = c
        A[-1] = row
        if not np.all(np.isfinite(A)):
            raise np.linalg.LinAlgError("bordered matrix not finite")
        self.Jx, self.row = Jx, np.array(row, dtype=np.float64)
        self.point: np.ndarray | None = None  # where J_x was taken (set by ``at``)
        la = _scipy_linalg()
        if la is not None:
            lu, piv = _lu_factor(la[0], A)
            d = np.diag(lu)
            if not np.all(d != 0) or not np.all(np.isfinite(d)):
                raise np.linalg.LinAlgError("bordered matrix singular")
            swaps = int(np.count_nonzero(piv != np.arange(N + 1)))
            sign_a = (-1.0) ** swaps * float(np.prod(np.sign(d)))
            log_a = float(np.sum(np.log(np.abs(d))))
            self._lu, self._solve_lu, self._inv = (lu, piv), la[0].lu_solve, None
        else:
            sign_a, log_a = np.linalg.slogdet(A)
            self._inv = np.linalg.inv(A)
        e = np.zeros(N + 1)
        e[-1] = 1.0
        self.z = self._solve(e)
        zg = float(self.z[-1])
        if not np.all(np.isfinite(self.z)):
            raise np.linalg.LinAlgError("bordered matrix singular")
        self.det_sign = float(np.sign(zg)) * float(sign_a)
        self.logdet = (float(np.log(abs(zg))) if zg != 0 else -np.inf) + float(log_a)

    @classmethod
    def at(cls, flow: _GainFlow, y: np.ndarray, row: np.ndarray) -> _Factor:
        s = math.sqrt(flow.N)
        _, Jx, Jg = flow.linearise(y[:-1] * s, y[-1])
        fac = cls(Jx, Jg / s, row)
        fac.point = y.copy()
        return fac

    def _solve(self, b: np.ndarray) -> np.ndarray:
        if self._inv is not None:
            return self._inv @ b
        return self._solve_lu(self._lu, b, check_finite=False)

    def solve(self, b: np.ndarray, row: np.ndarray) -> np.ndarray:
        """x with [J_x, J_g / sqrt(N); row^T] x = b (this point's J_x and J_g)."""
        x = self._solve(b)
        d = row - self.row
        if not np.any(d):
            return x
        denominator = 1.0 + float(d @ self.z)
        if denominator == 0.0 or not np.isfinite(denominator):
            raise np.linalg.LinAlgError("bordered matrix singular")
        return x - self.z * (float(d @ x) / denominator)

    def tangent(self, row: np.ndarray) -> np.ndarray | None:
        """The unit tangent oriented along row (the null vector of [J_x, J_g / sqrt(N)])."""
        e = np.zeros(self.z.shape[0])
        e[-1] = 1.0
        try:
            return _unit(self.solve(e, row), row)
        except np.linalg.LinAlgError:
            return None


class _Spectrum:
    """Eigenvalues of J_x at a point: all of them (``"dense"``), or (``"arnoldi"``) the ``k``
    with the largest real parts (those nearest the imaginary axis, or right of it).

    Arnoldi: ARPACK (``scipy.sparse.linalg.eigs``, ``which="LR"``) on products with J_x,
    started from the previous call's eigenvectors (the spectrum moves little between
    neighbouring points, and ARPACK then needs far fewer products than from a random start).
    ``k`` starts at 8 and doubles (up to ``N / 4``) while every returned eigenvalue has a
    positive real part (the unstable ones may not all be among them); past that, and where
    ARPACK does not converge, the dense solver answers. ``bound`` is the smallest real part
    returned: every eigenvalue right of it is in the set (as far as ARPACK's convergence
    goes), so the count of unstable eigenvalues and the rightmost six are those of the set.
    """

    def __init__(self, N: int, solver: Any):
        if not (isinstance(solver, str) and solver in EIGENSOLVERS):
            raise ValueError(f"eigensolver: expected one of {EIGENSOLVERS}, got {solver!r}")
        if solver == "arnoldi" and _scipy_linalg() is None:
            raise ValueError("eigensolver: 'arnoldi' needs SciPy (pip install scipy)")
        if solver == "auto":
            solver = "arnoldi" if N >= _ARNOLDI_MIN_N and _scipy_linalg() is not None else "dense"
        if solver == "arnoldi" and N < 4 * _ARNOLDI_MIN_K:
            solver = "dense"  # ARPACK needs k < N - 1; at this size dense is as fast
        self.solver = solver
        self.N = N
        self.k = _ARNOLDI_MIN_K
        self.warm: np.ndarray | None = None
        self.bound = -math.inf
        self.vectors: np.ndarray | None = None  # (N, k) ARPACK's eigenvectors of the last call
        self.calls = {"arnoldi": 0, "dense": 0, "fallback": 0, "ritz": 0}

    def __call__(self, Jx: np.ndarray) -> np.ndarray:
        k_max = max(_ARNOLDI_MIN_K, self.N // 4)
        if self.solver == "arnoldi" and self.k <= k_max:
            e = self._arnoldi(Jx)
            if e is not None:
                self.calls["arnoldi"] += 1
                return e
            self.calls["fallback"] += 1
        self.calls["dense"] += 1
        self.bound, self.vectors = -math.inf, None
        e = np.linalg.eigvals(Jx)
        if self.solver == "arnoldi":  # too many unstable for ARPACK: dense until they are fewer
            unstable = int(np.sum(e.real > 0))
            self.k = k_max + 1 if unstable >= k_max // 2 else _ARNOLDI_MIN_K
            while self.k < 2 * unstable and self.k < k_max:
                self.k *= 2
        return e

    def _arnoldi(self, Jx: np.ndarray) -> np.ndarray | None:
        sparse = _scipy_linalg()[1]
        N = self.N
        rng = np.random.default_rng(0)  # a fixed start: the same answer every run
        v0 = rng.standard_normal(N) if self.warm is None else self.warm
        k, k_max = min(self.k, N // 4), max(_ARNOLDI_MIN_K, N // 4)
        while True:
            try:
                lam, V = sparse.eigs(Jx, k=k, which="LR", v0=v0, ncv=min(N, 2 * k + 24),
                                     tol=_ARNOLDI_TOL, maxiter=100 * N)  # fmt: skip
            except (sparse.ArpackNoConvergence, sparse.ArpackError):
                self.warm = None
                return None
            lam = _with_conjugates(lam)
            if np.all(np.isfinite(lam)) and lam.real.min() <= 0:
                break
            if k >= k_max:
                return None
            k = min(2 * k, k_max)
        self.k = k
        # the next start: the eigenvectors found (no noise added: ARPACK would have to
        # filter it out again to its tolerance, which costs more products than it saves)
        v = np.sum(V.real + V.imag, axis=1)
        self.warm = v / np.linalg.norm(v)
        self.bound, self.vectors = float(lam.real.min()), V
        return lam

    def near(self, Jx: np.ndarray, basis: np.ndarray, lam: complex) -> tuple:
        """(eigenvalue of J_x nearest lam, its unit eigenvector), or (None, None): a
        Rayleigh-Ritz step on ``basis`` (N, m) (eigenvectors at points nearby) and four block
        products with J_x, accepted where its residual ``|J_x v - mu v|`` is at rounding
        level; the located Hopf point's pair is followed this way at the cost of a few
        matrix products."""
        Q = np.linalg.qr(np.concatenate([basis.real, basis.imag], axis=1))[0]
        block = Q
        for _ in range(4):
            block = Jx @ block
            block = block - Q @ (Q.T @ block)
            block = np.linalg.qr(block)[0]
            Q = np.concatenate([Q, block], axis=1)
        Q = np.linalg.qr(Q)[0]
        w, Y = np.linalg.eig(Q.T @ Jx @ Q)
        j = int(np.argmin(np.abs(w - lam)))
        v = Q @ Y[:, j]
        v /= np.linalg.norm(v)
        residual = float(np.linalg.norm(Jx @ v - w[j] * v))
        if not residual <= _RITZ_TOL * (1 + float(np.abs(Jx).max()) * math.sqrt(self.N)):
            return None, None
        self.calls["ritz"] += 1
        return complex(w[j]), v


def _with_conjugates(lam: np.ndarray) -> np.ndarray:
    """lam with the conjugate of every complex eigenvalue whose conjugate is missing (ARPACK
    may return one member of a pair at the edge of its set)."""
    missing = [np.conj(v) for v in lam[~_is_real(lam)]
               if np.min(np.abs(lam - np.conj(v))) > 1e-9 * (1 + abs(v))]  # fmt: skip
    return np.concatenate([lam, np.array(missing, dtype=complex)]) if missing else lam


def _eig(flow: _GainFlow, y: np.ndarray) -> np.ndarray:
    _, Jx, _ = flow.linearise(y[:-1] * math.sqrt(flow.N), y[-1])
    return flow.spectrum(Jx)


def _unit(t: np.ndarray, t_prev: np.ndarray) -> np.ndarray | None:
    """t normalised and oriented along t_prev (None when not finite or zero)."""
    norm = np.linalg.norm(t)
    if not np.isfinite(norm) or norm == 0:
        return None
    t = t / norm
    return t if t @ t_prev >= 0 else -t


def _correct(flow: _GainFlow, y_pred: np.ndarray, row: np.ndarray, tol: float,
             fixed_gain: bool = False, factor: _Factor | None = None,
             factorise: bool = True) -> tuple:  # fmt: skip
    """Newton-chord from y_pred on H(y) = 0 and row . (y - y_pred) = 0 (or g fixed):
    ``(y, converged, easy, tangent, factorisation at y)``.

    The iterations reuse one factorisation of the bordered matrix (``factor``, from a point
    nearby, else made at y_pred) and make a new one where they contract by less than
    ``_CHORD_CONTRACTION`` per iteration. The tangent (unit, along row; None with
    ``fixed_gain``) and the factorisation returned are those at the converged point (within
    ``tol`` of the last linearisation). ``easy``: converged on the first factorisation in at
    most ``_EASY_ITERS`` iterations. With ``factorise=False`` nothing is factorised at the
    converged point (tangent and factorisation None).
    """
    s = math.sqrt(flow.N)
    if fixed_gain:
        row = np.zeros(flow.N + 1)
        row[-1] = 1.0
    y = y_pred.copy()
    fac = factor
    at = None if factor is None else factor.point  # where the factorisation was made
    last = math.inf
    factorisations = 0
    for it in range(1, _CHORD_ITERS + 1):
        if fac is None:
            if factorisations == _MAX_FACTORISATIONS:
                break
            try:
                fac, at = _Factor.at(flow, y, row), y.copy()
            except np.linalg.LinAlgError:
                return y, False, False, None, None
            factorisations += 1
            last = math.inf
        H = flow.f(y[:-1] * s, y[-1]) / s
        if not np.all(np.isfinite(H)):
            return y, False, False, None, None
        try:
            dy = fac.solve(np.append(-H, -(row @ (y - y_pred))), row)
        except np.linalg.LinAlgError:
            dy = np.full_like(y, np.nan)
        step = float(np.linalg.norm(dy))
        small = step <= tol * (1 + np.linalg.norm(y))
        diverging = not np.isfinite(step) or step > 1e3 * (1 + np.linalg.norm(y))
        if diverging or (not small and step > _CHORD_CONTRACTION * last):
            if at is not None and np.array_equal(at, y):
                return y, False, False, None, None  # diverging on a fresh linearisation
            fac = None  # contracting too slowly (or diverging): a new factorisation here
            continue
        y = y + dy
        last = step
        if small:
            res = np.linalg.norm(flow.f(y[:-1] * s, y[-1])) / s
            if not res <= 1e3 * tol * (1 + np.linalg.norm(y)):
                return y, False, False, None, None
            easy = factorisations == 0 and it <= _EASY_ITERS
            if not factorise:
                return y, True, easy, None, None
            if at is None or np.linalg.norm(y - at) > 10 * tol * (1 + np.linalg.norm(y)):
                try:
                    fac = _Factor.at(flow, y, row)
                except np.linalg.LinAlgError:
                    return y, False, False, None, None
            t = None if fixed_gain else fac.tangent(row)
            return y, t is not None or fixed_gain, easy, t, fac
    return y, False, False, None, None


def _follow(flow: _GainFlow, y0: np.ndarray, t_guess: np.ndarray, origin: str, o: _Options,
            factor: _Factor | None = None) -> _Followed | None:  # fmt: skip
    """One branch from y0 (corrected on the plane through y0 normal to t_guess; ``factor``:
    a factorisation at or near y0) along the direction of t_guess, until it leaves
    [lo, hi], closes or fails."""
    y, ok, _, t, fac = _correct(flow, y0, t_guess / np.linalg.norm(t_guess), o.tol,
                                factor=factor)  # fmt: skip
    if not ok:
        return None
    br = _Followed(origin, o.eig_every)
    br.add(flow, y, t, fac)
    ds = o.ds_max / 4
    ds_min = o.ds_max * 1e-6
    start = y.copy()
    while len(br.y) < o.max_steps:
        y_new, ok, easy, t_new, fac_new = _correct(flow, y + ds * t, t, o.tol, factor=fac)
        if ok:
            ok = t_new is not None and t_new @ t >= _MAX_TURN
            # a corrector that moves far from the predictor may have jumped to another branch:
            # on one curve it moves about curvature * ds^2 / 2 <= ds / 4 at a 30-degree turn
            ok = ok and np.linalg.norm(y_new - (y + ds * t)) <= _MAX_CORRECTION * ds
        if not ok:
            ds /= 2
            if ds < ds_min:
                br.end = "step failed"
                break
            continue
        g = y_new[-1]
        if g > o.hi or g < o.lo:  # finish exactly on the boundary
            bound = o.hi if g > o.hi else o.lo
            w = (bound - y[-1]) / (g - y[-1])
            y_b, ok_b, _, _, fac_b = _correct(flow, y + w * (y_new - y), t, o.tol,
                                              fixed_gain=True, factor=fac_new)  # fmt: skip
            if ok_b and np.linalg.norm(y_b - y) > 1e-12:
                t_b = fac_b.tangent(t)
                if t_b is not None:
                    br.add(flow, y_b, t_b, fac_b)
            br.end = "boundary"
            break
        br.add(flow, y_new, t_new, fac_new)
        if len(br.y) > 3 and np.linalg.norm(y_new - start) < 0.5 * ds:
            br.end = "closed"
            break
        y, t, fac = y_new, t_new, fac_new
        if easy:
            ds = min(1.5 * ds, o.ds_max)
    if len(br.y) < 2:
        return None
    _stability(flow, br, o.eig_every)
    br.last_Jx = None
    return br


def _stability(flow: _GainFlow, br: _Followed, every: int) -> None:
    """Eigenvalues at every ``every``-th point (computed while following) and the last;
    between two evaluated points with different unstable counts, or with a change of sign
    of det J_x, bisect."""
    P = len(br.y)
    counts = np.full(P, -1, dtype=np.int64)

    def count(i: int) -> int:
        if i not in br.eig:
            last = i == P - 1 and br.last_Jx is not None
            br.eig[i] = flow.spectrum(br.last_Jx) if last else _eig(flow, br.y[i])
        counts[i] = int(np.sum(br.eig[i].real > 0))
        return counts[i]

    def fill(i: int, j: int) -> None:
        if j - i <= 1:
            return
        same_sign = all(br.det_sign[k] == br.det_sign[i] for k in range(i, j + 1))
        if counts[i] == counts[j] and same_sign:
            counts[i + 1 : j] = counts[i]
            return
        m = (i + j) // 2
        count(m)
        fill(i, m)
        fill(m, j)

    marks = sorted(set(range(0, P, every)) | {P - 1})
    for i in marks:
        count(i)
    for i, j in zip(marks[:-1], marks[1:]):
        fill(i, j)
    br.counts = counts


def _events(flow: _GainFlow, br: _Followed, o: _Options):
    """(kind, y, critical eigenvalue, branch-switching starts or None) for every bifurcation
    between consecutive points of the branch: each step with crossings is cut into pieces
    with one crossing each (:func:`_isolate`), then each crossing is located."""
    for i in range(len(br.y) - 1):
        j = i + 1
        odd = br.det_sign[i] != br.det_sign[j] and br.det_sign[i] * br.det_sign[j] != 0
        if not (i in br.eig and j in br.eig):  # counts inferred equal (bisection saw no change)
            if odd:
                s_hi = float(br.t[i] @ (br.y[j] - br.y[i]))
                yield _real_event(flow, br, i, *_locate_real(flow, br, i, o, 0.0, s_hi), o)
            continue
        for (sa, ea), (sb, eb) in _isolate(flow, br, i, o):
            (ra, ca), (rb, cb) = _unstable(ea), _unstable(eb)
            if rb != ra:
                yield _real_event(flow, br, i, *_locate_real(flow, br, i, o, sa, sb), o)
            elif cb != ca:
                for lam_a, lam_b in _crossing(ea, eb, cb > ca, abs(cb - ca) // 2, real=False):
                    y, lam = _locate_tracked(flow, br, i, (sa, lam_a), (sb, lam_b), o)
                    yield "hopf", y, lam, None


def _isolate(flow: _GainFlow, br: _Followed, i: int, o: _Options, depth: int = 12) -> list:
    """Pieces ``((s_a, eig_a), (s_b, eig_b))`` of the step from point i (offsets s along
    the corrector family, eigenvalues of J_x at both ends) each holding one crossing (one
    real eigenvalue or one complex pair): halves evaluated while a piece holds more,
    at most ``depth`` times."""
    s_hi = float(br.t[i] @ (br.y[i + 1] - br.y[i]))
    stack = [((0.0, br.eig[i]), (s_hi, br.eig[i + 1]), 0)]
    pieces = []
    while stack:
        (sa, ea), (sb, eb), level = stack.pop()
        (ra, ca), (rb, cb) = _unstable(ea), _unstable(eb)
        events = abs(rb - ra) + abs(cb - ca) // 2
        if events == 0:
            continue
        Jx = None
        if events > 1 and level < depth:
            _, Jx = _along_jacobian(flow, br, i, 0.5 * (sa + sb), o.tol)
        if Jx is None:
            pieces.append(((sa, ea), (sb, eb)))
            continue
        em = flow.spectrum(Jx)
        sm = 0.5 * (sa + sb)
        stack += [((sm, em), (sb, eb), level + 1), ((sa, ea), (sm, em), level + 1)]
    return sorted(pieces, key=lambda p: p[0][0])


def _real_event(flow: _GainFlow, br: _Followed, i: int, y: np.ndarray, eig: complex,
                o: _Options) -> tuple:  # fmt: skip
    """A real crossing at y: a saddle-node where the curve turns back in g (the tangent's g
    component changes sign between points i and i + 1), else a branch point."""
    if br.t[i][-1] * br.t[i + 1][-1] < 0:
        return "saddle-node", y, eig, None
    starts = _switch_starts(flow, y, br.t[i], o)
    return _branch_point_kind(flow, starts, y[-1], o), y, eig, starts


def _is_real(e: np.ndarray) -> np.ndarray:
    return np.abs(e.imag) <= 1e-9 * (1 + np.abs(e))


def _unstable(e: np.ndarray) -> tuple[int, int]:
    """(real eigenvalues with Re > 0, complex ones with Re > 0 (both of each pair))."""
    real = _is_real(e)
    return int(np.sum(real & (e.real > 0))), int(np.sum(~real & (e.real > 0)))


def _crossing(ei: np.ndarray, ej: np.ndarray, grew: bool, k: int, real: bool) -> list:
    """The ``k`` real eigenvalues, or complex ones of the upper half plane, that crossed the
    imaginary axis between two points: at the second point, those nearest the axis on the
    side they went to; each matched to the nearest eigenvalue on the other side at the
    first point."""
    pick = (lambda e: e[_is_real(e)]) if real else (lambda e: e[~_is_real(e) & (e.imag > 0)])
    up_i, up_j = pick(ei), pick(ej)
    side = up_j[(up_j.real > 0) == grew]
    if side.size == 0 or up_i.size == 0:
        return []
    chosen = side[np.argsort(np.abs(side.real), kind="stable")[:k]]
    came = up_i[(up_i.real > 0) != grew]  # where they were: the other side of the axis
    came = came if came.size else up_i
    return [(came[np.argmin(np.abs(came - lam))], lam) for lam in chosen]


def _along(flow: _GainFlow, br: _Followed, i: int, s: float, tol: float) -> tuple:
    """The point of the branch at arclength offset s from point i (the corrector on the plane
    normal to the tangent at i, as the step that reached point i + 1) and its factorisation;
    (None, None) where the corrector fails."""
    t = br.t[i]
    y, ok, _, _, fac = _correct(flow, br.y[i] + s * t, t, tol, factor=br.factor_at(flow, i))
    return (y, fac) if ok else (None, None)


def _along_jacobian(flow: _GainFlow, br: _Followed, i: int, s: float, tol: float) -> tuple:
    """As :func:`_along`, with J_x at the point instead of a factorisation (no LU at the
    end): ``(y, J_x)`` or ``(None, None)``."""
    t = br.t[i]
    y, ok, *_ = _correct(flow, br.y[i] + s * t, t, tol, factor=br.factor_at(flow, i),
                         factorise=False)  # fmt: skip
    if not ok:
        return None, None
    return y, flow.linearise(y[:-1] * math.sqrt(flow.N), y[-1])[1]


def _illinois(phi, a: float, b: float, fa: float, fb: float, iters: int, tol: float,
              ftol: float = 0.0):  # fmt: skip
    """Regula falsi (Illinois) for phi(s) = 0 on [a, b] with phi(a) = fa, phi(b) = fb of
    opposite signs: s (stops at a bracket narrower than tol or at |phi| <= ftol)."""
    side = 0
    s = b
    for _ in range(iters):
        s = (a * fb - b * fa) / (fb - fa) if fb != fa else 0.5 * (a + b)
        if not (a < s < b):
            s = 0.5 * (a + b)
        fs = phi(s)
        if fs is None:
            s = 0.5 * (a + b)
            fs = phi(s)
            if fs is None:
                break
        if fs * fb > 0:
            b, fb = s, fs
            if side == -1:
                fa /= 2
            side = -1
        else:
            a, fa = s, fs
            if side == 1:
                fb /= 2
            side = 1
        if abs(b - a) <= tol or abs(fs) <= ftol:
            break
    return s


def _locate_real(flow: _GainFlow, br: _Followed, i: int, o: _Options, sa: float,
                 sb: float) -> tuple:  # fmt: skip
    """The point at offset s in [sa, sb] of the step from point i where a real eigenvalue of
    J_x crosses 0 (det J_x = 0), and that eigenvalue."""
    s_hi = float(br.t[i] @ (br.y[i + 1] - br.y[i]))
    ref = br.logdet[i]

    def phi(s):
        if s == 0.0:
            return br.det_sign[i]
        if s == s_hi:
            return br.det_sign[i + 1] * math.exp(max(min(br.logdet[i + 1] - ref, 700.0), -700.0))
        y, fac = _along(flow, br, i, s, o.tol)
        if y is None:
            return None
        return fac.det_sign * math.exp(max(min(fac.logdet - ref, 700.0), -700.0))

    f_lo, f_hi = phi(sa), phi(sb)
    if f_lo is None or f_hi is None or f_lo * f_hi > 0:  # no usable bracket: its middle
        f_lo, f_hi = 1.0, -1.0
    if o.locate:
        s = _illinois(phi, sa, sb, f_lo, f_hi, 60, 1e-12 * max(s_hi, 1e-300), 1e-12)
    else:
        s = sa + (sb - sa) * f_lo / (f_lo - f_hi)
    y, fac = _along(flow, br, i, s, o.tol)
    if y is None:
        y = br.y[i] + (s / s_hi) * (br.y[i + 1] - br.y[i])
        Jx = flow.linearise(y[:-1] * math.sqrt(flow.N), y[-1])[1]
    else:
        Jx = fac.Jx
    v = _null_vector(Jx)
    eig = float(v @ (Jx @ v)) if v is not None else float("nan")  # Rayleigh quotient, |v| = 1
    return y, complex(eig, 0.0)


def _null_vector(Jx: np.ndarray) -> np.ndarray | None:
    """Unit vector v with J_x v ~ 0 at a (located) real crossing: three steps of inverse
    iteration from a fixed random vector (one factorisation); None if the solves fail."""
    v = np.random.default_rng(0).standard_normal(Jx.shape[0])
    M = Jx + 1e-10 * (1 + np.abs(Jx).max()) * np.eye(Jx.shape[0])
    la = _scipy_linalg()
    try:
        if la is not None:
            lu = _lu_factor(la[0], M)
            solve = lambda b: la[0].lu_solve(lu, b, check_finite=False)  # noqa: E731
        else:
            solve = lambda b: np.linalg.solve(M, b)  # noqa: E731
        for _ in range(3):
            v = solve(v)
            v /= np.linalg.norm(v)
    except (np.linalg.LinAlgError, ValueError):
        return None
    return v if np.all(np.isfinite(v)) else None


def _locate_tracked(flow: _GainFlow, br: _Followed, i: int, a: tuple, b: tuple,
                    o: _Options) -> tuple:  # fmt: skip
    """The point of the step from point i, between offsets ``a = (s_a, lam_a)`` and
    ``b = (s_b, lam_b)`` (the eigenvalue of a complex pair there, upper half plane), where
    it crosses the imaginary axis, and the eigenvalue there: at each offset, the eigenvalue
    nearest its value interpolated from the offsets where it is already known."""
    (sa, lam_a), (sb, lam_b) = a, b
    known = {sa: complex(lam_a), sb: complex(lam_b)}
    track = [complex(lam_b)]
    spectrum = flow.spectrum
    basis = spectrum.vectors  # eigenvectors near the pair (None from the dense solver)

    def phi(s):
        nonlocal basis
        y, Jx = _along_jacobian(flow, br, i, s, o.tol)
        if y is None:
            return None
        predicted = _predict(known, s)
        lam = None
        if basis is not None:
            lam, v = spectrum.near(Jx, basis, predicted)
        if lam is None or lam.imag <= 0:
            e = spectrum(Jx)
            basis = spectrum.vectors
            e = e[~_is_real(e) & (e.imag > 0)]
            if e.size == 0:
                return None
            lam = complex(e[np.argmin(np.abs(e - predicted))])
        else:
            basis = np.concatenate([v[:, None], basis[:, : _ARNOLDI_MIN_K - 1]], axis=1)
        known[s] = lam
        track.append(lam)
        return float(lam.real) if abs(lam.real) > 1e-9 * (1 + abs(lam)) else 0.0

    if o.locate:
        s = _illinois(phi, sa, sb, float(lam_a.real), float(lam_b.real), 20,
                      1e-9 * max(sb - sa, 1e-300), 1e-10 * (1 + abs(lam_b)))  # fmt: skip
        lam = track[-1]
    else:
        w = lam_a.real / (lam_a.real - lam_b.real)
        s, lam = sa + w * (sb - sa), (1 - w) * lam_a + w * lam_b
    y, _ = _along(flow, br, i, s, o.tol)
    if y is None:
        s_hi = float(br.t[i] @ (br.y[i + 1] - br.y[i]))
        y = br.y[i] + (s / s_hi) * (br.y[i + 1] - br.y[i])
    return y, complex(lam)


def _predict(known: dict, s: float) -> complex:
    """The tracked eigenvalue at offset s: linear inter- or extrapolation from the two known
    offsets nearest to s (the one value when only one is known)."""
    if len(known) == 1:
        return next(iter(known.values()))
    keys = sorted(known)
    below = [k for k in keys if k <= s]
    above = [k for k in keys if k >= s]
    if below and above:
        a, b = below[-1], above[0]
    elif below:
        a, b = keys[-2], keys[-1]
    else:
        a, b = keys[0], keys[1]
    if a == b:
        return known[a]
    w = (s - a) / (b - a)
    return (1 - w) * known[a] + w * known[b]


def _switch_starts(flow: _GainFlow, y: np.ndarray, t: np.ndarray, o: _Options) -> list:
    """Starts (point, direction) of the curve that crosses the branch at the branch point y:
    y +- eps v, v the null vector of J_x there, orthogonal to the branch's tangent t."""
    _, Jx, _ = flow.linearise(y[:-1] * math.sqrt(flow.N), y[-1])
    v = _null_vector(Jx)
    if v is None:
        return []
    d = np.append(v, 0.0)
    d = d - (d @ t) * t
    norm = np.linalg.norm(d)
    if norm < 1e-8:
        return []
    d /= norm
    eps = 0.1 * o.ds_max
    return [(y + eps * d, d), (y - eps * d, -d)]


def _branch_point_kind(flow: _GainFlow, starts: list, gain: float, o: _Options) -> str:
    """The kind of a branch point: "pitchfork" when the crossing curve lies on one side of
    its gain (at +-eps along it), "transcritical" when it crosses that gain."""
    sides = []
    for start, d in starts:
        y, ok, *_ = _correct(flow, start, d, o.tol)
        if ok:
            sides.append(y[-1] - gain)
    return "transcritical" if len(sides) == 2 and sides[0] * sides[1] < 0 else "pitchfork"


def _chaos_onsets(r: GainSweep, threshold: float, target: str) -> list:
    """Where the largest exponent crosses 0 into chaos (label "chaos") along the path."""
    onsets = []
    e, labels, g = r.largest_exponent, r.labels, r.gains
    for i in range(len(g) - 1):
        if labels[i] != "chaos" and labels[i + 1] == "chaos" and np.isfinite(e[i]):
            w = 0.0 if e[i] >= 0 else (0 - e[i]) / (e[i + 1] - e[i])
            gain = float(g[i] + min(max(w, 0.0), 1.0) * (g[i + 1] - g[i]))
            onsets.append(Bifurcation("chaos", gain, None, complex(np.nan, np.nan), -1, target))
    return onsets
