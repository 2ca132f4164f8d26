"""Dynamical regimes of a rate network under its recurrent gain (docs/dynamics_analysis.md).

:func:`gain_sweep` runs the autonomous network (constant input, zero by default) at every
gain in one batched rollout (one trial per gain) and one batched Lyapunov call, and
measures after a transient:

- ``largest_exponent``: the largest Lyapunov exponent per unit of tau (QR method, C++),
  started from the state the rollout reached;
- ``variance``: the temporal variance of the state, averaged over units;
- ``mean_square``: ``<x²>`` over time and units (the spec's stationary ``<x²>``);
- ``frequency``: the dominant frequency (cycles per unit of tau) of the activity's first
  principal component: the peak of its Hann-windowed spectrum, refined by a parabola
  through the log power of the peak bin and its neighbours (NaN at a fixed point);
- ``autocorrelation_peak``: the highest autocorrelation of that component (normalised to 1
  at lag 0; the biased estimate, which damps the noisy long lags) at lags beyond its first
  zero crossing, up to half the record: ``1 - period / record`` for a periodic orbit, small
  for chaos; 0 when the autocorrelation never crosses zero.

The label follows these rules, in order (thresholds are arguments):

1. ``"divergent"``: the state became non-finite;
2. ``"chaos"``: largest exponent > ``chaos_threshold`` (default 0.02 per tau: above the
   error of the exponent of a limit cycle averaged over the default 100 tau, ~1e-3);
3. ``"fixed point"``: variance <= ``variance_threshold`` (default 1e-8), or largest
   exponent < -``chaos_threshold`` (still converging: a limit cycle has exponent 0), or
   the activity is dying out: ``variance_ratio`` (the variance of the second half of the
   record over that of the first half) < ``decay_threshold`` (default 0.5; a sustained
   oscillation keeps it near 1, a focus spiralling in at rate -mu per tau over a record
   of length L tau gives about ``exp(-mu L)``);
4. ``"limit cycle"``: autocorrelation peak >= ``periodic_threshold`` (default 0.5);
5. ``"marginal"``: exponent near 0 and activity without periodicity (slow convergence at a
   bifurcation, a quasi-periodic orbit, drift along a continuum).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flexrnn import _validate as check

from .fixed_points import _u_const
from .lyapunov import initial_states, lyapunov_spectrum

__all__ = ["GainSweep", "Regime", "gain_sweep", "regime"]

LABELS = ("fixed point", "limit cycle", "chaos", "marginal", "divergent")
_COLOURS = {
    "fixed point": "C0",
    "limit cycle": "C2",
    "chaos": "C3",
    "marginal": "C1",
    "divergent": "k",
}


@dataclass
class Regime:
    """The autonomous dynamics at one gain (module docstring for the measures and rules)."""

    gain: float
    label: str
    largest_exponent: float
    variance: float
    mean_square: float
    frequency: float
    autocorrelation_peak: float
    variance_ratio: float


@dataclass
class GainSweep:
    """Regimes over gains: arrays of shape (G,) in the order of ``gains``.

    Attributes
    ----------
    gains, largest_exponent, variance, mean_square, frequency, autocorrelation_peak,
    variance_ratio : (G,) ndarray
    labels : (G,) str ndarray
        One of ``"fixed point"``, ``"limit cycle"``, ``"chaos"``, ``"marginal"``,
        ``"divergent"``.
    thresholds : dict
        chaos_threshold, variance_threshold, periodic_threshold, decay_threshold used.
    """

    gains: np.ndarray
    largest_exponent: np.ndarray
    variance: np.ndarray
    mean_square: np.ndarray
    frequency: np.ndarray
    autocorrelation_peak: np.ndarray
    variance_ratio: np.ndarray
    labels: np.ndarray
    thresholds: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.gains.shape[0])

    def __getitem__(self, i: int) -> Regime:
        return Regime(
            gain=float(self.gains[i]),
            label=str(self.labels[i]),
            largest_exponent=float(self.largest_exponent[i]),
            variance=float(self.variance[i]),
            mean_square=float(self.mean_square[i]),
            frequency=float(self.frequency[i]),
            autocorrelation_peak=float(self.autocorrelation_peak[i]),
            variance_ratio=float(self.variance_ratio[i]),
        )

    def plot(self, axes: Any = None) -> Any:
        """The transition: largest exponent, variance and frequency against gain, points
        coloured by regime (three stacked Axes, or ``axes`` given). Returns the figure."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(3, 1, figsize=(5, 6.5), sharex=True, constrained_layout=True)
        else:
            fig = axes[0].figure
        ax_l, ax_v, ax_f = axes
        colours = [_COLOURS[label] for label in self.labels]
        for ax, values in ((ax_l, self.largest_exponent), (ax_v, self.variance),
                           (ax_f, self.frequency)):  # fmt: skip
            ax.plot(self.gains, values, color="0.7", lw=1, zorder=1)
            ax.scatter(self.gains, values, c=colours, s=18, zorder=2)
        ax_l.axhline(0, color="0.4", lw=0.8, ls="--")
        ax_l.set(ylabel="largest exponent (1/tau)")
        ax_v.set(ylabel="variance of x")
        ax_f.set(ylabel="frequency (1/tau)", xlabel="gain")
        for label in LABELS:
            if np.any(self.labels == label):
                ax_l.scatter([], [], color=_COLOURS[label], s=18, label=label)
        ax_l.legend(frameon=False, fontsize="small")
        return fig


