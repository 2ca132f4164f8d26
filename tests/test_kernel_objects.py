"""The NM-RNN's and the LSTM's runs cross into C++ as bound drive objects, and the NeuroMOP
environment as a bound environment object, each built in one place from the model."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest
from flexrnn import _core


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_nmrnn_drive_holds_the_checked_arrays_of_the_run(dtype):
    net = fr.NMRNN.random(n=6, rank=2, n_mod=3, n_in=2, n_out=1, seed=0, dtype=dtype)
    u = np.ones((4, 3, 2), dtype)
    params, options, drive = net._kernel_args(u, ablate=[1])
    assert params is net._kernel() and isinstance(options, _core.NMRNNOptions)
    assert isinstance(drive, _core.NMRNNDrive)
    assert drive.u is u  # already checked, C-contiguous and of the model's dtype: no copy
    assert drive.x0.shape == (3, 6) and drive.z0.shape == (3, 3)
    np.testing.assert_array_equal(drive.s_clamp, [np.nan, 0.0])
    assert net._kernel_args(u)[2].s_clamp is None
    x, _, z, _, _ = net.kernels["rollout"](params, options, drive)
    out = net.run(u, ablate=[1])
    np.testing.assert_array_equal(x, out.x)
    np.testing.assert_array_equal(z, out.z)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lstm_drive_holds_the_checked_arrays_of_the_run(dtype):
    net = fr.LSTM.random(n=5, n_in=2, n_out=1, seed=1, dtype=dtype)
    u = np.ones((4, 3, 2), dtype)
    params, drive = net._kernel_args(u, h0=np.full(5, 0.1))
    assert params is net._kernel() and isinstance(drive, _core.LSTMDrive)
    assert drive.u is u and drive.h0.shape == (3, 5) and drive.c0.shape == (3, 5)
    h, c, y = net.kernels["rollout"](params, drive)
    out = net.run(u, h0=np.full(5, 0.1))
    np.testing.assert_array_equal(h, out.h)
    np.testing.assert_array_equal(y, out.y)


def test_drive_of_another_dtype_than_the_parameters_is_a_type_error():
    nm = fr.NMRNN.random(n=4, rank=1, n_mod=2, n_in=1, n_out=1, dtype="float32")
    drive = _core.NMRNNDrive(np.zeros((2, 1, 1)), np.zeros((1, 4)), np.zeros((1, 2)))
    with pytest.raises(TypeError, match="drive"):
        _core.nmrnn_rollout(nm._kernel(), nm._options(), drive)
    lstm = fr.LSTM.random(n=4, n_in=1, n_out=1, dtype="float32")
    drive = _core.LSTMDrive(np.zeros((2, 1, 1)), np.zeros((1, 4)), np.zeros((1, 4)))
    with pytest.raises(TypeError, match="drive"):
        _core.lstm_rollout(lstm._kernel(), drive)


@pytest.mark.parametrize(
    ("name", "changes"),
    [("u", {"u": np.zeros((2, 1, 3))}), ("x0", {"x0": np.zeros((2, 4))}),
     ("z0", {"z0": np.zeros((1, 3))}), ("s_clamp", {"s_clamp": np.zeros(2)})],
)  # fmt: skip
def test_nmrnn_drive_of_the_wrong_shape_names_the_array(name, changes):
    net = fr.NMRNN.random(n=4, rank=1, n_mod=2, n_in=1, n_out=1)
    arrays = {"u": np.zeros((2, 1, 1)), "x0": np.zeros((1, 4)), "z0": np.zeros((1, 2)),
              "s_clamp": None, **changes}  # fmt: skip
    with pytest.raises(ValueError, match=name):
        _core.nmrnn_rollout(net._kernel(), net._options(), _core.NMRNNDrive(**arrays))


@pytest.mark.parametrize("name", ["u", "h0", "c0"])
def test_lstm_drive_of_the_wrong_shape_names_the_array(name):
    net = fr.LSTM.random(n=4, n_in=1, n_out=1)
    arrays = {"u": np.zeros((2, 1, 1)), "h0": np.zeros((1, 4)), "c0": np.zeros((1, 4))}
    arrays[name] = np.zeros((2, 1, 2)) if name == "u" else np.zeros((1, 5))
    with pytest.raises(ValueError, match=name):
        _core.lstm_rollout(net._kernel(), _core.LSTMDrive(**arrays))
