"""`flexrnn reproduce gain`: does a network trained under gain modulation keep its function,
and its attractor structure, across gains? Written up in docs/reproductions/gain.md (the
figures and the text: :mod:`flexrnn.experiments.gain_markdown`).

For each task (``context_integration``: ContextIntegration(2); ``measure_wait_go``:
MeasureWaitGo(channels=3)) and seed, the networks of the conditions are trained by
``fr.train.bptt`` (runs of ``flexrnn.sweep`` through
:class:`~flexrnn.experiments._runs.Populations`):

- ``gain 1``: an E/I RateRNN (Dale's law, 80 % excitatory) trained at gain 1;
- ``varied: global``: the same initial network, the global gain drawn per trial from
  ``fr.modulation.log_uniform(0.5, 2)``;
- ``varied: E/I pre``: the pre-synaptic gains of the E and of the I cells drawn per trial,
  independently, from that distribution (``fr.modulation.cell_types(..., site="pre")``);
- ``varied: E/I post``: the same on the post-synaptic side (what each type receives);
- ``NM-RNN``: an NM-RNN (the study's preset) trained at gain 1;
- ``NM-RNN varied: global``: the same NM-RNN trained with the global gain varied, when
  ``NMRNN.run`` takes a gain (:func:`nmrnn_takes_gains`; else not run, and the report says
  so).

Each network is evaluated over gains 0.5-2 at every site of :data:`SITES` (global, E pre,
I pre, E post, I post; an NM-RNN has no cell types: global): accuracy and the SVCCA distance
between its states at each gain and at gain 1 on the same trials, the largest Lyapunov
exponent and the fixed points at zero input with their stability; the
bifurcations of the fixed points along the global gain (``fr.analysis.continuation``). An
NM-RNN's fixed points are those of its joint state ``[x, z]`` (``fr.analysis.fixed_points``);
its largest exponent and continuation are not computed (the analyses take rate networks).

A gain with one value at every neuron is the same at the pre- and post-synaptic site and
globally (``W diag(g 1) = diag(g 1) W = g W``), so those sites are not evaluated again;
pre- and post-synaptic gains differ when they differ between neurons, here between the cell
types.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np

import flexrnn
from flexrnn import analysis, modulation, tasks
from flexrnn._io import atomic_write_json, atomic_write_text
from flexrnn.experiments._runs import Populations
from flexrnn.experiments.training import _cpu_name, _say
from flexrnn.presets import costacurta2024
from flexrnn.train import bptt

PARTS = ("context_integration", "measure_wait_go")
TASK_NAMES = {"context_integration": "ContextIntegration(2)",
              "measure_wait_go": "MeasureWaitGo(channels=3)"}  # fmt: skip
RATE_CONDITIONS = ("gain 1", "varied: global", "varied: E/I pre", "varied: E/I post")
NM_CONDITIONS = ("NM-RNN", "NM-RNN varied: global")
CONDITIONS = RATE_CONDITIONS + NM_CONDITIONS
# where an evaluation gain acts: site name -> fr.modulation target
SITE_TARGETS = {"global": "gain", "pre": "pre", "post": "post", "E pre": "pre:E",
                "I pre": "pre:I", "E post": "post:E", "I post": "post:I"}  # fmt: skip
# the sites evaluated: "pre" and "post" with one value at every neuron are the global gain
# (W diag(g 1) = diag(g 1) W = g W; checked in the tests), so they are not run again
SITES = ("global", "E pre", "I pre", "E post", "I post")
NM_SITES = ("global",)  # an NM-RNN has no cell types
REGIME_SITES = SITES  # the regime (exponent, fixed points) too
TRAIN_LOW, TRAIN_HIGH = 0.5, 2.0

# the full protocol; `scale` multiplies ITERS
N, DALE, TAU, BATCH, ITERS = 50, 0.8, 10.0, 32, 2000
LR = {"RateRNN": 3e-3, "NMRNN": 1e-2}
NM_SIZES = {"n": 50, "rank": 3, "n_mod": 5}
SEEDS, GAINS_FULL = 10, 13
EVAL_TRIALS = 64  # test trials per network (the same at every gain and site)
SVCCA_TRIALS, SVCCA_STRIDE = 32, 5  # the states compared: these trials, every 5th step
FP_STARTS = 24  # fixed-point searches per gain and site, from the run's states
QUICK = {"iters": 30, "seeds": 2, "gains": 4, "eval_trials": 32}


def training_modulation(condition: str) -> Any:
    """The Modulation a condition trains under (None: gain 1)."""
    log_uniform = modulation.log_uniform(TRAIN_LOW, TRAIN_HIGH)
    if condition in ("varied: global", "NM-RNN varied: global"):
        return log_uniform
    if condition in ("varied: E/I pre", "varied: E/I post"):
        site = condition.rsplit(" ", 1)[1]
        return modulation.cell_types(E=log_uniform, I=log_uniform, site=site)
    if condition in ("gain 1", "NM-RNN"):
        return None
    raise ValueError(f"condition: expected one of {', '.join(CONDITIONS)}, got {condition!r}")


def make_task(name: str) -> Any:
    """The task of a part: ContextIntegration(2) or MeasureWaitGo(channels=3)."""
    if name == "context_integration":
        return tasks.ContextIntegration(2)
    if name == "measure_wait_go":
        return tasks.MeasureWaitGo(channels=3)
    raise ValueError(f"name: expected one of {', '.join(PARTS)}, got {name!r}")


def make_network(condition: str, task: Any, seed: int) -> Any:
    """The untrained network of a condition: an E/I RateRNN (every RateRNN condition starts
    from the same one) or the NM-RNN preset (both NM-RNN conditions start from the same)."""
    if condition in NM_CONDITIONS:
        return costacurta2024("NMRNN", n_in=task.n_in, n_out=task.n_out, seed=seed, **NM_SIZES)
    if condition not in RATE_CONDITIONS:
        raise ValueError(f"condition: expected one of {', '.join(CONDITIONS)}, got {condition!r}")
    return flexrnn.RateRNN.random(N, task.n_in, task.n_out, g=1.0, tau=TAU, dt=1.0, seed=seed,
                                  dale=DALE)  # fmt: skip


def site_gains_supported(net: Any) -> bool:
    """Whether ``net.run`` takes per-neuron ``pre_gain`` and ``post_gain``."""
    params = inspect.signature(net.run).parameters
    return "pre_gain" in params and "post_gain" in params


def nmrnn_takes_gains(net: Any) -> bool:
    """Whether an NM-RNN's ``run`` takes ``gain``, ``pre_gain`` and ``post_gain`` (then it is
    trained under modulation and evaluated with them; else through :func:`nmrnn_at_gain`)."""
    return "gain" in inspect.signature(net.run).parameters and site_gains_supported(net)


def nmrnn_at_gain(net: Any, g: float) -> Any:
    """A copy of an NM-RNN whose recurrent weights ``U diag(s) V^T / n_scale`` are scaled by
    ``g`` (``V`` scaled): the global gain, and a pre- or post-synaptic gain of one value at
    every neuron."""
    out = net.copy()
    out.V[...] = net.V * g
    return out


def site_run(net: Any, site: str, g: float, u: np.ndarray) -> Any:
    """``net``'s run of inputs ``u`` (T, B, n_in) with gain ``g`` at ``site`` (a key of
    ``SITE_TARGETS``)."""
    if site not in SITE_TARGETS:
        raise ValueError(f"site: expected one of {', '.join(SITE_TARGETS)}, got {site!r}")
    if getattr(net, "has_modulator", False) and not nmrnn_takes_gains(net):
        if site not in ("global", "pre", "post"):
            raise ValueError(f"site: an NM-RNN has the sites global, pre, post; got {site!r}")
        return nmrnn_at_gain(net, g).run(u)
    return net.run(u, **modulation.site_gains(net, SITE_TARGETS[site], g, "site"))


def _vector_gains(net: Any, site: str, g: float) -> dict[str, Any]:
    """The keywords of the dynamics analyses (fixed points, Lyapunov) for gain g at site:
    ``gain`` (a float) or an (n,) ``pre_gain`` / ``post_gain``."""
    return modulation.site_gains(net, SITE_TARGETS[site], float(g), "site")


def _states(x: np.ndarray) -> np.ndarray:
    """(samples, n): every SVCCA_STRIDE-th step of the first SVCCA_TRIALS trials."""
    return np.asarray(x[::SVCCA_STRIDE, :SVCCA_TRIALS]).reshape(-1, x.shape[-1])


def _svcca_distance(base: np.ndarray, x: np.ndarray) -> float:
    """SVCCA distance to gain 1's states; 1 (nothing in common) when the states at the gain
    carry no variance (the network fell silent) or are not finite (it diverged)."""
    states = _states(x)
    if not np.isfinite(states).all() or np.ptp(states, axis=0).max() == 0.0:
        return 1.0
    return float(analysis.svcca(base, states).distance)


def _regimes(net: Any, site: str, gains: list[float], seed: int) -> list[Any]:
    """The autonomous regime at zero input (``fr.analysis.gain_sweep``: largest exponent,
    label "fixed point", "limit cycle", "chaos", ...) at each gain at ``site``."""
    if site == "global":
        sweep = analysis.gain_sweep(net, np.array(gains), seed=seed)
        return [sweep[i] for i in range(len(gains))]
    return [analysis.gain_sweep(net, [1.0], seed=seed, **_vector_gains(net, site, g))[0]
            for g in gains]  # fmt: skip


def gain_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One network of the study (a ``flexrnn.sweep`` run): train it, then evaluate it over
    ``config["gains"]`` at every site.

    config : {"task", "condition", "iters", "gains", "eval_trials"}; seed : the network's and
    the training's seed. Returns per-gain lists keyed ``"<measure>.<site>"`` (accuracy,
    svcca, and at the regime sites exponent (RateRNN), fixed, stable), the bifurcations of the
    continuation (RateRNN), times, and the trained network (kept as ``net``)."""
    task = make_task(config["task"])
    condition = config["condition"]
    net = make_network(condition, task, seed)
    nm = condition in NM_CONDITIONS
    kind = "NMRNN" if nm else "RateRNN"
    t0 = time.perf_counter()
    hist = bptt(net, task, iters=config["iters"], batch_size=BATCH, lr=LR[kind], clip_norm=1.0,
                val_every=None, progress=False, seed=seed,
                modulation=training_modulation(condition))  # fmt: skip
    train_s = time.perf_counter() - t0
    gains = [float(g) for g in config["gains"]]
    one = int(np.argmin(np.abs(np.array(gains) - 1.0)))
    trials = task.batch(config["eval_trials"], np.random.default_rng([seed, 1]), dtype=net.dtype)
    zero = np.zeros(task.n_in)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"updates": len(hist), "final_loss": float(hist.loss[-1])}
    for site in NM_SITES if nm else SITES:
        outs = [site_run(net, site, g, trials.u) for g in gains]
        result[f"accuracy.{site}"] = [float(task.score(o.y, trials)) for o in outs]
        base = _states(outs[one].x)
        result[f"svcca.{site}"] = [_svcca_distance(base, o.x) for o in outs]
        if site not in REGIME_SITES:
            continue
        fixed, stable = [], []
        for g, out in zip(gains, outs):
            if nm:
                fp = analysis.fixed_points(nmrnn_at_gain(net, g), zero, n_init=FP_STARTS,
                                           seed=seed)  # fmt: skip
            else:
                fp = analysis.fixed_points(net, zero, n_init=FP_STARTS, states=out.x[::25],
                                           seed=seed, **_vector_gains(net, site, g))  # fmt: skip
            fixed.append(int(fp.fixed.sum()))
            stable.append(int((fp.fixed & fp.stable).sum()))
        result[f"fixed.{site}"], result[f"stable.{site}"] = fixed, stable
        if not nm:
            regimes = _regimes(net, site, gains, seed)
            result[f"exponent.{site}"] = [float(r.largest_exponent) for r in regimes]
            result[f"regime.{site}"] = [str(r.label) for r in regimes]
    if not nm:
        cont = analysis.continuation(net, np.array(gains), zero, seed=seed, chaos=False)
        result["bifurcations"] = [[b.kind, float(b.gain)] for b in cont.bifurcations]
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


