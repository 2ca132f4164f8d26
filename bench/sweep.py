"""Benchmark section "sweep": a population of short trainings through flexrnn.sweep (issue 15).

Registered into :mod:`bench.run` on import (``bench.run.main`` imports this module).
Workload: 16 BPTT trainings of a RateRNN (n = 50, float32) on PerceptualDecision, seeds
0..15, each ``iters`` Adam updates of 64 trials (no validation): a few seconds each.

Implementations: ``fr.sweep.run`` on a LocalCluster of ``workers`` processes (one per core
by default; each run single-threaded), timed from the call to its return (cluster start and
shutdown included), and the time from the first run's start to the last run's end in the
sweep's log (the runs alone); the same 16 trainings in a loop in this process with flexrnn
single-threaded, and with flexrnn's default threads (OpenMP inside each run). The output
check: every run's final loss is the same in the sweep and in the loop (the trainings are
deterministic). Hardware limit: the sweep's throughput over the single-threaded loop cannot
exceed the number of cores (nor the number of workers).
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import flexrnn
import numpy as np

from bench.run import Context, CpuShare, fmt_ratio, fmt_time, register

WORK = {"runs": 16, "n": 50, "iters": 60, "quick_iters": 8, "batch_size": 64, "lr": 3e-3}
REPEATS = 3  # loop and sweep, interleaved; the fastest of each is reported


def train_one(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One training of the workload (a flexrnn.sweep run): final loss, wall and CPU time."""
    t0, c0 = time.perf_counter(), time.process_time()
    net = flexrnn.RateRNN.random(n=config["n"], n_in=1, n_out=1, g=1.0, tau=10.0, dt=1.0,
                                 seed=seed, dtype="float32")  # fmt: skip
    hist = flexrnn.train.bptt(
        net, flexrnn.tasks.PerceptualDecision(), iters=config["iters"],
        batch_size=config["batch_size"], lr=config["lr"], val_every=None, progress=False,
        seed=seed,
    )  # fmt: skip
    return {
        "final_loss": float(hist.loss[-1]),
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
    }


def _loop(config: dict[str, Any], seeds: list[int], threads: int | None) -> dict[str, Any]:
    before = flexrnn.get_num_threads()
    if threads is not None:
        flexrnn.set_num_threads(threads)
    try:
        with CpuShare() as cpu:
            t0 = time.perf_counter()
            losses = [train_one(config, s)["final_loss"] for s in seeds]
            wall = time.perf_counter() - t0
    finally:
        flexrnn.set_num_threads(before)
    return {"wall_s": wall, "losses": losses, "threads": threads or before,
            "cpu_share": cpu.result}  # fmt: skip


def _sweep(config: dict[str, Any], seeds: list[int], workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="flexrnn-bench-sweep-") as out:
        with CpuShare() as cpu:
            t0 = time.perf_counter()
            rows = flexrnn.sweep.run(train_one, [config], seeds, out, workers=workers,
                                     progress=False, strict=True)  # fmt: skip
            wall = time.perf_counter() - t0
        events = flexrnn.sweep.read_log(out)
    starts = [e["time"] for e in events if e["event"] == "start"]
    ends = [e["time"] for e in events if e["event"] == "end"]
    run_cpu = sum(r["cpu_seconds"] for r in rows)
    share = dict(cpu.result)
    if share.get("others") is not None and share.get("wall_s"):
        # CpuShare counts the worker processes as "others": take their runs' CPU time out
        cpus = os.cpu_count() or 1
        share["workers"] = run_cpu / (share["wall_s"] * cpus)
        share["others"] = max(0.0, share["others"] - share["workers"])
    return {
        "wall_s": wall,
        "runs_span_s": max(ends) - min(starts),
        "losses": [r["final_loss"] for r in rows],
        "run_seconds": [r["seconds"] for r in rows],
        "workers": workers,
        "cpu_share": share,
    }


