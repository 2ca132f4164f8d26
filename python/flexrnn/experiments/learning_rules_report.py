"""`flexrnn reproduce learning-rules`: populations per rule through ``flexrnn.sweep``, their
topology and geometry compared, written up in ``reproductions/learning_rules.md``.

Populations (networks per rule ``networks``, seeds ``seed ...``):

- ``decision``: the decision task (input noise 0.5) with BPTT, the GA and full-FORCE, and
  Hebbian networks on their own task;
- ``context``: N-context integration for each N of ``contexts`` with BPTT, the GA and
  full-FORCE;
- ``noise``: BPTT on the decision task and on N-context integration for each N of
  ``noise_contexts`` at each input-noise level of ``noise`` (the networks at the base noise
  0.5 are those of ``decision`` and ``context`` when those parts run).

Per network (:func:`~flexrnn.experiments.learning_rules.learning_rules_run`): accuracy,
fixed points, topology descriptors (strict and loose acceptance), psychometric curve. Across
the networks of a condition: SVCCA distances on the study's protocol, topology distances,
MDS and silhouettes of the rule labels, both on the distance matrices and on their rows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import flexrnn
from flexrnn import analysis
from flexrnn._io import atomic_savefig, atomic_write_json, atomic_write_text
from flexrnn.experiments._runs import Populations, sweep_sentence
from flexrnn.experiments.learning_rules import RULES, learning_rules_run
from flexrnn.experiments.training import _cpu_name, _say

PARTS = ("decision", "context", "noise")
RULE_NAMES = {"bptt": "BPTT", "genetic": "GA", "full_force": "full-FORCE", "hebbian": "Hebbian"}
COLOURS = {"bptt": "C0", "genetic": "C1", "full_force": "C2", "hebbian": "C3"}
SIZES = {"bptt": 90, "genetic": 55, "full_force": 30, "hebbian": 12}
STUDY_SILHOUETTES = (0.08, 0.35)  # the study's rule-separability silhouettes lie in this range


def scale(quick: bool, networks: int | None) -> dict[str, Any]:
    """Sizes and budgets of a run (``quick``: a smoke test that fits ~15 minutes on 2 idle
    cores; else the study's sizes, which need a cluster)."""
    if quick:
        return {
            "networks": networks or 2,
            "contexts": [2],
            "noise": [0.1, 1.0],
            "noise_contexts": [2],
            "budgets": {"bptt": 150, "genetic": 25, "full_force": 40, "hebbian": 60},
            "bptt": {
                "lr": 5e-3,
                "batch_size": 100,
                "val_every": 10,
                "val_count": 400,
                "dtype": "float32",
            },
            "genetic": {"population": 20, "batch_size": 100, "val_count": 400, "dtype": "float32"},
            "analysis": {"fp_init": 40, "fp_iters": 800, "psychometric_trials": 100},
        }
    return {
        "networks": networks or 20,
        "contexts": [1, 2, 3, 4, 5, 6],
        "noise": [0.1, 0.5, 1.0, 2.0],
        "noise_contexts": [1, 2, 3, 4, 5, 6],
        "budgets": {"bptt": 4000, "genetic": 1000, "full_force": 500, "hebbian": 2000},
        "bptt": {"dtype": "float32"},  # the study's PyTorch code: float32
        "genetic": {"dtype": "float32"},
        "analysis": {},
    }


BASE_SIGMA = 0.5  # the input noise of the decision and context parts


def _contexts_list(name: str, value: Any) -> list[int]:
    """A list of N (whole numbers 1 ... 6, no repeats) from a list or "1,2,3"."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[int] = []
    for item in items:
        try:
            N = int(str(item).strip())
        except ValueError:
            raise ValueError(f"{name}: expected whole numbers 1-6, got {value!r}") from None
        if not 1 <= N <= 6 or N in out or str(N) != str(item).strip():
            raise ValueError(f"{name}: expected distinct whole numbers 1-6, got {value!r}")
        out.append(N)
    if not out:
        raise ValueError(f"{name}: expected at least one N, got {value!r}")
    return out


def _noise_list(value: Any) -> list[float]:
    """Input-noise levels (>= 0, distinct, at least two) from a list or "0.1,0.5"."""
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        out = [float(str(v).strip()) for v in items]
    except ValueError:
        raise ValueError(f"noise: expected numbers >= 0, got {value!r}") from None
    if len(out) < 2 or len(set(out)) != len(out) or not all(np.isfinite(out)) or min(out) < 0:
        raise ValueError(f"noise: expected at least two distinct levels >= 0, got {value!r}")
    return out


def _budgets(value: Any) -> dict[str, int]:
    """Per-rule training budgets from a dict or ["bptt=800", ...] (whole numbers >= 1)."""
    items = value.items() if isinstance(value, dict) else (
        str(v).partition("=")[::2] for v in value)  # fmt: skip
    out: dict[str, int] = {}
    for rule, count in items:
        rule = str(rule).strip()
        if rule not in RULES:
            raise ValueError(f"budgets: expected RULE=N with RULE one of {', '.join(RULES)}, "
                             f"got {rule!r}")  # fmt: skip
        try:
            out[rule] = int(str(count).strip())
        except ValueError:
            raise ValueError(f"budgets: {rule}: expected a whole number >= 1, got {count!r}") \
                from None  # fmt: skip
        if out[rule] < 1:
            raise ValueError(f"budgets: {rule}: expected a whole number >= 1, got {count!r}")
    return out


def with_options(
    s: dict[str, Any], contexts: Any = None, noise: Any = None, noise_contexts: Any = None,
    budget_scale: float | None = None, budgets: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """``s`` (a :func:`scale`) with the run's choices: the N of the context part
    (``contexts``), the noise levels and the N of the noise part, a fraction of the
    training budgets (``budget_scale``, each budget at least 1), and budgets of single rules
    (``budgets``: {rule: N} or ["bptt=800", ...]; after ``budget_scale``)."""
    s = {**s, "budgets": dict(s["budgets"])}
    if contexts is not None:
        s["contexts"] = _contexts_list("contexts", contexts)
    if noise is not None:
        s["noise"] = _noise_list(noise)
    if noise_contexts is not None:
        s["noise_contexts"] = _contexts_list("noise_contexts", noise_contexts)
    s.setdefault("noise_contexts", [2])
    if budget_scale is not None:
        budget_scale = flexrnn._validate.scalar("budget_scale", budget_scale, positive=True)
        s["budgets"] = {k: max(1, round(v * budget_scale)) for k, v in s["budgets"].items()}
        s["budget_scale"] = budget_scale
    if budgets is not None:
        s["budgets"].update(_budgets(budgets))
        s["budgets_given"] = _budgets(budgets)
    return s


def _same_run(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two configs train the same networks (they differ at most in their part)."""
    return {k: v for k, v in a.items() if k != "part"} == {
        k: v for k, v in b.items() if k != "part"
    }


def _all_configs(parts: list[str], s: dict[str, Any]) -> list[dict[str, Any]]:
    """The configs of ``parts``; a noise-part config that another part runs already (BPTT at
    the base noise) is left out: :func:`_noise_rows` takes that part's networks."""
    configs = [c for part in parts if part != "noise" for c in _configs(part, s)]
    if "noise" in parts:
        configs += [c for c in _configs("noise", s)
                    if not any(_same_run(c, o) for o in configs)]  # fmt: skip
    return configs


def _noise_rows(rows: list[dict[str, Any]], s: dict[str, Any]) -> dict[str, list[dict]]:
    """The networks of each task of the noise part, by group name: BPTT at each level of
    ``s["noise"]`` (those at the base noise may come from the decision or context part)."""
    wanted = _configs("noise", s)
    out: dict[str, list[dict]] = {}
    for c in wanted:
        # a row holds its config's entries (flexrnn.sweep)
        sel = [r for r in rows if all(r.get(k) == v for k, v in c.items() if k != "part")]
        name = "decision" if c["task"] == "decision" else f"context N={c['N']}"
        seen = {id(r) for r in out.get(name, [])}
        out.setdefault(name, []).extend(r for r in sel if id(r) not in seen)
    return {g: sel for g, sel in out.items() if sel}


def _configs(part: str, s: dict[str, Any]) -> list[dict[str, Any]]:
    def config(rule: str, task: str, **extra: Any) -> dict[str, Any]:
        c = {"part": part, "rule": rule, "task": task, "budget": s["budgets"][rule],
             **s["analysis"], **extra, **({"T": s["T"]} if "T" in s else {})}  # fmt: skip
        c.update(s.get(rule, {}) if rule in ("bptt", "genetic") else {})
        return c

    if part == "decision":
        return [config(rule, "decision", sigma=BASE_SIGMA, N=0)
                for rule in ("bptt", "genetic", "full_force", "hebbian")]  # fmt: skip
    if part == "context":
        return [config(rule, "context", sigma=BASE_SIGMA, N=N) for N in s["contexts"]
                for rule in ("bptt", "genetic", "full_force")]  # fmt: skip
    tasks_ = [("decision", 0)] + [("context", N) for N in s.get("noise_contexts", [2])]
    return [config("bptt", task, sigma=float(sigma), N=N)
            for task, N in tasks_ for sigma in s["noise"]]  # fmt: skip


def _group_name(row: dict[str, Any]) -> str:
    return "decision" if row["task"] == "decision" else f"context N={row['N']}"


def _silhouettes(D: np.ndarray, labels: list[str]) -> dict[str, float | None]:
    """Silhouette scores of ``labels`` both ways, and (``<method>_sem``) the standard error of
    each: the SEM of the per-network silhouettes."""
    methods = ("precomputed", "rows")
    if len(set(labels)) < 2 or len(labels) <= len(set(labels)):
        return {key: None for m in methods for key in (m, f"{m}_sem")}
    out: dict[str, float | None] = {}
    for m in methods:
        per = analysis.silhouette_samples(D, labels, method=m)
        out[m] = round(float(per.mean()), 4)
        out[f"{m}_sem"] = round(float(per.std(ddof=1) / np.sqrt(len(per))), 4)
    return out


def compare(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """Across the networks of ``rows``: topology distances (strict, loose), SVCCA distances
    on the study's protocol, MDS (rows) of each, and silhouettes of ``row[label]``."""
    labels = [str(r[label]) for r in rows]
    nets = [r["kept"]["net"] for r in rows]
    contexts = rows[0]["N"] if rows[0]["task"] == "context" else None
    out: dict[str, Any] = {"labels": labels, "matrices": {}, "silhouettes": {}, "mds": {}}
    out["matrices"]["topology_strict"] = analysis.topology_distances(
        [r["kept"]["topology_strict"] for r in rows])  # fmt: skip
    out["matrices"]["topology_loose"] = analysis.topology_distances(
        [r["kept"]["topology_loose"] for r in rows])  # fmt: skip
    out["matrices"]["geometry"] = analysis.svcca_protocol(nets, contexts=contexts).distances
    for key, D in out["matrices"].items():
        out["silhouettes"][key] = _silhouettes(D, labels)
        dims = min(2, len(rows))
        out["mds"][key] = analysis.mds(D, dims=dims, method="rows").embedding
    return out


def _mean_sem(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    sem = float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else float("nan")
    return float(a.mean()), sem


def _fmt(mean_sem: tuple[float, float], digits: int = 3) -> str:
    m, s = mean_sem
    return f"{m:.{digits}f}" if not np.isfinite(s) else f"{m:.{digits}f} ± {s:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# Figures


def _figures(out: Path, comparisons: dict[str, Any], rows: list[dict], noise: dict) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (out / "figures").mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    groups = [g for g in comparisons if g != "noise"]
    if groups:
        titles = {"topology_strict": "topology (strict)", "topology_loose": "topology (loose)",
                  "geometry": "geometry (SVCCA)"}  # fmt: skip
        fig, axes = plt.subplots(len(groups), 3, figsize=(11, 3.3 * len(groups)), squeeze=False)
        for gi, g in enumerate(groups):
            c = comparisons[g]
            for ki, key in enumerate(titles):
                ax = axes[gi, ki]
                E = c["mds"][key]
                for rule in RULE_NAMES:
                    sel = [i for i, lab in enumerate(c["labels"]) if lab == rule]
                    if sel:
                        y = E[sel, 1] if E.shape[1] > 1 else np.zeros(len(sel))
                        # sizes decrease by rule: networks at the same point stay visible
                        ax.scatter(
                            E[sel, 0],
                            y,
                            color=COLOURS[rule],
                            label=RULE_NAMES[rule],
                            s=SIZES[rule],
                            alpha=0.8,
                            edgecolors="k",
                            linewidths=0.3,
                        )
                s = c["silhouettes"][key]["rows"]
                ax.set_title(f"{g}: {titles[key]}\nsilhouette (rows) "
                             f"{'n/a' if s is None else f'{s:.2f}'}", fontsize=9)  # fmt: skip
                ax.set(xlabel="MDS 1", ylabel="MDS 2")
                ax.ticklabel_format(style="sci", scilimits=(-2, 3))
                ax.legend(fontsize=7, frameon=False, title="rule", title_fontsize=7)
        fig.tight_layout()
        paths["mds"] = str(Path("figures") / "lr_mds.png")
        atomic_savefig(fig, out / paths["mds"], dpi=110)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(max(7.0, 1.4 * len(groups)), 3.6))
        keys = ("topology_strict", "topology_loose", "geometry")
        width = 0.8 / len(keys)
        for ki, key in enumerate(keys):
            vals = [comparisons[g]["silhouettes"][key]["rows"] for g in groups]
            vals = [np.nan if v is None else v for v in vals]
            ax.bar(np.arange(len(groups)) + (ki - 1) * width, vals, width,
                   label=titles[key], color=f"C{ki + 4}")  # fmt: skip
        ax.axhspan(*STUDY_SILHOUETTES, color="0.85", zorder=0, label="study's range (0.08-0.35)")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(groups)), groups, fontsize=8)
        ax.set(xlabel="task", ylabel="silhouette of rule labels (rows)",
               title="Separability of the learning rules")  # fmt: skip
        ax.legend(fontsize=7, frameon=False, title="representation", title_fontsize=7)
        fig.tight_layout()
        paths["silhouettes"] = str(Path("figures") / "lr_silhouettes.png")
        atomic_savefig(fig, out / paths["silhouettes"], dpi=110)
        plt.close(fig)

        ncols = min(4, len(groups))
        nrows = -(-len(groups) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.2 * nrows), squeeze=False)
        for ax in axes.flat[len(groups) :]:
            ax.set_visible(False)
        for gi, g in enumerate(groups):
            ax = axes.flat[gi]
            for rule in RULE_NAMES:
                sel = [r for r in rows if r["part"] != "noise" and _group_name(r) == g
                       and r["rule"] == rule]  # fmt: skip
                if not sel:
                    continue
                levels = np.asarray(sel[0]["kept"]["psychometric_levels"])
                curves = np.array([r["kept"]["psychometric"] for r in sel])
                m = np.nanmean(curves, axis=0)
                e = np.nanstd(curves, axis=0) / np.sqrt(len(sel))
                ax.errorbar(levels, m, yerr=e, color=COLOURS[rule], label=RULE_NAMES[rule],
                            marker="o", ms=3, capsize=2)  # fmt: skip
            ax.set(xlabel="signed coherence", ylabel="P(choice +)", title=g, ylim=(-0.05, 1.05))
            ax.legend(fontsize=7, frameon=False, title="rule", title_fontsize=7)
        fig.tight_layout()
        paths["psychometric"] = str(Path("figures") / "lr_psychometric.png")
        atomic_savefig(fig, out / paths["psychometric"], dpi=110)
        plt.close(fig)

    if sum(g.startswith("context") for g in groups) >= 2 or (groups and noise):
        paths["contexts"] = str(Path("figures") / "lr_contexts.png")
        _contexts_figure(plt, out / paths["contexts"], comparisons, noise)
    if noise:
        fig, axes = plt.subplots(1, 2, figsize=(max(9, 1.6 * len(noise) + 5), 3.4))
        tasks_ = list(noise)
        for ki, key in enumerate(("topology_strict", "topology_loose", "geometry")):
            vals = [noise[t]["silhouettes"][key]["rows"] for t in tasks_]
            vals = [np.nan if v is None else v for v in vals]
            axes[0].bar(np.arange(len(tasks_)) + (ki - 1) * 0.25, vals, 0.25,
                        label=key.replace("_", " "), color=f"C{ki + 4}")  # fmt: skip
        axes[0].axhline(0, color="k", lw=0.8)
        axes[0].set_xticks(np.arange(len(tasks_)), tasks_, fontsize=7)
        axes[0].set(xlabel="task", ylabel="silhouette of noise labels (rows)",
                    title="Does topology depend on input noise?")  # fmt: skip
        axes[0].legend(fontsize=7, frameon=False, title="representation", title_fontsize=7)
        for ti, t in enumerate(tasks_):
            sel = noise[t]["rows"]
            sigmas = sorted({r["sigma"] for r in sel})
            counts = [_mean_sem([r["fixed_points_strict"] for r in sel if r["sigma"] == s])
                      for s in sigmas]  # fmt: skip
            axes[1].errorbar(sigmas, [c[0] for c in counts],
                             yerr=[0 if not np.isfinite(c[1]) else c[1] for c in counts],
                             marker="o", label=t, color=f"C{ti}", capsize=2)  # fmt: skip
        axes[1].set(xlabel="input noise sigma", ylabel="fixed points found (strict)",
                    title="Fixed points vs input noise (BPTT)")  # fmt: skip
        axes[1].legend(fontsize=7, frameon=False, title="task", title_fontsize=7)
        fig.tight_layout()
        paths["noise"] = str(Path("figures") / "lr_noise.png")
        atomic_savefig(fig, out / paths["noise"], dpi=110)
        plt.close(fig)
    return paths


