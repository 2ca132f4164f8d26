"""The cache of freed output arrays: bounded by the recent calls and by a public limit."""

from pathlib import Path

import flexrnn as fr
import numpy as np
import pytest

DEFAULT_LIMIT = 256 << 20


@pytest.fixture
def cache():
    """A cache emptied before the test; the default limit restored afterwards."""
    fr.set_buffer_cache(0)
    fr.set_buffer_cache(DEFAULT_LIMIT)
    yield
    fr.set_buffer_cache(DEFAULT_LIMIT)


def _net():
    return fr.RateRNN.random(n=64, n_in=1, n_out=1, seed=0)


def test_buffer_cache_info_reports_bytes_blocks_and_limit(cache):
    info = fr.buffer_cache_info()
    assert info == {"bytes": 0, "blocks": 0, "limit": DEFAULT_LIMIT, "release_after_calls": 2}
    out = _net().run(np.zeros((100, 8, 1)))
    expected = out.x.nbytes + out.r.nbytes + out.y.nbytes
    del out
    info = fr.buffer_cache_info()
    assert info["blocks"] == 3
    assert expected <= info["bytes"] <= expected + 3 * 128  # headers and rounding


def test_freed_outputs_are_released_within_two_calls(cache):
    net = _net()
    big = net.run(np.zeros((400, 16, 1)))
    big_bytes = big.x.nbytes
    del big
    assert fr.buffer_cache_info()["bytes"] >= 2 * big_bytes
    small = np.zeros((5, 1, 1))
    net.run(small)  # a call that does not reuse them: kept for one more
    assert fr.buffer_cache_info()["bytes"] >= 2 * big_bytes
    net.run(small)
    assert fr.buffer_cache_info()["bytes"] < big_bytes


def test_a_freed_output_is_reused_by_a_later_call_of_its_size(cache):
    net = _net()
    u = np.zeros((100, 8, 1))
    out = net.run(u)
    address = out.x.__array_interface__["data"][0]
    del out
    net.run(np.zeros((5, 1, 1)))  # one call between: the buffer is still there
    again = net.run(u)
    addresses = {a.__array_interface__["data"][0] for a in (again.x, again.r)}
    assert address in addresses


def test_the_cache_never_holds_more_than_its_limit(cache):
    net = _net()
    u = np.zeros((100, 16, 1))
    one = net.run(u).x.nbytes
    fr.set_buffer_cache(2 * one + 500)
    outs = [net.run(u) for _ in range(3)]
    del outs
    info = fr.buffer_cache_info()
    assert info["limit"] == 2 * one + 500
    assert 0 < info["bytes"] <= info["limit"]


def test_a_zero_limit_turns_the_cache_off_and_empties_it(cache):
    net = _net()
    out = net.run(np.zeros((100, 8, 1)))
    del out
    assert fr.buffer_cache_info()["bytes"] > 0
    fr.set_buffer_cache(0)
    assert fr.buffer_cache_info()["bytes"] == 0
    out = net.run(np.zeros((100, 8, 1)))
    del out
    assert fr.buffer_cache_info() == {"bytes": 0, "blocks": 0, "limit": 0, "release_after_calls": 2}


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), ("1", TypeError)])
def test_set_buffer_cache_rejects_bad_sizes_naming_the_argument(bad, error, cache):
    with pytest.raises(error, match="^bytes: "):
        fr.set_buffer_cache(bad)
    assert fr.buffer_cache_info()["limit"] == DEFAULT_LIMIT


def _resident_bytes() -> int:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_deleted_outputs_return_their_memory_to_the_system_within_two_calls(cache):
    net = _net()
    out = net.run(np.zeros((1000, 128, 1)))  # x and r: 64 MB each
    big = out.x.nbytes + out.r.nbytes
    before = _resident_bytes()
    del out
    small = np.zeros((5, 1, 1))
    net.run(small)
    net.run(small)
    assert before - _resident_bytes() > 0.9 * big
