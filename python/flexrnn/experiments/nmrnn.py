"""`flexrnn reproduce nmrnn`: the NM-RNN study (Costacurta et al., NeurIPS 2024), written up in
docs/reproductions/nmrnn.md.

Parts, each several seeds of calls of the public API (``fr.presets.costacurta2024`` models,
``fr.train.staged`` / ``fr.train.bptt`` with the study's optimiser), at ``scale`` times the
study's numbers of updates (1: the full protocol, hours on one core):

- ``mwg``: measure-wait-go (3 input channels), parameter-matched NM-RNN, low-rank, vanilla
  and LSTM networks; losses on the training intervals and on shorter and longer ones; the
  NM-RNN's gains s(t) and the ablation of each of their components;
- ``element_finder``: five NM-RNN shapes of about 500 parameters against a 10-unit LSTM;
- ``multitask``: Delay Pro/Anti and Memory Pro trained, Memory Anti held out and learned by
  retraining only the input weights of its context channel;
- ``rank1``: a trained rank-1 NM-RNN's s(t) against the closed form of the linear theory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import flexrnn
from flexrnn import tasks
from flexrnn._io import atomic_write_json, atomic_write_text
from flexrnn.experiments._runs import Populations
from flexrnn.experiments.nmrnn_theory import rank1_gain
from flexrnn.experiments.training import _cpu_name, _say
from flexrnn.presets import costacurta2024, costacurta2024_trainable, parameter_count
from flexrnn.train import Adam, KeepLowestLoss, Stage, bptt, staged, task_loss

PARTS = ("mwg", "element_finder", "multitask", "rank1")

# --- measure-wait-go: the parameter-matched networks and the study's protocol ---------------
MWG_MODELS = {  # label -> (preset model, sizes)
    "NM-RNN": ("NMRNN", {"n": 100, "rank": 3, "n_mod": 5}),
    "LR-RNN": ("LowRankRNN", {"n": 106, "rank": 3}),
    "vanilla": ("RateRNN", {"n": 30}),
    "LSTM": ("LSTM", {"n": 14}),
}
# (updates, lr) of the study; the NM-RNN's three stages: low-rank, modulator, joint
MWG_PROTOCOL = {
    "NM-RNN": [("low-rank", 10_000, 1e-2), ("modulator", 10_000, 1e-2), ("joint", 50_000, 1e-2)],
    "LR-RNN": [("all", 70_000, 1e-2)],
    "vanilla": [("all", 50_000, 1e-3)],
    "LSTM": [("all", 50_000, 1e-2)],
}
LOW_RANK_PART = ["U", "V", "B_x", "C"]
MODULATOR_PART = ["W_z", "B_z", "A_z", "c_z"]
WEIGHT_DECAY, CLIP = 1e-4, 1.0  # AdamW after element-wise clipping at 1 (optax.clip(1.0))
SHORT, LONG = (4, 6, 8, 10), (20, 22, 24, 26)  # test intervals outside the trained 12-18

# --- element finder ----------------------------------------------------------------------------
EF_SHAPES = [(5, 18, 8), (5, 13, 12), (10, 14, 5), (10, 12, 7), (15, 6, 5)]  # (n_mod, N, rank)
EF_LSTM = 10
EF_STEPS, EF_LR, EF_BATCH, EF_EPS = 20_000, 1e-2, 128, 1e-7  # Adam, no clipping
EF_SETUP = "element_finder"  # the study's element-finder initialisation

# --- multitask -------------------------------------------------------------------------------
MT_TRAINED = ("DelayPro", "DelayAnti", "MemoryPro")
MT_HELD_OUT = "MemoryAnti"
MT_CONTEXT = [3, 4, 5, 6]  # input columns of the one-hot rule; 6 is Memory Anti's
MT_MODELS = {  # about 1.4k-1.6k trained parameters each
    "NM-RNN": ("NMRNN", {"n": 100, "rank": 4, "n_mod": 5}),
    "LR-RNN": ("LowRankRNN", {"n": 82, "rank": 4}),
    "LSTM": ("LSTM", {"n": 15}),
}
MT_TRIALS, MT_STEPS, MT_LR = 300, 100_000, 1e-3
MT_RETRAIN_TRIALS, MT_RETRAIN_STEPS, MT_RETRAIN_LR = 100, 50_000, 1e-2
MT_TEST_TRIALS = 300


def _steps(n: int, scale: float) -> int:
    return max(1, round(n * scale))


def _sem(values: Any) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    sem = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return {"mean": float(v.mean()), "sem": sem, "n": int(v.size), "values": v.tolist()}


def _mse(y: np.ndarray, trials: Any, pick: np.ndarray | None = None) -> float:
    """MSE over every step of the chosen trials (the timing task's mask is all ones)."""
    if pick is None:
        pick = np.arange(y.shape[1])
    return float(np.mean((y[:, pick] - trials.target[:, pick]) ** 2))


def _val_every(scale: float) -> int:
    return max(1, round(500 * scale))  # the best parameters: checked every 500 study updates


# ---------------------------------------------------------------------------------------------
# Measure-wait-go


def mwg_network(label: str, seed: int) -> Any:
    kind, sizes = MWG_MODELS[label]
    return costacurta2024(kind, n_in=3, n_out=1, seed=seed, **sizes)


def mwg_stages(label: str, net: Any, scale: float) -> list[Stage]:
    trained = costacurta2024_trainable(net)
    parts = {"low-rank": LOW_RANK_PART, "modulator": MODULATOR_PART}
    return [
        Stage(parts.get(name, trained), _steps(iters, scale), lr, name=name)
        for name, iters, lr in MWG_PROTOCOL[label]
    ]


def mwg_run(label: str, seed: int, scale: float, progress: bool) -> tuple[dict, dict]:
    """Train one MWG network by the study's protocol; its losses, accuracies, time."""
    task = tasks.MeasureWaitGo()
    train = task.training_set()
    test = task.test_set()
    net = mwg_network(label, seed)
    stages = mwg_stages(label, net, scale)
    t0 = time.perf_counter()
    result = staged(net, tasks.FixedTrials(task, train), stages, batch_size=train.batch_size,
                    optimizer="adamw", weight_decay=WEIGHT_DECAY, clip_value=CLIP,
                    val_every=_val_every(scale), progress=progress, seed=seed)  # fmt: skip
    seconds = time.perf_counter() - t0
    y_train, y_test = net.run(train.u).y, net.run(test.u).y
    interval = test.info["interval"]
    trained_range = np.flatnonzero((interval >= 12) & (interval <= 18))
    summary = {
        "seconds": seconds,
        "updates": int(sum(s.iters for s in stages)),
        "train_mse": _mse(y_train, train),
        "test_trained_mse": _mse(y_test, test, trained_range),
        "short_mse": _mse(y_test, test, np.flatnonzero(np.isin(interval, SHORT))),
        "long_mse": _mse(y_test, test, np.flatnonzero(np.isin(interval, LONG))),
        "per_interval_mse": [_mse(y_test, test, np.array([b])) for b in range(interval.size)],
        "train_accuracy": float(task.score(y_train, train)),
        "test_accuracy": float(task.score(y_test, test)),
        "parameters": parameter_count(net, costacurta2024_trainable(net)),
    }
    extra = {
        "loss": result.loss,
        "y_test": y_test,
        "stage_ends": np.cumsum([s.iters for s in stages]),
    }
    if label == "NM-RNN":
        run = net.run(test.u)
        extra["s"] = run.s
        summary["ablation"] = {}
        extra["ablated_y"] = []
        for k in range(net.rank):
            y_ab = net.run(test.u, ablate=[k]).y
            y_ab_train = net.run(train.u, ablate=[k]).y
            summary["ablation"][str(k)] = {
                "train_mse": _mse(y_ab_train, train),
                "test_mse": _mse(y_ab, test),
                "train_accuracy": float(task.score(y_ab_train, train)),
                "s_mean_during_ramp": _ramp_mean(run.s[:, :, k], test),
                "s_mean_before_go": _before_go_mean(run.s[:, :, k], test),
            }
            extra["ablated_y"].append(y_ab)
    return summary, extra


def _ramp_mean(s: np.ndarray, trials: Any) -> float:
    t = np.arange(s.shape[0])[:, None]
    t_go, interval = trials.info["t_go"], trials.info["interval"]
    ramp = (t >= t_go) & (t < t_go + interval)
    return float(s[ramp].mean())


def _before_go_mean(s: np.ndarray, trials: Any) -> float:
    t = np.arange(s.shape[0])[:, None]
    return float(s[t < trials.info["t_go"]].mean())


# ---------------------------------------------------------------------------------------------
# Element finder


def ef_network(shape: tuple[int, int, int] | None, seed: int) -> Any:
    if shape is None:
        return costacurta2024("LSTM", n=EF_LSTM, n_in=1, n_out=1, setup=EF_SETUP, seed=seed)
    n_mod, n, rank = shape
    return costacurta2024("NMRNN", n=n, rank=rank, n_mod=n_mod, n_in=1, n_out=1, tau_x=2.0,
                          tau_z=10.0, setup=EF_SETUP, seed=seed)  # fmt: skip


def ef_run(shape: tuple[int, int, int] | None, seed: int, scale: float, progress: bool):
    """One element-finder network by the study's element-finder code: its initialisation,
    Adam (eps 1e-7, no clipping), fresh batches of 128, and the parameters of the update with
    the lowest batch loss kept (``fr.train.KeepLowestLoss``); tested on 2000 fresh trials."""
    task = tasks.ElementFinder()
    net = ef_network(shape, seed)
    trained = costacurta2024_trainable(net, setup=EF_SETUP)  # b_z and W_zx for the NM-RNNs
    best = KeepLowestLoss()
    t0 = time.perf_counter()
    hist = bptt(net, task, iters=_steps(EF_STEPS, scale), batch_size=EF_BATCH,
                optimizer=Adam(EF_LR, eps=EF_EPS), trainable=trained, val_every=None,
                progress=progress, seed=seed, callback=best)  # fmt: skip
    seconds = time.perf_counter() - t0
    test = task.batch(2000, np.random.default_rng([seed, 7]))
    y_last = net.run(test.u).y
    best.restore(net)
    y = net.run(test.u).y
    return {
        "seconds": seconds,
        "updates": len(hist),
        "best_update": best.update,
        "test_mse": task_loss(y, test),
        "test_accuracy": float(task.score(y, test)),
        "test_mse_last": task_loss(y_last, test),
        "parameters": parameter_count(net, trained),
    }, {"loss": hist.loss}


# ---------------------------------------------------------------------------------------------
# MultiTask


def mt_network(label: str, seed: int) -> Any:
    kind, sizes = MT_MODELS[label]
    net = costacurta2024(kind, n_in=7, n_out=3, seed=seed, **sizes)
    if label == "NM-RNN":
        net.B_x[:, MT_CONTEXT] = 0.0  # the rule reaches the modulator only
    return net


def _input_weights(label: str) -> str:
    return {"NM-RNN": "B_z", "LR-RNN": "W_in", "LSTM": "W_ih"}[label]


def mt_run(label: str, seed: int, scale: float, progress: bool) -> tuple[dict, dict]:
    trained_task = tasks.MultiTask(MT_TRAINED, convention="study")
    held_task = tasks.MultiTask((MT_HELD_OUT,), convention="study")
    train = trained_task.batch(MT_TRIALS, np.random.default_rng([seed, 11]))
    net = mt_network(label, seed)
    trainable = costacurta2024_trainable(net)
    freeze = {"B_x": MT_CONTEXT} if label == "NM-RNN" else None
    t0 = time.perf_counter()
    first = staged(net, tasks.FixedTrials(trained_task, train),
                   [Stage(trainable, _steps(MT_STEPS, scale), MT_LR, freeze=freeze, name="tasks")],
                   batch_size=MT_TRIALS, optimizer="adamw", weight_decay=WEIGHT_DECAY,
                   clip_value=CLIP, val_every=_val_every(scale), progress=progress,
                   seed=seed)  # fmt: skip
    test = trained_task.batch(MT_TEST_TRIALS, np.random.default_rng([seed, 12]))
    y = net.run(test.u).y
    correct_trained = float(trained_task.score(y, test))
    correct_trained_atan2 = float(_atan2(trained_task).score(y, test))

    # retrain for the held-out task: only the input weights of its rule channel
    weights = _input_weights(label)
    getattr(net, weights)[:, MT_CONTEXT[-1]] = 0.1  # the study's new column: 0.1 everywhere
    held_train = held_task.batch(MT_RETRAIN_TRIALS, np.random.default_rng([seed, 13]))
    held_test = held_task.batch(MT_TEST_TRIALS, np.random.default_rng([seed, 14]))
    before = float(held_task.score(net.run(held_test.u).y, held_test))
    n_cols = getattr(net, weights).shape[1]
    others = [c for c in range(n_cols) if c != MT_CONTEXT[-1]]
    second = staged(net, tasks.FixedTrials(held_task, held_train),
                    [Stage([weights], _steps(MT_RETRAIN_STEPS, scale), MT_RETRAIN_LR,
                           freeze={weights: others}, name="retrain")],
                    batch_size=MT_RETRAIN_TRIALS, optimizer="adamw", weight_decay=WEIGHT_DECAY,
                    clip_value=CLIP, val_every=_val_every(scale), progress=progress,
                    seed=seed + 1)  # fmt: skip
    seconds = time.perf_counter() - t0
    y_held = net.run(held_test.u).y
    summary = {
        "seconds": seconds,
        "updates": int(len(first.loss) + len(second.loss)),
        "correct_trained": correct_trained,
        "correct_trained_atan2": correct_trained_atan2,
        "correct_held_out_before": before,
        "correct_held_out": float(held_task.score(y_held, held_test)),
        "correct_held_out_atan2": float(_atan2(held_task).score(y_held, held_test)),
        # trained: less the NM-RNN's frozen rule columns of B_x
        "parameters": parameter_count(net, trainable) - (net.n * len(MT_CONTEXT) if freeze else 0),
        "retrained_parameters": int(getattr(net, weights).shape[0]),
    }
    return summary, {"loss": first.loss, "retrain_loss": second.loss}


def _atan2(task: Any) -> Any:
    return tasks.MultiTask(task.tasks, convention="study", decode="atan2")


# ---------------------------------------------------------------------------------------------
# Rank-1 theory


def rank1_run(seed: int, scale: float, progress: bool) -> tuple[dict, dict]:
    """A rank-1 NM-RNN trained on MWG by the NM-RNN protocol; its s(t) during the ramps of
    the test intervals against the closed-form gain of the linear rank-1 theory, with the
    trained network's own l (Q), r (V / n_scale), readout c, d and tau_x."""
    task = tasks.MeasureWaitGo()
    train, test = task.training_set(), task.test_set()
    net = costacurta2024("NMRNN", n=100, rank=1, n_mod=5, n_in=3, n_out=1, seed=seed)
    stages = [Stage(stage.trainable, stage.iters, stage.lr, name=stage.name)
              for stage in mwg_stages("NM-RNN", net, scale)]  # fmt: skip
    t0 = time.perf_counter()
    staged(net, tasks.FixedTrials(task, train), stages, batch_size=train.batch_size,
           optimizer="adamw", weight_decay=WEIGHT_DECAY, clip_value=CLIP,
           val_every=_val_every(scale), progress=progress, seed=seed)  # fmt: skip
    seconds = time.perf_counter() - t0
    run = net.run(test.u)
    left, right = net.factor()[:, 0], net.V[:, 0] / net.n_scale  # the theory's l and r
    r_dot_l = float(right @ left)
    d = float(net.d[0])
    trained_s, theory_s, intervals = [], [], []
    for b, (t_go, interval) in enumerate(zip(test.info["t_go"], test.info["interval"])):
        window = np.arange(t_go, t_go + interval + 1)  # f from the go step to the ramp's end
        f = test.target[window, b, 0]
        # the theory holds while f - d stays away from 0 (the state cannot cross 0 along l)
        valid = np.abs(f[:-1] - d) >= 0.05
        s_theory = np.full(f.size - 1, np.nan)
        if valid.any():
            pairs = np.stack([f[:-1][valid], f[1:][valid]])  # each step's (f[t-1], f[t])
            s_theory[valid] = rank1_gain(pairs, d, net.tau_x, r_dot_l)[0]
        trained_s.append(run.s[window[1:], b, 0])
        theory_s.append(s_theory)
        intervals.append(int(interval))
    ok = [np.isfinite(t) for t in theory_s]
    a = np.concatenate([s[k] for s, k in zip(trained_s, ok)])
    th = np.concatenate([t[k] for t, k in zip(theory_s, ok)])
    corr = float(np.corrcoef(a, th)[0, 1]) if a.size > 2 else float("nan")
    ramp_means = [float(np.mean(s)) for s in trained_s]
    theory_means = [float(np.nanmean(t)) for t in theory_s]
    summary = {
        "seconds": seconds,
        "train_mse": _mse(net.run(train.u).y, train),
        "r_dot_l": r_dot_l,
        "hold_gain": 1.0 / r_dot_l,
        "d": d,
        "correlation": corr,
        "intervals": intervals,
        "trained_ramp_mean_s": ramp_means,
        "theory_ramp_mean_s": theory_means,
        "trend_trained": float(np.corrcoef(intervals, ramp_means)[0, 1]),
        "trend_theory": float(np.corrcoef(intervals, theory_means)[0, 1]),
    }
    return summary, {"trained_s": trained_s, "theory_s": theory_s, "intervals": intervals}


# ---------------------------------------------------------------------------------------------
# The report


def _collect(runs: list[tuple[dict, dict]], keys: list[str]) -> dict[str, Any]:
    return {k: _sem([r[0][k] for r in runs]) for k in keys}


def _ef_label(shape: tuple[int, int, int] | None) -> str:
    return "LSTM (10)" if shape is None else f"NM-RNN M={shape[0]} N={shape[1]} R={shape[2]}"


RANK1_LABEL = "rank-1 NM-RNN"
_RUN_FIELDS = {"id", "status", "seed", "wall_time", "version", "attempts", "error", "kept",
               "part", "label", "scale", "shape"}  # fmt: skip


def nmrnn_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One network of the report, as a :func:`flexrnn.sweep.run` function: ``config`` has
    ``part`` (of ``PARTS``), ``label`` (the model), ``scale`` and, for the element finder,
    ``shape`` ([n_mod, N, rank], or None for the LSTM). Returns the run's summary (metrics)
    and its curves and outputs (arrays; a list of arrays ``k`` as ``k.0``, ``k.1``, ...)."""
    part, label, scale = config["part"], config["label"], float(config["scale"])
    if part == "mwg":
        summary, extra = mwg_run(label, seed, scale, False)
    elif part == "element_finder":
        shape = config.get("shape")
        summary, extra = ef_run(tuple(shape) if shape else None, seed, scale, False)
    elif part == "multitask":
        summary, extra = mt_run(label, seed, scale, False)
    elif part == "rank1":
        summary, extra = rank1_run(seed, scale, False)
    else:
        raise ValueError(f"config: unknown part {part!r}; choose from {list(PARTS)}")
    out = dict(summary)
    for key, value in extra.items():
        if key in summary:  # rank1's intervals: a metric already
            continue
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            out.update({f"{key}.{i}": np.atleast_1d(a) for i, a in enumerate(value)})
        else:
            out[key] = np.atleast_1d(np.asarray(value))
    return out


def _unpack(row: dict[str, Any]) -> tuple[dict, dict]:
    """A sweep row of :func:`nmrnn_run` back into the run's (summary, extra)."""
    summary = {k: v for k, v in row.items() if k not in _RUN_FIELDS}
    extra: dict[str, Any] = {}
    listed: dict[str, dict[int, np.ndarray]] = {}
    for key, value in row["kept"].items():
        name, dot, index = key.rpartition(".")
        if dot and index.isdigit():
            listed.setdefault(name, {})[int(index)] = value
        else:
            extra[key] = value
    for name, items in listed.items():
        extra[name] = [items[i] for i in sorted(items)]
    if "intervals" in summary:
        extra["intervals"] = summary["intervals"]
    return summary, extra


def nmrnn_report(
    out: str | Path,
    seed: int = 0,
    only: list[str] | None = None,
    progress: bool = True,
    quick: bool = False,
    scale: float | None = None,
    seeds: int | None = None,
    part_scale: dict[str, float] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    runs: str | Path | None = None,
) -> dict[str, Any]:
    """Run the NM-RNN study's experiments and write ``out/reproductions/nmrnn.md`` (+ JSON and
    figures under ``out/reproductions/figures``). ``out`` is required (the committed report
    is made with ``out="docs"``).

    scale : fraction of the study's numbers of updates (default 1: the full protocol, 50k-70k
        updates per network, hours on one core; ``quick``: 1/2000, a smoke test).
    seeds : networks per condition (default 5; 2 with ``quick``), seeds ``seed .. seed+k-1``.
    part_scale : ``{part: scale}`` overriding ``scale`` for some parts (e.g. the costly
        ``multitask``, 300 trials of 100 steps per update).
    workers, scheduler, runs : every network is one run of :func:`flexrnn.sweep.run` (a local
        Dask cluster by default); as :class:`~flexrnn.experiments._runs.Populations`
        (``runs``: a folder kept, so that rerunning the report resumes from it).
    """
    from flexrnn.experiments.nmrnn_report import figures, markdown

    folder = Path(out) / "reproductions"
    say: Callable[..., None] = _say(progress)
    unknown = set(only or []) - set(PARTS)
    if unknown:
        raise ValueError(f"only: unknown parts {sorted(unknown)}; choose from {list(PARTS)}")
    run = [p for p in PARTS if p in set(only or PARTS)]
    if scale is None:
        scale = 1 / 2000 if quick else 1.0
    unknown = set(part_scale or {}) - set(PARTS)
    if unknown:
        raise ValueError(f"part_scale: unknown parts {sorted(unknown)}; choose from {list(PARTS)}")
    scales = {p: scale for p in PARTS}
    scales.update(part_scale or {})
    for part, value in scales.items():
        if not 0 < value <= 1:
            name = "part_scale" if part in (part_scale or {}) else "scale"
            raise ValueError(
                f"{name}: expected a fraction of the study's updates in (0, 1], got {value}"
            )
    n_seeds = (2 if quick else 5) if seeds is None else int(seeds)
    if n_seeds < 1:
        raise ValueError(f"seeds: expected >= 1, got {seeds}")
    seed_list = [seed + k for k in range(n_seeds)]
    meta = {
        "machine": _cpu_name(),
        "flexrnn": flexrnn.__version__,
        "seed": seed,
        "seeds": seed_list,
        "scale": scale,
        "part_scale": {p: scales[p] for p in run},
        "quick": quick,
    }
    results: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    t_all = time.perf_counter()

    configs: list[dict[str, Any]] = []
    if "mwg" in run:
        configs += [{"part": "mwg", "label": label, "scale": scales["mwg"]}
                    for label in MWG_MODELS]  # fmt: skip
    if "element_finder" in run:
        configs += [{"part": "element_finder", "label": _ef_label(shape),
                     "shape": list(shape) if shape else None,
                     "scale": scales["element_finder"]}
                    for shape in [*EF_SHAPES, None]]  # fmt: skip
    if "multitask" in run:
        configs += [{"part": "multitask", "label": label, "scale": scales["multitask"]}
                    for label in MT_MODELS]  # fmt: skip
    if "rank1" in run:
        configs.append({"part": "rank1", "label": RANK1_LABEL, "scale": scales["rank1"]})
    say(f"[nmrnn] {len(configs)} networks x {len(seed_list)} seeds")
    with Populations("nmrnn", workers, scheduler, runs, progress) as pop:
        meta.update(pop.describe())
        rows = pop.run(nmrnn_run, configs, seed_list)
        by_run: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
        for row in sorted(rows, key=lambda r: r["seed"]):
            by_run.setdefault((row["part"], row["label"]), []).append(_unpack(row))
    meta["runs"] = len(rows)
    meta["run_seconds"] = float(sum(r["wall_time"] for r in rows))

    if "mwg" in run:
        results["mwg"], extras["mwg"] = {}, {}
        for label in MWG_MODELS:
            runs_ = by_run[("mwg", label)]
            for s, r in zip(seed_list, runs_):
                say(f"[mwg] {label} seed {s}: train MSE {r[0]['train_mse']:.4f}, "
                    f"{r[0]['seconds']:.1f} s")  # fmt: skip
            keys = ["train_mse", "test_trained_mse", "short_mse", "long_mse", "train_accuracy",
                    "test_accuracy", "seconds"]  # fmt: skip
            res = _collect(runs_, keys)
            res["parameters"] = runs_[0][0]["parameters"]
            res["updates"] = runs_[0][0]["updates"]
            res["per_interval_mse"] = {
                "mean": np.mean([r[0]["per_interval_mse"] for r in runs_], axis=0).tolist(),
                "sem": (np.std([r[0]["per_interval_mse"] for r in runs_], axis=0, ddof=1)
                        / np.sqrt(len(runs_))).tolist() if len(runs_) > 1 else None,
            }  # fmt: skip
            if label == "NM-RNN":
                res["ablation"] = {
                    k: {key: _sem([r[0]["ablation"][k][key] for r in runs_])
                        for key in runs_[0][0]["ablation"][k]}
                    for k in runs_[0][0]["ablation"]
                }  # fmt: skip
            results["mwg"][label] = res
            extras["mwg"][label] = [r[1] for r in runs_]
    if "element_finder" in run:
        results["element_finder"], extras["element_finder"] = {}, {}
        for shape in [*EF_SHAPES, None]:
            label = _ef_label(shape)
            runs_ = by_run[("element_finder", label)]
            say(f"[element_finder] {label}: test MSE "
                f"{np.mean([r[0]['test_mse'] for r in runs_]):.2f}")  # fmt: skip
            res = _collect(runs_, ["test_mse", "test_accuracy", "test_mse_last", "best_update",
                                   "seconds"])  # fmt: skip
            res["parameters"] = runs_[0][0]["parameters"]
            res["updates"] = runs_[0][0]["updates"]
            results["element_finder"][label] = res
            extras["element_finder"][label] = [r[1] for r in runs_]
        results["element_finder_chance"] = tasks.ElementFinder().zero_predictor_mse
    if "multitask" in run:
        results["multitask"], extras["multitask"] = {}, {}
        for label in MT_MODELS:
            runs_ = by_run[("multitask", label)]
            say(f"[multitask] {label}: held-out correct "
                f"{np.mean([r[0]['correct_held_out'] for r in runs_]):.2f}")  # fmt: skip
            keys = ["correct_trained", "correct_trained_atan2", "correct_held_out_before",
                    "correct_held_out", "correct_held_out_atan2", "seconds"]  # fmt: skip
            res = _collect(runs_, keys)
            res["parameters"] = runs_[0][0]["parameters"]
            res["retrained_parameters"] = runs_[0][0]["retrained_parameters"]
            res["updates"] = runs_[0][0]["updates"]
            results["multitask"][label] = res
            extras["multitask"][label] = [r[1] for r in runs_]
    if "rank1" in run:
        runs_ = by_run[("rank1", RANK1_LABEL)]
        say(f"[rank1] correlation trained/theory "
            f"{np.nanmean([r[0]['correlation'] for r in runs_]):.2f}")  # fmt: skip
        res = _collect(runs_, ["correlation", "trend_trained", "trend_theory", "train_mse",
                               "seconds"])  # fmt: skip
        res["per_seed"] = [r[0] for r in runs_]
        results["rank1"] = res
        extras["rank1"] = [r[1] for r in runs_]
    meta["wall_s"] = time.perf_counter() - t_all
    folder.mkdir(parents=True, exist_ok=True)
    paths = figures(folder, results, extras)
    atomic_write_text(folder / "nmrnn.md", markdown(results, paths, meta) + "\n")
    atomic_write_json(folder / "nmrnn.json", {"meta": meta, "results": results})
    say(f"wrote {folder / 'nmrnn.md'} ({meta['wall_s']:.0f} s)")
    return {"meta": meta, "results": results}
