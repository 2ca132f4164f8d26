"""Fingerprints of an experiment's parts, so that a resume can verify what it continues.

A checkpoint records a *description* of the task (and, for NeuroMOP, of every agent and
its environment): a JSON tree of the object's parameters, with every array replaced by its
dtype, shape and the SHA-256 of its bytes, plus the SHA-256 of that tree's canonical JSON
(sorted keys, no spaces). A resume describes the objects it was given the same way; when
the digests differ, :func:`differences` names each parameter that differs
(``task.sigma: 0.5 in the checkpoint, 3.0 now``).

What is described: an object's public attributes (its constructor parameters and what
they determine), recursively; models by class, dtype, hyperparameters and parameter
arrays; callables by their qualified name (their code is not compared); random generators
by class only (their state is training state, not a parameter). A class can narrow this
with ``_fingerprint_exclude`` (attribute names left out: training state) or replace it
with a ``_fingerprint_fields()`` method returning the dict to describe.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import types
from pathlib import PurePath
from typing import Any

import numpy as np

_MAX_DEPTH = 12


def describe(obj: Any) -> Any:
    """The JSON-able description of ``obj`` (see the module)."""
    return _describe(obj, 0, set())


def digest(description: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of a description."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(obj: Any) -> dict[str, Any]:
    """``{"sha256": digest, "description": description}`` of ``obj``."""
    description = describe(obj)
    return {"sha256": digest(description), "description": description}


_SHOWN_VALUES = 8  # arrays this small also carry their values, for readable differences


def array_description(arr: np.ndarray) -> dict[str, Any]:
    """dtype, shape and SHA-256 of the bytes (C order) of a numeric array; small arrays
    also list their values."""
    arr = np.ascontiguousarray(arr)
    out: dict[str, Any] = {
        "dtype": arr.dtype.str,
        "shape": list(arr.shape),
        "sha256": hashlib.sha256(arr.reshape(-1).view(np.uint8)).hexdigest(),
    }
    if arr.size <= _SHOWN_VALUES:
        out["values"] = [_describe(v, 0, set()) for v in arr.reshape(-1).tolist()]
    return {"array": out}


def _float(value: float) -> Any:
    value = float(value)
    return value if math.isfinite(value) else {"float": repr(value)}


def _class_name(obj: Any) -> str:
    return type(obj).__qualname__


def _describe(obj: Any, depth: int, active: set[int]) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return _float(obj)
    if isinstance(obj, numbers.Complex):
        return {"complex": [_float(obj.real), _float(obj.imag)]}
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            return {"object_array": _describe(obj.tolist(), depth + 1, active)}
        return array_description(obj)
    if isinstance(obj, np.dtype):
        return {"dtype": obj.str}
    if isinstance(obj, (bytes, bytearray)):
        return {"bytes": hashlib.sha256(bytes(obj)).hexdigest()}
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, range):
        return {"range": [obj.start, obj.stop, obj.step]}
    if isinstance(obj, (np.random.Generator, np.random.BitGenerator, np.random.RandomState)):
        return {"class": _class_name(obj)}
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)):
        name = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
        return {"callable": f"{getattr(obj, '__module__', '')}.{name}"}
    if depth >= _MAX_DEPTH or id(obj) in active:
        return {"class": _class_name(obj)}
    active = active | {id(obj)}
    if isinstance(obj, dict):
        return {str(k): _describe(v, depth + 1, active) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_describe(v, depth + 1, active) for v in obj]
    if isinstance(obj, (set, frozenset)):
        items = [_describe(v, depth + 1, active) for v in obj]
        return {"set": sorted(items, key=lambda d: json.dumps(d, sort_keys=True))}
    from flexrnn.models import Model  # models import nothing of train: no cycle

    if isinstance(obj, Model):
        return {
            "class": _class_name(obj),
            "dtype": obj.dtype.name,
            "hyperparameters": _describe(obj.hyperparameters(), depth + 1, active),
            "params": {k: array_description(v) for k, v in obj.params().items()},
        }
    fields_fn = getattr(obj, "_fingerprint_fields", None)
    if callable(fields_fn):
        fields = fields_fn()
    elif hasattr(obj, "__dict__"):
        exclude = set(getattr(obj, "_fingerprint_exclude", ()))
        fields = {k: v for k, v in vars(obj).items() if not k.startswith("_") and k not in exclude}
    elif callable(obj):
        return {"callable": f"{type(obj).__module__}.{_class_name(obj)}"}
    else:
        return {"class": _class_name(obj)}
    return {"class": _class_name(obj), "fields": _describe(fields, depth + 1, active)}


def _flatten(description: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
    """Leaves of a description by dotted path; arrays, floats and callables are leaves."""
    if isinstance(description, dict) and not (
        len(description) == 1 and next(iter(description)) in _LEAF_KEYS
    ):
        if set(description) == {"class", "fields"}:
            out[f"{path}.class" if path else "class"] = description["class"]
            return _flatten(description["fields"], path, out)
        if not description:
            out[path] = {}
        for k, v in description.items():
            _flatten(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(description, list):
        if not description:
            out[path] = []
        for i, v in enumerate(description):
            _flatten(v, f"{path}[{i}]", out)
    else:
        out[path] = description
    return out


_LEAF_KEYS = ("array", "float", "complex", "callable", "dtype", "bytes", "range", "set")


def _show(leaf: Any) -> str:
    if isinstance(leaf, dict) and "array" in leaf:
        a = leaf["array"]
        if "values" in a:
            return f"{_show_values(a['values'])} ({a['dtype']}, shape {tuple(a['shape'])})"
        return f"an array {a['dtype']} {tuple(a['shape'])} (sha256 {a['sha256'][:12]}...)"
    if isinstance(leaf, dict) and len(leaf) == 1:
        return str(next(iter(leaf.values())))
    return repr(leaf)


def _show_values(values: list) -> str:
    return "[" + ", ".join(_show(v) if isinstance(v, dict) else str(v) for v in values) + "]"


def differences(saved: Any, now: Any, name: str, limit: int = 8) -> list[str]:
    """What differs between two descriptions of ``name``, one line per parameter:
    ``"task.sigma: 0.5 in the checkpoint, 3.0 now"``."""
    if digest(saved) == digest(now):
        return []
    a, b = _flatten(saved, name, {}), _flatten(now, name, {})
    lines = []
    for key in list(a) + [k for k in b if k not in a]:
        if key not in b:
            lines.append(f"{key}: {_show(a[key])} in the checkpoint, absent now")
        elif key not in a:
            lines.append(f"{key}: absent in the checkpoint, {_show(b[key])} now")
        elif a[key] != b[key]:
            lines.append(f"{key}: {_show(a[key])} in the checkpoint, {_show(b[key])} now")
    if not lines:  # same leaves, another structure
        lines.append(f"{name}: described differently in the checkpoint")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines
