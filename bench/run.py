"""Benchmark runner: the C++ core against the NumPy reference and PyTorch eager, same process.

Usage (from the repository root)::

    python -m bench                # full run (~1-2 min): bench/results/*.json, docs/benchmarks.md
    python -m bench --quick        # smoke run (~40 s); markdown in bench/results/ by default
    python -m bench --only forward --repeats 5 --markdown /tmp/b.md

Every run first measures the hardware limit (the GEMM rate NumPy's BLAS reaches here), then
runs each registered benchmark section. A section is a function ``run(ctx) -> dict`` (JSON-able
results, with every raw timing) plus ``render(data, ctx) -> list of markdown lines``,
registered with :func:`register`; sections may report targets (``data["targets"]``), which the
summary collects. To add one (FORCE, ...), write the two functions below the existing ones
and decorate ``run`` with ``@register(name, title, render)`` (see "forward").

Sections: "forward" (RateRNN rollout) and "backward" (loss and BPTT gradient of a RateRNN
against the NumPy reference and PyTorch autograd, the achieved share of the GEMM rate, and
the call's peak memory measured in fresh processes by :func:`memory_probe`); "force" (FORCE
steps per second at n = 256, 1000, 2000 against the naive NumPy RLS, and the RLS kernel's
bytes per update against the measured memory bandwidth); "ga" (one generation of the
genetic algorithm: the population in one C++ call against the NumPy reference member by
member).

Timing rules (docs/benchmarks.md repeats them): every implementation is run once and its output
checked against the C++ core's before anything is timed (this is also the warm-up); then the
implementations are timed interleaved, in an order rotated every repeat, with
``time.perf_counter``; a sample of a fast call is the mean over enough back-to-back calls to last
``min_sample_s``; the reported time is the median sample. Ratios compare medians from the same
run, so they are what counts; absolute times on a shared machine are only indicative.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

if __package__ in (None, ""):  # run as a script: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.modules.setdefault("bench.run", sys.modules[__name__])  # sections register here

import flexrnn
import numpy as np
from flexrnn import reference

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results"
DEFAULT_MARKDOWN = REPO / "docs" / "benchmarks.md"
DTYPES = ("float32", "float64")
BUSY = 0.10  # other processes' CPU share above which a comparison is flagged (and retried)


# --------------------------------------------------------------------------------------------
# Run context and the section registry
# --------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What every section sees: run options, thread count, optional baselines, hardware."""

    quick: bool
    repeats: int
    min_sample_s: float
    threads: int
    torch: Any = None  # the bench.torch_impl module, or None when torch is not installed
    hardware: dict[str, Any] = field(default_factory=dict)
    budget_s: float | None = None  # per timed comparison; fewer repeats past it
    min_repeats: int = 3
    retry_busy: bool = False  # measure a comparison again when the machine was busy
    max_retries: int = 2
    deadline: float | None = None  # time.perf_counter() after which nothing is retried
    verbose: bool = True

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)


@dataclass
class Benchmark:
    name: str
    title: str
    run: Callable[[Context], dict[str, Any]]
    render: Callable[[dict[str, Any], Context], list[str]]


BENCHMARKS: list[Benchmark] = []


def register(name: str, title: str, render: Callable[[dict[str, Any], Context], list[str]]):
    """Decorator: add ``run(ctx) -> dict`` to the list of sections, in definition order."""

    def deco(run: Callable[[Context], dict[str, Any]]):
        if any(b.name == name for b in BENCHMARKS):
            raise ValueError(f"benchmark section {name!r} registered twice")
        BENCHMARKS.append(Benchmark(name, title, run, render))
        return run

    return deco


# --------------------------------------------------------------------------------------------
# Generic helpers: timing, output checks, targets, formatting
# --------------------------------------------------------------------------------------------


@dataclass
class Impl:
    """One implementation of a workload: ``fn()`` runs it once and returns its outputs.

    ``context`` (optional) is entered around each timed sample (e.g. a thread-count change);
    diagnostic implementations are shown in the tables but never count toward targets.
    """

    key: str
    label: str
    fn: Callable[[], Any]
    context: Callable[[], contextlib.AbstractContextManager] | None = None
    diagnostic: bool = False


def _sample(impl: Impl, number: int) -> float:
    """Seconds per call, averaged over ``number`` back-to-back calls."""
    ctx = impl.context() if impl.context else contextlib.nullcontext()
    with ctx:
        t0 = time.perf_counter()
        for _ in range(number):
            impl.fn()
        return (time.perf_counter() - t0) / number


def run_once(impl: Impl) -> tuple[Any, float]:
    """One call (with the implementation's context): (its output, seconds)."""
    with impl.context() if impl.context else contextlib.nullcontext():
        t0 = time.perf_counter()
        out = impl.fn()
        return out, time.perf_counter() - t0


