"""`flexrnn reproduce gain`: does a network trained under gain modulation keep its function,
and its attractor structure, across gains? Written up in docs/reproductions/gain.md.

For each task (``context_integration``: ContextIntegration(2); ``measure_wait_go``:
MeasureWaitGo(channels=3)) and seed, three networks are trained by ``fr.train.bptt`` (runs of
``flexrnn.sweep`` through :class:`~flexrnn.experiments._runs.Populations`):

- ``gain 1``: an E/I RateRNN (Dale's law, 80 % excitatory) trained at gain 1;
- ``gain-varied``: the same initial network trained with the global gain drawn per trial
  from ``fr.modulation.log_uniform(0.5, 2)``;
- ``NM-RNN``: an NM-RNN (the study's preset), trained at gain 1.

Each is evaluated over gains 0.5-2 on the recurrent weights: accuracy, the largest Lyapunov
exponent and the fixed points at zero input with their stability (RateRNN), the SVCCA
distance between its states at each gain and at gain 1 on the same trials, and its
bifurcations along the path (``fr.analysis.continuation``). An NM-RNN's global gain
multiplies its recurrent weights ``U diag(s) V^T / n_scale``: it is applied to a copy with
``V`` scaled by the gain (``NMRNN.run`` takes no gain).

Per-site gains (pre-, post-synaptic, E-only, I-only) are evaluated only where the model's
``run`` takes ``pre_gain`` / ``post_gain`` (:func:`site_gains_supported`); training with a
per-site gain varied is not run (``bptt``'s modulation draws a global gain), and the report
says which conditions were not run.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np

import flexrnn
from flexrnn import analysis, modulation, tasks
from flexrnn._io import atomic_savefig, atomic_write_json, atomic_write_text
from flexrnn.experiments._runs import Populations, sweep_sentence
from flexrnn.experiments.training import _cpu_name, _say
from flexrnn.presets import costacurta2024
from flexrnn.train import bptt

PARTS = ("context_integration", "measure_wait_go")
TASK_NAMES = {"context_integration": "ContextIntegration(2)",
              "measure_wait_go": "MeasureWaitGo(channels=3)"}  # fmt: skip
CONDITIONS = ("gain 1", "gain-varied", "NM-RNN")
SITES = ("global", "pre", "post", "E-only", "I-only")
TRAIN_MODULATION = modulation.log_uniform(0.5, 2.0)

# the full protocol; `scale` multiplies ITERS
N, DALE, TAU, BATCH, ITERS = 50, 0.8, 10.0, 32, 2000
LR = {"RateRNN": 3e-3, "NMRNN": 1e-2}
NM_SIZES = {"n": 50, "rank": 3, "n_mod": 5}
SEEDS, GAINS_FULL = 10, 13
EVAL_TRIALS = 128  # test trials per network (the same at every gain)
QUICK = {"iters": 30, "seeds": 2, "gains": 4, "eval_trials": 32}


def make_task(name: str) -> Any:
    """The task of a part: ContextIntegration(2) or MeasureWaitGo(channels=3)."""
    if name == "context_integration":
        return tasks.ContextIntegration(2)
    if name == "measure_wait_go":
        return tasks.MeasureWaitGo(channels=3)
    raise ValueError(f"name: expected one of {', '.join(PARTS)}, got {name!r}")


def make_network(condition: str, task: Any, seed: int) -> Any:
    """The untrained network of a condition: an E/I RateRNN (both RateRNN conditions start
    from the same one) or the NM-RNN preset."""
    if condition == "NM-RNN":
        return costacurta2024("NMRNN", n_in=task.n_in, n_out=task.n_out, seed=seed, **NM_SIZES)
    return flexrnn.RateRNN.random(N, task.n_in, task.n_out, g=1.0, tau=TAU, dt=1.0, seed=seed,
                                  dale=DALE)  # fmt: skip


def site_gains_supported(net: Any) -> bool:
    """Whether ``net.run`` takes per-neuron ``pre_gain`` and ``post_gain`` (the per-site
    conditions run only then)."""
    params = inspect.signature(net.run).parameters
    return "pre_gain" in params and "post_gain" in params


def _site_kwargs(net: Any, site: str, g: float) -> dict[str, Any]:
    """The keywords of ``net.run`` that put gain ``g`` at ``site``."""
    if site == "global":
        return {"gain": g}
    ones = np.ones(net.n)
    if site == "pre":
        return {"pre_gain": g * ones}
    if site == "post":
        return {"post_gain": g * ones}
    if site == "E-only":
        return {"pre_gain": net.cell_gains(E=g, I=1.0)}
    return {"pre_gain": net.cell_gains(E=1.0, I=g)}  # I-only


def nmrnn_at_gain(net: Any, g: float) -> Any:
    """A copy of an NM-RNN whose recurrent weights ``U diag(s) V^T / n_scale`` are scaled by
    ``g`` (``V`` scaled)."""
    out = net.copy()
    out.V[...] = net.V * g
    return out


def _states(x: np.ndarray) -> np.ndarray:
    """(samples, n): every 5th step of every trial."""
    return np.asarray(x[::5]).reshape(-1, x.shape[-1])


def gain_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One network of the study (a ``flexrnn.sweep`` run): train it, then evaluate it over
    ``config["gains"]``.

    config : {"task", "condition", "iters", "gains", "eval_trials"}; seed : the network's and
    the training's seed. Returns per-gain lists (accuracy per site, largest exponent, fixed
    points, stable fixed points, SVCCA distance to gain 1), the bifurcations of the
    continuation, times, and the trained network (kept as ``net``)."""
    task = make_task(config["task"])
    condition = config["condition"]
    net = make_network(condition, task, seed)
    kind = "NMRNN" if condition == "NM-RNN" else "RateRNN"
    mod = TRAIN_MODULATION if condition == "gain-varied" else None
    t0 = time.perf_counter()
    hist = bptt(net, task, iters=config["iters"], batch_size=BATCH, lr=LR[kind], clip_norm=1.0,
                val_every=None, progress=False, seed=seed, modulation=mod)  # fmt: skip
    train_s = time.perf_counter() - t0
    gains = [float(g) for g in config["gains"]]
    trials = task.batch(config["eval_trials"], np.random.default_rng([seed, 1]), dtype=net.dtype)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"updates": len(hist), "final_loss": float(hist.loss[-1])}
    if kind == "NMRNN":
        runs = [nmrnn_at_gain(net, g).run(trials.u) for g in gains]
        result["accuracy.global"] = [float(task.score(r.y, trials)) for r in runs]
        base = _states(net.run(trials.u).x)
    else:
        sites = SITES if site_gains_supported(net) else ("global",)
        runs = []
        for site in sites:
            outs = [net.run(trials.u, **_site_kwargs(net, site, g)) for g in gains]
            result[f"accuracy.{site}"] = [float(task.score(o.y, trials)) for o in outs]
            if site == "global":
                runs = outs
        base = _states(net.run(trials.u).x)
        zero = np.zeros(task.n_in)
        lyap = analysis.lyapunov_spectrum(net, k=1, steps=1000, transient=500,
                                          gain=np.array(gains), seed=seed)  # fmt: skip
        result["largest_exponent"] = [float(v) for v in np.asarray(lyap)[:, 0]]
        fixed, stable = [], []
        for g, out in zip(gains, runs):
            fp = analysis.fixed_points(net, zero, n_init=64, states=out.x[::25], seed=seed,
                                       gain=g)  # fmt: skip
            fixed.append(int(fp.fixed.sum()))
            stable.append(int((fp.fixed & fp.stable).sum()))
        result["fixed_points"], result["stable_fixed_points"] = fixed, stable
        cont = analysis.continuation(net, np.array(gains), zero, seed=seed, chaos=False)
        result["bifurcations"] = [[b.kind, float(b.gain)] for b in cont.bifurcations]
    result["svcca_to_gain_1"] = [float(analysis.svcca(base, _states(r.x)).distance)
                                 for r in runs]  # fmt: skip
    result["train_seconds"] = train_s
    result["eval_seconds"] = time.perf_counter() - t0
    result["net"] = net
    return result


