"""Models: parameter holders whose ``run`` hands the whole time loop to C++.

Shapes are time-major: inputs ``u: (T, B, n_in)``, states ``(T, B, n)``,
outputs ``(T, B, n_out)``; stored states are those *after* each step. The update
equations are in ``docs/models.md``; :mod:`flexrnn.reference` implements the
same lines in NumPy.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Union

import numpy as np

from flexrnn import _core
from flexrnn import _validate as check
from flexrnn._io import NpzReader, atomic_savez
from flexrnn._version import __version__
from flexrnn.reference.names import FORMS, PHI_NAMES, READOUTS

# The core's enums by the names of reference/names.py (tests check that both agree).
PHI = _core.Phi.__members__
FORM = _core.Form.__members__
READOUT = _core.Readout.__members__

PARAMETRIZATIONS = ("qr",)  # of a low-rank factor U; None: U is used as stored

FORMAT = "flexrnn-model"
FORMAT_VERSION = 2  # 2: a RateRNN's connectivity ``mask`` and ``cell_type`` (Dale's law)

PathLike = Union[str, Path]


def _arrays_repr(obj: Any) -> str:
    """``Name(x=float32[T, B, n], ...)``: shapes and dtypes, never the arrays' contents (a
    run's arrays are large; printing one in a notebook would fill the page)."""
    fields = []
    for f in dataclasses.fields(obj):
        a = getattr(obj, f.name)
        if a is not None:
            dims = ", ".join(str(d) for d in np.shape(a))
            fields.append(f"{f.name}={np.asarray(a).dtype}[{dims}]")
    return f"{type(obj).__name__}({', '.join(fields)})"


@dataclass(repr=False)
class Trajectory:
    """A rate network's run: ``x``, ``r``: (T, B, n), ``y``: (T, B, n_out)."""

    x: np.ndarray
    r: np.ndarray
    y: np.ndarray

    __repr__ = _arrays_repr


@dataclass(repr=False)
class NMRNNTrajectory(Trajectory):
    """An NM-RNN run: also the modulator ``z``: (T, B, n_mod) and gains ``s``: (T, B, rank)."""

    z: np.ndarray = None  # type: ignore[assignment]
    s: np.ndarray = None  # type: ignore[assignment]


@dataclass(repr=False)
class LSTMTrajectory:
    """An LSTM run: hidden ``h``, cell ``c``: (T, B, n), outputs ``y``: (T, B, n_out)."""

    h: np.ndarray
    c: np.ndarray
    y: np.ndarray

    __repr__ = _arrays_repr


# A state whose magnitude exceeds this at the last step is reported as exploding: no rate
# network of ours has a meaningful state of that size (tanh and sigmoid-like units saturate
# at O(1), so their state stays within a few times |W| |r| + |b| + |W_in u|), while a
# network that grows without bound (ReLU or identity with gain > 1) passes it long before
# float32 (~3e38) or float64 (~1e308) overflow to inf.
EXPLOSION_THRESHOLD = 1e6


def _warn_if_diverged(x: np.ndarray) -> None:
    """Divergence is reported, not hidden: warn with the first step whose state is not finite,
    or, when the last state is finite but larger than ``EXPLOSION_THRESHOLD`` in magnitude,
    the first step that was. Only the last step is inspected unless one of these holds."""
    if not x.size:
        return
    last = x[-1]
    if not np.isfinite(last).all():
        bad = ~np.isfinite(x).reshape(x.shape[0], -1).all(axis=1)
        warnings.warn(
            f"the state became non-finite at step {int(np.argmax(bad))} of {x.shape[0]} "
            "(the dynamics diverged)",
            RuntimeWarning,
            stacklevel=3,
        )
    elif max(last.max(), -last.min()) > EXPLOSION_THRESHOLD:
        flat = x.reshape(x.shape[0], -1)
        big = (flat.max(axis=1) > EXPLOSION_THRESHOLD) | (flat.min(axis=1) < -EXPLOSION_THRESHOLD)
        warnings.warn(
            f"the state's magnitude exceeded {EXPLOSION_THRESHOLD:g} at step "
            f"{int(np.argmax(big))} of {x.shape[0]} and reached {float(np.abs(last).max()):.3g} "
            "(the dynamics are exploding; e.g. an unbounded phi with recurrent gain > 1)",
            RuntimeWarning,
            stacklevel=3,
        )


def _to_time_major(u: Any, gain: Any, batch_first: Any) -> tuple[Any, Any, bool]:
    """``run(batch_first=...)``: inputs (and a gain array) in time-major order, and whether
    the outputs go back to batch-major. batch_first=None reads ``u`` as (T, B, n_in) and
    warns when it looks batch-major: a second axis of at least 100 and 4 times the first,
    as in (B, T, n_in) = (64, 750, 3) (``batch_first=False`` says it is time-major). Calls
    from flexrnn's own modules (trainers, analysis: time-major task batches) never warn."""
    if batch_first is not None and not isinstance(batch_first, (bool, np.bool_)):
        raise TypeError(f"batch_first: expected True, False or None, got {batch_first!r}")
    if not batch_first:
        # a ragged or otherwise bad u is left for the core's checks, which name it
        shape = u.shape if isinstance(u, np.ndarray) else ()
        looks_batch_major = len(shape) == 3 and shape[1] >= max(100, 4 * shape[0])
        caller = sys._getframe(2).f_globals.get("__name__", "")  # run()'s caller
        if batch_first is None and looks_batch_major and not caller.startswith("flexrnn."):
            warnings.warn(
                f"u: shape {shape} is read time-major, as T = {shape[0]} steps of B = "
                f"{shape[1]} trials; if the first axis is the batch, pass batch_first=True "
                "(or u.transpose(1, 0, 2)); batch_first=False silences this warning",
                UserWarning,
                stacklevel=3,
            )
        return u, gain, False
    u = check.real_array("u", u)
    if u.ndim != 3:
        raise ValueError(f"u: expected (B, T, n_in) with batch_first=True, got shape {u.shape}")
    if np.ndim(gain) > 0:
        B, T = u.shape[:2]
        g = check.real_array("gain", gain)
        try:
            gain = np.broadcast_to(g, (B, T)).T
        except ValueError as err:
            raise ValueError(
                f"gain: expected a scalar or an array broadcastable to (B, T) = ({B}, {T}) "
                f"with batch_first=True, got shape {g.shape}"
            ) from err
    return u.swapaxes(0, 1), gain, True


