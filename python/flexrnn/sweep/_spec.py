"""Sweep specs in TOML (the ``flexrnn sweep SPEC.toml`` command) and status text."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Union

from flexrnn.sweep._ids import grid
from flexrnn.sweep._store import _last_error, status

PathLike = Union[str, Path]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError as err:
            raise ImportError(
                "spec: reading TOML needs Python >= 3.11 or the tomli package (pip install tomli)"
            ) from err
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise FileNotFoundError(f"spec: cannot read {path}: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"spec: {path} is not valid TOML: {err}") from err


def _import_function(name: Any, where: str = "function") -> Callable:
    import importlib

    if not isinstance(name, str) or name.count(":") != 1:
        raise ValueError(f"{where}: expected 'module:function', got {name!r}")
    module_name, attr = name.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{where}: cannot import module {module_name!r}: {err}") from err
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise ValueError(f"{where}: {module_name!r} has no function {attr!r}")
    return fn


def read_spec(path: PathLike) -> dict[str, Any]:
    """A sweep spec (TOML) as ``run``'s arguments: ``{"fn", "configs", "seeds", "out",
    "retries"}``.

    Keys: ``function = "module:function"`` (importable from the current folder or the
    spec's), ``seeds = [0, 1, 2]`` or ``seeds = {start = 0, stop = 10}``, a ``[grid]`` table
    of lists, optional ``[fixed]`` values added to every configuration, ``out`` (relative to
    the spec's folder; default ``"runs"``) and ``retries`` (default 2).
    """
    path = Path(path)
    spec = _read_toml(path)
    unknown = set(spec) - {"function", "seeds", "grid", "fixed", "out", "retries"}
    if unknown:
        raise ValueError(f"spec: unknown keys {sorted(unknown)} in {path}")
    if "function" not in spec:
        raise ValueError(f"function: {path} names no function ('module:function')")
    for folder in (str(path.parent.absolute()), os.getcwd()):
        if folder not in sys.path:
            sys.path.insert(0, folder)  # LocalCluster workers inherit sys.path
    fn = _import_function(spec["function"])
    if not isinstance(spec.get("grid"), dict) or not spec["grid"]:
        raise ValueError(f"grid: {path} needs a [grid] table of lists")
    configs = grid(spec["grid"])
    fixed = spec.get("fixed", {})
    if not isinstance(fixed, dict):
        raise ValueError("fixed: expected a table of values")
    overlap = set(fixed) & set(spec["grid"])
    if overlap:
        raise ValueError(f"fixed: {sorted(overlap)} are in [grid] too")
    configs = [{**fixed, **c} for c in configs]
    seeds = spec.get("seeds", [0])
    if isinstance(seeds, dict):
        if set(seeds) - {"start", "stop"} or "stop" not in seeds:
            raise ValueError("seeds: expected a list of ints or {start = a, stop = b}")
        seeds = list(range(int(seeds.get("start", 0)), int(seeds["stop"])))
    if not isinstance(seeds, list):
        raise ValueError(f"seeds: expected a list of ints, got {seeds!r}")
    out = Path(spec.get("out", "runs"))
    return {
        "fn": fn,
        "configs": configs,
        "seeds": seeds,
        "out": out if out.is_absolute() else path.parent / out,
        "retries": spec.get("retries", 2),
    }


def format_status(out: PathLike) -> str:
    """``status(out)`` as lines of text (the failed runs with their last error)."""
    counts = status(out)
    lines = [
        f"{out}: {counts['total']} runs of {counts['function']}: {counts['done']} done, "
        f"{counts['failed']} failed, {counts['pending']} pending"
    ]
    for rid in counts["failed_ids"]:
        lines.append(f"  failed {rid}: {_last_error(Path(out) / 'runs' / rid)}")
    return "\n".join(lines)
