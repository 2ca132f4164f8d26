"""Training-protocol options: frozen input columns, trainable groups, staged training with the
best parameters kept, and the NM-RNN study's presets."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn.presets import costacurta2024, costacurta2024_trainable, parameter_count


def _task():
    task = fr.tasks.MeasureWaitGo(intervals=[12, 14], measure_times=[10, 11])
    return task, fr.tasks.FixedTrials(task, task.training_set())


def _net(seed=0):
    return costacurta2024("NMRNN", n=12, rank=2, n_mod=3, n_in=3, n_out=1, seed=seed)


def test_frozen_columns_stay_bitwise_unchanged_under_adamw_decay():
    _, fixed = _task()
    net = _net()
    before = net.B_z.copy()
    hist = fr.train.bptt(net, fixed, iters=4, batch_size=4, lr=1e-2, optimizer="adamw",
                         weight_decay=0.5, freeze={"B_z": [0, 2]}, val_every=None,
                         progress=False)  # fmt: skip
    np.testing.assert_array_equal(net.B_z[:, [0, 2]], before[:, [0, 2]])
    assert not np.array_equal(net.B_z[:, 1], before[:, 1])
    # the recorded gradient norm leaves the frozen columns out
    net2 = _net()
    _, grads = fr.train.loss_and_grad(net2, fixed.trials)
    grads["B_z"][:, [0, 2]] = 0.0
    expected = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    assert hist.grad_norm[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "freeze, message",
    [
        ({"B_z": [3]}, "freeze"),
        ({"c_z": [0]}, "freeze"),  # 1-D
        ({"nope": [0]}, "freeze"),
        ({"B_z": []}, "freeze"),
        (["B_z"], "freeze"),
    ],
)
def test_bad_frozen_columns_are_named(freeze, message):
    _, fixed = _task()
    with raises_naming(message):
        fr.train.bptt(_net(), fixed, iters=1, batch_size=4, freeze=freeze, val_every=None,
                      progress=False)  # fmt: skip


def test_frozen_parameter_must_be_trainable():
    _, fixed = _task()
    with raises_naming("freeze"):
        fr.train.bptt(_net(), fixed, iters=1, batch_size=4, trainable=["U"],
                      freeze={"B_z": [0]}, val_every=None, progress=False)  # fmt: skip


def test_trainable_except_drops_groups_and_names():
    net = _net()
    assert fr.train.trainable_except(net, "initial_states", "biases") == [
        "W_z", "B_z", "A_z", "c_z", "U", "V", "B_x", "C"
    ]  # fmt: skip
    lstm = fr.LSTM.random(3, 1, 1)
    assert fr.train.trainable_except(lstm, "initial_states", "d") == ["W_ih", "W_hh", "b", "C"]
    with raises_naming("excluded"):
        fr.train.trainable_except(net, "weights")


def test_staged_training_trains_each_stage_subset_and_keeps_the_best():
    _, fixed = _task()
    net = _net()
    first = ["U", "V", "B_x", "C"]
    second = ["W_z", "B_z", "A_z", "c_z"]
    start = {k: v.copy() for k, v in net.params().items()}

    stages = [fr.train.Stage(first, iters=6, lr=1e-2, name="low-rank"),
              fr.train.Stage(second, iters=6, lr=1e-2)]  # fmt: skip
    result = fr.train.staged(net, fixed, stages, batch_size=4, weight_decay=1e-4,
                             clip_value=1.0, val_every=2, progress=False)  # fmt: skip
    assert result.names == ["low-rank", "stage 1"]
    assert [len(h) for h in result.histories] == [6, 6]
    for (iterations, losses), best in zip(result.validations, result.best):
        np.testing.assert_array_equal(iterations, [0, 2, 4, 6])
        assert best["loss"] == losses.min()
        assert best["iteration"] == iterations[np.argmin(losses)]
    # the network ends with the best parameters of the last stage
    final = fr.train.task_loss(net.run(fixed.trials.u).y, fixed.trials)
    assert final == result.best[-1]["loss"]
    # parameters outside both stages never moved; modulator ones only in stage 2
    for name in ("x0", "z0", "b_z", "d"):
        np.testing.assert_array_equal(net.params()[name], start[name])
    assert result.loss.shape == (12,)


def test_a_stage_ends_with_its_best_parameters_not_its_last():
    _, fixed = _task()
    net = _net()
    # a learning rate high enough to overshoot: the best of stage 0 is then not its end
    stages = [fr.train.Stage(["U", "V", "B_x", "C"], iters=8, lr=0.5)]
    result = fr.train.staged(net, fixed, stages, batch_size=4, val_every=1, progress=False)
    iterations, losses = result.validations[0]
    assert losses[-1] > losses.min()  # it did overshoot
    final = fr.train.task_loss(net.run(fixed.trials.u).y, fixed.trials)
    assert final == losses.min()


def test_staged_bad_arguments_are_named():
    _, fixed = _task()
    with raises_naming("stages"):
        fr.train.staged(_net(), fixed, [], progress=False)
    with raises_naming("val_every"):
        fr.train.staged(_net(), fixed, [fr.train.Stage(["U"], 1)], val_every=0, progress=False)
    with raises_naming("stages[0].iters"):
        fr.train.staged(_net(), fixed, [fr.train.Stage(["U"], 0)], progress=False)


@pytest.mark.parametrize(
    "model, sizes, count",
    [
        # the study's parameter-matched MWG networks (3 inputs, 1 output): the trained
        # parameters plus the readout bias d
        ("NMRNN", {"n": 100, "rank": 3, "n_mod": 5}, 1059),
        ("LowRankRNN", {"n": 106, "rank": 3}, 1061),
        ("RateRNN", {"n": 30}, 1021),
        ("LSTM", {"n": 14}, 1022),
    ],
)
def test_study_presets_have_the_studys_parameter_counts(model, sizes, count):
    net = costacurta2024(model, n_in=3, n_out=1, seed=0, **sizes)
    trained = costacurta2024_trainable(net)
    readout_bias = 0 if model == "LSTM" else 1  # the LSTM has none
    assert parameter_count(net, trained) + readout_bias == count
    for name in ("x0", "z0", "h0", "c0"):
        if name in net.params():
            assert (net.params()[name] == 0.1).all() and name not in trained
    if model in ("NMRNN", "LowRankRNN"):
        assert net.parametrize == "qr"


def test_study_nmrnn_initialisation_scales():
    net = costacurta2024("NMRNN", n=400, rank=20, n_mod=40, n_in=4, n_out=50, seed=1)
    assert np.std(net.W_z) == pytest.approx(0.1, rel=0.05)
    assert np.std(net.A_z) == pytest.approx(0.1, rel=0.1)
    assert np.std(net.B_z) == pytest.approx(0.5, rel=0.15)
    assert np.std(net.d) == pytest.approx(0.05, rel=0.25)
    assert (net.b_z == 0).all() and net.n_scale == 1.0
    assert net.W_zx is None
    ef = costacurta2024("NMRNN", n=18, rank=8, n_mod=5, n_in=1, n_out=1, feedback=True)
    assert ef.W_zx.shape == (5, 18)
    assert parameter_count(ef, costacurta2024_trainable(ef)) == 492  # about 500


def test_study_preset_bad_model_is_named():
    with raises_naming("model"):
        costacurta2024("GRU", n=3, n_in=1, n_out=1)
    with raises_naming("rank"):
        costacurta2024("LowRankRNN", n=3, n_in=1, n_out=1)
