"""NeuroMOP (docs/neuromop.md): controllers that keep an RNN (or a cart-pole) as variable
as possible while avoiding terminal states.

>>> import flexrnn as fr
>>> env = fr.mop.RNNEnv.random(n=100, n_bits=8, g=2.0, rho=2.0, dt=0.1,
...                            terminal=fr.mop.Energy(0.11), seed=0)
>>> agent = fr.mop.MOPAgent(env, hidden=128, gamma=0.98)
>>> hist = agent.train(epochs=60, trajectories=10, horizon=1000)
>>> roll = agent.rollout(trajectories=10, horizon=1000)   # states, actions, entropy, lifetime

Terminal sets compose (``|``, ``&``, ``~``) and run in C++; ``fr.mop.train([...])`` trains
many agents (e.g. 10 networks) in one call per epoch; ``fr.mop.metrics`` measures the
rollouts (lifetime, action entropy and dimensionality, variability, occupancy).
"""

from __future__ import annotations

from . import metrics
from .agents import MOPAgent, MopHistory, RAgent, Rollout, rollout, train
from .env import CartPole, RNNEnv, action_bits
from .terminal import (
    SHAPES,
    Box,
    Corridor,
    Custom,
    Energy,
    Readout,
    Shape,
    TerminalSet,
    Threshold,
    shapes,
)

__all__ = [
    "SHAPES",
    "Box",
    "CartPole",
    "Corridor",
    "Custom",
    "Energy",
    "MOPAgent",
    "MopHistory",
    "RAgent",
    "RNNEnv",
    "Readout",
    "Rollout",
    "Shape",
    "TerminalSet",
    "Threshold",
    "action_bits",
    "metrics",
    "rollout",
    "shapes",
    "train",
]
