"""flexrnn: rate RNNs for computational neuroscience, with a C++ core.

>>> import flexrnn as fr
>>> net = fr.RateRNN.random(n=100, n_in=3, n_out=1, g=1.5, seed=0)
>>> out = net.run(u)          # u: (T, B, n_in) -> out.x, out.r: (T, B, n), out.y: (T, B, n_out)
"""

from __future__ import annotations

from flexrnn import _core, _validate, analysis, mop, sweep, tasks, train
from flexrnn._version import __version__
from flexrnn.models import LSTM, NMRNN, LowRankRNN, RateRNN, load

__all__ = [
    "LSTM",
    "NMRNN",
    "LowRankRNN",
    "RateRNN",
    "__version__",
    "analysis",
    "config",
    "get_cmake_dir",
    "get_include",
    "get_num_threads",
    "load",
    "mop",
    "set_num_threads",
    "sweep",
    "tasks",
    "train",
]


def config() -> dict:
    """What this build contains: version, openmp, cuda, native, simd, eigen, compiler, threads."""
    info = dict(_core.build_info())
    info["threads"] = _core.get_num_threads()
    return info


def set_num_threads(n: int) -> None:
    """Use ``n`` OpenMP threads (>= 1) in later rollouts. Results do not depend on it."""
    _core.set_num_threads(_validate.integer("n", n, minimum=1))


def get_num_threads() -> int:
    """Number of OpenMP threads used by rollouts (default: the number of cores)."""
    return int(_core.get_num_threads())


def get_include() -> str:
    """Folder of the installed C++ headers (``#include <flexrnn/flexrnn.hpp>``)."""
    from pathlib import Path

    return str(Path(__file__).parent / "include")


def get_cmake_dir() -> str:
    """Folder to put on ``CMAKE_PREFIX_PATH`` (or pass as ``flexrnn_DIR``) for find_package."""
    from pathlib import Path

    return str(Path(__file__).parent / "lib" / "cmake" / "flexrnn")
