"""The one training loop (flexrnn.train.loop) and what it shares: honest history fields per
rule, deprecated aliases of the old field names, resumption of checkpoints written with them,
the single NumPy Adam and the single masked-loss definition."""

from __future__ import annotations

import json
import warnings

import flexrnn as fr
import numpy as np
import pytest
from flexrnn import reference as ref
from flexrnn import train
from flexrnn.train.history import LEGACY_FIELDS, RULE_FIELDS, History
from flexrnn.train.loop import Checkpointing, LoopOptions, Rule, run


def _task():
    return fr.tasks.PerceptualDecision(T=12)


def _net(seed=0, n=10):
    return fr.RateRNN.random(n=n, n_in=1, n_out=1, g=1.2, seed=seed)


def _runs():
    """One short run of every rule: name -> (history, the rule's constant of the run)."""
    task = _task()
    quiet = {"progress": False, "val_every": 2, "val_batch": 8}
    out = {
        "bptt": train.bptt(_net(), task, iters=4, batch_size=4, lr=1e-2, **quiet),
        "force": train.force(_net(), task, iters=4, batch_size=2, alpha=0.5, **quiet),
        "full_force": train.full_force(_net(), task, iters=4, batch_size=2, alpha=2.0, **quiet),
        "hebbian": train.hebbian(
            _net(), task, iters=4, batch_size=2, window=4, eta=0.3, clip=1e-2, **quiet
        ),  # fmt: skip
        "genetic": train.genetic(
            _net(),
            task,
            generations=4,
            population=6,
            survivors=2,
            sigma=0.02,
            batch_size=4,
            **quiet,
        ),  # fmt: skip
    }
    return out


@pytest.fixture(scope="module")
def runs():
    return _runs()


# --------------------------------------------------------------------------------------------
# Honest histories


def test_every_rule_records_loss_wall_time_and_its_own_named_fields(runs):
    for rule, hist in runs.items():
        assert hist.rule == rule
        assert hist.fields == RULE_FIELDS[rule]
        assert hist.fields[0] == "loss" and hist.fields[-1] == "wall_time"
        assert len(hist) == 4 and np.all(np.isfinite(hist.loss))
        assert np.all(np.diff(hist.wall_time) >= 0) and hist.wall_time[0] >= 0
        np.testing.assert_array_equal(hist.val_iteration, [2, 4])
        data = hist.as_dict()
        assert set(data) == set(hist.fields) | {"val_iteration", "val_accuracy", "val_loss",
                                                "stopped"}  # fmt: skip


def test_rule_specific_fields_hold_what_their_names_say(runs):
    np.testing.assert_array_equal(runs["genetic"].sigma, np.full(4, 0.02))
    # the best member's loss is never above the population's median
    assert np.all(runs["genetic"].loss <= runs["genetic"].median_loss)
    np.testing.assert_array_equal(runs["hebbian"].eta, np.full(4, 0.3))
    np.testing.assert_array_equal(runs["force"].alpha, np.full(4, 0.5))
    np.testing.assert_array_equal(runs["full_force"].alpha, np.full(4, 2.0))
    for rule in ("force", "full_force", "hebbian"):
        change = runs[rule].weight_change
        assert np.all(change >= 0) and np.any(change > 0), rule
    assert np.all(runs["bptt"].grad_norm > 0)
    np.testing.assert_array_equal(runs["bptt"].lr, np.full(4, 1e-2))


def test_old_field_names_of_other_rules_warn_and_return_the_renamed_fields(runs):
    for rule, renamed in LEGACY_FIELDS.items():
        hist = runs[rule]
        for old, new in renamed.items():
            with pytest.warns(DeprecationWarning, match=f"{old}.*{new}"):
                value = getattr(hist, old)
            np.testing.assert_array_equal(value, getattr(hist, new))