def time_interleaved(
    impls: Sequence[Impl],
    repeats: int,
    min_sample_s: float,
    first_call_s: dict[str, float] | None = None,
    budget_s: float | None = None,
    min_repeats: int = 3,
) -> dict[str, dict]:
    """Median-of-``repeats`` timings, implementations interleaved (order rotated every repeat).

    Assumes every implementation has been warmed up (``first_call_s``: how long that took,
    only recorded). ``number``, the calls per sample, makes a sample last about
    ``min_sample_s`` (1 for slow calls); it is calibrated on one extra call unless the
    warm-up call took over a second.
    With ``budget_s``, fewer repeats are taken when one round of all implementations would
    not fit ``repeats`` times in the budget (a loaded machine): never below ``min_repeats``
    unless even those would take over twice the budget.
    """
    numbers, calibration = {}, {}
    round_s = 0.0
    for impl in impls:
        warm = (first_call_s or {}).get(impl.key)
        if warm is not None and warm >= 1.0 and warm >= 20 * min_sample_s:
            once = warm  # one call per sample anyway: spare the slow calibration call
            calibration[impl.key] = None
        else:
            once = calibration[impl.key] = _sample(impl, 1)
        numbers[impl.key] = max(1, min(10_000, math.ceil(min_sample_s / max(once, 1e-9))))
        round_s += numbers[impl.key] * once
    if budget_s is not None and repeats * round_s > budget_s:
        fit = int(budget_s // max(round_s, 1e-9))
        floor = min_repeats if min_repeats * round_s <= 2 * budget_s else 1
        repeats = max(1, min(repeats, max(fit, floor)))
    samples: dict[str, list[float]] = {impl.key: [] for impl in impls}
    for i in range(repeats):
        k = i % len(impls)
        for impl in list(impls[k:]) + list(impls[:k]):
            samples[impl.key].append(_sample(impl, numbers[impl.key]))
    out = {}
    for impl in impls:
        s = np.asarray(samples[impl.key])
        out[impl.key] = {
            "label": impl.label,
            "repeats": len(s),
            "warmup_call_s": (first_call_s or {}).get(impl.key),
            "calibration_call_s": calibration[impl.key],
            "diagnostic": impl.diagnostic,
            "number": numbers[impl.key],
            "samples_s": s.tolist(),
            "median_s": float(np.median(s)),
            "min_s": float(s.min()),
            "q1_s": float(np.percentile(s, 25)),
            "q3_s": float(np.percentile(s, 75)),
        }
    return out


def compare(
    ctx: Context,
    make_impls: Callable[[], list[Impl]],
    check: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """Check, then time, a set of implementations of one workload.

    Every implementation runs once (the warm-up) and ``check(outputs by key)`` records whether
    they agree; then :func:`time_interleaved`. When other processes took more than BUSY of the
    CPUs meanwhile and ``ctx.retry_busy`` and the run's deadline allow, waits for the machine to
    calm down and measures again (up to ``ctx.max_retries`` times), then keeps the attempt
    that other processes disturbed least; the others' medians go to
    ``discarded_busy_attempts``.
    Returns {"check", "timings", "speedup_of_cpp" (each implementation's median time over
    the C++ core's, key "flexrnn"), "cpu_share", "discarded_busy_attempts"}.
    """
    attempts: list[dict[str, Any]] = []
    while True:
        t_start = time.perf_counter()
        impls = make_impls()
        outs, first = {}, {}
        for impl in impls:
            outs[impl.key], first[impl.key] = run_once(impl)
        result = check(outs)
        del outs
        with CpuShare() as cpu:
            timings = time_interleaved(
                impls, ctx.repeats, ctx.min_sample_s, first, ctx.budget_s, ctx.min_repeats
            )
        took = time.perf_counter() - t_start
        others = cpu.result.get("others")
        ctx.log(
            "  "
            + ", ".join(f"{k} {fmt_time(v['median_s'])}" for k, v in timings.items())
            + ("" if others is None else f"  (other processes: {100 * others:.0f}% CPU)")
        )
        attempts.append({"check": result, "timings": timings, "cpu_share": cpu.result})
        left = ctx.deadline - time.perf_counter() if ctx.deadline else 0.0
        if (
            not _busy(cpu.result)
            or not ctx.retry_busy
            or len(attempts) > ctx.max_retries
            or left < 2 * took + 5
        ):
            break
        ctx.log("  machine busy: measuring again once it is idle")
        wait_until_idle(ctx, min(15.0, left - 2 * took - 5))
    # keep the attempt least disturbed by other processes
    best = min(
        range(len(attempts)), key=lambda i: (attempts[i]["cpu_share"].get("others") or 0.0, -i)
    )
    kept = attempts[best]
    t_cpp = kept["timings"]["flexrnn"]["median_s"]
    kept["speedup_of_cpp"] = {
        k: v["median_s"] / t_cpp for k, v in kept["timings"].items() if k != "flexrnn"
    }
    kept["discarded_busy_attempts"] = [
        {
            "cpu_share": a["cpu_share"],
            "median_s": {k: v["median_s"] for k, v in a["timings"].items()},
        }
        for i, a in enumerate(attempts)
        if i != best
    ]
    return kept


TOLERANCES = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-10, "atol": 1e-12}}


def check_outputs(ref: np.ndarray, others: dict[str, np.ndarray], dtype: str) -> dict[str, dict]:
    """Compare each output with ``ref`` (allclose with the dtype's tolerance)."""
    tol = TOLERANCES[dtype]
    out = {}
    for key, y in others.items():
        y = np.asarray(y)
        same_shape = y.shape == ref.shape
        diff = float(np.max(np.abs(y - ref))) if same_shape and ref.size else 0.0
        ok = bool(same_shape and np.allclose(y, ref, **tol))
        out[key] = {"allclose": ok, "max_abs_diff": diff, "shape_ok": same_shape, **tol}
    return out


@dataclass(frozen=True)
class Target:
    """C++ must be at least ``min_speedup`` times as fast as ``baseline`` (time ratio)."""

    baseline: str
    min_speedup: float

    def text(self, baseline_name: str) -> str:
        if self.min_speedup < 1:
            return f"C++ ≥ {self.min_speedup:g}× {baseline_name}'s speed"
        return f"C++ ≥ {self.min_speedup:g}× faster than {baseline_name}"


class CpuShare:
    """How much CPU other processes took while a block ran (a loaded machine skews timings).

    Reads the machine-wide busy time from /proc/stat and this process's own CPU time;
    ``others`` is the rest, as a fraction of all CPUs over the wall time (None off Linux).
    """

    def __enter__(self) -> CpuShare:
        self.result: dict[str, float | None] = {"others": None, "self": None}
        self._start = self._snapshot()
        return self

    def __exit__(self, *exc) -> None:
        end = self._snapshot()
        if self._start is None or end is None:
            return
        wall = end[0] - self._start[0]
        busy = (end[1] - self._start[1]) / os.sysconf("SC_CLK_TCK")
        own = end[2] - self._start[2]
        cpus = os.cpu_count() or 1
        if wall > 0:
            self.result = {
                "others": max(0.0, busy - own) / (wall * cpus),
                "self": own / (wall * cpus),
                "wall_s": wall,
            }

    @staticmethod
    def _snapshot():
        try:
            with open("/proc/stat") as f:
                vals = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = sum(vals) - vals[3] - vals[4]  # minus idle and iowait
        t = os.times()
        return time.monotonic(), busy, t.user + t.system


def _busy(cpu_share: dict[str, Any]) -> bool:
    others = (cpu_share or {}).get("others")
    return others is not None and others > BUSY


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_ratio(r: float | None) -> str:
    if r is None or not math.isfinite(r):
        return "–"
    return f"{r:.3g}×" if r < 100 else f"{r:.0f}×"


# --------------------------------------------------------------------------------------------
# Environment and hardware limits
# --------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _openblas_info() -> dict[str, Any]:
    """NumPy's OpenBLAS build string and thread count, read from the loaded library."""
    import ctypes

    info: dict[str, Any] = {}
    try:
        paths = {
            line.split()[-1]
            for line in open("/proc/self/maps")
            if "openblas" in line.split()[-1].lower() and ".so" in line.split()[-1]
        }
    except OSError:
        return info
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                get_threads = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                get_config = getattr(lib, f"{prefix}get_config{suffix}", None)
                if get_threads is not None and get_config is not None:
                    get_config.restype = ctypes.c_char_p
                    info = {
                        "library": path,
                        "config": get_config().decode(),
                        "threads": int(get_threads()),
                    }
                    return info
    return info