def render_sweep(data: dict[str, Any], ctx: Context) -> list[str]:
    w = data["workload"]
    loop1, loopn, sw = data["loop_1_thread"], data["loop_default_threads"], data["sweep"]
    cores = data["cores"]
    samples = data.get("samples", {})
    walls = ", ".join(
        f"{k.replace('_', ' ')} " + " / ".join(fmt_time(v) for v in vals)
        for k, vals in samples.items()
    )
    lines = [
        f"{w['runs']} BPTT trainings (RateRNN n = {w['n']}, float32, PerceptualDecision, "
        f"{w['iters']} Adam updates of {w['batch_size']} trials each, seeds 0..{w['runs'] - 1}); "
        f"one run takes {fmt_time(loop1['wall_s'] / w['runs'])} in the single-threaded loop "
        f"and {fmt_time(float(np.median(sw['run_seconds'])))} on a worker (median). "
        f"Sweep: `fr.sweep.run` on a LocalCluster of {sw['workers']} single-threaded worker "
        f"processes on {cores} cores. Throughput is relative to the single-threaded loop; the "
        f"limit is {data['limit']} (cores and workers). The loop and the sweep ran "
        f"{data.get('repeats', 1)} times each, interleaved; the table shows the fastest of each"
        + (f" (all walls: {walls})." if walls else "."),
        "",
        "| implementation | wall | throughput | runs/s |",
        "|---|---|---|---|",
        f"| loop in one process, flexrnn 1 thread | {fmt_time(loop1['wall_s'])} | 1× | "
        f"{w['runs'] / loop1['wall_s']:.2f} |",
        f"| loop in one process, flexrnn {loopn['threads']} threads | "
        f"{fmt_time(loopn['wall_s'])} | {fmt_ratio(loop1['wall_s'] / loopn['wall_s'])} | "
        f"{w['runs'] / loopn['wall_s']:.2f} |",
        f"| `fr.sweep.run`, {sw['workers']} workers (cluster start and stop included) | "
        f"{fmt_time(sw['wall_s'])} | {fmt_ratio(loop1['wall_s'] / sw['wall_s'])} | "
        f"{w['runs'] / sw['wall_s']:.2f} |",
        f"| `fr.sweep.run`, first start to last end of the runs | "
        f"{fmt_time(sw['runs_span_s'])} | {fmt_ratio(loop1['wall_s'] / sw['runs_span_s'])} | "
        f"{w['runs'] / sw['runs_span_s']:.2f} |",
        "",
        f"- outputs: every run's final loss {'is' if data['outputs_agree'] else '**is not**'} "
        "the same in every sweep and every loop",
        f"- sweep throughput {fmt_ratio(loop1['wall_s'] / sw['wall_s'])} of the "
        f"single-threaded loop ({fmt_ratio(loop1['wall_s'] / sw['runs_span_s'])} counting the "
        f"runs alone) against the limit of {data['limit']}×",
    ]
    blocks = (("loop, 1 thread", loop1), ("loop, default threads", loopn), ("sweep", sw))
    others = [(k, d["cpu_share"].get("others")) for k, d in blocks]
    if any(v is not None for _, v in others):
        lines.append(
            "- other processes' share of the CPUs while each ran: "
            + ", ".join(f"{k} {v:.0%}" for k, v in others if v is not None)
            + f"; 1-min load average {data['loadavg'][0]:.2f} before, "
            f"{data['loadavg'][1]:.2f} after"
        )
    return lines


@register("sweep", "Populations of runs: flexrnn.sweep on Dask", render_sweep)
def run_sweep(ctx: Context) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    workers = cores
    config = {"n": WORK["n"], "iters": WORK["quick_iters"] if ctx.quick else WORK["iters"],
              "batch_size": WORK["batch_size"], "lr": WORK["lr"]}  # fmt: skip
    seeds = list(range(WORK["runs"]))
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    repeats = 1 if ctx.quick else REPEATS
    loops, sweeps = [], []
    for r in range(repeats):  # interleaved: a load that comes and goes hits both alike
        ctx.log(f"sweep: {len(seeds)} trainings in one process, 1 thread ({r + 1}/{repeats})")
        loops.append(_loop(config, seeds, 1))
        ctx.log(f"sweep: the same on a LocalCluster of {workers} workers ({r + 1}/{repeats})")
        sweeps.append(_sweep(config, seeds, workers))
    ctx.log("sweep: the same in one process, default threads")
    loopn = _loop(config, seeds, None)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    # the least disturbed repeat of each (other processes only ever slow a block down)
    loop1 = min(loops, key=lambda d: d["wall_s"])
    sw = min(sweeps, key=lambda d: d["wall_s"])
    agree = all(d["losses"] == loops[0]["losses"] for d in loops + sweeps + [loopn])
    return {
        "workload": {**WORK, "iters": config["iters"]},
        "cores": cores,
        "limit": min(cores, workers),
        "repeats": repeats,
        "loop_1_thread": loop1,
        "loop_default_threads": loopn,
        "sweep": sw,
        "samples": {
            "loop_1_thread": [d["wall_s"] for d in loops],
            "sweep": [d["wall_s"] for d in sweeps],
        },  # fmt: skip
        "outputs_agree": agree,
        "throughput_ratio": loop1["wall_s"] / sw["wall_s"],
        "throughput_ratio_runs": loop1["wall_s"] / sw["runs_span_s"],
        "loadavg": [load0, load1],
    }
