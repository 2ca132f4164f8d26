"""Benchmark runner: the C++ core against the NumPy reference and PyTorch eager, same process.

Usage (from the repository root)::

    python -m bench                # full run (~1-2 min): bench/results/*.json, docs/benchmarks.md
    python -m bench --quick        # smoke run (~40 s); markdown in bench/results/ by default
    python -m bench --only forward --repeats 5 --markdown /tmp/b.md

Every run first measures the hardware limit (the GEMM rate NumPy's BLAS reaches here), then
runs each section of :data:`SECTIONS`, in that order. This file is the command line and the
registry only: the harness (timing, budgets, retries) is bench/harness.py, the hardware probes
bench/hardware.py, the markdown bench/render.py, and each section a module of bench/sections/
that exposes ``SECTION`` (a :class:`bench.harness.Section`: ``run(ctx) -> dict`` of JSON-able
results with every raw timing, ``render(data, ctx) -> list of markdown lines``); a section may
report targets (``data["targets"]``), which the summary collects. To add a section, write its
module and list it in :data:`SECTIONS`. Sections import the harness; nothing imports a section
but this registry.

Sections: "forward" (RateRNN rollout), "backward" (loss and BPTT gradient, GEMM share, peak
memory), "gains" (forward and BPTT with per-neuron pre/post gains against the
global-gain path), "force" (FORCE steps per second, RLS kernel against the memory bandwidth),
"ga" (one generation of the genetic algorithm), "analysis" (Lyapunov spectra, fixed points),
"continuation" (bifurcation continuation of a random network, n = 100, 500, 1000),
"mop" (a NeuroMOP epoch), "sweep" (a population of trainings on Dask), "nmrnn" (a full-batch
NM-RNN training step against JAX's jit of value_and_grad over lax.scan, when jax is installed),
"portable" (the portable build against the native build on each section's main workload, in
two worker processes; its workers import the other sections' workload code).

Timing rules (docs/benchmarks.md repeats them): every implementation is run once and its output
checked against the C++ core's before anything is timed (this is also the warm-up); then the
implementations are timed interleaved, in an order rotated every repeat, with
``time.perf_counter``; a sample of a fast call is the mean over enough back-to-back calls to last
``min_sample_s``; the reported time is the median sample. Ratios compare medians from the same
run, so they are what counts; absolute times on a shared machine are only indicative.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# PyTorch, when installed, loads before flexrnn: its bundled OpenMP runtime reads
# OMP_WAIT_POLICY as it loads, and importing flexrnn sets that variable (idle threads sleep)
# for flexrnn's own runtime; loaded first, PyTorch runs with the defaults its users have.
if "--no-torch" not in sys.argv and importlib.util.find_spec("torch") is not None:
    import torch  # noqa: F401

import flexrnn  # noqa: E402
from flexrnn._io import atomic_write_text  # noqa: E402

from bench.hardware import environment, measure_hardware
from bench.harness import BUSY, REPO, Context, Section, wait_until_idle
from bench.render import render_markdown
from bench.sections import (
    analysis,
    backward,
    continuation,
    force,
    forward,
    ga,
    gains,
    mop,
    nmrnn,
    portable,
    sweep,
)

DEFAULT_OUT = REPO / "bench" / "results"
DEFAULT_MARKDOWN = REPO / "docs" / "benchmarks.md"

# the registry: every section, in the order they run and appear in docs/benchmarks.md
SECTIONS: tuple[Section, ...] = (
    forward.SECTION,
    backward.SECTION,
    gains.SECTION,
    force.SECTION,
    ga.SECTION,
    analysis.SECTION,
    continuation.SECTION,
    mop.SECTION,
    sweep.SECTION,
    nmrnn.SECTION,
    portable.SECTION,
)


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
        help="run only this section (repeatable): " + ", ".join(b.name for b in SECTIONS),
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
        unknown = set(args.only) - {b.name for b in SECTIONS}
        if unknown:
            ap.error(f"unknown section(s) {sorted(unknown)}; known: {[b.name for b in SECTIONS]}")
    return args


def main(argv: Sequence[str] | None = None, prog: str = "python bench/run.py") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv, prog)
    if args.from_json is not None:
        return _render_json(args.from_json, args.markdown or DEFAULT_MARKDOWN)
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
    report = _measure(ctx, args, argv, prog, now)
    report["meta"]["wall_s"] = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    json_path = args.out / f"bench-{stamp}{'-quick' if ctx.quick else ''}.json"
    atomic_write_text(json_path, json.dumps(report, indent=1) + "\n")
    md_path = args.markdown or (args.out / "benchmarks-quick.md" if ctx.quick else DEFAULT_MARKDOWN)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(md_path, render_markdown(report, ctx, json_path, SECTIONS))
    ctx.log(f"done in {report['meta']['wall_s']:.0f} s: {json_path}, {md_path}")
    return 0


def _measure(
    ctx: Context, args: argparse.Namespace, argv: list[str], prog: str, now: _dt.datetime
) -> dict[str, Any]:
    """The report of a run: its options, the environment, the hardware limit, then every
    selected section's results, in registry order."""
    report: dict[str, Any] = {
        "meta": {
            "command": " ".join([prog] + [shlex.quote(a) for a in argv]),
            "argv": argv,
            "timestamp": now.isoformat(timespec="seconds"),
            "quick": ctx.quick,
            "repeats": ctx.repeats,
            "min_sample_s": ctx.min_sample_s,
            "budget_s": ctx.budget_s,
            "sections": [s.name for s in SECTIONS if not args.only or s.name in args.only],
        },
        "environment": environment(ctx),
    }
    if args.wait_idle > 0:
        report["meta"]["wait_idle"] = wait_until_idle(ctx, args.wait_idle)
    ctx.hardware = report["hardware"] = measure_hardware(ctx)
    report["sections"] = {}
    for section in SECTIONS:
        if args.only and section.name not in args.only:
            continue
        ctx.log(f"section {section.name}: {section.title}")
        report["sections"][section.name] = section.run(ctx)
    if hasattr(os, "getloadavg"):
        report["environment"]["loadavg_end"] = list(os.getloadavg())
    return report


def _render_json(json_path: Path, md_path: Path) -> int:
    """Measure nothing: write the markdown of an earlier run's JSON."""
    report = json.loads(json_path.read_text())
    ctx = Context(
        quick=report["meta"]["quick"],
        repeats=report["meta"]["repeats"],
        min_sample_s=report["meta"]["min_sample_s"],
        threads=0,
    )
    atomic_write_text(md_path, render_markdown(report, ctx, json_path, SECTIONS))
    ctx.log(f"wrote {md_path} from {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
