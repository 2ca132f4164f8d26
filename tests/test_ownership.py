"""Models own their arrays: constructors copy (``copy=False`` opts out), aliased parameters
are rejected, read-only and memmapped inputs serve runs, and training never writes into a
caller's buffer."""

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming, run_model, small_models

MODEL_NAMES = ("RateRNN", "LowRankRNN", "NMRNN", "LSTM")


def _tiny_task():
    return fr.tasks.PerceptualDecision(T=6)


def _rate_net(seed=0):
    return fr.RateRNN.random(n=5, n_in=1, n_out=1, g=0.9, seed=seed)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_constructor_copies_every_array(name):
    init = small_models(seed=1)[name]
    net = type(init)(**init.params(), **init.hyperparameters())
    for key, value in net.params().items():
        assert not np.shares_memory(value, init.params()[key]), key
        assert value.flags.writeable and value.flags.c_contiguous, key


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_training_a_model_built_from_another_leaves_the_other_unchanged(name):
    init = small_models(seed=2)[name]
    before = {k: v.copy() for k, v in init.params().items()}
    net = type(init)(**init.params(), **init.hyperparameters())
    task = fr.tasks.PerceptualDecision(T=6) if init.n_in == 1 else None
    if task is None:  # the small models take several inputs: a matching random task
        task = fr.tasks.FixedTrials(_MatchingTask(init), _random_trials(init))
    fr.train.bptt(net, task, iters=2, batch_size=2, lr=0.05, val_every=None, progress=False)
    assert any(not np.array_equal(net.params()[k], before[k]) for k in before)
    for key, value in init.params().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


class _MatchingTask(fr.tasks.base.Task):
    """A task of the model's sizes whose trials are given (wrapped by FixedTrials)."""

    def __init__(self, net):
        self.n_in, self.n_out, self.T, self.dt, self.name = net.n_in, net.n_out, 4, 1.0, "m"

    def _generate(self, B, rng, dtype):
        raise AssertionError("FixedTrials hands out its own trials")

    def _correct(self, y, trials):
        return np.ones(y.shape[1], bool)


def _random_trials(net):
    rng = np.random.default_rng(0)
    T, B = 4, 2
    return fr.tasks.base.Trials(
        rng.normal(size=(T, B, net.n_in)),
        rng.normal(size=(T, B, net.n_out)),
        np.ones((T, B, net.n_out)),
    )


def test_parameters_given_as_one_buffer_get_separate_updates():
    net0 = _rate_net()
    shared = np.zeros(net0.n)
    net = fr.RateRNN(net0.W, net0.W_in, net0.W_out, b=shared, x0=shared)
    assert not np.shares_memory(net.b, net.x0)
    fr.train.bptt(net, _tiny_task(), iters=3, batch_size=2, lr=0.05, val_every=None,
                  progress=False)  # fmt: skip
    assert not np.array_equal(net.b, net.x0)  # each got its own gradient steps
    np.testing.assert_array_equal(shared, 0.0)


@pytest.mark.parametrize(
    "aliases",
    [
        lambda a: {"b": a, "x0": a},  # the same array
        lambda a: {"b": a[:5], "x0": a[2:7]},  # overlapping views
    ],
    ids=["same-array", "overlapping-views"],
)
def test_copy_false_rejects_parameters_sharing_memory(aliases):
    net0 = _rate_net()
    buffer = np.zeros(10)
    with raises_naming("copy", ValueError) as info:
        fr.RateRNN(net0.W, net0.W_in, net0.W_out, **aliases(buffer), copy=False)
    assert "b, x0" in str(info.value)


def test_copy_false_accepts_disjoint_views_and_keeps_the_arrays():
    net0 = _rate_net()
    buffer = np.zeros(10)
    W = net0.W.copy()
    net = fr.RateRNN(W, net0.W_in, net0.W_out, b=buffer[:5], x0=buffer[5:], copy=False)
    assert net.W is W
    assert np.shares_memory(net.b, buffer) and np.shares_memory(net.x0, buffer)


def test_copy_false_still_converts_other_dtypes():
    net0 = _rate_net()
    W32 = net0.W.astype(np.float32)
    net = fr.RateRNN(W32, net0.W_in, net0.W_out, dtype="float64", copy=False)
    assert net.W.dtype == np.float64 and not np.shares_memory(net.W, W32)


