"""Malformed files: ``fr.load``, ``load_checkpoint`` and MOP resume name the file and the
problem for every kind of damage (a ValueError), and check the arrays' declared shapes
against the model before decompressing any data."""

import json
import tracemalloc
import zipfile

import flexrnn as fr
import numpy as np
import pytest
from conftest import small_models
from flexrnn._io import FileFormatError
from flexrnn.models import FORMAT_VERSION as MODEL_FORMAT_VERSION
from flexrnn.train.checkpoint import FORMAT_VERSION as CKPT_FORMAT_VERSION
from hypothesis import given, settings
from hypothesis import strategies as st


def _arrays(path):
    with np.load(path, allow_pickle=True) as data:
        return {k: data[k] for k in data.files}


def _meta(arrays):
    return json.loads(str(arrays["__meta__"]))


def _with_meta(arrays, **changes):
    meta = _meta(arrays)
    for key, value in changes.items():
        if value is _DROP:
            meta.pop(key, None)
        else:
            meta[key] = value
    return {**arrays, "__meta__": np.array(json.dumps(meta))}


_DROP = object()


def _hyper(arrays, change):
    meta = _meta(arrays)
    hyper = dict(meta["hyperparameters"])
    change(hyper)
    return _with_meta(arrays, hyperparameters=hyper)


def _set(arrays, key, value):
    out = dict(arrays)
    if value is _DROP:
        del out[key]
    else:
        out[key] = value
    return out


def _nan_in_W(arrays):
    W = arrays["W"].copy()
    W[0, 0] = np.nan
    return _set(arrays, "W", W)


# (id, change of the arrays of a saved RateRNN (float64, n=6, n_in=2, n_out=2), the
# problem the message must name)
ARRAY_CORRUPTIONS = [
    ("no-metadata", lambda a: _set(a, "__meta__", _DROP), "no __meta__"),
    ("metadata-not-json", lambda a: _set(a, "__meta__", np.array("{not json")), "JSON"),
    ("metadata-json-list", lambda a: _set(a, "__meta__", np.array("[1, 2]")), "JSON object"),
    ("metadata-number", lambda a: _set(a, "__meta__", np.array(1.5)), "malformed metadata"),
    ("metadata-1d", lambda a: _set(a, "__meta__", np.array(["{}", "{}"])), "malformed metadata"),
    ("other-format", lambda a: _with_meta(a, format="something-else"), "format"),
    ("newer-version", lambda a: _with_meta(a, format_version=MODEL_FORMAT_VERSION + 1), "newer"),
    ("version-not-int", lambda a: _with_meta(a, format_version="1"), "format_version"),
    ("unknown-class", lambda a: _with_meta(a, model="Transformer"), "Transformer"),
    ("bad-dtype", lambda a: _with_meta(a, dtype="int8"), "dtype"),
    ("no-hyperparameters", lambda a: _with_meta(a, hyperparameters=_DROP), "hyperparameters"),
    ("hyperparameters-list", lambda a: _with_meta(a, hyperparameters=[1]), "hyperparameters"),
    ("missing-hyperparameter", lambda a: _hyper(a, lambda h: h.pop("tau")), "tau"),
    ("unknown-hyperparameter", lambda a: _hyper(a, lambda h: h.update(beta=2)), "beta"),
    ("invalid-hyperparameter", lambda a: _hyper(a, lambda h: h.update(tau=-1.0)), "tau"),
    ("invalid-choice", lambda a: _hyper(a, lambda h: h.update(phi="sigmoid")), "phi"),
    ("missing-array", lambda a: _set(a, "W_in", _DROP), "W_in"),
    ("extra-array", lambda a: _set(a, "Z", np.zeros(3)), "Z"),
    ("integer-array", lambda a: _set(a, "W", a["W"].astype(np.int64)), "W"),
    ("float32-array", lambda a: _set(a, "W", a["W"].astype(np.float32)), "float32"),
    ("complex-array", lambda a: _set(a, "b", a["b"].astype(complex)), "complex"),
    ("string-array", lambda a: _set(a, "b", np.array(["x"] * 6)), "'b'"),
    ("object-array", lambda a: _set(a, "W", a["W"].astype(object)), "object"),
    ("wrong-rows", lambda a: _set(a, "W_in", np.zeros((7, 2))), "W_in"),
    ("wrong-columns", lambda a: _set(a, "W_out", np.zeros((2, 5))), "W_out"),
    ("wrong-ndim", lambda a: _set(a, "b", np.zeros((6, 1))), "'b'"),
    ("not-square", lambda a: _set(a, "W", np.zeros((6, 5))), "W"),
    ("empty-network", lambda a: {**a, "W": np.zeros((0, 0))}, "W"),
    ("nan-value", _nan_in_W, "NaN"),
    ("inf-value", lambda a: _set(a, "b", np.full(6, np.inf)), "infinite"),
]


