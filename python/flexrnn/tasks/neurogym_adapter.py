"""NeuroGym environments as flexrnn tasks (optional: ``pip install "flexrnn[neurogym]"``).

NeuroGym's ``neurogym.Dataset`` concatenates trials into one stream and cuts it into windows
of ``seq_len`` steps, so a window starts anywhere inside a trial. flexrnn's trainers start
every batch from the network's initial state and score whole trials, so
:class:`NeuroGymTask` uses the generator that ``Dataset`` caches from (``env.new_trial()``,
then ``env.ob`` and ``env.gt``) to put one whole trial in each column of the batch, starting
at step 0 and zero-padded to ``T`` steps. This is the one place in :mod:`flexrnn.tasks` with
a Python loop over trials: NeuroGym builds its trials one at a time.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from flexrnn import _validate as check
from flexrnn.tasks.base import Task, Trials

INSTALL_HINT = 'pip install "flexrnn[neurogym]"'
TARGETS = ("labels", "onehot")
MASKS = ("all", "decision")
LENGTH_SAMPLES = 500  # trials sampled to find the longest trial when seq_len is not given


# NeuroGym >= 2.3 imports PyTorch when it is imported, for one feature flexrnn does not use:
# the activation probes of its Monitor wrapper (neurogym.wrappers.components, reached from
# every environment module through neurogym.wrappers.monitor). Without PyTorch, flexrnn puts
# a stand-in for that subpackage in sys.modules before importing NeuroGym, so the
# environments import; the stand-in's ActivationProbe raises an ImportError saying why.
_TORCH_PARTS = (
    "neurogym.wrappers.components",
    "neurogym.wrappers.components.probes",
    "neurogym.wrappers.components.probes.activation",
)


class _ActivationProbeWithoutTorch:
    """NeuroGym's ActivationProbe where PyTorch is not installed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError(
            "NeuroGym's activation probes (Monitor.add_activation_probe...) need PyTorch, "
            "which is not installed (flexrnn imported NeuroGym without it): pip install torch"
        )


def _stand_in_for_torch_parts() -> None:
    """Stand-ins for NeuroGym's PyTorch-only subpackage, when NeuroGym is installed, not yet
    imported, has that subpackage (read from its files, without importing it) and PyTorch
    is missing."""
    if importlib.util.find_spec("torch") is not None:
        return
    spec = importlib.util.find_spec("neurogym")
    if spec is None or not spec.submodule_search_locations:
        return
    root = Path(next(iter(spec.submodule_search_locations)))
    if not (root / "wrappers" / "components" / "probes" / "activation.py").is_file():
        return
    for name in _TORCH_PARTS:
        module = types.ModuleType(name, "stand-in: this part of NeuroGym needs PyTorch")
        module.__path__ = []  # a package with nothing else to import
        module.ActivationProbe = _ActivationProbeWithoutTorch  # type: ignore[attr-defined]
        sys.modules[name] = module


def _import_neurogym():
    try:
        import gymnasium
    except ImportError as err:
        raise ImportError(
            f"flexrnn.tasks.from_neurogym needs NeuroGym and gymnasium, optional "
            f"dependencies: {INSTALL_HINT} ({err})"
        ) from err
    if "neurogym" not in sys.modules:
        if importlib.util.find_spec("neurogym") is None:
            raise ImportError(
                "flexrnn.tasks.from_neurogym needs NeuroGym, an optional dependency: "
                + INSTALL_HINT
            )
        _stand_in_for_torch_parts()
    try:
        import neurogym
    except ImportError as err:
        raise ImportError(
            f"NeuroGym is installed but could not be imported ({err}); flexrnn supports the "
            f"NeuroGym versions of the extra: {INSTALL_HINT}"
        ) from err
    return neurogym, gymnasium


