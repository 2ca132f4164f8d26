"""``agent.train(epochs=k)`` trains k more epochs; ``until=`` names the epoch to end at."""

import flexrnn as fr
import numpy as np
import pytest


def _agent():
    env = fr.mop.RNNEnv.random(n=6, n_bits=3, g=1.5, rho=1.0, dt=0.2, seed=0,
                               terminal=fr.mop.Energy(0.52))  # fmt: skip
    return fr.mop.MOPAgent(env, hidden=4, gamma=0.9, updates=2, batch_size=8, seed=1)


def test_train_twice_trains_the_epochs_of_both_calls():
    twice, once = _agent(), _agent()
    first = twice.train(epochs=2, trajectories=3, horizon=20, progress=False)
    second = twice.train(epochs=2, trajectories=3, horizon=20, progress=False)
    assert len(first) == 2 and len(second) == 2 and twice.epoch == 4
    whole = once.train(epochs=4, trajectories=3, horizon=20, progress=False)
    np.testing.assert_array_equal(twice.theta, once.theta)
    np.testing.assert_array_equal(second.lifetime, whole.lifetime[2:])


def test_until_trains_up_to_that_epoch_and_warns_when_already_there():
    agent = _agent()
    hist = agent.train(until=3, trajectories=3, horizon=20, progress=False)
    assert len(hist) == 3 and agent.epoch == 3
    hist = agent.train(until=5, trajectories=3, horizon=20, progress=False)
    assert len(hist) == 2 and agent.epoch == 5
    theta = agent.theta.copy()
    with pytest.warns(RuntimeWarning, match="already at epoch 5; nothing trained"):
        hist = agent.train(until=4, trajectories=3, horizon=20, progress=False)
    assert len(hist) == 0 and agent.epoch == 5
    np.testing.assert_array_equal(agent.theta, theta)


def test_train_needs_exactly_one_of_epochs_and_until():
    agent = _agent()
    with pytest.raises(TypeError, match="epochs .* or until"):
        agent.train(trajectories=3, horizon=20, progress=False)
    with pytest.raises(TypeError, match="epochs .* or until"):
        agent.train(epochs=1, until=1, trajectories=3, horizon=20, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        agent.train(epochs=-1, progress=False)
