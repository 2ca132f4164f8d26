"""The figures and the text of docs/reproductions/gain.md, from the summaries of
:mod:`flexrnn.experiments.gain`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flexrnn import analysis
from flexrnn._io import atomic_savefig
from flexrnn.experiments._runs import sweep_sentence
from flexrnn.experiments.gain import (
    BATCH,
    DALE,
    FP_STARTS,
    GAINS_FULL,
    ITERS,
    LR,
    NM_SIZES,
    RATE_CONDITIONS,
    REGIME_SITES,
    SEEDS,
    SITE_TARGETS,
    SVCCA_STRIDE,
    SVCCA_TRIALS,
    TASK_NAMES,
    TAU,
    TRAIN_HIGH,
    TRAIN_LOW,
    N,
    training_modulation,
)

COLOURS = {"gain 1": "C0", "varied: global": "C1", "varied: E/I pre": "C2",
           "varied: E/I post": "C3", "NM-RNN": "C4", "NM-RNN varied: global": "C5"}  # fmt: skip
# the site each gain-varied condition was trained at ("E/I" = both cell-type sites)
TRAINED_SITES = {"varied: global": ("global",), "varied: E/I pre": ("E pre", "I pre"),
                 "varied: E/I post": ("E post", "I post"),
                 "NM-RNN varied: global": ("global",)}  # fmt: skip


def _errorbar(ax: Any, cres: dict[str, Any], key: str, cond: str) -> None:
    ax.errorbar(cres["gains"], cres[key]["mean"], yerr=cres[key]["se"], marker="o", ms=3,
                capsize=2, color=COLOURS[cond], label=cond)  # fmt: skip


def _shade(ax: Any) -> None:
    ax.axvspan(TRAIN_LOW, TRAIN_HIGH, color="0.94", zorder=0)
    ax.axvline(1.0, color="0.5", lw=0.8, ls=":")


def figures(out: Path, results: dict[str, Any], nets: dict[Any, Any]) -> dict[str, str]:
    """Per task: the global-gain panels, the per-site panels and the continuation diagrams
    (PNG under ``out/figures``); returns {name: relative path}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for part, res in results.items():
        fig, axes = plt.subplots(1, 4, figsize=(17, 3.9), constrained_layout=True)
        panels = [("accuracy.global", "accuracy"),
                  ("exponent.global", "largest Lyapunov exponent (1/tau), u = 0"),
                  ("stable.global", "stable fixed points (u = 0)"),
                  ("svcca.global", "SVCCA distance to gain 1")]  # fmt: skip
        for (key, label), ax in zip(panels, axes):
            for cond, cres in res.items():
                if key in cres:
                    _errorbar(ax, cres, key, cond)
            _shade(ax)
            ax.set(xlabel="global gain on the recurrent weights", ylabel=label)
            ax.legend(frameon=False, fontsize="x-small", title="trained")
        axes[1].axhline(0.0, color="k", lw=0.6)
        fig.suptitle(f"{TASK_NAMES[part]}: mean ± SE over seeds (grey: the range of the "
                     "gain-varied training)")  # fmt: skip
        paths[part] = _save(fig, folder, f"gain_{part}.png", plt)

        fig, axes = plt.subplots(2, len(REGIME_SITES), figsize=(4 * len(REGIME_SITES), 6.6),
                                 sharex=True, constrained_layout=True)  # fmt: skip
        for j, site in enumerate(REGIME_SITES):
            for cond in res:
                if f"accuracy.{site}" in res[cond]:
                    _errorbar(axes[0, j], res[cond], f"accuracy.{site}", cond)
                if f"exponent.{site}" in res[cond]:
                    _errorbar(axes[1, j], res[cond], f"exponent.{site}", cond)
            for ax in axes[:, j]:
                _shade(ax)
            axes[0, j].set(title=f"gain at {site} ({SITE_TARGETS[site]})", ylabel="accuracy")
            axes[1, j].set(xlabel=f"gain at {site}", ylabel="largest exponent (1/tau), u = 0")
            axes[1, j].axhline(0.0, color="k", lw=0.6)
            axes[0, j].legend(frameon=False, fontsize="x-small", title="trained")
        fig.suptitle(f"{TASK_NAMES[part]}: by where the evaluation gain acts (E/I: only that "
                     "cell type's gain changes; mean ± SE over seeds)")  # fmt: skip
        paths[f"{part}_sites"] = _save(fig, folder, f"gain_{part}_sites.png", plt)

        conds = [c for c in RATE_CONDITIONS if (part, c) in nets]
        fig, axes = plt.subplots(1, len(conds), figsize=(4.4 * len(conds), 3.9),
                                 constrained_layout=True, squeeze=False)  # fmt: skip
        for ax, cond in zip(axes[0], conds):
            seed, net = nets[(part, cond)]
            gains = np.array(res[cond]["gains"])
            cont = analysis.continuation(net, np.linspace(gains[0], gains[-1], 16),
                                         np.zeros(net.n_in), chaos=False)  # fmt: skip
            cont.plot(axes=[ax])
            ax.set(title=f"{cond} (seed {seed})", xlabel="global gain",
                   ylabel="fixed point at u = 0 (first principal direction)")  # fmt: skip
        paths[f"{part}_continuation"] = _save(fig, folder, f"gain_{part}_continuation.png", plt)
    return paths