def regime(net: Any, gain: float = 1.0, **options: Any) -> Regime:
    """The regime of ``net``'s autonomous dynamics at ``gain``: :func:`gain_sweep` at one
    gain (same options)."""
    return gain_sweep(net, [check.scalar("gain", gain)], **options)[0]


def gain_sweep(
    net: Any,
    gains: Any,
    *,
    u_const: Any = None,
    x0: Any = None,
    neuron_gain: Any = None,
    pre_gain: Any = None,
    post_gain: Any = None,
    steps: int | None = None,
    transient: int | None = None,
    lyapunov_steps: int | None = None,
    seed: int = 0,
    chaos_threshold: float = 0.02,
    variance_threshold: float = 1e-8,
    periodic_threshold: float = 0.5,
    decay_threshold: float = 0.5,
) -> GainSweep:
    """Regimes of ``net``'s autonomous dynamics over ``gains`` (module docstring).

    Parameters
    ----------
    net : RateRNN or LowRankRNN.
    gains : (G,) recurrent gains.
    u_const : None (zeros) or (n_in,) constant input.
    x0 : None (``N(0, 1)`` drawn from ``seed``, the same for every gain), (n,) or (G, n).
    neuron_gain : None or (n,).
    pre_gain, post_gain : None or (n,): the sweep of ``gains`` on the network whose
        recurrent matrix is ``diag(post_gain) W diag(pre_gain)`` (see ``RateRNN.run``).
    steps : steps recorded after the transient (default 100 tau: ``ceil(100 / alpha)``).
    transient : steps discarded first (default 100 tau).
    lyapunov_steps : steps averaged for the exponent (default ``steps``), after a further
        transient of ``lyapunov_steps // 4`` for the tangent vector to align.
    seed : seeds x0 and the Lyapunov tangent vectors.
    chaos_threshold, variance_threshold, periodic_threshold, decay_threshold :
        classification thresholds.

    Returns
    -------
    GainSweep; ``sweep[i]`` is the :class:`Regime` at ``gains[i]``.
    """
    if not getattr(net, "takes_gain", False):  # a rate network (RateRNN, LowRankRNN)
        raise TypeError(f"net: expected a RateRNN or LowRankRNN, got {type(net).__name__}")
    p = net._check_shapes()
    dtype = net.dtype
    n, n_in = p["x0"].shape[0], p["W_in"].shape[1]
    g = check.real_array("gains", gains)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"gains: expected shape (G,) with G >= 1, got {g.shape}")
    g = check.array("gains", g, np.dtype(np.float64))
    G = g.shape[0]
    alpha = net.alpha
    default = int(np.ceil(100.0 / alpha))
    steps = default if steps is None else check.integer("steps", steps, minimum=4)
    transient = default if transient is None else check.integer("transient", transient, minimum=0)
    lyapunov_steps = (
        steps if lyapunov_steps is None else check.integer("lyapunov_steps", lyapunov_steps,
                                                           minimum=1)
    )  # fmt: skip
    seed = check.seed("seed", seed)
    thresholds = {
        "chaos_threshold": check.scalar("chaos_threshold", chaos_threshold, nonneg=True),
        "variance_threshold": check.scalar("variance_threshold", variance_threshold, nonneg=True),
        "periodic_threshold": check.scalar("periodic_threshold", periodic_threshold),
        "decay_threshold": check.scalar("decay_threshold", decay_threshold, nonneg=True),
    }
    u = _u_const(u_const, n_in, dtype)
    x0 = initial_states(x0, seed, n, G, dtype)

    # one rollout: trial b at gains[b]
    T = transient + steps
    site_gains = {"pre_gain": pre_gain, "post_gain": post_gain}
    out = net.run(np.broadcast_to(u, (T, G, n_in)), x0=x0, gain=g[None, :],
                  neuron_gain=neuron_gain, **site_gains)  # fmt: skip
    x = out.x[transient:].astype(np.float64)  # (steps, G, n)
    finite = np.isfinite(x).all(axis=(0, 2))
    x = np.where(finite[None, :, None], x, 0)  # a diverged trial's statistics are NaN below
    variance = np.where(finite, np.var(x, axis=0).mean(1), np.nan)
    mean_square = np.where(finite, np.mean(x**2, axis=(0, 2)), np.nan)
    start = np.where(finite[:, None], out.x[-1], 0).astype(dtype)
    exponent = lyapunov_spectrum(net, k=1, steps=lyapunov_steps, transient=lyapunov_steps // 4,
                                 gain=g, u_const=u, x0=start, neuron_gain=neuron_gain,
                                 seed=seed, **site_gains)[:, 0].astype(np.float64)  # fmt: skip
    exponent[~finite] = np.nan
    frequency = np.full(G, np.nan)
    peak = np.full(G, np.nan)
    ratio = np.full(G, np.nan)
    labels = np.empty(G, dtype="<U11")
    for b in range(G):
        if not finite[b]:
            labels[b] = "divergent"
            continue
        pc1 = _first_component(x[:, b])
        peak[b] = _autocorrelation_peak(pc1)
        frequency[b] = _dominant_frequency(pc1, alpha)
        ratio[b] = _variance_ratio(x[:, b])
        labels[b] = _label(exponent[b], variance[b], peak[b], ratio[b], thresholds)
        if labels[b] == "fixed point":
            frequency[b] = np.nan
    return GainSweep(
        gains=g,
        largest_exponent=exponent,
        variance=variance,
        mean_square=mean_square,
        frequency=frequency,
        autocorrelation_peak=peak,
        variance_ratio=ratio,
        labels=labels,
        thresholds=thresholds,
    )