class Model(ABC):
    """Shared behaviour: named parameter arrays, dtype, copy, save/load.

    Ownership: a constructor copies every array it is given (``copy=True``, the default),
    so a model never shares memory with its caller: training updates the model's own
    arrays and leaves the inputs (another model's ``params()``, a read-only array, an
    ``r+`` memmap) untouched. ``copy=False`` keeps an array that is already C-contiguous in
    the model's dtype as it is (others are still converted): a memmap then stays a view of
    its file and training writes into it; two parameters sharing memory are then a
    ValueError. Read-only arrays kept with ``copy=False`` serve runs; the trainers copy
    them before their first update.
    """

    # parameter names in a fixed order; optional ones may be None; saved hyperparameters
    _params: ClassVar[tuple[str, ...]] = ()
    _optional: ClassVar[tuple[str, ...]] = ()
    _hyper: ClassVar[tuple[str, ...]] = ()
    # hyperparameters added after format version 1 and their values in files that lack them
    _hyper_defaults: ClassVar[dict[str, Any]] = {}
    # structural arrays: not trained, kept by every learning rule, saved with the parameters
    _structure: ClassVar[tuple[str, ...]] = ()

    # Capabilities, stated as data: consumers ask the model, not isinstance.
    takes_gain: ClassVar[bool] = False  # run/loss_and_grad take gain, neuron_gain, noise_std, seed
    # the gains run() and loss_and_grad take (rate networks: also neuron_gain, noise and seed)
    run_gains: ClassVar[tuple[str, ...]] = ()
    low_rank: ClassVar[bool] = False  # the recurrent weights are factors U, V (W = U V^T / n)
    has_modulator: ClassVar[bool] = False  # a modulator network (z) gates the recurrence
    # operation -> the core function that runs it on ``*self._kernel_args(...)``
    kernels: ClassVar[dict[str, Any]] = {}
    # the bound parameter class of the core and the parameters it takes, in its order
    _kernel_class: ClassVar[Any] = None
    _kernel_params: ClassVar[tuple[str, ...]] = ()

    def _kernel(self, p: dict[str, np.ndarray] | None = None) -> Any:
        """The parameters as the core's kernels take them: a bound ``_kernel_class`` object
        (``_core.RateRNNParams``, ``LowRankRNNParams``, ``NMRNNParams``, ``LSTMParams``) holding
        (not copying) the model's checked arrays ``_kernel_params``. The one place a model's
        parameters are packed for C++: every kernel (rollout, loss_and_grad, fixed points,
        Lyapunov, learning rules) takes this object. Kept while the model's arrays are the
        same objects (training updates them in place; the kernels read the current values
        at every call), rebuilt when one is reassigned. ``p``: the checked parameters
        (``_check_shapes()``), when the caller has them."""
        p = self._check_shapes() if p is None else p
        p = self._network_arrays(p)
        arrays = tuple(p[name] for name in self._kernel_params)
        cached = self.__dict__.get("_kernel_cache")
        if cached is not None and all(a is b for a, b in zip(cached[0], arrays)):
            return cached[1]
        params = self._kernel_class(*arrays)
        self._kernel_cache = (arrays, params)
        return params

    def _network_arrays(self, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The arrays the network computes with, from the stored parameters ``p``: the same,
        except for a parametrised factor (``parametrize="qr"``: U becomes its Q)."""
        return p

    def effective_params(self) -> dict[str, np.ndarray]:
        """Parameter arrays as the network uses them: :meth:`params`, except that a
        parametrised factor is replaced by what the forward pass uses (``parametrize="qr"``:
        ``U`` is the Q of the stored raw factor). For NumPy references and analysis."""
        p = self._network_arrays(self._check_shapes())
        return {name: p[name] for name in self.params()}

    def outputs(self, u: Any, **options: Any) -> np.ndarray:
        """The outputs ``y`` (T, B, n_out) of ``run(u, **options)``. A rate network's
        states are then never stored (``run(..., states=False)``): the way to score long,
        large batches."""
        return self.run(u, **options).y  # type: ignore[attr-defined]

    @abstractmethod
    def _kernel_args(self, u: Any) -> tuple:
        """The arguments of ``kernels["rollout"]`` (and, followed by the loss, of
        ``kernels["loss_and_grad"]``) for inputs ``u`` and the model's own initial state,
        checked: the one place a model packs its arguments for the core."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_kernel_cache", None)  # the bound kernel object is rebuilt on demand
        return state

    @abstractmethod
    def _shapes(self, p: dict[str, np.ndarray]) -> dict[str, tuple]:
        """Expected shape of every parameter (None entries match any size), with the sizes
        read off the arrays in ``p`` (which may have any shape: see :func:`_dim`)."""

    @abstractmethod
    def _check_hyper(self) -> None:
        """Re-check hyperparameters, which may have been changed since construction."""

    def _set_params(self, values: dict[str, Any], dtype: Any, copy: bool = True) -> None:
        """Set every parameter from ``values``: in ``dtype``, C-contiguous, finite; copies
        of the caller's arrays unless ``copy=False`` (then two parameters sharing memory
        are rejected: one buffer would receive both parameters' updates)."""
        if not isinstance(copy, (bool, np.bool_)):
            raise TypeError(f"copy: expected True or False, got {type(copy).__name__}")
        first = values[self._params[0]]
        dt = check.as_dtype(dtype if dtype is not None else _default_dtype(first, self._params[0]))
        self._dtype = dt
        for name in self._params:
            value = values.get(name)
            if value is None and name in self._optional:
                setattr(self, name, None)
                continue
            arr = check.array(name, value, dt)
            # copy=True: the model owns its arrays, so training never writes into a caller's
            # buffer (a memmap, another model's parameter) and read-only inputs become
            # writeable parameters. check.array copied already unless it returned a view.
            if copy and (arr is value or not arr.flags.owndata or not arr.flags.writeable):
                arr = arr.copy()
            setattr(self, name, arr)
        if not copy:
            _reject_aliases(self, self._params)
        self._check_shapes()

    def _check_shapes(self) -> dict[str, np.ndarray]:
        """Every parameter and hyperparameter checked (parameters: shape, dtype, finite);
        returns the parameters C-contiguous in the model's dtype."""
        # Runs before every rollout, so the common case (nothing reassigned) is kept cheap:
        # hyperparameters are re-checked only when they changed, and parameters that are
        # still C-contiguous arrays of the model's dtype only for shape here (the C++ core
        # rejects non-finite values, naming the argument).
        hyper = tuple(getattr(self, h) for h in self._hyper)
        if hyper != getattr(self, "_checked_hyper", None):
            self._check_hyper()
            self._checked_hyper = tuple(getattr(self, h) for h in self._hyper)
        values = {name: getattr(self, name) for name in self._params}
        dt = self._dtype
        if all(
            (v is None and name in self._optional)
            or (type(v) is np.ndarray and v.dtype == dt and v.flags.c_contiguous)
            for name, v in values.items()
        ):
            shapes = self._shapes(values)
            if all(v is None or check.shape_matches(v.shape, shapes[k]) for k, v in values.items()):
                return values  # finiteness is checked by the core, naming the parameter
        raw = {}
        for name, value in values.items():
            optional_none = value is None and name in self._optional
            raw[name] = None if optional_none else check.real_array(name, value)
        return {
            name: None if raw[name] is None else check.array(name, raw[name], dt, shape)
            for name, shape in self._shapes(raw).items()
        }

    @property
    def dtype(self) -> np.dtype:
        """float32 or float64: the dtype of every parameter and of every run's arrays."""
        return self._dtype

    def params(self) -> dict[str, np.ndarray]:
        """Parameter arrays by name (the arrays themselves, not copies)."""
        return {
            name: getattr(self, name) for name in self._params if getattr(self, name) is not None
        }

    def hyperparameters(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._hyper}

    def structure(self) -> dict[str, np.ndarray]:
        """The structural arrays that are set (a RateRNN's ``mask`` and ``cell_type``): not
        parameters (never trained), but kept by every learning rule and saved with the model."""
        return {
            name: getattr(self, name) for name in self._structure if getattr(self, name) is not None
        }

    def _constrain(self) -> None:
        """Project the parameters onto the model's structure (see :meth:`RateRNN._constrain`);
        models without structural arrays have nothing to project."""
        return

    def _mask_gradients(self, grads: dict[str, np.ndarray]) -> None:
        """Zero, in place, the gradient entries of weights the structure fixes at zero; models
        without structural arrays have none."""
        return

    def astype(self, dtype: Any) -> Model:
        """A copy with every parameter in ``dtype`` (float32 or float64); structural arrays
        (``mask``, ``cell_type``) are copied too."""
        return type(self)(
            **self.params(), **self.structure(), **self.hyperparameters(), dtype=dtype
        )

    def copy(self) -> Model:
        return self.astype(self._dtype)

    def save(self, path: PathLike) -> None:
        """Write parameters and hyperparameters to a versioned ``.npz`` (see :func:`load`)."""
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": type(self).__name__,
            "flexrnn_version": __version__,
            "dtype": self._dtype.name,
            "hyperparameters": self.hyperparameters(),
            "structure": list(self.structure()),
        }
        atomic_savez(
            path, {"__meta__": np.array(json.dumps(meta)), **self.params(), **self.structure()}
        )

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self._size_summary().items())
        return f"{type(self).__name__}({sizes}, dtype={self._dtype.name})"

    def _size_summary(self) -> dict[str, int]:
        return {}


def _reject_aliases(model: Model, names: tuple[str, ...]) -> None:
    """ValueError naming two parameters whose arrays overlap in memory."""
    arrays = [(n, getattr(model, n)) for n in names if getattr(model, n) is not None]
    for i, (a_name, a) in enumerate(arrays):
        for b_name, b in arrays[i + 1 :]:
            if np.may_share_memory(a, b) and _overlap(a, b):
                raise ValueError(
                    f"{a_name}, {b_name}: copy=False, but these parameters share memory (one "
                    "buffer would receive both parameters' updates); pass separate arrays "
                    "or leave copy=True"
                )


_TOO_HARD = getattr(getattr(np, "exceptions", np), "TooHardError", Exception)  # NumPy < 1.25


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    try:
        return bool(np.shares_memory(a, b, max_work=10**6))
    except _TOO_HARD:  # interleaved views too costly to decide: count them as overlapping
        return True


def _dim(a: np.ndarray, axis: int, times: int = 1) -> int | None:
    """Size of ``a`` along ``axis`` (times ``times``), or None when ``a`` has too few axes:
    the parameter's own check then reports its shape."""
    return a.shape[axis] * times if a.ndim == 2 or (a.ndim == 1 and axis == 0) else None


def _default_dtype(value: Any, name: str) -> np.dtype:
    arr = check.real_array(name, value)
    return arr.dtype if arr.dtype in check.FLOAT_DTYPES else np.dtype(np.float64)


def _gain_args(gain: Any, T: int, B: int, dtype: np.dtype) -> tuple[np.ndarray | None, float]:
    """gain: a scalar, or an array broadcastable to (T, B) -> (array or None, scalar)."""
    arr = check.real_array("gain", gain)
    if arr.ndim == 0:
        return None, check.scalar("gain", arr.item())
    try:
        full = np.broadcast_to(arr, (T, B))
    except ValueError as err:
        raise ValueError(
            f"gain: expected a scalar or an array broadcastable to (T, B) = "
            f"({T}, {B}), got shape {arr.shape}"
        ) from err
    return check.array("gain", full, dtype), 1.0


NEURON_GAINS = ("neuron_gain", "pre_gain", "post_gain")  # the per-neuron gains of a rate run


def _neuron_gain_arg(name: str, value: Any, T: int, B: int, n: int, dtype: np.dtype) -> Any:
    """A per-neuron gain: None, (n,), or an array broadcastable to (T, B, n) -> None, (n,) or
    (T or 1, B or 1, n) (axes it is constant over kept at 1), C-contiguous in ``dtype``."""
    if value is None:
        return None
    arr = check.real_array(name, value)
    if arr.shape == (n,):
        return check.array(name, arr, dtype, (n,))
    try:
        if arr.ndim > 3 or np.broadcast_shapes(arr.shape, (T, B, n)) != (T, B, n):
            raise ValueError
    except ValueError as err:
        raise ValueError(
            f"{name}: expected shape (n,) = ({n},) or an array broadcastable to (T, B, n) = "
            f"({T}, {B}, {n}), got shape {arr.shape}"
        ) from err
    arr = arr.reshape((1,) * (3 - arr.ndim) + arr.shape)
    shape = (T if arr.shape[0] != 1 else 1, B if arr.shape[1] != 1 else 1, n)
    return check.array(name, np.broadcast_to(arr, shape), dtype, shape)


