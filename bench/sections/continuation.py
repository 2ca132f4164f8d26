"""Benchmark section "continuation": bifurcation continuation of a random network to just past
its spectral edge (target: n up to 1000 in seconds).

For n = 100, 500 and 1000, ``RateRNN.random(n, 0, 0, tau=1, dt=0.1, seed=1)`` (W ~ N(0, 1/n))
is followed from gain 0.6 to 0.02 past ``g* = 1 / max Re eig(W)`` (11 gains, 4 starting
states, no branch switching, no Lyapunov sweep): one branch, x = 0, which loses its stability
at g*. ``fr.analysis.continuation`` with its defaults (eigenvalues by ARPACK from n = 200)
runs with flexrnn's threads set to 1 and to 2; for n <= 500 the dense eigenvalue solver
(``eigensolver="dense"``) is a diagnostic row. *Check*: the first bifurcation lies at g*
(relative 1e-7, g* from ``np.linalg.eigvals(W)``) and the rows find the same bifurcations.
The threads of NumPy's BLAS (LU factorisations, the products ARPACK asks for) are set by
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` before the run; the report records them and
the load average, and the CPU time of one run (steadier than the wall-clock time on a shared
machine).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import flexrnn
import numpy as np

from bench.harness import Context, Impl, Section, compare, flexrnn_threads, fmt_time
from bench.render import render_cpu_share, render_timing_table

SIZES = (100, 500, 1000)
QUICK_SIZES = (100, 500)
DENSE_UP_TO = 500  # the dense solver's row (10 n^3 per eigenvalue evaluation) up to this n
GAINS = 11
TARGET_S = 5.0  # n = 1000 "in seconds"


def _network(n: int):
    net = flexrnn.RateRNN.random(n, 0, 0, g=1.0, tau=1.0, dt=0.1, seed=1)
    eig = np.linalg.eigvals(net.W)
    g_star = float(1 / eig[np.argmax(eig.real)].real)
    return net, g_star, np.linspace(0.6, g_star + 0.02, GAINS)


def _impls(n: int, net, gains) -> list[Impl]:
    def run(solver):
        return lambda: flexrnn.analysis.continuation(
            net, gains, n_init=4, chaos=False, switch_branches=False, eigensolver=solver
        )

    impls = [
        Impl("flexrnn", "`fr.analysis.continuation`, 1 thread", run("auto"),
             context=lambda: flexrnn_threads(1)),
        Impl("threads2", "`fr.analysis.continuation`, 2 threads *(diagnostic)*", run("auto"),
             context=lambda: flexrnn_threads(2), diagnostic=True),
    ]  # fmt: skip
    if n <= DENSE_UP_TO:
        impls.append(Impl("dense", '`eigensolver="dense"`, 1 thread *(diagnostic)*',
                          run("dense"), context=lambda: flexrnn_threads(1),
                          diagnostic=True))  # fmt: skip
    return impls


def _check(outs: dict[str, Any], g_star: float) -> dict[str, dict]:
    ref = outs["flexrnn"]
    found = [(b.kind, b.gain) for b in ref.bifurcations]
    result = {"flexrnn_first": ref.bifurcations[0].gain if found else None}
    for key, c in outs.items():
        if key == "flexrnn":
            continue
        theirs = [(b.kind, b.gain) for b in c.bifurcations]
        same = [k for k, _ in theirs] == [k for k, _ in found] and np.allclose(
            [g for _, g in theirs], [g for _, g in found], rtol=1e-7
        )
        at_edge = bool(found) and abs(found[0][1] - g_star) <= 1e-7 * g_star
        result[key] = {"allclose": bool(same and at_edge), "bifurcations": len(theirs),
                       "eigensolver": c.options["eigensolver"]}  # fmt: skip
    return result


def _cpu_time(impl: Impl) -> float:
    """CPU seconds (every thread of this process) of one call: on a shared machine a steadier
    measure of the work than the wall-clock time, which counts the waits for a CPU."""
    with impl.context() if impl.context else contextlib.nullcontext():
        t0 = time.process_time()
        impl.fn()
        return time.process_time() - t0


def run(ctx: Context) -> dict[str, Any]:
    """Each size: the network and g* once, then the rows checked and timed interleaved."""
    results: dict[str, Any] = {
        "workload": {"gains": GAINS, "n_init": 4, "seed": 1, "target_s": TARGET_S},
        "blas_threads": {
            k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
        },  # fmt: skip
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "by_n": {},
    }
    for n in QUICK_SIZES if ctx.quick else SIZES:
        net, g_star, gains = _network(n)
        ctx.log(f"continuation n={n}: 0.6 .. {gains[-1]:.4f} ({GAINS} gains), g* = {g_star:.6f}")
        m = compare(ctx, lambda n=n, net=net, gains=gains: _impls(n, net, gains),
                    lambda outs, g=g_star: _check(outs, g))  # fmt: skip
        m["g_star"] = g_star
        m["cpu_s"] = _cpu_time(_impls(n, net, gains)[0])
        m["loadavg"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        results["by_n"][str(n)] = {"float64": m}
    return results


def _check_text(c: dict[str, Any]) -> str:
    verdict = "same bifurcations, first at g*" if c["allclose"] else "**DIFFER**"
    return f"{verdict} ({c['bifurcations']} found; eigenvalues: {c['eigensolver']})"


def render(data: dict[str, Any], ctx: Context) -> list[str]:
    w = data["workload"]
    blas = ", ".join(f"{k}={v}" for k, v in data["blas_threads"].items() if v) or "BLAS default"
    lines = [
        f"`RateRNN.random(n, 0, 0, tau=1, dt=0.1, seed={w['seed']})` followed from gain 0.6 to "
        f"g* + 0.02 ({w['gains']} gains; g* = 1 / max Re eig(W), where x = 0 loses its "
        "stability), `n_init=4, chaos=False, switch_branches=False`: one branch, the edge "
        "located. Default eigenvalues: ARPACK (the few rightmost, warm-started) from n = 200; "
        f"the dense solver is a diagnostic row up to n = {DENSE_UP_TO}. {blas}. "
        f"Target: n = 1000 within {w['target_s']:g} s.",
        "",
    ]
    for n, by in data["by_n"].items():
        m = by["float64"]
        load = m.get("loadavg")
        lines += [f"**n = {n}** (g* = {m['g_star']:.6f}; CPU time of one run at 1 thread "
                  f"{fmt_time(m['cpu_s'])}"
                  + (f"; load average {load[0]:.1f}" if load else "") + ")", ""]  # fmt: skip
        lines += render_timing_table(by, _check_text, time_header="median time per run")
        lines += render_cpu_share(by)
    big = data["by_n"].get("1000")
    if big:
        t = big["float64"]["timings"]["flexrnn"]["median_s"]
        verdict = "met" if t <= data["workload"]["target_s"] else "**not met**"
        cpu = big["float64"]["cpu_s"]
        lines += [f"n = 1000: {fmt_time(t)} wall-clock, {fmt_time(cpu)} CPU (target "
                  f"{data['workload']['target_s']:g} s wall-clock: {verdict}).", ""]  # fmt: skip
    return lines


SECTION = Section("continuation", "Bifurcation continuation: n = 100, 500, 1000", run, render)
