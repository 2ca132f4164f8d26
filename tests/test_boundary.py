"""A model crosses into C++ as bound objects (parameters, options, drive), built in one place."""

from __future__ import annotations

import pickle

import flexrnn as fr
import numpy as np
import pytest
from flexrnn import _core
from flexrnn.reference import names
from flexrnn.train.gradients import loss_and_grad


def test_name_tables_list_the_core_enums_in_their_order():
    assert tuple(_core.Phi.__members__) == names.PHI_NAMES
    assert tuple(_core.Form.__members__) == names.FORMS
    assert tuple(_core.Readout.__members__) == names.READOUTS
    assert tuple(_core.Loss.__members__) == names.LOSSES


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_rate_kernel_object_holds_the_models_arrays_without_copies(dtype):
    nets = (fr.RateRNN.random(6, 2, 1, dtype=dtype), fr.LowRankRNN.random(6, 2, 2, 1, dtype=dtype))
    for net in nets:
        params = net._kernel()
        recurrent = ("U", "V") if net.low_rank else ("W",)
        for name in (*recurrent, "W_in", "b", "W_out", "b_out"):
            assert getattr(params, name) is getattr(net, name), name
        assert (params.n, params.n_in, params.n_out) == (net.n, net.n_in, net.n_out)
        assert params.dtype == net.dtype
        assert net._kernel() is params  # kept while the arrays are the same objects


def test_rate_kernel_object_follows_a_reassigned_parameter():
    net = fr.RateRNN.random(6, 2, 1)
    before = net._kernel()
    net.W = np.zeros((6, 6))
    after = net._kernel()
    assert after is not before and after.W is net.W
    fresh = fr.RateRNN(np.zeros((6, 6)), net.W_in, net.W_out, tau=net.tau, dt=net.dt)
    u = np.ones((3, 1, 2))
    np.testing.assert_array_equal(net.run(u).x, fresh.run(u).x)


def test_in_place_updates_reach_the_kernel_without_rebuilding():
    net = fr.RateRNN.random(6, 2, 1, seed=1)
    u = np.ones((4, 2, 2))
    y0 = net.run(u).y
    net.W_out *= 2  # what the trainers do
    np.testing.assert_array_equal(net.run(u).y, 2 * y0 - net.b_out)  # b_out is zero


def test_models_state_their_capabilities_as_data():
    rate, low = fr.RateRNN.random(4, 1, 1), fr.LowRankRNN.random(4, 1, 1, 1)
    nm, lstm = fr.NMRNN.random(4, 1, 2, 1, 1), fr.LSTM.random(4, 1, 1)
    assert [m.takes_gain for m in (rate, low, nm, lstm)] == [True, True, False, False]
    assert [m.low_rank for m in (rate, low, nm, lstm)] == [False, True, True, False]
    assert [m.has_modulator for m in (rate, low, nm, lstm)] == [False, False, True, False]
    for m in (rate, low, nm, lstm):
        assert set(m.kernels) >= {"rollout", "loss_and_grad"}


def test_a_model_with_its_kernel_object_cached_still_pickles():
    net = fr.RateRNN.random(5, 1, 1)
    net.run(np.zeros((2, 1, 1)))
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again.run(np.ones((3, 1, 1))).x, net.run(np.ones((3, 1, 1))).x)


def test_options_take_enum_values_or_names_and_name_a_bad_one():
    a = _core.RateOptions(0.2, _core.Phi.relu, _core.Form.rate, _core.Readout.state, 0.5, 7)
    b = _core.RateOptions(0.2, "relu", "rate", "state", 0.5, 7)
    for field in ("alpha", "phi", "form", "readout", "noise_std", "seed"):
        assert getattr(a, field) == getattr(b, field)
    with pytest.raises(ValueError, match="phi"):
        _core.RateOptions(phi="sigmoid")
    with pytest.raises(TypeError, match="form"):
        _core.RateOptions(form=3)


def test_drive_of_another_dtype_than_the_parameters_is_a_type_error():
    net = fr.RateRNN.random(4, 1, 1, dtype="float32")
    drive = _core.RateDrive(np.zeros((2, 1, 1)), np.zeros((1, 4)))  # float64
    with pytest.raises(TypeError, match="drive"):
        _core.rate_rollout(net._kernel(), net._options(), drive)


def test_loss_and_grad_goes_through_the_models_kernels():
    calls = []

    class Recording(fr.RateRNN):
        kernels = {
            **fr.RateRNN.kernels,
            "loss_and_grad": lambda *a: calls.append(a) or fr.RateRNN.kernels["loss_and_grad"](*a),
        }

    net = Recording.random(5, 1, 1)
    trials = fr.tasks.PerceptualDecision(T=10).batch(2, np.random.default_rng(0))
    loss_and_grad(net, trials)
    params, options, drive, loss = calls[0][:4]
    assert params is net._kernel() and loss == _core.Loss.mse
    assert isinstance(options, _core.RateOptions) and isinstance(drive, _core.RateDrive)


def test_lstm_kernel_object_holds_the_models_arrays_without_copies():
    net = fr.LSTM.random(5, 2, 1, dtype="float32")
    params = net._kernel()
    for name in ("W_ih", "W_hh", "b", "C", "d"):
        assert getattr(params, name) is getattr(net, name), name
    assert (params.n, params.n_in, params.n_out) == (5, 2, 1)
    assert net._kernel() is params
    with pytest.raises(TypeError):  # a converted copy would not be the model's array
        _core.LSTMParams(net.W_ih.astype(np.float64), net.W_hh, net.b, net.C, net.d)
