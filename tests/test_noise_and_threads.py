"""Recurrent noise (counter-based Philox normals) and thread-count independence."""

from pathlib import Path

import flexrnn as fr
import numpy as np
import pytest
from conftest import (
    DTYPES,
    FORMS,
    random_low_rank_rnn,
    random_lstm,
    random_nmrnn,
    random_rate_rnn,
    run_model,
    seeds,
    small_models,
)
from flexrnn import _core
from flexrnn import reference as ref
from hypothesis import given
from hypothesis import strategies as st

# Several batch chunks: 8 rows per chunk for n < 256, 32 rows for n >= 256.
CHUNKED = [(20, 44), (256, 70)]  # (n, B)


def _noisy_models(n, dtype, rng):
    return {
        f"RateRNN-{form}": random_rate_rnn(rng, n, 2, 2, g=1.2, form=form, dtype=dtype)
        for form in FORMS
    } | {"LowRankRNN": random_low_rank_rnn(rng, n, 2, 2, 2, dtype=dtype)}


@pytest.mark.parametrize("n, B", CHUNKED)
@pytest.mark.parametrize("dtype", DTYPES)
def test_same_seed_is_bitwise_identical_for_any_thread_count(n, B, dtype, restore_threads):
    rng = np.random.default_rng(n)
    T = 8
    u = rng.normal(size=(T, B, 2))
    gain = rng.uniform(0.5, 1.5, (T, B))
    for name, net in _noisy_models(n, dtype, rng).items():
        runs = []
        for threads in (1, 2, 3):
            fr.set_num_threads(threads)
            runs.append(net.run(u, gain=gain, noise_std=0.3, seed=2**40 + 7))
        for other in runs[1:]:
            for key in ("x", "r", "y"):
                np.testing.assert_array_equal(
                    getattr(other, key), getattr(runs[0], key), err_msg=f"{name}.{key}"
                )


@pytest.mark.parametrize("n", [10, 70])  # LSTM chunks depend on 4n: 8 rows, then 32 rows
@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_is_bitwise_identical_for_any_thread_count(n, dtype, restore_threads):
    rng = np.random.default_rng(n)
    net = random_lstm(rng, n, 3, 2, dtype=dtype)
    u = rng.normal(size=(6, 70, 3))
    fr.set_num_threads(1)
    one = net.run(u)
    fr.set_num_threads(2)
    two = net.run(u)
    for key in ("h", "c", "y"):
        np.testing.assert_array_equal(getattr(two, key), getattr(one, key), err_msg=key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [13, 300])
def test_nmrnn_is_bitwise_identical_for_any_thread_count(n, dtype, restore_threads):
    rng = np.random.default_rng(n)
    net = random_nmrnn(rng, n, 3, 5, 2, 1, n_scale=float(n), feedback=True, dtype=dtype)
    u = rng.normal(size=(6, 70, 2))
    fr.set_num_threads(1)
    one = net.run(u)
    fr.set_num_threads(2)
    two = net.run(u)
    for key in ("x", "r", "z", "s", "y"):
        np.testing.assert_array_equal(getattr(two, key), getattr(one, key), err_msg=key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["RateRNN", "LowRankRNN", "NMRNN", "LSTM"])
def test_identical_runs_are_bitwise_identical(name, dtype, restore_threads):
    # repeated calls, with other allocations alive in between (so that buffers land at other
    # addresses) and changing thread counts, give the same bits
    net = small_models(dtype, seed=12)[name]
    rng = np.random.default_rng(12)
    u = rng.normal(size=(20, 11, net.n_in))
    kwargs = {"noise_std": 0.2, "seed": 5} if name in ("RateRNN", "LowRankRNN") else {}
    first = run_model(net, u, **kwargs)
    held = []
    for call in range(30):
        held.append(np.empty(int(rng.integers(1, 300))))
        held.append(run_model(net, u[: 1 + call % 20], **kwargs))  # outputs of other sizes
        fr.set_num_threads(1 + call % 2)
        again = run_model(net, u, **kwargs)
        for key in first:
            np.testing.assert_array_equal(again[key], first[key], err_msg=key)


@pytest.mark.parametrize("name", ["RateRNN", "LowRankRNN", "NMRNN", "LSTM"])
def test_later_runs_do_not_overwrite_earlier_outputs(name):
    # output arrays may come from a cache of freed buffers: a live result must never be reused
    net = small_models(seed=13)[name]
    rng = np.random.default_rng(13)
    u1, u2 = rng.normal(size=(2, 9, 4, net.n_in))
    out1 = run_model(net, u1)
    saved = {k: v.copy() for k, v in out1.items()}
    view = out1[next(iter(out1))][3]  # a view that outlives its trajectory
    saved_view = view.copy()
    del out1
    for _ in range(5):
        out2 = run_model(net, u2)
        del out2
    np.testing.assert_array_equal(view, saved_view)
    out1_again = run_model(net, u1)
    for key, value in saved.items():
        np.testing.assert_array_equal(out1_again[key], value, err_msg=key)
    kept = [run_model(net, u) for u in (u1, u2, u1)]
    for key in saved:
        np.testing.assert_array_equal(kept[0][key], saved[key])
        np.testing.assert_array_equal(kept[2][key], saved[key])
        assert not np.shares_memory(kept[0][key], kept[2][key])


