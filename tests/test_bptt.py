"""BPTT trainer: optimisers, clipping, schedules, trainable subsets, determinism, checkpoints and
exact resumption, stopping, bad arguments. Uses a tiny task of its own (no flexrnn.tasks)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import flexrnn as fr
import numpy as np
import pytest
from conftest import raises_naming
from flexrnn import train

# ---------------------------------------------------------------------------------------------
# A tiny task: a pulse of random sign on the input during steps 2..5; report its sign during
# the last 5 steps. "mse": target +-1 (T, B, 1); "cross_entropy": labels 0/1 (T, B), 2 outputs.


@dataclass
class Trials:
    u: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    info: dict = field(default_factory=dict)


class PulseSign:
    name = "pulse_sign"
    dt = 1.0
    T = 20
    n_in = 1

    def __init__(self, loss="mse"):
        self.loss = loss
        self.n_out = 1 if loss == "mse" else 2

    def batch(self, B, rng, dtype=np.float64):
        sign = rng.choice([-1.0, 1.0], size=B)
        u = 0.1 * rng.standard_normal((self.T, B, 1))
        u[2:6, :, 0] += sign
        if self.loss == "mse":
            target = np.zeros((self.T, B, 1))
            target[-5:, :, 0] = sign
            mask = np.zeros((self.T, B, 1))
            mask[-5:] = 1.0
        else:
            target = np.broadcast_to((sign > 0).astype(np.int64), (self.T, B)).copy()
            mask = np.zeros((self.T, B))
            mask[-5:] = 1.0
        return Trials(u.astype(dtype), target.astype(target.dtype), mask.astype(dtype), {})

    def score(self, y, trials):
        if self.loss == "mse":
            decided = np.sign(y[-5:, :, 0].mean(axis=0))
            return float(np.mean(decided == trials.target[-1, :, 0]))
        decided = y[-5:].mean(axis=0).argmax(axis=-1)
        return float(np.mean(decided == trials.target[-1]))


@pytest.fixture(autouse=True)
def one_thread(restore_threads):
    """The networks here are tiny: on a busy 2-core machine, OpenMP threads waiting on each
    other cost far more than the work (results do not depend on the thread count)."""
    fr.set_num_threads(1)


def small_net(dtype=np.float64, n_out=1, seed=1):
    return fr.RateRNN.random(n=12, n_in=1, n_out=n_out, g=0.8, tau=4.0, seed=seed, dtype=dtype)


def quick(**kwargs):
    """Defaults of a fast run: small batches, no bar."""
    return {"batch_size": 8, "val_batch": 32, "progress": False, **kwargs}


def assert_params_equal(a, b):
    pa, pb = a.params(), b.params()
    assert pa.keys() == pb.keys()
    for name in pa:
        assert pa[name].dtype == pb[name].dtype, name
        np.testing.assert_array_equal(pa[name], pb[name], err_msg=name)


# ---------------------------------------------------------------------------------------------
# Optimisers


def _adam_by_hand(p, grads, lr, b1, b2, eps, wd=0.0):
    """Adam (AdamW when wd > 0) written from the paper's formula, in float64."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    for t, g in enumerate(grads, start=1):
        for k in p:
            p[k] = p[k] - lr * wd * p[k]
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            m_hat = m[k] / (1 - b1**t)
            v_hat = v[k] / (1 - b2**t)
            p[k] = p[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_adam_steps_match_the_formula(kind, dtype):
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(3, 4)).astype(dtype), "b": rng.normal(size=3).astype(dtype)}
    grads = [{k: rng.normal(size=v.shape).astype(dtype) for k, v in params.items()} for _ in "abcd"]
    lr, betas, eps, wd = 0.05, (0.8, 0.95), 1e-6, 0.1
    expected = _adam_by_hand(params, grads, lr, *betas, eps, wd if kind == "adamw" else 0.0)
    opt = train.Adam(lr, betas, eps) if kind == "adam" else train.AdamW(lr, betas, eps, wd)
    arrays = {k: v.copy() for k, v in params.items()}
    for g in grads:
        opt.step(arrays, g)
    assert opt.t == 4
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    for k in params:
        assert arrays[k].dtype == np.dtype(dtype) and opt.m[k].dtype == np.dtype(dtype)
        np.testing.assert_allclose(arrays[k], expected[k], rtol=rtol, atol=rtol, err_msg=k)