def _save(fig: Any, folder: Path, name: str, plt: Any) -> str:
    atomic_savefig(fig, folder / name, dpi=100)
    plt.close(fig)
    return f"figures/{name}"


ABBREVIATIONS = {"fixed point": "FP", "limit cycle": "LC", "chaos": "CH", "marginal": "M",
                 "divergent": "DIV"}  # fmt: skip


def _labels(cres: dict[str, Any], key: str, i: int) -> str:
    """Networks per regime label at gain i, e.g. "FP 4, LC 1"."""
    n = len(cres["seeds"])
    counts = [(ABBREVIATIONS[label], round(frac[i] * n)) for label, frac in cres[key].items()]
    return ", ".join(f"{abbr} {k}" for abbr, k in counts if k > 0)


def _fmt(s: dict[str, float], digits: int = 3) -> str:
    return f"{s['mean']:.{digits}f} ± {s['se']:.{digits}f}"


def _site_table(
    res: dict[str, Any], conds: list[str], key: str, digits: int, title: str
) -> list[str]:
    """A blank line, ``title``, and a table of one summary per condition (rows) and site."""
    lines = [
        "",
        title,
        "",
        "| trained | " + " | ".join(REGIME_SITES) + " |",
        "|---" * (1 + len(REGIME_SITES)) + "|",
    ]
    for c in conds:
        s = res[c]["summary"]
        lines.append(
            f"| {c} | "
            + " | ".join(
                _fmt(s[f"{key}.{site}"], digits) if f"{key}.{site}" in s else "—"
                for site in REGIME_SITES
            )
            + " |"
        )
    return lines


def _cell(cres: dict[str, Any], key: str, i: int, digits: int = 3) -> str:
    if key not in cres:
        return "—"
    return f"{cres[key]['mean'][i]:.{digits}f} ± {cres[key]['se'][i]:.{digits}f}"


def _verdict(d: dict[str, float], smaller: str, larger: str) -> str:
    """A paired difference in words: beyond two standard errors or not (no verdict from
    fewer than 3 seeds)."""
    if d["n"] < 3:
        return "fewer than 3 seeds, no verdict"
    if not np.isfinite(d["se"]) or abs(d["mean"]) <= 2 * d["se"]:
        return "no difference beyond two standard errors"
    return smaller if d["mean"] < 0 else larger


def _resolved(d: dict[str, float]) -> bool:
    return d["n"] >= 3 and np.isfinite(d["se"]) and abs(d["mean"]) > 2 * d["se"]


def _short(d: dict[str, float], sign: int) -> str:
    """yes / no (the opposite) / not resolved, for a paired difference whose sign ``sign``
    means yes."""
    if not _resolved(d):
        return "not resolved"
    return "yes" if np.sign(d["mean"]) == sign else "no, the opposite"


