"""from_neurogym: NeuroGym environments in the Trials form.

Skipped only when NeuroGym is not installed (and then a failure when the environment variable
FLEXRNN_REQUIRE_NEUROGYM is set, as in CI, which installs the extra). Installed, NeuroGym is
imported the way flexrnn imports it (without PyTorch), and a failing import is an error.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings

import numpy as np
import pytest
from conftest import raises_naming
from flexrnn import tasks
from flexrnn.tasks.neurogym_adapter import _import_neurogym

if importlib.util.find_spec("neurogym") is None:
    if os.environ.get("FLEXRNN_REQUIRE_NEUROGYM"):
        raise RuntimeError("FLEXRNN_REQUIRE_NEUROGYM is set but NeuroGym is not installed")
    pytest.skip("NeuroGym is not installed", allow_module_level=True)
neurogym, _ = _import_neurogym()
pytestmark = pytest.mark.filterwarnings("ignore:.*render_modes:UserWarning")  # gymnasium on make

ENV = "PerceptualDecisionMaking-v0"


@pytest.fixture(scope="module")
def labels_task():
    return tasks.from_neurogym(ENV)


@pytest.fixture(scope="module")
def onehot_task():
    return tasks.from_neurogym(ENV, target="onehot")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_labels_batch_follows_the_cross_entropy_contract(labels_task, dtype):
    task = labels_task
    assert task.loss == "cross_entropy"
    assert task.n_in == 3 and task.n_out == 3 and task.dt == 100.0
    trials = task.batch(12, 0, dtype=dtype)
    assert trials.u.shape == (task.T, 12, task.n_in) and trials.u.dtype == dtype
    assert trials.target.shape == (task.T, 12) and trials.target.dtype == np.int64
    assert trials.mask.shape == (task.T, 12) and trials.mask.dtype == dtype
    assert trials.target.min() >= 0 and trials.target.max() < task.n_out
    for value in trials.info.values():
        assert np.shape(value)[0] == 12


def test_onehot_batch_is_the_one_hot_of_the_labels(labels_task, onehot_task):
    a, b = labels_task.batch(10, 3), onehot_task.batch(10, 3)
    assert onehot_task.loss == "mse"
    assert b.target.shape == (onehot_task.T, 10, onehot_task.n_out)
    assert b.mask.shape == b.target.shape and b.target.dtype == np.float64
    np.testing.assert_array_equal(b.target.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(b.target.argmax(axis=-1), a.target)
    np.testing.assert_array_equal(b.mask[:, :, 0], a.mask)
    np.testing.assert_array_equal(a.u, b.u)


def test_same_seed_gives_the_same_batch(labels_task):
    a, b = labels_task.batch(8, 42), labels_task.batch(8, np.random.default_rng(42))
    np.testing.assert_array_equal(a.u, b.u)
    np.testing.assert_array_equal(a.target, b.target)
    c = labels_task.batch(8, 43)
    assert not np.array_equal(a.u, c.u)


def test_each_column_is_one_whole_trial(labels_task):
    trials = labels_task.batch(16, 1)
    info = trials.info
    b = np.arange(16)
    # PerceptualDecisionMaking: fixation label, then the choice (ground truth + 1) at decision
    np.testing.assert_array_equal(info["decision_label"], info["ground_truth"] + 1)
    np.testing.assert_array_equal(trials.target[info["decision_step"], b], info["decision_label"])
    assert (trials.target[0] == 0).all() and (trials.u[0, :, 0] == 1).all()  # fixation first
    np.testing.assert_array_equal(trials.mask.sum(axis=0), info["length"])


def test_decision_mask_counts_only_the_decision_period():
    task = tasks.from_neurogym(ENV, mask="decision")
    trials = task.batch(6, 2)
    selected = trials.mask > 0
    assert selected.any()
    assert (trials.target[selected] != 0).all()  # no fixation step inside the decision period
    assert (trials.mask[:-1] == 0).all()  # the decision is the last 100 ms (one step) here


def test_output_with_the_right_decision_scores_one_and_a_wrong_one_zero(labels_task):
    trials = labels_task.batch(20, 4)
    logits = np.eye(labels_task.n_out)[trials.target]  # (T, B, n_out)
    assert labels_task.score(logits, trials) == 1.0
    wrong = np.roll(logits, 1, axis=-1)
    assert labels_task.score(wrong, trials) == 0.0
    assert labels_task.per_trial_correct(logits, trials).shape == (20,)


def test_environment_without_a_decision_period_decides_at_the_last_response():
    task = tasks.from_neurogym("ReadySetGo-v0")
    trials = task.batch(5, 0)
    assert (trials.info["decision_label"] == 1).all()  # the "go" of the production period
    logits = np.eye(task.n_out)[trials.target]
    assert task.score(logits, trials) == 1.0


def test_environment_object_is_copied_and_env_kwargs_reach_make():
    env = neurogym.make(ENV)
    state = env.unwrapped.rng.get_state()[1].copy()
    task = tasks.from_neurogym(env)
    task.batch(4, 0)
    np.testing.assert_array_equal(env.unwrapped.rng.get_state()[1], state)
    fine = tasks.from_neurogym(ENV, dt=20)
    assert fine.dt == 20.0 and fine.T > task.T


def test_trials_longer_than_seq_len_are_cut_with_a_warning():
    task = tasks.from_neurogym(ENV, seq_len=10)
    with pytest.warns(RuntimeWarning, match="seq_len"):
        trials = task.batch(3, 0)
    assert trials.u.shape[0] == 10 and (trials.info["length"] == 10).all()


def test_padding_is_masked_out():
    task = tasks.from_neurogym(ENV, seq_len=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        trials = task.batch(3, 0)
    assert (trials.mask[22:] == 0).all() and (trials.u[22:] == 0).all()


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: tasks.from_neurogym(ENV, target="values"), "target"),
        (lambda: tasks.from_neurogym(ENV, mask="some"), "mask"),
        (lambda: tasks.from_neurogym(ENV, seq_len=0), "seq_len"),
        (lambda: tasks.from_neurogym("NoSuchTask-v0"), "env"),
        (lambda: tasks.from_neurogym(3), "env"),
        (lambda: tasks.from_neurogym("ReachingDelayResponse-v0"), "env"),
        (lambda: tasks.from_neurogym("ReadySetGo-v0", mask="decision"), "mask"),
        (lambda: tasks.from_neurogym(neurogym.make(ENV), dt=20), "env_kwargs"),
    ],
    ids=[
        "target",
        "mask",
        "seq_len",
        "unknown-id",
        "not-an-env",
        "box-actions",
        "no-decision-period",
        "env_kwargs",
    ],
)
def test_bad_arguments_raise_naming_the_argument(call, name):
    with raises_naming(name):
        call()


def test_neurogym_imports_without_pytorch_and_says_what_needs_it():
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("PyTorch is installed: NeuroGym's own probes are in use")
    assert "torch" not in sys.modules
    from neurogym.wrappers.components.probes.activation import ActivationProbe

    with pytest.raises(ImportError, match="activation probes .* need PyTorch"):
        ActivationProbe(None)