def test_bptt_fields_are_read_without_a_warning(runs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs["bptt"].grad_norm, runs["bptt"].lr  # noqa: B018


def test_a_field_a_rule_does_not_record_is_an_attribute_error(runs):
    with pytest.raises(AttributeError, match="median_loss"):
        runs["bptt"].median_loss  # noqa: B018
    with pytest.raises(AttributeError, match="sigma"):
        runs["hebbian"].sigma  # noqa: B018


def test_history_from_dict_renames_old_names_and_rejects_foreign_fields():
    old = {"loss": [1.0, 0.5], "grad_norm": [2.0, 1.0], "lr": [0.1, 0.1], "wall_time": [1, 2]}
    hist = History.from_dict(old, rule="genetic")
    np.testing.assert_array_equal(hist.median_loss, [2.0, 1.0])
    np.testing.assert_array_equal(hist.sigma, [0.1, 0.1])
    assert History.from_dict(old).rule == "bptt"
    mixed = {**old, "sigma": [0.1, 0.1]}
    with pytest.raises(ValueError, match="sigma"):
        History.from_dict(mixed)
    with pytest.raises(ValueError, match="rule"):
        History("adam")


def _rewrite_history_names(path, renames):
    """The checkpoint at path as an earlier version wrote it: history fields renamed."""
    with np.load(path) as f:
        content = {k: f[k] for k in f.files}
    for new, old in renames.items():
        content[f"hist/{old}"] = content.pop(f"hist/{new}")
    np.savez(path, **content)


@pytest.mark.parametrize("rule", ["genetic", "hebbian"])
def test_checkpoint_with_the_old_field_names_resumes_bitwise(rule, tmp_path):
    task = _task()
    if rule == "genetic":
        kw = {"population": 5, "survivors": 2, "batch_size": 3, "seed": 2}
        go = lambda net, n, **k: train.genetic(net, task, generations=n, **kw, **k)  # noqa: E731
    else:
        kw = {"batch_size": 2, "window": 4, "eta": 0.3, "clip": 1e-2, "seed": 2}
        go = lambda net, n, **k: train.hebbian(net, task, iters=n, **kw, **k)  # noqa: E731
    quiet = {"progress": False, "val_every": 2, "val_batch": 8}
    whole_net = _net(3)
    whole = go(whole_net, 6, **quiet)
    net = _net(3)
    path = tmp_path / "run.npz"
    go(net, 3, checkpoint=path, **quiet)
    _rewrite_history_names(path, {v: k for k, v in LEGACY_FIELDS[rule].items()})
    with np.load(path) as f:
        assert "hist/grad_norm" in f.files and "hist/lr" in f.files
    resumed = go(net, 6, resume=path, **quiet)
    assert resumed.rule == rule
    for name in resumed.fields[:-1] + ("val_iteration", "val_accuracy", "val_loss"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name), name)
    for name, value in whole_net.params().items():
        np.testing.assert_array_equal(net.params()[name], value, name)


def test_checkpoints_store_the_rules_own_field_names(tmp_path):
    path = tmp_path / "ga.npz"
    train.genetic(_net(), _task(), generations=2, population=4, survivors=2, batch_size=2,
                  progress=False, checkpoint=path)  # fmt: skip
    with np.load(path) as f:
        names = {k for k in f.files if k.startswith("hist/")}
    assert {"hist/median_loss", "hist/sigma"} <= names
    assert not {"hist/grad_norm", "hist/lr"} & names
    assert train.load_checkpoint(path).history.rule == "genetic"


# --------------------------------------------------------------------------------------------
# The loop with a rule of its own


class Counter(Rule):
    """A rule whose state is a number: each step adds the batch's draw to it."""

    label = "x"

    def __init__(self):
        self.total = 0.0
        self.steps: list[int] = []

    def step(self, it):
        self.steps.append(it)
        self.total += float(self.rng.random())
        return self.total, 0.0, 1.0  # loss, grad_norm, lr

    def validate(self, done):
        return float(self.val_rng.random()), float(done)

    def state(self):
        return {"total": np.array(self.total)}


def _loop(rule, iters, *, stop=None, callback=None, checkpoint=None, every=4, resume=None):
    options = LoopOptions.checked(val_every=3, val_batch=1, checkpoint=checkpoint,
                                  checkpoint_every=every, stop=stop, callback=callback)  # fmt: skip
    saving = Checkpointing(options.checkpoint, every, {"rule": "bptt", "seed": 7})
    return run(rule, iters=iters, seed=7, options=options, desc="counter", progress=False,
               net=_net(), checkpointing=saving, resume=resume)  # fmt: skip


def test_loop_runs_steps_in_order_and_validates_every_val_every():
    rule = Counter()
    hist = _loop(rule, 7)
    assert rule.steps == list(range(7))
    np.testing.assert_array_equal(hist.val_iteration, [3, 6])
    np.testing.assert_array_equal(hist.val_loss, [3.0, 6.0])
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(hist.loss, np.cumsum(rng.random(7)))
    val_rng = np.random.default_rng([7, 1])
    np.testing.assert_array_equal(hist.val_accuracy, val_rng.random(2))
    assert hist.stopped is None


def test_loop_checks_the_criterion_before_each_update_and_obeys_the_callback():
    rule = Counter()
    hist = _loop(rule, 10, stop=lambda h: len(h) == 5)
    assert rule.steps == list(range(5)) and hist.stopped == "criterion"
    seen = []
    hist = _loop(Counter(), 10, callback=lambda done, h, net: seen.append(done) or done == 2)
    assert seen == [1, 2] and len(hist) == 2 and hist.stopped == "callback"


def test_loop_checkpoints_every_n_and_at_the_end_and_resumes_exactly(tmp_path):
    path = tmp_path / "c.npz"
    whole = _loop(Counter(), 9)
    first = Counter()
    _loop(first, 6, checkpoint=path, every=4)
    ckpt = train.load_checkpoint(path)
    assert ckpt.iteration == 6 and float(ckpt.optimizer_state["total"]) == first.total
    assert json.loads(json.dumps(ckpt.args)) == {"rule": "bptt", "seed": 7}
    again = Counter()
    again.total = float(ckpt.optimizer_state["total"])
    resumed = _loop(again, 9, resume=ckpt)
    assert again.steps == [6, 7, 8]
    np.testing.assert_array_equal(resumed.loss, whole.loss)
    np.testing.assert_array_equal(resumed.val_accuracy, whole.val_accuracy)


