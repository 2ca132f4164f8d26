"""flexrnn: rate RNNs for computational neuroscience, with a C++ core.

>>> import flexrnn as fr
>>> net = fr.RateRNN.random(n=100, n_in=3, n_out=1, g=1.5, seed=0)
>>> out = net.run(u)          # u: (T, B, n_in) -> out.x, out.r: (T, B, n), out.y: (T, B, n_out)

The pages that docstrings cite as ``docs/<page>.md`` (the equations of every model, learning
rule and analysis) are in the repository's docs/ folder and are installed with the package,
in ``flexrnn/docs/``.
"""

from __future__ import annotations

import os as _os

# OpenMP threads that wait for the next parallel region sleep instead of spinning, unless the
# user chose otherwise: this must be set before the OpenMP runtime loads (with _core). Spinning
# idle threads compete with the calling thread for the cores; on a loaded machine a
# training step of the NM-RNN (two short parallel regions) took 4x longer with them.
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from flexrnn import _dispatch  # noqa: E402

# Binds flexrnn._core (the portable build: the level of the compiled core this CPU supports)
# before anything imports it.
_dispatch.load()

from flexrnn import _core, _validate, analysis, modulation, mop, presets, sweep, tasks, train  # noqa: E402
from flexrnn._version import __version__  # noqa: E402
from flexrnn.models import LSTM, NMRNN, LowRankRNN, RateRNN, load  # noqa: E402

__all__ = [
    "LSTM",
    "NMRNN",
    "LowRankRNN",
    "RateRNN",
    "__version__",
    "analysis",
    "buffer_cache_info",
    "config",
    "get_cmake_dir",
    "get_include",
    "get_num_threads",
    "load",
    "max_num_threads",
    "modulation",
    "mop",
    "presets",
    "set_buffer_cache",
    "set_num_threads",
    "sweep",
    "tasks",
    "train",
]


def config() -> dict:
    """What this build contains and what it runs on.

    Keys: version, openmp, cuda, native (compiled with -march=native), level (what the loaded
    kernels were compiled for), simd (Eigen's instruction sets), eigen, compiler, threads;
    ``cpu_level``, the instruction-set level of
    the compiled core in use ("native" for a build for this machine, "x86-64-v2", "x86-64-v3"
    or "x86-64-v4" for the portable build, "default" for a single build for the compiler's
    default target), and ``cpu_levels``, the levels the portable build contains (the best one
    this CPU supports is used; [] for a single build).
    """
    info = dict(_core.build_info())
    info["threads"] = _core.get_num_threads()
    info["cpu_level"] = _dispatch.chosen.get("level", "default")
    info["cpu_levels"] = list(_dispatch.chosen.get("levels", []))
    return info


def set_num_threads(n: int) -> None:
    """Use at most ``n`` threads in every later call, from any thread of the process.

    One setting for the whole process (not per calling thread): set it once, then train in a
    worker thread, and the worker's calls use it. Each call starts no more threads than it
    has pieces of work. Results do not depend on it (bitwise).

    n : 1 <= n <= ``max_num_threads()`` (4 x the cores of this machine, at most 1024);
        ValueError otherwise.
    """
    n = _validate.integer("n", n, minimum=1)
    limit = int(_core.max_num_threads())
    if n > limit:
        raise ValueError(
            f"n: at most {limit} threads (4 x the cores of this machine, at most 1024), got {n}"
        )
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """Threads every call uses at most (default: OMP_NUM_THREADS, else the number of cores)."""
    return int(_core.get_num_threads())


def max_num_threads() -> int:
    """The largest count :func:`set_num_threads` accepts: 4 x the cores, at most 1024."""
    return int(_core.max_num_threads())


def set_buffer_cache(bytes: int) -> None:
    """Keep at most ``bytes`` of freed output arrays for reuse by later calls (0: none).

    Rollouts return their arrays in memory that, once NumPy frees it, is kept for the next
    calls of the same size (refaulting fresh pages costs as much as a small simulation).
    A freed buffer the next call does not reuse is released by the call after: after
    ``del out`` the memory returns to the system within two calls, or at once with
    ``set_buffer_cache(0)`` (which also turns the cache off). Default: 256 MiB.
    """
    _core.set_buffer_cache_limit(_validate.integer("bytes", bytes, minimum=0, maximum=2**62))


def buffer_cache_info() -> dict:
    """The output-buffer cache now: ``bytes`` and ``blocks`` held, its ``limit`` in bytes, and
    ``release_after_calls``: a freed buffer not reused is released by this many calls later."""
    return {k: int(v) for k, v in _core.buffer_cache_info().items()}


def get_include() -> str:
    """Folder of the installed C++ headers (``#include <flexrnn/flexrnn.hpp>``)."""
    from pathlib import Path

    return str(Path(__file__).parent / "include")


def get_cmake_dir() -> str:
    """Folder to put on ``CMAKE_PREFIX_PATH`` (or pass as ``flexrnn_DIR``) for find_package."""
    from pathlib import Path

    return str(Path(__file__).parent / "lib" / "cmake" / "flexrnn")