def _per_gain_keys(row: dict[str, Any]) -> list[str]:
    measures = ("accuracy", "svcca", "exponent", "fixed", "stable")
    return [k for k in row if k.split(".", 1)[0] in measures]


def _label_keys(row: dict[str, Any]) -> list[str]:
    return [k for k in row if k.startswith("regime.")]


def _per_network(rows: list[dict[str, Any]], gains: list[float]) -> dict[str, list[float]]:
    """Per network: the accuracy at gain 1 (``accuracy_at_1``); per site, the mean accuracy
    and SVCCA distance over the gains other than 1 (``accuracy_off_1.<site>``,
    ``svcca_off_1.<site>``), the fraction of those gains whose
    fixed points (count, stable count) are gain 1's (``same_fixed_points.<site>``), and the
    number of bifurcations along the global gain; the fraction of all gains at which the
    autonomous activity is a limit cycle or chaos (``not_fixed.<site>``)."""
    off = [i for i, g in enumerate(gains) if abs(g - 1.0) > 1e-9]
    one = int(np.argmin(np.abs(np.array(gains) - 1.0)))
    out: dict[str, list[float]] = {}
    for r in rows:
        for key in _per_gain_keys(r) + _label_keys(r):
            measure, site = key.split(".", 1)
            if measure in ("accuracy", "svcca"):
                value = float(np.mean(np.array(r[key])[off]))
                out.setdefault(f"{measure}_off_1.{site}", []).append(value)
                if measure == "accuracy" and site == "global":
                    out.setdefault("accuracy_at_1", []).append(float(r[key][one]))
            elif measure == "regime":
                moving = [label in ("limit cycle", "chaos") for label in r[key]]
                out.setdefault(f"not_fixed.{site}", []).append(float(np.mean(moving)))
            elif measure == "fixed":
                fixed, stable = r[key], r[f"stable.{site}"]
                same = [fixed[i] == fixed[one] and stable[i] == stable[one] for i in off]
                out.setdefault(f"same_fixed_points.{site}", []).append(float(np.mean(same)))
        if "bifurcations" in r:
            out.setdefault("bifurcations", []).append(float(len(r["bifurcations"])))
    return out