def _label(exponent: float, variance: float, peak: float, ratio: float, t: dict) -> str:
    if exponent > t["chaos_threshold"]:
        return "chaos"
    if (
        variance <= t["variance_threshold"]
        or exponent < -t["chaos_threshold"]
        or ratio < t["decay_threshold"]
    ):
        return "fixed point"
    if peak >= t["periodic_threshold"]:
        return "limit cycle"
    return "marginal"


def _variance_ratio(x: np.ndarray) -> float:
    """Variance (summed over units) of the second half of the record x (T, n) over that of
    the first half; 1 when both are zero."""
    half = x.shape[0] // 2
    first, second = np.var(x[:half], axis=0).sum(), np.var(x[half:], axis=0).sum()
    if first == 0:
        return 1.0 if second == 0 else float("inf")
    return float(second / first)


def _first_component(x: np.ndarray) -> np.ndarray:
    """Projection of the centred states x (T, n) on their first principal direction."""
    xc = x - x.mean(axis=0)
    cov = xc.T @ xc
    w, v = np.linalg.eigh(cov)
    return xc @ v[:, -1]


def _autocorrelation_peak(s: np.ndarray) -> float:
    """Highest normalised (biased) autocorrelation of s beyond its first zero crossing
    (lags up to len(s) / 2); 0 if it never crosses zero."""
    T = len(s)
    if not np.any(s):
        return 0.0
    spectrum = np.fft.rfft(s - s.mean(), 2 * T)
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[: T // 2]  # biased: long lags damped
    if acf[0] <= 0:
        return 0.0
    acf = acf / acf[0]
    negative = np.flatnonzero(acf < 0)
    if negative.size == 0:
        return 0.0
    return float(acf[negative[0] :].max())


def _dominant_frequency(s: np.ndarray, alpha: float) -> float:
    """Peak frequency of s (cycles per tau; samples alpha tau apart), Hann window, parabolic
    refinement on the log power; NaN for a constant signal."""
    T = len(s)
    power = np.abs(np.fft.rfft((s - s.mean()) * np.hanning(T))) ** 2
    if power.size < 3 or not np.any(power[1:]):
        return float("nan")
    k = 1 + int(np.argmax(power[1:]))
    shift = 0.0
    if 1 <= k < power.size - 1 and np.all(power[k - 1 : k + 2] > 0):
        a, b, c = np.log(power[k - 1 : k + 2])
        denominator = a - 2 * b + c
        shift = 0.5 * (a - c) / denominator if denominator < 0 else 0.0
    return float((k + shift) / (T * alpha))
