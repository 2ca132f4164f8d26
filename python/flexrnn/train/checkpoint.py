"""Training checkpoints: one ``.npz`` holding everything a run needs to continue exactly.

Contents: the network's parameters (``param/<name>``), the optimiser's state
(``optim/<slot>/<name>`` arrays; step count and hyperparameters in the metadata), the history
(``hist/<field>``), and a JSON ``__meta__`` with the format version, flexrnn version, model
class, dtype and hyperparameters, the number of completed iterations, the random generators'
states (``rng.bit_generator.state``), the training arguments, and (format 2) the
fingerprints of the experiment's objects, e.g. the task (:mod:`flexrnn.train.fingerprint`).
``resume=`` compares the arguments and the fingerprints with its own (:func:`verify_resume`).
Files are written to a temporary file beside the target and moved into place with
``os.replace``, so a crash mid-write leaves the previous checkpoint intact; loading removes
the temporaries of killed writers and checks every array's declared shape from its header
before reading its data.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from flexrnn._io import NpzReader, atomic_savez, remove_stale_temporaries
from flexrnn._version import __version__
from flexrnn.models import (
    Model,
    build_model,
    check_declared_params,
    check_declared_structure,
    model_from_meta,
)

from .fingerprint import differences, fingerprint
from .history import HISTORY_FIELDS, RULE_FIELDS, VALIDATION_FIELDS, History

FORMAT = "flexrnn-checkpoint"
FORMAT_VERSION = 3  # 2: the experiment's fingerprints (the task's) in the metadata;
# 3: the model's structural arrays (a RateRNN's mask and cell_type) as struct/<name>

PathLike = Union[str, Path]


@dataclass
class Checkpoint:
    """A checkpoint read back by :func:`load_checkpoint`.

    ``net`` is a new model holding the saved parameters; ``iteration`` the number of completed
    updates; ``args`` the training arguments; ``optimizer_state`` what the optimiser's
    ``load_state_dict`` takes; ``rng_states`` the generators' states by name; ``experiment``
    the fingerprints of the experiment's parts by name (``{"task": {"sha256", "description"}}``,
    see :mod:`flexrnn.train.fingerprint`), None in a checkpoint of format version 1.
    """

    net: Model
    iteration: int
    history: History
    optimizer_state: dict[str, Any]
    rng_states: dict[str, Any]
    args: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # argument arrays (arg/<name>)
    flexrnn_version: str = ""
    experiment: dict[str, Any] | None = None
    path: Path | None = None


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
    experiment: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (temporary file in the same folder + ``os.replace``).

    ``experiment``: the objects the run depends on beyond its arguments, by name (e.g.
    ``{"task": task}``), recorded as fingerprints that a resume verifies."""
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
        "experiment": {k: fingerprint(v) for k, v in (experiment or {}).items()},
    }
    content: dict[str, np.ndarray] = {"__meta__": np.array(json.dumps(meta))}
    content.update({f"param/{k}": v for k, v in net.params().items()})
    content.update({f"struct/{k}": v for k, v in net.structure().items()})
    content.update(
        {f"optim/{k}": v for k, v in optimizer_state.items() if isinstance(v, np.ndarray)}
    )
    hist = history.as_dict()
    content.update({f"hist/{k}": v for k, v in hist.items() if isinstance(v, np.ndarray)})
    content.update({f"arg/{k}": np.asarray(v) for k, v in (arrays or {}).items()})

    atomic_savez(path, content)


