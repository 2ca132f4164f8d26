"""Counter-based normals: Philox4x32-10 + Box-Muller (docs/internals.md, "Counter-based
normal generator"). Bit-for-bit the C++ generator up to libm's log/cos/sin.

Words are held in uint64 arrays so that the 32x32 -> 64-bit products of mulhilo are exact.
"""

from __future__ import annotations

import numpy as np

_MASK32 = 0xFFFFFFFF
_M0, _M1 = 0xD2511F53, 0xCD9E8D57  # round multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85  # key bumps (Weyl sequence)
_ROUNDS = 10


def _mulhilo(a, b):
    """(hi, lo) 32-bit words of the 64-bit product of uint32 values a, b (uint64 arrays)."""
    product = np.uint64(a) * b
    return product >> np.uint64(32), product & np.uint64(_MASK32)


def philox4x32(counter, key):
    """Philox4x32-10 block function.

    counter: (..., 4) uint32; key: (2,) uint32. Returns (..., 4) uint32.
    """
    c = np.asarray(counter, dtype=np.uint32).astype(np.uint64)
    c0, c1, c2, c3 = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    k0, k1 = (int(k) for k in np.asarray(key, dtype=np.uint32))
    for round_index in range(_ROUNDS):
        if round_index > 0:
            k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
        hi0, lo0 = _mulhilo(_M0, c0)
        hi1, lo1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def _uniform(w_hi, w_lo):
    """Uniform in (0, 1) from the top 53 bits of the 64-bit word (w_hi, w_lo)."""
    bits53 = ((w_hi << np.uint64(32)) | w_lo) >> np.uint64(11)
    return (bits53.astype(np.float64) + 0.5) * 2.0**-53


def philox_normal(seed, stream, step, n):
    """Standard normals normal(seed, stream, step, i) for i = 0..n-1, in float64.

    seed: int (taken as uint64); stream, step: ints or integer arrays, broadcast together.
    Returns shape broadcast(stream, step).shape + (n,).
    """
    seed = int(seed) % 2**64
    key = np.array([seed & _MASK32, seed >> 32], dtype=np.uint32)
    stream = np.asarray(stream).astype(np.uint64)
    step = np.asarray(step).astype(np.uint64)
    stream, step = np.broadcast_arrays(stream, step)
    n_pairs = (n + 1) // 2  # block j yields normals 2j and 2j+1

    counter = np.empty(stream.shape + (n_pairs, 4), dtype=np.uint64)
    counter[..., 0] = np.arange(n_pairs, dtype=np.uint64)  # i // 2
    counter[..., 1] = (step & np.uint64(_MASK32))[..., None]
    counter[..., 2] = (stream & np.uint64(_MASK32))[..., None]
    counter[..., 3] = (stream >> np.uint64(32))[..., None]
    w = philox4x32(counter.astype(np.uint32), key).astype(np.uint64)

    u1 = _uniform(w[..., 0], w[..., 1])
    u2 = _uniform(w[..., 2], w[..., 3])
    rad = np.sqrt(-2.0 * np.log(u1))
    theta = 2.0 * np.pi * u2
    normals = np.stack([rad * np.cos(theta), rad * np.sin(theta)], axis=-1)  # even, odd i
    return normals.reshape(stream.shape + (2 * n_pairs,))[..., :n]