def test_freed_outputs_are_cached_and_the_cache_can_be_cleared():
    net = small_models(seed=14)["RateRNN"]
    _core.buffer_cache_clear()
    assert _core.buffer_cache_bytes() == 0
    out = net.run(np.zeros((50, 8, net.n_in)))
    del out
    assert _core.buffer_cache_bytes() >= 50 * 8 * net.n * 8  # at least x came back
    _core.buffer_cache_clear()
    assert _core.buffer_cache_bytes() == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_different_seeds_give_different_noise(dtype):
    rng = np.random.default_rng(1)
    net = random_rate_rnn(rng, 16, 1, 1, dtype=dtype)
    u = np.zeros((5, 3, 1))
    base = net.run(u, noise_std=0.1, seed=5).x
    for seed in (6, 5 + 2**32, 5 + 2**63):  # both 32-bit halves of the seed are key words
        other = net.run(u, noise_std=0.1, seed=seed).x
        assert np.all(other[0] != base[0]), seed
    # and trials (streams) differ from each other
    noise = net.run(u, noise_std=0.1, seed=5).x - net.run(u).x
    assert not np.allclose(noise[:, 0], noise[:, 1]) and not np.allclose(noise[:, 1], noise[:, 2])


def test_seed_is_ignored_without_noise():
    rng = np.random.default_rng(2)
    net = random_rate_rnn(rng, 12, 2, 1)
    u = rng.normal(size=(6, 3, 2))
    np.testing.assert_array_equal(net.run(u, seed=1).x, net.run(u, seed=2).x)
    assert not np.array_equal(net.run(u, noise_std=1e-3, seed=1).x, net.run(u).x)


def test_trial_noise_depends_only_on_seed_trial_and_step():
    # trial b of a large batch sees the same noise as trial b of a small one
    rng = np.random.default_rng(3)
    net = random_rate_rnn(rng, 20, 2, 1)
    u = rng.normal(size=(7, 40, 2))
    big = net.run(u, noise_std=0.2, seed=9).x
    small = net.run(u[:, :5], noise_std=0.2, seed=9).x
    np.testing.assert_allclose(small, big[:, :5], rtol=1e-12, atol=1e-14)


@given(
    seed=seeds,
    stream=st.integers(0, 2**64 - 1),
    step=st.integers(0, 2**32 - 1),
    n=st.integers(0, 41),
)
def test_core_philox_normal_matches_reference(seed, stream, step, n):
    core = _core.philox_normal(seed, stream, step, n)
    expected = ref.philox_normal(seed, stream, step, n)
    assert core.shape == (n,) and core.dtype == np.float64
    np.testing.assert_allclose(core, expected, rtol=1e-14, atol=0)


def test_core_philox_normal_is_indexed_by_position():
    full = _core.philox_normal(3, 4, 5, 9)
    np.testing.assert_array_equal(_core.philox_normal(3, 4, 5, 4), full[:4])
    assert not np.array_equal(_core.philox_normal(3, 4, 6, 9), full)
    assert not np.array_equal(_core.philox_normal(3, 5, 5, 9), full)
    with pytest.raises(ValueError, match="n"):
        _core.philox_normal(3, 4, 5, -1)


