"""Adam (Kingma & Ba 2015): flexrnn's one NumPy Adam step.

Used by the trainer's optimisers (:class:`flexrnn.train.Adam`, ``AdamW``), the NeuroMOP
value network's reference (:func:`flexrnn.reference.mop.fit`) and the fixed-point
minimiser's reference (:func:`flexrnn.reference.minimize_q`). Imports nothing of flexrnn,
so the reference package keeps working without the compiled core.
"""

from __future__ import annotations

import math

import numpy as np

ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8


def adam_step(p, g, m, v, t, lr, b1=ADAM_BETA1, b2=ADAM_BETA2, eps=ADAM_EPS, work=None):
    """One bias-corrected Adam step number ``t`` (1, 2, ...), in place on ``p`` and its
    moments ``m``, ``v`` (arrays of p's shape and dtype), with the gradient ``g``::

        m = b1 m + (1 - b1) g
        v = b2 v + (1 - b2) g^2
        p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    computed in the paper's efficient form (section 2), ``p -= lr_t m / (sqrt(v) + eps_t)``
    with ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)`` and ``eps_t = eps sqrt(1 - b2^t)``: the
    bias corrections become two scalars. ``work``: a buffer like p, so that a step allocates
    nothing (None: one is allocated). The arithmetic stays in p's dtype.
    """
    sqrt_bias2 = math.sqrt(1.0 - b2**t)
    lr_t = lr * sqrt_bias2 / (1.0 - b1**t)
    eps_t = eps * sqrt_bias2
    if work is None:
        work = np.empty_like(p)
    # 1. m = b1 m + (1 - b1) g
    m *= b1
    np.multiply(g, 1.0 - b1, out=work)
    m += work
    # 2. v = b2 v + (1 - b2) g^2
    v *= b2
    np.multiply(g, g, out=work)
    work *= 1.0 - b2
    v += work
    # 3. p -= lr_t m / (sqrt(v) + eps_t)
    np.sqrt(v, out=work)
    work += eps_t
    np.divide(m, work, out=work)
    work *= lr_t
    p -= work
