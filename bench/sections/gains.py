"""Benchmark section "gains": what per-neuron gains cost. The forward rollout and the loss and
gradient (BPTT) of a RateRNN run with per-neuron ``pre_gain`` and ``post_gain`` (``(n,)``,
both at once, with a scalar ``gain``) against the global-gain path: the same network with the
modulated matrix ``diag(post) W diag(pre)`` formed beforehand and run with the scalar gain
only. The two compute the same function, so their outputs are checked against each other; the
target is an overhead of at most 10 % (C++ with the gains at >= 1/1.1 of the global path's
speed)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import flexrnn
import numpy as np

from bench.harness import (
    DTYPES,
    Context,
    Impl,
    Section,
    Target,
    benchmark_rate_rnn,
    compare,
    speed_target,
)
from bench.render import render_cpu_share, render_targets, render_timing_table

GAIN = 1.3  # the scalar gain both paths run with
OVERHEAD = Target("global", 1 / 1.1)  # at most 10 % slower than the global-gain path
# the two paths round differently (the product with W diag(pre) vs with W then pre), and a
# chaotic network (g = 1.5) grows the difference over the run: outputs are checked to within
# tol * max |y|, gradients per parameter to within tol * max |g_global|
TOLERANCE = {"float32": 1e-3, "float64": 1e-9}


@dataclass(frozen=True)
class GainWorkload:
    key: str
    title: str
    n: int
    B: int
    T: int
    quick_T: int
    n_in: int = 3
    n_out: int = 1


WORKLOADS = (
    GainWorkload("gains_n100", "n = 100", n=100, B=64, T=500, quick_T=100),
    GainWorkload("gains_n1000", "n = 1000", n=1000, B=16, T=100, quick_T=25),
)

CHECK_TEXT = (
    "the run with per-neuron pre/post gains and the global-gain run of the explicitly modulated "
    "matrix agreed before timing (outputs and gradients, the modulated W's chain-ruled, within "
    "1e-3 (float32) / 1e-9 (float64) of the largest entry: the two round differently)"
)
IMPL_NAMES = {"global": "the global-gain path"}


def _setup(w: GainWorkload, dtype: str, T: int):
    net = benchmark_rate_rnn(w.n, w.n_in, w.n_out, dtype)
    rng = np.random.default_rng(1)
    pre = rng.uniform(0.5, 1.5, w.n).astype(dtype)
    post = rng.uniform(0.5, 1.5, w.n).astype(dtype)
    explicit = net.copy()
    explicit.W = (post[:, None] * net.W * pre[None, :]).astype(dtype)
    u = rng.normal(0, 1, (T, w.B, w.n_in)).astype(dtype)
    target = rng.normal(0, 1, (T, w.B, w.n_out)).astype(dtype)
    trials = SimpleNamespace(u=u, target=target, mask=None)
    return net, explicit, pre, post, trials


def _forward_impls(w: GainWorkload, dtype: str, T: int) -> list[Impl]:
    net, explicit, pre, post, trials = _setup(w, dtype, T)

    def modulated():
        return net.run(trials.u, gain=GAIN, pre_gain=pre, post_gain=post, batch_first=False).y

    def global_path():
        return explicit.run(trials.u, gain=GAIN, batch_first=False).y

    return [
        Impl("flexrnn", "C++ with per-neuron pre_gain and post_gain (`net.run`)", modulated),
        Impl("global", "C++ global gain, modulated W formed beforehand (`net.run`)", global_path),
    ]


def _backward_impls(w: GainWorkload, dtype: str, T: int) -> list[Impl]:
    net, explicit, pre, post, trials = _setup(w, dtype, T)

    def modulated():
        loss, grads = flexrnn.train.loss_and_grad(
            net, trials, gain=GAIN, pre_gain=pre, post_gain=post
        )
        # the explicit network's W gradient, for the check: dW' = dW / (post pre^T)
        return loss, {**grads, "W": grads["W"] / (post[:, None] * pre[None, :])}

    def global_path():
        return flexrnn.train.loss_and_grad(explicit, trials, gain=GAIN)

    return [
        Impl("flexrnn", "C++ BPTT with per-neuron pre_gain and post_gain", modulated),
        Impl("global", "C++ BPTT, global gain, modulated W formed beforehand", global_path),
    ]


def _within(diff: float, scale: float, tol: float) -> dict[str, Any]:
    ok = bool(np.isfinite(diff) and diff <= tol * max(scale, 1e-30))
    return {"allclose": ok, "max_abs_diff": diff, "shape_ok": True, "rtol": tol}


def _check_forward(outs: dict[str, Any], dtype: str) -> dict[str, Any]:
    y, y_global = np.asarray(outs["flexrnn"]), np.asarray(outs["global"])
    diff = float(np.max(np.abs(y - y_global)))
    return {"global": _within(diff, float(np.max(np.abs(y_global))), TOLERANCE[dtype])}


def _check_backward(outs: dict[str, Any], dtype: str) -> dict[str, Any]:
    (loss, grads), (loss_g, grads_g) = outs["flexrnn"], outs["global"]
    tol = TOLERANCE[dtype]
    worst = 0.0  # the largest difference relative to its gradient's largest entry
    for name, g in grads_g.items():
        scale = max(float(np.max(np.abs(g))), np.finfo(g.dtype).tiny) if g.size else 1.0
        worst = max(worst, float(np.max(np.abs(grads[name] - g))) / scale if g.size else 0.0)
    result = _within(worst, 1.0, tol)
    result["allclose"] = bool(result["allclose"] and np.isclose(loss, loss_g, rtol=tol))
    return {"global": result}


def render_gains(data: dict[str, Any], ctx: Context) -> list[str]:
    lines = [
        "A RateRNN (current form, tanh, `RateRNN.random(g=1.5, tau=10)`) run with per-neuron "
        f"`pre_gain` and `post_gain` (n,) and the scalar gain {GAIN}, against the global-gain "
        "path: the same network with `diag(post) W diag(pre)` formed beforehand, run with "
        "the scalar gain only (the same function; outputs checked). *Speed-up of C++* is the "
        "global path's median time over the per-neuron path's: 1/1.1 = 0.91 or more is an "
        "overhead of at most 10 %.",
        "",
    ]
    for wl in data["workloads"]:
        for part, title in (
            ("forward", "forward (`net.run`)"),
            ("backward", "BPTT (`loss_and_grad`)"),
        ):
            lines += [f"### {title}: n={wl['n']}, B={wl['B']}, T={wl['T']}", ""]
            by_dtype = wl[part]
            lines += render_timing_table(
                by_dtype,
                lambda c: (
                    ("same function" if c["allclose"] else "**DIFFERENT**")
                    + f" (max diff {c['max_abs_diff']:.1e})"
                ),
            )
            lines += render_cpu_share(by_dtype)
            key = f"{wl['key']}_{part}"
            lines += render_targets(
                [t for t in data["targets"] if t["workload"] == key], IMPL_NAMES
            )
    return lines


def run_gains(ctx: Context) -> dict[str, Any]:
    results: dict[str, Any] = {"gain": GAIN, "workloads": [], "targets": []}
    for w in WORKLOADS:
        T = w.quick_T if ctx.quick else w.T
        entry: dict[str, Any] = {"key": w.key, "n": w.n, "B": w.B, "T": T, "forward": {},
                                 "backward": {}}  # fmt: skip
        for part, make, check in (
            ("forward", _forward_impls, _check_forward),
            ("backward", _backward_impls, _check_backward),
        ):
            for dt in DTYPES:
                ctx.log(f"gains/{part} n={w.n} B={w.B} T={T} {dt}")
                m = compare(
                    ctx,
                    lambda make=make, w=w, dt=dt, T=T: make(w, dt, T),
                    lambda outs, check=check, dt=dt: check(outs, dt),
                )
                entry[part][dt] = m
                title = f"{part} with per-neuron gains, n = {w.n}"
                results["targets"].append(
                    speed_target("gains", f"{w.key}_{part}", title, dt, OVERHEAD, m)
                )
        results["workloads"].append(entry)
    return results


SECTION = Section(
    "gains",
    "Per-neuron gains: overhead against the global-gain path",
    run_gains,
    render_gains,
    check_text=CHECK_TEXT,
    impl_names=IMPL_NAMES,
)
