"""Ctrl-C (SIGINT) stops every kind of long C++ call within a second and changes nothing.

One child process runs each kind of call in turn, every one sized to take far longer than
the test waits (many seconds on two cores), and prints a marker right before the call; the
parent sends SIGINT one second later and reads when the child caught KeyboardInterrupt and
whether the model and the arrays the call updates in place are as they were.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import flexrnn as fr
import pytest

CHILD = r"""
import sys, time
import numpy as np
import flexrnn as fr
from flexrnn import _core

f32 = np.float32


def trials(T, B, n_in, n_out, dtype):
    class Trials:
        u = np.zeros((T, B, n_in), dtype)
        target = np.zeros((T, B, n_out), dtype)
        mask = np.ones((T, B, n_out), dtype)
    return Trials()


def params(net):
    return [np.array(v) for v in net.params().values()]


def run(net, T, B):
    u = np.zeros((T, B, net.n_in), net.dtype)
    return (lambda: net.run(u)), params(net)


def grad(net, T, B):
    tr = trials(T, B, net.n_in, net.n_out, net.dtype)
    return (lambda: fr.train.loss_and_grad(net, tr)), params(net)


def rate(form="current"):
    return fr.RateRNN.random(n=1024, n_in=2, n_out=2, g=1.5, form=form, seed=0, dtype=f32)


def force_in_place():
    n = 1000
    net = rate()
    p = net.params()
    W_out, P = p["W_out"].copy(), np.eye(n, dtype=f32)
    x = 0.1 * np.ones((1, n), f32)
    T = 100000
    u = np.zeros((T, 1, 2), f32)
    target = np.ones((T, 1, 2), f32)
    z = np.zeros((1, 2), f32)
    W = p["W"][:n, :n].copy()
    args = (W, p["W_in"][:n].copy(), p["b"][:n].copy(), W_out[:, :n].copy(), p["b_out"],
            np.ones((n, 2), f32))
    W_out_n = args[3]
    params = _core.RateRNNParams(*args[:5])
    options = _core.ForceOptions(_core.RateOptions(net.alpha, "tanh", "current", "rate"), 1, 0,
                                 True)
    call = lambda: _core.force_run(params, options, args[5], P, u, target, None, x, z)
    return call, [W_out_n, P, x, z]


def force_driver():
    net = fr.RateRNN.random(n=1000, n_in=1, n_out=1, g=1.5, seed=0, dtype=f32)
    target = np.sin(np.arange(100000) / 50.0)
    call = lambda: fr.train.force(net, target, chunk=100000, progress=False)
    return call, params(net)


def full_force_in_place():
    n = 800
    rng = np.random.default_rng(0)
    J = (1.5 / np.sqrt(n) * rng.standard_normal((n, n))).astype(f32)
    W_out = np.zeros((2, n), f32)
    P = np.eye(n, dtype=f32)
    x = 0.1 * np.ones((1, n), f32)
    T = 20000
    u = np.zeros((T, 1, 1), f32)
    f = np.ones((T, 1, 2), f32)
    hint = np.zeros((T, 1, 1), f32)
    params = _core.RateRNNParams(J, np.zeros((n, 1), f32), np.zeros(n, f32), W_out,
                                 np.zeros(2, f32))
    options = _core.ForceOptions(_core.RateOptions(0.1, "tanh"), 1, 0, True)
    call = lambda: _core.full_force_run(
        params, options, J.copy(), np.ones((n, 2), f32), np.ones((n, 1), f32), P, u, f, hint,
        None, x, x.copy())
    return call, [J, W_out, P, x]


def hebbian_in_place():
    n = 1000
    net = fr.RateRNN.random(n=n, n_in=2, n_out=2, g=1.5, seed=0, dtype=f32)
    p = net.params()
    W = p["W"].copy()
    Rbar = np.full(1, np.nan)
    T, B = 4000, 20
    params = _core.RateRNNParams(W, p["W_in"], p["b"], p["W_out"], p["b_out"])
    options = _core.HebbianOptions(_core.RateOptions(net.alpha, "tanh", "current", "rate"),
                                   0.003, 30.0, 0.05, 0.01, 2e-4, 0.75, 200, 0, 0, True)
    call = lambda: _core.hebbian_run(
        params, options, np.zeros((T, B, 2), f32), np.zeros((B, 2), f32),
        np.zeros((B, n), f32), None, Rbar)
    return call, [W, Rbar]


