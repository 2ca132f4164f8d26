"""Training checkpoints: one ``.npz`` holding everything a run needs to continue exactly.

Contents: the network's parameters (``param/<name>``), the optimiser's state
(``optim/<slot>/<name>`` arrays; step count and hyperparameters in the metadata), the history
(``hist/<field>``), and a JSON ``__meta__`` with the format version, flexrnn version, model
class, dtype and hyperparameters, the number of completed iterations, the random generators'
states (``rng.bit_generator.state``) and the training arguments, which ``resume=`` compares
with its own. Files are written to a temporary file beside the target and moved into place
with ``os.replace``, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from flexrnn._io import atomic_savez, remove_stale_temporaries
from flexrnn._version import __version__
from flexrnn.models import MODELS, Model

from .history import History

FORMAT = "flexrnn-checkpoint"
FORMAT_VERSION = 1

PathLike = Union[str, Path]


@dataclass
class Checkpoint:
    """A checkpoint read back by :func:`load_checkpoint`.

    ``net`` is a new model holding the saved parameters; ``iteration`` the number of completed
    updates; ``args`` the training arguments; ``optimizer_state`` what the optimiser's
    ``load_state_dict`` takes; ``rng_states`` the generators' states by name.
    """

    net: Model
    iteration: int
    history: History
    optimizer_state: dict[str, Any]
    rng_states: dict[str, Any]
    args: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # argument arrays (arg/<name>)
    flexrnn_version: str = ""


def save_checkpoint(
    path: PathLike,
    *,
    net: Model,
    iteration: int,
    history: History,
    optimizer_state: dict[str, Any],
    rng_states: dict[str, Any],
    args: dict[str, Any],
    arrays: dict[str, np.ndarray] | None = None,
) -> None:
    """Write a checkpoint atomically (temporary file in the same folder + ``os.replace``)."""
    path = Path(path)
    optim_meta = {k: v for k, v in optimizer_state.items() if not isinstance(v, np.ndarray)}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "flexrnn_version": __version__,
        "model": type(net).__name__,
        "dtype": net.dtype.name,
        "hyperparameters": net.hyperparameters(),
        "iteration": int(iteration),
        "stopped": history.stopped,
        "rng_states": rng_states,
        "optimizer": optim_meta,
        "args": args,
    }
    content: dict[str, np.ndarray] = {"__meta__": np.array(json.dumps(meta))}
    content.update({f"param/{k}": v for k, v in net.params().items()})
    content.update(
        {f"optim/{k}": v for k, v in optimizer_state.items() if isinstance(v, np.ndarray)}
    )
    hist = history.as_dict()
    content.update({f"hist/{k}": v for k, v in hist.items() if isinstance(v, np.ndarray)})
    content.update({f"arg/{k}": np.asarray(v) for k, v in (arrays or {}).items()})

    atomic_savez(path, content)


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read a checkpoint written by ``bptt(checkpoint=...)``.

    Raises ValueError naming ``path`` when the file is not a flexrnn checkpoint or was
    written by a newer format.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    if not path.is_file():
        raise ValueError(f"path: no checkpoint file at {path}")
    with np.load(path, allow_pickle=False) as data:
        if "__meta__" not in data.files:
            raise ValueError(f"path: {path} is not a flexrnn checkpoint (no metadata)")
        meta = json.loads(str(data["__meta__"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"path: {path} is not a flexrnn checkpoint")
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"path: {path} has checkpoint format {meta['format_version']}, newer than this "
                f"flexrnn ({__version__}) reads ({FORMAT_VERSION}); upgrade flexrnn"
            )
        groups: dict[str, dict[str, np.ndarray]] = {"param": {}, "optim": {}, "hist": {}, "arg": {}}
        for key in data.files:
            group, _, name = key.partition("/")
            if group in groups:
                groups[group][name] = data[key]
    cls = MODELS.get(meta.get("model"))
    if cls is None:
        raise ValueError(f"path: unknown model class {meta.get('model')!r} in {path}")
    net = cls(**groups["param"], **meta["hyperparameters"], dtype=meta["dtype"])
    history = History.from_dict({**groups["hist"], "stopped": meta.get("stopped")})
    return Checkpoint(
        net=net,
        iteration=int(meta["iteration"]),
        history=history,
        optimizer_state={**meta["optimizer"], **groups["optim"]},
        rng_states=meta["rng_states"],
        args=meta["args"],
        arrays=groups["arg"],
        flexrnn_version=meta.get("flexrnn_version", ""),
    )


def generator_from_state(state: dict[str, Any]) -> np.random.Generator:
    """A NumPy Generator in exactly the saved ``bit_generator.state``."""
    name = state.get("bit_generator")
    bit_generator_cls = getattr(np.random, str(name), None)
    if bit_generator_cls is None or not isinstance(bit_generator_cls, type):
        raise ValueError(f"resume: unknown bit generator {name!r} in the checkpoint")
    bit_generator = bit_generator_cls()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def save_run(
    path: PathLike,
    *,
    net: Model,
    iteration: int,
    history: History,
    state: dict[str, Any],
    rng: np.random.Generator,
    val_rng: np.random.Generator,
    args: dict[str, Any],
    arrays: dict[str, np.ndarray] | None = None,
) -> None:
    """:func:`save_checkpoint` for a training driver: ``state`` is the rule's own state
    (optimiser, population, running errors), ``rng`` / ``val_rng`` the training and
    validation generators."""
    save_checkpoint(
        path,
        net=net,
        iteration=iteration,
        history=history,
        optimizer_state=state,
        rng_states={"train": rng.bit_generator.state, "validation": val_rng.bit_generator.state},
        args=args,
        arrays=arrays,
    )


def resume_run(ckpt: Checkpoint) -> tuple[np.random.Generator, np.random.Generator, History, int]:
    """What a driver continues from, given a checkpoint written by :func:`save_run`: the
    training and validation generators, the history (``stopped`` cleared: it is set again
    if the run still ends early) and the number of completed iterations."""
    history = ckpt.history
    history.stopped = None
    return (
        generator_from_state(ckpt.rng_states["train"]),
        generator_from_state(ckpt.rng_states["validation"]),
        history,
        ckpt.iteration,
    )


def load_for_resume(
    path: PathLike, args: dict[str, Any], model_type: type, dtype: np.dtype
) -> Checkpoint:
    """Read a checkpoint to continue a run with the training arguments ``args`` on a model
    of ``model_type`` and ``dtype``; ValueError naming ``resume`` when it was written
    otherwise."""
    ckpt = load_checkpoint(path)
    differ = [k for k, v in args.items() if ckpt.args.get(k) != v]
    if differ or type(ckpt.net) is not model_type or ckpt.net.dtype != dtype:
        raise ValueError(f"resume: the checkpoint was written with other arguments: {differ}")
    return ckpt