@pytest.fixture
def saved(tmp_path):
    net = small_models()["RateRNN"]
    path = tmp_path / "model.npz"
    net.save(path)
    return net, path


def _assert_names_file(info, path, problem=None):
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(path) in message, message
    if problem is not None:
        assert problem in message, message


@pytest.mark.parametrize(
    "change, problem", [c[1:] for c in ARRAY_CORRUPTIONS], ids=[c[0] for c in ARRAY_CORRUPTIONS]
)
def test_load_names_the_file_and_the_problem(change, problem, saved):
    _, path = saved
    np.savez(path, **change(_arrays(path)))
    with pytest.raises(ValueError) as info:
        fr.load(path)
    _assert_names_file(info, path, problem)


def _flip_in_data(path, data: bytes):
    raw = bytearray(path.read_bytes())
    at = raw.find(data)
    assert at >= 0
    raw[at + len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _add_member(path, name):
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(name, b"hello")


BYTE_CORRUPTIONS = [
    ("empty-file", lambda p, net: p.write_bytes(b""), "zip"),
    ("text-file", lambda p, net: p.write_text("W = [[1, 2], [3, 4]]"), "zip"),
    ("truncated-half", lambda p, net: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), None),
    ("truncated-end", lambda p, net: p.write_bytes(p.read_bytes()[:-1]), None),
    ("corrupt-data", lambda p, net: _flip_in_data(p, net.W.tobytes()), "W"),
    ("non-npy-member", lambda p, net: _add_member(p, "notes.txt"), "notes.txt"),
    ("bad-npy-header", lambda p, net: _add_member(p, "X.npy"), "'X'"),
]


@pytest.mark.parametrize(
    "damage, problem", [c[1:] for c in BYTE_CORRUPTIONS], ids=[c[0] for c in BYTE_CORRUPTIONS]
)
def test_load_names_the_file_for_damaged_bytes(damage, problem, saved):
    net, path = saved
    damage(path, net)
    with pytest.raises(ValueError) as info:
        fr.load(path)
    _assert_names_file(info, path, problem)
    assert isinstance(info.value, FileFormatError)