def _trial_generator(env, gymnasium):
    """The outermost layer that defines new_trial (a NeuroGym TrialWrapper or the env itself):
    gymnasium's own wrappers only forward attributes, with deprecation warnings."""
    layer = env
    while isinstance(layer, gymnasium.Wrapper) and "new_trial" not in vars(type(layer)):
        layer = layer.env
    return layer


def _seed_all(env, seed: int, gymnasium) -> None:
    """Seed the env and every NeuroGym wrapper that keeps a random state of its own
    (gymnasium's wrappers define no seed method)."""
    layer = env
    while isinstance(layer, gymnasium.Wrapper):
        if "seed" in vars(type(layer)):
            layer.seed(seed)
        layer = layer.env
    layer.seed(seed)


class NeuroGymTask(Task):
    """A NeuroGym environment with discrete actions, one trial per batch column.

    Build it with :func:`from_neurogym`. Each column of a batch is one trial of the
    environment, starting at step 0 and zero-padded (inputs 0, label 0, mask 0) to ``T``
    steps; a trial longer than ``T`` is cut at ``T`` (with a RuntimeWarning).

    Targets: ``target="labels"`` gives ``loss = "cross_entropy"`` with the ground-truth
    action per step as int64 labels ``(T, B)`` (0 = fixation in NeuroGym) and a mask
    ``(T, B)``; ``target="onehot"`` gives ``loss = "mse"`` with one-hot regression targets
    ``(T, B, n_actions)`` and the mask repeated over actions. ``mask="all"`` (default) counts
    every step of the trial, as NeuroGym's own training examples do; ``mask="decision"`` only
    the steps of the environment's ``"decision"`` period.

    Score: a trial is correct when the argmax of the output at its decision step equals the
    ground truth there. The decision step is the last step of the ``"decision"`` period
    when the environment has one; otherwise the last step whose label is not fixation (0),
    e.g. the response time in the ``"production"`` period of ReadySetGo, or the trial's last
    step when every label is 0.

    ``batch(B, rng)`` seeds the environment (and its NeuroGym wrappers) with an integer
    drawn from ``rng`` before drawing the B trials, so a batch is reproducible from ``rng``.
    Wrappers that act in ``step()`` only (e.g. ``neurogym.wrappers.Noise``) do not change the
    trials, as with ``neurogym.Dataset``.

    Attributes beyond :class:`Task`'s: ``env`` (the wrapped environment, a private copy when
    one was passed in), ``env_id``, ``n_actions``, ``target``, ``mask``.
    ``info`` of a batch: ``length`` (steps of each trial within T), ``decision_step``,
    ``decision_label`` (B,) int, plus every numeric scalar entry of NeuroGym's trial dict
    (e.g. ``ground_truth``, ``coh``).
    """

    def __init__(
        self,
        env: Any,
        seq_len: int | None = None,
        target: str = "labels",
        mask: str = "all",
        env_kwargs: dict[str, Any] | None = None,
    ) -> None:
        neurogym, gymnasium = _import_neurogym()
        self._gym = gymnasium
        self.target = check.choice("target", target, TARGETS)
        self.mask = check.choice("mask", mask, MASKS)
        env_kwargs = dict(env_kwargs or {})
        if isinstance(env, str):
            self.env_id = env
            try:
                with warnings.catch_warnings():  # gymnasium's note on NeuroGym's metadata
                    warnings.filterwarnings("ignore", message=".*render_modes")
                    self.env = neurogym.make(env, **env_kwargs)
            except Exception as err:
                raise ValueError(
                    f"env: could not make NeuroGym environment {env!r}: {err}"
                ) from err
        elif isinstance(env, gymnasium.Env):
            if env_kwargs:
                raise ValueError(
                    f"env_kwargs: only used with an environment id, got {sorted(env_kwargs)}"
                )
            self.env = copy.deepcopy(env)  # seeding it must not touch the caller's env
            self.env_id = (
                getattr(getattr(env, "spec", None), "id", None) or type(env.unwrapped).__name__
            )
        else:
            raise TypeError(
                f"env: expected a NeuroGym environment id or a gymnasium.Env, "
                f"got {type(env).__name__}"
            )
        core = self.env.unwrapped
        # what a checkpoint's fingerprint of this task holds: the environment as made (its
        # id, arguments and plain settings such as timing, rewards, dt), read now, before
        # any trial changes the environment's state
        self._env_settings = {
            "env_id": self.env_id,
            "env_kwargs": env_kwargs,
            "env_class": type(core).__qualname__,
            "settings": _plain_settings(core),
        }
        if not hasattr(core, "new_trial"):
            raise ValueError(f"env: {self.env_id} is not a trial-based NeuroGym environment")
        if not isinstance(self.env.action_space, gymnasium.spaces.Discrete):
            raise ValueError(
                f"env: {self.env_id} has action space {self.env.action_space}; only discrete "
                "actions (class labels) are supported"
            )
        self._generator = _trial_generator(self.env, gymnasium)
        self.n_actions = int(self.env.action_space.n)
        self.n_in = int(np.prod(self.env.observation_space.shape))
        self.n_out = self.n_actions
        self.dt = float(core.dt)
        self.loss = "cross_entropy" if self.target == "labels" else "mse"
        self.name = f"NeuroGym({self.env_id})"

        longest = self._sample_longest()
        periods = self._generator.unwrapped.start_ind
        if self.mask == "decision" and "decision" not in periods:
            raise ValueError(
                f"mask: {self.env_id} has no 'decision' period (periods: "
                f"{', '.join(periods)}); use mask='all'"
            )
        if seq_len is None:
            self.T = longest
        else:
            self.T = check.integer("seq_len", seq_len, minimum=1)

    def _fingerprint_fields(self) -> dict[str, Any]:
        """The task as a checkpoint fingerprints it (the environment's state is left out)."""
        fields = {k: getattr(self, k) for k in ("target", "mask", "T", "dt", "n_in", "n_out")}
        return {**fields, **self._env_settings}

    def _sample_longest(self) -> int:
        """Longest of LENGTH_SAMPLES trials of a seeded copy (checks that gt exists)."""
        probe = copy.deepcopy(self.env)
        _seed_all(probe, 0, self._gym)
        generator = _trial_generator(probe, self._gym)
        longest = 0
        for _ in range(LENGTH_SAMPLES):
            generator.new_trial()
            if getattr(generator.unwrapped, "gt", None) is None:
                raise ValueError(f"env: {self.env_id} defines no ground truth (gt) per step")
            longest = max(longest, generator.unwrapped.ob.shape[0])
        self._generator.new_trial()  # so that the periods of a trial are there to inspect
        return longest

    def _generate(self, B: int, rng: np.random.Generator, dtype: np.dtype) -> Trials:
        T = self.T
        _seed_all(self.env, int(rng.integers(0, 2**32)), self._gym)
        u = np.zeros((T, B, self.n_in), dtype=dtype)
        labels = np.zeros((T, B), dtype=np.int64)
        mask = np.zeros((T, B), dtype=dtype)
        length = np.empty(B, dtype=np.int64)
        decision_step = np.empty(B, dtype=np.int64)
        trial_dicts = []
        truncated = 0
        for b in range(B):  # NeuroGym draws one trial at a time
            trial = self._generator.new_trial()
            core = self._generator.unwrapped  # read after new_trial: a schedule may switch envs
            ob, gt = core.ob, core.gt
            n = min(ob.shape[0], T)
            truncated += ob.shape[0] > T
            u[:n, b] = ob[:n].reshape(n, -1)
            labels[:n, b] = gt[:n]
            length[b] = n
            if "decision" in core.start_ind:
                start, end = min(core.start_ind["decision"], n), min(core.end_ind["decision"], n)
                decision_step[b] = max(end - 1, 0)
            else:  # the last response (e.g. the production of a timing task), else the end
                start = end = 0
                responding = np.flatnonzero(gt[:n])
                decision_step[b] = responding[-1] if responding.size else n - 1
            if self.mask == "all":
                mask[:n, b] = 1
            else:
                mask[start:end, b] = 1
            trial_dicts.append(trial if isinstance(trial, dict) else {})
        if truncated:
            warnings.warn(
                f"{truncated} of {B} trials of {self.env_id} are longer than T = {T} steps and "
                "were cut; pass a larger seq_len",
                RuntimeWarning,
                stacklevel=3,
            )
        info = _numeric_entries(trial_dicts)
        info.update(
            length=length,
            decision_step=decision_step,
            decision_label=labels[decision_step, np.arange(B)],
        )
        if self.target == "labels":
            return Trials(u, labels, mask, info)
        onehot = np.eye(self.n_actions, dtype=dtype)[labels]  # (T, B, n_actions)
        full_mask = np.repeat(mask[:, :, None], self.n_actions, axis=2)
        return Trials(u, onehot, full_mask, info)

    def _correct(self, y: np.ndarray, trials: Trials) -> np.ndarray:
        step = trials.info["decision_step"]
        choice = np.argmax(y[step, np.arange(y.shape[1])], axis=-1)
        return choice == trials.info["decision_label"]


