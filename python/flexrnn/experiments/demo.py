"""`flexrnn demo`: a gain sweep of a random rate network, end to end in one C++ call.

A gain on the recurrent weights moves a random tanh network from a stable fixed
point (gain < 1) into chaos (gain > 1). Every gain is one trial of one batch
(``gain`` is per trial), so the whole sweep is a single rollout. The demo checks
the stationary variance against mean-field values (docs/dynamics_analysis.md) and the
first steps against the NumPy reference; with ``baseline=True`` (``flexrnn demo
--baseline``) it also times the NumPy reference on the whole sweep (several times longer
than the rest of the demo).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import flexrnn
from flexrnn import reference
from flexrnn._io import atomic_savefig

# Stationary <x^2> of dx/dt = -x + g J tanh(x) for large n (docs/dynamics_analysis.md).
MEAN_FIELD_VARIANCE = {2.0: (1.9, 2.0), 3.0: (5.4, 5.7)}


def demo(
    out: str | Path = "flexrnn_demo.png",
    n: int = 400,
    steps: int = 3000,
    seed: int = 0,
    show_progress: bool = True,
    baseline: bool = False,
) -> dict[str, Any]:
    """Sweep the recurrent gain of a random network; write a figure; return a summary.

    out: path of the PNG written. n: network size. steps: time steps (dt/tau = 0.1).
    baseline: also run the whole sweep in the NumPy reference and time both (the summary's
    ``time_reference_s`` and ``speedup`` are None without it).
    """
    say = print if show_progress else (lambda *a, **k: None)
    gains = np.round(np.arange(0.25, 3.01, 0.25), 2)
    gains = np.union1d(gains, list(MEAN_FIELD_VARIANCE))
    B = len(gains)
    net = flexrnn.RateRNN.random(n=n, n_in=1, n_out=1, g=1.0, tau=10.0, dt=1.0, seed=seed)
    rng = np.random.default_rng(seed)
    u = np.zeros((steps, B, 1))
    x0 = rng.standard_normal((B, n))
    say(
        f"flexrnn {flexrnn.__version__}: {net}, {B} gains x {steps} steps, "
        f"{flexrnn.get_num_threads()} threads"
    )

    t0 = time.perf_counter()
    run = net.run(u, x0=x0, gain=gains[None, :])
    t_core = time.perf_counter() - t0
    # chaos amplifies rounding differences exponentially, so compare before it does
    checked = min(50, steps)
    t0 = time.perf_counter()
    ref = reference.rate_rnn(
        u if baseline else u[:checked], net.W, net.W_in, net.b, net.W_out, net.b_out, x0,
        alpha=net.alpha, gain=gains[None, :],
    )  # fmt: skip
    t_ref = time.perf_counter() - t0 if baseline else None
    max_diff = float(np.abs(run.x[:checked] - ref["x"][:checked]).max())

    settled = run.x[steps // 2 :]  # discard the transient
    variance = (settled**2).mean(axis=(0, 2))
    summary: dict[str, Any] = {
        "gains": gains.tolist(),
        "variance": variance.tolist(),
        "time_core_s": t_core,
        "time_reference_s": t_ref,
        "speedup": None if t_ref is None else t_ref / t_core,
        "max_abs_diff_vs_reference": max_diff,
        "figure": str(out),
    }
    say(" gain   <x^2>   mean-field")
    for g, v in zip(gains, variance):
        lo_hi = MEAN_FIELD_VARIANCE.get(float(g))
        mf = f"{lo_hi[0]:.1f}-{lo_hi[1]:.1f}" if lo_hi else ("0" if g < 1 else "")
        say(f" {g:4.2f}  {v:7.4f}   {mf}")
    timing = f"C++ core {t_core * 1e3:.1f} ms"
    if t_ref is not None:
        timing += f", NumPy reference {t_ref * 1e3:.1f} ms ({summary['speedup']:.0f}x)"
    else:
        timing += " (flexrnn demo --baseline times the NumPy reference too)"
    say(f"{timing}; max |x_core - x_ref| over {checked} steps = {max_diff:.1e}")

    _figure(out, run.x, gains, variance, t_core, t_ref)
    say(f"figure written to {out}")
    return summary


def _figure(out, x, gains, variance, t_core, t_ref):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = [2, 1.3, 0.8] if t_ref is not None else [2, 1.3]
    fig, axes = plt.subplots(
        1, len(ratios), figsize=(sum(ratios) * 13 / 4.1, 3.6), gridspec_kw={"width_ratios": ratios}
    )
    ax = axes[0]
    shown = [g for g in (0.5, 1.5, 3.0) if g in gains]
    t = np.arange(x.shape[0]) * 0.1  # in units of tau
    for k, g in enumerate(shown):
        b = int(np.flatnonzero(gains == g)[0])
        ax.plot(t, x[:, b, :3] + 4 * k, lw=0.8)
        ax.text(t[-1], 4 * k + 1.5, f"gain {g}", ha="right")
    ax.set_xlabel("time (tau)")
    ax.set_ylabel("x of three units (offset)")
    ax.set_title("fixed point to chaos")
    ax = axes[1]
    ax.plot(gains, variance, "o-", label=f"flexrnn, n = {x.shape[2]}")
    for g, (lo, hi) in MEAN_FIELD_VARIANCE.items():
        ax.errorbar(
            g,
            (lo + hi) / 2,
            yerr=(hi - lo) / 2,
            fmt="s",
            color="k",
            capsize=3,
            label="mean-field" if g == 2.0 else None,
        )
    ax.axvline(1.0, color="gray", ls=":")
    ax.set_xlabel("recurrent gain")
    ax.set_ylabel("stationary <x^2>")
    ax.legend(frameon=False)
    ax.set_title(f"whole sweep: {t_core * 1e3:.0f} ms in the C++ core")
    if t_ref is not None:
        ax = axes[2]
        ax.bar(["C++ core", "NumPy ref."], [t_core * 1e3, t_ref * 1e3], color=["C0", "C7"])
        ax.set_ylabel("ms for the whole sweep")
        ax.set_title(f"{t_ref / t_core:.0f}x")
    fig.tight_layout()
    atomic_savefig(fig, out, dpi=120)
    plt.close(fig)
