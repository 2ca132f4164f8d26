"""Hardware and environment probes: what bounds the benchmarks on this machine.

:func:`measure_hardware` (NumPy's GEMM rate, the limit every section's FLOP rate is set
against), :func:`gemm_rate` at a given shape, :func:`memory_bandwidth` (streaming rate),
:func:`l3_bytes` (the last-level cache), and :func:`environment` (CPU, threads, versions,
BLAS, git: the report's header).
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import flexrnn
import numpy as np

from bench.harness import DTYPES, REPO, Context, CpuShare


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


def gemm_rate(m: int, k: int, n: int, dtype: str, repeats: int) -> dict[str, Any]:
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


def measure_hardware(ctx: Context) -> dict[str, Any]:
    """The GEMM rate NumPy reaches here: a square 2048 product and the large workload's
    per-step product (64, 1024) @ (1024, 1024).T."""
    reps = 3 if ctx.quick else 5
    out: dict[str, Any] = {"gemm_square": {}, "gemm_step": {}}
    with CpuShare() as cpu:
        for dt in DTYPES:
            ctx.log(f"hardware: NumPy GEMM rate, {dt}")
            out["gemm_square"][dt] = gemm_rate(2048, 2048, 2048, dt, reps)
            out["gemm_step"][dt] = gemm_rate(64, 1024, 1024, dt, reps)
    out["cpu_share"] = cpu.result
    return out


def memory_bandwidth(dtype: str, mib: int = 256, repeats: int = 5) -> dict[str, Any]:
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


def l3_bytes() -> int | None:
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