def _at_gain_1(cres: dict[str, Any]) -> str:
    i = int(np.argmin(np.abs(np.array(cres["gains"]) - 1.0)))
    return _cell(cres, "accuracy.global", i)


def _answer(part: str, res: dict[str, Any], cmp: dict[str, Any]) -> list[str]:
    """(d) for one task, read from the numbers."""
    base = res["gain 1"]["summary"]
    lines = [
        f"**{TASK_NAMES[part]}** ({base['accuracy_off_1.global']['n']} seeds; differences are "
        "paired by seed, gain-varied minus the same initial network trained at gain 1):",
        "",
        "- accuracy at gain 1 (how well each condition learned the task): "
        + "; ".join(f"{c} {_at_gain_1(res[c])}" for c in res)
        + ".",
    ]
    for cond, d in cmp.items():
        trained = TRAINED_SITES[cond]
        others = [s for s in REGIME_SITES if s not in trained and f"accuracy_off_1.{s}" in d]
        acc_t = [f"{s} {_fmt(d[f'accuracy_off_1.{s}'])}" for s in trained
                 if f"accuracy_off_1.{s}" in d]  # fmt: skip
        acc_o = [f"{s} {_fmt(d[f'accuracy_off_1.{s}'])}" for s in others]
        kept_t = [_short(d[f"accuracy_off_1.{s}"], 1) for s in trained
                  if f"accuracy_off_1.{s}" in d]  # fmt: skip
        kept_o = [_short(d[f"accuracy_off_1.{s}"], 1) for s in others]
        line = (
            f"- **{cond}** vs {'NM-RNN' if cond.startswith('NM') else 'gain 1'}: accuracy off "
            f"gain 1 at the trained site(s) {'; '.join(acc_t)} (kept better: "
            f"{', '.join(kept_t)})"
        )
        if acc_o:
            line += (f"; at the sites it was not trained at {'; '.join(acc_o)} (kept better: "
                     f"{', '.join(kept_o)})")  # fmt: skip
        sv = d.get("svcca_off_1.global")
        if sv is not None:
            line += (f". SVCCA distance to gain 1 (global gain) {_fmt(sv)}: "
                     + _verdict(sv, "trajectories change less with the gain",
                                "trajectories change more with the gain"))  # fmt: skip
        same = d.get("same_fixed_points.global")
        if same is not None:
            line += (f". Fraction of gains with gain 1's fixed points (global) {_fmt(same, 2)}: "
                     + _verdict(same, "the fixed points change more often",
                                "the fixed-point structure is kept more often"))  # fmt: skip
        bif = d.get("bifurcations")
        if bif is not None:
            line += f". Bifurcations in 0.5-2 along the global gain: {_fmt(bif, 1)}"
        lines.append(line + ".")
    nm = res.get("NM-RNN")
    if nm is not None:
        s = nm["summary"]
        lines.append(
            f"- NM-RNN trained at gain 1 under the global gain: accuracy off gain 1 "
            f"{_fmt(s['accuracy_off_1.global'])} (E/I RateRNN at gain 1: "
            f"{_fmt(base['accuracy_off_1.global'])}), SVCCA distance "
            f"{_fmt(s['svcca_off_1.global'])}, fraction of gains with gain 1's fixed points "
            f"{_fmt(s['same_fixed_points.global'], 2)}."
        )
    return lines


def _direction(d: dict[str, Any], keys: list[str], sign: int) -> str:
    """ "better" / "worse" / "mixed" / "not resolved": the paired differences at ``keys``
    beyond two standard errors, ``sign`` the direction that is better."""
    signs = {int(np.sign(d[k]["mean"])) for k in keys if k in d and _resolved(d[k])}
    if signs == {sign}:
        return "better"
    if signs == {-sign}:
        return "worse"
    return "mixed" if signs else "not resolved"


