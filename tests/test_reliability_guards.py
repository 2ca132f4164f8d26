"""Input guards of issue 18: negative or non-finite masks, an empty FORCE target and a
missing checkpoint folder are errors naming the argument, raised before any work."""

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn.tasks.base import FixedTrials, Trials


def _net(n=5, seed=0):
    return fr.RateRNN.random(n=n, n_in=1, n_out=1, g=0.9, seed=seed)


def _trials(mask_value, T=6, B=3):
    rng = np.random.default_rng(0)
    mask = np.ones((T, B, 1))
    mask[2, 1, 0] = mask_value
    return Trials(rng.normal(size=(T, B, 1)), rng.normal(size=(T, B, 1)), mask)


BAD_MASKS = [-1.0, -1e-300, np.nan, np.inf]


@pytest.mark.parametrize("value", BAD_MASKS)
def test_loss_and_grad_rejects_a_negative_or_non_finite_mask(value):
    with raises_naming("mask", ValueError):
        fr.train.loss_and_grad(_net(), _trials(value))


@pytest.mark.parametrize("value", BAD_MASKS)
def test_fixed_trials_reject_a_negative_or_non_finite_mask(value):
    with raises_naming("mask", ValueError):
        FixedTrials(fr.tasks.PerceptualDecision(T=6), _trials(value))


class _TrialsTask(fr.tasks.base.Task):
    """Hands out given trials (any mask), counting the batches drawn."""

    def __init__(self, trials):
        self.trials, self.batches = trials, 0
        self.n_in, self.n_out, self.T, self.dt, self.name = 1, 1, trials.T, 1.0, "given"

    def _generate(self, B, rng, dtype):
        self.batches += 1
        t = self.trials
        return Trials(t.u.astype(dtype), t.target.astype(dtype), t.mask.astype(dtype))

    def _correct(self, y, trials):
        return np.ones(y.shape[1], bool)


RULES = {
    "bptt": lambda net, task, **kw: fr.train.bptt(net, task, iters=2, batch_size=3, **kw),
    "genetic": lambda net, task, **kw: fr.train.genetic(
        net, task, generations=2, population=3, survivors=1, batch_size=3, **kw
    ),
    "hebbian": lambda net, task, **kw: fr.train.hebbian(net, task, iters=2, batch_size=3, **kw),
    "force": lambda net, task, **kw: fr.train.force(net, task, iters=2, batch_size=3, **kw),
    "full_force": lambda net, task, **kw: fr.train.full_force(
        net, task, iters=2, batch_size=3, **kw
    ),
}


@pytest.mark.parametrize("rule", ["bptt", "genetic", "force", "full_force"])
@pytest.mark.parametrize("value", [-0.5, np.nan])
def test_every_rule_rejects_a_negative_or_non_finite_mask(rule, value):
    net = _net()
    W = net.W.copy()
    with raises_naming("mask", ValueError):
        RULES[rule](net, _TrialsTask(_trials(value)), val_every=None, progress=False)
    np.testing.assert_array_equal(net.W, W)


def test_validation_loss_rejects_a_negative_mask():
    with raises_naming("mask", ValueError):
        fr.train.task_loss(np.zeros((6, 3, 1)), _trials(-1.0))


def test_a_zero_mask_is_still_accepted():
    value, grads = fr.train.loss_and_grad(_net(), _trials(0.0))
    assert np.isfinite(value) and set(grads) == set(_net().params())


@pytest.mark.parametrize("target", [np.zeros(0), np.zeros((0, 1))])
def test_force_with_an_empty_target_raises_naming_target(target):
    net = _net()
    W_out = net.W_out.copy()
    with raises_naming("target", ValueError):
        fr.train.force(net, target, progress=False)
    np.testing.assert_array_equal(net.W_out, W_out)


def test_force_with_a_one_step_target_still_learns():
    net = _net(seed=1)
    hist = fr.train.force(net, np.ones(1), progress=False, x0=np.full(net.n, 0.3))
    assert hist.updates == 1


@pytest.mark.parametrize("rule", ["bptt", "genetic", "hebbian"])
def test_missing_checkpoint_folder_is_reported_before_any_work(rule, tmp_path):
    net = _net()
    W = net.W.copy()
    task = _TrialsTask(_trials(1.0))
    path = tmp_path / "no" / "such" / "folder" / "run.npz"
    with raises_naming("checkpoint", ValueError) as info:
        RULES[rule](net, task, val_every=None, progress=False, checkpoint=path)
    assert str(path.parent) in str(info.value)
    assert task.batches == 0
    np.testing.assert_array_equal(net.W, W)


def test_checkpoint_path_that_is_a_folder_is_reported_before_any_work(tmp_path):
    task = _TrialsTask(_trials(1.0))
    with raises_naming("checkpoint", ValueError):
        fr.train.bptt(_net(), task, iters=2, progress=False, checkpoint=tmp_path)
    assert task.batches == 0


def test_mop_training_reports_a_missing_checkpoint_folder_before_any_epoch(tmp_path):
    env = fr.mop.RNNEnv.random(n=6, n_bits=2, g=1.5, rho=1.0, dt=0.2,
                               terminal=fr.mop.Energy(0.52))  # fmt: skip
    agent = fr.mop.MOPAgent(env, hidden=4, updates=2, batch_size=8)
    theta = agent.theta.copy()
    with raises_naming("checkpoint", ValueError):
        agent.train(epochs=2, trajectories=2, horizon=5, progress=False,
                    checkpoint=tmp_path / "missing" / "mop.npz")  # fmt: skip
    assert agent.epoch == 0
    np.testing.assert_array_equal(agent.theta, theta)