def feedback():
    net = fr.RateRNN.random(n=2000, n_in=1, n_out=1, g=1.5, seed=0, dtype=f32)
    W_fb = np.ones((2000, 1), f32)
    return (lambda: fr.train.feedback_run(net, W_fb, T=40000)), params(net)


def genetic():
    net = fr.RateRNN.random(n=512, n_in=2, n_out=2, g=1.5, seed=0, dtype=f32)
    pop = {k: np.stack([v] * 16) for k, v in net.params().items()}
    tr = trials(8000, 16, 2, 2, f32)
    call = lambda: fr.train.population_loss(pop, net, tr)
    return call, [v for v in pop.values()] + params(net)


def fixed_points():
    net = fr.RateRNN.random(n=500, n_in=1, n_out=1, g=1.5, seed=0)
    return (lambda: fr.analysis.fixed_points(net, n_init=2048, iters=100000)), params(net)


def lyapunov():
    net = fr.RateRNN.random(n=1000, n_in=1, n_out=1, g=1.5, seed=0)
    return (lambda: fr.analysis.lyapunov_spectrum(net, k=100, steps=20000)), params(net)


def gain_sweep():
    net = fr.RateRNN.random(n=1000, n_in=1, n_out=1, g=1.0, seed=0)
    call = lambda: fr.analysis.gain_sweep(net, [0.5, 1.5], steps=400000)
    return call, params(net)


def mop_agent():
    env = fr.mop.RNNEnv.random(n=100, n_bits=8, g=2.0, rho=2.0, dt=0.1,
                               terminal=fr.mop.Energy(10.0), seed=0)
    return fr.mop.MOPAgent(env, hidden=128, gamma=0.98)


def mop_state(agent):
    return [np.array(agent.theta), np.array(agent.adam_m), np.array(agent.adam_v),
            np.array(agent.adam_step)]


def mop_train():
    agent = mop_agent()
    call = lambda: agent.train(epochs=1, trajectories=8, horizon=20000, progress=False)
    return call, mop_state(agent)


def mop_rollout():
    agent = mop_agent()
    return (lambda: agent.rollout(trajectories=8, horizon=20000)), mop_state(agent)


KINDS = {
    "rate_run": lambda: run(rate(), 20000, 4),
    "rate_run_rate_form": lambda: run(rate("rate"), 20000, 4),
    "low_rank_run": lambda: run(
        fr.LowRankRNN.random(n=1024, rank=512, n_in=2, n_out=2, seed=0, dtype=f32), 20000, 4),
    "nmrnn_run": lambda: run(
        fr.NMRNN.random(n=1024, rank=256, n_mod=256, n_in=2, n_out=2, seed=0, dtype=f32),
        20000, 4),
    "lstm_run": lambda: run(fr.LSTM.random(n=512, n_in=2, n_out=2, seed=0, dtype=f32), 20000, 4),
    "rate_loss_and_grad": lambda: grad(rate(), 10000, 4),
    "rate_loss_and_grad_rate_form": lambda: grad(rate("rate"), 10000, 4),
    "low_rank_loss_and_grad": lambda: grad(
        fr.LowRankRNN.random(n=1024, rank=512, n_in=2, n_out=2, seed=0, dtype=f32), 10000, 4),
    "nmrnn_loss_and_grad": lambda: grad(
        fr.NMRNN.random(n=1024, rank=256, n_mod=256, n_in=2, n_out=2, seed=0, dtype=f32),
        10000, 4),
    "lstm_loss_and_grad": lambda: grad(
        fr.LSTM.random(n=512, n_in=2, n_out=2, seed=0, dtype=f32), 10000, 4),
    "force": force_in_place,
    "force_driver": force_driver,
    "full_force": full_force_in_place,
    "hebbian": hebbian_in_place,
    "feedback_run": feedback,
    "genetic_population": genetic,
    "fixed_points": fixed_points,
    "lyapunov_spectrum": lyapunov,
    "gain_sweep": gain_sweep,
    "mop_epoch": mop_train,
    "mop_rollout": mop_rollout,
}

