"""Import the compiled core that suits this CPU, as ``flexrnn._core``.

A build for one machine (``FLEXRNN_NATIVE=ON``, the default of a local build) or for a
non-x86 CPU has one extension module, ``flexrnn._core``, and it is imported as it is. The
portable build (``FLEXRNN_NATIVE=OFF``, the wheels) has one module per x86-64
micro-architecture level, ``flexrnn._core_x86_64_v2``, ``..._v3`` (AVX2 + FMA) and ``..._v4``
(AVX-512): the best one this CPU supports is imported once and bound as ``flexrnn._core``, so
the process-wide state (thread count, interrupt flag, buffer cache) lives in that one module.

The CPU's features are read from /proc/cpuinfo (Linux), compiling nothing. Where they cannot
be read, the lowest level is used. The environment variable ``FLEXRNN_CPU_LEVEL`` (e.g.
``x86-64-v2``) caps the level, to compare levels on one machine; a level above what the CPU
supports is refused (it would stop the process on an illegal instruction).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType

# The levels in increasing order, with the /proc/cpuinfo flags each adds to the one before
# (x86-64 psABI; OS support of the AVX state is implied: Linux hides avx* flags without it).
LEVELS: tuple[tuple[str, frozenset[str]], ...] = (
    ("x86-64-v2", frozenset({"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"})),
    (
        "x86-64-v3",
        frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    ),
    ("x86-64-v4", frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})),
)
_LEVEL_NAMES = tuple(name for name, _ in LEVELS)

# What the import chose, for flexrnn.config(): filled by load().
chosen: dict = {}


def module_name(level: str) -> str:
    """The extension module compiled for ``level``: 'x86-64-v3' -> 'flexrnn._core_x86_64_v3'."""
    return "flexrnn._core_" + level.replace("-", "_")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags from /proc/cpuinfo, or None where there is no such file."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        return None
    return None


def supported_levels(flags: frozenset[str] | None) -> list[str]:
    """The levels (lowest first) whose features are all in ``flags``; [] if flags is None."""
    if flags is None:
        return []
    levels: list[str] = []
    needed: set[str] = set()
    for name, added in LEVELS:
        needed |= added
        if not needed <= flags:
            break
        levels.append(name)
    return levels


def _compiled_levels() -> list[str]:
    return [lvl for lvl in _LEVEL_NAMES if importlib.util.find_spec(module_name(lvl)) is not None]


def load() -> ModuleType:
    """Import ``flexrnn._core`` (or the best compiled level, bound under that name)."""
    if "flexrnn._core" in sys.modules:
        return sys.modules["flexrnn._core"]
    if importlib.util.find_spec("flexrnn._core") is not None:
        core = importlib.import_module("flexrnn._core")
        level = getattr(core, "build_level", None)
        if level is None:  # a module built before the levels existed
            level = "native" if core.build_info()["native"] else "default"
        chosen.update(level=level, levels=[])
        return core
    compiled = _compiled_levels()
    if not compiled:
        raise ImportError(
            "flexrnn: no compiled core found (neither flexrnn._core nor flexrnn._core_x86_64_v*);"
            " build the package (pip install .) or copy the built module into python/flexrnn/"
        )
    flags = cpu_flags()
    usable = [lvl for lvl in compiled if lvl in supported_levels(flags)]
    if flags is None:
        # Features unknown (no /proc/cpuinfo): the lowest level compiled.
        usable = compiled[:1]
    cap = os.environ.get("FLEXRNN_CPU_LEVEL", "").strip()
    if cap:
        if cap not in _LEVEL_NAMES:
            raise ImportError(
                f"FLEXRNN_CPU_LEVEL={cap!r}: expected one of {', '.join(_LEVEL_NAMES)}"
            )
        if flags is not None and cap not in supported_levels(flags):
            raise ImportError(f"FLEXRNN_CPU_LEVEL={cap!r}: this CPU does not support it")
        usable = [lvl for lvl in usable if _LEVEL_NAMES.index(lvl) <= _LEVEL_NAMES.index(cap)]
    if not usable:
        raise ImportError(
            f"flexrnn: this CPU supports none of the compiled levels ({', '.join(compiled)});"
            " build flexrnn from source on this machine (pip install --no-binary flexrnn flexrnn)"
        )
    level = usable[-1]
    core = importlib.import_module(module_name(level))
    sys.modules["flexrnn._core"] = core
    chosen.update(level=level, levels=compiled)
    return core
