// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC 2011) and
// Box-Muller normals keyed by (seed, stream, step). A draw depends on its key
// only, never on the order or thread that asks, so every thread count (and a
// GPU) gives the same numbers. The exact recipe is in docs/internals.md.
#pragma once

#include <array>
#include <cstdint>

namespace flexrnn {

using Philox4x32Counter = std::array<std::uint32_t, 4>;

inline Philox4x32Counter philox4x32_10(Philox4x32Counter c, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint64_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr std::uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += W0;
      k1 += W1;
    }
    const std::uint64_t p0 = M0 * c[0];
    const std::uint64_t p1 = M1 * c[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c = {hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0};
  }
  return c;
}

// n standard normals: out[i] = normal(seed, stream, step, i).
void philox_normal(std::uint64_t seed, std::uint64_t stream, std::uint32_t step, double* out,
                   std::int64_t n);

// n uniforms in (0, 1): out[i] = uniform(seed, stream, step, i), the two uniforms of block
// i / 2 before Box-Muller (the same words philox_normal turns into normals 2j and 2j+1).
void philox_uniform(std::uint64_t seed, std::uint64_t stream, std::uint32_t step, double* out,
                    std::int64_t n);

}  // namespace flexrnn