def mechanism(d: dict[str, Any], trained: tuple[str, ...]) -> str:
    """The seed's question for one gain-varied condition, from its paired differences ``d``
    against training at gain 1 at the ``trained`` sites: is the function kept better off
    gain 1, and do the dynamics then change less with the gain (SVCCA distance to gain 1
    smaller, gain 1's fixed points kept at more gains)?"""
    acc = _direction(d, [f"accuracy_off_1.{s}" for s in trained], 1)
    sv = _direction(d, [f"svcca_off_1.{s}" for s in trained], -1)
    fp = _direction(d, [f"same_fixed_points.{s}" for s in trained], 1)
    if "better" in (sv, fp) and "worse" not in (sv, fp):
        structure = "more invariant"
    elif "worse" in (sv, fp) and "better" not in (sv, fp):
        structure = "less invariant"
    else:
        structure = "not resolved"
    detail = f"(accuracy off gain 1: {acc}; SVCCA to gain 1: {sv}; fixed points kept: {fp})"
    if acc == "better" and structure == "more invariant":
        claims = (("its trajectories stay closer to gain 1's", sv),
                  ("it keeps gain 1's fixed points at more gains", fp))  # fmt: skip
        what = " and ".join(text for text, direction in claims if direction == "better")
        return (f"function kept better, and {what}: a step toward a gain-invariant solution "
                f"{detail}")  # fmt: skip
    if acc == "better":
        return ("function kept better off gain 1 without a more invariant attractor "
                f"structure (structure {structure}): the network works across gains through "
                f"dynamics that still change with the gain, i.e. different mechanisms per gain "
                f"{detail}")  # fmt: skip
    if acc == "worse":
        return f"function kept worse off gain 1 than after training at gain 1 {detail}"
    return ("neither: no resolved gain in function off gain 1 at this scale (a null result, "
            f"not evidence of equality); structure {structure} {detail}")  # fmt: skip


def _structure_answer(results: dict[str, Any], comparisons: dict[str, Any]) -> list[str]:
    """The seed's question, per task and gain-varied condition."""
    lines = []
    for part, cmp in comparisons.items():
        for cond, d in cmp.items():
            at_1 = d.get("accuracy_at_1")
            cost = f"; accuracy at gain 1 changed by {_fmt(at_1)}" if at_1 is not None else ""
            lines.append(f"- {TASK_NAMES[part]}, `{cond}` (trained at "
                         f"{', '.join(TRAINED_SITES[cond])}): {mechanism(d, TRAINED_SITES[cond])}"
                         f"{cost}.")  # fmt: skip
    return lines


def _list(items: list[str]) -> str:
    return ", ".join(f"`{c}`" for c in items) if items else "no condition"