def _batch_first_gain(name: str, value: Any, B: int, T: int) -> Any:
    """A per-neuron gain given batch-major, (n,) or broadcastable to (B, T, n) -> time-major."""
    if value is None or np.ndim(value) <= 1:
        return value
    arr = check.real_array(name, value)
    if arr.ndim > 3:
        raise ValueError(
            f"{name}: expected (n,) or an array broadcastable to (B, T, n) with "
            f"batch_first=True, got shape {arr.shape}"
        )
    return arr.reshape((1,) * (3 - arr.ndim) + arr.shape).swapaxes(0, 1)


def _rng(seed: Any) -> np.random.Generator:
    return np.random.default_rng(check.seed("seed", seed))


def _normal(rng: np.random.Generator, shape: tuple, std: float) -> np.ndarray:
    return rng.standard_normal(shape) * std


def qr_factor(U_raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Q, R) of the reduced QR of ``U_raw`` (n, rank), n >= rank: ``numpy.linalg.qr``
    (LAPACK's signs: the diagonal of R may be negative), Q (n, rank) C-contiguous and R
    (rank, rank), both in U_raw's dtype. The factor a ``parametrize="qr"`` model uses."""
    Q, R = np.linalg.qr(U_raw)
    return np.ascontiguousarray(Q, U_raw.dtype), np.ascontiguousarray(R, U_raw.dtype)


def _check_parametrize(parametrize: Any, U: np.ndarray) -> str | None:
    """None or "qr" (which needs rank <= n: a reduced QR of U (n, rank))."""
    if parametrize is None:
        return None
    value = check.choice("parametrize", parametrize, PARAMETRIZATIONS)
    if U.ndim == 2 and U.shape[1] > U.shape[0]:
        raise ValueError(
            f"parametrize: 'qr' orthonormalises the columns of U (n, rank), so rank <= n; "
            f"got U of shape {U.shape}"
        )
    return value


class _Factorised:
    """A low-rank model whose factor ``U`` may be stored raw (``parametrize="qr"``): the
    network then uses Q of ``numpy.linalg.qr(U)`` in every forward pass, and gradients (from
    :func:`flexrnn.train.loss_and_grad`) are taken with respect to the stored raw U."""

    parametrize: str | None
    _hyper_defaults: ClassVar[dict[str, Any]] = {"parametrize": None}

    def factor(self) -> np.ndarray:
        """U as the network uses it, (n, rank): Q of the stored U for
        ``parametrize="qr"``, else U itself."""
        return self._network_arrays(self._check_shapes())["U"]  # type: ignore[attr-defined]

    def _network_arrays(self, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.parametrize == "qr":
            return {**p, "U": self._qr(p["U"])[0]}
        return p

    def _qr(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`qr_factor` of the stored raw factor ``U``, computed once per value of U:
        kept (read-only) with a copy of the U it came from, so that a forward pass and the
        gradient through the QR of the same U share one factorisation (and the bound kernel
        parameters, which are cached by array identity, are reused while U is unchanged)."""
        cached = self.__dict__.get("_qr_cache")
        if (
            cached is not None
            and cached[0].shape == U.shape
            and cached[0].dtype == U.dtype
            and np.array_equal(cached[0], U)
        ):
            return cached[1], cached[2]
        Q, R = qr_factor(U)
        Q.flags.writeable = False
        R.flags.writeable = False
        self._qr_cache = (U.copy(), Q, R)
        return Q, R

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()  # type: ignore[misc]
        state.pop("_qr_cache", None)
        return state


class _RateBase(Model):
    """RateRNN and LowRankRNN: shared hyperparameters and run()."""

    # run and loss_and_grad take gain, neuron_gain, pre_gain, post_gain, noise_std and seed
    takes_gain = True
    run_gains = ("gain", "neuron_gain", "pre_gain", "post_gain")
    has_modulator = False
    kernels: ClassVar[dict[str, Any]] = {
        "rollout": _core.rate_rollout,
        "loss_and_grad": _core.rate_loss_and_grad,
        "map_at": _core.rate_map_at,
        "minimize_q": _core.rate_minimize_q,
        "lyapunov": _core.rate_lyapunov_spectrum,
    }

    def _check_hyper(self):
        self._init_hyper(self.tau, self.dt, self.phi, self.form, self.readout)

    def _set_rate_params(self, recurrent, n, W_in, W_out, b, b_out, x0, dtype, copy):
        """Set the recurrent arrays plus W_in, W_out and the (defaulted) b, b_out, x0."""
        n_out = check.real_array("W_out", W_out).shape[0] if np.ndim(W_out) == 2 else 0
        defaults = {
            "b": np.zeros(n) if b is None else b,
            "b_out": np.zeros(n_out) if b_out is None else b_out,
            "x0": np.zeros(n) if x0 is None else x0,
        }
        self._set_params({**recurrent, "W_in": W_in, "W_out": W_out, **defaults}, dtype, copy)

    def _init_hyper(self, tau, dt, phi, form, readout):
        self.tau = check.scalar("tau", tau, positive=True)
        self.dt = check.scalar("dt", dt, positive=True)
        if self.dt / self.tau > 1:
            raise ValueError(f"dt: alpha = dt / tau must be <= 1, got {self.dt / self.tau}")
        self.phi = check.choice("phi", phi, PHI_NAMES)
        self.form = check.choice("form", form, FORMS)
        self.readout = check.choice("readout", readout, READOUTS)

    @property
    def alpha(self) -> float:
        """dt / tau."""
        return self.dt / self.tau

    @property
    def n(self) -> int:
        return self.x0.shape[0]

    @property
    def n_in(self) -> int:
        return self.W_in.shape[1]

    @property
    def n_out(self) -> int:
        return self.W_out.shape[0]

    def _size_summary(self):
        return {"n": self.n, "n_in": self.n_in, "n_out": self.n_out}

    def run(
        self,
        u: Any,
        x0: Any = None,
        gain: Any = 1.0,
        neuron_gain: Any = None,
        noise_std: float = 0.0,
        seed: int = 0,
        *,
        pre_gain: Any = None,
        post_gain: Any = None,
        batch_first: bool | None = None,
        states: bool = True,
    ) -> Trajectory:
        """Simulate a batch of trials in C++.

        Parameters
        ----------
        u : (T, B, n_in) inputs, time-major; (B, T, n_in) with ``batch_first=True``.
        x0 : None (``self.x0``), (n,) for every trial, or (B, n).
        gain : recurrent gain: a scalar, or an array broadcastable to (T, B)
            (time-varying, per trial); to (B, T) with ``batch_first=True``.
        neuron_gain : None, (n,) or an array broadcastable to (T, B, n): per-neuron slope of
            phi, ``r = phi(ng * x)``; ``neuron_gain[t]`` is the slope of step t's output (and
            of its input in form "rate"), ``neuron_gain[0]`` also that of ``x0``'s rates.
        noise_std : std of the recurrent noise ``sqrt(2 alpha) noise_std xi``.
        seed : key of the counter-based noise generator; trial b at step t draws
            from (seed, b, t), so results do not depend on the thread count.
        pre_gain : None, (n,) or an array broadcastable to (T, B, n): gain of each sending
            neuron, the recurrent weights of step t are ``W diag(pre_gain[t])``.
        post_gain : None, (n,) or broadcastable to (T, B, n): gain of each receiving neuron,
            ``diag(post_gain[t]) W``. All four gains compose: the recurrent drive of step t
            is ``gain[t] * post_gain[t] * (W @ (pre_gain[t] * s))``, s = r or x by form.
        batch_first : True: ``u`` is (B, T, n_in) and the arrays returned are (B, T, ·)
            (views of the time-major results). None (default): time-major, with a
            UserWarning when ``u`` looks batch-major (second axis >= 100 and >= 4 times the
            first); False: time-major, no warning.
        states : False: outputs only; ``x`` and ``r`` are None and never stored, so memory is
            O(B n) instead of O(T B n) (validation and accuracy of long, large batches).

        Returns
        -------
        Trajectory with ``x``, ``r``: (T, B, n) and ``y``: (T, B, n_out), the state
        after each step ((B, T, ·) with ``batch_first=True``).
        """
        gains = {"neuron_gain": neuron_gain, "pre_gain": pre_gain, "post_gain": post_gain}
        if batch_first:
            B, T = np.shape(u)[:2]
            gains = {k: _batch_first_gain(k, v, B, T) for k, v in gains.items()}
        u, gain, batch_major = _to_time_major(u, gain, batch_first)
        x, r, y = self.kernels["rollout"](
            *self._kernel_args(
                u,
                x0,
                gain,
                gains["neuron_gain"],
                noise_std,
                seed,
                pre_gain=gains["pre_gain"],
                post_gain=gains["post_gain"],
            ),
            states=check.boolean("states", states),
        )
        _warn_if_diverged(x if states else y)
        if batch_major:
            x, r, y = (None if a is None else a.swapaxes(0, 1) for a in (x, r, y))
        return Trajectory(x=x, r=r, y=y)

    def outputs(self, u: Any, **options: Any) -> np.ndarray:
        """The outputs ``y`` (T, B, n_out) of ``run(u, **options)``, the states never stored
        (memory O(B n))."""
        return self.run(u, states=False, **options).y

    def _options(self, noise_std: Any = 0.0, seed: Any = 0) -> Any:
        """The ``_core.RateOptions`` of a run: alpha, phi, form and readout (as the core's
        enums), the noise std and the noise generator's seed, checked."""
        return _core.RateOptions(
            self.alpha,
            PHI[self.phi],
            FORM[self.form],
            READOUT[self.readout],
            check.scalar("noise_std", noise_std, nonneg=True),
            check.seed("seed", seed),
        )

    def _drive(
        self,
        u: Any,
        x0: Any = None,
        gain: Any = 1.0,
        neuron_gain: Any = None,
        p: dict[str, np.ndarray] | None = None,
        *,
        pre_gain: Any = None,
        post_gain: Any = None,
    ) -> Any:
        """The ``_core.RateDrive`` of a run: inputs, initial states (None: the model's x0),
        gains (``run``'s), checked and in the model's dtype (converted once here). ``p``: the
        checked parameters (``_check_shapes()``), when the caller has them."""
        p = self._check_shapes() if p is None else p
        dt = self._dtype
        n = p["x0"].shape[0]
        u = check.inputs(u, p["W_in"].shape[1], dt)
        T, B = u.shape[:2]
        x0 = check.initial_state("x0", x0, p["x0"], B)
        gain_arr, gain_scalar = _gain_args(gain, T, B, dt)
        per_neuron = [
            _neuron_gain_arg(name, value, T, B, n, dt)
            for name, value in zip(NEURON_GAINS, (neuron_gain, pre_gain, post_gain))
        ]
        if getattr(self, "_cell_type", None) is not None:  # Dale's law: no weight may flip sign
            weight_gains = zip(("gain", "gain", "pre_gain", "post_gain"),
                               (gain_arr, gain_scalar, *per_neuron[1:]))  # fmt: skip
            for name, value in weight_gains:
                if value is not None and np.any(np.asarray(value) < 0):
                    raise ValueError(
                        f"{name}: a negative gain flips the sign of weights of a network with "
                        "cell types (Dale's law); expected values >= 0"
                    )
        return _core.RateDrive(u, x0, gain_arr, gain_scalar, *per_neuron)

    def _kernel_args(
        self,
        u: Any,
        x0: Any = None,
        gain: Any = 1.0,
        neuron_gain: Any = None,
        noise_std: Any = 0.0,
        seed: Any = 0,
        *,
        pre_gain: Any = None,
        post_gain: Any = None,
    ) -> tuple[Any, Any, Any]:
        """(params, options, drive): the arguments of ``kernels["rollout"]`` and (followed by
        the loss) of ``kernels["loss_and_grad"]``."""
        p = self._check_shapes()
        drive = self._drive(u, x0, gain, neuron_gain, p, pre_gain=pre_gain, post_gain=post_gain)
        return self._kernel(p), self._options(noise_std, seed), drive

    def _map_kernel(
        self, p: dict[str, np.ndarray], pre_gain: Any = None, post_gain: Any = None
    ) -> Any:
        """The kernel parameters of the dynamics maps (fixed points, Lyapunov spectra) under
        constant per-neuron gains pre_gain, post_gain: None or (n,), folded into the recurrent
        arrays (the map's matrix diag(post) W diag(pre), see ``_fold_site_gains``); without
        them the model's own ``_kernel(p)``."""
        if pre_gain is None and post_gain is None:
            return self._kernel(p)
        n, dt = p["x0"].shape[0], self._dtype
        ones = np.ones(n, dt)
        pre = ones if pre_gain is None else check.array("pre_gain", pre_gain, dt, (n,))
        post = ones if post_gain is None else check.array("post_gain", post_gain, dt, (n,))
        folded = {**p, **self._fold_site_gains(p, pre, post)}
        return self._kernel_class(*(folded[name] for name in self._kernel_params))


class RateRNN(_RateBase):
    """Continuous-time rate RNN (docs/models.md), ``form="current"`` or ``"rate"``.

    Parameters: ``W`` (n, n), ``W_in`` (n, n_in), ``b`` (n,), ``W_out`` (n_out, n),
    ``b_out`` (n_out,), ``x0`` (n,). The arrays are copied unless ``copy=False`` (see
    :class:`Model`).

    Structure (docs/models.md, "E/I networks and connectivity masks"), kept by every
    learning rule and saved with the model; both are copied and checked against ``W``:

    - ``mask``: None (dense) or a boolean (n, n) array, True where a connection exists;
      ``W`` must be zero wherever it is False.
    - ``cell_type``: None or (n,) of +1 (excitatory) / -1 (inhibitory) per neuron (Dale's
      law): column j of ``W`` (neuron j's outgoing weights) is >= 0 for +1, <= 0 for -1.

    Assigning ``net.W`` directly is not checked against them (a run does not pay for it);
    the trainers project ``W`` back onto them after every update.
    """

    _structure = ("mask", "cell_type")

    _params = ("W", "W_in", "b", "W_out", "b_out", "x0")
    _recurrent = ("W",)
    _kernel_params = ("W", "W_in", "b", "W_out", "b_out")
    _kernel_class = _core.RateRNNParams

    @staticmethod
    def _fold_site_gains(p, pre, post):
        """diag(post) W diag(pre): (n,) gains -> the recurrent array they make."""
        return {"W": np.ascontiguousarray(post[:, None] * p["W"] * pre[None, :])}

    low_rank = False
    # the learning rules that train a dense W or W_out, and the NeuroMOP environment that
    # drives one, take this model's _kernel() object
    kernels: ClassVar[dict[str, Any]] = {
        **_RateBase.kernels,
        "force": _core.force_run,
        "full_force": _core.full_force_run,
        "hebbian": _core.hebbian_run,
        "population_loss": _core.population_loss,
        "mop_env": _core.MopRnnEnv,  # the NeuroMOP environment of these networks
    }
    _hyper = ("tau", "dt", "phi", "form", "readout")

    def __init__(
        self,
        W,
        W_in,
        W_out,
        b=None,
        b_out=None,
        x0=None,
        *,
        tau=10.0,
        dt=1.0,
        phi="tanh",
        form="current",
        readout="rate",
        mask=None,
        cell_type=None,
        dtype=None,
        copy=True,
    ):
        self._init_hyper(tau, dt, phi, form, readout)
        W_arr = check.real_array("W", W)
        if W_arr.ndim != 2 or W_arr.shape[0] != W_arr.shape[1] or W_arr.shape[0] == 0:
            raise ValueError(f"W: expected a square (n, n) matrix with n >= 1, got {W_arr.shape}")
        n = W_arr.shape[0]
        self._mask = self._cell_type = None
        self._set_rate_params({"W": W_arr}, n, W_in, W_out, b, b_out, x0, dtype, copy)
        self.mask = mask
        self.cell_type = cell_type

    @property
    def mask(self) -> np.ndarray | None:
        """None (dense) or the boolean (n, n) connectivity mask: True where ``W`` may be
        nonzero. Setting it copies and checks it (shape, dtype bool, ``W`` zero outside it)."""
        return self._mask

    @mask.setter
    def mask(self, value: Any) -> None:
        if value is None:
            self._mask = None
            return
        mask = _check_mask(value, self.W.shape[0])
        outside = (self.W != 0) & ~mask
        if outside.any():
            i, j = np.argwhere(outside)[0]
            raise ValueError(
                f"W: {int(outside.sum())} nonzero weight(s) where mask is False (first "
                f"W[{i}, {j}] = {self.W[i, j]:.4g}); zero them (W * mask) or allow them in mask"
            )
        self._mask = mask

    @property
    def cell_type(self) -> np.ndarray | None:
        """None, or (n,) int8: +1 for an excitatory neuron (its column of ``W`` >= 0), -1
        for an inhibitory one (<= 0). Setting it copies and checks it against ``W``."""
        return self._cell_type

    @cell_type.setter
    def cell_type(self, value: Any) -> None:
        if value is None:
            self._cell_type = None
            return
        cell_type = _check_cell_type(value, self.W.shape[0])
        for sign, name, bad in ((1, "excitatory", self.W < 0), (-1, "inhibitory", self.W > 0)):
            bad &= (cell_type == sign)[None, :]
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise ValueError(
                    f"W: {int(bad.sum())} weight(s) of the wrong sign for cell_type (Dale's "
                    f"law: the column of an {name} neuron must be "
                    f"{'>= 0' if sign > 0 else '<= 0'}; first W[{i}, {j}] = {self.W[i, j]:.4g})"
                )
        self._cell_type = cell_type

    def cell_gains(self, E: float = 1.0, I: float = 1.0, *, site: str = "pre") -> np.ndarray:  # noqa: E741
        """Per-neuron gain vector (n,) of a cell-type modulation: ``E`` for every excitatory
        neuron, ``I`` for every inhibitory one, in the model's dtype.

        ``site="pre"`` (default): the vector for ``pre_gain``, scaling what each cell type
        sends (``W diag(g)``: the columns of E cells by ``E``, of I cells by ``I``);
        ``site="post"``: for ``post_gain``, scaling what each cell type receives
        (``diag(g) W``: the rows). Both hold the same values (one per neuron, by its type);
        ``site`` names the kernel keyword the vector is meant for and is checked. Gains
        must be >= 0: a negative gain would flip the sign of a cell type's weights.
        """
        if self._cell_type is None:
            raise ValueError(
                "cell_gains: this network has no cell types (build it with "
                "RateRNN.random(..., dale=0.8) or pass cell_type=)"
            )
        check.choice("site", site, ("pre", "post"))
        gains = {}
        for name, value in (("E", E), ("I", I)):
            gains[name] = check.scalar(name, value)
            if gains[name] < 0:
                raise ValueError(
                    f"{name}: a negative gain flips the sign of the {name} cells' weights "
                    f"(Dale's law); expected >= 0, got {gains[name]}"
                )
        return np.where(self._cell_type > 0, gains["E"], gains["I"]).astype(self._dtype)

    def _constrain_W(self, W: np.ndarray) -> None:
        """Project ``W`` (n, n), or a stack (..., n, n), in place onto the structure: zero
        outside ``mask``, each column clipped to its cell type's sign (an excitatory
        column's negative entries to 0, an inhibitory column's positive entries to 0)."""
        if self._mask is not None:
            np.copyto(W, 0, where=~self._mask)
        if self._cell_type is not None:
            exc = self._cell_type > 0
            lo = np.where(exc, 0.0, -np.inf).astype(W.dtype)
            hi = np.where(exc, np.inf, 0.0).astype(W.dtype)
            np.clip(W, lo, hi, out=W)

    def _constrain(self) -> None:
        """Project ``W`` in place onto ``mask`` and ``cell_type`` (nothing without them):
        the trainers call it after every update. ``W`` is written only when it leaves the
        structure, so a rule that does not train it (FORCE) never writes into it."""
        W = self.W
        if self._mask is not None and W[~self._mask].any():
            self._constrain_W(W)
        elif self._cell_type is not None:
            exc = self._cell_type > 0
            if (W[:, exc] < 0).any() or (W[:, ~exc] > 0).any():
                self._constrain_W(W)

    def _mask_gradients(self, grads: dict[str, np.ndarray]) -> None:
        """Zero ``grads["W"]`` outside ``mask``, in place (BPTT, before clipping and the
        optimiser: Adam's moments of an absent connection stay zero)."""
        if self._mask is not None and "W" in grads:
            np.copyto(grads["W"], 0, where=~self._mask)

    def _shapes(self, p):
        n, n_in, n_out = _dim(p["W"], 0), _dim(p["W_in"], 1), _dim(p["W_out"], 0)
        return {
            "W": (n, n),
            "W_in": (n, n_in),
            "b": (n,),
            "W_out": (n_out, n),
            "b_out": (n_out,),
            "x0": (n,),
        }

    @classmethod
    def random(
        cls,
        n: int,
        n_in: int,
        n_out: int,
        g: float = 1.5,
        tau: float = 10.0,
        dt: float = 1.0,
        phi: str = "tanh",
        form: str = "current",
        readout: str = "rate",
        p: float = 1.0,
        zero_diag: bool = False,
        seed: int = 0,
        dtype: Any = "float64",
        dale: float | None = None,
        mask: Any = None,
    ) -> RateRNN:
        """Random network: ``W ~ N(0, g^2/n)`` (kept with probability ``p``, rescaled so the
        variance stays ``g^2/n``), ``W_in ~ N(0, 1/n_in)``, ``W_out ~ N(0, 1/n)``, biases 0,
        ``x0 = 0``.

        Structure: ``p < 1``, ``zero_diag`` or a given boolean (n, n) ``mask`` (True = a
        connection; combined with the others by AND) set ``net.mask``; None when none is
        given (dense). With a given mask the variance is rescaled by its density too.

        ``dale``: the fraction of excitatory neurons, in (0, 1) (None: no cell types). The
        first ``round(dale n)`` neurons are excitatory (``cell_type`` +1), the others
        inhibitory (-1), at least one of each. Balanced scaling as in Rajan & Abbott (2006):
        magnitudes ``|N(0, 1)|`` on the kept connections, signed by the sending neuron's type
        (E columns >= 0, I columns <= 0); each row's inhibitory weights are scaled so the
        row sums to zero (every neuron's excitatory and inhibitory input balance; a row
        without inhibitory or excitatory inputs is left as drawn, its inhibitory weights
        scaled by ``f / (1 - f)``, f the E fraction); then ``W`` is scaled so that
        ``n (f var_E + (1 - f) var_I) = g^2``, with var_E, var_I the variances of the
        entries of the E and I columns (masked zeros included): Rajan & Abbott's radius of
        the eigenvalue bulk, so a balanced network's spectral radius is close to ``g``.
        """
        n = check.integer("n", n, minimum=1)
        n_in = check.integer("n_in", n_in, minimum=0)
        n_out = check.integer("n_out", n_out, minimum=0)
        g = check.scalar("g", g, nonneg=True)
        p = check.scalar("p", p, positive=True)
        if p > 1:
            raise ValueError(f"p: connection probability must be in (0, 1], got {p}")
        if not isinstance(zero_diag, (bool, np.bool_)):
            raise TypeError(f"zero_diag: expected True or False, got {type(zero_diag).__name__}")
        given = None if mask is None else _check_mask(mask, n)
        n_exc = None
        if dale is not None:
            dale = check.scalar("dale", dale)
            if not 0 < dale < 1:
                raise ValueError(f"dale: the excitatory fraction must be in (0, 1), got {dale}")
            n_exc = int(round(dale * n))
            if not 1 <= n_exc <= n - 1:
                raise ValueError(
                    f"dale: {dale} of n = {n} neurons gives {n_exc} excitatory; an E/I network "
                    "needs at least one of each (raise n or change dale)"
                )
        rng = _rng(seed)
        density = 1.0 if given is None or not given.any() else float(given.mean())
        if n_exc is None:  # the draws of networks without Dale's law are those of before
            W = _normal(rng, (n, n), g / np.sqrt(n * p * density))
        conn = rng.random((n, n)) < p if p < 1 else None
        if zero_diag:
            conn = np.ones((n, n), bool) if conn is None else conn
            np.fill_diagonal(conn, False)
        if given is not None:
            conn = given if conn is None else conn & given
        cell_type = None
        if n_exc is not None:
            cell_type = np.where(np.arange(n) < n_exc, 1, -1).astype(np.int8)
            W = _balanced_ei(np.abs(rng.standard_normal((n, n))), conn, cell_type, g)
        elif conn is not None:
            W *= conn
        W_in = _normal(rng, (n, n_in), 1 / np.sqrt(max(n_in, 1)))
        W_out = _normal(rng, (n_out, n), 1 / np.sqrt(n))
        return cls(W, W_in, W_out, tau=tau, dt=dt, phi=phi, form=form, readout=readout,
                   mask=conn, cell_type=cell_type, dtype=dtype)  # fmt: skip


def _check_mask(value: Any, n: int) -> np.ndarray:
    """A boolean (n, n) connectivity mask, copied; TypeError / ValueError naming ``mask``."""
    arr = np.asarray(value)
    if arr.dtype != np.bool_:
        raise TypeError(
            f"mask: expected a boolean (n, n) array (True = a connection), got dtype {arr.dtype}"
        )
    if arr.shape != (n, n):
        raise ValueError(f"mask: expected shape ({n}, {n}), got {arr.shape}")
    return np.array(arr, dtype=bool, order="C")


def _check_cell_type(value: Any, n: int) -> np.ndarray:
    """(n,) int8 of +1 / -1, copied; TypeError / ValueError naming ``cell_type``."""
    arr = check.real_array("cell_type", value)
    if arr.shape != (n,):
        raise ValueError(f"cell_type: expected shape ({n},), got {arr.shape}")
    if not np.isin(arr, (1, -1)).all():
        bad = arr[~np.isin(arr, (1, -1))][0]
        raise ValueError(
            f"cell_type: expected +1 (excitatory) or -1 (inhibitory) per neuron, got {bad!r}"
        )
    return arr.astype(np.int8)


def _balanced_ei(A: np.ndarray, conn: np.ndarray | None, cell_type: np.ndarray, g: float):
    """Rajan & Abbott's balanced E/I matrix from magnitudes ``A`` (n, n) >= 0 (see
    ``RateRNN.random``): signed by column type, rows balanced, scaled to radius ``g``."""
    n = A.shape[0]
    if conn is not None:
        A = A * conn
    exc = cell_type > 0
    f = float(exc.mean())
    sum_e, sum_i = A[:, exc].sum(axis=1), A[:, ~exc].sum(axis=1)
    both = (sum_e > 0) & (sum_i > 0)
    ratio = np.where(both, sum_e / np.where(both, sum_i, 1.0), f / (1 - f))
    W = A.copy()
    W[:, ~exc] *= -ratio[:, None]
    radius = np.sqrt(n * (f * W[:, exc].var() + (1 - f) * W[:, ~exc].var()))
    return W * (g / radius) if radius > 0 else W


class LowRankRNN(_Factorised, _RateBase):
    """Low-rank rate RNN, ``W = U V^T / n`` (never formed in the loop), current form.

    Parameters: ``U``, ``V`` (n, rank), ``W_in`` (n, n_in), ``b`` (n,), ``W_out`` (n_out, n),
    ``b_out`` (n_out,), ``x0`` (n,). The arrays are copied unless ``copy=False`` (see
    :class:`Model`). ``parametrize="qr"``: ``U`` is a raw factor and the network uses
    ``Q`` of ``numpy.linalg.qr(U)`` (reduced), so ``W = Q V^T / n``; gradients are with
    respect to the raw U (:meth:`factor` returns the U in use).
    """

    _params = ("U", "V", "W_in", "b", "W_out", "b_out", "x0")
    _recurrent = ("U", "V")
    _kernel_params = ("U", "V", "W_in", "b", "W_out", "b_out")
    _kernel_class = _core.LowRankRNNParams

    @staticmethod
    def _fold_site_gains(p, pre, post):
        """diag(post) U V^T diag(pre) / n: (n,) gains -> the factors they make."""
        return {
            "U": np.ascontiguousarray(post[:, None] * p["U"]),
            "V": np.ascontiguousarray(pre[:, None] * p["V"]),
        }

    low_rank = True
    _hyper = ("tau", "dt", "phi", "readout", "parametrize")

    def __init__(
        self,
        U,
        V,
        W_in,
        W_out,
        b=None,
        b_out=None,
        x0=None,
        *,
        tau=10.0,
        dt=1.0,
        phi="tanh",
        readout="rate",
        parametrize=None,
        dtype=None,
        copy=True,
    ):
        self._init_hyper(tau, dt, phi, "current", readout)
        U_arr = check.real_array("U", U)
        if U_arr.ndim != 2 or U_arr.shape[0] == 0:
            raise ValueError(f"U: expected shape (n, rank) with n >= 1, got {U_arr.shape}")
        self.parametrize = _check_parametrize(parametrize, U_arr)
        n = U_arr.shape[0]
        self._set_rate_params({"U": U_arr, "V": V}, n, W_in, W_out, b, b_out, x0, dtype, copy)

    def _check_hyper(self):
        super()._check_hyper()
        self.parametrize = _check_parametrize(self.parametrize, np.asarray(self.U))

    def _shapes(self, p):
        n, rank = _dim(p["U"], 0), _dim(p["U"], 1)
        n_in, n_out = _dim(p["W_in"], 1), _dim(p["W_out"], 0)
        return {
            "U": (n, rank),
            "V": (n, rank),
            "W_in": (n, n_in),
            "b": (n,),
            "W_out": (n_out, n),
            "b_out": (n_out,),
            "x0": (n,),
        }

    @property
    def rank(self) -> int:
        return self.U.shape[1]

    @property
    def W(self) -> np.ndarray:
        """The full (n, n) matrix U V^T / n (U: :meth:`factor`), formed on request (for
        analysis, not for runs)."""
        return self.factor() @ self.V.T / self.n

    @classmethod
    def random(
        cls,
        n: int,
        rank: int,
        n_in: int,
        n_out: int,
        tau: float = 10.0,
        dt: float = 1.0,
        phi: str = "tanh",
        readout: str = "rate",
        seed: int = 0,
        dtype: Any = "float64",
        parametrize: str | None = None,
    ) -> LowRankRNN:
        """Random low-rank network: ``U, V ~ N(0, 1)`` (so ``W = U V^T / n`` has entries of
        order ``sqrt(rank)/n``), ``W_in ~ N(0, 1/n_in)``, ``W_out ~ N(0, 1/n)``, zeros
        elsewhere. ``parametrize="qr"``: U is kept raw and the network uses its Q."""
        n = check.integer("n", n, minimum=1)
        rank = check.integer("rank", rank, minimum=1)
        n_in = check.integer("n_in", n_in, minimum=0)
        n_out = check.integer("n_out", n_out, minimum=0)
        rng = _rng(seed)
        U = rng.standard_normal((n, rank))
        V = rng.standard_normal((n, rank))
        W_in = _normal(rng, (n, n_in), 1 / np.sqrt(max(n_in, 1)))
        W_out = _normal(rng, (n_out, n), 1 / np.sqrt(n))
        return cls(U, V, W_in, W_out, tau=tau, dt=dt, phi=phi, readout=readout,
                   parametrize=parametrize, dtype=dtype)  # fmt: skip


class NMRNN(_Factorised, Model):
    """Neuromodulated low-rank RNN (Costacurta et al. 2024; docs/models.md).

    Modulator: ``W_z`` (n_mod, n_mod), ``B_z`` (n_mod, n_in), ``b_z`` (n_mod,), ``A_z``
    (rank, n_mod), ``c_z`` (rank,), ``z0`` (n_mod,), optional feedback ``W_zx`` (n_mod, n).
    Output network: ``U``, ``V`` (n, rank), ``B_x`` (n, n_in), ``x0`` (n,); readout ``C``
    (n_out, n), ``d`` (n_out,). ``n_scale``: 1 (orthonormal U, the timing-task code) or n.
    The arrays are copied unless ``copy=False`` (see :class:`Model`). ``parametrize="qr"``
    (the study's code): ``U`` is a raw factor and every forward pass uses ``Q`` of
    ``numpy.linalg.qr(U)`` (reduced); gradients are with respect to the raw U
    (:meth:`factor` returns the U in use).
    """

    _params = ("W_z", "B_z", "b_z", "A_z", "c_z", "U", "V", "B_x", "C", "d", "x0", "z0", "W_zx")
    _optional = ("W_zx",)
    _hyper = ("tau_x", "tau_z", "dt", "n_scale", "parametrize")
    _kernel_params = ("W_z", "B_z", "b_z", "A_z", "c_z", "U", "V", "B_x", "C", "d", "W_zx")
    _kernel_class = _core.NMRNNParams
    low_rank = True
    has_modulator = True
    run_gains = ("gain", "pre_gain", "post_gain")
    kernels: ClassVar[dict[str, Any]] = {
        "rollout": _core.nmrnn_rollout,
        "loss_and_grad": _core.nmrnn_loss_and_grad,
        "map_at": _core.nmrnn_map_at,
        "minimize_q": _core.nmrnn_minimize_q,
    }

    def __init__(
        self,
        W_z,
        B_z,
        A_z,
        U,
        V,
        B_x,
        C,
        b_z=None,
        c_z=None,
        d=None,
        x0=None,
        z0=None,
        W_zx=None,
        *,
        tau_x=10.0,
        tau_z=100.0,
        dt=1.0,
        n_scale=1.0,
        parametrize=None,
        dtype=None,
        copy=True,
    ):
        self._init_hyper(tau_x, tau_z, dt, n_scale)
        U_arr = check.real_array("U", U)
        W_z_arr = check.real_array("W_z", W_z)
        if U_arr.ndim != 2 or U_arr.shape[0] == 0:
            raise ValueError(f"U: expected shape (n, rank) with n >= 1, got {U_arr.shape}")
        self.parametrize = _check_parametrize(parametrize, U_arr)
        if W_z_arr.ndim != 2:
            raise ValueError(f"W_z: expected shape (n_mod, n_mod), got {W_z_arr.shape}")
        n, rank = U_arr.shape
        n_mod = W_z_arr.shape[0]
        n_out = check.real_array("C", C).shape[0] if np.ndim(C) == 2 else 0
        self._set_params(
            {
                "W_z": W_z_arr,
                "B_z": B_z,
                "A_z": A_z,
                "U": U_arr,
                "V": V,
                "B_x": B_x,
                "C": C,
                "b_z": np.zeros(n_mod) if b_z is None else b_z,
                "c_z": np.zeros(rank) if c_z is None else c_z,
                "d": np.zeros(n_out) if d is None else d,
                "x0": np.full(n, 0.1) if x0 is None else x0,
                "z0": np.full(n_mod, 0.1) if z0 is None else z0,
                "W_zx": W_zx,
            },
            dtype,
            copy,
        )

    def _check_hyper(self):
        self._init_hyper(self.tau_x, self.tau_z, self.dt, self.n_scale)
        self.parametrize = _check_parametrize(self.parametrize, np.asarray(self.U))

    def _init_hyper(self, tau_x, tau_z, dt, n_scale):
        self.tau_x = check.scalar("tau_x", tau_x, positive=True)
        self.tau_z = check.scalar("tau_z", tau_z, positive=True)
        self.dt = check.scalar("dt", dt, positive=True)
        if self.dt / self.tau_x > 1 or self.dt / self.tau_z > 1:
            raise ValueError("dt: dt / tau_x and dt / tau_z must be <= 1")
        self.n_scale = check.scalar("n_scale", n_scale, positive=True)

    def _shapes(self, p):
        n, rank, n_mod = _dim(p["U"], 0), _dim(p["U"], 1), _dim(p["W_z"], 0)
        n_in, n_out = _dim(p["B_z"], 1), _dim(p["C"], 0)
        return {
            "W_z": (n_mod, n_mod),
            "B_z": (n_mod, n_in),
            "b_z": (n_mod,),
            "A_z": (rank, n_mod),
            "c_z": (rank,),
            "U": (n, rank),
            "V": (n, rank),
            "B_x": (n, n_in),
            "C": (n_out, n),
            "d": (n_out,),
            "x0": (n,),
            "z0": (n_mod,),
            "W_zx": (n_mod, n),
        }

    n = property(lambda self: self.U.shape[0])
    rank = property(lambda self: self.U.shape[1])
    n_mod = property(lambda self: self.W_z.shape[0])
    n_in = property(lambda self: self.B_z.shape[1])
    n_out = property(lambda self: self.C.shape[0])
    alpha_x = property(lambda self: self.dt / self.tau_x, doc="dt / tau_x")
    alpha_z = property(lambda self: self.dt / self.tau_z, doc="dt / tau_z")

    def _size_summary(self):
        return {
            "n": self.n,
            "rank": self.rank,
            "n_mod": self.n_mod,
            "n_in": self.n_in,
            "n_out": self.n_out,
        }

    @classmethod
    def random(
        cls,
        n: int,
        rank: int,
        n_mod: int,
        n_in: int,
        n_out: int,
        tau_x: float = 10.0,
        tau_z: float = 100.0,
        dt: float = 1.0,
        n_scale: str | float = 1.0,
        feedback: bool = False,
        seed: int = 0,
        dtype: Any = "float64",
        parametrize: str | None = None,
    ) -> NMRNN:
        """Random NM-RNN. With ``n_scale=1`` U has orthonormal columns and ``V ~ N(0, 1)``
        (the timing-task code); with ``n_scale="n"`` ``U, V ~ N(0, 1)`` and W = U V^T / n.
        ``W_z ~ N(0, 1/n_mod)``, ``B_z``, ``B_x ~ N(0, 1/n_in)``, ``A_z ~ N(0, 1/n_mod)``,
        ``C ~ N(0, 1/n)``, ``W_zx ~ N(0, 1/n)`` when ``feedback``; x0 = z0 = 0.1.
        ``parametrize="qr"``: U is kept raw, ``~ N(0, 1)`` (the network uses its Q)."""
        n = check.integer("n", n, minimum=1)
        rank = check.integer("rank", rank, minimum=1)
        n_mod = check.integer("n_mod", n_mod, minimum=1)
        n_in = check.integer("n_in", n_in, minimum=0)
        n_out = check.integer("n_out", n_out, minimum=0)
        if n_scale == "n":
            n_scale = float(n)
        if n_scale == 1.0 and rank > n:
            raise ValueError(
                f"rank: n_scale=1 orthonormalises U (n, rank), so rank <= n = {n}; "
                f"got rank {rank} (use n_scale='n')"
            )
        rng = _rng(seed)
        U = rng.standard_normal((n, rank))
        if n_scale == 1.0 and parametrize is None:
            U = np.linalg.qr(U)[0]
        V = rng.standard_normal((n, rank))
        in_std = 1 / np.sqrt(max(n_in, 1))
        return cls(
            W_z=_normal(rng, (n_mod, n_mod), 1 / np.sqrt(n_mod)),
            B_z=_normal(rng, (n_mod, n_in), in_std),
            A_z=_normal(rng, (rank, n_mod), 1 / np.sqrt(n_mod)),
            U=U,
            V=V,
            B_x=_normal(rng, (n, n_in), in_std),
            C=_normal(rng, (n_out, n), 1 / np.sqrt(n)),
            W_zx=_normal(rng, (n_mod, n), 1 / np.sqrt(n)) if feedback else None,
            tau_x=tau_x,
            tau_z=tau_z,
            dt=dt,
            n_scale=n_scale,
            parametrize=parametrize,
            dtype=dtype,
        )

    def run(
        self,
        u: Any,
        x0: Any = None,
        z0: Any = None,
        s_clamp: Any = None,
        ablate: Any = None,
        *,
        gain: Any = 1.0,
        pre_gain: Any = None,
        post_gain: Any = None,
        batch_first: bool | None = None,
    ) -> NMRNNTrajectory:
        """Simulate a batch in C++.

        u: (T, B, n_in), time-major; (B, T, n_in) with ``batch_first=True``;
        x0: None, (n,) or (B, n); z0: None, (n_mod,) or (B, n_mod);
        s_clamp: None or (rank,) with NaN for free components and a value for held ones;
        ablate: component indices held at 0 (shorthand for s_clamp);
        gain: a scalar or an array broadcastable to (T, B) ((B, T) with ``batch_first=True``);
        pre_gain, post_gain: None, (n,) or an array broadcastable to (T, B, n) ((B, T, n) with
        ``batch_first=True``): gains of the sending and receiving neurons. The gains act on the
        low-rank recurrent term of step t only (the modulator is untouched):
        ``gain[t] * post_gain[t] * (U diag(s[t+1]) V^T (pre_gain[t] * tanh(x[t]))) / n_scale``
        (as ``RateRNN.run``'s gains act on ``W``);
        batch_first: as in :meth:`RateRNN.run` (True: batch-major in and out; None: time-major,
        warning when ``u`` looks batch-major; False: time-major, no warning).
        Returns x, r = tanh(x): (T, B, n), z: (T, B, n_mod), s: (T, B, rank), y: (T, B, n_out)
        ((B, T, ·) with ``batch_first=True``).
        """
        sites = {"pre_gain": pre_gain, "post_gain": post_gain}
        if batch_first:
            B, T = np.shape(u)[:2]
            sites = {k: _batch_first_gain(k, v, B, T) for k, v in sites.items()}
        u, gain, batch_major = _to_time_major(u, gain, batch_first)
        args = self._kernel_args(u, x0, z0, s_clamp, ablate, gain=gain, **sites)
        x, r, z, s, y = self.kernels["rollout"](*args)
        _warn_if_diverged(x)
        if batch_major:
            x, r, z, s, y = (a.swapaxes(0, 1) for a in (x, r, z, s, y))
        return NMRNNTrajectory(x=x, r=r, y=y, z=z, s=s)

    def _drive(
        self,
        u,
        x0=None,
        z0=None,
        s_clamp=None,
        ablate=None,
        p=None,
        *,
        gain: Any = 1.0,
        pre_gain: Any = None,
        post_gain: Any = None,
    ) -> Any:
        """The ``_core.NMRNNDrive`` of a run: inputs u (T, B, n_in), initial states x0 (B, n)
        and z0 (B, n_mod) (None: the model's), the clamp s_clamp (rank,) (NaN: free) with the
        ablated components set to 0, or None, and the gains of :meth:`run`; checked and in the
        model's dtype. ``p``: the checked parameters (``_check_shapes()``), when the caller
        has them."""
        p = self._check_shapes() if p is None else p
        dt = self._dtype
        n, rank = p["U"].shape
        u = check.inputs(u, p["B_z"].shape[1], dt)
        T, B = u.shape[:2]
        gain_arr, gain_scalar = _gain_args(gain, T, B, dt)
        pre = _neuron_gain_arg("pre_gain", pre_gain, T, B, n, dt)
        post = _neuron_gain_arg("post_gain", post_gain, T, B, n, dt)
        x0 = check.initial_state("x0", x0, p["x0"], B)
        z0 = check.initial_state("z0", z0, p["z0"], B)
        if s_clamp is not None:
            s_clamp = check.array("s_clamp", s_clamp, dt, (rank,), finite=False)
            if np.isinf(s_clamp).any():
                raise ValueError("s_clamp: values must be finite or NaN (free)")
        if ablate is not None:
            s_clamp = np.full(rank, np.nan, dt) if s_clamp is None else s_clamp.copy()
            for k in np.atleast_1d(ablate):
                k = check.integer("ablate", k.item() if isinstance(k, np.generic) else k)
                if not 0 <= k < rank:
                    raise ValueError(f"ablate: component {k} not in 0..{rank - 1}")
                s_clamp[k] = 0.0
        if gain_arr is None and gain_scalar == 1.0 and pre is None and post is None:
            return _core.NMRNNDrive(u, x0, z0, s_clamp)
        return _core.NMRNNDrive(u, x0, z0, s_clamp, gain_arr, gain_scalar, pre, post)

    def _kernel_args(self, u, x0=None, z0=None, s_clamp=None, ablate=None, **gains: Any) -> tuple:
        """(params, options, drive): the arguments of ``kernels["rollout"]`` (and, followed by
        the loss, of ``kernels["loss_and_grad"]``); ``gains``: gain, pre_gain, post_gain as
        in :meth:`run`."""
        p = self._check_shapes()
        drive = self._drive(u, x0, z0, s_clamp, ablate, p, **gains)
        return self._kernel(p), self._options(), drive

    def _map_kernel(
        self, p: dict[str, np.ndarray], pre_gain: Any = None, post_gain: Any = None,
        gain: Any = 1.0,
    ) -> Any:  # fmt: skip
        """The kernel parameters of the dynamics maps (fixed points) under a constant gain
        (scalar) and constant per-neuron gains pre_gain, post_gain (None or (n,)), folded into
        the factors the network uses: ``U -> gain * post * U``, ``V -> pre * V`` (so the
        recurrent term is ``gain post * (U diag(s) V^T (pre * tanh(x)))``); without gains the
        model's own ``_kernel(p)``."""
        g = check.scalar("gain", gain)
        if pre_gain is None and post_gain is None and g == 1.0:
            return self._kernel(p)
        q = self._network_arrays(p)
        n, dt = q["U"].shape[0], self._dtype
        folded = dict(q)
        if pre_gain is not None:
            pre = check.array("pre_gain", pre_gain, dt, (n,))
            folded["V"] = np.ascontiguousarray(pre[:, None] * q["V"])
        if post_gain is not None or g != 1.0:
            post = np.ones(n, dt) if post_gain is None else check.array(
                "post_gain", post_gain, dt, (n,))  # fmt: skip
            folded["U"] = np.ascontiguousarray((g * post)[:, None] * q["U"], dtype=dt)
        return self._kernel_class(*(folded[name] for name in self._kernel_params))

    def _options(self) -> Any:
        """The ``_core.NMRNNOptions``: alpha_x, alpha_z and n_scale."""
        return _core.NMRNNOptions(self.alpha_x, self.alpha_z, self.n_scale)


class LSTM(Model):
    """LSTM baseline, gates in PyTorch's order (i, f, g, o).

    Parameters: ``W_ih`` (4n, n_in), ``W_hh`` (4n, n), ``b`` (4n,), ``C`` (n_out, n),
    ``d`` (n_out,), ``h0``, ``c0`` (n,). The arrays are copied unless ``copy=False`` (see
    :class:`Model`).
    """

    _params = ("W_ih", "W_hh", "b", "C", "d", "h0", "c0")
    _hyper = ()
    _kernel_params = ("W_ih", "W_hh", "b", "C", "d")
    _kernel_class = _core.LSTMParams
    kernels: ClassVar[dict[str, Any]] = {
        "rollout": _core.lstm_rollout,
        "loss_and_grad": _core.lstm_loss_and_grad,
    }

    def __init__(self, W_ih, W_hh, C, b=None, d=None, h0=None, c0=None, *, dtype=None, copy=True):
        W_hh_arr = check.real_array("W_hh", W_hh)
        if W_hh_arr.ndim != 2 or W_hh_arr.shape[0] != 4 * W_hh_arr.shape[1] or W_hh_arr.size == 0:
            raise ValueError(f"W_hh: expected shape (4n, n) with n >= 1, got {W_hh_arr.shape}")
        n = W_hh_arr.shape[1]
        n_out = check.real_array("C", C).shape[0] if np.ndim(C) == 2 else 0
        self._set_params(
            {
                "W_hh": W_hh_arr,
                "W_ih": W_ih,
                "C": C,
                "b": np.zeros(4 * n) if b is None else b,
                "d": np.zeros(n_out) if d is None else d,
                "h0": np.zeros(n) if h0 is None else h0,
                "c0": np.zeros(n) if c0 is None else c0,
            },
            dtype,
            copy,
        )

    def _shapes(self, p):
        n, n4 = _dim(p["W_hh"], 1), _dim(p["W_hh"], 1, times=4)
        n_in, n_out = _dim(p["W_ih"], 1), _dim(p["C"], 0)
        return {
            "W_ih": (n4, n_in),
            "W_hh": (n4, n),
            "b": (n4,),
            "C": (n_out, n),
            "d": (n_out,),
            "h0": (n,),
            "c0": (n,),
        }

    def _check_hyper(self):
        """The LSTM has no hyperparameters."""

    n = property(lambda self: self.W_hh.shape[1])
    n_in = property(lambda self: self.W_ih.shape[1])
    n_out = property(lambda self: self.C.shape[0])

    def _size_summary(self):
        return {"n": self.n, "n_in": self.n_in, "n_out": self.n_out}

    @classmethod
    def random(cls, n: int, n_in: int, n_out: int, seed: int = 0, dtype: Any = "float64") -> LSTM:
        """PyTorch's initialisation: every weight and bias ``~ U(-1/sqrt(n), 1/sqrt(n))``;
        ``d``, ``h0``, ``c0`` zero."""
        n = check.integer("n", n, minimum=1)
        n_in = check.integer("n_in", n_in, minimum=0)
        n_out = check.integer("n_out", n_out, minimum=0)
        rng = _rng(seed)
        k = 1 / np.sqrt(n)
        return cls(
            W_ih=rng.uniform(-k, k, (4 * n, n_in)),
            W_hh=rng.uniform(-k, k, (4 * n, n)),
            C=rng.uniform(-k, k, (n_out, n)),
            b=rng.uniform(-k, k, 4 * n),
            dtype=dtype,
        )

    def run(
        self, u: Any, h0: Any = None, c0: Any = None, *, batch_first: bool | None = None
    ) -> LSTMTrajectory:
        """Simulate a batch in C++.

        u: (T, B, n_in), time-major; (B, T, n_in) with ``batch_first=True``; h0, c0: None,
        (n,) or (B, n); batch_first: as in :meth:`RateRNN.run` (True: batch-major in and out;
        None: time-major, warning when ``u`` looks batch-major; False: no warning).
        Returns h, c: (T, B, n), y: (T, B, n_out) ((B, T, ·) with ``batch_first=True``).
        """
        u, _, batch_major = _to_time_major(u, 1.0, batch_first)
        h, c, y = self.kernels["rollout"](*self._kernel_args(u, h0, c0))
        _warn_if_diverged(c)
        if batch_major:
            h, c, y = h.swapaxes(0, 1), c.swapaxes(0, 1), y.swapaxes(0, 1)
        return LSTMTrajectory(h=h, c=c, y=y)

    def _drive(self, u, h0=None, c0=None, p=None) -> Any:
        """The ``_core.LSTMDrive`` of a run: inputs u (T, B, n_in), initial states h0, c0
        (B, n) (None: the model's), checked and in the model's dtype. ``p``: the checked
        parameters (``_check_shapes()``), when the caller has them."""
        p = self._check_shapes() if p is None else p
        u = check.inputs(u, p["W_ih"].shape[1], self._dtype)
        B = u.shape[1]
        h0 = check.initial_state("h0", h0, p["h0"], B)
        c0 = check.initial_state("c0", c0, p["c0"], B)
        return _core.LSTMDrive(u, h0, c0)

    def _kernel_args(self, u, h0=None, c0=None) -> tuple:
        """(params, drive): the arguments of ``kernels["rollout"]`` (and, followed by the
        loss, of ``kernels["loss_and_grad"]``)."""
        p = self._check_shapes()
        return self._kernel(p), self._drive(u, h0, c0, p)


MODELS = {cls.__name__: cls for cls in (RateRNN, LowRankRNN, NMRNN, LSTM)}


def load(path: PathLike) -> Model:
    """Read a model written by ``Model.save`` (any model class, format versions 1 and 2;
    version 2 adds a RateRNN's structural arrays ``mask`` and ``cell_type``).

    Stale temporary files of interrupted saves to ``path`` are removed first. Every
    malformed file (truncated, not a zip, missing or bad metadata, unknown class, missing,
    extra or object arrays, wrong dtypes or shapes, non-finite values) is a ValueError
    (:class:`flexrnn._io.FileFormatError`) naming the file and the problem; array shapes are
    checked against the model from the arrays' headers, before any data is decompressed.
    A missing file is a FileNotFoundError.
    """
    with NpzReader(path, "flexrnn model file") as f:
        meta = f.meta()
        f.check_format(meta, FORMAT, FORMAT_VERSION)
        cls, dtype, hyper = model_from_meta(f, meta)
        keys = [k for k in f.members if k != "__meta__" and k not in cls._structure]
        declared = check_declared_params(f, cls, dtype, keys)
        structure = check_declared_structure(f, cls, declared)
        arrays = {k: f.read(k) for k in keys + structure}
    return build_model(f, cls, arrays, hyper, dtype)


def check_declared_structure(
    f: NpzReader, cls: type[Model], declared: dict[str, tuple[int, ...]], prefix: str = ""
) -> list[str]:
    """The structural arrays ``prefix + name`` of a file (``mask`` bool (n, n), ``cell_type``
    integer (n,), n from the declared parameter shapes), checked from their headers; returns
    their keys in the file."""
    keys = [prefix + name for name in cls._structure if prefix + name in f.members]
    if keys:
        n = declared["x0"][0]
        expected = {"mask": (np.bool_, (n, n)), "cell_type": (("i",), (n,))}
        for key in keys:
            dtype, shape = expected[key[len(prefix) :]]
            f.check_dtype(key, dtype)
            f.check_shape(key, shape)
    return keys


def model_from_meta(f: NpzReader, meta: dict[str, Any]) -> tuple[type[Model], np.dtype, dict]:
    """The model class, dtype and hyperparameters a file's metadata names, checked."""
    cls = MODELS.get(meta.get("model"))  # type: ignore[arg-type]
    if cls is None:
        f.fail(f"names an unknown model class {meta.get('model')!r} (known: {', '.join(MODELS)})")
    try:
        dtype = check.as_dtype(meta.get("dtype"))
    except TypeError as err:
        f.fail(f"has a bad model dtype in its metadata ({err})", err)
    hyper = meta.get("hyperparameters")
    if not isinstance(hyper, dict):
        f.fail(f"has no hyperparameters object in its metadata (got {hyper!r})")
    hyper = {**cls._hyper_defaults, **hyper}  # files written before a hyperparameter existed
    missing = [h for h in cls._hyper if h not in hyper]
    extra = [h for h in hyper if h not in cls._hyper]
    if missing or extra:
        f.fail(
            f"has hyperparameters that do not fit a {cls.__name__}: missing {missing}, "
            f"unknown {extra}"
        )
    return cls, dtype, hyper


class _Shape:
    """A declared shape, standing in for an array in ``Model._shapes``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape, self.ndim = shape, len(shape)


def check_declared_params(
    f: NpzReader, cls: type[Model], dtype: np.dtype, keys: list[str], prefix: str = ""
) -> dict[str, tuple[int, ...]]:
    """Check the parameter arrays ``prefix + name`` of a file against ``cls`` from their
    headers alone: the names (none missing, none unknown), dtypes, and shapes (each sized by
    the others, as the constructor would). Returns the declared shapes by parameter name."""
    names = [k[len(prefix) :] for k in keys]
    missing = [n for n in cls._params if n not in names and n not in cls._optional]
    extra = [n for n in names if n not in cls._params]
    if missing:
        f.fail(f"lacks the {cls.__name__} parameter(s) {', '.join(missing)}")
    if extra:
        f.fail(f"has array(s) {', '.join(extra)} that a {cls.__name__} does not have")
    for name in names:
        f.check_dtype(prefix + name, dtype)
    declared = {name: f.members[prefix + name].shape for name in names}
    sizes = {n: _Shape(declared[n]) if n in declared else None for n in cls._params}
    expected = cls._shapes(cls.__new__(cls), sizes)  # sizes only: no instance state is read
    for name in names:
        f.check_shape(prefix + name, expected[name])
    return declared


def build_model(f: NpzReader, cls: type[Model], arrays: dict, hyper: dict, dtype) -> Model:
    """``cls(**arrays, **hyper)``, its errors (bad hyperparameters, non-finite values)
    reported as the file's."""
    try:
        return cls(**arrays, **hyper, dtype=dtype, copy=False)
    except (ValueError, TypeError) as err:
        f.fail(f"does not hold a valid {cls.__name__}: {err}", err)
