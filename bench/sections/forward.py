"""Benchmark section "forward": the RateRNN rollout, C++ against the NumPy reference and
PyTorch eager, at three sizes (a single trial, a small batch, a large network), with the
large workload's FLOP rate against the machine's GEMM rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from flexrnn import reference

from bench.harness import (
    DTYPES,
    Context,
    Impl,
    Section,
    Target,
    benchmark_rate_rnn,
    check_outputs,
    compare,
    one_thread_diagnostic,
    speed_target,
)
from bench.render import render_cpu_share, render_targets, render_timing_table


@dataclass(frozen=True)
class RateWorkload:
    key: str
    title: str
    n: int
    B: int
    T: int
    targets: tuple[Target, ...]
    quick_T: int | None = None  # shorter rollout in --quick runs
    diagnostics: tuple[str, ...] = ()  # "1thread", "core"
    report_flops: bool = False
    n_in: int = 3
    n_out: int = 1


RATE_WORKLOADS = (
    RateWorkload(
        "single_trial",
        "Single trial",
        n=50,
        B=1,
        T=750,
        targets=(Target("numpy", 20), Target("torch", 40)),
        diagnostics=("1thread", "core"),
    ),
    RateWorkload(
        "small_batch",
        "Small batch",
        n=50,
        B=16,
        T=750,
        targets=(Target("numpy", 4), Target("torch", 8)),
        diagnostics=("1thread", "core"),
    ),
    RateWorkload(
        "large",
        "Large",
        n=1024,
        B=64,
        T=200,
        quick_T=50,
        targets=(Target("numpy", 0.9),),
        diagnostics=("1thread",),
        report_flops=True,
    ),
)

CHECK_TEXT = (
    "every baseline's y agreed with the C++ core's before timing "
    "(allclose; float32 rtol 1e-4 atol 1e-5, float64 rtol 1e-10 "
    "atol 1e-12)"
)


def _rate_flops(w: RateWorkload, T: int) -> float:
    """Multiply-adds of the matrix products, counted as 2 flops each (elementwise work not
    counted): recurrent 2 B n^2, input 2 B n n_in, readout 2 B n n_out per step."""
    return 2.0 * T * w.B * w.n * (w.n + w.n_in + w.n_out)


def _rate_impls(ctx: Context, w: RateWorkload, dtype: str, T: int):
    net = benchmark_rate_rnn(w.n, w.n_in, w.n_out, dtype)
    u = np.random.default_rng(1).standard_normal((T, w.B, w.n_in)).astype(dtype)
    arrays = {k: getattr(net, k) for k in ("W", "W_in", "b", "W_out", "b_out", "x0")}
    alpha = net.alpha

    impls = [Impl("flexrnn", "flexrnn C++ (`net.run(u)`)", lambda: net.run(u).y)]
    impls.append(
        Impl(
            "numpy",
            "NumPy reference (`flexrnn.reference.rate_rnn`)",
            lambda: reference.rate_rnn(u, **arrays, alpha=alpha)["y"],
        )
    )
    if ctx.torch is not None:
        tt = ctx.torch.as_tensors({"u": u, **arrays})
        impls.append(
            Impl(
                "torch",
                "PyTorch eager (`bench/torch_impl.py`)",
                lambda: ctx.torch.rate_rnn(**tt, alpha=alpha)[2].numpy(),
            )
        )
    if not ctx.quick and "1thread" in w.diagnostics and ctx.threads > 1:
        impls.append(one_thread_diagnostic(lambda: net.run(u).y))
    if not ctx.quick and "core" in w.diagnostics:
        # the compiled call alone, without RateRNN.run's validation (private API: skipped if
        # it changes)
        try:
            rollout, args = net.kernels["rollout"], net._kernel_args(u)  # validated once

            def core():
                return rollout(*args)[2]

            core()
            impls.append(
                Impl(
                    "flexrnn_core",
                    "flexrnn `_core` call only, no validation *(diagnostic)*",
                    core,
                    diagnostic=True,
                )
            )
        except Exception as err:  # noqa: BLE001
            ctx.log(f"  core-only diagnostic skipped: {err!r}")
    return impls


def render_forward(data: dict[str, Any], ctx: Context) -> list[str]:
    lines = [
        '`RateRNN`, `form="current"`, `phi="tanh"`, `n_in=3`, `n_out=1`, noise off, '
        "`RateRNN.random(g=1.5, tau=10, dt=1, seed=0)`, Gaussian inputs. The same arrays go "
        "to the three implementations; each returns x, r (T, B, n) and y (T, B, n_out). "
        "*Speed-up of C++* is the implementation's median time divided by the C++ core's "
        "(`net.run(u)`, Python-side validation included), from the same run. Rows marked "
        "diagnostic are extra measurements of the C++ core and count toward no target; their "
        "ratio reads as thread scaling (1-thread time / default-threads time) or as the share "
        "of `net.run` left once its Python-side validation is skipped (`_core` call time / "
        "`net.run` time).",
        "",
    ]
    targets = data["targets"]
    for wl in data["workloads"]:
        lines += [
            f"### {wl['title']}: n={wl['n']}, B={wl['B']}, T={wl['T']}",
            "",
        ]
        lines += render_timing_table(
            wl["by_dtype"],
            lambda c: (
                ("same y" if c["allclose"] else "**DIFFERENT y**")
                + f" (max abs diff {c['max_abs_diff']:.1e})"
            ),
        )
        lines += render_cpu_share(wl["by_dtype"])
        lines += render_targets([t for t in targets if t["workload"] == wl["key"]])
        if "flops" in wl["by_dtype"][DTYPES[0]]:
            lines += [
                "Achieved rate (matrix products only: "
                "2·T·B·n·(n + n_in + n_out) flop per run) against NumPy's square-GEMM "
                "rate:",
                "",
                "| dtype | C++ | NumPy reference | PyTorch eager | GEMM limit | C++ / GEMM limit |",
                "|---|---|---|---|---|---|",
            ]
            for dt in DTYPES:
                f = wl["by_dtype"][dt]["flops"]
                g = f["gflops"]

                def rate(k, g=g):
                    return f"{g[k]:.1f} GFLOP/s" if k in g else "–"

                lines.append(
                    f"| {dt} | {rate('flexrnn')} | {rate('numpy')} | {rate('torch')} "
                    f"| {f['numpy_gemm_gflops']:.1f} GFLOP/s "
                    f"| {100 * f['cpp_fraction_of_gemm']:.0f}% |"
                )
            lines.append("")
    return lines


def run_forward(ctx: Context) -> dict[str, Any]:
    results: dict[str, Any] = {
        "model": "RateRNN",
        "form": "current",
        "phi": "tanh",
        "noise_std": 0.0,
        "workloads": [],
        "targets": [],
    }
    for w in RATE_WORKLOADS:
        T = w.quick_T if (ctx.quick and w.quick_T) else w.T
        entry: dict[str, Any] = {
            "key": w.key,
            "title": w.title,
            "n": w.n,
            "B": w.B,
            "T": T,
            "n_in": w.n_in,
            "n_out": w.n_out,
            "by_dtype": {},
        }
        for dt in DTYPES:
            ctx.log(f"forward/{w.key} n={w.n} B={w.B} T={T} {dt}")
            m = compare(
                ctx,
                lambda w=w, dt=dt, T=T: _rate_impls(ctx, w, dt, T),
                lambda outs, dt=dt: check_outputs(
                    outs["flexrnn"], {k: v for k, v in outs.items() if k != "flexrnn"}, dt
                ),
            )
            timings = m["timings"]
            t_cpp = timings["flexrnn"]["median_s"]
            d: dict[str, Any] = dict(m)
            if w.report_flops:
                flop = _rate_flops(w, T)
                gemm = ctx.hardware["gemm_square"][dt]["gflops"]
                d["flops"] = {
                    "flop_per_run": flop,
                    "gflops": {k: flop / v["median_s"] / 1e9 for k, v in timings.items()},
                    "numpy_gemm_gflops": gemm,
                    "cpp_fraction_of_gemm": flop / t_cpp / 1e9 / gemm,
                }
            results["targets"] += [
                speed_target("forward", w.key, w.title, dt, tgt, m) for tgt in w.targets
            ]
            entry["by_dtype"][dt] = d
        results["workloads"].append(entry)
    return results


SECTION = Section(
    "forward", "Forward rollout: RateRNN", run_forward, render_forward, check_text=CHECK_TEXT
)