def markdown(results: dict[str, Any], comparisons: dict[str, Any], paths: dict[str, str],
             meta: dict[str, Any]) -> str:  # fmt: skip
    """The report (docs/reproductions/gain.md)."""
    conds = meta["conditions"]
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
        "- Gain-varied training: the same initial network and updates, with a modulation "
        "drawn per trial (`fr.train.bptt(..., modulation=...)`):",
        f"  - `varied: global`: `{training_modulation('varied: global')!r}` (the global gain);",
        f"  - `varied: E/I pre`: `{training_modulation('varied: E/I pre')!r}`: the E cells' "
        "and the I cells' pre-synaptic gains (what each type sends), drawn independently;",
        f"  - `varied: E/I post`: `{training_modulation('varied: E/I post')!r}`: the same on "
        "the post-synaptic side (what each type receives).",
        f"- `NM-RNN`: `presets.costacurta2024('NMRNN', n={NM_SIZES['n']}, "
        f"rank={NM_SIZES['rank']}, n_mod={NM_SIZES['n_mod']})`, trained at gain 1 (Adam lr "
        f"{LR['NMRNN']:g}); "
        + (
            "`NM-RNN varied: global`: the same, the global gain varied as above; "
            if "NM-RNN varied: global" in conds
            else ""
        )
        + "the gain multiplies its recurrent weights `U diag(s) V^T / n_scale`.",
        f"- Evaluation over gains {', '.join(f'{g:g}' for g in meta['gains'])} on "
        f"{meta['eval_trials']} fresh trials (the same at every gain and site), with the gain "
        "at each site: `global` (the recurrent weights), `E pre`, `I pre` (one cell type's "
        "pre-synaptic gain, "
        "`net.cell_gains`), `E post`, `I post` (its post-synaptic gain); the others stay at 1. "
        "Measures: accuracy (`task.score`); SVCCA distance between the states "
        f"(every {SVCCA_STRIDE}th step of {SVCCA_TRIALS} trials) at the gain and at gain 1; at "
        f"the sites {', '.join(REGIME_SITES)}: the largest Lyapunov exponent at zero input "
        f"(1000 steps after 500, per tau) and the fixed points at zero input "
        f"(`fr.analysis.fixed_points`, {FP_STARTS} starts from the states) and how many are "
        "stable; bifurcations along the global gain (`fr.analysis.continuation`, u = 0). "
        "NM-RNN: accuracy, SVCCA and the fixed points of its joint state `[x, z]`.",
        "- A gain with one value at every neuron is the same at the pre- and the "
        "post-synaptic site as the global gain (`W diag(g 1) = diag(g 1) W = g W`; the tests "
        "check the runs agree), so `pre` and `post` were not evaluated separately; for the "
        "NM-RNN, which has no cell types, the global gain therefore stands for all three. "
        "Pre- and post-synaptic gains differ when they differ between neurons: here, between "
        "the cell types.",
        "- Mean ± standard error over the seeds (networks); differences paired by seed.",
        "",
        "## Conditions not run",
        "",
    ]
    lines += [f"- {item}" for item in meta["not_run"]]
    lines += ["", "## Results", ""]
    for part, res in results.items():
        lines += _results(part, res, paths)
    lines += ["## (d) What the data show", ""]
    for part, res in results.items():
        lines += _answer(part, res, comparisons[part]) + [""]
    lines += ["In short:", ""] + _structure_answer(results, comparisons) + [""]
    if len(results) == 2:
        a, b = list(results)
        cond = "varied: global"
        da, db = comparisons[a][cond], comparisons[b][cond]
        lines += [
            f"From the simpler task ({TASK_NAMES[a]}) to the harder timing task "
            f"({TASK_NAMES[b]}), global gain-varied training changes accuracy off gain 1 by "
            f"{_fmt(da['accuracy_off_1.global'])} and {_fmt(db['accuracy_off_1.global'])}, the "
            f"SVCCA distance to gain 1 by {_fmt(da['svcca_off_1.global'])} and "
            f"{_fmt(db['svcca_off_1.global'])}. Where a line above says no difference beyond "
            "two standard errors (or not resolved), this run cannot tell the training "
            "conditions apart at its scale (a null result, not evidence of equality).",
            "",
        ]
    lines += ["## The full run", "", f"`{meta['full_command']}`: n = {N}, {ITERS} updates per "
              f"network, {SEEDS} seeds per condition, {GAINS_FULL} gains.", ""]  # fmt: skip
    return "\n".join(lines)


