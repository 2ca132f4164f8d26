"""Resume verifies the experiment: checkpoints carry fingerprints of the task (BPTT, genetic,
Hebbian) and of every MOP agent with its environment, and a resume under anything else is a
ValueError naming each difference, unless ``allow_mismatch=True``."""

import json
import warnings

import flexrnn as fr
import numpy as np
import pytest
from flexrnn.train.fingerprint import describe, differences, digest, fingerprint

# ------------------------------------------------------------------------------------------
# Fingerprints


def test_tasks_of_one_class_with_other_parameters_differ():
    a = fingerprint(fr.tasks.PerceptualDecision(sigma=0.5))
    b = fingerprint(fr.tasks.PerceptualDecision(sigma=3.0))
    assert a["sha256"] != b["sha256"]
    assert differences(a["description"], b["description"], "task") == [
        "task.sigma: 0.5 in the checkpoint, 3.0 now"
    ]


def test_equal_tasks_have_equal_fingerprints():
    make = lambda: fr.tasks.MeasureWaitGo(intervals=[10, 12], measure_times=range(10, 14))  # noqa: E731
    assert fingerprint(make()) == fingerprint(make())


def test_fingerprint_covers_array_contents_not_only_shapes():
    trials = fr.tasks.PerceptualDecision(T=5).batch(3, 0)
    other = fr.tasks.PerceptualDecision(T=5).batch(3, 1)
    task = fr.tasks.PerceptualDecision(T=5)
    a = describe(fr.tasks.FixedTrials(task, trials))
    b = describe(fr.tasks.FixedTrials(task, other))
    assert digest(a) != digest(b)
    lines = differences(a, b, "task")
    assert any(line.startswith("task.trials.u:") for line in lines)


def test_drawing_batches_does_not_change_a_task_fingerprint():
    task = fr.tasks.MultiTask(T=60)
    before = fingerprint(task)
    task.batch(4, np.random.default_rng(0))
    assert fingerprint(task) == before


def test_fingerprint_of_a_generator_holds_no_state():
    class WithRng:
        def __init__(self, seed):
            self.rng = np.random.default_rng(seed)
            self.level = 1.0

    assert describe(WithRng(0)) == describe(WithRng(1))


def test_non_finite_and_nested_values_are_described_as_json():
    desc = describe({"a": [1, 2.5, float("nan")], "b": np.float32(np.inf), "c": (None, "x")})
    json.dumps(desc, allow_nan=False)
    assert desc["a"][2] == {"float": "nan"}


# ------------------------------------------------------------------------------------------
# BPTT, genetic, Hebbian


def _net():
    return fr.RateRNN.random(n=6, n_in=1, n_out=1, g=0.9, seed=0)


def _bptt(net, task, iters, **kw):
    return fr.train.bptt(net, task, iters=iters, batch_size=2, lr=0.01, val_every=None,
                         progress=False, **kw)  # fmt: skip


def test_bptt_checkpoint_of_one_sigma_does_not_resume_under_another(tmp_path):
    path = tmp_path / "run.npz"
    _bptt(_net(), fr.tasks.PerceptualDecision(sigma=0.5, T=8), 2, checkpoint=path)
    net = _net()
    W = net.W.copy()
    with pytest.raises(ValueError, match="allow_mismatch") as info:
        _bptt(net, fr.tasks.PerceptualDecision(sigma=3.0, T=8), 4, resume=path)
    message = str(info.value)
    assert "task.sigma: 0.5 in the checkpoint, 3.0 now" in message
    assert str(path) in message
    np.testing.assert_array_equal(net.W, W)  # nothing was restored or trained


