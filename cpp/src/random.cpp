#include "flexrnn/random.hpp"

#include <cmath>

namespace flexrnn {

void philox_normal(std::uint64_t seed, std::uint64_t stream, std::uint32_t step, double* out,
                   std::int64_t n) {
  constexpr double two_pi = 6.283185307179586476925286766559;
  constexpr double two_m53 = 1.0 / 9007199254740992.0;  // 2^-53
  const auto k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
  const auto s0 = static_cast<std::uint32_t>(stream), s1 = static_cast<std::uint32_t>(stream >> 32);
  for (std::int64_t j = 0; 2 * j < n; ++j) {
    const Philox4x32Counter w = philox4x32_10({static_cast<std::uint32_t>(j), step, s0, s1}, k0, k1);
    // 1. two uniforms in (0, 1) with 53 random bits each
    const std::uint64_t a = (std::uint64_t{w[0]} << 32 | w[1]) >> 11;
    const std::uint64_t b = (std::uint64_t{w[2]} << 32 | w[3]) >> 11;
    const double u1 = (static_cast<double>(a) + 0.5) * two_m53;
    const double u2 = (static_cast<double>(b) + 0.5) * two_m53;
    // 2. Box-Muller
    const double rad = std::sqrt(-2.0 * std::log(u1));
    const double theta = two_pi * u2;
    out[2 * j] = rad * std::cos(theta);
    if (2 * j + 1 < n) out[2 * j + 1] = rad * std::sin(theta);
  }
}

void philox_uniform(std::uint64_t seed, std::uint64_t stream, std::uint32_t step, double* out,
                    std::int64_t n) {
  constexpr double two_m53 = 1.0 / 9007199254740992.0;  // 2^-53
  const auto k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
  const auto s0 = static_cast<std::uint32_t>(stream), s1 = static_cast<std::uint32_t>(stream >> 32);
  for (std::int64_t j = 0; 2 * j < n; ++j) {
    const auto j32 = static_cast<std::uint32_t>(j);
    const Philox4x32Counter w = philox4x32_10({j32, step, s0, s1}, k0, k1);
    const std::uint64_t a = (std::uint64_t{w[0]} << 32 | w[1]) >> 11;
    const std::uint64_t b = (std::uint64_t{w[2]} << 32 | w[3]) >> 11;
    out[2 * j] = (static_cast<double>(a) + 0.5) * two_m53;
    if (2 * j + 1 < n) out[2 * j + 1] = (static_cast<double>(b) + 0.5) * two_m53;
  }
}

}  // namespace flexrnn
