// Genetic algorithm (docs/learning_rules.md): a population of RateRNNs scored on one batch in
// one call, one member per thread (each member's rollout is the model's own, rate_rnn.hpp),
// and the next generation's mutations from the counter-based generator.
#pragma once

#include <cstdint>
#include <vector>

#include "flexrnn/loss.hpp"
#include "flexrnn/parallel.hpp"
#include "flexrnn/random.hpp"
#include "flexrnn/rate_rnn.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

// P networks of the same sizes, each array stacked along a leading member axis.
template <class S>
struct Population {
  const S* W;      // (P, n, n)
  const S* W_in;   // (P, n, n_in)
  const S* b;      // (P, n)
  const S* W_out;  // (P, n_out, n)
  const S* b_out;  // (P, n_out)
  const S* x0;     // (P, n)
  Index P = 0, n = 0, n_in = 0, n_out = 0;
};

// Masked MSE of every member on the same batch: loss[p] = sum(mask (y_p - target)^2) /
// sum(mask) (0 for an all-zero mask), y_p the member's RateRNN rollout of u from its x0.
//   u: (T, B, n_in); target, mask: (T, B, n_out) (mask null: all ones);
//   loss: (P) out; y: (P, T, B, n_out) out, or null.
// Members run one per thread when the population has more than one member and the work
// is worth it (each member's rollout then runs on its thread); otherwise in order, each
// rollout parallel over its batch. Either way a member's arithmetic is the same.
template <class S>
void population_loss(const Population<S>& pop, const RateOptions& opt, const CTensor3<S>& u,
                     const S* target, const S* mask, double* loss, S* y) {
  const Index T = u.T, B = u.B, n = pop.n, n_in = pop.n_in, n_out = pop.n_out;
  const Index size = T * B * n_out;
  const double work = double(pop.P) * T * B * n * (n + n_in + n_out);
  const bool parallel = pop.P > 1 && work >= kMinParallelWork && !in_parallel_region();
  const double mask_sum = mask_total(mask, size);

  struct Buffers {
    RowMat<S> x, r, y, x0;
  };
  auto make = [&]() {
    return Buffers{RowMat<S>(T * B, n), RowMat<S>(T * B, n), RowMat<S>(y ? 0 : T * B, n_out),
                   RowMat<S>(B, n)};
  };
  detail::for_each_member<Buffers>(pop.P, parallel, make, [&](Index p, Buffers& buf) {
    const RateRNNParams<S> params{CMatMap<S>(pop.W + p * n * n, n, n),
                                  CMatMap<S>(pop.W_in + p * n * n_in, n, n_in), pop.b + p * n,
                                  CMatMap<S>(pop.W_out + p * n_out * n, n_out, n),
                                  pop.b_out + p * n_out};
    buf.x0.rowwise() = CRowVecMap<S>(pop.x0 + p * n, n);
    RateDrive<S> drive;
    drive.u = u;
    drive.x0 = buf.x0.data();
    S* yp = y ? y + p * size : buf.y.data();
    const RateTrajectory<S> tr{{buf.x.data(), T, B, n}, {buf.r.data(), T, B, n}, {yp, T, B, n_out}};
    RateOptions member_opt = opt;
    member_opt.noise_std = 0.0;
    rollout(params, member_opt, drive, tr);
    loss[p] = masked_mse(yp, target, mask, size, mask_sum);
  });
}

// The next generation, array by array: child[i] = parent's copy (+ mutation):
//   dst[a][i] = src[a][parent[i]] + sigma * normal(seed, i * n_arrays + a, generation, j)
// for every element j, or the exact copy when mutate[i] == 0. The normals are drawn in
// double and the product sigma * normal rounded once to S. src and dst must not overlap.
//   src[a], dst[a]: (P_src, m_a) and (P, m_a); parent: (P) indices into src.
template <class S>
void mutate_population(const std::vector<const S*>& src, const std::vector<S*>& dst,
                       const std::vector<Index>& sizes, Index P, const std::int64_t* parent,
                       const std::uint8_t* mutate, double sigma, std::uint64_t seed,
                       std::uint32_t generation) {
  const Index n_arrays = Index(sizes.size());
  double total = 0.0;
  for (Index m : sizes) total += double(m);
  // a normal costs some 20 multiply-adds
  for_each_chunk(P, 1, 20.0 * total * P, [&](Index i, Index) {
    std::vector<double> xi;
    for (Index a = 0; a < n_arrays; ++a) {
      const Index m = sizes[a];
      const S* from = src[a] + parent[i] * m;
      S* to = dst[a] + i * m;
      if (!mutate[i]) {
        std::copy(from, from + m, to);
        continue;
      }
      xi.resize(static_cast<std::size_t>(m));
      philox_normal(seed, static_cast<std::uint64_t>(i * n_arrays + a), generation, xi.data(), m);
      for (Index j = 0; j < m; ++j) to[j] = from[j] + S(sigma * xi[j]);
    }
  });
}

#define FLEXRNN_EVOLUTION_DECLARE(S)                                                           \
  extern template void population_loss(const Population<S>&, const RateOptions&,              \
                                       const CTensor3<S>&, const S*, const S*, double*, S*);    \
  extern template void mutate_population(const std::vector<const S*>&, const std::vector<S*>&, \
                                         const std::vector<Index>&, Index, const std::int64_t*, \
                                         const std::uint8_t*, double, std::uint64_t,            \
                                         std::uint32_t);
FLEXRNN_EVOLUTION_DECLARE(float)
FLEXRNN_EVOLUTION_DECLARE(double)
#undef FLEXRNN_EVOLUTION_DECLARE

}  // namespace flexrnn
