"""Benchmark section "ga": one generation of the genetic algorithm, the whole population in one
C++ call against the NumPy reference member by member."""

from __future__ import annotations

from typing import Any

import flexrnn
import numpy as np
from flexrnn import reference

from bench.harness import (
    DTYPES,
    TOLERANCES,
    Context,
    Impl,
    Section,
    check_outputs,
    compare,
)
from bench.render import render_cpu_share, render_timing_table

GA_WORKLOAD = {"P": 50, "n": 50, "B": 64, "T": 750, "quick_T": 150, "survivors": 5}

CHECK_TEXT = (
    "the NumPy reference's population losses and children agreed with the C++ core's "
    "before timing (allclose; float32 rtol 1e-4, float64 rtol 1e-10)"
)


def _ga_impls(ctx: Context, dtype: str, T: int) -> list[Impl]:
    w = GA_WORKLOAD
    P, n, B = w["P"], w["n"], w["B"]
    rng = np.random.default_rng(0)
    pop = {
        "W": rng.normal(0, 1 / np.sqrt(n), (P, n, n)).astype(dtype),
        "W_in": rng.normal(0, 1, (P, n, 1)).astype(dtype),
        "b": np.zeros((P, n), dtype),
        "W_out": rng.normal(0, 1 / np.sqrt(n), (P, 1, n)).astype(dtype),
        "b_out": np.zeros((P, 1), dtype),
        "x0": np.zeros((P, n), dtype),
    }
    trials = flexrnn.tasks.PerceptualDecision(T=T).batch(B, 0, dtype=dtype)
    mask = np.ascontiguousarray(trials.mask)
    names = ("W", "W_in", "b", "W_out", "b_out", "x0")
    args = [pop[k] for k in names]
    parent = np.concatenate([[0], rng.integers(0, w["survivors"], P - 1)]).astype(np.int64)
    mutate = np.ones(P, np.uint8)
    mutate[0] = 0
    trained = [pop[k] for k in names[:5]]
    alpha = 0.1

    def cpp():
        loss, _ = flexrnn._core.population_loss(
            *args, trials.u, trials.target, mask, flexrnn._core.RateOptions(alpha, "tanh"), False
        )
        kids = flexrnn._core.mutate_population(trained, parent, mutate, 0.005, 0, 1)
        return loss, kids

    def numpy_ref():
        loss, _ = reference.population_loss(
            *args,
            trials.u,
            trials.target,
            mask,
            alpha=alpha,
            phi="tanh",
            form="current",
            readout="rate",
        )
        kids = reference.mutate_population(trained, parent, mutate, 0.005, 0, 1)
        return loss, kids

    nets = [
        flexrnn.RateRNN(pop["W"][p], pop["W_in"][p], pop["W_out"][p], tau=10.0, dt=1.0, dtype=dtype)
        for p in range(P)
    ]

    def cpp_one_by_one():
        loss = np.array([flexrnn.train.task_loss(net.run(trials.u).y, trials) for net in nets])
        kids = flexrnn._core.mutate_population(trained, parent, mutate, 0.005, 0, 1)
        return loss, kids

    return [
        Impl("flexrnn", "flexrnn C++: whole population in one call (`population_loss`)", cpp),
        Impl("numpy", "NumPy reference, member by member (`reference.population_loss`)", numpy_ref),
        Impl(
            "flexrnn_serial",
            "flexrnn C++, member by member (`net.run` per member) *(diagnostic)*",
            cpp_one_by_one,
            diagnostic=True,
        ),
    ]


def _check_ga(outs: dict[str, Any], dtype: str) -> dict[str, Any]:
    loss, kids = outs["flexrnn"]
    res = {}
    for key in ("numpy", "flexrnn_serial"):
        l2, k2 = outs[key]
        r = check_outputs(np.asarray(loss), {key: np.asarray(l2)}, dtype)[key]
        r["allclose"] = bool(
            r["allclose"] and all(np.allclose(a, b, **TOLERANCES[dtype]) for a, b in zip(kids, k2))
        )
        res[key] = r
    return res


def render_ga(data: dict[str, Any], ctx: Context) -> list[str]:
    w = data["workload"]
    lines = [
        f"One generation: the masked MSE of P={w['P']} RateRNNs (n={w['n']}, current form, "
        f"tanh) on one PerceptualDecision batch (B={w['B']}, T={w['T']}), then the next "
        "generation's mutations (0.005 N(0, 1) on W, W_in, b, W_out, b_out, from the "
        "counter-based generator). C++: the population in one call, one member per thread; "
        "NumPy: the reference rollout member by member.",
        "",
    ]
    lines += render_timing_table(
        data["by_dtype"],
        lambda c: (
            ("same losses, children" if c["allclose"] else "**DIFFERENT**")
            + f" (max abs diff {c['max_abs_diff']:.1e})"
        ),
        time_header="median time per generation",
    )
    lines += render_cpu_share(data["by_dtype"])
    return lines


def run_ga(ctx: Context) -> dict[str, Any]:
    T = GA_WORKLOAD["quick_T"] if ctx.quick else GA_WORKLOAD["T"]
    results: dict[str, Any] = {"workload": {**GA_WORKLOAD, "T": T}, "by_dtype": {}, "targets": []}
    for dt in DTYPES:
        ctx.log(f"ga: P={GA_WORKLOAD['P']} n={GA_WORKLOAD['n']} T={T} {dt}")
        m = compare(
            ctx, lambda dt=dt: _ga_impls(ctx, dt, T), lambda outs, dt=dt: _check_ga(outs, dt)
        )
        results["by_dtype"][dt] = m
    return results


SECTION = Section(
    "ga", "Genetic algorithm: one generation", run_ga, render_ga, check_text=CHECK_TEXT
)
