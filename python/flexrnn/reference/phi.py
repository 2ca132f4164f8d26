"""Transfer functions phi and their derivatives (docs/models.md, "Transfer functions").

Every function keeps the dtype of its argument (float32 stays float32).
"""

from __future__ import annotations

import numpy as np

from .names import PHI_NAMES


def sigmoid(x):
    """Logistic 1 / (1 + exp(-x)), elementwise; never overflows."""
    x = np.asarray(x)
    e = np.exp(-np.abs(x))  # in (0, 1]: exp never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _tanh_derivative(x):
    t = np.tanh(x)
    return 1 - t * t


_PHI = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "softplus": lambda x: np.logaddexp(0, x),  # log(1 + exp(x)) without overflow
    "shifted_tanh": lambda x: 1 + np.tanh(x),
    "identity": lambda x: x,
}

_DPHI = {
    "tanh": _tanh_derivative,
    "relu": lambda x: (x > 0).astype(x.dtype),  # relu'(0) = 0
    "softplus": sigmoid,
    "shifted_tanh": _tanh_derivative,
    "identity": np.ones_like,
}


def _lookup(table, name):
    try:
        return table[name]
    except (KeyError, TypeError):
        raise ValueError(f"phi must be one of {PHI_NAMES}, got {name!r}") from None


def phi(name, x):
    """phi_name(x), elementwise. x: any shape; returns the same shape and dtype."""
    return _lookup(_PHI, name)(np.asarray(x))


def dphi(name, x):
    """phi_name'(x), elementwise. x: any shape; returns the same shape and dtype."""
    return _lookup(_DPHI, name)(np.asarray(x))