_GROUPS = ("param", "struct", "optim", "hist", "arg")


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read a checkpoint written by ``bptt(checkpoint=...)`` (or ``genetic``, ``hebbian``).

    Stale temporary files of interrupted writes to ``path`` are removed first. A missing
    file, or any malformed one (truncated, not a zip, bad metadata, a newer format, missing,
    extra or object arrays, arrays whose declared shapes do not fit the model or the run,
    non-finite parameters) is a ValueError naming ``path`` and the problem; the arrays'
    shapes are checked from their headers before any data is decompressed.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    if not path.is_file():
        raise ValueError(f"path: no checkpoint file at {path}")
    with NpzReader(path, "flexrnn checkpoint") as f:
        meta = f.meta()
        version = f.check_format(meta, FORMAT, FORMAT_VERSION)
        cls, dtype, hyper = model_from_meta(f, meta)
        iteration = meta.get("iteration")
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
            f.fail(f"has a malformed iteration count {iteration!r}")
        for key, kind in (("rng_states", dict), ("optimizer", dict), ("args", dict)):
            if not isinstance(meta.get(key), kind):
                f.fail(f"has no {key} object in its metadata")
        experiment = meta.get("experiment") if version >= 2 else None
        if version >= 2 and not (
            isinstance(experiment, dict)
            and all(
                isinstance(v, dict) and isinstance(v.get("sha256"), str) and "description" in v
                for v in experiment.values()
            )
        ):
            f.fail("has malformed experiment fingerprints in its metadata")
        keys = [k for k in f.members if k != "__meta__"]
        bad = [k for k in keys if k.partition("/")[0] not in _GROUPS or not k.partition("/")[2]]
        if bad:
            f.fail(f"has unexpected array(s) {', '.join(map(repr, bad))}")
        params = check_declared_params(
            f, cls, dtype, [k for k in keys if k.startswith("param/")], prefix="param/"
        )
        structure = check_declared_structure(f, cls, params, prefix="struct/")
        unknown = [k for k in keys if k.startswith("struct/") and k not in structure]
        if unknown:
            f.fail(f"has unexpected array(s) {', '.join(map(repr, unknown))}")
        _check_declared_state(f, keys, params, iteration, meta)
        groups: dict[str, dict[str, np.ndarray]] = {g: {} for g in _GROUPS}
        for key in keys:
            group, _, name = key.partition("/")
            groups[group][name] = f.read(key)
        net = build_model(f, cls, {**groups["param"], **groups["struct"]}, hyper, dtype)
        try:
            rule = meta["args"].get("rule")  # genetic, hebbian; None: BPTT (from the fields)
            history = History.from_dict(
                {**groups["hist"], "stopped": meta.get("stopped")},
                rule=rule if isinstance(rule, str) and rule in RULE_FIELDS else None,
            )
        except (ValueError, TypeError) as err:
            f.fail(f"has a malformed history ({err})", err)
    return Checkpoint(
        net=net,
        iteration=iteration,
        history=history,
        optimizer_state={**meta["optimizer"], **groups["optim"]},
        rng_states=meta["rng_states"],
        args=meta["args"],
        arrays=groups["arg"],
        flexrnn_version=str(meta.get("flexrnn_version", "")),
        experiment=experiment,
        path=path,
    )