def test_step_lr_overrides_the_optimizer_lr():
    g = {"w": np.array([1.0, -2.0])}
    a, b = {"w": np.zeros(2)}, {"w": np.zeros(2)}
    train.Adam(0.1).step(a, g)
    train.Adam(1.0).step(b, g, lr=0.1)
    np.testing.assert_array_equal(a["w"], b["w"])
    np.testing.assert_allclose(a["w"], [-0.1, 0.1], rtol=1e-6)  # first Adam step: lr * sign(g)


def test_optimizer_state_dict_continues_identically():
    rng = np.random.default_rng(1)
    grads = [{"w": rng.normal(size=5)} for _ in range(6)]
    p1, opt1 = {"w": np.ones(5)}, train.AdamW(0.01)
    for g in grads:
        opt1.step(p1, g)
    p2, opt2 = {"w": np.ones(5)}, train.AdamW(0.01)
    for g in grads[:3]:
        opt2.step(p2, g)
    state = opt2.state_dict()
    opt3 = train.AdamW(0.01)
    opt3.load_state_dict(state)
    for g in grads[3:]:
        opt3.step(p2, g)
    np.testing.assert_array_equal(p1["w"], p2["w"])


# ---------------------------------------------------------------------------------------------
# Clipping and schedules


def test_clip_global_norm_rescales_all_gradients_and_returns_the_norm_before():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    norm = train.clip_global_norm(grads, 1.0)
    assert norm == 5.0
    np.testing.assert_allclose(grads["a"], [0.6, 0.0])
    np.testing.assert_allclose(grads["b"], [[0.8]])
    assert math.isclose(train.global_norm(grads), 1.0)
    small = {"a": np.array([0.1, 0.2])}
    before = small["a"].copy()
    assert math.isclose(train.clip_global_norm(small, 1.0), math.hypot(0.1, 0.2))
    np.testing.assert_array_equal(small["a"], before)  # below the threshold: untouched


def test_global_norm_of_large_float32_gradients_does_not_overflow():
    grads = {"a": np.full(4, 1e20, dtype=np.float32)}
    assert math.isclose(train.global_norm(grads), 2e20, rel_tol=1e-6)


def test_clip_value_clips_each_element_in_place():
    grads = {"a": np.array([-3.0, 0.5, 2.0])}
    out = train.clip_value(grads, 1.0)
    assert out is grads
    np.testing.assert_array_equal(grads["a"], [-1.0, 0.5, 1.0])


def test_schedules_give_the_documented_factors():
    assert [train.Constant().factor(i) for i in (0, 99)] == [1.0, 1.0]
    assert [train.StepDecay(10, 0.5).factor(i) for i in (0, 9, 10, 25)] == [1, 1, 0.5, 0.25]
    assert train.Exponential(0.9).factor(2) == pytest.approx(0.81)
    cos = train.Cosine(100, final=0.1)
    assert cos.factor(0) == 1.0
    assert cos.factor(50) == pytest.approx(0.55)
    assert cos.factor(100) == pytest.approx(0.1) and cos.factor(500) == pytest.approx(0.1)
    warm = train.LinearWarmup(4, after=train.StepDecay(2, 0.1))
    assert [warm.factor(i) for i in range(7)] == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 0.1])


