"""The benchmark harness: run context, checked and interleaved timing, busy-machine retries.

What every section uses and nothing section-specific: :class:`Context` (run options, thread
count, optional baselines, the hardware limits), :class:`Section` (what a section hands the
registry in bench/run.py), :class:`Impl` and :func:`compare` (check every implementation once,
then time them interleaved; measure again when other processes took the CPUs),
:func:`check_outputs`, :class:`Target` and :func:`speed_target` (a speed-up target's JSON
record), :class:`CpuShare` and :func:`wait_until_idle` (other processes' load), and the
number formats the log and the tables share. Timing rules: see bench/run.py.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import flexrnn
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DTYPES = ("float32", "float64")
BUSY = 0.10  # other processes' CPU share above which a comparison is flagged (and retried)


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


@dataclass(frozen=True)
class Section:
    """A benchmark section: ``run(ctx) -> dict`` (JSON-able results, with every raw timing) and
    ``render(data, ctx) -> list of markdown lines``. ``check_text`` is the summary's line on
    output checks (sections with targets); ``impl_names`` names the baselines its targets use.
    """

    name: str
    title: str
    run: Callable[[Context], dict[str, Any]]
    render: Callable[[dict[str, Any], Context], list[str]]
    check_text: str | None = None
    impl_names: dict[str, str] = field(default_factory=dict)


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
            not is_busy(cpu.result)
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


def is_busy(cpu_share: dict[str, Any]) -> bool:
    others = (cpu_share or {}).get("others")
    return others is not None and others > BUSY


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_bytes(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def fmt_ratio(r: float | None) -> str:
    if r is None or not math.isfinite(r):
        return "–"
    return f"{r:.3g}×" if r < 100 else f"{r:.0f}×"


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


def one_thread_diagnostic(fn: Callable[[], Any]) -> Impl:
    """The C++ call ``fn`` on one thread, a diagnostic row (its ratio reads as thread scaling)."""
    return Impl(
        "flexrnn_1thread",
        "flexrnn C++, 1 thread *(diagnostic)*",
        fn,
        context=lambda: flexrnn_threads(1),
        diagnostic=True,
    )


@contextlib.contextmanager
def flexrnn_threads(n: int):
    """flexrnn's thread count set to ``n`` inside the block (e.g. a 1-thread diagnostic row)."""
    before = flexrnn.get_num_threads()
    flexrnn.set_num_threads(n)
    try:
        yield
    finally:
        flexrnn.set_num_threads(before)


def speed_target(
    section: str, workload: str, title: str, dtype: str, target: Target, m: dict[str, Any]
) -> dict[str, Any]:
    """The JSON record of a speed-up target, from ``m``, a :func:`compare` result: the measured
    speed-up of C++ over ``target.baseline`` (None when the baseline did not run), whether it
    met ``target.min_speedup``, whether the outputs agreed, whether the machine was busy."""
    measured = m["speedup_of_cpp"].get(target.baseline)
    return {
        "section": section,
        "workload": workload,
        "title": title,
        "dtype": dtype,
        "baseline": target.baseline,
        "min_speedup": target.min_speedup,
        "measured": measured,
        "met": None if measured is None else bool(measured >= target.min_speedup),
        "outputs_agree": m["check"].get(target.baseline, {}).get("allclose"),
        "busy": is_busy(m["cpu_share"]),
    }


def benchmark_rate_rnn(n: int, n_in: int, n_out: int, dtype: str):
    """The RateRNN the forward and backward sections time: ``RateRNN.random(g=1.5, tau=10,
    dt=1)``, tanh, current form, rate readout, seed 0."""
    return flexrnn.RateRNN.random(
        n=n, n_in=n_in, n_out=n_out, g=1.5, tau=10.0, dt=1.0, phi="tanh", form="current",
        readout="rate", seed=0, dtype=dtype,
    )  # fmt: skip