def _one_noisy_step(n, B, tau, noise_std, dtype, seed=0):
    """x after one step of a network with W = 0, no input, x0 = 0: the noise term alone."""
    net = fr.RateRNN(
        W=np.zeros((n, n)), W_in=np.zeros((n, 0)), W_out=np.zeros((0, n)), tau=tau, dtype=dtype
    )
    return net.run(np.zeros((1, B, 0)), noise_std=noise_std, seed=seed, batch_first=False).x[0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_noise_term_has_zero_mean_and_variance_two_alpha_sigma_squared(dtype):
    alpha, noise_std = 0.1, 0.7
    x = _one_noisy_step(100, 200, 1 / alpha, noise_std, dtype).astype(np.float64)  # 20000 draws
    N, var = x.size, 2 * alpha * noise_std**2
    # 6-sigma bounds: the mean has std sqrt(var / N), the sample variance std var sqrt(2 / N)
    assert abs(x.mean()) < 6 * np.sqrt(var / N)
    assert abs(x.var() / var - 1) < 6 * np.sqrt(2 / N)
    # and it is exactly the documented draw: sqrt(2 alpha) noise_std normal(seed, b, 0, i)
    xi = ref.philox_normal(0, np.arange(200), 0, 100)
    np.testing.assert_allclose(
        x, np.sqrt(2 * alpha) * noise_std * xi, rtol=1e-14 if dtype == np.float64 else 1e-6, atol=0
    )


def test_noise_alone_reaches_the_ornstein_uhlenbeck_variance():
    # x[t+1] = (1-a) x[t] + sqrt(2a) s xi: stationary variance 2 a s^2 / (1 - (1-a)^2) = 2 s^2/(2-a)
    alpha, noise_std, n, B, T = 0.25, 0.5, 100, 200, 120  # (1-a)^(2T) is negligible
    net = fr.RateRNN(
        W=np.zeros((n, n)), W_in=np.zeros((n, 0)), W_out=np.zeros((0, n)), tau=1 / alpha
    )
    x = net.run(np.zeros((T, B, 0)), noise_std=noise_std, seed=4).x[-1]
    var = 2 * noise_std**2 / (2 - alpha)
    assert abs(x.var() / var - 1) < 6 * np.sqrt(2 / x.size)


def test_float32_noise_equals_float64_noise_cast():
    # with sqrt(2 alpha) noise_std = 1 the state after one step is the normal draw itself
    x32 = _one_noisy_step(37, 41, tau=2.0, noise_std=1.0, dtype=np.float32, seed=77)
    x64 = _one_noisy_step(37, 41, tau=2.0, noise_std=1.0, dtype=np.float64, seed=77)
    assert x32.dtype == np.float32
    np.testing.assert_array_equal(x32, x64.astype(np.float32))
    xi = np.stack([_core.philox_normal(77, b, 0, 37) for b in range(41)])  # the C++ generator
    np.testing.assert_array_equal(x64, xi)


# ---------------------------------------------------------------------------------------------
# The thread setting: bounded, process-wide, and a call's team no larger than its work.


@pytest.mark.parametrize("n", [0, -1, 100_000, 50_000, 2**40, 2**70])
def test_set_num_threads_rejects_counts_outside_the_machine_bounds(n, restore_threads):
    before = fr.get_num_threads()
    with pytest.raises(ValueError, match=r"^n: "):
        fr.set_num_threads(n)
    assert fr.get_num_threads() == before


@pytest.mark.parametrize("n", [0, 100_000, 2**40])
def test_the_core_rejects_thread_counts_outside_the_bounds(n, restore_threads):
    # the private binding checks too: no value may reach OpenMP (SIGSEGV / exit above ~50,000)
    with pytest.raises(ValueError, match=r"^n: the number of threads must be in 1\.\."):
        _core.set_num_threads(n)


def test_the_thread_limit_is_four_times_the_cores_at_most_1024(restore_threads):
    import os

    limit = fr.max_num_threads()
    assert limit == min(4 * (os.cpu_count() or 1), 1024)
    fr.set_num_threads(limit)
    assert fr.get_num_threads() == limit
    with pytest.raises(ValueError, match=f"at most {limit}"):
        fr.set_num_threads(limit + 1)


def test_the_thread_count_is_one_setting_for_every_thread_of_the_process(restore_threads):
    import threading

    seen = {}
    net = small_models(seed=3)["RateRNN"]
    u = np.random.default_rng(3).normal(size=(30, 64, net.n_in))
    fr.set_num_threads(1)
    reference = net.run(u).y

    def worker():
        seen["worker"] = fr.get_num_threads()
        seen["y"] = net.run(u).y
        fr.set_num_threads(2)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["worker"] == 1  # set on the main thread, read on the worker
    assert fr.get_num_threads() == 2  # set on the worker, read on the main thread
    np.testing.assert_array_equal(seen["y"], reference)


THREAD_COUNT_CHILD = r"""
import os, sys
import numpy as np
from pathlib import Path

import flexrnn as fr

def threads():
    return len(os.listdir("/proc/self/task"))

fr.set_num_threads(fr.max_num_threads())
net = fr.RateRNN.random(n=256, n_in=1, n_out=1, seed=0, dtype="float32")
base = threads()
net.run(np.zeros((200, 2, 1), np.float32))  # 2 trials: 2 chunks of work
two_chunks = threads()
net.run(np.zeros((10, 64 * fr.max_num_threads(), 1), np.float32))  # 2 chunks per thread
many_chunks = threads()
print(base, two_chunks, many_chunks)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_a_call_starts_no_more_threads_than_it_has_chunks_of_work():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", THREAD_COUNT_CHILD],
        capture_output=True,
        text=True,
        check=True,
        env=_child_env(),
    ).stdout
    base, two_chunks, many_chunks = map(int, out.split())
    if not fr.config()["openmp"]:
        pytest.skip("built without OpenMP")
    assert two_chunks == base + 1  # the calling thread and one more
    assert many_chunks == base + fr.max_num_threads() - 1


def _child_env() -> dict:
    import os

    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    # the child imports the flexrnn this process imported (installed, or a source tree)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(fr.__file__).parents[1]), env.get("PYTHONPATH", "")]
    )
    return env