def test_bptt_resume_with_allow_mismatch_warns_and_continues(tmp_path):
    path = tmp_path / "run.npz"
    _bptt(_net(), fr.tasks.PerceptualDecision(sigma=0.5, T=8), 2, checkpoint=path)
    with pytest.warns(RuntimeWarning, match=r"task\.sigma: 0\.5 in the checkpoint, 3\.0 now"):
        hist = _bptt(_net(), fr.tasks.PerceptualDecision(sigma=3.0, T=8), 4, resume=path,
                     allow_mismatch=True, checkpoint=path)  # fmt: skip
    assert len(hist) == 4
    # the continued run records the task it continued with
    ckpt = fr.train.load_checkpoint(path)
    assert ckpt.experiment["task"]["description"]["fields"]["sigma"] == 3.0


def test_bptt_resume_names_every_differing_argument_with_both_values(tmp_path):
    path = tmp_path / "run.npz"
    task = fr.tasks.PerceptualDecision(T=8)
    _bptt(_net(), task, 2, checkpoint=path)
    with pytest.raises(ValueError) as info:
        fr.train.bptt(_net(), task, iters=4, batch_size=3, lr=0.02, val_every=None,
                      progress=False, resume=path)  # fmt: skip
    message = str(info.value)
    assert "batch_size: 2 in the checkpoint, 3 now" in message
    assert "lr: 0.01 in the checkpoint, 0.02 now" in message


def test_allow_mismatch_cannot_continue_other_trainable_parameters(tmp_path):
    path = tmp_path / "run.npz"
    task = fr.tasks.PerceptualDecision(T=8)
    _bptt(_net(), task, 2, checkpoint=path)
    with pytest.raises(ValueError, match="trainable"):
        _bptt(_net(), task, 4, resume=path, trainable=["W"], allow_mismatch=True)


def test_allow_mismatch_must_be_a_bool():
    with pytest.raises(TypeError, match="allow_mismatch"):
        _bptt(_net(), fr.tasks.PerceptualDecision(T=8), 1, allow_mismatch="yes")


def test_same_task_resumes_silently_and_bitwise(tmp_path):
    task = fr.tasks.ContextIntegration(T=8)

    def net():
        return fr.RateRNN.random(n=6, n_in=4, n_out=1, g=0.9, seed=0)

    full = net()
    _bptt(full, task, 4)
    part = net()
    _bptt(part, task, 2, checkpoint=tmp_path / "c.npz")
    again = net()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _bptt(again, fr.tasks.ContextIntegration(T=8), 4, resume=tmp_path / "c.npz")
    np.testing.assert_array_equal(again.W, full.W)


def test_task_arrays_are_verified(tmp_path):
    net = lambda: fr.NMRNN.random(n=6, rank=2, n_mod=2, n_in=3, n_out=1, seed=0)  # noqa: E731
    path = tmp_path / "run.npz"
    _bptt(net(), fr.tasks.MeasureWaitGo(intervals=[12, 14]), 1, checkpoint=path)
    with pytest.raises(ValueError, match=r"task\.intervals: \[12, 14\]"):
        _bptt(net(), fr.tasks.MeasureWaitGo(intervals=[12, 16]), 2, resume=path)


def _rewrite_as_format_1(path):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["__meta__"]))
    meta.pop("experiment")
    meta["format_version"] = 1
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_format_1_checkpoint_resumes_with_a_warning_that_it_cannot_be_verified(tmp_path):
    path = tmp_path / "old.npz"
    task = fr.tasks.PerceptualDecision(T=8)
    _bptt(_net(), task, 2, checkpoint=path)
    _rewrite_as_format_1(path)
    assert fr.train.load_checkpoint(path).experiment is None
    with pytest.warns(RuntimeWarning, match="cannot be verified"):
        hist = _bptt(_net(), task, 3, resume=path)
    assert len(hist) == 3