def test_copy_must_be_a_bool():
    net0 = _rate_net()
    with raises_naming("copy", TypeError):
        fr.RateRNN(net0.W, net0.W_in, net0.W_out, copy="yes")


def _read_only(params):
    out = {}
    for k, v in params.items():
        arr = v.copy()
        arr.flags.writeable = False
        out[k] = arr
    return out


@pytest.mark.parametrize("copy", [True, False])
def test_read_only_arrays_run_and_train_without_being_written(copy):
    net0 = _rate_net(seed=3)
    frozen = _read_only(net0.params())
    net = fr.RateRNN(**frozen, copy=copy)
    u = np.random.default_rng(0).normal(size=(5, 2, 1))
    np.testing.assert_array_equal(run_model(net, u)["y"], run_model(net0, u)["y"])
    fr.train.bptt(net, _tiny_task(), iters=2, batch_size=2, lr=0.05, val_every=None,
                  progress=False)  # fmt: skip
    assert not np.array_equal(net.W, net0.W)
    for key, value in frozen.items():
        np.testing.assert_array_equal(value, net0.params()[key], err_msg=key)


def _memmapped_params(net, folder, mode):
    """Each parameter written to its own .npy file and reopened as a memmap."""
    maps = {}
    for key, value in net.params().items():
        path = folder / f"{key}.npy"
        np.save(path, value)
        maps[key] = np.load(path, mmap_mode=mode)
    return maps


def test_r_plus_memmap_file_is_unchanged_by_training(tmp_path):
    net0 = _rate_net(seed=4)
    maps = _memmapped_params(net0, tmp_path, "r+")
    files = {k: (tmp_path / f"{k}.npy").read_bytes() for k in maps}
    net = fr.RateRNN(**maps)
    u = np.random.default_rng(1).normal(size=(5, 2, 1))
    np.testing.assert_array_equal(run_model(net, u)["y"], run_model(net0, u)["y"])
    fr.train.bptt(net, _tiny_task(), iters=3, batch_size=2, lr=0.05, val_every=None,
                  progress=False)  # fmt: skip
    for m in maps.values():
        m.flush()
    assert not np.array_equal(net.W, net0.W)
    for key in maps:
        assert (tmp_path / f"{key}.npy").read_bytes() == files[key], key


def test_read_only_memmap_serves_runs_with_copy_false(tmp_path):
    net0 = _rate_net(seed=5)
    maps = _memmapped_params(net0, tmp_path, "r")
    net = fr.RateRNN(**maps, copy=False)
    assert np.shares_memory(net.W, maps["W"])  # no copy: the file is read in place
    u = np.random.default_rng(2).normal(size=(5, 2, 1))
    np.testing.assert_array_equal(run_model(net, u)["y"], run_model(net0, u)["y"])


def test_copy_false_shares_the_buffer_so_training_updates_it():
    """The documented meaning of the opt-in: the model uses the caller's arrays."""
    net0 = _rate_net(seed=6)
    arrays = {k: v.copy() for k, v in net0.params().items()}
    net = fr.RateRNN(**arrays, copy=False)
    fr.train.bptt(net, _tiny_task(), iters=2, batch_size=2, lr=0.05, val_every=None,
                  progress=False)  # fmt: skip
    assert net.W is arrays["W"]
    assert not np.array_equal(arrays["W"], net0.W)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_copy_and_astype_are_independent_of_the_original(name):
    net = small_models(seed=7)[name]
    for other in (net.copy(), net.astype(np.float32)):
        for key, value in other.params().items():
            assert not np.shares_memory(value, net.params()[key]), key


def test_genetic_and_hebbian_leave_a_read_only_source_unchanged():
    net0 = fr.RateRNN.random(n=6, n_in=1, n_out=1, g=0.9, seed=8)
    frozen = _read_only(net0.params())
    task = fr.tasks.PerceptualDecision(T=6)
    for rule, kwargs in (
        (fr.train.genetic, {"generations": 2, "population": 4, "survivors": 2}),
        (fr.train.hebbian, {"iters": 2, "batch_size": 2}),
    ):
        net = fr.RateRNN(**frozen, copy=False)
        rule(net, task, val_every=None, progress=False, **kwargs)
        assert not np.array_equal(net.W, net0.W), rule.__name__
        for key, value in frozen.items():
            np.testing.assert_array_equal(value, net0.params()[key], err_msg=key)