def summarise(rows: list[dict[str, Any]], gains: list[float]) -> dict[str, Any]:
    """A condition's results: per-gain means and SEs over the seeds, per-network numbers."""
    res: dict[str, Any] = {"seeds": [int(r["seed"]) for r in rows], "gains": gains}
    for key in _per_gain_keys(rows[0]):
        mean, se = _mean_se(rows, key)
        res[key] = {"mean": mean.tolist(), "se": se.tolist()}
    for key in [k for k in rows[0] if k.startswith("regime.")]:
        labels = np.array([r[key] for r in rows])  # (seeds, G)
        res[key] = {label: np.mean(labels == label, axis=0).tolist()
                    for label in analysis.regimes.LABELS if np.any(labels == label)}  # fmt: skip
    per = _per_network(rows, gains)
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


BASELINES = {"varied: global": "gain 1", "varied: E/I pre": "gain 1",
             "varied: E/I post": "gain 1", "NM-RNN varied: global": "NM-RNN"}  # fmt: skip


def compare(results: dict[str, Any]) -> dict[str, Any]:
    """Each gain-varied condition minus its gain-1 baseline (``BASELINES``), paired by seed,
    for every per-network number they share: {condition: {key: mean, se, n}}."""
    out = {}
    for cond, base in BASELINES.items():
        if cond in results and base in results:
            a, b = results[base]["per_network"], results[cond]["per_network"]
            out[cond] = {k: _paired(a[k], b[k]) for k in a if k in b}
    return out