def test_a_folder_or_a_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError) as info:
        fr.load(tmp_path)
    _assert_names_file(info, tmp_path, "folder")
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        fr.load(tmp_path / "nothing.npz")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_truncation_or_flipped_byte_loads_exactly_or_names_the_file(data, tmp_path_factory):
    net = small_models(seed=1)[data.draw(st.sampled_from(["RateRNN", "NMRNN", "LSTM"]))]
    path = tmp_path_factory.mktemp("damaged") / "model.npz"
    net.save(path)
    raw = bytearray(path.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        at = data.draw(st.integers(0, len(raw) - 1), label="offset")
        raw[at] ^= data.draw(st.integers(1, 255), label="xor")
    path.write_bytes(bytes(raw))
    try:
        loaded = fr.load(path)
    except ValueError as err:
        assert str(path) in str(err)
        return
    # damage outside what is read (a timestamp, padding): the model is intact
    assert type(loaded) is type(net)
    for key, value in net.params().items():
        np.testing.assert_array_equal(loaded.params()[key], value)


def test_shapes_are_rejected_before_the_data_is_decompressed(saved):
    """W_in declares (20000, 100) float64 (16 MB of zeros, compressed to a few kB): the
    shape does not fit n = 6, and loading allocates far less than the array's size."""
    _, path = saved
    arrays = _arrays(path)
    arrays["W_in"] = np.zeros((20_000, 100))
    np.savez_compressed(path, **arrays)
    assert path.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            fr.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _assert_names_file(info, path, "W_in")
    assert "(20000, 100)" in str(info.value)
    assert peak < 2_000_000, peak


def test_header_that_lies_about_the_size_is_truncation(saved):
    """A member whose header declares more data than it holds (with a valid checksum) is
    reported from the sizes alone."""
    import io

    _, path = saved
    arrays = _arrays(path)
    buffer = io.BytesIO()
    np.save(buffer, arrays.pop("W"))
    member = buffer.getvalue()
    assert member.count(b"(6, 6)") == 1
    np.savez(path, **arrays)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("W.npy", member.replace(b"(6, 6)", b"(6, 9)"))
    with pytest.raises(ValueError) as info:
        fr.load(path)
    _assert_names_file(info, path, "truncated or corrupt")


def test_stale_temporaries_of_a_dead_writer_are_removed_by_load(saved):
    import subprocess
    import sys

    _, path = saved
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)  # fmt: skip
    stale = path.parent / f"{path.name}.{dead}.abc.tmp"
    stale.write_bytes(b"partial")
    fr.load(path)
    assert not stale.exists()


# ------------------------------------------------------------------------------------------
# Training checkpoints


@pytest.fixture
def checkpoint(tmp_path):
    net = fr.RateRNN.random(n=6, n_in=1, n_out=1, g=0.9, seed=0)
    path = tmp_path / "run.npz"
    fr.train.bptt(net, fr.tasks.PerceptualDecision(T=8), iters=3, batch_size=2, val_every=1,
                  progress=False, checkpoint=path)  # fmt: skip
    return path


CHECKPOINT_CORRUPTIONS = [
    ("no-metadata", lambda a: _set(a, "__meta__", _DROP), "no __meta__"),
    ("other-format", lambda a: _with_meta(a, format="flexrnn-model"), "format"),
    ("newer-version", lambda a: _with_meta(a, format_version=CKPT_FORMAT_VERSION + 1), "newer"),
    ("bad-iteration", lambda a: _with_meta(a, iteration=-1), "iteration"),
    ("no-args", lambda a: _with_meta(a, args=_DROP), "args"),
    ("bad-fingerprints", lambda a: _with_meta(a, experiment={"task": 1}), "fingerprints"),
    ("unknown-class", lambda a: _with_meta(a, model="GRU"), "GRU"),
    ("missing-parameter", lambda a: _set(a, "param/W", _DROP), "W"),
    ("wrong-parameter-shape", lambda a: _set(a, "param/W_in", np.zeros((9, 1))), "param/W_in"),
    ("nan-parameter", lambda a: _set(a, "param/b", np.full(6, np.nan)), "NaN"),
    ("unknown-group", lambda a: _set(a, "junk/x", np.zeros(2)), "junk/x"),
    ("history-too-long", lambda a: _set(a, "hist/loss", np.zeros(5)), "hist/loss"),
    ("history-too-many-validations", lambda a: _set(a, "hist/val_loss", np.zeros(9)), "val"),
    ("unknown-history", lambda a: _set(a, "hist/foo", np.zeros(3)), "hist/foo"),
    ("moment-shape", lambda a: _set(a, "optim/m/W", np.zeros((2, 2))), "optim/m/W"),
    ("moment-of-no-parameter", lambda a: _set(a, "optim/m/Q", np.zeros(2)), "optim/m/Q"),
    ("huge-state", lambda a: _set(a, "optim/extra", np.zeros(100_000)), "optim/extra"),
    ("object-array", lambda a: _set(a, "hist/loss", a["hist/loss"].astype(object)), "object"),
]


