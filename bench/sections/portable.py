"""Benchmark section "portable": the portable build (runtime CPU dispatch, the wheels) against
the native build (``-march=native``), on the main C++ workload of every other section.

The two builds are given as build folders (or paths of their ``_core`` extension) in the
environment variables ``FLEXRNN_BENCH_NATIVE`` (default ``build/dev``) and
``FLEXRNN_BENCH_PORTABLE`` (default ``build/portable``): a native build folder holds
``_core*.so``, a portable one ``_levels/<level>/_core*.so``. Each build runs in its own worker
process (a copy of this checkout's Python package with that build's extension, which the
worker imports as ``flexrnn``); the section sends every workload to the two workers in turn,
one sample each, the order swapped every repeat, so both see the same machine load; the ratio
is the portable build's median time over the native build's, from the same run. Workloads are
the sections' own "flexrnn" implementations at their full sizes (the sweep section is left
out: its work is the backward section's BPTT under Dask).

Run it alone: ``python -m bench --only portable`` (``FLEXRNN_BENCH_WORKLOADS=forward,ga``
restricts the workloads, for a quick check).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import DTYPES, Context, Section

ROOT = Path(__file__).resolve().parents[2]
TARGET = 1.10  # the portable build at most 10 % slower than the native build

# name: (section, what is timed); the worker builds each from the section's own code
WORKLOADS: dict[str, tuple[str, str]] = {
    "forward": ("forward", "RateRNN rollout, the section's large workload (`net.run`)"),
    "backward": ("backward", "RateRNN loss and BPTT gradient (`fr.train.loss_and_grad`)"),
    "gains_forward": ("gains", "rollout with per-neuron pre/post gains, n = 100"),
    "gains_backward": ("gains", "BPTT with per-neuron pre/post gains, n = 100"),
    "force": ("force", "FORCE run, n = 256 (`_core.force_run`)"),
    "ga": ("ga", "one GA generation (`population_loss` + `mutate_population`)"),
    "lyapunov": ("analysis", "Lyapunov spectrum, n = 500"),
    "adam": ("analysis", "fixed-point Adam iterations (`_core.rate_minimize_q`)"),
    "fixed_points": ("analysis", "fixed-point search (`fr.analysis.fixed_points`)"),
    "mop": ("mop", "one NeuroMOP epoch (`fr.mop.train`)"),
    "nmrnn": ("nmrnn", "NM-RNN full-batch training step"),
}


# --- the worker (runs inside a process that imports one build as flexrnn)


def _make(name: str, dtype: str):
    """The workload ``name`` in ``dtype``: a zero-argument callable (the section's own code)."""
    import flexrnn

    ctx = Context(quick=False, repeats=1, min_sample_s=0.02, threads=flexrnn.get_num_threads())
    ctx.verbose = False

    def pick(impls):
        return next(i.fn for i in impls if i.key == "flexrnn")

    if name == "forward":
        from bench.sections import forward as s

        w = s.RATE_WORKLOADS[-1]
        return pick(s._rate_impls(ctx, w, dtype, w.T))
    if name == "backward":
        from bench.sections import backward as s

        return s._backward_fns(s.BACKWARD_WORKLOAD, dtype)[0]["flexrnn"]
    if name in ("gains_forward", "gains_backward"):
        from bench.sections import gains as s

        w = s.WORKLOADS[0]
        make = s._forward_impls if name == "gains_forward" else s._backward_impls
        return pick(make(w, dtype, w.T))
    if name == "force":
        from bench.sections import force as s

        w = s.FORCE_WORKLOADS[0]
        return pick(s._force_impls(s._force_problem(w.n, w.T, dtype)))
    if name == "ga":
        from bench.sections import ga as s

        return pick(s._ga_impls(ctx, dtype, s.GA_WORKLOAD["T"]))
    if name in ("lyapunov", "adam", "fixed_points"):
        from bench.sections import analysis as s

        make = {"lyapunov": s._lyap_impls, "adam": s._adam_impls, "fixed_points": s._search_impls}
        return pick(make[name](ctx, dtype))
    if name == "mop":
        from bench.sections import mop as s

        return pick(s._impls(ctx, dtype, s.WORK["horizon"]))
    if name == "nmrnn":
        from bench.sections import nmrnn as s

        return s.flexrnn_step(dtype)
    raise ValueError(f"workload: unknown workload {name!r}; known: {', '.join(WORKLOADS)}")


def worker() -> None:
    """Serve timing requests on stdin: one JSON line {"name", "dtype", "min_s"} in, one JSON
    line {"s": seconds per call} out (the mean over back-to-back calls lasting min_s)."""
    import flexrnn

    print(json.dumps({"level": flexrnn.config()["cpu_level"]}), flush=True)
    made: dict[tuple[str, str], Any] = {}
    for line in sys.stdin:
        req = json.loads(line)
        key = (req["name"], req["dtype"])
        if key not in made:
            made[key] = _make(*key)
            made[key]()  # warm-up (buffers, caches)
        fn = made[key]
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= req["min_s"]:
                break
        print(json.dumps({"s": elapsed / calls}), flush=True)


# --- the section (the parent process)


def _extension_files(build: Path) -> tuple[list[Path], Path | None]:
    """A build's extension: ([the native/single _core file], None) or ([], its _levels/)."""
    if build.is_file():
        if build.parent.name.startswith("x86-64-") and build.parent.parent.name == "_levels":
            return [], build.parent.parent
        return [build], None
    if (build / "_levels").is_dir():
        return [], build / "_levels"
    return sorted(build.glob("_core*.so")) + sorted(build.glob("_core*.pyd")), None


def _package_copy(build: Path, dest: Path) -> Path:
    """A copy of this checkout's flexrnn package with ``build``'s extension, under ``dest``."""
    files, levels = _extension_files(build)
    if not files and levels is None:
        raise FileNotFoundError(f"{build}: no _core extension and no _levels/ folder in it")
    pkg = dest / "flexrnn"
    shutil.copytree(
        ROOT / "python" / "flexrnn",
        pkg,
        ignore=shutil.ignore_patterns("_core*.so", "_core*.pyd", "_levels", "__pycache__"),
    )
    for f in files[:1]:
        shutil.copy2(f, pkg / f.name)
    if levels is not None:
        shutil.copytree(levels, pkg / "_levels")
    return dest


class _Worker:
    def __init__(self, site: Path):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
        env.pop("FLEXRNN_CPU_LEVEL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from bench.sections.portable import worker; worker()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(site),
        )
        self.level = self._read()["level"]

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the benchmark worker stopped (exit code {self.proc.wait()})")
        return json.loads(line)

    def time(self, name: str, dtype: str, min_s: float) -> float:
        self.proc.stdin.write(json.dumps({"name": name, "dtype": dtype, "min_s": min_s}) + "\n")
        self.proc.stdin.flush()
        return self._read()["s"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _builds() -> dict[str, Path]:
    return {
        "native": Path(os.environ.get("FLEXRNN_BENCH_NATIVE", ROOT / "build" / "dev")),
        "portable": Path(os.environ.get("FLEXRNN_BENCH_PORTABLE", ROOT / "build" / "portable")),
    }


def run(ctx: Context) -> dict[str, Any]:
    builds = _builds()
    names = list(WORKLOADS)
    only = os.environ.get("FLEXRNN_BENCH_WORKLOADS", "").strip()
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        unknown = sorted(set(names) - set(WORKLOADS))
        if unknown:
            raise ValueError(f"FLEXRNN_BENCH_WORKLOADS: unknown workloads {unknown}")
    out: dict[str, Any] = {"builds": {k: str(v) for k, v in builds.items()}, "rows": []}
    missing = [k for k, p in builds.items() if not p.exists()]
    if missing:
        out["skipped"] = (
            f"no {' and no '.join(missing)} build ({', '.join(map(str, builds.values()))})"
        )
        ctx.log(f"portable: skipped, {out['skipped']}")
        return out
    min_s = max(ctx.min_sample_s, 0.1)
    with tempfile.TemporaryDirectory(prefix="flexrnn-bench-portable-") as tmp:
        workers = {k: _Worker(_package_copy(p, Path(tmp) / k)) for k, p in builds.items()}
        out["levels"] = {k: w.level for k, w in workers.items()}
        try:
            for name in names:
                for dtype in DTYPES:
                    ctx.log(f"portable: {name} {dtype}")
                    samples: dict[str, list[float]] = {"native": [], "portable": []}
                    for r in range(ctx.repeats):
                        order = ["native", "portable"] if r % 2 == 0 else ["portable", "native"]
                        for k in order:
                            samples[k].append(workers[k].time(name, dtype, min_s))
                    med = {k: statistics.median(v) for k, v in samples.items()}
                    out["rows"].append(
                        {
                            "workload": name,
                            "dtype": dtype,
                            "samples": samples,
                            "median_s": med,
                            "ratio": med["portable"] / med["native"],
                        }
                    )
        finally:
            for w in workers.values():
                w.close()
    out["worst_ratio"] = max(r["ratio"] for r in out["rows"]) if out["rows"] else None
    return out


def render(data: dict[str, Any], ctx: Context) -> list[str]:
    if data.get("skipped"):
        return [f"Not measured: {data['skipped']}.", ""]
    levels = data.get("levels", {})
    lines = [
        f"The portable build (runtime dispatch; level in use: `{levels.get('portable')}`) "
        f"against the native build (`{levels.get('native')}`), each in its own worker process, "
        "timed in turn on the same workloads within this run. Ratio: portable median time / "
        f"native median time (target ≤ {TARGET:.2f}).",
        "",
        "| section | workload | dtype | native (ms) | portable (ms) | ratio |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in data["rows"]:
        section, label = WORKLOADS[r["workload"]]
        flag = "" if r["ratio"] <= TARGET else " **over**"
        lines.append(
            f"| {section} | {label} | {r['dtype']} | {r['median_s']['native'] * 1e3:.2f} | "
            f"{r['median_s']['portable'] * 1e3:.2f} | {r['ratio']:.3f}{flag} |"
        )
    if data.get("worst_ratio") is not None:
        lines += ["", f"Worst ratio: {data['worst_ratio']:.3f}."]
    return lines + [""]


SECTION = Section(
    "portable", "Portable build (runtime CPU dispatch) against the native build", run, render
)