def _by_n(groups: dict[str, Any]) -> list[tuple[int, str]]:
    """(N, group name) in order of N; the decision task as N = 0."""
    out = [(0 if g == "decision" else int(g.split("N=")[1]), g) for g in groups]
    return sorted(out)


def _contexts_figure(plt: Any, path: Path, comparisons: dict, noise: dict) -> None:
    """Silhouettes (rows, mean ± SEM) against N: of the rule labels (left) and of the noise
    labels of the BPTT networks (right), for topology (strict, loose) and geometry; the
    decision task at N = 0."""
    keys = {"topology_strict": ("topology (strict)", "C4", "o"),
            "topology_loose": ("topology (loose)", "C5", "s"),
            "geometry": ("geometry (SVCCA)", "C6", "^")}  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False)
    panels = (
        (comparisons, "silhouette of rule labels (rows)", "Rule separability vs N"),
        (noise, "silhouette of noise labels (rows)", "Noise separability vs N (BPTT)"),
    )
    for ax, (groups, ylabel, title) in zip(axes[0], panels):
        order = _by_n({g: c for g, c in groups.items() if g != "noise"})
        for ki, (key, (label, colour, marker)) in enumerate(keys.items()):
            xs, ms, es = [], [], []
            for N, g in order:
                sil = groups[g]["silhouettes"][key]
                if sil["rows"] is None:
                    continue
                xs.append(N + (ki - 1) * 0.08)
                ms.append(sil["rows"])
                es.append(sil["rows_sem"])
            ax.errorbar(xs, ms, yerr=es, color=colour, marker=marker, label=label, capsize=2,
                        lw=1)  # fmt: skip
        ax.axhline(0, color="k", lw=0.8)
        if groups is comparisons:
            ax.axhspan(*STUDY_SILHOUETTES, color="0.88", zorder=0,
                       label="study's rule range (0.08-0.35)")  # fmt: skip
        ticks = [N for N, _ in order]
        ax.set_xticks(ticks, ["dec." if N == 0 else str(N) for N in ticks])
        ax.set(xlabel="task (dec. = decision; else N of N-context integration)",
               ylabel=ylabel, title=title)  # fmt: skip
        ax.legend(fontsize=7, frameon=False, title="representation", title_fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Report


def _table_rows(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| condition | rule | networks | at criterion | accuracy | train steps | train s | "
        "fixed points (strict) | stable (strict) | points (loose) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = []
    for r in rows:
        cond = _group_name(r) + (f", sigma={r['sigma']}" if r["part"] == "noise" else "")
        k = (r["part"], cond, r["rule"])
        if k not in keys:
            keys.append(k)
    for part, cond, rule in keys:
        sel = [
            r
            for r in rows
            if r["part"] == part
            and r["rule"] == rule
            and _group_name(r) + (f", sigma={r['sigma']}" if part == "noise" else "") == cond
        ]
        lines.append(
            f"| {cond}{' (noise)' if part == 'noise' else ''} | {RULE_NAMES[rule]} | {len(sel)} | "
            f"{sum(r['stopped'] == 'criterion' for r in sel)} | "
            f"{_fmt(_mean_sem([r['accuracy'] for r in sel]))} | "
            f"{_fmt(_mean_sem([r['trained_steps'] for r in sel]), 0)} | "
            f"{_fmt(_mean_sem([r['wall_time'] for r in sel]), 1)} | "
            f"{_fmt(_mean_sem([r['fixed_points_strict'] for r in sel]), 1)} | "
            f"{_fmt(_mean_sem([r['stable_strict'] for r in sel]), 1)} | "
            f"{_fmt(_mean_sem([r['fixed_points_loose'] for r in sel]), 1)} |"
        )
    return lines


def _sil(v: float | None, sem: float | None = None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if sem is None else f"{v:.3f} ± {sem:.3f}"


def _sils(sil: dict, method: str) -> str:
    return _sil(sil[method], sil.get(f"{method}_sem"))


def _markdown(meta: dict, rows: list[dict], comparisons: dict, noise: dict, paths: dict,
              findings: str) -> str:  # fmt: skip
    s = meta["scale"]
    lines = [
        "# The learning-rule study (McMahan et al., NeurIPS 2021) with flexrnn",
        "",
        f"Produced by `flexrnn reproduce learning-rules{' --quick' if meta['quick'] else ''}"
        f"{' --networks ' + str(s['networks']) if meta.get('networks_given') else ''}"
        f"{meta.get('options', '')} --out docs`.",
        f"Machine: {meta['machine']}, flexrnn {meta['flexrnn']}, seed {meta['seed']}; "
        f"this call {meta['minutes']:.1f} min (networks already in the `--runs` folder are "
        f"not rerun); the networks' own run times sum to {meta['network_minutes']:.1f} min."
        + sweep_sentence(meta, "The networks"),
        "",
        f"**Scale of this run:** {s['networks']} networks per rule and condition; N-context "
        f"integration for N in {s['contexts']}; input noise {s['noise']} on the decision task "
        f"and on N-context integration for N in {s['noise_contexts']} (BPTT); training budgets "
        f"{s['budgets']} (BPTT updates, GA generations, full-FORCE batches of 10 trials, "
        "Hebbian batches of 10 trials)"
        + (
            f", {s['budget_scale']:g} of the {'quick' if meta['quick'] else 'full'} run's"
            if "budget_scale" in s
            else ""
        )
        + ", each stopped earlier when the last ten validations all reach 0.9 (the study's "
        "rule)."
        + (
            " These are **not** the study's sizes: `--quick` is a smoke test of the pipeline, "
            "its numbers are no evidence."
            if meta["quick"]
            else " Every network is trained with the study's setup (below: its batch sizes, "
            'learning rates, validation set, GA populations); "at criterion" in the table '
            "counts the networks that reached it within the budget."
        ),
        "",
        "## Setup (presets in `flexrnn.experiments.learning_rules`)",
        "",
        "- Networks (`study_network`): n = 50, `phi = 1 + tanh` (`shifted_tanh`), output read "
        "from the state, W ~ N(0, 0.02²), W_in ~ N(0, 0.5²), W_out ~ N(0, 0.1²), dt/tau = 0.1.",
        "- BPTT (`study_bptt`): W only; Adam, lr 5e-4 (1e-4 for N-context integration), batches "
        "of 500, no clipping; each update starts its trials from x0 = 0.3 N(0, I) drawn anew "
        "(`bptt(x0_std=0.3)`); validation on a fixed set of 2000 trials with coherences "
        "linspace(0, 0.1875, 20) after every update (`bptt(val_trials=...)`, "
        "`study_validation_trials`); float32 (the study's PyTorch default).",
        "- GA (`study_genetic`): an initial population of independently drawn study networks "
        "(`genetic(initial_population=...)`; 50 for the decision task, 20 for N-context), "
        "mutating W_in, W and W_out (not the biases) by 0.005 N(0, 1), the best 5 the parents "
        "(child 0 the best itself), batches of 500; the best member validated after every "
        "generation on the same fixed 2000 trials (`genetic(val_trials=...)`); float32. As in "
        "flexrnn's GA every member starts its trials from x0 = 0 (the study's GA code drew one "
        "random initial state per batch).",
        "- full-FORCE (`study_full_force`): tanh network with a rate readout (full-FORCE's), "
        "student J = W_out = 0 at the start; teacher g = 1 with its own input weights "
        "N(0, 0.25²) (`teacher_input_std`), never reset between trials (`carry_teacher`); "
        "hint = target = ±1 over the whole trial; RLS at t = 0 and every step from t ≥ 200 "
        "(`rls_from`); alpha 5e4 (decision) / 1e4 (N-context) as flexrnn's P0 = I/alpha; a "
        'restart after 5000 trials; the study\'s output tanh(w·r) (`full_force(output="tanh")`'
        ": RLS fits w·r to atanh of the target clipped to ±0.95, the teacher is still driven "
        "by the target itself); validation on 500 fresh trials every 10 batches.",
        "- Hebbian (`study_hebbian`): Miconi's rule in the study's form, "
        "ΔW = −η·R̄·e·(R − R̄) (`rbar_factor`), learning from trial 100 (`learn_from`), bias "
        "units 1, 10, 11 held at +1, +1, −1 (`clamp`, `hold_units`), on its own task "
        "(`HebbianDecision`: ±0.25 on steps 1-500 of 700, 200 silent response steps), n = 50, "
        "tau = 30, dt = 1; validation on 200 fresh trials every 10 batches; the analyses "
        "re-simulate it at dt/tau = 0.1.",
        "- Topology (`flexrnn.analysis.topology`): every fixed point at the static inputs "
        "0.03·{0, ±0.1, …, ±1} (decision) or linspace(−0.02, 0.02, 21) per context; the kNN "
        "(k = 3) structure of the first 10 points as a 30-vector; Euclidean distances between "
        "the vectors. *Strict*: flexrnn's fixed points (refined roots); *loose*: unrefined "
        "minimiser endpoints with flow residual up to 0.15, like the study's root finder.",
        "- Geometry (`flexrnn.analysis.svcca_protocol`): 10 noiseless static input levels per "
        "context × 750 steps, pre-activation states x, SVCCA distance (95 % variance).",
        "- Silhouettes and MDS of the rule labels both on the distance matrix "
        '(`method="precomputed"`) and on its rows as feature vectors (`method="rows"`, the '
        "study's way); MDS plots use rows + metric MDS.",
        "",
        "## Networks",
        "",
        *_table_rows(rows),
        "",
        "Accuracy: 2000 fresh trials (the study's coherences; HebbianDecision for the Hebbian "
        "networks); mean ± SEM over networks.",
        "",
    ]
    if "psychometric" in paths:
        lines += [f"![psychometric curves]({paths['psychometric']})", ""]
    if comparisons:
        lines += [
            "## Topology and geometry by rule",
            "",
            "| condition | representation | silhouette (precomputed) | silhouette (rows) |",
            "|---|---|---|---|",
        ]
        lines += _silhouette_rows(comparisons)
        lines += ["", "Silhouettes: mean ± SEM over the networks' own silhouettes.", ""]
        if "mds" in paths:
            lines += [f"![MDS]({paths['mds']})", ""]
        if "silhouettes" in paths:
            lines += [f"![silhouettes]({paths['silhouettes']})", ""]
        if "contexts" in paths:
            lines += [
                "Silhouettes against N (the decision task at the left, as 'dec.'), of the rule "
                "labels and, for the BPTT networks of the noise part, of the noise labels; "
                "mean ± SEM over the networks' own silhouettes:",
                "",
                f"![silhouettes against N]({paths['contexts']})",
                "",
            ]
    if noise:
        lines += [
            "## Topology and input noise (BPTT)",
            "",
            "| task | representation | silhouette of noise labels (precomputed) | (rows) |",
            "|---|---|---|---|",
        ]
        lines += _silhouette_rows(noise)
        lines += [
            "",
            f"The networks at the base noise {BASE_SIGMA} are the BPTT networks of "
            "the decision and context parts (when those ran).",
            "",
        ]
        if "noise" in paths:
            lines += [f"![noise]({paths['noise']})", ""]
    lines += ["## Against the study's findings", "", findings, "",
              "Where and why this run can differ from the study:", "",
              _caveats(rows, s), ""]  # fmt: skip
    full = with_options(scale(False, None))
    lines += [
        "## The full run",
        "",
        f"`flexrnn reproduce learning-rules` (without `--quick`) runs {full['networks']} "
        f"networks per rule and condition: the decision task with the four rules, N-context "
        f"integration for N = {full['contexts']} with BPTT, the GA and full-FORCE, and BPTT at "
        f"the input noise levels {full['noise']} on the decision task and on N-context "
        f"integration for N = {full['noise_contexts']} (those at {BASE_SIGMA} shared): "
        f"{meta['full_networks']} networks, with the study's sizes (BPTT batches of 500 and "
        "validation on 2000 trials after every update, GA populations of 50 / 20 networks on "
        f"batches of 500) and budgets {full['budgets']}. {meta['full_estimate']} It is meant "
        "for a cluster: `--scheduler tcp://host:8786 --runs DIR` (resumable).",
    ]
    return "\n".join(lines)


def _step_cost(config: dict[str, Any]) -> float:
    """A training step's work in trial-forward passes (a backward pass counted as two): BPTT
    one update of ``batch_size`` trials plus its share of the validation; the GA a generation
    of ``population`` networks on ``batch_size`` trials plus the best member's validation;
    full-FORCE and Hebbian a batch of 10
    trials (the same in every run)."""
    rule = config["rule"]
    if rule == "bptt":
        return 3.0 * config.get("batch_size", 500) + config.get("val_count", 2000) / config.get(
            "val_every", 1
        )
    if rule == "genetic":
        population = config.get("population") or (20 if config["task"] == "context" else 50)
        return float(population * config.get("batch_size", 500) + config.get("val_count", 2000))
    return 10.0


def _condition_key(c: dict[str, Any]) -> tuple:
    """A condition: rule, task, N and input noise."""
    return (c["rule"], c["task"], int(c["N"]), float(c["sigma"]))


def _estimate(rows: list[dict], s_full: dict) -> tuple[int, str]:
    """Networks of the full run and its CPU time from this run's networks. A condition whose
    networks here all reached the criterion with the full run's setup (batch sizes,
    populations, validation) counts their mean time (training and analysis) per network;
    every other condition counts every network to its full budget at this run's time per
    training step (scaled by the step's work in the full run over this run's,
    :func:`_step_cost`): an upper bound."""
    full_configs = _all_configs(list(PARTS), s_full)
    total = len(full_configs) * s_full["networks"]
    if not rows:
        return total, ""
    per_step: dict[tuple, list[tuple[float, float]]] = {}
    by_condition: dict[tuple, list[dict]] = {}
    for r in rows:
        unit = r["train_seconds"] / max(int(r["trained_steps"]), 1) / _step_cost(r)
        for key in ((r["rule"], r["task"], r["N"]), (r["rule"], r["task"]), (r["rule"],)):
            per_step.setdefault(key, []).append((unit, r["analysis_seconds"]))
        by_condition.setdefault(_condition_key(r), []).append(r)
    measured = bounded = 0.0
    n_measured = n_bounded = 0
    for c in full_configs:
        here = by_condition.get(_condition_key(c), [])
        if here and all(r["stopped"] == "criterion" and _step_cost(r) == _step_cost(c)
                        and r.get("dtype") == c.get("dtype") and r["budget"] <= c["budget"]
                        for r in here):  # fmt: skip
            measured += np.mean([r["train_seconds"] + r["analysis_seconds"] for r in here])
            n_measured += 1
            continue
        keys = ((c["rule"], c["task"], c["N"]), (c["rule"], c["task"]), (c["rule"],))
        found = next((per_step[k] for k in keys if k in per_step), None)
        if found is None:
            continue
        unit, analysis_s = np.mean(found, axis=0)
        bounded += unit * _step_cost(c) * s_full["budgets"][c["rule"]] + analysis_s
        n_bounded += 1
    networks = s_full["networks"]
    text = (
        f"Of its {len(full_configs)} conditions, {n_measured} were run here with the study's "
        f"setup and every network reached the criterion: from their measured times, about "
        f"{measured * networks / 3600:.1f} CPU-hours for {networks} networks each."
    )
    if n_bounded:
        text += (
            f" The other {n_bounded} (networks that did not all reach the criterion here, or "
            f"were not run) take at most about {bounded * networks / 3600:.0f} CPU-hours (every "
            "network to its full budget at this run's time per training step; the criterion "
            "stops most earlier)."
        )
    return total, text + " Times measured on this shared machine, one thread per network."


def _caveats(rows: list[dict], s: dict) -> str:
    """Why this run's numbers can differ from the study's, from this run's own numbers."""
    lines = []
    short: dict[str, list[dict]] = {}
    for r in rows:
        name = _group_name(r) + (f", sigma={r['sigma']}" if r["part"] == "noise" else "")
        short.setdefault(f"{name} {RULE_NAMES[r['rule']]}", []).append(r)
    weak = [f"{k} ({sum(r['stopped'] == 'criterion' for r in sel)} of {len(sel)}, mean "
            f"accuracy {np.mean([r['accuracy'] for r in sel]):.2f})"
            for k, sel in short.items()
            if any(r["stopped"] != "criterion" for r in sel)]  # fmt: skip
    if weak:
        lines.append(
            f"- Training: in {len(weak)} of {len(short)} conditions not every network reached "
            f"the criterion within this run's budgets: {'; '.join(weak)}. Their fixed points "
            "are those of partly trained networks, and topology or geometry that separates "
            "them by rule may reflect how far each rule got, not the rule."
        )
    else:
        lines.append(f"- Training: every network of the {len(short)} conditions reached the "
                     "criterion.")  # fmt: skip
    single: dict[str, bool] = {}
    for r in rows:
        inputs = 21 * (r["N"] if r["task"] == "context" else 1)
        name = _group_name(r) + (f", sigma={r['sigma']}" if r["part"] == "noise" else "")
        key = f"{name} {RULE_NAMES[r['rule']]}"
        one = r["fixed_points_strict"] == inputs and r["stable_strict"] == inputs
        single[key] = single.get(key, True) and one
    monostable = [k for k, one in single.items() if one]
    if monostable:
        lines.append(
            f"- In {len(monostable)} of {len(single)} conditions ({'; '.join(monostable)}) "
            "every network has exactly one fixed point, a stable one, per static input "
            "(strict): their flows are monostable at every input, and their topology "
            "descriptors differ only by where the single points lie. Among such networks a "
            "silhouette near 0 cannot tell a topology invariant to the rule from networks "
            "that all kept the same simple topology"
            + (
                f" ({sum(all(r['stopped'] == 'criterion' for r in short[k]) for k in monostable)}"
                f" of these {len(monostable)} conditions have every network at the criterion)."
                if monostable
                else "."
            )  # fmt: skip
        )
    lines += [
        f"- Population size: {s['networks']} networks per rule and condition; the "
        "silhouettes' standard errors above (SEM over networks) say which differences this "
        "run resolves.",
        "- The topology descriptor follows the issue's description of the study's (kNN, "
        "k = 3, first 10 fixed points across the inputs); the study's own descriptor code "
        "was not consulted, so the ordering of points within an input (by the output at the "
        "point) is flexrnn's choice.",
        "- Strict and loose acceptance give different point sets whenever the minimiser "
        "stops on slow regions that are not roots (loose); the study's lists had such points "
        "(35 of 91 on ten random networks), which is why both are reported.",
        "- full-FORCE's output tanh(w·r) is trained by RLS on the pre-tanh output w·r with "
        "target atanh(±0.95); with the study's ±1 targets this is the linear readout scaled "
        "by atanh(0.95), so accuracy, fixed points and geometry are those of the linear "
        "readout; a study whose RLS used the error after the tanh would learn a different w "
        "(the recurrent J, and so topology and geometry, not). Hebbian networks run with "
        "tau = 30 steps and are analysed at dt/tau = 0.1.",
    ]
    return "\n".join(lines)


def _versus(a: float, sa: float, b: float, sb: float, claim: str, agreement: str) -> str:
    """'<claim> (a vs b), <agreement>.' when a exceeds b by two combined standard errors; a
    sentence saying that the difference is not resolved, or that it goes the other way."""
    se = float(np.hypot(sa, sb))
    numbers = f"({a:.3f} ± {sa:.3f} vs {b:.3f} ± {sb:.3f})"
    if a - b > 2 * se:
        return f"{claim} {numbers}, {agreement}."
    if a > b:
        return (f"{claim} {numbers}, but by less than two standard errors: not resolved at "
                "this scale.")  # fmt: skip
    return f"no more; the claim '{claim}' does not hold here {numbers}."


def _above_zero(sil: dict, what: str) -> str:
    """Whether a silhouette (rows) is above 0 by two standard errors, in words."""
    m, se = sil["rows"], sil["rows_sem"]
    if m is None:
        return f"{what}: too few networks"
    if m - 2 * se > 0:
        return f"{what} separable ({m:.3f} ± {se:.3f}, above 0 by more than two SE)"
    return f"{what}: no separation resolved ({m:.3f} ± {se:.3f}, not above 0 by two SE)"


def _findings(comparisons: dict, noise: dict) -> str:
    """The comparison with the study's findings, from the numbers of this run."""

    def rows_sil(c: dict, key: str) -> float | None:
        return c["silhouettes"][key]["rows"]

    out = []
    for g, c in comparisons.items():
        topo, geo = rows_sil(c, "topology_strict"), rows_sil(c, "geometry")
        study = (
            "The study: on the complex tasks topology is not separable by rule while geometry "
            "is (rule silhouettes 0.08-0.35)."
            if g.startswith("context")
            else "The study: geometry separable by rule (0.08-0.35); on this simple task "
            "topology depends on the input noise rather than being rule-invariant."
        )
        sil = c["silhouettes"]
        if topo is None or geo is None:
            verdict = " Too few networks to compare."
        else:
            verdict = (
                f" Here: {_above_zero(sil['topology_strict'], 'topology (strict) by rule')}; "
                f"{_above_zero(sil['geometry'], 'geometry by rule')}; geometry separates the "
                "rules "
                + _versus(
                    geo, sil["geometry"]["rows_sem"], topo, sil["topology_strict"]["rows_sem"],
                    "more than topology (strict) does", "as in the study",
                )
            )  # fmt: skip
        out.append(
            f"- {g}: silhouettes of the rule labels (rows) — topology "
            f"{_sils(sil['topology_strict'], 'rows')} (strict), "
            f"{_sils(sil['topology_loose'], 'rows')} (loose); geometry "
            f"{_sils(sil['geometry'], 'rows')}. {study}{verdict}"
        )
    for t, c in noise.items():
        out.append(
            f"- input noise, {t}: silhouette of the noise labels (rows) on topology "
            f"{_sils(c['silhouettes']['topology_strict'], 'rows')} (strict), "
            f"{_sils(c['silhouettes']['topology_loose'], 'rows')} (loose); "
            f"{_above_zero(c['silhouettes']['topology_strict'], 'topology (strict) by noise')}."
        )
    simple = noise.get("decision")
    against = []
    for t, complex_ in noise.items():
        if simple is None or not t.startswith("context"):
            continue
        a = rows_sil(simple, "topology_strict")
        b = rows_sil(complex_, "topology_strict")
        if a is not None and b is not None:
            sa = simple["silhouettes"]["topology_strict"]["rows_sem"]
            sb = complex_["silhouettes"]["topology_strict"]["rows_sem"]
            if a - b > 2 * np.hypot(sa, sb):
                word = "more, by over two SE (as in the study)"
            elif a > b:
                word = "more, by under two SE (not resolved)"
            else:
                word = "not more (unlike the study)"
            against.append(f"with {t}, {word}: {a:.3f} ± {sa:.3f} vs {b:.3f} ± {sb:.3f}")
    if against:
        out.append(
            "- The study: topology depends on the input noise for the simple task, not for "
            "the complex ones. Here the noise labels separate topology (strict) on the "
            "decision task, compared " + "; ".join(against) + "."
        )
    out += _across_n(comparisons)
    return "\n".join(out)


def _across_n(comparisons: dict) -> list[str]:
    """A summary over the N of N-context integration: for how many N geometry separates the
    rules by two standard errors more than topology (strict) does, and the mean silhouettes."""
    groups = [g for g in comparisons if g.startswith("context")]
    pairs = []
    for g in groups:
        sil = comparisons[g]["silhouettes"]
        topo, geo = sil["topology_strict"], sil["geometry"]
        if topo["rows"] is None or geo["rows"] is None:
            continue
        pairs.append((geo["rows"], geo["rows_sem"], topo["rows"], topo["rows_sem"]))
    if len(pairs) < 2:
        return []
    resolved = sum(g - t > 2 * np.hypot(gs, ts) for g, gs, t, ts in pairs)
    above = sum(g > t for g, _, t, _ in pairs)
    geo_mean = _mean_sem([p[0] for p in pairs])
    topo_mean = _mean_sem([p[2] for p in pairs])
    return [
        f"- Across the {len(pairs)} N of N-context integration: geometry's rule silhouette "
        f"(rows) exceeds topology's (strict) for {above} of them, by more than two standard "
        f"errors for {resolved}; averaged over N (± SEM over N) geometry "
        f"{_fmt(geo_mean)}, topology {_fmt(topo_mean)}."
    ]


def _silhouette_rows(groups: dict[str, Any]) -> list[str]:
    """One table row per group and representation: its silhouettes both ways."""
    return [
        f"| {name} | {key.replace('_', ' ')} | {_sils(c['silhouettes'][key], 'precomputed')} | "
        f"{_sils(c['silhouettes'][key], 'rows')} |"
        for name, c in groups.items()
        for key in ("topology_strict", "topology_loose", "geometry")
    ]


def _options_text(contexts: Any, noise: Any, noise_contexts: Any, budget_scale: Any,
                  s: dict[str, Any]) -> str:  # fmt: skip
    """The command-line options that gave ``s``, as the report's command shows them."""
    text = ""
    if contexts is not None:
        text += " --contexts " + ",".join(map(str, s["contexts"]))
    if noise is not None:
        text += " --noise " + ",".join(f"{v:g}" for v in s["noise"])
    if noise_contexts is not None:
        text += " --noise-contexts " + ",".join(map(str, s["noise_contexts"]))
    if budget_scale is not None:
        text += f" --scale {s['budget_scale']:g}"
    for rule, count in s.get("budgets_given", {}).items():
        text += f" --budget {rule}={count}"
    return text


def learning_rules_report(
    out: str | Path,
    seed: int = 0,
    only: list[str] | None = None,
    progress: bool = True,
    quick: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    runs: str | Path | None = None,
    networks: int | None = None,
    contexts: Any = None,
    noise: Any = None,
    noise_contexts: Any = None,
    budget_scale: float | None = None,
    budgets: Any = None,
) -> dict[str, Any]:
    """Run the study's populations and write ``out/reproductions/learning_rules.md`` (with
    ``learning_rules.json`` and figures ``out/reproductions/figures/lr_*.png``); ``out`` has no
    default (``docs`` rewrites the committed report).

    only : a subset of ("decision", "context", "noise").
    quick : small populations and budgets (a smoke test).
    networks : networks per rule and condition (default 2 with ``quick``, else 20).
    contexts : the N of N-context integration in the context part, e.g. ``[1, 2, 3]`` or
        ``"1,2,3"`` (default ``[2]`` with ``quick``, else 1 ... 6).
    noise : the input-noise levels of the noise part (default 0.1, 1 with ``quick``, else
        0.1, 0.5, 1, 2).
    noise_contexts : the N of N-context integration in the noise part (besides the decision
        task; default ``[2]`` with ``quick``, else 1 ... 6).
    budget_scale : a fraction of the training budgets (of ``quick``'s with ``quick``).
    budgets : training budgets of single rules, {rule: N} or ["genetic=150", ...] (BPTT
        updates, GA generations, full-FORCE and Hebbian batches of 10 trials); each network
        still stops earlier at the accuracy criterion.
    workers, scheduler, runs : as in the other reproductions (``flexrnn.sweep``).
    """
    unknown = set(only or []) - set(PARTS)
    if unknown:
        raise ValueError(f"only: unknown parts {sorted(unknown)}; choose from {list(PARTS)}")
    if networks is not None:
        networks = flexrnn._validate.integer("networks", networks, minimum=2)
    parts = [p for p in PARTS if p in set(only or PARTS)]
    say = _say(progress)
    t0 = time.perf_counter()
    s = with_options(scale(quick, networks), contexts, noise, noise_contexts, budget_scale,
                     budgets)  # fmt: skip
    configs = _all_configs(parts, s)
    seeds = list(range(seed, seed + s["networks"]))
    meta: dict[str, Any] = {
        "machine": _cpu_name(), "flexrnn": flexrnn.__version__, "seed": seed, "quick": quick,
        "scale": s, "networks_given": networks is not None,
        "options": _options_text(contexts, noise, noise_contexts, budget_scale, s),
    }  # fmt: skip
    say(f"[learning-rules] {len(configs)} conditions x {len(seeds)} networks")
    with Populations("learning_rules", workers, scheduler, runs, progress) as pop:
        meta.update(pop.describe())
        rows = pop.run(learning_rules_run, configs, seeds)
        for r in rows:
            r["net"] = r["kept"]["net"]
        comparisons: dict[str, Any] = {}
        for part in ("decision", "context"):
            for g in dict.fromkeys(_group_name(r) for r in rows if r["part"] == part):
                sel = [r for r in rows if r["part"] == part and _group_name(r) == g]
                say(f"[compare] {g}: {len(sel)} networks")
                comparisons[g] = compare(sel, "rule")
        noise: dict[str, Any] = {}
        noise_groups = _noise_rows(rows, s) if "noise" in parts else {}
        for g, sel in noise_groups.items():
            say(f"[compare] noise, {g}: {len(sel)} networks")
            noise[g] = compare(sel, "sigma")
            noise[g]["rows"] = sel
        outdir = Path(out) / "reproductions"
        outdir.mkdir(parents=True, exist_ok=True)
        paths = _figures(outdir, comparisons, rows, noise)
    meta["minutes"] = (time.perf_counter() - t0) / 60
    meta["network_minutes"] = sum(float(r.get("wall_time") or 0.0) for r in rows) / 60
    meta["full_networks"], meta["full_estimate"] = _estimate(rows, with_options(scale(False, None)))
    findings = _findings(comparisons, noise)
    atomic_write_text(
        outdir / "learning_rules.md",
        _markdown(meta, rows, comparisons, noise, paths, findings) + "\n",
    )
    results = {
        "networks": [{k: v for k, v in r.items() if k not in ("kept", "net")} for r in rows],
        "comparisons": {g: {"labels": c["labels"], "silhouettes": c["silhouettes"],
                            "matrices": {k: np.round(D, 6).tolist()
                                         for k, D in c["matrices"].items()}}
                        for g, c in {**comparisons, **{f"noise {k}": v
                                                       for k, v in noise.items()}}.items()},
    }  # fmt: skip
    atomic_write_json(outdir / "learning_rules.json", {"meta": meta, "results": results})
    say(f"wrote {outdir / 'learning_rules.md'}")
    say(json.dumps({g: c["silhouettes"] for g, c in comparisons.items()}, indent=1))
    return {"meta": meta, "results": results}