@pytest.mark.parametrize("rule", ["genetic", "hebbian"])
def test_genetic_and_hebbian_verify_the_task(rule, tmp_path):
    path = tmp_path / f"{rule}.npz"

    def run(task, **kw):
        common = dict(val_every=None, progress=False, **kw)
        if rule == "genetic":
            return fr.train.genetic(_net(), task, generations=kw.pop("n", 2), population=3,
                                    survivors=1, batch_size=2, **common)  # fmt: skip
        return fr.train.hebbian(_net(), task, iters=kw.pop("n", 2), batch_size=2, **common)

    run(fr.tasks.PerceptualDecision(sigma=0.5, T=8), checkpoint=path)
    with pytest.raises(ValueError, match=r"task\.sigma: 0\.5 in the checkpoint, 3\.0 now"):
        run(fr.tasks.PerceptualDecision(sigma=3.0, T=8), resume=path)
    with pytest.warns(RuntimeWarning, match=r"task\.sigma"):
        run(fr.tasks.PerceptualDecision(sigma=3.0, T=8), resume=path, allow_mismatch=True)


# ------------------------------------------------------------------------------------------
# NeuroMOP


def _env(seed=0, terminal=None):
    return fr.mop.RNNEnv.random(n=6, n_bits=2, g=1.5, rho=1.0, dt=0.2, seed=seed,
                                terminal=terminal or fr.mop.Energy(0.52))  # fmt: skip


def _agent(env, **kw):
    return fr.mop.MOPAgent(env, hidden=4, gamma=0.9, updates=2, batch_size=8, seed=1, **kw)


def _mop_checkpoint(tmp_path):
    path = tmp_path / "mop.npz"
    _agent(_env()).train(epochs=1, trajectories=2, horizon=6, progress=False, checkpoint=path)
    return path


def test_agent_fingerprint_leaves_out_training_state():
    agent = _agent(_env())
    before = fingerprint(agent)
    agent.train(epochs=1, trajectories=2, horizon=6, progress=False)
    assert fingerprint(agent) == before


def test_mop_checkpoint_does_not_resume_with_another_network(tmp_path):
    path = _mop_checkpoint(tmp_path)
    agent = _agent(_env(seed=5))
    theta = agent.theta.copy()
    with pytest.raises(ValueError, match=r"agent0\.env\.net\.params\.W: ") as info:
        agent.train(epochs=2, trajectories=2, horizon=6, progress=False, resume=path)
    assert str(path) in str(info.value)
    np.testing.assert_array_equal(agent.theta, theta)
    assert agent.epoch == 0


def test_mop_checkpoint_does_not_resume_with_another_terminal_set(tmp_path):
    path = _mop_checkpoint(tmp_path)
    agent = _agent(_env(terminal=fr.mop.Energy(0.6)))
    with pytest.raises(ValueError, match=r"agent0\.env\.terminal\[0\]\.level: 0\.52"):
        agent.train(epochs=2, trajectories=2, horizon=6, progress=False, resume=path)


def test_mop_checkpoint_does_not_resume_with_other_agent_options(tmp_path):
    path = _mop_checkpoint(tmp_path)
    agent = fr.mop.MOPAgent(_env(), hidden=4, gamma=0.8, updates=2, batch_size=8, seed=1)
    with pytest.raises(ValueError, match=r"agent0\.gamma: 0\.9 in the checkpoint, 0\.8 now"):
        agent.train(epochs=2, trajectories=2, horizon=6, progress=False, resume=path)


def test_mop_resume_with_allow_mismatch_warns_and_continues(tmp_path):
    path = _mop_checkpoint(tmp_path)
    agent = _agent(_env(terminal=fr.mop.Energy(0.6)))
    with pytest.warns(RuntimeWarning, match="terminal"):
        hist = agent.train(epochs=2, trajectories=2, horizon=6, progress=False, resume=path,
                           allow_mismatch=True)  # fmt: skip
    assert len(hist) == 2 and agent.epoch == 2


def test_mop_format_1_checkpoint_resumes_with_a_warning(tmp_path):
    path = _mop_checkpoint(tmp_path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["__meta__"]))
    del meta["experiment"], meta["format_version"]
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    agent = _agent(_env())
    with pytest.warns(RuntimeWarning, match="cannot be verified"):
        agent.train(epochs=2, trajectories=2, horizon=6, progress=False, resume=path)
    assert agent.epoch == 2
