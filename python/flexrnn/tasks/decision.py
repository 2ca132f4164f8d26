"""Evidence-integration tasks: PerceptualDecision and ContextIntegration (docs/models.md)."""

from __future__ import annotations

import numpy as np

from flexrnn import _validate as check
from flexrnn.tasks.base import Task, Trials, check_dt, check_steps


def _draw_signs(rng: np.random.Generator, shape) -> np.ndarray:
    """Independent fair signs in {-1, +1} (float64)."""
    return 2.0 * rng.integers(0, 2, size=shape) - 1.0


def _sign_correct(y_last: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """sign(y) == s; an output of exactly 0 has no sign and is wrong."""
    return np.sign(y_last) == sign


class PerceptualDecision(Task):
    """Random-dots decision on one noisy channel: report the sign of its mean.

    Each trial draws a coherence ``mu ~ U(0, coherence_max)`` and a sign ``s = +-1``; the
    input is ``u[t] = s mu + sigma eps[t]`` with ``eps[t] ~ N(0, 1)`` independent per step
    (per-step noise: ``sigma`` does not scale with ``dt``). The target is ``s`` at the last
    step and 0 at the first step; the loss counts only those two steps (mask 1 there, 0
    elsewhere). A trial is correct when the sign of the last output equals ``s`` (an output
    of exactly 0 is wrong).

    Parameters
    ----------
    sigma : float
        Standard deviation of the per-step input noise (>= 0). Default 0.5, the level the
        training runs use; the learning-rule study also uses 0.1 and 1.0.
    T : int
        Steps per trial (>= 2; default 750).
    coherence_max : float
        Upper end of the coherence distribution (>= 0; default 0.1857).
    dt : float
        Duration of one step in the model's time unit (metadata; default 1.0).

    Shapes: ``u: (T, B, 1)``, ``target, mask: (T, B, 1)``; ``info["coherence"]``: mu (B,),
    ``info["sign"]``: s (B,).
    """

    loss = "mse"

    def __init__(
        self,
        sigma: float = 0.5,
        T: int = 750,
        coherence_max: float = 0.1857,
        dt: float = 1.0,
    ) -> None:
        self.sigma = check.scalar("sigma", sigma, nonneg=True)
        self.T = check_steps("T", T, 2)
        self.coherence_max = check.scalar("coherence_max", coherence_max, nonneg=True)
        self.dt = check_dt(dt)
        self.n_in = 1
        self.n_out = 1
        self.name = "PerceptualDecision"

    def _generate(self, B: int, rng: np.random.Generator, dtype: np.dtype) -> Trials:
        T = self.T
        coherence = rng.uniform(0.0, self.coherence_max, size=B)
        sign = _draw_signs(rng, B)
        # float64 draws, cast once: a seed gives the same trials in float32 and float64
        u = rng.standard_normal((T, B, 1))
        u *= self.sigma
        u += (sign * coherence)[:, None]
        u = u.astype(dtype, copy=False)
        target = np.zeros((T, B, 1), dtype=dtype)
        target[-1, :, 0] = sign
        mask = np.zeros((T, B, 1), dtype=dtype)
        mask[0] = 1
        mask[-1] = 1
        return Trials(u, target, mask, {"coherence": coherence, "sign": sign})

    def _correct(self, y: np.ndarray, trials: Trials) -> np.ndarray:
        return _sign_correct(y[-1, :, 0], trials.info["sign"])


class ContextIntegration(Task):
    """Context-dependent integration (Mante et al. 2013), with N evidence channels.

    Inputs (2N channels): channels ``0..N-1`` carry noisy evidence ``s_i mu + sigma eps_i[t]``
    with one coherence ``mu ~ U(0, coherence_max)`` shared by the channels and independent
    signs ``s_i = +-1``; channels ``N..2N-1`` are a one-hot context cue ``c ~ U{0..N-1}``, held
    at 1 for the whole trial. The target is the sign of the cued channel, ``s_c``, at the last
    step and 0 at the first step (mask 1 at those two steps only, as in
    :class:`PerceptualDecision`). A trial is correct when the sign of the last output is
    ``s_c``.

    Parameters
    ----------
    N : int
        Number of evidence channels and contexts (>= 1; N=2 is the classic task, the source
        study goes up to 6).
    sigma : float
        Per-step input noise (>= 0; default 0.5).
    T : int
        Steps per trial (>= 2; default 750).
    coherence_max : float
        Upper end of the coherence distribution (>= 0; default 0.1857).
    dt : float
        Duration of one step (metadata; default 1.0).

    Shapes: ``u: (T, B, 2N)``, ``target, mask: (T, B, 1)``; ``info``: ``coherence`` (B,),
    ``signs`` (B, N), ``context`` (B,) int, ``sign`` (B,) = the cued channel's sign.
    """

    loss = "mse"

    def __init__(
        self,
        N: int = 2,
        sigma: float = 0.5,
        T: int = 750,
        coherence_max: float = 0.1857,
        dt: float = 1.0,
    ) -> None:
        self.N = check.integer("N", N, minimum=1)
        self.sigma = check.scalar("sigma", sigma, nonneg=True)
        self.T = check_steps("T", T, 2)
        self.coherence_max = check.scalar("coherence_max", coherence_max, nonneg=True)
        self.dt = check_dt(dt)
        self.n_in = 2 * self.N
        self.n_out = 1
        self.name = f"ContextIntegration(N={self.N})"

    def _generate(self, B: int, rng: np.random.Generator, dtype: np.dtype) -> Trials:
        T, N = self.T, self.N
        coherence = rng.uniform(0.0, self.coherence_max, size=B)
        signs = _draw_signs(rng, (B, N))
        context = rng.integers(0, N, size=B)
        evidence = rng.standard_normal((T, B, N))
        evidence *= self.sigma
        evidence += signs * coherence[:, None]
        # Interleave evidence and cue into (T, B, 2N) without strided copies (slow for small
        # N): a product with a placement matrix writes the layout contiguously, rounding once
        # to dtype; the cue is then added exactly as a per-trial row.
        u = np.empty((T, B, 2 * N), dtype=dtype)
        np.matmul(evidence, np.eye(N, 2 * N), out=u, casting="same_kind")
        u += np.concatenate([np.zeros((B, N)), np.eye(N)[context]], axis=1).astype(dtype)
        sign = signs[np.arange(B), context]
        target = np.zeros((T, B, 1), dtype=dtype)
        target[-1, :, 0] = sign
        mask = np.zeros((T, B, 1), dtype=dtype)
        mask[0] = 1
        mask[-1] = 1
        info = {"coherence": coherence, "signs": signs, "context": context, "sign": sign}
        return Trials(u, target, mask, info)

    def _correct(self, y: np.ndarray, trials: Trials) -> np.ndarray:
        return _sign_correct(y[-1, :, 0], trials.info["sign"])
