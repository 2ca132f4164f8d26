"""Configurations, seeds and run ids: JSON values, grids, the plan of a sweep."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types (numpy scalars -> Python, tuples -> lists)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _jsonable(value.item(), where)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{where}: expected JSON values (numbers, strings, bools, None, lists, dicts), "
        f"got {type(value).__name__}"
    )


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_config(config: Any, where: str = "config") -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise TypeError(f"{where}: expected a dict of JSON values, got {type(config).__name__}")
    return _jsonable(config, where)


def _check_seed(seed: Any, where: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{where}: expected an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{where}: expected an int >= 0, got {seed}")
    return int(seed)


def run_id(config: Mapping[str, Any], seed: int) -> str:
    """The stable id of a run: 16 hex digits of the SHA-256 of the canonical JSON of
    ``{"config": config, "seed": seed}`` (sorted keys; ``1`` and ``1.0`` differ)."""
    payload = {"config": _check_config(config), "seed": _check_seed(seed)}
    return _sha256(_canonical(payload))[:16]


def grid(spec: Mapping[str, Any] | None = None, /, **values: Any) -> list[dict[str, Any]]:
    """All combinations of the given values, as a list of configurations.

    ``grid(n=[50, 100], lr=[1e-3, 1e-2])`` -> 4 dicts; a dict may be given instead of
    keywords (for keys that are not identifiers). Each value is a list, tuple or range;
    the last key varies fastest.
    """
    items = dict(spec or {})
    overlap = set(items) & set(values)
    if overlap:
        raise ValueError(f"grid: {sorted(overlap)} given twice")
    items.update(values)
    if not items:
        raise ValueError("grid: give at least one key with a list of values")
    lists = []
    for key, options in items.items():
        if not isinstance(key, str):
            raise TypeError(f"grid: keys must be strings, got {key!r}")
        if isinstance(options, (str, bytes, Mapping)) or not isinstance(
            options, (list, tuple, range, np.ndarray)
        ):
            raise TypeError(
                f"grid: {key} must be a list of values (e.g. {key}=[...]), "
                f"got {type(options).__name__}"
            )
        options = [_jsonable(v, f"grid: {key}") for v in options]
        if not options:
            raise ValueError(f"grid: {key} has no values")
        lists.append(options)
    return [dict(zip(items, combo)) for combo in itertools.product(*lists)]


def _plan(configs: Any, seeds: Any) -> list[dict[str, Any]]:
    """[{"id", "config", "seed"}] in the order configs x seeds (seeds fastest)."""
    if isinstance(configs, Mapping):
        configs = [configs]
    if isinstance(configs, (str, bytes)) or not isinstance(configs, Iterable):
        raise TypeError(f"configs: expected a list of dicts, got {type(configs).__name__}")
    configs = [_check_config(c, f"configs[{i}]") for i, c in enumerate(configs)]
    if isinstance(seeds, (int, np.integer)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds: expected a sequence of ints (e.g. range(5)), got {seeds!r}")
    seeds = [_check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds)]
    if not configs or not seeds:
        raise ValueError("configs, seeds: need at least one configuration and one seed")
    plan, seen = [], {}
    for i, config in enumerate(configs):
        for seed in seeds:
            rid = run_id(config, seed)
            if rid in seen:
                raise ValueError(
                    f"configs: configs[{i}] with seed {seed} repeats {seen[rid]} (same id {rid})"
                )
            seen[rid] = f"configs[{i}] with seed {seed}"
            plan.append({"id": rid, "config": config, "seed": seed})
    return plan
