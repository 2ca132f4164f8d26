"""Named presets: the initialisations and trained parameters of a source study's models.

``costacurta2024`` is the NM-RNN study (Costacurta et al., NeurIPS 2024): its NM-RNN, low-rank
RNN, vanilla RNN and LSTM, initialised as its code does, with the parameters it trains.

>>> net = fr.presets.costacurta2024("NMRNN", n=100, rank=3, n_mod=5, n_in=3, n_out=1, seed=0)
>>> fr.presets.costacurta2024_trainable(net)   # what the study trains
['W_z', 'B_z', 'A_z', 'c_z', 'U', 'V', 'B_x', 'C']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flexrnn import _validate as check
from flexrnn.models import LSTM, NMRNN, LowRankRNN, Model, RateRNN
from flexrnn.train.staged import trainable_except

STUDY_MODELS = ("NMRNN", "LowRankRNN", "RateRNN", "LSTM")
SETUPS = ("timing", "element_finder")  # the study's initialisations, by its code
INITIAL_STATE = 0.1  # x0 = z0 = 0.1 (h0 = c0 = 0.1 for the LSTM)


def costacurta2024(
    model: str,
    *,
    n: int,
    n_in: int,
    n_out: int,
    rank: int | None = None,
    n_mod: int | None = None,
    tau_x: float = 10.0,
    tau_z: float = 100.0,
    feedback: bool = False,
    setup: str = "timing",
    seed: int = 0,
    dtype: Any = "float64",
) -> Model:
    """A model of the NM-RNN study, initialised as the study's code does.

    model : "NMRNN", "LowRankRNN", "RateRNN" (the study's vanilla RNN) or "LSTM".
    n : units of the network (the NM-RNN's and low-rank RNN's output network, the vanilla
        RNN, the LSTM's cells); rank : of the low-rank networks; n_mod : the modulator's size.
    tau_x, tau_z : time constants in steps (dt = 1); tau_x is the vanilla and low-rank RNN's.
    feedback : the NM-RNN's x -> z feedback ``W_zx ~ N(0, 1/n)`` (element-finder variant).
    setup : ``"timing"`` (the study's timing and multitask code, below) or ``"element_finder"``
        (its element-finder code, NMRNN and LSTM only; then pass tau_x=2, tau_z=10):

        - NMRNN: the raw factors, no QR, ``n_scale = n``; ``U, V ~ N(0, 1/rank)``;
          ``W_z, A_z ~ N(0, 1/n_mod)``; ``B_z, B_x ~ N(0, 1/n_in)``; ``C ~ N(0, 1/n)``;
          ``b_z ~ N(0, 1/n_mod)`` (trained); ``c_z ~ N(0, 1/rank)``; ``W_zx ~ N(0, 1/n)``
          always; no readout bias (``d = 0``, not trained); ``x0 ~ N(0, 1/n)``,
          ``z0 ~ N(0, 1/n_mod)`` drawn once, not trained.
        - LSTM: ``W_ih ~ N(0, 1/n_in)``; ``W_hh``, gate biases ``b``, ``C ~ N(0, 1/n)``;
          ``d = 0`` (not trained); ``h0, c0 ~ N(0, 1/n)`` drawn once, not trained.

    Initialisation for ``setup="timing"`` (``N(0, s^2)`` has standard deviation s):

    - NMRNN: ``parametrize="qr"`` (the network uses Q of the raw U), ``n_scale = 1``;
      ``U, V ~ N(0, 1)``; ``W_z, A_z, c_z ~ N(0, 0.1^2)``; ``B_z, B_x ~ N(0, 1/n_in)``;
      ``C, d ~ N(0, 1/n)``; ``b_z = 0``; ``x0 = z0 = 0.1``.
    - LowRankRNN: ``parametrize="qr"``, ``W = Q V^T / n`` (singular values about
      ``1 / sqrt(n)``: an effective gain of about 0.1 at n = 100);
      ``U, V ~ N(0, 1)``; ``W_in ~ N(0, 1/n_in)``; ``W_out, b_out ~ N(0, 1/n)``;
      ``readout="state"`` (``y = W_out x + b_out``); ``b = 0``; ``x0 = 0.1``; tau = tau_x.
    - RateRNN: the study trains a raw ``W_raw ~ N(0, 1)`` and its network uses ``W_raw / n``;
      here ``W = W_raw / n`` is the parameter (Adam's steps on W are then n times those of
      the study's on W_raw / n: state it when comparing); ``W_in ~ N(0, 1/n_in)``;
      ``W_out, b_out ~ N(0, 1/n)``; ``readout="state"``; ``b = 0``; ``x0 = 0.1``.
    - LSTM: PyTorch's ``U(-1/sqrt(n), 1/sqrt(n))`` for the weights and gate biases, no
      readout bias (``d = 0``, not trained), ``h0 = c0 = 0.1``.

    Returns the model (float64 by default).
    """
    model = check.choice("model", model, STUDY_MODELS)
    setup = check.choice("setup", setup, SETUPS)
    n = check.integer("n", n, minimum=1)
    n_in = check.integer("n_in", n_in, minimum=1)
    n_out = check.integer("n_out", n_out, minimum=1)
    rng = np.random.default_rng(check.seed("seed", seed))
    in_std, out_std = 1 / np.sqrt(n_in), 1 / np.sqrt(n)

    def normal(shape, std):
        return rng.standard_normal(shape) * std

    if setup == "element_finder":
        if model not in ("NMRNN", "LSTM"):
            raise ValueError(
                f"model: the element-finder setup has an NMRNN and an LSTM, got {model!r}"
            )
        if model == "LSTM":
            return LSTM(
                W_ih=normal((4 * n, n_in), in_std), W_hh=normal((4 * n, n), out_std),
                C=normal((n_out, n), out_std), b=normal(4 * n, out_std), d=np.zeros(n_out),
                h0=normal(n, out_std), c0=normal(n, out_std), dtype=dtype,
            )  # fmt: skip
        rank = check.integer("rank", rank, minimum=1)
        n_mod = check.integer("n_mod", n_mod, minimum=1)
        mod_std, rank_std = 1 / np.sqrt(n_mod), 1 / np.sqrt(rank)
        return NMRNN(
            W_z=normal((n_mod, n_mod), mod_std), B_z=normal((n_mod, n_in), in_std),
            A_z=normal((rank, n_mod), mod_std), U=normal((n, rank), rank_std),
            V=normal((n, rank), rank_std), B_x=normal((n, n_in), in_std),
            C=normal((n_out, n), out_std), b_z=normal(n_mod, mod_std),
            c_z=normal(rank, rank_std), d=np.zeros(n_out), x0=normal(n, out_std),
            z0=normal(n_mod, mod_std), W_zx=normal((n_mod, n), out_std), tau_x=tau_x,
            tau_z=tau_z, n_scale=float(n), dtype=dtype,
        )  # fmt: skip
    if model == "LSTM":
        net = LSTM.random(n, n_in, n_out, seed=seed, dtype=dtype)
        net.h0[:] = INITIAL_STATE
        net.c0[:] = INITIAL_STATE
        return net
    if model == "RateRNN":
        return RateRNN(
            W=normal((n, n), 1.0) / n, W_in=normal((n, n_in), in_std),
            W_out=normal((n_out, n), out_std), b_out=normal(n_out, out_std),
            x0=np.full(n, INITIAL_STATE), tau=tau_x, readout="state", dtype=dtype,
        )  # fmt: skip
    rank = check.integer("rank", rank, minimum=1)
    if model == "LowRankRNN":
        return LowRankRNN(
            U=normal((n, rank), 1.0), V=normal((n, rank), 1.0), W_in=normal((n, n_in), in_std),
            W_out=normal((n_out, n), out_std), b_out=normal(n_out, out_std),
            x0=np.full(n, INITIAL_STATE), tau=tau_x, readout="state", parametrize="qr",
            dtype=dtype,
        )  # fmt: skip
    n_mod = check.integer("n_mod", n_mod, minimum=1)
    return NMRNN(
        W_z=normal((n_mod, n_mod), 0.1), B_z=normal((n_mod, n_in), in_std),
        A_z=normal((rank, n_mod), 0.1), U=normal((n, rank), 1.0), V=normal((n, rank), 1.0),
        B_x=normal((n, n_in), in_std), C=normal((n_out, n), out_std),
        c_z=normal(rank, 0.1), d=normal(n_out, out_std),
        x0=np.full(n, INITIAL_STATE), z0=np.full(n_mod, INITIAL_STATE),
        W_zx=normal((n_mod, n), out_std) if feedback else None,
        tau_x=tau_x, tau_z=tau_z, n_scale=1.0, parametrize="qr", dtype=dtype,
    )  # fmt: skip


def costacurta2024_trainable(net: Model, setup: str = "timing") -> list[str]:
    """The parameters the NM-RNN study trains: every one but the initial states and the
    additive biases (x0, z0, b_z, d; b, b_out; h0, c0); the LSTM's gate biases are trained,
    its readout bias d is not. With ``setup="element_finder"`` the NM-RNN's modulator bias
    b_z is trained too (its readout bias d is not: that code has none)."""
    setup = check.choice("setup", setup, SETUPS)
    if isinstance(net, LSTM):
        return trainable_except(net, "initial_states", "d")
    if setup == "element_finder" and isinstance(net, NMRNN):
        return trainable_except(net, "initial_states", "d")
    return trainable_except(net, "initial_states", "biases")


def parameter_count(net: Model, trainable: list[str] | None = None) -> int:
    """Number of scalar parameters of ``net`` (of ``trainable`` only, when given)."""
    params = net.params()
    names = list(params) if trainable is None else trainable
    return int(sum(params[name].size for name in names))
