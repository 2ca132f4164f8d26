"""`flexrnn reproduce analysis`: the dynamics-analysis tools on known answers and on a trained
network, written up in docs/analysis.md.

Three parts, each a call of the public API (``flexrnn.analysis``) with its wall-clock time:

1. ``lyapunov``: the largest Lyapunov exponent and the stationary ``<x²>`` of random tanh
   networks ``dx/dt = -x + g J tanh(x)`` (n = 1000, dt = 0.05 tau) at g = 0.5, 2 and 3,
   against the known answers of docs/dynamics_analysis.md, over three networks; and a linear
   network's spectrum against ``log|eig|``;
2. ``transition``: the transition to chaos of one random network (n = 500) as its gain
   sweeps 0.5..3 (``gain_sweep``: regime, largest exponent, variance, frequency);
3. ``trained``: a RateRNN trained by BPTT on PerceptualDecision; its fixed points at zero
   input (the two choice attractors and the saddle between them), and what a gain on its
   recurrent weights does to them, to its accuracy, and to its representation (SVCCA
   distance to the gain-1 states, participation ratio).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import flexrnn
from flexrnn import analysis, tasks
from flexrnn._io import atomic_savefig, atomic_write_json, atomic_write_text
from flexrnn.experiments._runs import Populations, sweep_sentence
from flexrnn.experiments.training import FIGURES, _cpu_name, _say
from flexrnn.train import bptt, stop_when_accuracy

PARTS = ("lyapunov", "transition", "trained")

# docs/dynamics_analysis.md: largest exponent per tau and <x²> of dx/dt = -x + g J tanh(x), large n
KNOWN = {
    0.5: {"exponent": (-0.5, -0.5), "x2": (0.0, 0.0)},
    2.0: {"exponent": (0.10, 0.10), "x2": (1.9, 2.0)},
    3.0: {"exponent": (0.21, 0.22), "x2": (5.4, 5.7)},
}


def known_answers_network(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One network of :func:`known_answers` (a flexrnn.sweep run): its gain sweep.

    config : {"n", "steps", "transient", "gains"}; seed : the network's seed."""
    net = flexrnn.RateRNN.random(config["n"], 1, 1, g=1.0, tau=1.0, dt=0.05, seed=seed)
    t0 = time.perf_counter()
    sweep = analysis.gain_sweep(
        net, config["gains"], steps=config["steps"], transient=config["transient"], seed=seed
    )
    return {
        "network_seed": seed,
        "exponent": sweep.largest_exponent.tolist(),
        "x2": sweep.mean_square.tolist(),  # <x²> over time and units
        "labels": sweep.labels.tolist(),
        "seconds": time.perf_counter() - t0,
    }


def known_answers(seed: int, quick: bool, say, pop: Populations) -> dict[str, Any]:
    """Largest exponent and <x²> at g = 0.5, 2, 3 for three random networks (n = 1000), the
    networks run by ``pop`` (flexrnn.sweep)."""
    n = 200 if quick else 1000
    steps, transient = (400, 200) if quick else (4000, 2000)
    gains = list(KNOWN)
    config = {"n": n, "steps": steps, "transient": transient, "gains": gains}
    found = pop.run(known_answers_network, [config], [seed + k for k in range(1 if quick else 3)])
    keys = ("network_seed", "exponent", "x2", "labels")
    rows = [{k: r[k] for k in keys} for r in found]
    for r in rows:
        say(f"  network {r['network_seed']}: exponents {np.round(r['exponent'], 4)}")
    seconds = sum(r["seconds"] for r in found)  # summed over the networks
    exps = np.array([r["exponent"] for r in rows])
    x2 = np.array([r["x2"] for r in rows])
    # a linear network: the spectrum is log|eig| of its map
    rng = np.random.default_rng(seed)
    m = 20
    W = rng.normal(0, 1.1 / np.sqrt(m), (m, m))
    lin = flexrnn.RateRNN(W, np.zeros((m, 1)), np.zeros((1, m)), phi="identity", tau=2.0, dt=1.0)
    lam = analysis.lyapunov_spectrum(lin, k=m, steps=4000, transient=200, per="step")
    J = (1 - lin.alpha) * np.eye(m) + lin.alpha * W
    exact = np.sort(np.log(np.abs(np.linalg.eigvals(J))))[::-1]
    return {
        "n": n,
        "dt_over_tau": 0.05,
        "steps": steps,
        "transient": transient,
        "gains": gains,
        "networks": rows,
        "exponent_mean": exps.mean(0).tolist(),
        "exponent_std": exps.std(0).tolist(),
        "x2_mean": x2.mean(0).tolist(),
        "seconds": round(seconds, 2),
        "linear": {
            "n": m,
            "max_abs_error_per_step": float(np.max(np.abs(lam - exact))),
            "exponents": lam.tolist(),
            "log_abs_eig": exact.tolist(),
        },
    }