def _git_info() -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.splitlines()
        return {"commit": head or None, "modified_files": len(status)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


def environment(ctx: Context) -> dict[str, Any]:
    try:
        np_blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # numpy >= 1.26
    except Exception:  # noqa: BLE001 - best effort, older numpy prints instead
        np_blas = None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    env = {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpus_available": affinity,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "flexrnn_version": flexrnn.__version__,
        "flexrnn_config": flexrnn.config(),
        "flexrnn_threads": flexrnn.get_num_threads(),
        "numpy_version": np.__version__,
        "numpy_blas": np_blas,
        "numpy_openblas": _openblas_info(),
        "torch_version": ctx.torch.version() if ctx.torch else None,
        "torch_threads": ctx.torch.get_num_threads() if ctx.torch else None,
        "env_vars": {
            k: os.environ.get(k)
            for k in (
                "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS",
                "OMP_WAIT_POLICY",
                "OMP_PROC_BIND",
            )
        },
        "git": _git_info(),
    }
    if hasattr(os, "getloadavg"):
        env["loadavg_start"] = list(os.getloadavg())
    return env


def _gemm_rate(m: int, k: int, n: int, dtype: str, repeats: int) -> dict[str, Any]:
    """NumPy's rate for (m, k) @ (n, k).T, the shape of the recurrent product r @ W.T."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((n, k)).astype(dtype)
    a @ b.T  # warm-up (threads, page faults)
    flop = 2.0 * m * k * n
    number = max(1, math.ceil(0.05 / max(_time_once(lambda: a @ b.T), 1e-9)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            a @ b.T
        samples.append((time.perf_counter() - t0) / number)
    med = float(np.median(samples))
    return {
        "shape_mkn": [m, k, n],
        "dtype": dtype,
        "flop": flop,
        "number": number,
        "samples_s": samples,
        "median_s": med,
        "gflops": flop / med / 1e9,
        "best_gflops": flop / min(samples) / 1e9,
    }


def _time_once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def wait_until_idle(ctx: Context, max_wait_s: float, probe_s: float = 2.0) -> dict[str, Any]:
    """Wait (at most ``max_wait_s``) until other processes use < BUSY of the CPUs over a probe."""
    t0 = time.perf_counter()
    while True:
        with CpuShare() as cpu:
            time.sleep(probe_s)
        others = cpu.result.get("others")
        waited = time.perf_counter() - t0
        if others is None or others < BUSY or waited >= max_wait_s:
            ctx.log(
                f"other processes' CPU share {others if others is None else f'{others:.0%}'}"
                f" after waiting {waited:.0f} s"
            )
            return {"waited_s": waited, "others_at_start": others}
        ctx.log(f"machine busy (other processes: {others:.0%} CPU), waiting")


def measure_hardware(ctx: Context) -> dict[str, Any]:
    """The GEMM rate NumPy reaches here: a square 2048 product and the large workload's
    per-step product (64, 1024) @ (1024, 1024).T."""
    reps = 3 if ctx.quick else 5
    out: dict[str, Any] = {"gemm_square": {}, "gemm_step": {}}
    with CpuShare() as cpu:
        for dt in DTYPES:
            ctx.log(f"hardware: NumPy GEMM rate, {dt}")
            out["gemm_square"][dt] = _gemm_rate(2048, 2048, 2048, dt, reps)
            out["gemm_step"][dt] = _gemm_rate(64, 1024, 1024, dt, reps)
    out["cpu_share"] = cpu.result
    return out


def render_hardware(hw: dict[str, Any]) -> list[str]:
    lines = [
        "## Hardware limit: GEMM rate",
        "",
        "NumPy's BLAS on this machine (median of several products after a warm-up). The "
        "square product is the limit quoted below; the step-shaped product is one step's "
        "recurrent term `r @ W.T` of the large workload.",
        "",
        "| dtype | 2048×2048 @ 2048×2048 | (64×1024) @ (1024×1024)ᵀ |",
        "|---|---|---|",
    ]
    for dt in DTYPES:
        sq, st = hw["gemm_square"][dt], hw["gemm_step"][dt]
        lines.append(f"| {dt} | {sq['gflops']:.1f} GFLOP/s | {st['gflops']:.1f} GFLOP/s |")
    others = hw.get("cpu_share", {}).get("others")
    if others is not None:
        lines += [
            "",
            f"CPU taken by other processes meanwhile: {100 * others:.0f}%"
            + (" — **the machine was busy; the limit is underestimated**" if others > BUSY else "")
            + ".",
        ]
    return lines + [""]


# --------------------------------------------------------------------------------------------
# Section "forward": RateRNN rollout, C++ vs NumPy reference vs PyTorch eager
# --------------------------------------------------------------------------------------------


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

IMPL_NAMES = {"flexrnn": "C++", "numpy": "NumPy", "torch": "PyTorch eager"}

# the summary's line on output checks, per section with targets
CHECK_TEXT = {
    "forward": "every baseline's y agreed with the C++ core's before timing "
    "(allclose; float32 rtol 1e-4 atol 1e-5, float64 rtol 1e-10 "
    "atol 1e-12)",
}


@contextlib.contextmanager
def _flexrnn_threads(n: int):
    before = flexrnn.get_num_threads()
    flexrnn.set_num_threads(n)
    try:
        yield
    finally:
        flexrnn.set_num_threads(before)


def _rate_flops(w: RateWorkload, T: int) -> float:
    """Multiply-adds of the matrix products, counted as 2 flops each (elementwise work not
    counted): recurrent 2 B n^2, input 2 B n n_in, readout 2 B n n_out per step."""
    return 2.0 * T * w.B * w.n * (w.n + w.n_in + w.n_out)


def _rate_impls(ctx: Context, w: RateWorkload, dtype: str, T: int):
    net = flexrnn.RateRNN.random(
        n=w.n,
        n_in=w.n_in,
        n_out=w.n_out,
        g=1.5,
        tau=10.0,
        dt=1.0,
        phi="tanh",
        form="current",
        seed=0,
        dtype=dtype,
    )
    u = np.random.default_rng(1).standard_normal((T, w.B, w.n_in)).astype(dtype)
    arrays = {
        "W": net.W,
        "W_in": net.W_in,
        "b": net.b,
        "W_out": net.W_out,
        "b_out": net.b_out,
        "x0": net.x0,
    }
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
        impls.append(
            Impl(
                "flexrnn_1thread",
                "flexrnn C++, 1 thread *(diagnostic)*",
                lambda: net.run(u).y,
                context=lambda: _flexrnn_threads(1),
                diagnostic=True,
            )
        )
    if not ctx.quick and "core" in w.diagnostics:
        # the compiled call alone, without RateRNN.run's validation (private API: skipped if
        # it changes)
        try:
            p = net._check_shapes()
            x0b = np.ascontiguousarray(np.broadcast_to(net.x0, (w.B, w.n)))

            def core():
                return net._rollout(p, u, x0b, None, 1.0, None, 0.0, 0)[2]

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


def render_timing_table(
    by_dtype: dict[str, dict[str, Any]],
    check_text: Callable[[dict[str, Any]], str],
    time_header: str = "median time",
    check_header: str = "output check",
) -> list[str]:
    """The timings of one workload, a row per implementation and dtype: median time, speed-up
    of C++ (from :func:`compare`), ``check_text(check entry)`` and the samples taken."""
    lines = [
        f"| implementation | dtype | {time_header} | speed-up of C++ | {check_header} | samples |",
        "|---|---|---|---|---|---|",
    ]
    for dt, d in by_dtype.items():
        for key, tm in d["timings"].items():
            if key == "flexrnn":
                ratio, chk = "1 (reference)", "–"
            else:
                ratio, chk = fmt_ratio(d["speedup_of_cpp"][key]), check_text(d["check"][key])
            lines.append(
                f"| {tm['label']} | {dt} | {fmt_time(tm['median_s'])} | {ratio} | {chk} "
                f"| {tm['repeats']} × {tm['number']} |"
            )
    return lines + [""]


def render_cpu_share(by_dtype: dict[str, dict[str, Any]]) -> list[str]:
    """The line saying how much CPU other processes took while a workload was timed."""
    loads = {dt: d.get("cpu_share", {}).get("others") for dt, d in by_dtype.items()}
    retried = {dt: len(d.get("discarded_busy_attempts", [])) for dt, d in by_dtype.items()}
    if all(v is None for v in loads.values()):
        return []
    return [
        "CPU taken by other processes while timing: "
        + ", ".join(f"{dt} {100 * v:.0f}%" for dt, v in loads.items() if v is not None)
        + (
            " — **the machine was busy; these ratios are unreliable**"
            if any(v is not None and v > BUSY for v in loads.values())
            else ""
        )
        + "".join(
            f"; {dt}: least busy of {k + 1} attempts kept (all in the JSON)"
            for dt, k in retried.items()
            if k
        )
        + ".",
        "",
    ]


def render_targets(targets: list[dict[str, Any]]) -> list[str]:
    """A workload's targets as a table: speed-ups (``min_speedup``) or memory (``max_ratio``)."""
    if not targets:
        return []
    lines = ["| target | dtype | measured | met |", "|---|---|---|---|"]
    for t in targets:
        met = "–" if t["met"] is None else ("**yes**" if t["met"] else "**no**")
        if t.get("busy"):
            met += " (busy machine)"
        if t.get("kind") == "memory":
            what = t["target_text"]
            measured = "not measured" if t["measured"] is None else f"{t['measured']:.2f}×"
        else:
            what = Target(t["baseline"], t["min_speedup"]).text(
                IMPL_NAMES.get(t["baseline"], t["baseline"])
            )
            measured = "not measured" if t["measured"] is None else fmt_ratio(t["measured"])
        lines.append(f"| {what} | {t['dtype']} | {measured} | {met} |")
    return lines + [""]


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


@register("forward", "Forward rollout: RateRNN", render_forward)
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
            check, timings, speedups = m["check"], m["timings"], m["speedup_of_cpp"]
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
            for tgt in w.targets:
                measured = speedups.get(tgt.baseline)
                results["targets"].append(
                    {
                        "section": "forward",
                        "workload": w.key,
                        "title": w.title,
                        "dtype": dt,
                        "baseline": tgt.baseline,
                        "min_speedup": tgt.min_speedup,
                        "measured": measured,
                        "met": None if measured is None else bool(measured >= tgt.min_speedup),
                        "outputs_agree": check.get(tgt.baseline, {}).get("allclose"),
                        "busy": _busy(m["cpu_share"]),
                    }
                )
            entry["by_dtype"][dt] = d
        results["workloads"].append(entry)
    return results


# --------------------------------------------------------------------------------------------
# Section "backward": loss and gradient (BPTT) of a RateRNN, C++ vs NumPy reference vs autograd
# --------------------------------------------------------------------------------------------


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

CHECK_TEXT["backward"] = (
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
    net = flexrnn.RateRNN.random(
        n=w.n,
        n_in=w.n_in,
        n_out=w.n_out,
        g=1.5,
        tau=10.0,
        dt=1.0,
        phi="tanh",
        form="current",
        readout="rate",
        seed=0,
        dtype=dtype,
    )
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
            impls.append(
                Impl(
                    "flexrnn_1thread",
                    "flexrnn C++, 1 thread *(diagnostic)*",
                    fns["flexrnn"],
                    context=lambda: _flexrnn_threads(1),
                    diagnostic=True,
                )
            )
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
        "import json, sys; from bench.run import memory_probe; "
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


def _fmt_bytes(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def render_backward(data: dict[str, Any], ctx: Context) -> list[str]:
    w = data["workload"]
    tol = data["grad_tolerance"]
    fl = data["flop"]
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

    # achieved rate against the GEMM rates
    shapes = data["gemm_shapes"]
    step, whole = shapes["step"], shapes["all_steps"]
    lines += [
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

    # peak memory
    mem = data["memory"]
    stored = mem["stored_bytes"]
    lines += [
        "Peak memory of one iteration, each implementation in a fresh process: the rise of "
        "the resident set (Linux VmHWM, reset just before the call) above the RSS after "
        "building the model and data and one earlier call, with freed memory handed back "
        "first (flexrnn's output-buffer cache emptied, `malloc_trim`), so nothing the call "
        "needs is already resident. The call's outputs count. It is compared with what BPTT "
        "must store: x and r of every step (2·T·B·n values), y, and the parameters — "
        + ", ".join(f"{dt} {_fmt_bytes(sum(stored[dt].values()))}" for dt in DTYPES if dt in stored)
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
                f"| {label} | {dt} | {_fmt_bytes(m['warm']['peak_increase_bytes'])} "
                f"| {m['ratio']:.2f}× | {_fmt_bytes(m['cold']['peak_increase_bytes'])} |"
            )
    lines.append("")
    lines += render_targets([t for t in data["targets"] if t.get("kind") == "memory"])
    return lines


MEMORY_LABELS = {
    "flexrnn": "flexrnn C++",
    "numpy": "NumPy reference",
    "torch": "PyTorch eager autograd",
}


@register("backward", "Loss and gradient (BPTT): RateRNN", render_backward)
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
        check, timings, speedups = m["check"], m["timings"], m["speedup_of_cpp"]
        t_cpp = timings["flexrnn"]["median_s"]
        ctx.log(f"  GEMM rates at this workload's shapes, {dt}")
        reps = 3 if ctx.quick else 5
        with CpuShare() as cpu:
            gemm = {k: _gemm_rate(*s, dt, reps) for k, s in _gemm_shapes(w).items()}
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
            for tgt in w.targets:
                measured = speedups.get(tgt.baseline)
                results["targets"].append(
                    {
                        "section": "backward",
                        "workload": w.key,
                        "title": "Loss and gradient",
                        "dtype": dt,
                        "baseline": tgt.baseline,
                        "min_speedup": tgt.min_speedup,
                        "measured": measured,
                        "met": None if measured is None else bool(measured >= tgt.min_speedup),
                        "outputs_agree": check.get(tgt.baseline, {}).get("allclose"),
                        "busy": _busy(m["cpu_share"]),
                    }
                )

    # peak memory, each implementation in a fresh process
    memory: dict[str, Any] = {"stored_bytes": {}, "by_dtype": {}}
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
        results["targets"].append(
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
    results["memory"] = memory
    return results


# --------------------------------------------------------------------------------------------
# Section "force": FORCE steps (network step + RLS update), C++ vs the naive NumPy reference
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForceWorkload:
    key: str
    n: int
    T: int  # FORCE steps per call (an RLS update at every step)
    targets: tuple[Target, ...]
    quick_T: int | None = None


FORCE_WORKLOADS = (
    ForceWorkload("n256", 256, 2000, (Target("numpy", 5),), quick_T=500),
    ForceWorkload("n1000", 1000, 400, (Target("numpy", 3),), quick_T=100),
    ForceWorkload("n2000", 2000, 100, (), quick_T=40),
)

CHECK_TEXT["force"] = (
    "the NumPy reference's outputs, W_out and P agreed with the C++ core's before timing "
    "(allclose; float32 rtol 1e-4 atol 1e-5 on y, 1e-3 relative on P; float64 rtol 1e-10)"
)


def _memory_bandwidth(dtype: str, mib: int = 256, repeats: int = 5) -> dict[str, Any]:
    """Streaming rate of ``np.add(a, b, out=c)`` over arrays far larger than the caches:
    3 arrays' bytes per call (2 read, 1 written), the machine's memory bandwidth as NumPy
    sees it on one thread."""
    count = mib * 2**20 // np.dtype(dtype).itemsize // 3
    a = np.ones(count, dtype)
    b = np.ones(count, dtype)
    c = np.empty(count, dtype)
    np.add(a, b, out=c)  # page faults
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.add(a, b, out=c)
        samples.append(time.perf_counter() - t0)
    moved = 3 * a.nbytes
    return {
        "bytes_per_call": moved,
        "samples_s": samples,
        "median_s": float(np.median(samples)),
        "gb_per_s": moved / float(np.median(samples)) / 1e9,
    }


def _force_problem(n: int, T: int, dtype: str):
    net = flexrnn.RateRNN.random(n=n, n_in=0, n_out=1, g=1.5, tau=10.0, p=0.1, seed=0, dtype=dtype)
    rng = np.random.default_rng(1)
    t = np.arange(T)
    f = (np.sin(2 * np.pi * t / 120) + 0.5 * np.sin(4 * np.pi * t / 120))[:, None, None]
    return {
        "W": net.W,
        "W_in": net.W_in,
        "b": net.b,
        "W_out": np.zeros((1, n), dtype),
        "b_out": net.b_out,
        "W_fb": rng.uniform(-1, 1, (n, 1)).astype(dtype),
        "P": np.eye(n, dtype=dtype),
        "u": np.zeros((T, 1, 0), dtype),
        "target": f.astype(dtype),
        "x": rng.normal(0, 0.5, (1, n)).astype(dtype),
        "alpha": net.alpha,
    }


def _l3_bytes() -> int | None:
    """The last-level cache's size from sysfs (Linux), or None."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    sizes = {}
    for index in base.glob("index*"):
        try:
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        unit = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        digits = text[:-1] if text[-1:] in "KMG" else text
        if digits.isdigit():
            sizes[level] = int(digits) * unit
    return sizes[max(sizes)] if sizes else None


def _force_preallocated(pb: dict[str, Any], W_out, P, x):
    """The reference's FORCE loop with the naive update done without allocation: the outer
    product into a preallocated buffer, then ``P -= buf`` (same arithmetic, same traffic
    order, no n×n temporaries): separates allocation from the update itself."""
    W, W_fb, b, b_out, a = pb["W"], pb["W_fb"], pb["b"], pb["b_out"], pb["alpha"]
    dtype = W.dtype.type
    T = pb["target"].shape[0]
    buf = np.empty_like(P)
    xs = x[0].copy()
    r = np.tanh(xs)
    z = W_out @ r + b_out
    y = np.empty((T, 1, W_out.shape[0]), W.dtype)
    for t in range(T):
        xs = (1 - dtype(a)) * xs + dtype(a) * (W @ r + W_fb @ z + b)
        r = np.tanh(xs)
        z = W_out @ r + b_out
        y[t, 0] = z
        k = P @ r
        c = dtype(1) / (dtype(1) + r @ k)
        np.outer(k, k, out=buf)
        buf *= c
        P -= buf
        W_out -= np.outer(c * (z - pb["target"][t, 0]), k)
    return y


def _force_impls(pb: dict[str, Any]) -> list[Impl]:
    """Each call starts from fresh copies of W_out, P and x (a copy of P costs one RLS
    update's traffic: well under 1 % of a call)."""

    def state():
        return pb["W_out"].copy(), pb["P"].copy(), pb["x"].copy()

    def cpp():
        W_out, P, x = state()
        params = flexrnn._core.RateRNNParams(pb["W"], pb["W_in"], pb["b"], W_out, pb["b_out"])
        opt = flexrnn._core.ForceOptions(flexrnn._core.RateOptions(pb["alpha"], "tanh"), 1, 0, True)
        y, _ = flexrnn._core.force_run(params, opt, pb["W_fb"], P, pb["u"], pb["target"], None, x)
        return y, W_out, P

    def numpy_ref():
        W_out, P, x = state()
        y, _ = reference.force_run(
            pb["W"],
            pb["W_in"],
            pb["b"],
            W_out,
            pb["b_out"],
            pb["W_fb"],
            P,
            pb["u"],
            pb["target"],
            None,
            x,
            alpha=pb["alpha"],
            phi="tanh",
            form="current",
            readout="rate",
            update_every=1,
            step0=0,
            learn=True,
        )
        return y, W_out, P

    def numpy_prealloc():
        W_out, P, x = state()
        return _force_preallocated(pb, W_out, P, x), W_out, P

    return [
        Impl("flexrnn", "flexrnn C++ (`_core.force_run`, what `fr.train.force` calls)", cpp),
        Impl(
            "numpy",
            "NumPy reference (`flexrnn.reference.force_run`, `P -= c outer(k, k)`)",
            numpy_ref,
        ),
        Impl(
            "numpy_prealloc",
            "NumPy, naive update into a preallocated buffer *(diagnostic)*",
            numpy_prealloc,
            diagnostic=True,
        ),
    ]


def _check_force(outs: dict[str, Any], dtype: str) -> dict[str, Any]:
    y, W_out, P = outs["flexrnn"]
    others = {k: v for k, v in outs.items() if k != "flexrnn"}
    res = check_outputs(y, {k: v[0] for k, v in others.items()}, dtype)
    scale = float(np.abs(P).max())
    for key, (_, _, Pr) in others.items():
        p_diff = float(np.abs(P - Pr).max()) / scale
        ok = p_diff <= (1e-3 if dtype == "float32" else 1e-9)
        res[key]["P_rel_diff"] = p_diff
        res[key]["allclose"] = bool(res[key]["allclose"] and ok)
    return res


def _rls_kernel_rate(n: int, dtype: str, steps: int) -> dict[str, Any]:
    """The RLS kernel alone (`_core.rls_steps`): seconds per update and the bytes its access
    pattern moves, 1.5 n^2 elements (k = P h reads the upper triangle, the rank-1 update
    reads and writes it)."""
    rng = np.random.default_rng(2)
    H = (0.1 * rng.standard_normal((steps, n))).astype(dtype)
    P = np.eye(n, dtype=dtype)
    flexrnn._core.rls_steps(P, H[:2])
    samples = []
    for _ in range(3):
        t0 = time.perf_counter()
        flexrnn._core.rls_steps(P, H)
        samples.append((time.perf_counter() - t0) / steps)
    per_update = float(np.median(samples))
    moved = 1.5 * n * n * np.dtype(dtype).itemsize
    return {
        "s_per_update": per_update,
        "bytes_per_update": moved,
        "gb_per_s": moved / per_update / 1e9,
    }


def render_force(data: dict[str, Any], ctx: Context) -> list[str]:
    lines = [
        "FORCE with output feedback on the Sussillo–Abbott network (`RateRNN.random(g=1.5, "
        "p=0.1, tau=10)`, no input, one output), **an RLS update at every step** "
        "(`update_every=1`). One FORCE step = the network step (`W r`, n² multiply-adds) + "
        "the RLS update of P and W_out. The NumPy reference updates P the naive way "
        "(`P -= c * np.outer(k, k)`: an n×n temporary, ~7 n² elements of traffic); the C++ "
        "kernel updates the upper triangle in place (`k = P h` by symmetry, then a "
        "symmetric rank-1 update: ~1.5 n² elements) and mirrors it once per call.",
        "",
        "Memory bandwidth (NumPy `np.add(a, b, out=c)` on 256 MiB, one thread): "
        + ", ".join(f"{dt} {data['bandwidth'][dt]['gb_per_s']:.1f} GB/s" for dt in DTYPES)
        + ". P is n²·itemsize bytes: 0.25-0.5 MiB at n=256, 4-8 MiB at n=1000, 16-32 MiB at "
        "n=2000, 64-128 MiB at n=4000 (kernel only)"
        + (
            f"; the last-level cache holds {data['l3_bytes'] / 2**20:.0f} MiB here, so a P "
            "that fits streams from cache and the kernel can exceed the DRAM rate; only the "
            "rows whose P is larger measure the memory bound."
            if data.get("l3_bytes")
            else "."
        ),
        "",
        "*Diagnostic*: the naive update with its outer product written into a preallocated "
        "buffer (same arithmetic, no n×n temporaries): the gap between the two NumPy columns "
        "is the cost of allocating (and page-faulting) two n×n temporaries per step, which "
        "dominates the reference at large n; the remaining gap to C++ is the traffic "
        "(~7 n² elements against ~1.5 n²) and NumPy's per-call overhead.",
        "",
        "| n | dtype | C++ steps/s | NumPy steps/s | speed-up of C++ | NumPy preallocated "
        "*(diagnostic)* steps/s | output check | RLS kernel alone: µs / update "
        "| bytes / update (1.5 n²·itemsize) | kernel GB/s | ÷ memory bandwidth |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for wl in data["workloads"]:
        for dt in DTYPES:
            d = wl["by_dtype"][dt]
            tm = d["timings"]
            c = d["check"]["numpy"]
            k = d["rls_kernel"]
            bw = data["bandwidth"][dt]["gb_per_s"]
            agree = all(v["allclose"] for v in d["check"].values())
            chk = "same y, P" if c["allclose"] and agree else "**DIFFERENT**"
            pre = tm.get("numpy_prealloc")
            pre_text = "–" if pre is None else f"{wl['T'] / pre['median_s']:,.0f}"
            lines.append(
                f"| {wl['n']} | {dt} | {wl['T'] / tm['flexrnn']['median_s']:,.0f} "
                f"| {wl['T'] / tm['numpy']['median_s']:,.0f} "
                f"| {fmt_ratio(d['speedup_of_cpp']['numpy'])} | {pre_text} | {chk} "
                f"| {1e6 * k['s_per_update']:.1f} | {_fmt_bytes(k['bytes_per_update'])} "
                f"| {k['gb_per_s']:.1f} | {k['gb_per_s'] / bw:.2f} |"
            )
    for n, by_dtype in sorted(data.get("kernel_only", {}).items(), key=lambda kv: int(kv[0])):
        for dt, k in by_dtype.items():
            bw = data["bandwidth"][dt]["gb_per_s"]
            lines.append(
                f"| {n} | {dt} | – | – | – | – | – | {1e6 * k['s_per_update']:.1f} "
                f"| {_fmt_bytes(k['bytes_per_update'])} | {k['gb_per_s']:.1f} "
                f"| {k['gb_per_s'] / bw:.2f} |"
            )
    lines.append("")
    lines += render_cpu_share(
        {f"n={wl['n']} {dt}": wl["by_dtype"][dt] for wl in data["workloads"] for dt in DTYPES}
    )
    lines += render_targets(data["targets"])
    return lines


@register("force", "FORCE (RLS): steps per second", render_force)
def run_force(ctx: Context) -> dict[str, Any]:
    results: dict[str, Any] = {"workloads": [], "targets": [], "bandwidth": {}}
    results["l3_bytes"] = _l3_bytes()
    for dt in DTYPES:
        ctx.log(f"force: memory bandwidth, {dt}")
        results["bandwidth"][dt] = _memory_bandwidth(dt, 128 if ctx.quick else 256)
    # the RLS kernel on a P far larger than the last-level cache: the memory bound
    results["kernel_only"] = {}
    for n in (4000,):
        results["kernel_only"][str(n)] = {}
        for dt in DTYPES:
            ctx.log(f"force: RLS kernel alone, n={n} {dt}")
            results["kernel_only"][str(n)][dt] = _rls_kernel_rate(n, dt, 10 if ctx.quick else 30)
    for w in FORCE_WORKLOADS:
        T = w.quick_T if (ctx.quick and w.quick_T) else w.T
        entry: dict[str, Any] = {"key": w.key, "n": w.n, "T": T, "by_dtype": {}}
        for dt in DTYPES:
            ctx.log(f"force/{w.key} n={w.n} T={T} {dt}")
            pb = _force_problem(w.n, T, dt)
            m = compare(
                ctx, lambda pb=pb: _force_impls(pb), lambda outs, dt=dt: _check_force(outs, dt)
            )
            speedups = m["speedup_of_cpp"]
            d = {
                **m,
                "rls_kernel": _rls_kernel_rate(w.n, dt, 50 if ctx.quick else 200),
            }
            for tgt in w.targets:
                measured = speedups.get(tgt.baseline)
                results["targets"].append(
                    {
                        "section": "force",
                        "workload": w.key,
                        "title": f"FORCE n={w.n}",
                        "dtype": dt,
                        "baseline": tgt.baseline,
                        "min_speedup": tgt.min_speedup,
                        "measured": measured,
                        "met": None if measured is None else bool(measured >= tgt.min_speedup),
                        "outputs_agree": m["check"].get(tgt.baseline, {}).get("allclose"),
                        "busy": _busy(m["cpu_share"]),
                    }
                )
            entry["by_dtype"][dt] = d
        results["workloads"].append(entry)
    return results


# --------------------------------------------------------------------------------------------
# Section "ga": one generation of the genetic algorithm, one C++ call vs member by member
# --------------------------------------------------------------------------------------------

GA_WORKLOAD = {"P": 50, "n": 50, "B": 64, "T": 750, "quick_T": 150, "survivors": 5}

CHECK_TEXT["ga"] = (
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


@register("ga", "Genetic algorithm: one generation", render_ga)
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


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _load(env: dict[str, Any], key: str) -> str:
    value = env.get(key)
    return f"{value[0]:.2f}" if value else "?"


def timing_line(meta: dict[str, Any], json_ref: str) -> str:
    budget = meta.get("budget_s")
    return (
        f"- timing: median of {meta['repeats']} samples per implementation after a checked "
        "warm-up run"
        + (
            f" (fewer if a comparison would overrun its {budget:g} s budget on a loaded machine)"
            if budget
            else ""
        )
        + ", implementations interleaved (order rotated each repeat), `time.perf_counter`; a "
        f"sample of a fast call averages back-to-back calls lasting ≥ "
        f"{meta['min_sample_s'] * 1e3:g} ms (*samples* column: samples × calls per sample). "
        f"Raw timings: `{json_ref}`"
        + (" (git-ignored)" if json_ref.startswith("bench/results/") else "")
    )


def render_markdown(report: dict[str, Any], ctx: Context, json_path: Path) -> str:
    env, meta = report["environment"], report["meta"]
    cfg = env["flexrnn_config"]
    blas = env.get("numpy_openblas") or {}
    try:
        json_ref = json_path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        json_ref = str(json_path)
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/run.py`; do not edit by hand. Produced by:",
        "",
        "```",
        meta["command"],
        "```",
        "",
        f"- date: {meta['timestamp']}"
        + (
            " — **quick smoke run: too few repeats and a shorter large workload; not for quoting**"
            if ctx.quick
            else ""
        ),
        f"- machine: {env['cpu_model']}, {env['logical_cpus']} logical CPUs "
        f"({env['cpus_available']} available), {env['platform']}; 1-min load average "
        f"{_load(env, 'loadavg_start')} at start, {_load(env, 'loadavg_end')} at end (shared "
        "machine: ratios from one run are what counts, absolute times are indicative)",
        f"- threads: flexrnn {env['flexrnn_threads']} (OpenMP), PyTorch "
        f"{env['torch_threads'] if env['torch_threads'] is not None else '–'} "
        f"(`torch.set_num_threads`), NumPy's OpenBLAS {blas.get('threads', '?')}",
        f"- flexrnn {env['flexrnn_version']} (`flexrnn.config()`: "
        + ", ".join(f"{k}={v}" for k, v in cfg.items())
        + ")",
        f"- NumPy {env['numpy_version']} ({blas.get('config', 'BLAS unknown').strip()}), "
        f"PyTorch {env['torch_version'] or 'not installed'}, Python {env['python']}",
        f"- git: {env['git'].get('commit') or '?'}"
        + (
            f" with {env['git']['modified_files']} modified/untracked files"
            if env["git"].get("modified_files")
            else ""
        ),
        timing_line(meta, json_ref),
        "",
    ]
    targets = [t for s in report["sections"].values() for t in s.get("targets", [])]
    if targets:
        met = [t for t in targets if t["met"]]
        missed = [t for t in targets if t["met"] is False]
        unmeasured = [t for t in targets if t["met"] is None]

        def name(t):
            if t.get("kind") == "memory":
                return (
                    f"{t['title'].lower()} {t['dtype']} peak memory "
                    f"({'–' if t['measured'] is None else format(t['measured'], '.2f')}× "
                    f"{t['relative_to']} for ≤ {t['max_ratio']:g}×)"
                )
            base = IMPL_NAMES.get(t["baseline"], t["baseline"])
            return (
                f"{t['title'].lower()} {t['dtype']} vs {base} ({fmt_ratio(t['measured'])} "
                f"for ≥ {t['min_speedup']:g}×{', busy machine' if t.get('busy') else ''})"
            )

        lines += ["## Summary", "", f"**Targets met: {len(met)} of {len(targets)}.**", ""]
        busy = [t for t in targets if t.get("busy")]
        if busy:
            lines.append(
                f"- **{len(busy)} of these were measured while other processes took "
                f"over {BUSY:.0%} of the CPUs** (marked *busy machine*): their ratios "
                "are unreliable; rerun on an idle machine"
            )
        if met:
            lines.append("- met: " + "; ".join(name(t) for t in met))
        if missed:
            lines.append("- missed: " + "; ".join(name(t) for t in missed))
        if unmeasured:
            lines.append(
                "- not measured (baseline not installed, or skipped): "
                + "; ".join(
                    f"{t['title'].lower()} {t['dtype']} "
                    + (
                        "peak memory"
                        if t.get("kind") == "memory"
                        else f"vs {IMPL_NAMES.get(t['baseline'], t['baseline'])}"
                    )
                    for t in unmeasured
                )
            )
        bad = [t for t in targets if t.get("outputs_agree") is False]
        if bad:
            lines.append("- **outputs differ** for: " + "; ".join(name(t) for t in bad))
        else:
            checked = dict.fromkeys(t["section"] for t in targets if t.get("kind") != "memory")
            lines += [f"- {CHECK_TEXT[sec]}" for sec in checked if sec in CHECK_TEXT]
        lines.append("")
    lines += render_hardware(report["hardware"])
    for bench in BENCHMARKS:
        if bench.name in report["sections"]:
            lines += [f"## {bench.title}", ""]
            lines += bench.render(report["sections"][bench.name], ctx)
    return "\n".join(lines).rstrip() + "\n"


def _load_torch(ctx: Context):
    if importlib.util.find_spec("torch") is None:
        ctx.log("torch not installed: PyTorch rows skipped (pip install 'flexrnn[bench]')")
        return None
    from bench import torch_impl

    torch_impl.set_num_threads(ctx.threads)
    return torch_impl


def parse_args(argv: Sequence[str] | None, prog: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="fast smoke run (~40 s): 3 repeats, shorter large workload, no diagnostic rows",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for the JSON results (default: bench/results/)",
    )
    ap.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="markdown report (default: docs/benchmarks.md; for --quick runs "
        "OUT/benchmarks-quick.md, so a smoke run never replaces the "
        "published table)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed samples per implementation (default 9, --quick 3)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="flexrnn (and PyTorch) thread count (default: flexrnn's default)",
    )
    ap.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="SECTION",
        help="run only this section (repeatable): " + ", ".join(b.name for b in BENCHMARKS),
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to SECONDS for other processes to leave the CPUs "
        "(shared machines; default 0: start at once)",
    )
    ap.add_argument(
        "--max-time",
        type=float,
        default=None,
        metavar="SECONDS",
        help="full runs measure a comparison again when other processes took "
        f"over {BUSY * 100:.0f}%% of the CPUs, until SECONDS after the start "
        "(--wait-idle included; default 120; 0: never)",
    )
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument(
        "--from-json",
        type=Path,
        default=None,
        metavar="JSON",
        help="measure nothing: write the markdown of an earlier run's JSON",
    )
    ap.add_argument("-q", "--silent", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        ap.error("--repeats must be >= 1")
    if args.only:
        unknown = set(args.only) - {b.name for b in BENCHMARKS}
        if unknown:
            ap.error(f"unknown section(s) {sorted(unknown)}; known: {[b.name for b in BENCHMARKS]}")
    return args


def main(argv: Sequence[str] | None = None, prog: str = "python bench/run.py") -> int:
    importlib.import_module("bench.analysis")  # registers the "analysis" section
    importlib.import_module("bench.mop")  # registers the "mop" section
    importlib.import_module("bench.sweep")  # registers the "sweep" section

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv, prog)
    if args.from_json is not None:
        report = json.loads(args.from_json.read_text())
        ctx = Context(
            quick=report["meta"]["quick"],
            repeats=report["meta"]["repeats"],
            min_sample_s=report["meta"]["min_sample_s"],
            threads=0,
        )
        md_path = args.markdown or DEFAULT_MARKDOWN
        md_path.write_text(render_markdown(report, ctx, args.from_json))
        ctx.log(f"wrote {md_path} from {args.from_json}")
        return 0
    if args.threads is not None:
        flexrnn.set_num_threads(args.threads)
    ctx = Context(
        quick=args.quick,
        repeats=args.repeats or (3 if args.quick else 9),
        min_sample_s=0.005 if args.quick else 0.02,
        budget_s=None if args.repeats else (3.0 if args.quick else 24.0),
        min_repeats=2 if args.quick else 3,
        threads=flexrnn.get_num_threads(),
        verbose=not args.silent,
    )
    started = time.perf_counter()
    max_time = 120.0 if args.max_time is None else args.max_time
    ctx.retry_busy = not ctx.quick and max_time > 0
    ctx.deadline = started + max_time if ctx.retry_busy else None
    now = _dt.datetime.now(_dt.timezone.utc)
    if not args.no_torch:
        ctx.torch = _load_torch(ctx)
    report: dict[str, Any] = {
        "meta": {
            "command": " ".join([prog] + [shlex.quote(a) for a in argv]),
            "argv": argv,
            "timestamp": now.isoformat(timespec="seconds"),
            "quick": ctx.quick,
            "repeats": ctx.repeats,
            "min_sample_s": ctx.min_sample_s,
            "budget_s": ctx.budget_s,
            "sections": [b.name for b in BENCHMARKS if not args.only or b.name in args.only],
        },
        "environment": environment(ctx),
    }
    if args.wait_idle > 0:
        report["meta"]["wait_idle"] = wait_until_idle(ctx, args.wait_idle)
    ctx.hardware = report["hardware"] = measure_hardware(ctx)
    report["sections"] = {}
    for bench in BENCHMARKS:
        if args.only and bench.name not in args.only:
            continue
        ctx.log(f"section {bench.name}: {bench.title}")
        report["sections"][bench.name] = bench.run(ctx)
    if hasattr(os, "getloadavg"):
        report["environment"]["loadavg_end"] = list(os.getloadavg())
    report["meta"]["wall_s"] = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    json_path = args.out / f"bench-{stamp}{'-quick' if ctx.quick else ''}.json"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path = args.markdown or (args.out / "benchmarks-quick.md" if ctx.quick else DEFAULT_MARKDOWN)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(render_markdown(report, ctx, json_path))
    ctx.log(f"done in {report['meta']['wall_s']:.0f} s: {json_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
