"""`flexrnn reproduce training`: BPTT on the built-in tasks, written up in docs/training.md.

Four runs, each a call of the public API (``flexrnn.train.bptt``) with its wall-clock time:

1. a RateRNN (n=50) on PerceptualDecision (sigma 0.5), trained until the minimum of the last
   10 validation accuracies reaches 0.9, then scored on 2000 fresh trials;
2. the same on ContextIntegration(2), until 0.85;
3. an NM-RNN (n=100, rank 3, n_mod 5) on MeasureWaitGo's 40 training trials, to a training
   MSE at or below 0.003 (the per-step-mean predictor scores 0.0095);
4. a RateRNN on NeuroGym's PerceptualDecisionMaking-v0 (when neurogym is installed),
   against chance.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import flexrnn
from flexrnn import tasks
from flexrnn._io import atomic_savefig, atomic_write_json, atomic_write_text
from flexrnn.train import bptt, loss_and_grad, stop_when_accuracy

FIGURES = "figures"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical cores)"
    except OSError:
        pass
    return f"{platform.machine()} ({os.cpu_count()} logical cores)"


def _say(progress: bool) -> Callable[..., None]:
    return print if progress else (lambda *a, **k: None)


def _test_accuracy(net, task, trials_count: int, seed: int) -> tuple[float, Any, Any]:
    trials = task.batch(trials_count, np.random.default_rng(seed), dtype=net.dtype)
    y = net.outputs(trials.u)
    return float(task.score(y, trials)), trials, y


def _history_summary(hist, seconds: float) -> dict[str, Any]:
    acc = hist.val_accuracy
    return {
        "iterations": int(len(hist)),
        "seconds": round(seconds, 2),
        "ms_per_iteration": round(1e3 * seconds / max(len(hist), 1), 2),
        "stopped": hist.stopped,
        "final_val_accuracy": float(acc[-1]) if acc.size else None,
        "min_last10_val_accuracy": float(acc[-10:].min()) if acc.size else None,
        "final_loss": float(hist.loss[-1]),
    }


def decision_task(
    task, threshold: float, seed: int, max_iters: int, progress: bool
) -> tuple[dict[str, Any], Any, Any]:
    """A RateRNN (n=50, dt/tau = 0.1, float32) trained by BPTT until the minimum of the last
    10 validation accuracies (256 trials each, every 50 updates) reaches ``threshold``."""
    net = flexrnn.RateRNN.random(
        n=50, n_in=task.n_in, n_out=1, g=1.0, tau=10.0, dt=1.0, seed=seed, dtype="float32"
    )
    t0 = time.perf_counter()
    hist = bptt(
        net, task, iters=max_iters, batch_size=64, lr=3e-3, clip_norm=1.0, val_every=50,
        val_batch=256, stop=stop_when_accuracy(threshold, window=10), progress=progress,
        seed=seed,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    test_acc, trials, y = _test_accuracy(net, task, 2000, seed + 10_000)
    summary = {
        "task": task.name,
        "network": repr(net),
        "threshold": threshold,
        **_history_summary(hist, seconds),
        "test_accuracy": test_acc,
        "test_trials": 2000,
    }
    # accuracy by coherence (psychometric curve)
    coh = trials.info["coherence"]
    correct = task.per_trial_correct(y, trials)
    edges = np.linspace(0, coh.max(), 7)
    which = np.clip(np.digitize(coh, edges) - 1, 0, len(edges) - 2)
    summary["accuracy_by_coherence"] = [
        {"coherence": float(edges[i:i + 2].mean()), "accuracy": float(correct[which == i].mean())}
        for i in range(len(edges) - 1)
        if np.any(which == i)
    ]  # fmt: skip
    return summary, hist, (trials, y)


def measure_wait_go(seed: int, iters: int, progress: bool) -> tuple[dict[str, Any], Any, Any]:
    """NM-RNN (n=100, rank 3, n_mod 5, tau_x 10, tau_z 100, x0 = z0 = 0.1) trained on the 40
    MeasureWaitGo training trials (full batch), Adam lr 3e-3 with a cosine decay. The three
    pulses summed on one input channel (``channels=1``), as this report was first run; the
    study's three-channel inputs are reproduced by ``flexrnn reproduce nmrnn``."""
    task = tasks.MeasureWaitGo(channels=1)
    train = task.training_set()
    net = flexrnn.NMRNN.random(
        n=100, rank=3, n_mod=5, n_in=task.n_in, n_out=1, tau_x=10.0, tau_z=100.0, seed=seed
    )
    fixed = tasks.FixedTrials(task, train)
    t0 = time.perf_counter()
    hist = bptt(
        net, fixed, iters=iters, batch_size=len(train.info["interval"]), lr=3e-3,
        schedule=flexrnn.train.Cosine(iters), clip_norm=1.0, val_every=None, progress=progress,
        seed=seed,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    train_mse, _, y_train = loss_and_grad(net, train, return_output=True)
    test = task.test_set()
    test_mse, _, y_test = loss_and_grad(net, test, return_output=True)
    target = train.target[..., 0]
    summary = {
        "task": "MeasureWaitGo",
        "network": repr(net),
        **_history_summary(hist, seconds),
        "train_mse": float(train_mse),
        "constant_predictor_mse": float(np.mean((target - target.mean()) ** 2)),
        "per_step_mean_mse": float(np.mean((target - target.mean(axis=1, keepdims=True)) ** 2)),
        "train_accuracy": float(task.score(y_train, train)),
        "test_mse": float(test_mse),
        "test_accuracy": float(task.score(y_test, test)),
        "test_intervals": [int(i) for i in np.unique(test.info["interval"])],
    }
    return summary, hist, (train, y_train, test, y_test)


def neurogym_decision(seed: int, iters: int, progress: bool) -> tuple[dict[str, Any], Any, Any]:
    """A RateRNN (n=64, tau = 100 ms at the environment's dt) on NeuroGym's
    PerceptualDecisionMaking-v0, cross-entropy on the action labels."""
    task = tasks.from_neurogym("PerceptualDecisionMaking-v0")
    dt_ms = float(task.dt)
    net = flexrnn.RateRNN.random(
        n=64, n_in=task.n_in, n_out=task.n_out, g=1.0, tau=100.0, dt=dt_ms, seed=seed,
        dtype="float32",
    )  # fmt: skip
    t0 = time.perf_counter()
    hist = bptt(
        net, task, iters=iters, batch_size=64, lr=3e-3, clip_norm=1.0, val_every=50,
        val_batch=256, progress=progress, seed=seed,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    test_acc, trials, y = _test_accuracy(net, task, 2000, seed + 10_000)
    summary = {
        "task": "NeuroGym PerceptualDecisionMaking-v0",
        "network": repr(net),
        "dt_ms": dt_ms,
        "loss": task.loss,
        **_history_summary(hist, seconds),
        "test_accuracy": test_acc,
        "test_trials": 2000,
        "chance": 0.5,
    }
    return summary, hist, (trials, y)


def _figures(out: Path, results: dict[str, Any], extras: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir = out / FIGURES
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = {}

    decision = [
        k for k in ("perceptual_decision", "context_integration", "neurogym") if k in extras
    ]
    fig, axes = plt.subplots(2, len(decision), figsize=(4.2 * len(decision), 6.4), squeeze=False)
    for col, key in enumerate(decision):
        hist = extras[key]["history"]
        ax = axes[0, col]
        ax.plot(hist.val_iteration, hist.val_accuracy, ".-", label="validation accuracy")
        if "threshold" in results[key]:
            ax.axhline(results[key]["threshold"], color="k", ls=":", lw=1, label="target")
        if "chance" in results[key]:
            ax.axhline(results[key]["chance"], color="gray", ls="--", lw=1, label="chance")
        ax.set_title(results[key]["task"], fontsize=10)
        ax.set_xlabel("update")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8, loc="lower right")
        ax = axes[1, col]
        if "accuracy_by_coherence" in results[key]:
            rows = results[key]["accuracy_by_coherence"]
            ax.plot([r["coherence"] for r in rows], [r["accuracy"] for r in rows], "o-")
            ax.set_xlabel("coherence")
            ax.set_ylabel("test accuracy")
            ax.set_ylim(0.4, 1.02)
        else:
            ax.semilogy(hist.loss, lw=0.6)
            ax.set_xlabel("update")
            ax.set_ylabel("training loss")
    fig.tight_layout()
    paths["decision"] = f"{FIGURES}/training_decision.png"
    atomic_savefig(fig, out / paths["decision"], dpi=110)
    plt.close(fig)

    if "measure_wait_go" in extras:
        train, y_train, test, y_test = extras["measure_wait_go"]["outputs"]
        hist = extras["measure_wait_go"]["history"]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].semilogy(hist.loss, lw=0.6)
        axes[0].axhline(0.003, color="k", ls=":", lw=1, label="0.003")
        axes[0].axhline(0.0095, color="gray", ls="--", lw=1, label="per-step mean 0.0095")
        axes[0].set_xlabel("update")
        axes[0].set_ylabel("training MSE")
        axes[0].legend(fontsize=8)
        for ax, trials, y, title in (
            (axes[1], train, y_train, "training intervals (t_m = 15)"),
            (axes[2], test, y_test, "test intervals (extrapolation)"),
        ):
            pick = np.flatnonzero(trials.info["t_m"] == 15)
            colors = plt.cm.viridis(np.linspace(0, 1, len(pick)))
            for c, b in zip(colors, pick):
                ax.plot(trials.target[:, b, 0], color=c, ls=":", lw=1)
                ax.plot(y[:, b, 0], color=c, lw=1.2)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("step")
        axes[1].set_ylabel("output (solid) / target (dotted)")
        fig.tight_layout()
        paths["measure_wait_go"] = f"{FIGURES}/training_measure_wait_go.png"
        atomic_savefig(fig, out / paths["measure_wait_go"], dpi=110)
        plt.close(fig)
    return paths


def _markdown(results: dict[str, Any], paths: dict[str, str], meta: dict[str, Any]) -> str:
    lines = [
        "# Training by BPTT: evidence",
        "",
        "Produced by `flexrnn reproduce training --out docs` (this file, its figures and "
        "`training.json`); rerun it to check. Every run is a call of `flexrnn.train.bptt`: "
        "batches from the task, loss and gradient in one C++ call, Adam with global-norm "
        "clipping at 1. Times are wall-clock on the machine below, validation included.",
        "",
        f"Machine: {meta['machine']}; flexrnn {meta['flexrnn']}, {meta['threads']} threads; "
        f"seed {meta['seed']}.",
        "",
        "| run | network | goal | reached | updates | time | per update |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(key, goal, reached):
        r = results[key]
        lines.append(
            f"| {r['task']} | `{r['network']}` | {goal} | {reached} | {r['iterations']} | "
            f"{r['seconds']:.1f} s | {r['ms_per_iteration']:.1f} ms |"
        )

    for key in ("perceptual_decision", "context_integration"):
        if key in results:
            r = results[key]
            ok = "yes" if r["test_accuracy"] >= r["threshold"] else "**no**"
            row(
                key,
                f"val. accuracy >= {r['threshold']:.2f}",
                f"{ok}: test accuracy {r['test_accuracy']:.3f} on {r['test_trials']} fresh "
                f"trials (min of last 10 val. {r['min_last10_val_accuracy']:.3f})",
            )
    if "measure_wait_go" in results:
        r = results["measure_wait_go"]
        ok = "yes" if r["train_mse"] <= 0.003 else "**no**"
        row("measure_wait_go", "training MSE <= 0.003", f"{ok}: {r['train_mse']:.5f}")
    if "neurogym" in results:
        r = results["neurogym"]
        ok = "yes" if r["test_accuracy"] > 0.75 else "**no**"
        row(
            "neurogym",
            "clearly above chance (0.5)",
            f"{ok}: test accuracy {r['test_accuracy']:.3f} on {r['test_trials']} trials",
        )
    lines += [""]
    if "decision" in paths:
        lines += [
            "## Decision tasks",
            "",
            "RateRNN, n = 50, current form, tanh, dt/tau = 0.1 (tau = 10 steps), float32, "
            "`W ~ N(0, 1/n)`; batches of 64; validation on 256 fresh trials every 50 updates; "
            "training stops when the minimum of the last 10 validation accuracies reaches the "
            "goal. Test accuracy is then measured on 2000 new trials. PerceptualDecision and "
            "ContextIntegration use 750 steps with input noise sigma 0.5 and coherences "
            "uniform in [0, 0.1857], so the weakest trials are near chance for any observer "
            "(the psychometric curves in the bottom row).",
            "",
            f"![decision tasks]({paths['decision']})",
            "",
        ]
    if "measure_wait_go" in results:
        r = results["measure_wait_go"]
        lines += [
            "## NM-RNN on MeasureWaitGo",
            "",
            "NM-RNN with n = 100, rank 3, n_mod = 5, tau_x = 10, tau_z = 100 steps, "
            "x0 = z0 = 0.1, U orthonormal (n_scale = 1), float64; full-batch training on "
            "the 40 training trials (intervals 12-18, measure times 10-19), Adam lr 3e-3 "
            "with a cosine decay.",
            "",
            f"- training MSE {r['train_mse']:.5f} (best constant predictor "
            f"{r['constant_predictor_mse']:.4f}, per-step mean {r['per_step_mean_mse']:.5f})",
            f"- timing accuracy on the training set {r['train_accuracy']:.3f}; on the "
            f"extrapolation set (intervals {r['test_intervals'][0]}-{r['test_intervals'][-1]}, "
            f"t_m = 15) MSE {r['test_mse']:.4f}, accuracy {r['test_accuracy']:.3f}",
            "",
            f"![NM-RNN on MeasureWaitGo]({paths['measure_wait_go']})",
            "",
        ]
    if "neurogym" in results:
        r = results["neurogym"]
        lines += [
            "## NeuroGym PerceptualDecisionMaking-v0",
            "",
            f"RateRNN n = 64, tau = 100 ms at the environment's dt = {r['dt_ms']:g} ms, "
            f"loss `{r['loss']}` on the action labels (`flexrnn.tasks.from_neurogym`, one "
            "trial per column); score = the argmax of the outputs at the last step of the "
            f"decision period. Test accuracy {r['test_accuracy']:.3f} on 2000 trials "
            "(chance 0.5).",
            "",
        ]
    elif meta.get("neurogym_skipped"):
        lines += [
            "## NeuroGym",
            "",
            f'Not run: {meta["neurogym_skipped"]} (`pip install "flexrnn[neurogym]"`).',
            "",
        ]
    return "\n".join(lines)


def training_report(
    out: str | Path,
    seed: int = 0,
    only: list[str] | None = None,
    progress: bool = True,
    quick: bool = False,
) -> dict[str, Any]:
    """Run the BPTT evidence and write ``out/training.md``, ``out/training.json`` and the
    figures under ``out/figures``. ``quick`` shortens every run (a smoke test, not evidence).
    ``out`` is required (the committed report is made with ``out="docs"``)."""
    out = Path(out)
    say = _say(progress)
    names = ["perceptual_decision", "context_integration", "measure_wait_go", "neurogym"]
    unknown = set(only or []) - set(names)
    if unknown:
        raise ValueError(f"only: unknown runs {sorted(unknown)}; choose from {names}")
    run = set(only or names)
    scale = 0.02 if quick else 1.0
    results: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    meta = {
        "machine": _cpu_name(),
        "flexrnn": flexrnn.__version__,
        "threads": flexrnn.get_num_threads(),
        "seed": seed,
        "quick": quick,
    }
    for key, task, threshold in (
        ("perceptual_decision", lambda: tasks.PerceptualDecision(sigma=0.5), 0.9),
        ("context_integration", lambda: tasks.ContextIntegration(2, sigma=0.5), 0.85),
    ):
        if key in run:
            say(f"[{key}] RateRNN n=50 until val. accuracy >= {threshold}")
            summary, hist, _ = decision_task(
                task(), threshold, seed, max(20, int(4000 * scale)), progress
            )
            results[key], extras[key] = summary, {"history": hist}
            say(json.dumps(summary, indent=1))
    if "measure_wait_go" in run:
        say("[measure_wait_go] NM-RNN, full batch")
        summary, hist, outputs = measure_wait_go(seed, max(20, int(3000 * scale)), progress)
        results["measure_wait_go"] = summary
        extras["measure_wait_go"] = {"history": hist, "outputs": outputs}
        say(json.dumps(summary, indent=1))
    if "neurogym" in run:
        try:
            import neurogym  # noqa: F401
        except ImportError as err:
            meta["neurogym_skipped"] = f"neurogym is not installed ({err})"
            say(meta["neurogym_skipped"])
        else:
            say("[neurogym] RateRNN on PerceptualDecisionMaking-v0")
            summary, hist, _ = neurogym_decision(seed, max(20, int(1500 * scale)), progress)
            results["neurogym"], extras["neurogym"] = summary, {"history": hist}
            say(json.dumps(summary, indent=1))
    out.mkdir(parents=True, exist_ok=True)
    paths = _figures(out, results, extras)
    atomic_write_text(out / "training.md", _markdown(results, paths, meta) + "\n")
    atomic_write_json(out / "training.json", {"meta": meta, "results": results})
    say(f"wrote {out / 'training.md'}")
    return {"meta": meta, "results": results}
