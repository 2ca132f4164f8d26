"""`flexrnn reproduce neuromop`: the experiments of Mastrogiuseppe & Moreno-Bote (NeurIPS 2024)
with flexrnn.mop, written up in docs/reproductions/neuromop.md.

Parts (each a call of the public API, several networks per condition, trained together in
one C++ call per epoch):

1. ``calibration``: the free network is chaotic and crosses the energy threshold, the all -1
   action silences it, random actions cross the threshold;
2. ``energy``: MOP vs R agent (eps = 0.3) on the energy task (T = 1000, 60 epochs):
   lifetime, action entropy and dimensionality far from / near the threshold, variability;
3. ``box``: MOP, R with eps decayed 0.9 per epoch from 0.5, R with fixed eps (100 epochs);
4. ``shapes``: one value network, six terminal shapes as contexts (T = 600, 100 epochs);
5. ``beta_mu``: the state-entropy weight beta (energy task) and the extrinsic reward mu
   (box 0.2 with a rewarded square) sweeps;
6. ``cartpole``: MOP agents on the cart-pole, lifetime over training.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import flexrnn
from flexrnn import mop
from flexrnn._io import atomic_write_json, atomic_write_text
from flexrnn.experiments._runs import Populations

# at import, not in neuromop_report(): importing the submodule neuromop_report later would
# rebind the package's name neuromop_report (the function) to the module
from flexrnn.experiments.neuromop_report import figures, markdown
from flexrnn.experiments.training import _cpu_name, _say
from flexrnn.mop import metrics

PARTS = ("calibration", "energy", "box", "shapes", "beta_mu", "cartpole")
# calibrated environment (docs/reproductions/neuromop.md says why)
N, N_BITS, G, RHO, DT = 100, 8, 2.0, 2.0, 0.1
LEVEL = 0.11
DTYPE = "float32"


def _envs(networks: int, seed: int, terminal, **kw) -> list:
    return [
        mop.RNNEnv.random(
            N, N_BITS, g=G, rho=RHO, dt=DT, terminal=terminal, seed=seed + k, dtype=DTYPE, **kw
        )  # fmt: skip
        for k in range(networks)
    ]


def _train(agents, epochs, horizon, progress, trajectories=10, contexts=None):
    t0 = time.perf_counter()
    hist = mop.train(agents, epochs, trajectories, horizon, contexts=contexts, progress=progress)
    return hist, time.perf_counter() - t0


def _summary(values) -> dict[str, float]:
    mean, sem = metrics.mean_and_sem(np.asarray(values, dtype=float))
    return {"mean": float(mean), "sem": float(sem), "values": [float(v) for v in values]}


def _rollout_metrics(roll, level=None) -> dict[str, float]:
    out = {
        "lifetime": float(roll.lifetime.mean()),
        "entropy": metrics.action_entropy(roll.entropy, roll.lifetime),
        "dimensionality": metrics.effective_dimensionality(
            roll.actions, roll.lifetime, roll.n_bits
        ),
        "variability": metrics.variability(roll.states, roll.lifetime),
        "jump_variability": metrics.jump_variability(roll.states, roll.lifetime),
        "mean_x": float(roll.states[metrics.state_mask(roll.lifetime, roll.horizon)].mean()),
    }
    if level is not None:
        near = metrics.near_threshold(roll.states, roll.lifetime, level)
        out["near_steps"] = int(near.sum())
        out["entropy_near"] = metrics.action_entropy(roll.entropy, roll.lifetime, where=near)
        out["dimensionality_near"] = metrics.effective_dimensionality(
            roll.actions, roll.lifetime, roll.n_bits, where=near
        )
        far = metrics.step_mask(roll.lifetime, roll.horizon) & ~near
        out["entropy_far"] = metrics.action_entropy(roll.entropy, roll.lifetime, where=far)
        out["dimensionality_far"] = metrics.effective_dimensionality(
            roll.actions, roll.lifetime, roll.n_bits, where=far
        )
    return out


def _same(row: dict[str, Any], config: dict[str, Any]) -> bool:
    return all(row.get(k) == v for k, v in config.items())


_CALIBRATION_KEYS = ("dt", "g", "rho", "n", "n_bits", "free", "all_minus", "all_plus",
                     "random_actions")  # fmt: skip


def _say_calibration(res: dict[str, Any], say) -> None:
    for name in ("free", "all_minus", "all_plus"):
        say(f"  {name}: max E {res[name]['E_max']:.4f}, first crossing "
            f"{res[name]['first_crossing']}")  # fmt: skip
    say(f"  random actions: {res['random_actions']['fraction_crossing']:.2f} of 50 "
        "trajectories cross the threshold")  # fmt: skip


def calibration(seed: int, say) -> dict[str, Any]:
    """The three conditions of the spec on the first network."""
    env = _envs(1, seed, mop.Energy(LEVEL))[0]
    x0 = env.default_x0(np.random.default_rng(seed)).astype(env.dtype)
    T = 1000
    res: dict[str, Any] = {"dt": DT, "g": G, "rho": RHO, "n": N, "n_bits": N_BITS}
    for name, k in (("free", None), ("all_minus", 0), ("all_plus", env.n_actions - 1)):
        u = np.zeros((T, 1, N_BITS), env.dtype)
        if k is not None:
            u[:] = RHO * mop.action_bits(N_BITS)[k]
        x = env.net.run(u, x0=x0[None]).x[:, 0]
        E = metrics.energy(x[:, None, :])[:, 0]
        crossed = np.nonzero(E > LEVEL)[0]
        res[name] = {
            "E_max": float(E.max()),
            "E_last": float(E[-1]),
            "first_crossing": int(crossed[0]) if crossed.size else None,
            "mean_x_last": float(x[-100:].mean()),
            "std_x_last": float(x[-100:].std()),
        }
        say(f"  {name}: max E {E.max():.4f}, first crossing {res[name]['first_crossing']}")
    # a largest Lyapunov exponent > 0 for the free network (chaos)
    lyap = flexrnn.analysis.lyapunov_spectrum(env.net, k=1, steps=2000, seed=seed)
    res["free"]["largest_exponent"] = float(np.ravel(lyap)[0])
    uniform = mop.MOPAgent(env, seed=seed, x0=x0)  # V = 0: uniform random actions
    roll = uniform.rollout(trajectories=50, horizon=T)
    res["random_actions"] = {
        "lifetime": _summary(roll.lifetime),
        "fraction_crossing": float(roll.terminated.mean()),
    }
    say(f"  random actions: {roll.terminated.mean():.2f} of 50 trajectories cross the threshold")
    return res


# ------------------------------------------------------------------------------------------
# One network of one condition: a run of flexrnn.sweep (seed = the network's seed)

BOX_AGENTS = ("MOP", "R decaying eps", "R eps=0.3", "R eps=0.1", "R eps=0")


def _settings(part: str, quick: bool) -> dict[str, Any]:
    """Epochs and horizon of a part (the quick ones are a smoke test)."""
    if part in ("energy", "beta_mu"):
        epochs, T = (6, 200) if quick else (60, 1000)
    elif part == "box":
        epochs, T = (6, 200) if quick else (100, 1000)
    elif part == "shapes":
        epochs, T = (12, 150) if quick else (100, 600)
    elif part == "cartpole":
        # gamma 0.99: balancing needs a longer look-ahead than the RNN tasks (with 0.98 and
        # 100 epochs the agents reached about 440 of 1000 steps)
        return {"epochs": 10 if quick else 300, "horizon": 300 if quick else 1000, "gamma": 0.99}
    else:
        raise ValueError(f"part: unknown part {part!r}")
    return {"epochs": epochs, "horizon": T}


def _agent(config: dict[str, Any], seed: int):
    part, condition = config["part"], config["condition"]
    if part == "cartpole":
        return mop.MOPAgent(mop.CartPole(dtype=DTYPE), gamma=config["gamma"], seed=seed)
    if part == "energy":
        env = _envs(1, seed, mop.Energy(LEVEL))[0]
        if condition == "MOP":
            return mop.MOPAgent(env, seed=seed)
        return mop.RAgent(env, eps=0.3, seed=seed)
    if part == "box":
        env = _envs(1, seed, mop.Box(0.1, neurons=(0, 1)))[0]
        if condition == "MOP":
            return mop.MOPAgent(env, seed=seed)
        if condition == "R decaying eps":
            return mop.RAgent(env, eps=0.5, eps_decay=0.9, seed=seed)
        return mop.RAgent(env, eps=float(condition.split("=")[1]), seed=seed)
    if part == "shapes":
        return mop.MOPAgent(_envs(1, seed, mop.shapes(neurons=(0, 1)))[0], seed=seed)
    if part == "beta_mu" and condition == "beta":
        return mop.MOPAgent(_envs(1, seed, mop.Energy(LEVEL))[0], beta=config["value"], seed=seed)
    if part == "beta_mu" and condition == "mu":
        mu = config["value"]
        env = _envs(1, seed, mop.Box(0.2, neurons=(0, 1)))[0]
        return mop.MOPAgent(env, mu=mu, reward=_SQUARE if mu else None, seed=seed)
    raise ValueError(f"config: unknown condition {part}/{condition}")


_SQUARE = ~mop.Box(0.05, neurons=(0, 1), center=(0.1, 0.1))  # beta_mu's rewarded square


def network_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Train and evaluate one network (``seed``) of one condition (a flexrnn.sweep run).

    config : {"part", "condition", "epochs", "horizon"} (+ "gamma", "value"). Returns the
    network's training lifetimes per epoch, its test metrics and what the figures need.
    """
    part = config["part"]
    if part == "calibration":
        return calibration(seed, lambda *a, **k: None)
    T = config["horizon"]
    agent = _agent(config, seed)
    hists, wall = _train([agent], config["epochs"], T, False)
    res: dict[str, Any] = {"mean_lifetime": hists[0].mean_lifetime, "wall_s": wall}
    if part == "shapes":
        occ, lifetimes = [], {}
        for c, name in enumerate(mop.SHAPES):
            roll = mop.rollout([agent], trajectories=10, horizon=T, context=c)[0]
            occ.append(metrics.occupancy(roll.states, roll.lifetime, bins=40,
                                         range=[[-0.25, 0.25]] * 2)[0])  # fmt: skip
            lifetimes[name] = float(roll.lifetime.mean())
        return {**res, "lifetimes": lifetimes, "occupancy": np.stack(occ)}
    roll = mop.rollout([agent], trajectories=10, horizon=T)[0]
    if part == "cartpole":
        return {**res, "lifetime": float(roll.lifetime.mean()),
                "entropy": metrics.action_entropy(roll.entropy, roll.lifetime)}  # fmt: skip
    if part == "energy":
        E = metrics.energy(roll.states)[: roll.lifetime[0] + 1, 0]
        return {**res, "eval": _rollout_metrics(roll, LEVEL), "energy_trace": E,
                "bits": roll.bits()[:200, 0]}  # fmt: skip
    if part == "box":
        occ = metrics.occupancy(roll.states, roll.lifetime, bins=20, range=[[-0.1, 0.1]] * 2)[0]
        return {**res, "eval": _rollout_metrics(roll), "box_filled": float((occ > 0).mean()),
                "occupancy": occ}  # fmt: skip
    if config["condition"] == "beta":
        return {**res, "eval": _rollout_metrics(roll)}
    visited = roll.states[metrics.state_mask(roll.lifetime, roll.horizon)]
    occ = metrics.occupancy(roll.states, roll.lifetime, bins=40, range=[[-0.2, 0.2]] * 2)[0]
    return {**res, "eval": _rollout_metrics(roll), "occupancy": occ,
            "in_square": float(_SQUARE.contains(visited).mean())}  # fmt: skip


