"""Pure-NumPy reference of every flexrnn kernel: the test oracle and the benchmark baseline.

Imports nothing from flexrnn outside this subpackage, so it works without the compiled core.
"""

from .adam import adam_step
from .backward import (
    low_rank_rnn_loss_and_grad,
    lstm_loss_and_grad,
    nmrnn_loss_and_grad,
    qr_backward,
    rate_rnn_loss_and_grad,
)
from .dynamics import (
    lyapunov_spectrum,
    minimize_q,
    nmrnn_map,
    nmrnn_map_jacobian,
    q_and_gradient,
    rate_map,
    rate_map_jacobian,
)
from .learning import (
    force_run,
    full_force_run,
    hebbian_run,
    mutate_population,
    philox_uniform,
    population_loss,
    rls_step,
)
from .losses import (
    cross_entropy,
    cross_entropy_loss,
    loss_and_dy,
    masked_loss,
    masked_mse,
    masked_mse_loss,
)
from .models import low_rank_rnn, lstm, nmrnn, rate_rnn
from .names import FORMS, LOSSES, PHI_NAMES, READOUTS
from .phi import dphi, phi, sigmoid
from .rng import philox4x32, philox_normal

__all__ = [
    "FORMS",
    "LOSSES",
    "PHI_NAMES",
    "READOUTS",
    "adam_step",
    "cross_entropy",
    "cross_entropy_loss",
    "dphi",
    "force_run",
    "full_force_run",
    "hebbian_run",
    "loss_and_dy",
    "low_rank_rnn",
    "low_rank_rnn_loss_and_grad",
    "lstm",
    "lstm_loss_and_grad",
    "lyapunov_spectrum",
    "masked_loss",
    "masked_mse",
    "masked_mse_loss",
    "minimize_q",
    "mutate_population",
    "nmrnn",
    "nmrnn_loss_and_grad",
    "qr_backward",
    "nmrnn_map",
    "nmrnn_map_jacobian",
    "phi",
    "philox4x32",
    "philox_normal",
    "philox_uniform",
    "population_loss",
    "q_and_gradient",
    "rate_map",
    "rate_map_jacobian",
    "rate_rnn",
    "rate_rnn_loss_and_grad",
    "rls_step",
    "sigmoid",
]