for kind in sys.argv[1:]:
    call, watched = KINDS[kind]()
    before = [np.array(a, copy=True) for a in watched]
    print("START", kind, flush=True)
    start = time.monotonic()
    try:
        call()
        print("DONE", kind, time.monotonic() - start, flush=True)
    except KeyboardInterrupt:
        caught = time.monotonic()
        same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, watched))
        print("INTERRUPTED", kind, repr(caught), int(same), flush=True)
"""

KINDS = [
    "rate_run",
    "rate_run_rate_form",
    "low_rank_run",
    "nmrnn_run",
    "lstm_run",
    "rate_loss_and_grad",
    "rate_loss_and_grad_rate_form",
    "low_rank_loss_and_grad",
    "nmrnn_loss_and_grad",
    "lstm_loss_and_grad",
    "force",
    "force_driver",
    "full_force",
    "hebbian",
    "feedback_run",
    "genetic_population",
    "fixed_points",
    "lyapunov_spectrum",
    "gain_sweep",
    "mop_epoch",
    "mop_rollout",
]

DELAY = 1.0  # seconds into the call
WITHIN = 1.0  # seconds from the signal to KeyboardInterrupt


def _line_reader(proc: subprocess.Popen) -> Callable[[float], str | None]:
    """readline with a timeout: the next line of the child's output, "" at its end, None if
    none came in time. (A thread feeds a queue: select on a buffered pipe can miss a line
    that arrived together with the previous one.)"""
    lines: queue.Queue = queue.Queue()

    def feed():
        for line in proc.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=feed, daemon=True).start()

    def readline(timeout: float) -> str | None:
        try:
            return lines.get(timeout=timeout)
        except queue.Empty:
            return None

    return readline


@pytest.fixture(scope="module")
def interrupted() -> dict:
    """kind -> (seconds from SIGINT to KeyboardInterrupt, arrays unchanged) or a failure."""
    env = dict(os.environ)
    # the child imports the flexrnn this process imported (installed, or a source tree)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(fr.__file__).parents[1]), env.get("PYTHONPATH", "")]
    )
    stderr = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *KINDS],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
    )
    readline = _line_reader(proc)
    results: dict = {}
    try:
        for kind in KINDS:
            line = readline(60.0)
            if line is None or not line.startswith(f"START {kind}"):
                results[kind] = f"no start marker (got {line!r})"
                break
            time.sleep(DELAY)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            line = readline(10.0)
            if not line:
                results[kind] = "no KeyboardInterrupt within 10 s" if line is None else "exited"
                break
            fields = line.split()
            if fields[0] != "INTERRUPTED":
                results[kind] = f"the call was not interrupted: {line.strip()}"
                continue
            results[kind] = (float(fields[2]) - sent, fields[3] == "1")
    finally:
        proc.kill()
        proc.wait()
        stderr.seek(0)
        err = stderr.read()
        stderr.close()
    for kind in KINDS:
        if not isinstance(results.setdefault(kind, "not reached"), tuple):
            results[kind] += f"; the child's stderr: {err[-2000:]}"
    return results


@pytest.mark.parametrize("kind", KINDS)
def test_sigint_stops_the_call_within_a_second_and_changes_nothing(interrupted, kind):
    result = interrupted[kind]
    assert isinstance(result, tuple), result
    latency, unchanged = result
    assert latency < WITHIN, f"{kind}: KeyboardInterrupt {latency:.2f} s after SIGINT"
    assert unchanged, f"{kind}: the model or the call's in-place arrays changed"