def _plain(value: Any, depth: int = 0) -> bool:
    """Numbers, strings, arrays, and lists or dicts of them (a setting, not an object)."""
    if value is None or isinstance(value, (bool, int, float, str, np.generic, np.ndarray)):
        return not (isinstance(value, np.ndarray) and value.dtype.hasobject)
    if depth < 3 and isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    if depth < 3 and isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _plain_settings(env: Any) -> dict[str, Any]:
    """A copy of the environment's public attributes that are plain settings."""
    return {
        k: copy.deepcopy(v)
        for k, v in sorted(vars(env).items())
        if not k.startswith("_") and not callable(v) and _plain(v)
    }


def _numeric_entries(trials: list[dict]) -> dict[str, np.ndarray]:
    """Entries that every trial dict has as a real scalar, as (B,) arrays."""
    if not trials:
        return {}
    out = {}
    for key in trials[0]:
        values = [t.get(key) for t in trials]
        if all(
            np.ndim(v) == 0 and isinstance(v, (int, float, np.integer, np.floating, bool))
            for v in values
        ):
            out[str(key)] = np.asarray(values)
    return out


def from_neurogym(
    env: Any,
    seq_len: int | None = None,
    target: str = "labels",
    mask: str = "all",
    **env_kwargs: Any,
) -> NeuroGymTask:
    """A NeuroGym environment as a flexrnn task.

    Parameters
    ----------
    env : str or gymnasium.Env
        A NeuroGym environment id (``"PerceptualDecisionMaking-v0"``) or an environment
        (copied, so that seeding the task leaves it alone). Actions must be discrete.
    seq_len : int or None
        Steps per trial ``T``; None takes the longest of 500 sampled trials.
    target : {"labels", "onehot"}
        ``"labels"``: class labels ``(T, B)`` int64 with ``loss = "cross_entropy"``;
        ``"onehot"``: regression targets ``(T, B, n_actions)`` with ``loss = "mse"``.
    mask : {"all", "decision"}
        Steps the loss counts: every step of the trial, or the ``"decision"`` period only.
    **env_kwargs
        Passed to ``neurogym.make`` with an id (e.g. ``dt=20``, ``timing={...}``).

    Returns
    -------
    NeuroGymTask
        ``n_in`` = observation size, ``n_out`` = number of actions, ``dt`` = the env's dt
        (ms). See :class:`NeuroGymTask` for the batch layout and the score.

    Raises
    ------
    ImportError
        When NeuroGym is not installed (``pip install "flexrnn[neurogym]"``).
    """
    return NeuroGymTask(env, seq_len=seq_len, target=target, mask=mask, env_kwargs=env_kwargs)