def test_loop_options_name_the_bad_argument(tmp_path):
    with pytest.raises(ValueError, match="val_every"):
        LoopOptions.checked(val_every=0, val_batch=1)
    with pytest.raises(ValueError, match="val_batch"):
        LoopOptions.checked(val_every=None, val_batch=0)
    with pytest.raises(ValueError, match="checkpoint"):
        LoopOptions.checked(val_every=1, val_batch=1, checkpoint=tmp_path / "no" / "c.npz")
    with pytest.raises(TypeError, match="callback"):
        LoopOptions.checked(val_every=1, val_batch=1, callback=3)
    with pytest.raises(TypeError, match="stop"):
        LoopOptions.checked(val_every=1, val_batch=1, stop="never")


@pytest.mark.parametrize("rule", ["bptt", "force", "full_force", "hebbian", "genetic"])
def test_every_rule_refuses_an_accuracy_criterion_without_validation(rule):
    task, stop = _task(), train.stop_when_accuracy(0.9)
    calls = {
        "bptt": lambda: train.bptt(_net(), task, iters=2, val_every=None, stop=stop),
        "force": lambda: train.force(_net(), task, iters=2, val_every=None, stop=stop),
        "full_force": lambda: train.full_force(_net(), task, iters=2, val_every=None, stop=stop),
        "hebbian": lambda: train.hebbian(_net(), task, iters=2, val_every=None, stop=stop),
        "genetic": lambda: train.genetic(_net(), task, generations=2, val_every=None, stop=stop),
    }
    with pytest.raises(ValueError, match="stop"):
        calls[rule]()


# --------------------------------------------------------------------------------------------
# One NumPy Adam, one masked loss


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_trainer_adam_is_the_reference_adam_step_bitwise(dtype):
    rng = np.random.default_rng(0)
    p = {"w": rng.normal(size=(4, 3)).astype(dtype), "b": rng.normal(size=3).astype(dtype)}
    mine = {k: v.copy() for k, v in p.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    opt = train.Adam(0.05, betas=(0.8, 0.99), eps=1e-6)
    for t in range(1, 6):
        g = {k: rng.normal(size=v.shape).astype(dtype) for k, v in p.items()}
        opt.step(p, g)
        for k in mine:
            ref.adam_step(mine[k], g[k], m[k], v2[k], t, 0.05, 0.8, 0.99, 1e-6)
    for k in p:
        assert p[k].tobytes() == mine[k].tobytes(), k


def test_reference_adam_step_is_the_papers_bias_corrected_update():
    p, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    g = np.array([0.5, -0.25])
    ref.adam_step(p, g, m, v, 1, 0.1)
    # first step: m_hat = g, v_hat = g^2, so p moves by lr g / (|g| + eps)
    np.testing.assert_allclose(p, [1.0, -2.0] - 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-15)
    np.testing.assert_allclose(m, 0.1 * g, rtol=1e-15)
    np.testing.assert_allclose(v, 0.001 * g * g, rtol=1e-15)


def test_task_loss_is_the_reference_masked_loss():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(5, 3, 2))
    target = rng.normal(size=(5, 3, 2))
    mask = rng.random((5, 3, 1))
    trials = fr.tasks.base.Trials(u=np.zeros((5, 3, 1)), target=target, mask=mask)
    expected = (mask * (y - target) ** 2).sum() / np.broadcast_to(mask, y.shape).sum()
    assert train.task_loss(y, trials) == ref.masked_mse_loss(y, target, mask)
    np.testing.assert_allclose(train.task_loss(y, trials), expected, rtol=1e-14)
    labels = rng.integers(0, 2, (5, 3))
    ce_mask = rng.random((5, 3))
    trials = fr.tasks.base.Trials(u=np.zeros((5, 3, 1)), target=labels, mask=ce_mask)
    assert train.task_loss(y, trials) == ref.cross_entropy_loss(y, labels, ce_mask)
    log_p = y - np.log(np.exp(y).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, labels[..., None], -1)[..., 0]
    np.testing.assert_allclose(
        train.task_loss(y, trials), -(ce_mask * picked).sum() / ce_mask.sum(), rtol=1e-13
    )
    assert ref.masked_mse(y, target, mask)[0] == ref.masked_mse_loss(y, target, mask)
    assert ref.cross_entropy(y, labels, ce_mask)[0] == ref.cross_entropy_loss(y, labels, ce_mask)


def test_name_tables_are_defined_once():
    import importlib

    from flexrnn import models, tasks
    from flexrnn.reference import names

    bptt = importlib.import_module("flexrnn.train.bptt")
    gradients = importlib.import_module("flexrnn.train.gradients")

    assert models.PHI_NAMES is names.PHI_NAMES and ref.PHI_NAMES is names.PHI_NAMES
    assert models.FORMS is names.FORMS and models.READOUTS is names.READOUTS
    for module in (tasks, bptt, gradients, ref):
        assert module.LOSSES is names.LOSSES
