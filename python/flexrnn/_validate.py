"""Argument checks shared by the public API: every error names the argument."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_dtype(dtype: Any) -> np.dtype:
    """float32 or float64, from a name, a NumPy dtype or a type."""
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from err
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def real_array(name: str, value: Any) -> np.ndarray:
    """An ndarray of real numbers (bool, int or float), else TypeError naming the argument."""
    try:
        arr = np.asarray(value)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array of real numbers ({err})") from err
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
    return arr


def array(
    name: str,
    value: Any,
    dtype: np.dtype,
    shape: tuple | None = None,
    *,
    finite: bool = True,
) -> np.ndarray:
    """C-contiguous copy-if-needed of ``value`` in ``dtype``, checked against ``shape``.

    ``shape`` entries of None match any size. Raises ValueError/TypeError naming ``name``.
    """
    if (
        type(value) is np.ndarray
        and value.dtype == dtype
        and value.flags.c_contiguous
        and (shape is None or shape_matches(value.shape, shape))
    ):  # the common case, checked without copies: every run validates every parameter
        if finite and not np.isfinite(value).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        return value
    arr = real_array(name, value)
    if shape is not None:
        if arr.ndim != len(shape) or any(
            s is not None and s != a for s, a in zip(shape, arr.shape)
        ):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape)
            want += ",)" if len(shape) == 1 else ")"
            raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if finite and arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def shape_matches(actual: tuple, expected: tuple) -> bool:
    return len(actual) == len(expected) and all(
        e is None or e == a for a, e in zip(actual, expected)
    )


def scalar(name: str, value: Any, *, positive: bool = False, nonneg: bool = False) -> float:
    """A finite real scalar."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            value = value.item()
        else:
            raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name}: must be > 0, got {value}")
    if nonneg and value < 0:
        raise ValueError(f"{name}: must be >= 0, got {value}")
    return value


def integer(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: must be <= {maximum}, got {value}")
    return value


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def choice(name: str, value: Any, options: tuple) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}: expected one of {', '.join(options)}; got {value!r}")
    return value


def seed(name: str, value: Any) -> int:
    value = integer(name, value, minimum=0)
    if value >= 2**64:
        raise ValueError(f"{name}: must be < 2**64, got {value}")
    return value


def inputs(u: Any, n_in: int, dtype: np.dtype) -> np.ndarray:
    """u: (T, B, n_in), finite, converted once to the model's dtype."""
    arr = real_array("u", u)
    if arr.ndim != 3:
        raise ValueError(
            f"u: expected shape (T, B, {n_in}) (time-major; use u[:, None, :] for one trial), "
            f"got {arr.shape}"
        )
    return array("u", arr, dtype, (None, None, n_in), finite=False)  # the core checks finiteness


def initial_state(name: str, value: Any, default: np.ndarray, batch: int) -> np.ndarray:
    """x0: None (the model's own), (n,) shared by all trials, or (B, n); returns (B, n)."""
    n = default.shape[-1]
    if value is None:
        value = default
    arr = real_array(name, value)
    if arr.ndim == 1:
        arr = array(name, arr, default.dtype, (n,), finite=False)  # the core checks finiteness
        if batch == 1:
            return arr.reshape(1, n)
        return np.ascontiguousarray(np.broadcast_to(arr, (batch, n)))
    return array(name, arr, default.dtype, (batch, n), finite=False)


def loss_weights(name: str, value: Any) -> np.ndarray:
    """A loss mask: real, finite and >= 0 (weights of the entries of a loss; 0 = ignored).
    Returns it as an ndarray (not copied when it already is one)."""
    arr = real_array(name, value)
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values (loss weights must be finite)")
    if arr.size and arr.min() < 0:
        raise ValueError(
            f"{name}: loss weights must be >= 0 (1 where the loss counts, 0 where it does "
            f"not), got a minimum of {arr.min()}"
        )
    return arr