def _check_declared_state(
    f: NpzReader, keys: list[str], params: dict[str, tuple], iteration: int, meta: dict
) -> None:
    """The declared shapes of the history, optimiser and argument arrays, before any data
    is read: history records one entry per update (validations at most as many), Adam's
    moments have their parameter's shape, a population (genetic) one row per member, and
    any other array is no larger than the run's parameters (times the population)."""
    population = meta["args"].get("population")
    members = population if isinstance(population, int) and population > 0 else 1
    bound = members * sum(int(np.prod(s)) for s in params.values()) + 2 * iteration + 4096
    for key in keys:
        group, _, name = key.partition("/")
        declared = f.members[key]
        if group == "hist":
            f.check_dtype(key, ("f", "i", "u", "b"))
            if name in HISTORY_FIELDS:
                f.check_shape(key, (iteration,))
            elif name in VALIDATION_FIELDS:
                f.check_shape(key, (None,))
                if declared.shape[0] > iteration:
                    f.fail(f"has {declared.shape[0]} validations in {key!r} after {iteration}")
            else:
                f.fail(f"has an unknown history record {key!r}")
        elif group == "optim":
            slot, _, pname = name.partition("/")
            if slot in ("m", "v") and pname:
                if pname not in params:
                    f.fail(f"has optimiser state {key!r} for no parameter of the model")
                f.check_shape(key, params[pname])
            elif name in params and population is not None:
                f.check_shape(key, (members, *params[name]))
            elif declared.size > bound:
                f.fail(f"has {key!r} of shape {declared.shape}, larger than the run can hold")
        elif group == "arg" and declared.size > bound:
            f.fail(f"has {key!r} of shape {declared.shape}, larger than the run can hold")


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
    experiment: dict[str, Any] | None = None,
) -> None:
    """:func:`save_checkpoint` for a training driver: ``state`` is the rule's own state
    (optimiser, population, running errors), ``rng`` / ``val_rng`` the training and
    validation generators, ``experiment`` the objects to fingerprint (``{"task": task}``)."""
    save_checkpoint(
        path,
        net=net,
        iteration=iteration,
        history=history,
        optimizer_state=state,
        rng_states={"train": rng.bit_generator.state, "validation": val_rng.bit_generator.state},
        args=args,
        arrays=arrays,
        experiment=experiment,
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


def check_same_structure(saved: Any, net: Any) -> None:
    """ValueError naming ``resume`` when the checkpoint's network and ``net`` differ in their
    structural arrays (a RateRNN's ``mask``, ``cell_type``): the run would continue under
    other constraints than it was trained with."""
    if net is None:
        return
    mine, theirs = net.structure(), saved.structure()
    for name in sorted(set(mine) | set(theirs)):
        a, b = mine.get(name), theirs.get(name)
        if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
            state = "has none" if b is None else "differs"
            raise ValueError(
                f"resume: the checkpoint's network {state} in {name} from this network's; "
                "resume with the network the run started from"
            )


def load_for_resume(
    path: PathLike,
    args: dict[str, Any],
    model_type: type,
    dtype: np.dtype,
    *,
    experiment: dict[str, Any] | None = None,
    structural: tuple[str, ...] = (),
    allow_mismatch: bool = False,
    net: Model | None = None,
) -> Checkpoint:
    """Read a checkpoint to continue a run with the training arguments ``args`` and the
    ``experiment`` objects (``{"task": task}``) on a model of ``model_type`` and ``dtype``,
    verified with :func:`verify_resume`; with ``net``, also that its structural arrays
    (mask, cell types) are the checkpoint's (:func:`check_same_structure`)."""
    ckpt = load_checkpoint(path)
    if type(ckpt.net) is not model_type or ckpt.net.dtype != dtype:
        raise ValueError(
            f"resume: {path} holds a {type(ckpt.net).__name__} ({ckpt.net.dtype}), not a "
            f"{model_type.__name__} ({dtype})"
        )
    verify_resume(ckpt, args=args, experiment=experiment, structural=structural,
                  allow_mismatch=allow_mismatch)  # fmt: skip
    check_same_structure(ckpt.net, net)
    return ckpt


def mismatches(saved: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, line) for every training argument that differs between a checkpoint's
    ``saved`` arguments and ``now``."""
    out = []
    for key in list(now) + [k for k in saved if k not in now]:
        if key not in saved:
            out.append((key, f"{key}: absent in the checkpoint, {now[key]!r} now"))
        elif key not in now:
            out.append((key, f"{key}: {saved[key]!r} in the checkpoint, absent now"))
        elif saved[key] != now[key]:
            out.append((key, f"{key}: {saved[key]!r} in the checkpoint, {now[key]!r} now"))
    return out


def experiment_mismatches(
    saved: dict[str, Any] | None, experiment: dict[str, Any]
) -> list[str] | None:
    """The differences between the fingerprints ``saved`` in a checkpoint and the objects
    of ``experiment`` (by name), or None when the checkpoint holds no fingerprints."""
    if saved is None:
        return None
    lines: list[str] = []
    for name, obj in experiment.items():
        now = fingerprint(obj)
        old = saved.get(name)
        if old is None:
            lines.append(f"{name}: not recorded in the checkpoint")
        elif old["sha256"] != now["sha256"]:
            lines.extend(differences(old["description"], now["description"], name))
    return lines


def verify_resume(
    ckpt: Checkpoint,
    *,
    args: dict[str, Any],
    experiment: dict[str, Any] | None = None,
    arrays: dict[str, np.ndarray] | None = None,
    structural: tuple[str, ...] = (),
    allow_mismatch: bool = False,
) -> None:
    """Check that ``ckpt`` was written by the experiment being resumed: the training
    arguments (``args``, JSON values), argument ``arrays`` and the fingerprints of the
    ``experiment`` objects (the task: all its parameters and arrays).

    A difference is a ValueError naming every differing parameter. With
    ``allow_mismatch=True`` it is a RuntimeWarning instead, except for the ``structural``
    arguments, without which the saved state cannot be continued (model class, optimiser,
    trained parameters). A checkpoint of format version 1 holds no fingerprints: a
    RuntimeWarning says that its experiment cannot be verified.
    """
    where = f" {ckpt.path}" if ckpt.path is not None else ""
    lines = mismatches(ckpt.args, args)
    hard = [line for key, line in lines if key in structural]
    soft = [line for key, line in lines if key not in structural]
    for key, value in (arrays or {}).items():
        if key not in ckpt.arrays or not np.array_equal(ckpt.arrays[key], value):
            soft.append(f"{key}: a different array in the checkpoint")
    found = experiment_mismatches(ckpt.experiment, experiment or {})
    if found is None and experiment:
        warnings.warn(
            f"resume: the checkpoint{where} was written by flexrnn "
            f"{ckpt.flexrnn_version or '< 0.2'} (checkpoint format 1), which recorded no "
            f"fingerprint of the {', '.join(experiment)}: it cannot be verified that they "
            "are those of the interrupted run",
            RuntimeWarning,
            stacklevel=3,
        )
    soft.extend(found or [])
    if hard:
        raise ValueError(
            f"resume: the checkpoint{where} cannot continue this run; it was written with "
            + "; ".join(hard)
        )
    if soft:
        text = f"the checkpoint{where} was written by another experiment: " + "; ".join(soft)
        if not allow_mismatch:
            raise ValueError(
                f"resume: {text}. Pass allow_mismatch=True to continue from it anyway."
            )
        warnings.warn(f"resume: {text} (continuing: allow_mismatch=True)", RuntimeWarning,
                      stacklevel=3)  # fmt: skip


def check_allow_mismatch(value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"allow_mismatch: expected True or False, got {type(value).__name__}")
    return bool(value)


def check_checkpoint_folder(checkpoint: PathLike | None) -> Path | None:
    """The ``checkpoint=`` path of a training driver, checked before any work: its folder
    must exist (else ValueError naming ``checkpoint``), and the path must not be a folder."""
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, Path)):
        raise TypeError(
            f"checkpoint: expected a path (str or Path), got {type(checkpoint).__name__}"
        )
    path = Path(checkpoint)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(
            f"checkpoint: the folder {folder} of {path} does not exist (create it first: "
            "the first checkpoint would otherwise fail after the run's work)"
        )
    if path.is_dir():
        raise ValueError(f"checkpoint: {path} is a folder; give a file path such as run.npz")
    return path
