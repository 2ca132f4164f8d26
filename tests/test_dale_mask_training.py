"""Every learning rule keeps a RateRNN's connectivity mask and Dale's-law signs."""

from __future__ import annotations

import flexrnn as fr
import numpy as np
import pytest


def _ei_net(n=40, seed=0):
    """A 90 %-sparse (p = 0.1), zero-diagonal E/I network."""
    return fr.RateRNN.random(n, 1, 1, g=1.5, p=0.1, zero_diag=True, dale=0.8, seed=seed)


def _assert_structure_kept(net, mask, cell_type, W0):
    assert (net.W[~mask] == 0).all(), "a masked weight changed"
    exc = cell_type > 0
    assert (net.W[:, exc] >= 0).all() and (net.W[:, ~exc] <= 0).all(), "a sign flipped"
    np.testing.assert_array_equal(net.mask, mask)
    np.testing.assert_array_equal(net.cell_type, cell_type)
    assert not np.array_equal(net.W, W0), "the rule did not train W"


TASK = fr.tasks.PerceptualDecision(T=40)


def _bptt(net):
    fr.train.bptt(net, TASK, iters=5, batch_size=8, lr=0.05, val_every=None, progress=False)


def _full_force(net):
    fr.train.full_force(net, TASK, iters=3, batch_size=4, alpha=1.0, g_teacher=1.0,
                        response_steps=10, val_every=None, progress=False)  # fmt: skip


def _genetic(net):
    fr.train.genetic(net, TASK, generations=4, population=8, survivors=2, sigma=0.2,
                     batch_size=8, val_every=None, progress=False)  # fmt: skip


def _hebbian(net):
    fr.train.hebbian(net, TASK, iters=4, batch_size=4, kick_prob=0.2, window=10, eta=0.5,
                     val_every=None, progress=False)  # fmt: skip


@pytest.mark.parametrize("train", [_bptt, _full_force, _genetic, _hebbian],
                         ids=["bptt", "full_force", "genetic", "hebbian"])  # fmt: skip
def test_rule_keeps_masked_weights_zero_and_every_sign(train):
    net = _ei_net()
    mask, cell_type, W0 = net.mask.copy(), net.cell_type.copy(), net.W.copy()
    train(net)
    _assert_structure_kept(net, mask, cell_type, W0)


def test_bptt_without_the_mask_would_fill_the_masked_weights():
    # the property above is not vacuous: the unconstrained gradient reaches absent connections
    net = _ei_net()
    trials = TASK.batch(8, np.random.default_rng(0))
    _, grads = fr.train.loss_and_grad(net, trials)
    assert (grads["W"][~net.mask] != 0).mean() > 0.5


def test_bptt_masked_gradient_keeps_adam_moments_zero_off_the_mask():
    net = _ei_net()
    opt = fr.train.Adam(0.05)
    fr.train.bptt(net, TASK, iters=3, batch_size=8, optimizer=opt, val_every=None,
                  progress=False)  # fmt: skip
    state = opt.state_dict()
    for key in ("m/W", "v/W"):
        assert (state[key][~net.mask] == 0).all()
        assert (state[key][net.mask] != 0).mean() > 0.5


def test_force_trains_the_readout_and_leaves_w_exactly_as_it_was():
    net = _ei_net()
    W0, W_out0 = net.W.copy(), net.W_out.copy()
    fr.train.force(net, TASK, iters=2, batch_size=4, val_every=None, progress=False)
    np.testing.assert_array_equal(net.W, W0)
    assert not np.array_equal(net.W_out, W_out0)


def test_resumed_bptt_keeps_the_structure_of_the_network_given(tmp_path):
    net = _ei_net()
    mask = net.mask.copy()
    ckpt = tmp_path / "c.npz"
    fr.train.bptt(net, TASK, iters=2, batch_size=8, lr=0.05, val_every=None, progress=False,
                  checkpoint=ckpt)  # fmt: skip
    again = _ei_net()
    fr.train.bptt(again, TASK, iters=4, batch_size=8, lr=0.05, val_every=None,
                  progress=False, checkpoint=ckpt, resume=ckpt)  # fmt: skip
    assert (again.W[~mask] == 0).all()


def test_checkpoint_holds_the_structure_and_resume_rejects_another(tmp_path):
    net = _ei_net()
    ckpt = tmp_path / "c.npz"
    fr.train.bptt(net, TASK, iters=2, batch_size=8, lr=0.05, val_every=None, progress=False,
                  checkpoint=ckpt)  # fmt: skip
    saved = fr.train.load_checkpoint(ckpt).net
    np.testing.assert_array_equal(saved.mask, net.mask)
    np.testing.assert_array_equal(saved.cell_type, net.cell_type)
    other = _ei_net(seed=1)
    W = other.W.copy()
    with pytest.raises(ValueError, match="resume: .*mask"):
        fr.train.bptt(other, TASK, iters=4, batch_size=8, lr=0.05, val_every=None,
                      progress=False, resume=ckpt)  # fmt: skip
    np.testing.assert_array_equal(other.W, W)  # refused before the parameters were restored


def test_hebbian_resume_with_another_mask_is_refused_before_w_changes(tmp_path):
    net = _ei_net()
    ckpt = tmp_path / "h.npz"
    kwargs = dict(batch_size=4, kick_prob=0.2, window=10, val_every=None, progress=False)
    fr.train.hebbian(net, TASK, iters=1, checkpoint=ckpt, **kwargs)
    other = _ei_net(seed=1)
    W = other.W.copy()
    with pytest.raises(ValueError, match="resume: .*mask"):
        fr.train.hebbian(other, TASK, iters=2, resume=ckpt, **kwargs)
    np.testing.assert_array_equal(other.W, W)


def test_force_runs_on_a_structured_network_whose_w_is_read_only():
    # FORCE does not train W; the projection must not write into it
    net = _ei_net()
    W = net.W.copy()
    W.flags.writeable = False
    ro = fr.RateRNN(W, net.W_in, net.W_out, mask=net.mask, cell_type=net.cell_type, copy=False)
    fr.train.force(ro, TASK, iters=1, batch_size=2, val_every=None, progress=False)
    assert ro.W is W