# ---------------------------------------------------------------------------------------------
# Summaries over seeds


def _mean_se(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the seeds of a per-gain list (NaN SE for one seed)."""
    v = np.array([r[key] for r in rows], dtype=np.float64)
    se = v.std(axis=0, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.full(v.shape[1], np.nan)
    return v.mean(axis=0), se


def _scalar_mean_se(values: Any) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return {"mean": float(v.mean()), "se": se, "n": int(v.size)}


def _per_network(rows: list[dict[str, Any]], gains: list[float]) -> dict[str, list[float]]:
    """Per network: the mean accuracy and SVCCA distance over the gains other than 1, the
    fraction of gains whose fixed points (count, stable count) match gain 1's, and the
    bifurcations inside the trained range."""
    off = [i for i, g in enumerate(gains) if abs(g - 1.0) > 1e-9]
    one = int(np.argmin(np.abs(np.array(gains) - 1.0)))
    out: dict[str, list[float]] = {"accuracy_off_1": [], "svcca_off_1": []}
    for r in rows:
        out["accuracy_off_1"].append(float(np.mean(np.array(r["accuracy.global"])[off])))
        out["svcca_off_1"].append(float(np.mean(np.array(r["svcca_to_gain_1"])[off])))
        if "fixed_points" in r:
            same = [
                r["fixed_points"][i] == r["fixed_points"][one]
                and r["stable_fixed_points"][i] == r["stable_fixed_points"][one]
                for i in off
            ]
            out.setdefault("same_fixed_points", []).append(float(np.mean(same)))
            out.setdefault("bifurcations", []).append(float(len(r["bifurcations"])))
    return out


def summarise(rows: list[dict[str, Any]], gains: list[float]) -> dict[str, Any]:
    """A condition's results: per-gain means and SEs over the seeds, per-network numbers."""
    res: dict[str, Any] = {"seeds": [int(r["seed"]) for r in rows], "gains": gains}
    keys = [k for k in rows[0] if k.startswith("accuracy.")]
    keys += [k for k in ("largest_exponent", "fixed_points", "stable_fixed_points",
                         "svcca_to_gain_1") if k in rows[0]]  # fmt: skip
    for key in keys:
        mean, se = _mean_se(rows, key)
        res[key] = {"mean": mean.tolist(), "se": se.tolist()}
    per = _per_network(rows, gains)
    off = [i for i, g in enumerate(gains) if abs(g - 1.0) > 1e-9]
    for key in keys:
        if key.startswith("accuracy.") and key != "accuracy.global":  # the per-site gains
            site = key.split(".", 1)[1]
            per[f"accuracy_off_1.{site}"] = [float(np.mean(np.array(r[key])[off])) for r in rows]
    res["per_network"] = per
    res["summary"] = {k: _scalar_mean_se(v) for k, v in per.items()}
    if "bifurcations" in rows[0]:
        res["bifurcations"] = [r["bifurcations"] for r in rows]
    res["final_loss"] = _scalar_mean_se([r["final_loss"] for r in rows])
    res["updates"] = int(rows[0]["updates"])
    res["train_seconds"] = _scalar_mean_se([r["train_seconds"] for r in rows])
    res["eval_seconds"] = _scalar_mean_se([r["eval_seconds"] for r in rows])
    return res


def _paired(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean and SE over seeds of ``b - a`` (the same seeds in both)."""
    return _scalar_mean_se(np.asarray(b) - np.asarray(a))


def compare(results: dict[str, Any]) -> dict[str, Any]:
    """Gain-varied minus gain-1 training, paired by seed: accuracy and SVCCA distance off
    gain 1, the fraction of gains with gain 1's fixed points, the bifurcations in range."""
    one, varied = results["gain 1"]["per_network"], results["gain-varied"]["per_network"]
    return {k: _paired(one[k], varied[k]) for k in one if k in varied}


# ---------------------------------------------------------------------------------------------
# Figures and report


def _figures(out: Path, results: dict[str, Any], nets: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    colours = {"gain 1": "C0", "gain-varied": "C1", "NM-RNN": "C2"}
    for part, res in results.items():
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), constrained_layout=True)
        panels = [("accuracy.global", "accuracy", axes[0]),
                  ("largest_exponent", "largest Lyapunov exponent (1/tau)", axes[1]),
                  ("stable_fixed_points", "stable fixed points (u = 0)", axes[2]),
                  ("svcca_to_gain_1", "SVCCA distance to gain 1", axes[3])]  # fmt: skip
        for key, label, ax in panels:
            for cond, cres in res.items():
                if key not in cres:
                    continue
                g = np.array(cres["gains"])
                ax.errorbar(g, cres[key]["mean"], yerr=cres[key]["se"], marker="o", ms=3,
                            capsize=2, color=colours[cond], label=cond)  # fmt: skip
            ax.axvspan(TRAIN_MODULATION.low, TRAIN_MODULATION.high, color="0.92", zorder=0)
            ax.axvline(1.0, color="0.5", lw=0.8, ls=":")
            ax.set(xlabel="global gain on the recurrent weights", ylabel=label)
            ax.legend(frameon=False, fontsize="small")
        axes[1].axhline(0.0, color="k", lw=0.6)
        fig.suptitle(f"{TASK_NAMES[part]}: mean ± SE over seeds (shaded: gain-varied "
                     "training range)")  # fmt: skip
        name = f"gain_{part}.png"
        atomic_savefig(fig, folder / name, dpi=110)
        plt.close(fig)
        paths[part] = f"figures/{name}"
        sites = [k for k in res["gain 1"] if k.startswith("accuracy.") and k != "accuracy.global"]
        if sites:
            fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
            styles = {"global": ("-", 4.0), "pre": ("--", 1.8), "post": (":", 1.8)}
            for i, key in enumerate(["accuracy.global"] + sites):
                cres, site = res["gain 1"], key.split(".", 1)[1]
                ls, lw = styles.get(site, ("-", 1.5))
                ax.errorbar(cres["gains"], cres[key]["mean"], yerr=cres[key]["se"], marker="o",
                            ms=3, capsize=2, color=f"C{i}", ls=ls, lw=lw, label=site)  # fmt: skip
            title = f"{TASK_NAMES[part]}: gain-1 networks,\nby where the gain acts"
            ax.set(xlabel="gain at the site", ylabel="accuracy", title=title)
            ax.legend(title="site (global, pre, post coincide)", frameon=False, fontsize="small")
            name = f"gain_{part}_sites.png"
            atomic_savefig(fig, folder / name, dpi=110)
            plt.close(fig)
            paths[f"{part}_sites"] = f"figures/{name}"
        # the continuation diagrams of one RateRNN per condition
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
        for ax, cond in zip(axes, ("gain 1", "gain-varied")):
            seed, net = nets[(part, cond)]
            gains = np.array(res[cond]["gains"])
            cont = analysis.continuation(net, np.linspace(gains[0], gains[-1], 16),
                                         np.zeros(net.n_in), chaos=False)  # fmt: skip
            cont.plot(axes=[ax])
            ax.set(
                title=f"{cond} (seed {seed}): fixed points at u = 0",
                xlabel="global gain",
                ylabel="fixed point (first principal direction)",
            )
        name = f"gain_{part}_continuation.png"
        atomic_savefig(fig, folder / name, dpi=110)
        plt.close(fig)
        paths[f"{part}_continuation"] = f"figures/{name}"
    return paths


def _fmt(s: dict[str, float], digits: int = 3) -> str:
    return f"{s['mean']:.{digits}f} ± {s['se']:.{digits}f}"


def _verdict(d: dict[str, float], smaller: str, larger: str) -> str:
    """A paired difference in words: beyond two standard errors or not (no verdict from
    fewer than 3 seeds)."""
    if d["n"] < 3:
        return "fewer than 3 seeds, no verdict"
    if not np.isfinite(d["se"]) or abs(d["mean"]) <= 2 * d["se"]:
        return "no difference beyond two standard errors"
    return smaller if d["mean"] < 0 else larger


def _answer(part: str, res: dict[str, Any], cmp: dict[str, Any]) -> list[str]:
    """(d) for one task, read from the numbers."""
    one, var = res["gain 1"]["summary"], res["gain-varied"]["summary"]
    at_1 = {c: _at_gain_1(res[c]) for c in res}
    lines = [
        f"**{TASK_NAMES[part]}** ({one['accuracy_off_1']['n']} seeds; paired differences "
        "gain-varied minus gain 1):",
        "",
        "- accuracy at gain 1 (how well each condition learned the task): "
        + "; ".join(f"{c} {a}" for c, a in at_1.items())
        + ".",
        f"- accuracy at gains other than 1: {_fmt(one['accuracy_off_1'])} (gain 1) vs "
        f"{_fmt(var['accuracy_off_1'])} (gain-varied); difference "
        f"{_fmt(cmp['accuracy_off_1'])}: "
        + _verdict(
            cmp["accuracy_off_1"],
            "gain-varied training is worse off gain 1",
            "gain-varied training keeps the function better",
        )
        + ".",  # fmt: skip
        f"- SVCCA distance between the states at each gain and at gain 1: "
        f"{_fmt(one['svcca_off_1'])} vs {_fmt(var['svcca_off_1'])}; difference "
        f"{_fmt(cmp['svcca_off_1'])}: "
        + _verdict(
            cmp["svcca_off_1"],
            "the gain-varied networks' trajectories change less with the gain",
            "the gain-varied networks' trajectories change more",
        )
        + ".",
        f"- fraction of gains whose fixed points at u = 0 (number, number stable) are those "
        f"at gain 1: {_fmt(one['same_fixed_points'], 2)} vs "
        f"{_fmt(var['same_fixed_points'], 2)}; difference {_fmt(cmp['same_fixed_points'], 2)}: "
        + _verdict(
            cmp["same_fixed_points"],
            "gain-varied training changes the fixed points more often",
            "gain-varied training keeps the fixed-point structure more often",
        )
        + ".",  # fmt: skip
        f"- bifurcations of the fixed points in gain 0.5-2 (continuation): "
        f"{_fmt(one['bifurcations'], 1)} vs {_fmt(var['bifurcations'], 1)}; difference "
        f"{_fmt(cmp['bifurcations'], 1)}: "
        + _verdict(
            cmp["bifurcations"],
            "fewer bifurcations in the trained range after gain-varied training",
            "more bifurcations after gain-varied training",
        )
        + ".",
    ]
    sites = [k.split(".", 1)[1] for k in one if k.startswith("accuracy_off_1.")]
    if sites:
        lines.append(
            "- gain 1 networks, accuracy off gain 1 by where the gain acts: "
            + "; ".join(f"{site} {_fmt(one[f'accuracy_off_1.{site}'])}" for site in sites)
            + f" (global {_fmt(one['accuracy_off_1'])})."
        )
    if "NM-RNN" in res:
        nm = res["NM-RNN"]["summary"]
        lines.append(
            f"- NM-RNN (trained at gain 1) under the same global gain: accuracy off gain 1 "
            f"{_fmt(nm['accuracy_off_1'])}, SVCCA distance {_fmt(nm['svcca_off_1'])}."
        )
    lines += ["", "In short, gain-varied training against training at gain 1: " + "; ".join(
        f"{what}: {_short(cmp[key], sign)}" for what, key, sign in (
            ("function kept off gain 1", "accuracy_off_1", 1),
            ("trajectories closer to gain 1's", "svcca_off_1", -1),
            ("fixed points at u = 0 as at gain 1 more often", "same_fixed_points", 1),
        )) + "."]  # fmt: skip
    return lines


def _at_gain_1(cres: dict[str, Any]) -> str:
    i = int(np.argmin(np.abs(np.array(cres["gains"]) - 1.0)))
    acc = cres["accuracy.global"]
    return f"{acc['mean'][i]:.3f} ± {acc['se'][i]:.3f}"


def _short(d: dict[str, float], sign: int) -> str:
    """yes / no (the opposite) / not resolved, for a paired difference whose sign ``sign``
    means yes."""
    if d["n"] < 3 or not np.isfinite(d["se"]) or abs(d["mean"]) <= 2 * d["se"]:
        return "not resolved"
    return "yes" if np.sign(d["mean"]) == sign else "no, the opposite"


def markdown(results: dict[str, Any], comparisons: dict[str, Any], paths: dict[str, str],
             meta: dict[str, Any]) -> str:  # fmt: skip
    """The report (docs/reproductions/gain.md)."""
    lines = [
        "# Gain modulation: does a trained network keep working, and how?",
        "",
        f"Written by `{meta['command']}` (flexrnn {meta['flexrnn']}, {meta['machine']}, "
        f"{meta['wall_s']:.0f} s wall for this invocation; its {meta['runs']} network runs, "
        f"some possibly resumed from an earlier invocation, took {meta['run_seconds']:.0f} s "
        f"summed over the processes). Scale: {meta['scale_sentence']}"
        + sweep_sentence(meta, "The networks"),
        "",
        "## Protocol",
        "",
        f"- Tasks: {', '.join(TASK_NAMES[p] for p in results)}.",
        f"- `gain 1`: E/I RateRNN, n = {N}, {int(DALE * 100)} % excitatory (Dale's law, kept by "
        f"BPTT), tau = {TAU:g} steps, trained by `fr.train.bptt` ({meta['iters']} updates, "
        f"batch {BATCH}, Adam lr {LR['RateRNN']:g}, gradient norm clipped at 1) at gain 1.",
        f"- `gain-varied`: the same initial network and updates, the global gain drawn per "
        f"trial from `{TRAIN_MODULATION!r}`.",
        f"- `NM-RNN`: `presets.costacurta2024('NMRNN', n={NM_SIZES['n']}, "
        f"rank={NM_SIZES['rank']}, n_mod={NM_SIZES['n_mod']})`, trained at gain 1 (Adam lr "
        f"{LR['NMRNN']:g}); the global gain multiplies its recurrent weights "
        "`U diag(s) V^T / n_scale` (V scaled on a copy).",
        f"- Evaluation over gains {', '.join(f'{g:g}' for g in meta['gains'])} on "
        f"{meta['eval_trials']} fresh trials (the same at every gain): accuracy "
        "(`task.score`); largest Lyapunov exponent at zero input (1000 steps after 500, per "
        "tau); fixed points at zero input (`fr.analysis.fixed_points`, 64 starts from the "
        "states) and how many are stable; SVCCA distance between the states (every 5th step) "
        "at the gain and at gain 1; bifurcations along the path "
        "(`fr.analysis.continuation`, u = 0).",
        "- Mean ± standard error over the seeds (networks); differences paired by seed.",
        "",
        "## Conditions not run",
        "",
    ]
    for item in meta["not_run"]:
        lines.append(f"- {item}")
    lines += ["", "## Results", ""]
    for part, res in results.items():
        lines += [f"### {TASK_NAMES[part]}", "", f"![{part}]({paths[part]})", ""]
        lines += ["| gain | " + " | ".join(f"accuracy ({c})" for c in res) + " | "
                  + " | ".join(f"SVCCA to gain 1 ({c})" for c in res) + " |",
                  "|---" * (1 + 2 * len(res)) + "|"]  # fmt: skip
        gains = res["gain 1"]["gains"]
        for i, g in enumerate(gains):
            acc = [f"{res[c]['accuracy.global']['mean'][i]:.3f} ± "
                   f"{res[c]['accuracy.global']['se'][i]:.3f}" for c in res]  # fmt: skip
            sv = [f"{res[c]['svcca_to_gain_1']['mean'][i]:.3f} ± "
                  f"{res[c]['svcca_to_gain_1']['se'][i]:.3f}" for c in res]  # fmt: skip
            lines.append(f"| {g:g} | " + " | ".join(acc + sv) + " |")
        lines += ["", "| gain | " + " | ".join(
            f"largest exponent ({c}) | fixed / stable ({c})" for c in ("gain 1", "gain-varied")
        ) + " |", "|---" * 5 + "|"]  # fmt: skip
        for i, g in enumerate(gains):
            cells = []
            for c in ("gain 1", "gain-varied"):
                r = res[c]
                cells.append(f"{r['largest_exponent']['mean'][i]:.3f} ± "
                             f"{r['largest_exponent']['se'][i]:.3f}")  # fmt: skip
                cells.append(f"{r['fixed_points']['mean'][i]:.1f} / "
                             f"{r['stable_fixed_points']['mean'][i]:.1f}")  # fmt: skip
            lines.append(f"| {g:g} | " + " | ".join(cells) + " |")
        lines += ["", "Bifurcations found by continuation (kind at gain), per seed:", ""]
        for c in ("gain 1", "gain-varied"):
            per_seed = [", ".join(f"{k} {g:.2f}" for k, g in b) or "none"
                        for b in res[c]["bifurcations"]]  # fmt: skip
            lines.append(f"- {c}: " + "; ".join(f"seed {s}: {p}" for s, p in
                                                 zip(res[c]["seeds"], per_seed)))  # fmt: skip
        if f"{part}_sites" in paths:
            lines += ["", f"![{part} sites]({paths[f'{part}_sites']})"]
        lines += ["", "Continuation of the network of each training condition with the most "
                  "bifurcations (solid: stable, dashed: unstable):", "",
                  f"![{part} continuation]({paths[f'{part}_continuation']})", "",
                  "Final training loss: " + "; ".join(
                      f"{c} {_fmt(res[c]['final_loss'], 4)}" for c in res) + ".", ""]  # fmt: skip
    lines += ["## (d) What the data show", ""]
    for part, res in results.items():
        lines += _answer(part, res, comparisons[part]) + [""]
    if len(results) == 2:
        a, b = list(results)
        da, db = comparisons[a]["svcca_off_1"], comparisons[b]["svcca_off_1"]
        lines += [
            f"From the simpler task ({TASK_NAMES[a]}) to the harder timing task "
            f"({TASK_NAMES[b]}), the paired change in SVCCA distance from gain-varied "
            f"training is {_fmt(da)} and {_fmt(db)}; in accuracy off gain 1, "
            f"{_fmt(comparisons[a]['accuracy_off_1'])} and "
            f"{_fmt(comparisons[b]['accuracy_off_1'])}. Where a line above says no difference "
            "beyond two standard errors, this run cannot tell the training conditions apart "
            "at its scale (a null result, not evidence of equality).",
            "",
        ]
    lines += ["## The full run", "", f"`{meta['full_command']}`: n = {N}, {ITERS} updates per "
              f"network, {SEEDS} seeds per condition, {GAINS_FULL} gains.", ""]  # fmt: skip
    return "\n".join(lines)


def gain_report(
    out: str | Path,
    seed: int = 0,
    only: list[str] | None = None,
    progress: bool = True,
    quick: bool = False,
    scale: float | None = None,
    seeds: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    runs: str | Path | None = None,
) -> dict[str, Any]:
    """Run the study and write ``out/reproductions/gain.md``, ``gain.json`` and the figures
    under ``out/reproductions/figures``.

    only : parts (tasks) to run, of ``PARTS``; quick : a smoke test (a few minutes);
    scale : fraction of the protocol's ``ITERS`` updates (default 1; quick: 30 updates);
    seeds : networks per condition (default 10; quick: 2); workers, scheduler, runs : as
    :class:`~flexrnn.experiments._runs.Populations`."""
    unknown = set(only or []) - set(PARTS)
    if unknown:
        raise ValueError(f"only: unknown parts {sorted(unknown)}; choose from {list(PARTS)}")
    if scale is not None and not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: expected a fraction > 0, got {scale}")
    if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
        raise ValueError(f"seeds: expected a whole number >= 1, got {seeds!r}")
    say = _say(progress)
    parts = [p for p in PARTS if p in set(only or PARTS)]
    iters = QUICK["iters"] if quick and scale is None else max(1, round(ITERS * (scale or 1.0)))
    n_seeds = seeds or (QUICK["seeds"] if quick else SEEDS)
    G = QUICK["gains"] if quick else GAINS_FULL
    gains = [float(g) for g in np.round(np.linspace(0.5, 2.0, G), 4)]
    if 1.0 not in gains:
        gains = sorted(gains + [1.0])
    eval_trials = QUICK["eval_trials"] if quick else EVAL_TRIALS
    folder = Path(out) / "reproductions"
    command = f"flexrnn reproduce gain --out {out}"
    command += (" --quick" if quick else "") + (f" --scale {scale:g}" if scale else "")
    command += f" --seeds {seeds}" if seeds else ""
    command += f" --seed {seed}" if seed else ""
    meta: dict[str, Any] = {
        "command": command,
        "full_command": "flexrnn reproduce gain --out docs",
        "machine": _cpu_name(),
        "flexrnn": flexrnn.__version__,
        "seed": seed,
        "quick": quick,
        "iters": iters,
        "seeds": n_seeds,
        "gains": gains,
        "eval_trials": eval_trials,
    }
    meta["scale_sentence"] = (
        f"{iters} updates per network ({iters / ITERS:.3g} of the protocol's {ITERS}), "
        f"{n_seeds} seeds per condition, {len(gains)} gains"
        + (" (--quick: a smoke test, not evidence)." if quick else ".")
    )
    seed_list = [seed + k for k in range(n_seeds)]
    t_all = time.perf_counter()
    results: dict[str, Any] = {}
    nets: dict[Any, Any] = {}
    supported = False
    with Populations("gain", workers, scheduler, runs, progress) as pop:
        meta.update(pop.describe())
        configs = [{"task": p, "condition": c, "iters": iters, "gains": gains,
                    "eval_trials": eval_trials} for p in parts for c in CONDITIONS]  # fmt: skip
        say(f"[gain] {len(configs)} conditions x {n_seeds} seeds, {iters} updates each")
        rows = pop.run(gain_run, configs, seed_list)
        meta["runs"] = len(rows)
        meta["run_seconds"] = float(sum(r["wall_time"] for r in rows))
        for p in parts:
            results[p] = {}
            for c in CONDITIONS:
                mine = [r for r in rows if r["task"] == p and r["condition"] == c]
                mine.sort(key=lambda r: r["seed"])
                results[p][c] = summarise(mine, gains)
                if c != "NM-RNN":
                    # the diagram shows the network with the most bifurcations (first if tied)
                    pick = max(mine, key=lambda r: len(r["bifurcations"]))
                    nets[(p, c)] = (int(pick["seed"]), pick["kept"]["net"])
                    supported = supported or site_gains_supported(nets[(p, c)][1])
                say(f"  {p} / {c}: accuracy off gain 1 "
                    f"{_fmt(results[p][c]['summary']['accuracy_off_1'])}")  # fmt: skip
        meta["wall_s"] = time.perf_counter() - t_all
        meta["site_gains"] = supported
        meta["not_run"] = _not_run(supported)
        comparisons = {p: compare(results[p]) for p in parts}
        folder.mkdir(parents=True, exist_ok=True)
        paths = _figures(folder, results, nets)
    atomic_write_text(folder / "gain.md", markdown(results, comparisons, paths, meta) + "\n")
    atomic_write_json(folder / "gain.json",
                      {"meta": meta, "results": results, "comparisons": comparisons})  # fmt: skip
    say(f"wrote {folder / 'gain.md'} ({meta['wall_s']:.0f} s)")
    return {"meta": meta, "results": results, "comparisons": comparisons}


def _not_run(supported: bool) -> list[str]:
    """The issue's conditions this run did not cover, with the reason."""
    items = []
    if not supported:
        items.append(
            "(a) evaluation with the gain at the pre-synaptic, post-synaptic, E-only and "
            "I-only sites: this build's `RateRNN.run` takes no `pre_gain` / `post_gain` "
            "(per-neuron gains in the kernels); only the global gain was evaluated."
        )
    items.append(
        "(b) training with a per-cell-type or pre- vs post-synaptic gain varied: "
        "`fr.train.bptt(modulation=...)` draws a global gain only; only the global gain was "
        "varied in training."
    )
    items.append(
        "(c) NM-RNNs trained with the gain varied: `bptt`'s modulation needs a model whose "
        "`run` takes a gain, and `NMRNN.run` does not; the NM-RNNs were trained at gain 1 and "
        "evaluated under the global gain."
    )
    items.append(
        "Fixed points, Lyapunov exponents and continuation of the NM-RNNs: those analyses "
        "take a RateRNN or LowRankRNN (an NM-RNN's recurrence depends on its modulator's "
        "state); the NM-RNNs have accuracy and SVCCA distance only."
    )
    return items