def _conditions(part: str, quick: bool) -> list[dict[str, Any]]:
    """The sweep configurations of a part: one per condition."""
    base = {"part": part, **_settings(part, quick)}
    if part == "energy":
        return [{**base, "condition": c} for c in ("MOP", "R")]
    if part == "box":
        return [{**base, "condition": c} for c in BOX_AGENTS]
    if part == "beta_mu":
        return [{**base, "condition": "beta", "value": b} for b in (0.0, 0.1, 0.3)] + [
            {**base, "condition": "mu", "value": m} for m in (0.0, 0.1, 0.5)
        ]
    return [{**base, "condition": part}]


def _wall(rows) -> float:
    """Training seconds summed over the networks of a condition."""
    return float(sum(r["wall_s"] for r in rows))


def _curve_of(rows) -> dict[str, list]:
    life = np.stack([r["kept"]["mean_lifetime"] for r in rows])  # (networks, epochs)
    mean, sem = metrics.mean_and_sem(life)
    return {"mean": np.asarray(mean).tolist(), "sem": np.asarray(sem).tolist()}


def _eval_of(rows) -> dict[str, Any]:
    per = [r["eval"] for r in rows]
    return {k: _summary([p[k] for p in per]) for k in per[0]}


def _assemble(part: str, configs: list[dict], groups: list[list[dict]], say) -> tuple[dict, dict]:
    """A part's results (mean ± SEM over networks) and figure data from its runs' rows."""
    settings = {k: v for k, v in configs[0].items() if k in ("epochs", "horizon", "gamma")}
    res: dict[str, Any] = dict(settings)
    extra: dict[str, Any] = {}
    if part == "energy":
        for config, rows in zip(configs, groups):
            name = config["condition"]
            res[name] = {"curve": _curve_of(rows), "wall_s": _wall(rows), "eval": _eval_of(rows)}
            extra[name] = {"energy_trace": rows[0]["kept"]["energy_trace"],
                           "bits": rows[0]["kept"]["bits"]}  # fmt: skip
            ev = res[name]["eval"]
            say(
                f"  {name}: lifetime {ev['lifetime']['mean']:.0f}, entropy "
                f"{ev['entropy']['mean']:.2f} (near {ev['entropy_near']['mean']:.2f}), ED "
                f"{ev['dimensionality_far']['mean']:.2f} far / "
                f"{ev['dimensionality_near']['mean']:.2f} near, <sigma> "
                f"{ev['variability']['mean']:.3f}  [{res[name]['wall_s']:.0f} s]"
            )
    elif part == "box":
        res["half_width"] = 0.1
        for config, rows in zip(configs, groups):
            name = config["condition"]
            res[name] = {
                "curve": _curve_of(rows),
                "wall_s": _wall(rows),
                "eval": _eval_of(rows),
                "box_filled": _summary([r["box_filled"] for r in rows]),
            }
            extra[name] = np.mean([r["kept"]["occupancy"] for r in rows], axis=0)
            say(
                f"  {name}: lifetime {res[name]['eval']['lifetime']['mean']:.0f}, box filled "
                f"{res[name]['box_filled']['mean']:.2f}  [{res[name]['wall_s']:.0f} s]"
            )
    elif part == "shapes":
        (rows,) = groups
        res["shapes"] = list(mop.SHAPES)
        res["wall_s"] = _wall(rows)
        for c, name in enumerate(mop.SHAPES):
            res[name] = {"lifetime": _summary([r["lifetimes"][name] for r in rows])}
            extra[name] = np.mean([r["kept"]["occupancy"][c] for r in rows], axis=0)
            say(f"  {name}: lifetime {res[name]['lifetime']['mean']:.0f} of {res['horizon']}")
        res["curve"] = _curve_of(rows)
    elif part == "beta_mu":
        res.update({"beta": {}, "mu": {}})
        extra["mu"] = {}
        for config, rows in zip(configs, groups):
            value = config["value"]
            if config["condition"] == "beta":
                res["beta"][str(value)] = ev = _eval_of(rows)
                say(
                    f"  beta {value}: lifetime {ev['lifetime']['mean']:.0f}, jump variability "
                    f"{ev['jump_variability']['mean']:.4f}  [{_wall(rows):.0f} s]"
                )
                continue
            inside = [r["in_square"] for r in rows]
            res["mu"][str(value)] = {"eval": _eval_of(rows), "in_square": _summary(inside)}
            extra["mu"][value] = np.mean([r["kept"]["occupancy"] for r in rows], axis=0)
            say(f"  mu {value}: fraction of time in the rewarded square {np.mean(inside):.3f}")
    elif part == "cartpole":
        (rows,) = groups
        res.update({
            "curve": _curve_of(rows),
            "wall_s": _wall(rows),
            "lifetime": _summary([r["lifetime"] for r in rows]),
            "entropy": _summary([r["entropy"] for r in rows]),
        })  # fmt: skip
        say(f"  cartpole: lifetime {res['lifetime']['mean']:.0f} of {res['horizon']}  "
            f"[{res['wall_s']:.0f} s]")  # fmt: skip
    return res, extra


