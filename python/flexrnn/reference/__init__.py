"""Pure-NumPy reference of every flexrnn kernel: the test oracle and the benchmark baseline.

Imports nothing from flexrnn outside this subpackage, so it works without the compiled core.
"""

from .models import low_rank_rnn, lstm, nmrnn, rate_rnn
from .phi import PHI_NAMES, dphi, phi, sigmoid
from .rng import philox4x32, philox_normal

__all__ = [
    "PHI_NAMES",
    "dphi",
    "low_rank_rnn",
    "lstm",
    "nmrnn",
    "philox4x32",
    "philox_normal",
    "phi",
    "rate_rnn",
    "sigmoid",
]