def test_schedule_sets_each_iterations_lr_in_the_history():
    net, task = small_net(), PulseSign()
    hist = train.bptt(net, task, iters=6, lr=0.1, schedule=train.StepDecay(2, 0.5), **quick())
    np.testing.assert_allclose(hist.lr, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    hist = train.bptt(small_net(), task, iters=3, schedule=lambda it: 1e-3 * (it + 1), **quick())
    np.testing.assert_allclose(hist.lr, [1e-3, 2e-3, 3e-3])


# ---------------------------------------------------------------------------------------------
# The trainer


def test_trainable_subset_leaves_frozen_parameters_bitwise_unchanged():
    net = small_net()
    before = {k: v.copy() for k, v in net.params().items()}
    train.bptt(net, PulseSign(), iters=5, lr=0.05, trainable=["W", "W_out"], **quick())
    for name, value in net.params().items():
        if name in ("W", "W_out"):
            assert not np.array_equal(value, before[name]), name
        else:
            np.testing.assert_array_equal(value, before[name], err_msg=name)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_training_reduces_the_loss_and_learns_the_task(loss):
    task = PulseSign(loss)
    net = small_net(n_out=task.n_out)
    hist = train.bptt(net, task, iters=150, lr=0.03, val_every=25, **quick(batch_size=16))
    assert len(hist) == 150 and hist.stopped is None
    assert hist.loss[-20:].mean() < 0.3 * hist.loss[:5].mean()
    assert hist.val_iteration.tolist() == [25, 50, 75, 100, 125, 150]
    assert hist.val_accuracy[-1] >= 0.9
    assert hist.best["accuracy"] == hist.val_accuracy.max()
    assert np.all(hist.grad_norm > 0) and np.all(np.diff(hist.wall_time) >= 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: fr.LowRankRNN.random(n=12, rank=2, n_in=1, n_out=1, tau=4.0, seed=0),
        lambda: fr.NMRNN.random(n=12, rank=2, n_mod=3, n_in=1, n_out=1, tau_z=8.0, seed=0),
        lambda: fr.LSTM.random(n=8, n_in=1, n_out=1, seed=0),
    ],
    ids=["LowRankRNN", "NMRNN", "LSTM"],
)
def test_every_model_trains(make):
    net = make()
    hist = train.bptt(net, PulseSign(), iters=60, lr=0.02, val_every=20, **quick())
    assert hist.loss[-10:].mean() < 0.7 * hist.loss[:10].mean()
    assert len(hist.val_accuracy) == 3


def test_same_seed_gives_identical_parameters_and_history():
    runs = []
    for seed in (3, 3, 4):
        net = small_net(dtype=np.float32)
        hist = train.bptt(net, PulseSign(), iters=8, lr=0.02, val_every=4, seed=seed, **quick())
        runs.append((net, hist))
    assert_params_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1].loss, runs[1][1].loss)
    np.testing.assert_array_equal(runs[0][1].val_accuracy, runs[1][1].val_accuracy)
    assert not np.array_equal(runs[0][0].W, runs[2][0].W)


class Interrupted(Exception):
    pass


def _interrupt_after(k):
    def callback(iteration, history, net):
        if iteration == k:
            raise Interrupted

    return callback


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resume_continues_bitwise_identically_to_an_uninterrupted_run(dtype, tmp_path):
    # everything that carries state across iterations: AdamW moments, a schedule, clipping,
    # a gain drawn per batch, recurrent noise, validation batches, the history
    options = quick(
        lr=0.02,
        optimizer="adamw",
        schedule=train.Cosine(12, final=0.1),
        clip_norm=0.5,
        gain=lambda rng: rng.uniform(0.8, 1.2),
        noise_std=0.05,
        val_every=3,
        seed=7,
    )
    task = PulseSign()
    whole = small_net(dtype)
    whole_hist = train.bptt(whole, task, iters=12, **options)

    path = tmp_path / "run.npz"
    part = small_net(dtype)
    with pytest.raises(Interrupted):
        train.bptt(
            part,
            task,
            iters=12,
            checkpoint=path,
            checkpoint_every=4,
            callback=_interrupt_after(6),
            **options,
        )
    assert train.load_checkpoint(path).iteration == 4
    resumed = small_net(dtype, seed=99)  # other weights: resume must restore them
    hist = train.bptt(resumed, task, iters=12, resume=path, checkpoint=path, **options)

    assert_params_equal(resumed, whole)
    for name in ("loss", "grad_norm", "lr", "val_iteration", "val_accuracy", "val_loss"):
        np.testing.assert_array_equal(getattr(hist, name), getattr(whole_hist, name), name)
    assert train.load_checkpoint(path).iteration == 12


def test_resume_with_more_iterations_extends_a_finished_run(tmp_path):
    options = quick(lr=0.02, val_every=2, seed=1)
    whole = small_net()
    whole_hist = train.bptt(whole, PulseSign(), iters=8, **options)
    part = small_net()
    train.bptt(part, PulseSign(), iters=5, checkpoint=tmp_path / "c.npz", **options)
    hist = train.bptt(part, PulseSign(), iters=8, resume=tmp_path / "c.npz", **options)
    assert_params_equal(part, whole)
    np.testing.assert_array_equal(hist.loss, whole_hist.loss)
    np.testing.assert_array_equal(hist.val_accuracy, whole_hist.val_accuracy)
    assert hist.wall_time[5] >= hist.wall_time[4]  # time keeps counting across the resume


