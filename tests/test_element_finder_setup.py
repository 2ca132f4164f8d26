"""The NM-RNN study's element-finder setup (its initialisation and trained parameters) and the
callback that keeps the parameters of the update with the lowest batch loss."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn.presets import costacurta2024, costacurta2024_trainable, parameter_count


def _ef_nmrnn(seed=0, n=18, rank=8, n_mod=5):
    return costacurta2024("NMRNN", n=n, rank=rank, n_mod=n_mod, n_in=1, n_out=1, tau_x=2.0,
                          tau_z=10.0, setup="element_finder", seed=seed)  # fmt: skip


def test_element_finder_nmrnn_is_the_studys_element_finder_network():
    net = _ef_nmrnn()
    assert net.n_scale == 18.0 and net.parametrize is None  # raw factors, divided by N
    assert net.tau_x == 2.0 and net.tau_z == 10.0
    np.testing.assert_array_equal(net.d, 0.0)
    assert net.W_zx is not None and net.W_zx.shape == (5, 18)
    assert np.unique(net.x0).size == 18 and np.all(net.z0 != 0.1)  # drawn, not 0.1
    # scales of the draws (a larger network so that the sample std is close)
    big = _ef_nmrnn(n=4000, rank=50, n_mod=400)
    for name, std in [("U", 1 / np.sqrt(50)), ("V", 1 / np.sqrt(50)), ("W_z", 1 / 20),
                      ("A_z", 1 / 20), ("C", 1 / np.sqrt(4000)), ("W_zx", 1 / np.sqrt(4000)),
                      ("B_x", 1.0), ("x0", 1 / np.sqrt(4000))]:  # fmt: skip
        assert np.std(getattr(big, name)) == pytest.approx(std, rel=0.05), name
    trained = costacurta2024_trainable(net, setup="element_finder")
    assert "b_z" in trained and "W_zx" in trained
    assert not {"d", "x0", "z0"} & set(trained)
    assert parameter_count(net, trained) == 497
    # the timing setup's choice is unchanged: b_z is not trained there
    assert "b_z" not in costacurta2024_trainable(net)


def test_element_finder_lstm_draws_its_states_and_has_no_readout_bias():
    net = costacurta2024("LSTM", n=10, n_in=1, n_out=1, setup="element_finder", seed=3)
    np.testing.assert_array_equal(net.d, 0.0)
    assert np.all(net.h0 != 0.1) and np.all(net.c0 != 0.1)
    trained = costacurta2024_trainable(net, setup="element_finder")
    assert trained == ["W_ih", "W_hh", "b", "C"]
    assert parameter_count(net, trained) == 490  # the study's 10-unit LSTM
    same = costacurta2024("LSTM", n=10, n_in=1, n_out=1, setup="element_finder", seed=3)
    np.testing.assert_array_equal(same.W_hh, net.W_hh)


def test_element_finder_setup_bad_input_is_named():
    with raises_naming("setup", ValueError):
        costacurta2024("NMRNN", n=4, rank=1, n_mod=2, n_in=1, n_out=1, setup="timming")
    with raises_naming("model", ValueError):
        costacurta2024("RateRNN", n=4, n_in=1, n_out=1, setup="element_finder")
    with raises_naming("setup", ValueError):
        costacurta2024_trainable(_ef_nmrnn(), setup="element-finder")


def test_keep_lowest_loss_keeps_the_parameters_after_the_lowest_loss_update():
    task = fr.tasks.ElementFinder(length=5, max_value=3)
    net = _ef_nmrnn(seed=1, n=8, rank=2, n_mod=3)
    after = []  # the parameters after every update

    best = fr.train.KeepLowestLoss()

    def record(it, hist, model):
        after.append({k: v.copy() for k, v in model.params().items()})
        return best(it, hist, model)

    hist = fr.train.bptt(net, task, iters=40, batch_size=16, optimizer=fr.train.Adam(0.05),
                         val_every=None, progress=False, seed=2, callback=record)  # fmt: skip
    k = int(np.argmin(hist.loss))
    assert best.loss == pytest.approx(float(np.min(hist.loss)), rel=0, abs=0)
    assert best.update == k + 1
    assert k != len(hist.loss) - 1  # a case where the last parameters are not the kept ones
    final = {name: p.copy() for name, p in net.params().items()}
    u_array = net.U  # restore writes into the model's own arrays
    best.restore(net)
    assert net.U is u_array
    for name, p in net.params().items():
        np.testing.assert_array_equal(p, after[k][name])
    assert any(not np.array_equal(final[n], after[k][n]) for n in final)


def test_keep_lowest_loss_errors_are_named():
    best = fr.train.KeepLowestLoss()
    with pytest.raises(RuntimeError, match="restore"):
        best.restore(_ef_nmrnn())
    task = fr.tasks.ElementFinder(length=4, max_value=2)
    net = _ef_nmrnn(n=6, rank=2, n_mod=2)
    fr.train.bptt(net, task, iters=3, batch_size=8, val_every=None, progress=False,
                  callback=best)  # fmt: skip
    with raises_naming("net", ValueError):
        best.restore(costacurta2024("LSTM", n=3, n_in=1, n_out=1, setup="element_finder"))
    with raises_naming("net", ValueError):
        best.restore(_ef_nmrnn(n=7, rank=2, n_mod=2))