# ---------------------------------------------------------------------------------------------
# The report


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
    from flexrnn.experiments.gain_markdown import figures, markdown, not_run

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
    gains = [float(g) for g in np.round(np.linspace(TRAIN_LOW, TRAIN_HIGH, G), 4)]
    if 1.0 not in gains:
        gains = sorted(gains + [1.0])
    eval_trials = QUICK["eval_trials"] if quick else EVAL_TRIALS
    folder = Path(out) / "reproductions"
    command = f"flexrnn reproduce gain --out {out}"
    command += (" --quick" if quick else "") + (f" --scale {scale:g}" if scale else "")
    command += f" --seeds {seeds}" if seeds else ""
    command += f" --seed {seed}" if seed else ""
    probe = make_network("NM-RNN", make_task(parts[0]), seed)
    nm_modulated = nmrnn_takes_gains(probe)
    conditions = [c for c in CONDITIONS if nm_modulated or c != "NM-RNN varied: global"]
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
        "conditions": conditions,
        "nmrnn_gains": nm_modulated,
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
    with Populations("gain", workers, scheduler, runs, progress) as pop:
        meta.update(pop.describe())
        configs = [{"task": p, "condition": c, "iters": iters, "gains": gains,
                    "eval_trials": eval_trials} for p in parts for c in conditions]  # fmt: skip
        say(f"[gain] {len(configs)} conditions x {n_seeds} seeds, {iters} updates each")
        rows = pop.run(gain_run, configs, seed_list)
        meta["runs"] = len(rows)
        meta["run_seconds"] = float(sum(r["wall_time"] for r in rows))
        for p in parts:
            results[p] = {}
            for c in conditions:
                mine = sorted((r for r in rows if r["task"] == p and r["condition"] == c),
                              key=lambda r: r["seed"])  # fmt: skip
                results[p][c] = summarise(mine, gains)
                if c in RATE_CONDITIONS:
                    # the diagram shows the network with the most bifurcations (first if tied)
                    pick = max(mine, key=lambda r: len(r["bifurcations"]))
                    nets[(p, c)] = (int(pick["seed"]), pick["kept"]["net"])
                acc = results[p][c]["summary"]["accuracy_off_1.global"]
                say(f"  {p} / {c}: accuracy off gain 1 {acc['mean']:.3f} ± {acc['se']:.3f}")
        meta["wall_s"] = time.perf_counter() - t_all
        meta["not_run"] = not_run(nm_modulated)
        comparisons = {p: compare(results[p]) for p in parts}
        folder.mkdir(parents=True, exist_ok=True)
        paths = figures(folder, results, nets)
    atomic_write_text(folder / "gain.md", markdown(results, comparisons, paths, meta) + "\n")
    atomic_write_json(folder / "gain.json",
                      {"meta": meta, "results": results, "comparisons": comparisons})  # fmt: skip
    say(f"wrote {folder / 'gain.md'} ({meta['wall_s']:.0f} s)")
    return {"meta": meta, "results": results, "comparisons": comparisons}