def transition(seed: int, quick: bool, say) -> tuple[dict[str, Any], Any, Any]:
    """gain_sweep of one random network over 0.5..3 (26 gains), plus traces at three gains."""
    n = 200 if quick else 500
    gains = np.round(np.linspace(0.5, 3.0, 11 if quick else 26), 3)
    net = flexrnn.RateRNN.random(n, 1, 1, g=1.0, tau=1.0, dt=0.05, seed=seed)
    steps, transient = (500, 500) if quick else (4000, 20000)  # 200 tau after 1000 tau
    t0 = time.perf_counter()
    sweep = analysis.gain_sweep(net, gains, steps=steps, transient=transient, seed=seed)
    seconds = time.perf_counter() - t0
    say(f"  {len(gains)} gains in {seconds:.1f} s: {[str(s) for s in sweep.labels]}")
    trace_gains = np.array([0.8, 1.3, 2.5])
    x = net.run(np.zeros((1200, 3, 1)), gain=trace_gains[None, :],
                x0=np.random.default_rng(seed).standard_normal(n)).x  # fmt: skip
    changes = [
        {"from": str(a), "to": str(b), "between": [float(gains[i]), float(gains[i + 1])]}
        for i, (a, b) in enumerate(zip(sweep.labels[:-1], sweep.labels[1:]))
        if a != b
    ]
    summary = {
        "n": n,
        "steps": steps,
        "transient": transient,
        "gains": gains.tolist(),
        "labels": sweep.labels.tolist(),
        "largest_exponent": sweep.largest_exponent.tolist(),
        "variance": sweep.variance.tolist(),
        "frequency": [None if np.isnan(f) else float(f) for f in sweep.frequency],
        "changes": changes,
        "seconds": round(seconds, 2),
    }
    return summary, sweep, {"gains": trace_gains, "x": x[200:, :, :4], "alpha": net.alpha}


def trained_network(seed: int, quick: bool, say) -> tuple[dict[str, Any], dict[str, Any]]:
    """A RateRNN trained on PerceptualDecision, its fixed points, and the effect of gain."""
    task = tasks.PerceptualDecision(sigma=0.5)
    net = flexrnn.RateRNN.random(50, 1, 1, g=1.0, tau=10.0, dt=1.0, seed=seed, dtype="float64")
    t0 = time.perf_counter()
    hist = bptt(
        net, task, iters=40 if quick else 3000, batch_size=64, lr=3e-3, clip_norm=1.0,
        val_every=50, val_batch=256, stop=stop_when_accuracy(0.9, window=10),
        progress=False, seed=seed,
    )  # fmt: skip
    train_s = time.perf_counter() - t0
    trials = task.batch(400, np.random.default_rng(seed + 1), dtype=net.dtype)
    base = net.run(trials.u)
    accuracy = float(task.score(base.y, trials))
    say(f"  trained in {len(hist)} updates, {train_s:.1f} s; test accuracy {accuracy:.3f}")
    t0 = time.perf_counter()
    fp = analysis.fixed_points(net, np.zeros(1), n_init=256, states=base.x[::10], seed=seed)
    fp_s = time.perf_counter() - t0
    say(fp.summary())
    gains = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0]
    X1 = base.x[::5].reshape(-1, net.n)
    rows = []
    t0 = time.perf_counter()
    for g in gains:
        out = net.run(trials.u, gain=g)
        fpg = analysis.fixed_points(
            net, np.zeros(1), n_init=128, states=out.x[::10], seed=seed, gain=g
        )
        Xg = out.x[::5].reshape(-1, net.n)
        rows.append(
            {
                "gain": g,
                "accuracy": float(task.score(out.y, trials)),
                "stable_fixed_points": int((fpg.stable & fpg.fixed).sum()),
                "fixed_points": int(fpg.fixed.sum()),
                "largest_exponent": float(
                    analysis.lyapunov_spectrum(net, k=1, steps=2000, transient=1000, gain=g)[0]
                ),
                "svcca_distance_to_gain_1": float(analysis.svcca(X1, Xg).distance),
                "participation_ratio": float(analysis.participation_ratio(Xg)),
            }
        )
        say(f"  gain {g}: {rows[-1]}")
    sweep_s = time.perf_counter() - t0
    summary = {
        "network": repr(net),
        "updates": int(len(hist)),
        "train_seconds": round(train_s, 2),
        "test_accuracy": accuracy,
        "fixed_points": {
            "n_init": fp.n_init,
            "seconds": round(fp_s, 2),
            "points": [
                {
                    "kind": str(fp.kind[i]),
                    "stable": bool(fp.stable[i]),
                    "q": float(fp.q[i]),
                    "max_abs_eig": float(np.abs(fp.eigenvalues[i]).max()),
                    "count": int(fp.count[i]),
                    "readout": float((net.W_out @ np.tanh(fp.x[i]) + net.b_out)[0]),
                }
                for i in range(len(fp))
            ],
        },
        "gain": rows,
        "gain_seconds": round(sweep_s, 2),
    }
    return summary, {"fp": fp, "x": base.x[:, :40]}


