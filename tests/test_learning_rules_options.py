"""The learning-rule study's training options: random initial states per update and a fixed
validation set in BPTT, ``x0`` in loss_and_grad."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn.train import gradients


def small_net(seed=0):
    return fr.RateRNN.random(n=8, n_in=1, n_out=1, g=0.8, seed=seed)


def short_task():
    return fr.tasks.PerceptualDecision(T=20)


def test_loss_and_grad_x0_is_the_initial_state_of_the_trials():
    net = small_net()
    trials = short_task().batch(5, 0)
    x0 = np.random.default_rng(1).normal(size=(5, 8))
    value, _, y = fr.train.loss_and_grad(net, trials, x0=x0, return_output=True)
    np.testing.assert_array_equal(y, net.run(trials.u, x0=x0).y)
    assert value != fr.train.loss_and_grad(net, trials)[0]


def test_bptt_x0_std_draws_new_initial_states_every_update(monkeypatch):
    seen = []
    original = gradients.loss_and_grad

    def spy(net, trials, **kwargs):
        seen.append(kwargs.get("x0"))
        return original(net, trials, **kwargs)

    monkeypatch.setattr(gradients, "loss_and_grad", spy)
    net = small_net()
    x0_before = net.x0.copy()
    fr.train.bptt(net, short_task(), iters=3, batch_size=400, x0_std=0.3, trainable=["W"],
                  val_every=None, progress=False)  # fmt: skip
    assert len(seen) == 3
    for x0 in seen:
        assert x0.shape == (400, 8)
        assert np.std(x0) == pytest.approx(0.3, rel=0.05)
        assert abs(np.mean(x0)) < 0.03
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])
    np.testing.assert_array_equal(net.x0, x0_before)  # not trained (W only)


def test_bptt_with_x0_std_is_reproducible_and_differs_from_the_fixed_start():
    runs = []
    for x0_std in (0.3, 0.3, 0.0):
        net = small_net()
        fr.train.bptt(net, short_task(), iters=3, batch_size=16, x0_std=x0_std,
                      val_every=None, progress=False, seed=4)  # fmt: skip
        runs.append(net.W.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_bptt_validates_on_the_fixed_validation_set():
    task = short_task()
    val = task.batch(300, np.random.default_rng(9))
    net = small_net()
    hist = fr.train.bptt(net, task, iters=4, batch_size=16, val_every=2, val_trials=val,
                         progress=False)  # fmt: skip
    assert len(hist.val_accuracy) == 2
    assert hist.val_accuracy[-1] == pytest.approx(task.score(net.run(val.u).y, val))


def test_bptt_validation_with_x0_std_uses_one_fixed_draw_of_initial_states():
    task = short_task()
    val = task.batch(300, np.random.default_rng(9))
    accuracies = []
    for _ in range(2):
        net = small_net()
        hist = fr.train.bptt(net, task, iters=2, batch_size=16, val_every=1, val_trials=val,
                             x0_std=0.3, schedule=lambda it: 0.0, progress=False)  # fmt: skip
        accuracies.append(hist.val_accuracy)
    # lr 0: the network does not change, nor does the validation (same trials, same states)
    assert accuracies[0][0] == accuracies[0][1] == accuracies[1][0]


def test_bptt_study_options_reject_bad_values():
    net, task = small_net(), short_task()
    with raises_naming("x0_std"):
        fr.train.bptt(net, task, iters=1, x0_std=-1.0, progress=False)
    with raises_naming("val_trials"):
        fr.train.bptt(net, task, iters=1, val_trials=np.zeros(3), progress=False)
    with raises_naming("val_trials"):
        bad = fr.tasks.ContextIntegration(2, T=20).batch(4, 0)
        fr.train.bptt(net, task, iters=1, val_trials=bad, progress=False)
    with raises_naming("x0_std"):
        fr.train.bptt(fr.LSTM.random(4, 1, 1), task, iters=1, x0_std=0.3, progress=False)