def test_resume_with_other_training_arguments_raises(tmp_path):
    path = tmp_path / "c.npz"
    train.bptt(small_net(), PulseSign(), iters=2, checkpoint=path, **quick())
    with raises_naming("resume") as info:
        train.bptt(small_net(), PulseSign(), iters=4, resume=path, **quick(batch_size=4))
    assert "batch_size" in str(info.value)
    with raises_naming("resume"):
        train.bptt(small_net(dtype=np.float32), PulseSign(), iters=4, resume=path, **quick())
    with raises_naming("iters"):
        train.bptt(small_net(), PulseSign(), iters=1, resume=path, **quick())
    with raises_naming("path"):
        train.bptt(small_net(), PulseSign(), iters=4, resume=tmp_path / "none.npz", **quick())


def test_checkpoint_holds_the_network_history_and_arguments(tmp_path):
    path = tmp_path / "c.npz"
    net = small_net()
    hist = train.bptt(
        net, PulseSign(), iters=5, checkpoint=path, checkpoint_every=2, val_every=2, **quick()
    )
    ckpt = train.load_checkpoint(path)
    assert ckpt.iteration == 5 and ckpt.flexrnn_version == fr.__version__
    assert_params_equal(ckpt.net, net)
    np.testing.assert_array_equal(ckpt.history.loss, hist.loss)
    assert ckpt.args["batch_size"] == 8 and ckpt.args["optimizer"] == "adam"
    assert ckpt.optimizer_state["t"] == 5
    assert [p.name for p in Path(tmp_path).iterdir()] == ["c.npz"]  # no temporary files left


def test_stop_criterion_ends_training_early():
    net = small_net()
    stop = train.stop_when_accuracy(0.0, window=2)  # holds after the second validation
    hist = train.bptt(net, PulseSign(), iters=50, val_every=3, stop=stop, **quick())
    assert hist.stopped == "criterion" and len(hist) == 6
    hist = train.bptt(
        small_net(), PulseSign(), iters=50, val_every=None, stop=lambda h: len(h) >= 4, **quick()
    )
    assert hist.stopped == "criterion" and len(hist) == 4


def test_accuracy_criterion_needs_the_minimum_over_the_window():
    hist = train.History()
    stop = train.stop_when_accuracy(0.9, window=3)
    for i, acc in enumerate([0.95, 0.5, 0.92, 0.93]):
        hist._append_validation(i, acc, 0.0)
    assert not stop(hist)
    hist._append_validation(4, 0.97, 0.0)
    assert stop(hist)


def test_callback_returning_true_ends_training():
    seen = []

    def callback(iteration, history, net):
        seen.append(iteration)
        return iteration == 3

    hist = train.bptt(small_net(), PulseSign(), iters=10, callback=callback, **quick())
    assert seen == [1, 2, 3] and len(hist) == 3 and hist.stopped == "callback"


def test_non_finite_loss_raises_and_leaves_the_parameters_of_the_last_step(monkeypatch):
    from flexrnn.train import gradients

    real = gradients.loss_and_grad
    calls = []

    def failing(net, trials, **kwargs):
        calls.append(1)
        loss, grads = real(net, trials, **kwargs)
        return (float("nan"), grads) if len(calls) == 3 else (loss, grads)

    monkeypatch.setattr(gradients, "loss_and_grad", failing)
    snapshots = []
    net = small_net()
    with pytest.raises(FloatingPointError, match="iteration 2"):
        train.bptt(
            net,
            PulseSign(),
            iters=5,
            lr=0.05,
            **quick(),
            callback=lambda i, h, n: snapshots.append(n.copy()),
        )
    assert_params_equal(net, snapshots[-1])


def test_diverging_network_raises_naming_the_iteration(tmp_path):
    net = fr.RateRNN.random(n=8, n_in=1, n_out=1, g=1e3, tau=1.0, phi="relu", dtype=np.float32)
    before = {k: v.copy() for k, v in net.params().items()}
    with pytest.raises(FloatingPointError, match="iteration 0"):
        train.bptt(net, PulseSign(), iters=3, checkpoint=tmp_path / "c.npz", **quick())
    for name, value in net.params().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    assert not (tmp_path / "c.npz").exists()


