"""Benchmark section "backward": loss and gradient (BPTT) of a RateRNN, C++ against the NumPy
reference and PyTorch autograd: the gradients checked, the achieved share of the GEMM rate, and
the call's peak memory measured in fresh processes by :func:`memory_probe`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import flexrnn
import numpy as np
from flexrnn import reference

from bench.hardware import gemm_rate
from bench.harness import (
    BUSY,
    DTYPES,
    REPO,
    Context,
    CpuShare,
    Impl,
    Section,
    Target,
    benchmark_rate_rnn,
    compare,
    fmt_bytes,
    one_thread_diagnostic,
    speed_target,
)
from bench.render import render_cpu_share, render_targets, render_timing_table


@dataclass(frozen=True)
class BackwardWorkload:
    key: str
    title: str
    n: int
    B: int
    T: int
    targets: tuple[Target, ...]
    target_dtypes: tuple[str, ...] = ("float32",)  # speed targets hold for these dtypes
    max_memory_ratio: float = 1.5  # peak memory / (stored states + parameters)
    n_in: int = 3
    n_out: int = 1


BACKWARD_WORKLOAD = BackwardWorkload(
    "rate_bptt", "RateRNN BPTT", n=100, B=64, T=500, targets=(Target("torch", 3),)
)

# gradient check: per parameter, max |g - g_C++| <= tol * max |g_C++|; loss within rtol tol
GRAD_TOLERANCE = {"float32": 1e-3, "float64": 1e-10}

CHECK_TEXT = (
    "every baseline's loss and gradients agreed with the C++ core's before timing (per "
    "parameter, max abs diff ≤ tol × the largest |gradient|; tol "
    + ", ".join(f"{dt} {tol:g}" for dt, tol in GRAD_TOLERANCE.items())
    + ")"
)

_PARAMS = ("W", "W_in", "b", "W_out", "b_out", "x0")


def _backward_problem(w: BackwardWorkload, dtype: str):
    """The model and the batch every implementation gets: (net, trials, parameter arrays).

    Gaussian inputs; a sine target with a phase per trial and output; the mask leaves out the
    first fifth of the trial (like a task's fixation period), so it is not all ones."""
    net = benchmark_rate_rnn(w.n, w.n_in, w.n_out, dtype)
    rng = np.random.default_rng(1)
    u = rng.standard_normal((w.T, w.B, w.n_in)).astype(dtype)
    phase = rng.uniform(0, 2 * np.pi, (1, w.B, w.n_out))
    t = np.arange(w.T)[:, None, None]
    target = (0.5 * np.sin(2 * np.pi * t / 100 + phase)).astype(dtype)
    mask = np.ones((w.T, w.B, w.n_out), dtype)
    mask[: w.T // 5] = 0
    trials = SimpleNamespace(u=u, target=target, mask=mask)
    arrays = {k: getattr(net, k) for k in _PARAMS}
    return net, trials, arrays


def _backward_fns(w: BackwardWorkload, dtype: str, torch_impl: Any = None):
    """{key: fn} of one iteration (loss and gradients) per implementation, plus the net.

    Every fn returns (loss: float, {parameter: gradient array}) with x0's gradient summed
    over the batch (x0 is one vector shared by the trials)."""
    net, trials, arrays = _backward_problem(w, dtype)
    alpha = net.alpha

    def numpy_ref():
        loss, grads, _ = reference.rate_rnn_loss_and_grad(
            trials.u, trials.target, trials.mask, **arrays, alpha=alpha
        )
        grads["x0"] = grads["x0"].sum(axis=0)
        return float(loss), grads

    fns = {
        "flexrnn": lambda: flexrnn.train.loss_and_grad(net, trials),
        "numpy": numpy_ref,
    }
    if torch_impl is not None:
        params = torch_impl.leaf_parameters(arrays)
        data = torch_impl.as_tensors({"u": trials.u, "target": trials.target, "mask": trials.mask})

        def torch_autograd():
            loss, grads = torch_impl.rate_rnn_loss_and_grad(params, **data, alpha=alpha)
            return loss, {k: g.numpy() for k, g in grads.items()}

        fns["torch"] = torch_autograd
    return fns, net, trials


def _backward_impls(ctx: Context, w: BackwardWorkload, dtype: str) -> list[Impl]:
    fns, net, trials = _backward_fns(w, dtype, ctx.torch)
    impls = [
        Impl("flexrnn", "flexrnn C++ (`fr.train.loss_and_grad(net, trials)`)", fns["flexrnn"]),
        Impl(
            "numpy",
            "NumPy reference (`flexrnn.reference.rate_rnn_loss_and_grad`)",
            fns["numpy"],
        ),
    ]
    if "torch" in fns:
        impls.append(Impl("torch", "PyTorch eager autograd (`bench/torch_impl.py`)", fns["torch"]))
    if not ctx.quick:
        if ctx.threads > 1:
            impls.append(one_thread_diagnostic(fns["flexrnn"]))
        impls.append(
            Impl(
                "flexrnn_forward",
                "flexrnn C++ forward only (`net.run(u)`) *(diagnostic)*",
                lambda: net.run(trials.u),
                diagnostic=True,
            )
        )
    return impls


def check_grads(outs: dict[str, Any], dtype: str) -> dict[str, dict]:
    """Loss and gradients of every implementation against the C++ core's (GRAD_TOLERANCE).
    Outputs that are not (loss, grads) pairs (forward-only diagnostics) are not checked."""
    tol = GRAD_TOLERANCE[dtype]
    ref_loss, ref = outs["flexrnn"]
    result: dict[str, dict] = {}
    for key, out in outs.items():
        if key == "flexrnn":
            continue
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
            result[key] = {"allclose": None, "note": "forward only: nothing to check"}
            continue
        loss, grads = out
        loss_rel = abs(loss - ref_loss) / max(abs(ref_loss), np.finfo(dtype).tiny)
        by_param, ok = {}, bool(loss_rel <= tol) and set(grads) == set(ref)
        for name, g_ref in ref.items():
            g = np.asarray(grads.get(name, np.empty(0)))
            if g.shape != g_ref.shape:
                by_param[name] = {"shape_ok": False}
                ok = False
                continue
            scale = float(np.max(np.abs(g_ref))) if g_ref.size else 0.0
            diff = float(np.max(np.abs(g - g_ref))) if g_ref.size else 0.0
            rel = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
            by_param[name] = {"max_abs_diff": diff, "max_abs_grad": scale, "rel_diff": rel}
            ok = ok and rel <= tol
        result[key] = {
            "allclose": ok,
            "tol": tol,
            "loss": loss,
            "loss_rel_diff": loss_rel,
            "max_rel_diff": max(
                (p.get("rel_diff", math.inf) for p in by_param.values()), default=0
            ),
            "by_param": by_param,
        }
    return result


def _bptt_flops(w: BackwardWorkload) -> dict[str, float]:
    """Matrix-product flop of one iteration (2 per multiply-add; elementwise work and the
    loss not counted). Forward: recurrent, input and readout products. Backward: dW and the
    adjoint product g W (2 B n^2 per step), dW_in, dW_out and the readout's dy W_out."""
    T, B, n, n_in, n_out = w.T, w.B, w.n, w.n_in, w.n_out
    forward = 2.0 * T * B * n * (n + n_in + n_out)
    backward = 2.0 * T * B * n * (2 * n + n_in + 2 * n_out)
    return {"forward": forward, "backward": backward, "total": forward + backward}


def _gemm_shapes(w: BackwardWorkload) -> dict[str, tuple[int, int, int]]:
    """NumPy GEMM shapes (m, k, n) of a @ b.T that bound this workload's products: one step's
    recurrent product (B, n) @ (n, n)^T, and all steps at once (T B, n) @ (n, n)^T (what a
    product over the whole trajectory, like dW, could reach at inner dimension n)."""
    return {"step": (w.B, w.n, w.n), "all_steps": (w.T * w.B, w.n, w.n)}


# --- peak memory, measured in a fresh process -------------------------------------------------


def _proc_status_kb(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak_rss(tries: int = 5) -> int:
    """Reset VmHWM (the peak resident set) to the current RSS (Linux: clear_refs 5); returns
    the new VmHWM in KiB. Raises OSError when the reset does not take (VmHWM stays above the
    RSS read just before by over 1 MiB, every try)."""
    seen = []
    for _ in range(tries):
        rss = _proc_status_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        hwm = _proc_status_kb("VmHWM")
        if rss is None or hwm is None:
            break
        if hwm <= rss + 1024:
            return hwm
        seen.append((rss, hwm))
    raise OSError(f"cannot reset the peak RSS with /proc/self/clear_refs (RSS, VmHWM KiB: {seen})")


def memory_probe(impl: str, dtype: str, threads: int) -> dict[str, Any]:
    """Peak RSS increase of one loss-and-gradient call of ``impl`` (flexrnn, numpy, torch).

    Meant for a fresh process (``python -c``, see :func:`_measure_backward_memory`). The model
    and data are built first. Before each measured call, freed memory is handed back to the
    OS: flexrnn's cache of output buffers is emptied (``_core.buffer_cache_clear``, else a
    cached trajectory would already be resident) and glibc trims its heap (``malloc_trim``);
    then VmHWM is reset and the call's peak is VmHWM minus the RSS just before. "cold" is the
    process's first call (one-time library set-up included), "warm" a second identical call
    (the figure reported). The call's outputs (loss, gradients) count: they are alive at the
    peak.
    """
    import ctypes
    import gc

    flexrnn.set_num_threads(threads)
    torch_impl = None
    if impl == "torch":
        from bench import torch_impl

        torch_impl.set_num_threads(threads)
    fns, _, _ = _backward_fns(BACKWARD_WORKLOAD, dtype, torch_impl)
    fn = fns[impl]
    try:
        malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        malloc_trim = None

    def measure() -> dict[str, Any]:
        gc.collect()
        flexrnn._core.buffer_cache_clear()
        if malloc_trim is not None:
            malloc_trim(0)
        base = _reset_peak_rss()  # the RSS now
        out = fn()
        peak = _proc_status_kb("VmHWM")
        held = _proc_status_kb("VmRSS")
        del out
        return {
            "rss_before_kb": base,
            "peak_rss_kb": peak,
            "rss_after_kb": held,
            "peak_increase_bytes": 1024 * (peak - base),
        }

    return {"method": "VmHWM after clear_refs", "cold": measure(), "warm": measure()}


def _stored_bytes(w: BackwardWorkload, dtype: str) -> dict[str, int]:
    """Bytes of what BPTT must keep: the states x and r of every step, the outputs y, and
    the parameters."""
    item = np.dtype(dtype).itemsize
    T, B, n, n_in, n_out = w.T, w.B, w.n, w.n_in, w.n_out
    states = 2 * T * B * n * item
    outputs = T * B * n_out * item
    params = (n * n + n * n_in + n + n_out * n + n_out + n) * item
    return {"states": states, "outputs": outputs, "params": params}


def _measure_backward_memory(ctx: Context, impl: str, dtype: str) -> dict[str, Any]:
    """Runs :func:`memory_probe` in a fresh Python process; its result or {"error": ...}."""
    code = (
        "import json, sys; from bench.sections.backward import memory_probe; "
        "print(json.dumps(memory_probe(sys.argv[1], sys.argv[2], int(sys.argv[3]))))"
    )
    cmd = [sys.executable, "-c", code, impl, dtype, str(ctx.threads)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as err:
        return {"error": repr(err)}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"unreadable probe output: {proc.stdout[-200:]!r}"}


def render_backward(data: dict[str, Any], ctx: Context) -> list[str]:
    w = data["workload"]
    tol = data["grad_tolerance"]
    lines = [
        f"`RateRNN.random(n={w['n']}, n_in={w['n_in']}, n_out={w['n_out']}, g=1.5, tau=10, "
        'dt=1, seed=0)`, `form="current"`, `phi="tanh"`, `readout="rate"`, noise off; '
        "Gaussian inputs, a sine target (one phase per trial), a mask that leaves out the "
        "first fifth of every trial; masked MSE loss. One iteration is forward + loss + "
        "gradients of W, W_in, b, W_out, b_out and x0, on the same arrays for every "
        "implementation: flexrnn's one C++ call; the NumPy reference BPTT; and PyTorch "
        "autograd written as a user would (leaf tensors with `requires_grad`, x0 included, "
        "a Python loop over time building the graph, `loss.backward()`), with PyTorch's "
        "thread count set to flexrnn's. *Speed-up of C++* is the implementation's median "
        "time divided by the C++ call's, from the same run. *Gradient check*: for every "
        "parameter, the largest difference from the C++ gradient relative to the largest "
        "|C++ gradient| (and the loss's relative difference) must be ≤ "
        + ", ".join(f"{tol[dt]:g} ({dt})" for dt in DTYPES)
        + ". Diagnostic rows count toward no target: 1-thread time / default-threads time, "
        "and the forward pass alone (`net.run(u)`) as a share of an iteration.",
        "",
        f"### {w['title']}: n={w['n']}, B={w['B']}, T={w['T']}",
        "",
    ]

    def grad_check(c: dict[str, Any]) -> str:
        if c["allclose"] is None:
            return "– (forward only)"
        verdict = "same loss and gradients" if c["allclose"] else "**DIFFERENT gradients**"
        return verdict + f" (max rel diff {c['max_rel_diff']:.1e})"

    lines += render_timing_table(data["by_dtype"], grad_check, check_header="gradient check")
    lines += render_cpu_share(data["by_dtype"])
    lines += render_targets([t for t in data["targets"] if t.get("kind") != "memory"])
    return lines + _render_rates(data) + _render_memory(data)


def _render_rates(data: dict[str, Any]) -> list[str]:
    """The achieved FLOP rate against the GEMM rates at the square and the workload's shapes."""
    w, fl = data["workload"], data["flop"]
    shapes = data["gemm_shapes"]
    step, whole = shapes["step"], shapes["all_steps"]
    lines = [
        f"Achieved rate: {fl['total'] / 1e9:.2f} GFLOP per iteration, counting matrix "
        "products only (forward 2·T·B·n·(n + n_in + n_out), backward "
        "2·T·B·n·(2n + n_in + 2·n_out): dW and the adjoint product g·W are 2·B·n² each per "
        "step), against NumPy's GEMM rate for the square 2048 product (the machine's "
        f"limit, hardware section), for one step's product ({step[0]}×{step[1]}) @ "
        f"({step[2]}×{step[1]})ᵀ, and for all steps at once ({whole[0]}×{whole[1]}) @ "
        f"({whole[2]}×{whole[1]})ᵀ:",
        "",
        "| dtype | C++ | NumPy reference | PyTorch eager | square GEMM | step GEMM "
        "| all-steps GEMM | C++ / square | C++ / step | C++ / all-steps |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dt in DTYPES:
        f = data["by_dtype"][dt]["flops"]
        g, gm = f["gflops"], f["gemm_gflops"]

        def rate(k, g=g):
            return f"{g[k]:.1f} GFLOP/s" if k in g else "–"

        lines.append(
            f"| {dt} | {rate('flexrnn')} | {rate('numpy')} | {rate('torch')} "
            f"| {gm['square']:.1f} | {gm['step']:.1f} | {gm['all_steps']:.1f} "
            f"| {100 * f['cpp_fraction']['square']:.0f}% "
            f"| {100 * f['cpp_fraction']['step']:.0f}% "
            f"| {100 * f['cpp_fraction']['all_steps']:.0f}% |"
        )
    lines.append("")
    gemm_load = {dt: data["by_dtype"][dt]["gemm"]["cpu_share"].get("others") for dt in DTYPES}
    if any(v is not None and v > BUSY for v in gemm_load.values()):
        lines += [
            "CPU taken by other processes while the GEMM rates above were measured: "
            + ", ".join(f"{dt} {100 * v:.0f}%" for dt, v in gemm_load.items() if v is not None)
            + " — **the machine was busy; the rates and fractions are unreliable**.",
            "",
        ]
    f32 = data["by_dtype"][DTYPES[0]]["flops"]["cpp_fraction"]
    lines += [
        f"At {DTYPES[0]} the C++ iteration reaches {100 * f32['square']:.0f}% of the "
        f"machine's square-GEMM rate, {100 * f32['all_steps']:.0f}% of what the BLAS reaches "
        f"with inner dimension n={w['n']} when all steps' rows go into one product (the "
        f"bound for products this narrow), and {100 * f32['step']:.0f}% of its rate on one "
        "step's product (one BLAS call per step, as the recurrence forces): at this size an "
        "iteration is a chain of small dependent products (a few trials per thread per "
        "step), whose rate is set by per-call overhead, packing and the threads' "
        "synchronisation rather than by the FMA units.",
        "",
    ]
    return lines


MEMORY_LABELS = {
    "flexrnn": "flexrnn C++",
    "numpy": "NumPy reference",
    "torch": "PyTorch eager autograd",
}


def _render_memory(data: dict[str, Any]) -> list[str]:
    """Peak memory of one iteration per implementation, against what BPTT must store."""
    mem = data["memory"]
    stored = mem["stored_bytes"]
    lines = [
        "Peak memory of one iteration, each implementation in a fresh process: the rise of "
        "the resident set (Linux VmHWM, reset just before the call) above the RSS after "
        "building the model and data and one earlier call, with freed memory handed back "
        "first (flexrnn's output-buffer cache emptied, `malloc_trim`), so nothing the call "
        "needs is already resident. The call's outputs count. It is compared with what BPTT "
        "must store: x and r of every step (2·T·B·n values), y, and the parameters — "
        + ", ".join(f"{dt} {fmt_bytes(sum(stored[dt].values()))}" for dt in DTYPES if dt in stored)
        + ".",
        "",
        "| implementation | dtype | peak increase | ÷ stored states + parameters "
        "| first call in the process |",
        "|---|---|---|---|---|",
    ]
    for dt in DTYPES:
        for key, m in mem["by_dtype"].get(dt, {}).items():
            label = MEMORY_LABELS.get(key, key)
            if "error" in m:
                lines.append(f"| {label} | {dt} | not measured ({m['error']}) | – | – |")
                continue
            lines.append(
                f"| {label} | {dt} | {fmt_bytes(m['warm']['peak_increase_bytes'])} "
                f"| {m['ratio']:.2f}× | {fmt_bytes(m['cold']['peak_increase_bytes'])} |"
            )
    lines.append("")
    return lines + render_targets([t for t in data["targets"] if t.get("kind") == "memory"])


def run_backward(ctx: Context) -> dict[str, Any]:
    w = BACKWARD_WORKLOAD
    flop = _bptt_flops(w)
    results: dict[str, Any] = {
        "model": "RateRNN",
        "form": "current",
        "phi": "tanh",
        "readout": "rate",
        "loss": "mse",
        "workload": {
            "key": w.key,
            "title": w.title,
            "n": w.n,
            "B": w.B,
            "T": w.T,
            "n_in": w.n_in,
            "n_out": w.n_out,
        },
        "grad_tolerance": GRAD_TOLERANCE,
        "flop": flop,
        "gemm_shapes": _gemm_shapes(w),
        "by_dtype": {},
        "targets": [],
    }
    for dt in DTYPES:
        ctx.log(f"backward/{w.key} n={w.n} B={w.B} T={w.T} {dt}")
        m = compare(
            ctx,
            lambda dt=dt: _backward_impls(ctx, w, dt),
            lambda outs, dt=dt: check_grads(outs, dt),
        )
        timings = m["timings"]
        t_cpp = timings["flexrnn"]["median_s"]
        ctx.log(f"  GEMM rates at this workload's shapes, {dt}")
        reps = 3 if ctx.quick else 5
        with CpuShare() as cpu:
            gemm = {k: gemm_rate(*s, dt, reps) for k, s in _gemm_shapes(w).items()}
        rates = {"square": ctx.hardware["gemm_square"][dt]["gflops"]}
        rates.update({k: v["gflops"] for k, v in gemm.items()})
        cpp_gflops = flop["total"] / t_cpp / 1e9
        results["by_dtype"][dt] = {
            **m,
            "gemm": {**gemm, "cpu_share": cpu.result},
            "flops": {
                "flop_per_iteration": flop["total"],
                "gflops": {
                    k: flop["total"] / v["median_s"] / 1e9
                    for k, v in timings.items()
                    if k != "flexrnn_forward"
                },
                "gemm_gflops": rates,
                "cpp_fraction": {k: cpp_gflops / r for k, r in rates.items()},
            },
        }
        if dt in w.target_dtypes:
            results["targets"] += [
                speed_target("backward", w.key, "Loss and gradient", dt, tgt, m)
                for tgt in w.targets
            ]

    memory, memory_targets = _measure_memory(ctx, w)
    results["targets"] += memory_targets
    results["memory"] = memory
    return results


def _measure_memory(
    ctx: Context, w: BackwardWorkload
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Peak memory of one iteration, each implementation in a fresh process, against what
    BPTT must store; and the C++ core's memory target per dtype."""
    memory: dict[str, Any] = {"stored_bytes": {}, "by_dtype": {}}
    targets: list[dict[str, Any]] = []
    impls = ["flexrnn", "numpy"] + (["torch"] if ctx.torch is not None else [])
    for dt in DTYPES:
        stored = memory["stored_bytes"][dt] = _stored_bytes(w, dt)
        memory["by_dtype"][dt] = {}
        for key in impls:
            ctx.log(f"  peak memory: {key} {dt} (fresh process)")
            res = _measure_backward_memory(ctx, key, dt)
            if "error" not in res:
                res["ratio"] = res["warm"]["peak_increase_bytes"] / sum(stored.values())
            else:
                ctx.log(f"  peak memory of {key} not measured: {res['error']}")
            memory["by_dtype"][dt][key] = res
        cpp = memory["by_dtype"][dt]["flexrnn"]
        measured = cpp.get("ratio")
        targets.append(
            {
                "section": "backward",
                "workload": w.key,
                "title": "Loss and gradient",
                "dtype": dt,
                "kind": "memory",
                "baseline": "stored",
                "relative_to": "stored states + parameters",
                "target_text": f"C++ peak memory ≤ {w.max_memory_ratio:g}× stored states "
                "+ parameters",
                "max_ratio": w.max_memory_ratio,
                "measured": measured,
                "met": None if measured is None else bool(measured <= w.max_memory_ratio),
                "outputs_agree": None,
                "busy": False,
            }
        )
    return memory, targets


SECTION = Section(
    "backward",
    "Loss and gradient (BPTT): RateRNN",
    run_backward,
    render_backward,
    check_text=CHECK_TEXT,
)