def neuromop_report(
    out: str | Path,
    seed: int = 0,
    only: list[str] | None = None,
    progress: bool = True,
    quick: bool = False,
    networks: int = 10,
    workers: int | None = None,
    scheduler: str | None = None,
    runs: str | Path | None = None,
) -> dict[str, Any]:
    """Run the NeuroMOP experiments and write ``out/reproductions/neuromop.md`` (+ JSON and
    figures under ``out/reproductions/figures``). ``networks``: per condition. ``out`` is
    required (the committed report is made with ``out="docs"``).

    Every network of every condition is one run of :func:`flexrnn.sweep.run` (seed + k for
    network k): ``workers`` processes of a local Dask cluster (default: one per core), or
    the cluster at ``scheduler``; ``runs``: keep the runs in this folder (under
    ``neuromop/``) and resume from it. Results do not depend on where the runs ran."""
    folder = Path(out) / "reproductions"
    say = _say(progress)
    unknown = set(only or []) - set(PARTS)
    if unknown:
        raise ValueError(f"only: unknown parts {sorted(unknown)}; choose from {list(PARTS)}")
    run = set(only or PARTS)
    networks = 2 if quick else networks
    meta = {
        "machine": _cpu_name(),
        "flexrnn": flexrnn.__version__,
        "seed": seed,
        "quick": quick,
        "networks": networks,
        "dtype": DTYPE,
    }
    results: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    t0 = time.perf_counter()
    seeds = [seed + k for k in range(networks)]  # network k: environment and agent seed + k
    with Populations("neuromop", workers, scheduler, runs, progress) as pop:
        meta.update(pop.describe())
        if "calibration" in run:
            say("[calibration]")
            (row,) = pop.run(network_run, [{"part": "calibration"}], [seed])
            results["calibration"] = {k: row[k] for k in _CALIBRATION_KEYS}
            _say_calibration(results["calibration"], say)
        parts = [p for p in PARTS if p in run and p != "calibration"]
        configs = {p: _conditions(p, quick) for p in parts}
        if parts:
            say(f"[{', '.join(parts)}] {networks} networks per condition")
            rows = pop.run(network_run, [c for p in parts for c in configs[p]], seeds)
        for part in parts:
            say(f"[{part}]")
            groups = [[r for r in rows if _same(r, c)] for c in configs[part]]
            results[part], extras[part] = _assemble(part, configs[part], groups, say)
    meta["wall_s"] = time.perf_counter() - t0
    folder.mkdir(parents=True, exist_ok=True)
    paths = figures(folder, results, extras)
    atomic_write_text(folder / "neuromop.md", markdown(results, paths, meta) + "\n")
    atomic_write_json(folder / "neuromop.json", {"meta": meta, "results": results})
    say(f"wrote {folder / 'neuromop.md'}")
    return {"meta": meta, "results": results}