def test_progress_bar_reports_loss_and_accuracy(capsys):
    train.bptt(small_net(), PulseSign(), iters=4, val_every=2, **{**quick(), "progress": True})
    err = capsys.readouterr().err
    assert "bptt pulse_sign" in err and "loss=" in err and "4/4" in err


def test_history_as_dict_round_trips():
    hist = train.bptt(small_net(), PulseSign(), iters=4, val_every=2, **quick())
    data = hist.as_dict()
    assert set(data) >= {"loss", "grad_norm", "lr", "wall_time", "val_accuracy", "stopped"}
    again = train.History.from_dict(data)
    np.testing.assert_array_equal(again.loss, hist.loss)
    assert again.best == hist.best


def test_validation_loss_matches_the_training_loss_definition():
    task = PulseSign("cross_entropy")
    net = small_net(n_out=2)
    trials = task.batch(5, np.random.default_rng(0))
    loss, _, y = train.loss_and_grad(net, trials, return_output=True)
    assert train.task_loss(y, trials) == pytest.approx(loss, rel=1e-10)
    task = PulseSign("mse")
    trials = task.batch(5, np.random.default_rng(0))
    loss, _, y = train.loss_and_grad(small_net(), trials, return_output=True)
    assert train.task_loss(y, trials, "mse") == pytest.approx(loss, rel=1e-10)


# ---------------------------------------------------------------------------------------------
# Bad arguments


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("iters", {"iters": -1}),
        ("batch_size", {"batch_size": 0}),
        ("lr", {"lr": 0.0}),
        ("lr", {"lr": float("nan")}),
        ("optimizer", {"optimizer": "sgd"}),
        ("weight_decay", {"weight_decay": 0.1}),
        ("weight_decay", {"optimizer": "adamw", "weight_decay": -1.0}),
        ("clip_value", {"clip_value": 0.0}),
        ("clip_norm", {"clip_norm": -1.0}),
        ("trainable", {"trainable": ["W", "U"]}),
        ("trainable", {"trainable": []}),
        ("schedule", {"schedule": 0.5}),
        ("loss", {"loss": "l1"}),
        ("gain", {"gain": "high"}),
        ("noise_std", {"noise_std": -0.1}),
        ("neuron_gain", {"neuron_gain": np.ones(3)}),
        ("val_every", {"val_every": 0}),
        ("val_batch", {"val_batch": 0}),
        ("stop", {"stop": train.stop_when_accuracy(0.9), "val_every": None}),
        ("seed", {"seed": -1}),
        ("checkpoint_every", {"checkpoint_every": 0}),
        ("callback", {"callback": 3}),
        ("progress", {"progress": "yes"}),
    ],
)
def test_bad_arguments_raise_naming_the_argument(name, kwargs):
    args = {"iters": 2, **quick(), **kwargs}
    with raises_naming(name):
        train.bptt(small_net(), PulseSign(), **args)


def test_bad_task_or_network_raise_naming_them():
    with raises_naming("task"):
        train.bptt(small_net(n_out=2), PulseSign("mse"), iters=1, **quick())
    with raises_naming("task"):
        train.bptt(small_net(), object(), iters=1, **quick())
    with raises_naming("net"):
        train.bptt("net", PulseSign(), iters=1, **quick())
    with raises_naming("trainable") as info:
        train.bptt(small_net(), PulseSign(), iters=1, trainable="V", **quick())
    assert "W_in" in str(info.value)  # says which parameters exist
    with raises_naming("gain"):
        lstm = fr.LSTM.random(n=4, n_in=1, n_out=1)
        train.bptt(lstm, PulseSign(), iters=1, gain=0.5, **quick())


def test_bad_optimizer_and_schedule_arguments_raise_naming_them():
    with raises_naming("betas"):
        train.Adam(betas=(0.9, 1.0))
    with raises_naming("eps"):
        train.Adam(eps=0)
    with raises_naming("every"):
        train.StepDecay(0)
    with raises_naming("iters"):
        train.Cosine(0)
    with raises_naming("max_norm"):
        train.clip_global_norm({"a": np.ones(2)}, 0.0)
    with raises_naming("lr"):
        train.bptt(small_net(), PulseSign(), iters=1, optimizer=train.Adam(0.1), lr=0.2, **quick())
