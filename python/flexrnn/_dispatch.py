"""Import the compiled core that suits this CPU, as ``flexrnn._core``.

A build for one machine (``FLEXRNN_NATIVE=ON``, the default of a local build) or for a
non-x86 CPU has one extension module, ``flexrnn/_core``, imported as it is. The portable build
(``FLEXRNN_NATIVE=OFF``, the wheels) has one extension per x86-64 micro-architecture level,
``flexrnn/_levels/<level>/_core`` for ``x86-64-v2``, ``x86-64-v3`` (AVX2 + FMA) and
``x86-64-v4`` (AVX-512): the same binding code linked with that level's kernels. The best
level this CPU supports is imported once, under the name ``flexrnn._core``, so the
process-wide state (thread count, interrupt flag, buffer cache) lives in that one module and
the bound classes name ``flexrnn._core`` as their module whatever the level.

The CPU's features are read from /proc/cpuinfo (Linux), compiling nothing. Where they cannot
be read, the lowest level is used. The environment variable ``FLEXRNN_CPU_LEVEL`` (e.g.
``x86-64-v2``) caps the level, to compare levels on one machine; a level the CPU lacks is
refused (its code would stop the process on an illegal instruction).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
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
LEVEL_NAMES = tuple(name for name, _ in LEVELS)
ENV_VAR = "FLEXRNN_CPU_LEVEL"

# What the import chose, for flexrnn.config(): filled by load().
chosen: dict = {}


def levels_folder() -> Path:
    """The folder of the portable build's per-level extensions: flexrnn/_levels/."""
    return Path(__file__).resolve().parent / "_levels"


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


def compiled_levels(folder: Path | None = None) -> dict[str, Path]:
    """The levels the portable build contains, lowest first: {level: path of its extension}."""
    folder = levels_folder() if folder is None else folder
    found: dict[str, Path] = {}
    for level in LEVEL_NAMES:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / level / ("_core" + suffix)
            if path.is_file():
                found[level] = path
                break
    return found


def choose_level(compiled: list[str], flags: frozenset[str] | None, cap: str | None = None) -> str:
    """The level to import: the highest of ``compiled`` the CPU (``flags``) supports, at most
    ``cap`` (a level name, or None/"" for no cap). ImportError where none fits."""
    if cap:
        if cap not in LEVEL_NAMES:
            raise ImportError(f"{ENV_VAR}={cap!r}: expected one of {', '.join(LEVEL_NAMES)}")
        if flags is not None and cap not in supported_levels(flags):
            raise ImportError(
                f"{ENV_VAR}={cap!r}: this CPU does not support {cap} "
                f"(it supports {', '.join(supported_levels(flags)) or 'none of the levels'})"
            )
    if flags is None:  # features unknown (no /proc/cpuinfo): the lowest level compiled
        usable = compiled[:1]
    else:
        supported = supported_levels(flags)
        usable = [lvl for lvl in compiled if lvl in supported]
    if cap:
        usable = [lvl for lvl in usable if LEVEL_NAMES.index(lvl) <= LEVEL_NAMES.index(cap)]
    if not usable:
        raise ImportError(
            f"flexrnn: this CPU supports none of the compiled levels ({', '.join(compiled)})"
            + (f" at or below {ENV_VAR}={cap}" if cap else "")
            + "; build flexrnn from source on this machine (pip install --no-binary flexrnn"
            " flexrnn)"
        )
    return usable[-1]


def _import_file(path: Path) -> ModuleType:
    """Import the extension at ``path`` as flexrnn._core (its init function is PyInit__core)."""
    spec = importlib.util.spec_from_file_location("flexrnn._core", path)
    if spec is None or spec.loader is None:  # pragma: no cover - an extension always has one
        raise ImportError(f"flexrnn: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["flexrnn._core"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["flexrnn._core"]
        raise
    return module


def load() -> ModuleType:
    """Import ``flexrnn._core``: the single build's module, or the best compiled level."""
    if "flexrnn._core" in sys.modules:
        return sys.modules["flexrnn._core"]
    compiled = compiled_levels()
    if not compiled:
        if importlib.util.find_spec("flexrnn._core") is None:
            raise ImportError(
                "flexrnn: no compiled core found (neither flexrnn/_core nor "
                "flexrnn/_levels/<level>/_core); build the package (pip install .) or copy the "
                "built module into python/flexrnn/"
            )
        core = importlib.import_module("flexrnn._core")
        level = getattr(core, "build_level", None)
        if level is None:  # a module built before the levels existed
            level = "native" if core.build_info()["native"] else "default"
        chosen.update(level=level, levels=[])
        return core
    level = choose_level(list(compiled), cpu_flags(), os.environ.get(ENV_VAR, "").strip())
    core = _import_file(compiled[level])
    chosen.update(level=level, levels=list(compiled))
    return core