@pytest.mark.parametrize(
    "change, problem",
    [c[1:] for c in CHECKPOINT_CORRUPTIONS],
    ids=[c[0] for c in CHECKPOINT_CORRUPTIONS],
)
def test_load_checkpoint_names_the_file_and_the_problem(change, problem, checkpoint):
    np.savez(checkpoint, **change(_arrays(checkpoint)))
    with pytest.raises(ValueError) as info:
        fr.train.load_checkpoint(checkpoint)
    _assert_names_file(info, checkpoint, problem)


@pytest.mark.parametrize("damage", [c[1] for c in BYTE_CORRUPTIONS[:4]],
                         ids=[c[0] for c in BYTE_CORRUPTIONS[:4]])  # fmt: skip
def test_resume_from_damaged_checkpoint_names_the_file(damage, checkpoint):
    damage(checkpoint, None)
    net = fr.RateRNN.random(n=6, n_in=1, n_out=1, g=0.9, seed=0)
    with pytest.raises(ValueError) as info:
        fr.train.bptt(net, fr.tasks.PerceptualDecision(T=8), iters=4, batch_size=2,
                      val_every=1, progress=False, resume=checkpoint)  # fmt: skip
    _assert_names_file(info, checkpoint)


# ------------------------------------------------------------------------------------------
# MOP checkpoints


def _agent():
    env = fr.mop.RNNEnv.random(n=6, n_bits=2, g=1.5, rho=1.0, dt=0.2,
                               terminal=fr.mop.Energy(0.52))  # fmt: skip
    return fr.mop.MOPAgent(env, hidden=4, gamma=0.9, updates=2, batch_size=8, seed=1)


@pytest.fixture
def mop_checkpoint(tmp_path):
    path = tmp_path / "mop.npz"
    _agent().train(epochs=2, trajectories=3, horizon=6, progress=False, checkpoint=path)
    return path


MOP_CORRUPTIONS = [
    ("no-metadata", lambda a: _set(a, "__meta__", _DROP), "no __meta__"),
    ("metadata-not-json", lambda a: _set(a, "__meta__", np.array("[")), "JSON"),
    ("newer-version", lambda a: _with_meta(a, format_version=9), "newer"),
    ("no-seeds", lambda a: _with_meta(a, seeds=_DROP), "seeds"),
    ("theta-shape", lambda a: _set(a, "agent0/theta", np.zeros(7)), "agent0/theta"),
    ("theta-integer", lambda a: _set(a, "agent0/theta", np.zeros(25, int)), "agent0/theta"),
    ("missing-moment", lambda a: _set(a, "agent0/adam_v", _DROP), "agent0/adam_v"),
    ("extra-array", lambda a: _set(a, "agent1/theta", np.zeros(25)), "agent1/theta"),
    ("history-rows", lambda a: _set(a, "hist0/loss", np.zeros(5)), "hist0/loss"),
    ("lifetime-ndim", lambda a: _set(a, "hist0/lifetime", np.zeros(2)), "hist0/lifetime"),
]


@pytest.mark.parametrize(
    "change, problem", [c[1:] for c in MOP_CORRUPTIONS], ids=[c[0] for c in MOP_CORRUPTIONS]
)
def test_mop_resume_names_the_file_and_the_problem(change, problem, mop_checkpoint):
    np.savez(mop_checkpoint, **change(_arrays(mop_checkpoint)))
    agent = _agent()
    theta = agent.theta.copy()
    with pytest.raises(ValueError) as info:
        agent.train(epochs=3, trajectories=3, horizon=6, progress=False, resume=mop_checkpoint)
    _assert_names_file(info, mop_checkpoint, problem)
    np.testing.assert_array_equal(agent.theta, theta)
    assert agent.epoch == 0


@pytest.mark.parametrize("damage", [c[1] for c in BYTE_CORRUPTIONS[:4]],
                         ids=[c[0] for c in BYTE_CORRUPTIONS[:4]])  # fmt: skip
def test_mop_resume_from_damaged_bytes_names_the_file(damage, mop_checkpoint):
    damage(mop_checkpoint, None)
    with pytest.raises(ValueError) as info:
        _agent().train(epochs=3, trajectories=3, horizon=6, progress=False,
                       resume=mop_checkpoint)  # fmt: skip
    _assert_names_file(info, mop_checkpoint)