def _results(part: str, res: dict[str, Any], paths: dict[str, str]) -> list[str]:
    conds = list(res)
    rate = [c for c in conds if c in RATE_CONDITIONS]
    gains = res["gain 1"]["gains"]
    lines = [f"### {TASK_NAMES[part]}", "", f"![{part}]({paths[part]})", "",
             "Accuracy under the global gain:", "",
             "| gain | " + " | ".join(conds) + " |", "|---" * (1 + len(conds)) + "|"]  # fmt: skip
    for i, g in enumerate(gains):
        lines.append(f"| {g:g} | " + " | ".join(_cell(res[c], "accuracy.global", i)
                                               for c in conds) + " |")  # fmt: skip
    lines += ["", "SVCCA distance to the states at gain 1 (global gain):", "",
              "| gain | " + " | ".join(conds) + " |", "|---" * (1 + len(conds)) + "|"]  # fmt: skip
    for i, g in enumerate(gains):
        lines.append(f"| {g:g} | " + " | ".join(_cell(res[c], "svcca.global", i)
                                               for c in conds) + " |")  # fmt: skip
    lines += ["", "Regime under the global gain, at zero input: largest exponent (mean ± SE); "
              "fixed points / stable ones (means over seeds); the autonomous activity "
              "(`fr.analysis.gain_sweep`: networks at a fixed point FP, on a limit cycle LC, "
              "chaotic CH, marginal M):", "",
              "| gain | " + " | ".join(f"exponent ({c}) | fixed / stable, activity ({c})"
                                     for c in rate)
              + (" | fixed / stable (NM-RNN)" if "NM-RNN" in res else "") + " |",
              "|---" * (1 + 2 * len(rate) + ("NM-RNN" in res)) + "|"]  # fmt: skip
    for i, g in enumerate(gains):
        cells = []
        for c in rate:
            cells.append(_cell(res[c], "exponent.global", i))
            cells.append(f"{res[c]['fixed.global']['mean'][i]:.1f} / "
                         f"{res[c]['stable.global']['mean'][i]:.1f}, "
                         + _labels(res[c], "regime.global", i))  # fmt: skip
        if "NM-RNN" in res:
            cells.append(f"{res['NM-RNN']['fixed.global']['mean'][i]:.1f} / "
                         f"{res['NM-RNN']['stable.global']['mean'][i]:.1f}")  # fmt: skip
        lines.append(f"| {g:g} | " + " | ".join(cells) + " |")
    lines += ["", f"![{part} sites]({paths[f'{part}_sites']})",
              *_site_table(res, conds, "accuracy_off_1", 3,
                           "Accuracy averaged over the gains other than 1, by where the gain "
                           "acts (mean ± SE over seeds):"),
              *_site_table(res, conds, "same_fixed_points", 2,
                           "Fraction of the gains other than 1 at which the fixed points at "
                           "u = 0 (number, number stable) are those at gain 1, by site:"),
              *_site_table(res, rate, "not_fixed", 2,
                           "Fraction of the gains at which the autonomous activity at zero "
                           "input is a limit cycle or chaos (not a fixed point), by site:"),
              ]  # fmt: skip
    lines += ["", "Bifurcations found by continuation along the global gain (kind at gain), "
              "per seed:", ""]  # fmt: skip
    for c in rate:
        per_seed = [", ".join(f"{k} {g:.2f}" for k, g in b) or "none"
                    for b in res[c]["bifurcations"]]  # fmt: skip
        lines.append(f"- {c}: " + "; ".join(f"seed {s}: {p}" for s, p in
                                             zip(res[c]["seeds"], per_seed)))  # fmt: skip
    lines += ["", "Continuation of the network of each RateRNN condition with the most "
              "bifurcations (solid: stable, dashed: unstable):", "",
              f"![{part} continuation]({paths[f'{part}_continuation']})", "",
              "Final training loss: " + "; ".join(
                  f"{c} {_fmt(res[c]['final_loss'], 4)}" for c in conds) + ".", ""]  # fmt: skip
    return lines


def not_run(nmrnn_gains: bool) -> list[str]:
    """The study's conditions this run did not cover, with the reason."""
    items = []
    if not nmrnn_gains:
        items.append(
            "`NM-RNN varied: global` (an NM-RNN trained with the gain varied): the flexrnn "
            "this report ran with has an `NMRNN.run` that takes no `gain` / `pre_gain` / "
            "`post_gain`, so `bptt` cannot train one under modulation. The "
            "NM-RNNs trained at gain 1 are evaluated under the global gain by scaling `V` on a "
            "copy (exact for a gain with one value at every neuron, so also for `pre` and "
            "`post`)."
        )
    items.append(
        "Largest Lyapunov exponent and continuation of the NM-RNNs: those analyses take a "
        "RateRNN or LowRankRNN (an NM-RNN's recurrence depends on its modulator's state); "
        "the NM-RNNs have accuracy, SVCCA distance and the fixed points of `[x, z]`."
    )
    items.append(
        "Continuation along a per-site gain (pre, post, E, I): `fr.analysis.continuation` "
        "follows the global gain; the per-site regime is the exponent and the fixed points "
        "at each gain."
    )
    return items
