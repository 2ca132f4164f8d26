"""NeuroMOP environments: a fixed RNN driven by injected currents, and a cart-pole.

Both expose the gymnasium-style ``reset(seed=None) -> (state, info)`` and ``step(action) ->
(state, reward, terminated, truncated, info)`` for hand-driving, and what the agents need
to run whole epochs in C++ (``kernel_env``). ``action`` is a joint-action index k in
0..2^M-1 (bit m of k set: ``a_m = +1``, else -1) or a vector of M values ±1.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from flexrnn import _core, _validate
from flexrnn.models import RateRNN

from .terminal import Energy, TerminalSet, Threshold, compile_sets


def action_bits(n_bits: int) -> np.ndarray:
    """The joint actions as rows: (2^n_bits, n_bits) of ±1; row k, column m is
    ``2 ((k >> m) & 1) - 1``."""
    k = np.arange(2**n_bits)[:, None]
    return (2 * ((k >> np.arange(n_bits)[None, :]) & 1) - 1).astype(np.float64)


def _terminal_list(terminal) -> list[TerminalSet]:
    sets = list(terminal) if isinstance(terminal, (list, tuple)) else [terminal]
    if not sets:
        raise ValueError("terminal: need at least one set")
    for s in sets:
        if not isinstance(s, TerminalSet):
            raise TypeError(f"terminal: expected flexrnn.mop sets, got {type(s).__name__}")
    return sets


class _Env(ABC):
    """What both environments share: terminal sets per context, action decoding, reset."""

    n_bits: int
    dim: int
    dtype: np.dtype
    kind: str
    # capability, stated as data: the kernels define the state-entropy term (MOPAgent's beta)
    state_entropy: bool = False

    def __init__(self, terminal) -> None:
        self.terminal = _terminal_list(terminal)
        self._state: np.ndarray | None = None
        self._context = 0
        self._rng = np.random.default_rng()

    @property
    def n_actions(self) -> int:
        return 2**self.n_bits

    @property
    def n_contexts(self) -> int:
        """One context per terminal set (a list of sets: the shapes task)."""
        return len(self.terminal)

    def programs(self) -> tuple[dict, list]:
        """The compiled terminal sets (one program per context) and their custom predicates."""
        return compile_sets(self.terminal, self.dim)

    def is_terminal(self, states, context: int = 0) -> np.ndarray:
        """Terminal flags of states (m, d) in a context -> (m,) bool."""
        context = _validate.integer("context", context, minimum=0)
        if context >= self.n_contexts:
            raise ValueError(f"context: must be < {self.n_contexts}")
        x = np.ascontiguousarray(np.atleast_2d(np.asarray(states, dtype=np.float64)))
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"states: expected (m, {self.dim}), got {np.shape(states)}")
        program, custom = self.programs()
        return _core.mop_terminal(program, x, context, custom)

    def action_index(self, action) -> int:
        """A joint-action index from an index or a vector of ±1 values."""
        a = np.asarray(action)
        if a.ndim == 0:
            k = _validate.integer("action", int(a), minimum=0)
            if k >= self.n_actions:
                raise ValueError(f"action: must be < {self.n_actions}")
            return k
        if a.shape != (self.n_bits,) or not np.all(np.isin(a, (-1, 1))):
            raise ValueError(f"action: expected an index or {self.n_bits} values of ±1")
        return int(np.sum((a > 0) << np.arange(self.n_bits)))

    def default_x0(self, rng: np.random.Generator) -> np.ndarray:
        """The initial state an agent draws when given none: U(-0.05, 0.05) per coordinate."""
        return rng.uniform(-0.05, 0.05, self.dim)

    def reset(self, seed=None, x0=None, context: int = 0):
        """Start from x0 (default: ``default_x0``) -> (state, info)."""
        rng = np.random.default_rng(seed)
        x = self.default_x0(rng) if x0 is None else np.asarray(x0, dtype=np.float64)
        if x.shape != (self.dim,):
            raise ValueError(f"x0: expected shape ({self.dim},), got {x.shape}")
        self._context = _validate.integer("context", context, minimum=0)
        self._state = x.astype(self.dtype)
        self._rng = rng
        return self._state.copy(), {"context": self._context}

    def step(self, action):
        """Apply one action -> (state, reward, terminated, truncated, info); reward 1 while
        the new state is not terminal (the R agent's reward)."""
        if self._state is None:
            raise RuntimeError("step: call reset() first")
        k = self.action_index(action)
        self._state = self._next(self._state, k)
        dead = bool(self.is_terminal(self._state[None], self._context)[0])
        return self._state.copy(), 0.0 if dead else 1.0, dead, False, {"action": k}

    @abstractmethod
    def _next(self, x: np.ndarray, k: int) -> np.ndarray:
        """The state after action index k from x (d,)."""

    @abstractmethod
    def kernel_env(self, envs: Sequence[_Env]) -> Any:
        """The environment of a C++ kernel call running ``envs`` (this one first, all
        ``compatible`` with it): a bound ``_core.MopRnnEnv`` or ``_core.MopCartPoleEnv``."""

    @abstractmethod
    def compatible(self, other: _Env) -> bool:
        """Whether other can run in the same kernel call (same sizes and options)."""


class RNNEnv(_Env):
    """A fixed RNN driven by the controller's current (docs/neuromop.md):
    ``x' = (1 - alpha) x + alpha phi(W x + b + rho K a (+ noise_std xi))``, the RateRNN
    ``net`` of form "rate" with ``K = net.W_in`` (n, n_bits) and ``alpha = net.dt / net.tau``
    (the spec's ``x + dt(-x/tau + phi(.))`` at tau = 1).

    noise_std, noise_samples: with noise, the value of each action is averaged over
    ``noise_samples`` draws per step and the network moves with one more.
    """

    kind = "rnn"
    state_entropy = True  # s_a = dt Tr grad f of the network's map

    def __init__(
        self,
        net: RateRNN,
        *,
        rho: float = 2.0,
        terminal=None,
        noise_std: float = 0.0,
        noise_samples: int = 8,
    ) -> None:
        if "mop_env" not in getattr(net, "kernels", {}):  # a model states what it can drive
            raise TypeError(f"net: expected a RateRNN, got {type(net).__name__}")
        if net.form != "rate":
            raise ValueError('net: NeuroMOP drives a RateRNN of form="rate"')
        if net.phi not in ("tanh", "relu"):
            raise ValueError(f"net: phi must be 'tanh' or 'relu', got {net.phi!r}")
        if not 1 <= net.n_in <= 16:
            raise ValueError(f"net: n_in (= n_bits) must be in 1..16, got {net.n_in}")
        super().__init__(_default_terminal(net.phi) if terminal is None else terminal)
        self.net = net
        self.rho = _validate.scalar("rho", rho)
        self.noise_std = _validate.scalar("noise_std", noise_std, nonneg=True)
        self.noise_samples = _validate.integer("noise_samples", noise_samples, minimum=1)
        self.n_bits = net.n_in
        self.dim = net.n
        self.dtype = net.dtype

    @classmethod
    def random(
        cls,
        n: int = 100,
        n_bits: int = 8,
        g: float = 2.0,
        rho: float = 2.0,
        dt: float = 0.1,
        tau: float = 1.0,
        phi: str = "tanh",
        terminal=None,
        noise_std: float = 0.0,
        noise_samples: int = 8,
        seed: int = 0,
        dtype="float64",
    ) -> RNNEnv:
        """A random network of the spec: ``W ~ N(0, g^2 / n)``, ``K ~ U(0, 1)`` (n, n_bits),
        b = 0. terminal: default ``Energy(0.11)`` (tanh) or ``Energy(0.13)`` (ReLU)."""
        n = _validate.integer("n", n, minimum=1)
        n_bits = _validate.integer("n_bits", n_bits, minimum=1)
        g = _validate.scalar("g", g, nonneg=True)
        dt_ = _validate.as_dtype(dtype)
        rng = np.random.default_rng(_validate.seed("seed", seed))
        W = rng.normal(0.0, g / np.sqrt(n), (n, n))
        K = rng.uniform(0.0, 1.0, (n, n_bits))
        net = RateRNN(
            W.astype(dt_),
            K.astype(dt_),
            np.zeros((1, n), dt_),
            tau=tau,
            dt=dt,
            phi=phi,
            form="rate",
        )
        return cls(
            net, rho=rho, terminal=terminal, noise_std=noise_std, noise_samples=noise_samples
        )

    @property
    def alpha(self) -> float:
        return self.net.dt / self.net.tau

    @property
    def W(self) -> np.ndarray:
        return self.net.W

    @property
    def K(self) -> np.ndarray:
        return self.net.W_in

    def successors(self, x) -> np.ndarray:
        """All 2^M successors of the state x (n,) without noise -> (A, n) (one step of the
        network for each action, as a batch)."""
        x = np.asarray(x, dtype=self.dtype)
        u = (self.rho * action_bits(self.n_bits)).astype(self.dtype)[None]  # (1, A, M)
        return self.net.run(u, x0=np.broadcast_to(x, (self.n_actions, self.dim))).x[0]

    def _next(self, x, k):
        u = (self.rho * action_bits(self.n_bits)[k]).astype(self.dtype)[None, None, :]
        net = self.net
        if self.noise_std:  # the noise enters inside phi, like a bias of this step
            xi = self._rng.normal(0.0, self.noise_std, self.dim).astype(self.dtype)
            net = RateRNN(
                net.W, net.W_in, net.W_out, b=net.b + xi, tau=net.tau, dt=net.dt,
                phi=net.phi, form="rate", copy=False,  # read only, for this one step
            )  # fmt: skip
        return net.run(u, x0=x[None, :]).x[0, 0]

    def kernel_env(self, envs):
        """A ``_core.MopRnnEnv`` of the networks' own bound parameters (``net._kernel()``,
        W_in as K) and options (``net._options()``: alpha, phi, form)."""
        return self.net.kernels["mop_env"](
            [e.net._kernel() for e in envs],
            self.net._options(),
            rho=self.rho,
            noise_std=self.noise_std,
            noise_samples=self.noise_samples,
        )

    def compatible(self, other: _Env) -> bool:
        """Whether other can run in the same kernel call (same sizes and options)."""
        return (
            isinstance(other, RNNEnv)
            and (other.dim, other.n_bits, other.dtype) == (self.dim, self.n_bits, self.dtype)
            and (other.rho, other.alpha, other.net.phi) == (self.rho, self.alpha, self.net.phi)
            and (other.noise_std, other.noise_samples) == (self.noise_std, self.noise_samples)
        )

    def __repr__(self) -> str:
        return (
            f"RNNEnv(n={self.dim}, n_bits={self.n_bits}, rho={self.rho}, alpha={self.alpha}, "
            f"phi={self.net.phi!r}, terminal={self.terminal!r}, noise_std={self.noise_std})"
        )


def _default_terminal(phi: str) -> TerminalSet:
    """The spec's energy threshold: L = 0.11 for tanh, 0.13 for ReLU."""
    return Energy(0.11 if phi == "tanh" else 0.13)


class CartPole(_Env):
    """The frictionless cart-pole of docs/neuromop.md: state (x, xdot, theta, thetadot),
    one action bit (force ±40), terminal ``|x| > 1.8 or |theta| > 0.62``; cart mass 1, pole
    mass 0.1, pole length 1, g 9.81, dt 0.02, velocities clipped to ±6 and ±3."""

    kind = "cartpole"
    n_bits = 1
    dim = 4

    def __init__(self, terminal=None, dtype="float64") -> None:
        super().__init__(Threshold(0, 1.8) | Threshold(2, 0.62) if terminal is None else terminal)
        self.dtype = _validate.as_dtype(dtype)
        self.noise_std = 0.0

    def _next(self, x, k):
        force = np.array([40.0 if k else -40.0], dtype=self.dtype)
        return _core.cartpole_step(x[None, :].astype(self.dtype), force)[0]

    def kernel_env(self, envs):
        return _core.MopCartPoleEnv(len(envs))

    def compatible(self, other: _Env) -> bool:
        return isinstance(other, CartPole) and other.dtype == self.dtype

    def __repr__(self) -> str:
        return f"CartPole(terminal={self.terminal!r}, dtype={self.dtype.name})"
