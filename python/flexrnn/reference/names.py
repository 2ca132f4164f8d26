"""The one table of names per option of flexrnn's models and losses.

``flexrnn.models``, ``flexrnn.tasks``, ``flexrnn.train`` and this reference package all
import these tuples from here (the reference imports nothing of flexrnn outside itself, so
the tables live in it).
"""

from __future__ import annotations

PHI_NAMES = ("tanh", "relu", "softplus", "shifted_tanh", "identity")  # nonlinearity phi
FORMS = ("current", "rate")  # where phi acts: on the current state x, or as a rate update
READOUTS = ("rate", "state")  # what the readout W_out reads: r = phi(x), or x
LOSSES = ("mse", "cross_entropy")  # masked losses (reference/losses.py)
