"""Lyapunov spectra of rate networks by the QR method, in C++ (docs/dynamics_analysis.md).

The network at constant input is the map ``x -> F(x)`` its rollout iterates (no noise);
``k`` tangent vectors are advanced with the map's Jacobian, re-orthonormalised by QR every
``reorthonormalize`` steps, and the logs of ``|diag R|`` are averaged over ``steps`` steps
after a ``transient``. Several gains run in one call (one trial per gain, in parallel).

Known answers (``dx/dt = -x + g J tanh(x)``, ``J ~ N(0, 1/n)``, large n): the largest exponent
is ``g - 1`` for ``g < 1`` (the origin), about 0.10 at ``g = 2`` and 0.21 at ``g = 3``
(per unit of tau); for a linear network the exponents are ``log|eig(J)|`` of the map.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flexrnn import _validate as check

from .fixed_points import _u_const

__all__ = ["lyapunov_spectrum"]


def initial_states(x0: Any, seed: int, n: int, G: int, dtype: np.dtype) -> np.ndarray:
    """(G, n) contiguous initial states, one per gain: ``x0`` (n,) for all, (G, n) each, or
    None for ``N(0, 1)`` drawn from ``seed`` (the same for every gain)."""
    if x0 is None:
        x0 = np.random.default_rng(seed).standard_normal(n)
    x0 = check.real_array("x0", x0)
    if x0.ndim == 1:
        return np.ascontiguousarray(np.broadcast_to(check.array("x0", x0, dtype, (n,)), (G, n)))
    return check.array("x0", x0, dtype, (G, n))


PER = ("tau", "step")
_MAX_STEPS = 2**31 - 1  # the core counts steps + transient in a 32-bit int


def lyapunov_spectrum(
    net: Any,
    k: int | None = None,
    steps: int = 2000,
    transient: int = 1000,
    gain: Any = 1.0,
    u_const: Any = None,
    x0: Any = None,
    neuron_gain: Any = None,
    reorthonormalize: int = 1,
    seed: int = 0,
    per: str = "tau",
    *,
    pre_gain: Any = None,
    post_gain: Any = None,
) -> np.ndarray:
    """The ``k`` largest Lyapunov exponents of ``net`` at constant input, descending.

    Parameters
    ----------
    net : RateRNN (either form) or LowRankRNN.
    k : number of exponents, 1..n; None: ``min(10, n)``.
    steps : steps of the map averaged over (after the transient).
    transient : steps discarded first (the state and the tangent vectors settle).
    gain : recurrent gain: a scalar, or (G,) gains run in one call.
    u_const : None (zeros) or (n_in,) constant input.
    x0 : initial state: None (``N(0, 1)`` drawn from ``seed``, the same for every gain), (n,),
        or (G, n) one per gain.
    neuron_gain : None or (n,) per-neuron slope of phi.
    reorthonormalize : QR every this many steps (1 is the safest; larger is faster when the
        exponents are close together).
    seed : seeds x0 (when None) and the initial tangent vectors (C++: trial b draws row i
        from ``philox_normal(seed, stream=b, step=i, n)``).
    per : ``"tau"`` (divide by alpha: exponents per unit of tau, the continuous-time reading)
        or ``"step"`` (per step of the map).
    pre_gain, post_gain : None or (n,): the spectrum of the network whose recurrent matrix
        is ``diag(post_gain) W diag(pre_gain)`` (see ``RateRNN.run``).

    Returns
    -------
    (k,) for a scalar gain, (G, k) for an array of gains; in the model's dtype, sorted
    descending. (Over a finite run the QR estimates of exponents close together, such as
    those of a complex pair of Jacobian eigenvalues, need not come out in order; they are
    sorted.)
    """
    if "lyapunov" not in getattr(net, "kernels", {}):
        raise TypeError(
            f"net: expected a RateRNN or LowRankRNN, got {type(net).__name__} (Lyapunov "
            "spectra of the NMRNN's joint state are not provided; its fixed points are)"
        )
    p = net._check_shapes()
    dtype = net.dtype
    n, n_in = p["x0"].shape[0], p["W_in"].shape[1]
    k = min(10, n) if k is None else check.integer("k", k, minimum=1)
    if k > n:
        raise ValueError(f"k: must be in 1..n = {n}, got {k}")
    steps = check.integer("steps", steps, minimum=1, maximum=_MAX_STEPS)
    transient = check.integer("transient", transient, minimum=0, maximum=_MAX_STEPS - steps)
    reorthonormalize = check.integer("reorthonormalize", reorthonormalize, minimum=1)
    seed = check.seed("seed", seed)
    per = check.choice("per", per, PER)
    gains = check.real_array("gain", gain)
    scalar_gain = gains.ndim == 0
    if gains.ndim > 1 or gains.size == 0:
        raise ValueError(f"gain: expected a scalar or a (G,) array with G >= 1, got {gains.shape}")
    gains = check.array("gain", np.atleast_1d(gains), dtype)
    G = gains.shape[0]
    u = _u_const(u_const, n_in, dtype)
    if neuron_gain is not None:
        neuron_gain = check.array("neuron_gain", neuron_gain, dtype, (n,))
    x0 = initial_states(x0, seed, n, G, dtype)
    exponents = net.kernels["lyapunov"](
        net._map_kernel(p, pre_gain, post_gain), net._options(), u, gains, neuron_gain, x0, k,
        steps, transient,
        reorthonormalize, seed,
    )  # fmt: skip
    exponents = -np.sort(-exponents, axis=1)
    if per == "tau":
        exponents = exponents / dtype.type(net.alpha)
    return exponents[0] if scalar_gain else exponents
