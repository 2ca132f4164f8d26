"""Benchmark section "mop": one NeuroMOP training epoch (issue 6).

Listed in the registry of bench/run.py.
Workload: the energy task's sizes, n = 100, M = 8 (256 joint actions), value network of 128
ReLU units, 10 trajectories × 1000 steps, then 100 Adam steps on minibatches of 256 visited
states. The energy level is set above what the network reaches (0.25), so that every
implementation runs every trajectory to the horizon: the same work whatever the random draws
(flexrnn's counter-based generator and torch's differ).

Implementations, float32 and float64: ``fr.mop.train`` (one C++ call); PyTorch eager on the
CPU (bench/torch_mop.py), a Python loop over trajectories and steps with each step's 256
successors in one batched product, and a variant stepping all trajectories together; the
NumPy reference (``flexrnn.reference.mop``, float64 whatever the row's dtype). The output
check compares the targets and policies of all three at 64 states, in float64.
Hardware limit: each step's value network on the 256 successors is a (256 × 100) × (100 ×
128) product; the C++ epoch's FLOP rate is set against the measured square-GEMM rate.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import flexrnn
import numpy as np
from flexrnn.reference import mop as ref

from bench.harness import DTYPES, Context, Impl, Section, Target, compare, speed_target
from bench.render import IMPL_NAMES, render_cpu_share, render_targets, render_timing_table

MOP_IMPL_NAMES = {"torch_loop": "PyTorch eager (loop)", "torch_batched": "PyTorch eager (batched)"}
TARGET = 10.0  # issue 6: one epoch >= 10x the PyTorch CPU implementation

WORK = {
    "n": 100,
    "n_bits": 8,
    "hidden": 128,
    "trajectories": 10,
    "horizon": 1000,
    "quick_horizon": 100,
    "updates": 100,
    "batch_size": 256,
    "gamma": 0.98,
    "rho": 2.0,
    "dt": 0.1,
    "g": 2.0,
    "level": 0.25,
}

torch_mop = None
if importlib.util.find_spec("torch") is not None:
    from bench import torch_mop  # noqa: F401  (the optional PyTorch baseline)


def _agent(dtype: str, seed: int = 0):
    env = flexrnn.mop.RNNEnv.random(
        WORK["n"], WORK["n_bits"], g=WORK["g"], rho=WORK["rho"], dt=WORK["dt"],
        terminal=flexrnn.mop.Energy(WORK["level"]), seed=seed, dtype=dtype,
    )  # fmt: skip
    agent = flexrnn.mop.MOPAgent(
        env, hidden=WORK["hidden"], gamma=WORK["gamma"], updates=WORK["updates"],
        batch_size=WORK["batch_size"], seed=seed,
    )  # fmt: skip
    # a value network with a non-trivial policy (the default starts at V = 0)
    rng = np.random.default_rng(seed + 1)
    agent.theta[-(WORK["hidden"] + 1) :] = rng.normal(0, 0.05, WORK["hidden"] + 1)
    return agent


def _problem(agent) -> dict[str, Any]:
    env = agent.env
    return {
        "W": env.W.astype(np.float64),
        "K": env.K.astype(np.float64),
        "b": env.net.b.astype(np.float64),
        "x0": agent.x0.astype(np.float64),
        "theta": agent.theta.astype(np.float64),
    }


def _reference_epoch(agent, horizon: int) -> Any:
    env, kw = agent.env, _ref_kwargs(agent)
    roll = ref.rollout(
        {"kind": "rnn", "W": env.W, "b": env.net.b, "K": env.K, "rho": env.rho,
         "alpha": env.alpha, "phi": "tanh"},
        agent.theta, horizon=horizon, x0=np.broadcast_to(agent.x0, (WORK["trajectories"],
        env.dim)), context=np.zeros(WORK["trajectories"], int), seed=agent.seed, stream0=0,
        **kw,
    )  # fmt: skip
    theta = agent.theta.astype(np.float64)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    ref.fit(
        theta, m, v, 0, roll, hidden=agent.hidden, scale=agent.scale, lr=agent.lr,
        updates=agent.updates, batch_size=agent.batch_size, seed=agent.seed,
        fit_stream=2**19, context=np.zeros(WORK["trajectories"], int),
    )  # fmt: skip
    return roll["lifetime"]


def _ref_kwargs(agent) -> dict[str, Any]:
    program, custom = agent.env.programs()
    return {
        "hidden": agent.hidden, "scale": agent.scale, "agent": "mop", "gamma": agent.gamma,
        "program": program, "n_contexts": 1, "custom": custom,
    }  # fmt: skip


def _impls(ctx: Context, dtype: str, horizon: int) -> list[Impl]:
    agent = _agent(dtype)

    def ours():
        flexrnn.mop.train([agent], agent.epoch + 1, WORK["trajectories"], horizon, progress=False)
        return None

    impls = [Impl("flexrnn", "`fr.mop.train` (one C++ call per epoch)", ours)]
    if torch_mop is not None:
        import torch

        problem = _problem(agent)
        opts = {
            "rho": WORK["rho"], "alpha": WORK["dt"], "level": WORK["level"],
            "gamma": WORK["gamma"], "hidden": WORK["hidden"],
            "trajectories": WORK["trajectories"], "horizon": horizon, "lr": agent.lr,
            "updates": WORK["updates"], "batch_size": WORK["batch_size"], "dtype": dtype,
        }  # fmt: skip

        def threads():
            return _TorchThreads(torch, ctx.threads)

        impls += [
            Impl(
                "torch_loop",
                "PyTorch eager, loop over trajectories and steps",
                lambda: torch_mop.epoch_per_trajectory(**problem, **opts, seed=0)["lifetime"],
                context=threads,
            ),
            Impl(
                "torch_batched",
                "PyTorch eager, trajectories stepped together",
                lambda: torch_mop.epoch_batched(**problem, **opts, seed=0)["lifetime"],
                context=threads,
            ),
        ]
    impls.append(
        Impl("numpy", "NumPy reference (float64)", lambda: _reference_epoch(agent, horizon))
    )
    return impls


class _TorchThreads:
    def __init__(self, torch, n):
        self.torch, self.n = torch, n

    def __enter__(self):
        self.before = self.torch.get_num_threads()
        self.torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        self.torch.set_num_threads(self.before)


def _check(dtype: str) -> dict[str, Any]:
    """Targets and policies of flexrnn, the reference and torch at 64 states (float64)."""
    agent = _agent("float64")
    X = np.random.default_rng(3).normal(-0.2, 0.3, (64, WORK["n"]))
    ours = agent.evaluate(X)
    env = agent.env
    want = ref.evaluate(
        {"kind": "rnn", "W": env.W, "b": env.net.b, "K": env.K, "rho": env.rho,
         "alpha": env.alpha, "phi": "tanh"}, agent.theta, X, **_ref_kwargs(agent),
    )  # fmt: skip
    out = {
        "numpy": {
            "allclose": bool(
                np.allclose(ours["target"], want["target"], rtol=1e-10)
                and np.allclose(ours["policy"], want["policy"], atol=1e-10)
            ),
            "max_target_diff": float(np.max(np.abs(ours["target"] - want["target"]))),
        }
    }
    if torch_mop is not None:
        p = _problem(agent)
        target, policy = torch_mop.targets_and_policy(
            p["W"], p["K"], p["b"], p["theta"], X, rho=WORK["rho"], alpha=WORK["dt"],
            level=WORK["level"], gamma=WORK["gamma"], hidden=WORK["hidden"],
        )  # fmt: skip
        close = bool(
            np.allclose(ours["target"], target, rtol=1e-9)
            and np.allclose(ours["policy"], policy, atol=1e-9)
        )
        diff = float(np.max(np.abs(ours["target"] - np.asarray(target))))
        for key in ("torch_loop", "torch_batched"):
            out[key] = {"allclose": close, "max_target_diff": diff}
    return out


def run(ctx: Context) -> dict[str, Any]:
    horizon = WORK["quick_horizon"] if ctx.quick else WORK["horizon"]
    results: dict[str, Any] = {
        "workload": {**WORK, "horizon": horizon},
        "by_dtype": {},
        "targets": [],
    }
    steps = WORK["trajectories"] * horizon
    flop_rollout = steps * 2 * 2 ** WORK["n_bits"] * WORK["n"] * WORK["hidden"]
    flop_fit = WORK["updates"] * WORK["batch_size"] * 6 * WORK["n"] * WORK["hidden"]
    for dtype in DTYPES:
        ctx.log(f"mop epoch {dtype}")
        checks = _check(dtype)
        r = compare(ctx, lambda d=dtype: _impls(ctx, d, horizon), lambda outs, c=checks: c)
        t = r["timings"]["flexrnn"]["median_s"]
        gemm = ctx.hardware.get("gemm_square", {}).get(dtype, {}).get("gflops")
        r["flop"] = {
            "epoch_gflop": (flop_rollout + flop_fit) / 1e9,
            "cpp_gflops": (flop_rollout + flop_fit) / t / 1e9,
            "gemm_square_gflops": gemm,
        }
        results["by_dtype"][dtype] = r
        results["targets"] += [
            speed_target("mop", "epoch", "NeuroMOP epoch", dtype, Target(key, TARGET), r)
            for key in ("torch_loop", "torch_batched")
            if key in r["timings"]
        ]
    return results


def _render(data: dict[str, Any], ctx: Context) -> list[str]:
    w = data["workload"]
    lines = [
        f"One epoch: n = {w['n']}, M = {w['n_bits']} ({2 ** w['n_bits']} successors per step), "
        f"value network {w['hidden']} ReLU units, {w['trajectories']} trajectories × "
        f"{w['horizon']} steps (none ends early: energy level {w['level']}), then "
        f"{w['updates']} Adam steps on minibatches of {w['batch_size']}. Target: ≥ 10× the "
        "PyTorch CPU implementation.",
        "",
    ]
    lines += render_timing_table(
        data["by_dtype"],
        lambda c: (
            ("same targets and policies" if c.get("allclose") else "**differ**")
            + f" (max target diff {c.get('max_target_diff', math.nan):.1e})"
        ),
    )
    lines += [""] + render_cpu_share(data["by_dtype"])
    lines += render_targets(data["targets"], {**IMPL_NAMES, **MOP_IMPL_NAMES})
    lines += [
        "",
        "Hardware limit: each step's value network on the 256 successors is a (256 × 100) × "
        "(100 × 128) matrix product, which the whole loop cannot beat.",
        "",
        "| dtype | epoch GFLOP (products) | C++ GFLOP/s | square-GEMM rate | share |",
        "|---|---|---|---|---|",
    ]
    for dt, d in data["by_dtype"].items():
        f = d["flop"]
        g = f["gemm_square_gflops"]
        share = f"{100 * f['cpp_gflops'] / g:.0f} %" if g else "–"
        gtext = f"{g:.1f} GFLOP/s" if g else "–"
        lines.append(
            f"| {dt} | {f['epoch_gflop']:.1f} | {f['cpp_gflops']:.1f} | {gtext} | {share} |"
        )
    for dt, d in data["by_dtype"].items():
        g = d["flop"]["gemm_square_gflops"]
        for key in ("torch_loop", "torch_batched"):
            if key not in d["timings"] or not g:
                continue
            need = d["flop"]["epoch_gflop"] / (d["timings"][key]["median_s"] / TARGET)
            lines.append(
                f"- {dt}: 10× {MOP_IMPL_NAMES[key]} means an epoch in "
                f"{d['timings'][key]['median_s'] / TARGET * 1e3:.0f} ms, i.e. {need:.0f} GFLOP/s "
                f"of products alone ({100 * need / g:.0f} % of the square-GEMM rate)."
            )
    return lines


SECTION = Section("mop", "NeuroMOP training epoch", run, _render, impl_names=MOP_IMPL_NAMES)
