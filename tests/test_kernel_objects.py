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


def _mop_net(n=6, n_bits=2, seed=0, **kw):
    kw = {"form": "rate", "phi": "tanh", **kw}
    return fr.RateRNN.random(n=n, n_in=n_bits, n_out=1, seed=seed, **kw)


def test_mop_environment_is_built_from_the_networks_own_kernel_objects():
    envs = [fr.mop.RNNEnv(_mop_net(seed=s), rho=1.5, noise_std=0.1, noise_samples=3)
            for s in (0, 1)]  # fmt: skip
    kenv = envs[0].kernel_env(envs)
    assert isinstance(kenv, _core.MopRnnEnv)
    assert (kenv.P, kenv.n, kenv.n_bits) == (2, 6, 2)
    assert (kenv.rho, kenv.noise_std, kenv.noise_samples) == (1.5, 0.1, 3)
    assert kenv.options.phi == _core.Phi.tanh and kenv.options.form == _core.Form.rate
    assert kenv.options.alpha == envs[0].alpha
    assert isinstance(envs[0].kernel_env(envs[:1]), _core.MopRnnEnv)
    assert fr.mop.CartPole().kernel_env([fr.mop.CartPole()] * 3).P == 3


def test_mop_environment_needs_a_model_that_states_it_can_drive_one():
    low = fr.LowRankRNN.random(n=6, rank=1, n_in=2, n_out=1)
    assert "mop_env" not in low.kernels and "mop_env" in fr.RateRNN.kernels
    with pytest.raises(TypeError, match="net"):
        fr.mop.RNNEnv(low)


def test_mop_environment_object_rejects_what_the_kernel_cannot_run():
    net = _mop_net()
    with pytest.raises(TypeError, match="LowRankRNNParams"):
        low = fr.LowRankRNN.random(n=6, rank=1, n_in=2, n_out=1)
        _core.MopRnnEnv([low._kernel()], low._options(), rho=1.0)
    with pytest.raises(ValueError, match="form"):
        _core.MopRnnEnv([net._kernel()], _core.RateOptions(0.1, "tanh", "current"), rho=1.0)
    with pytest.raises(ValueError, match="phi"):
        _core.MopRnnEnv([net._kernel()], _core.RateOptions(0.1, "softplus", "rate"), rho=1.0)
    with pytest.raises(ValueError, match="nets"):
        _core.MopRnnEnv([net._kernel(), _mop_net(n=7)._kernel()], net._options(), rho=1.0)
    with pytest.raises(ValueError, match="nets"):
        _core.MopRnnEnv([], net._options(), rho=1.0)
    with pytest.raises(ValueError, match="noise_samples"):
        _core.MopRnnEnv([net._kernel()], net._options(), rho=1.0, noise_samples=0)


def test_mop_kernel_names_an_environment_it_cannot_use():
    env = fr.mop.RNNEnv(_mop_net(n=12), terminal=fr.mop.Energy(0.45))
    agent = fr.mop.MOPAgent(env, hidden=4, gamma=0.9, seed=0)
    program, custom = env.programs()

    def epoch(kenv, theta):
        return _core.mop_epoch(kenv, agent._options(0), program, None, custom, theta,
                               agent.x0[None, None], np.zeros((1, 1), np.int64), 5,
                               np.ones(1, np.uint64), 0, None)  # fmt: skip

    assert epoch(env.kernel_env([env]), agent.theta[None])["lifetime"].shape == (1, 1)
    with pytest.raises(TypeError, match="env"):
        epoch({"kind": "rnn"}, agent.theta[None])
    with pytest.raises(TypeError, match="env"):  # float64 networks, a float32 value network
        epoch(env.kernel_env([env]), agent.theta[None].astype(np.float32))


def test_mop_agent_and_fit_options_cross_as_bound_objects():
    env = fr.mop.RNNEnv(_mop_net(n=12), terminal=fr.mop.Energy(0.45))
    mop = fr.mop.MOPAgent(env, hidden=4, gamma=0.9, seed=0)
    r = fr.mop.RAgent(env, hidden=4, gamma=0.9, eps=0.25, seed=0)
    assert mop._options(0).agent == _core.MopAgentKind.mop
    opt = r._options(0)
    assert opt.agent == _core.MopAgentKind.reward and opt.eps == r.eps_at(0) == 0.25
    assert (opt.gamma, opt.hidden, opt.n_contexts, opt.scale) == (0.9, 4, 1, r.scale)
    fit = _core.MopFitOptions(lr=1e-3, updates=3, batch_size=8)
    assert (fit.lr, fit.updates, fit.batch_size) == (1e-3, 3, 8)


@pytest.mark.parametrize(
    ("name", "make"),
    [("hidden", lambda: _core.MopAgentOptions(_core.MopAgentKind.mop, 0.9, 0, 0, 0, 1, 0, 1)),
     ("n_contexts", lambda: _core.MopAgentOptions(_core.MopAgentKind.mop, 0.9, 0, 0, 0, 1, 4, 0)),
     ("updates", lambda: _core.MopFitOptions(1e-3, -1, 8)),
     ("batch_size", lambda: _core.MopFitOptions(1e-3, 3, 0))],
)  # fmt: skip
def test_mop_options_out_of_range_name_the_field(name, make):
    with pytest.raises(ValueError, match=name):
        make()