def _figures(out: Path, results: dict[str, Any], extras: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (out / FIGURES).mkdir(parents=True, exist_ok=True)
    paths = {}
    if "transition" in extras:
        sweep, traces = extras["transition"]
        fig = plt.figure(figsize=(10, 6.5), constrained_layout=True)
        grid = fig.add_gridspec(3, 2, width_ratios=[1.2, 1])
        sweep.plot([fig.add_subplot(grid[i, 0]) for i in range(3)])
        t = np.arange(traces["x"].shape[0]) * traces["alpha"]
        for j, g in enumerate(traces["gains"]):
            ax = fig.add_subplot(grid[j, 1])
            ax.plot(t, traces["x"][:, j, :], lw=0.8)
            ax.set(ylabel="x (4 units)", title=f"gain {g:g}")
        ax.set_xlabel("time (tau)")
        path = f"{FIGURES}/analysis_transition.png"
        atomic_savefig(fig, out / path, dpi=110)
        plt.close(fig)
        paths["transition"] = path
    if "trained" in extras:
        e, rows = extras["trained"], results["trained"]["gain"]
        fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
        e["fp"].plot(trajectories=e["x"], ax=axes[0])
        axes[0].set_title("fixed points at zero input, in PCs of 40 trials")
        g = [r["gain"] for r in rows]
        axes[1].plot(g, [r["accuracy"] for r in rows], "o-", label="accuracy")
        axes[1].plot(g, [1 - r["svcca_distance_to_gain_1"] for r in rows], "s--",
                     label="SVCCA similarity to gain 1")  # fmt: skip
        axes[1].axvline(1, color="0.6", lw=0.8)
        axes[1].set(xlabel="gain on W", ylabel="accuracy; SVCCA similarity (1 - distance)",
                    ylim=(0, 1.05), title="function and representation")  # fmt: skip
        axes[1].legend(frameon=False, fontsize="small")
        axes[2].plot(g, [r["largest_exponent"] for r in rows], "o-", color="C3")
        axes[2].axhline(0, color="0.6", lw=0.8, ls="--")
        ax2 = axes[2].twinx()
        ax2.step(g, [r["stable_fixed_points"] for r in rows], where="mid", color="C0")
        ax2.set_ylabel("stable fixed points at zero input", color="C0")
        axes[2].set(xlabel="gain on W", title="dynamics")
        axes[2].set_ylabel("largest Lyapunov exponent (1/tau)", color="C3")
        path = f"{FIGURES}/analysis_trained.png"
        atomic_savefig(fig, out / path, dpi=110)
        plt.close(fig)
        paths["trained"] = path
    return paths


def _markdown(results: dict[str, Any], paths: dict[str, str], meta: dict[str, Any]) -> str:
    lines = [
        "# Dynamics analysis: known answers, the transition to chaos, a trained network",
        "",
        "Produced by `flexrnn reproduce analysis --out docs` (this file, its figures and "
        "`analysis.json`); rerun it to check. Every number comes from `flexrnn.analysis` "
        "(fixed points, Lyapunov spectra, regimes, SVCCA, participation ratio)."
        + (" **Quick run: a smoke test, not evidence.**" if meta["quick"] else ""),
        "",
        f"Machine: {meta['machine']}; flexrnn {meta['flexrnn']}, {meta['threads']} threads; "
        f"seed {meta['seed']}." + sweep_sentence(meta, "The Lyapunov networks"),
        "",
    ]
    if "lyapunov" in results:
        r = results["lyapunov"]
        lines += [
            "## Lyapunov exponents against the known answers",
            "",
            f"`dx/dt = -x + g J tanh(x)`, `J ~ N(0, 1/n)`, n = {r['n']}, dt = "
            f"{r['dt_over_tau']} tau, {len(r['networks'])} networks "
            f"(`RateRNN.random(n, g=1, tau=1, dt=0.05, seed=s)` run at gain g); the largest "
            f"exponent per tau from `lyapunov_spectrum` (QR method) over {r['steps']} steps "
            f"after {r['transient']}, and `<x²>` over the same steps. {r['seconds']:.1f} s "
            "summed over the networks.",
            "",
            "| g | largest exponent (mean ± std) | expected | `<x²>` | expected | regime |",
            "|---|---|---|---|---|---|",
        ]
        for i, g in enumerate(r["gains"]):
            exp_lo, exp_hi = KNOWN[g]["exponent"]
            x_lo, x_hi = KNOWN[g]["x2"]
            labels = sorted({net["labels"][i] for net in r["networks"]})
            lines.append(
                f"| {g:g} | {r['exponent_mean'][i]:.3f} ± {r['exponent_std'][i]:.3f} "
                f"| {exp_lo:g}"
                + ("" if exp_hi == exp_lo else f"-{exp_hi:g}")
                + f" | {r['x2_mean'][i]:.2f} | {x_lo:g}"
                + ("" if x_hi == x_lo else f"-{x_hi:g}")
                + f" | {', '.join(labels)} |"
            )
        lin = r["linear"]
        lines += [
            "",
            "Finite n lowers the exponents a little at g = 2 and 3 (the mean-field values hold "
            "as n grows; the network-to-network spread is the ± column).",
            "",
            f"A linear network (phi = identity, n = {lin['n']}): the full spectrum per step "
            "equals `log|eig|` of its map `(1 - alpha) I + alpha W` to "
            f"{lin['max_abs_error_per_step']:.1e} (4000 steps).",
            "",
        ]
    if "transition" in results:
        r = results["transition"]
        lines += [
            "## The transition to chaos of a random network",
            "",
            f"One `RateRNN.random(n={r['n']}, g=1, tau=1, dt=0.05)` at gains "
            f"{r['gains'][0]:g}..{r['gains'][-1]:g}: `gain_sweep` runs every gain in one "
            f"batched rollout ({r['steps']} steps after {r['transient']}) and one Lyapunov "
            "call, then labels each (fixed point: the state settles, or its variance dies out "
            "over the record; limit cycle: largest exponent ≈ 0 and a periodic "
            "autocorrelation; chaos: largest exponent > 0.02 per tau; marginal: neither). "
            f"{r['seconds']:.1f} s for the sweep.",
            "",
            "Changes of regime: "
            + (
                "; ".join(
                    f"{c['from']} → {c['to']} between g = {c['between'][0]:g} and "
                    f"{c['between'][1]:g}"
                    for c in r["changes"]
                )
                or "none"
            )
            + ".",
            "",
        ]
        close = [
            f"g = {g:g} ({lam:+.3f})"
            for g, lam in zip(r["gains"], r["largest_exponent"])
            if 0.5 * 0.02 < abs(lam) < 2 * 0.02
        ]
        if close:
            lines += [
                "Labels near a boundary depend on the transient and the record's length: "
                "these largest exponents are within a factor of two of the 0.02 threshold: "
                + ", ".join(close)
                + ".",
                "",
            ]
        lines += [
            f"![transition to chaos]({paths['transition']})",
            "",
            "| g | regime | largest exponent (1/tau) | variance of x | frequency (1/tau) |",
            "|---|---|---|---|---|",
        ]
        for i, g in enumerate(r["gains"]):
            f = r["frequency"][i]
            lines.append(
                f"| {g:g} | {r['labels'][i]} | {r['largest_exponent'][i]:.4f} "
                f"| {r['variance'][i]:.3g} | {'–' if f is None else format(f, '.3f')} |"
            )
        lines.append("")
    if "trained" in results:
        r = results["trained"]
        fpr = r["fixed_points"]
        lines += [
            "## A trained network: fixed points, and what gain does to them",
            "",
            f"`{r['network']}` trained by BPTT on PerceptualDecision (sigma 0.5) until the "
            f"minimum of the last 10 validation accuracies reached 0.9: {r['updates']} "
            f"updates, {r['train_seconds']:.1f} s; test accuracy {r['test_accuracy']:.3f} on "
            "400 trials.",
            "",
            f"`fixed_points(net, u_const=0, n_init={fpr['n_init']}, states=<test-trial "
            f"states>)` ({fpr['seconds']:.1f} s) finds:",
            "",
            "| # | kind | stable | q | max abs eigenvalue | readout y | initial states ending "
            "there |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, p in enumerate(fpr["points"]):
            lines.append(
                f"| {i} | {p['kind']} | {'yes' if p['stable'] else 'no'} | {p['q']:.1e} "
                f"| {p['max_abs_eig']:.4f} | {p['readout']:+.3f} | {p['count']} |"
            )
        lines += [
            "",
            "With the input off, the choice is held by stable fixed points whose readouts "
            "have opposite signs (the two answers), with an unstable point between them"
            + (
                "; slow points (small but non-zero q) are listed too."
                if any(p["kind"] == "slow" for p in fpr["points"])
                else " (no slow points were found)."
            ),
            "",
            "Gain on the recurrent weights (the control parameter of the neuromodulation "
            "discussion): the same network and test trials at each gain, with its accuracy, "
            "its fixed points at zero input (128 initial states), the largest Lyapunov "
            "exponent of its autonomous dynamics, and its representation against the gain-1 "
            "states (SVCCA distance: 0 same, 1 unrelated; participation ratio of the states) "
            f"— {r['gain_seconds']:.1f} s.",
            "",
            "| gain | accuracy | stable / all fixed points | largest exponent (1/tau) "
            "| SVCCA distance to gain 1 | participation ratio |",
            "|---|---|---|---|---|---|",
        ]
        for row in r["gain"]:
            lines.append(
                f"| {row['gain']:g} | {row['accuracy']:.3f} | {row['stable_fixed_points']} / "
                f"{row['fixed_points']} | {row['largest_exponent']:.3f} "
                f"| {row['svcca_distance_to_gain_1']:.3f} | {row['participation_ratio']:.2f} |"
            )
        lines += ["", f"![trained network]({paths['trained']})", ""]
    return "\n".join(lines)


def analysis_report(
    out: str | Path,
    seed: int = 0,
    only: list[str] | None = None,
    progress: bool = True,
    quick: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    runs: str | Path | None = None,
) -> dict[str, Any]:
    """Run the analysis evidence and write ``out/analysis.md``, ``out/analysis.json`` and the
    figures under ``out/figures``. ``quick`` shrinks every part (a smoke test). ``out`` is
    required (the committed report is made with ``out="docs"``).

    The Lyapunov part's networks are runs of :func:`flexrnn.sweep.run`: ``workers``
    processes of a local Dask cluster (default: one per core) or the cluster at
    ``scheduler``; ``runs``: keep them in this folder (under ``analysis/``) and resume."""
    out = Path(out)
    say = _say(progress)
    unknown = set(only or []) - set(PARTS)
    if unknown:
        raise ValueError(f"only: unknown parts {sorted(unknown)}; choose from {list(PARTS)}")
    run = set(only or PARTS)
    meta = {
        "machine": _cpu_name(),
        "flexrnn": flexrnn.__version__,
        "threads": flexrnn.get_num_threads(),
        "seed": seed,
        "quick": quick,
    }
    results: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    if "lyapunov" in run:
        say("[lyapunov] known answers")
        with Populations("analysis", workers, scheduler, runs, progress) as pop:
            meta.update(pop.describe())
            results["lyapunov"] = known_answers(seed, quick, say, pop)
    if "transition" in run:
        say("[transition] gain sweep of a random network")
        summary, sweep, traces = transition(seed, quick, say)
        results["transition"], extras["transition"] = summary, (sweep, traces)
    if "trained" in run:
        say("[trained] PerceptualDecision network: fixed points and gain")
        results["trained"], extras["trained"] = trained_network(seed, quick, say)
    out.mkdir(parents=True, exist_ok=True)
    paths = _figures(out, results, extras)
    atomic_write_text(out / "analysis.md", _markdown(results, paths, meta) + "\n")
    atomic_write_json(out / "analysis.json", {"meta": meta, "results": results})
    say(f"wrote {out / 'analysis.md'}")
    return {"meta": meta, "results": results}
