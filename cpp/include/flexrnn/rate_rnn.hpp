// RateRNN and LowRankRNN: the continuous-time rate network of specs/models.md,
//   form "current": x[t+1] = (1-alpha) x[t] + alpha (gain[t] W phi(ng x[t]) + W_in u[t] + b) + sqrt(2 alpha) sigma xi[t]
//   form "rate":    x[t+1] = (1-alpha) x[t] + alpha phi(ng (gain[t] W x[t] + W_in u[t] + b)) + sqrt(2 alpha) sigma xi[t]
//   r[t+1] = phi(ng x[t+1]),  y[t] = W_out r[t+1] + b_out   (readout "rate"; "state" reads x)
// with W dense or low-rank (W = U V^T / n, never formed). Stored arrays hold the
// state after each step: x[t] here is x[t+1] of the spec.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "flexrnn/kernels.hpp"
#include "flexrnn/parallel.hpp"
#include "flexrnn/phi.hpp"
#include "flexrnn/random.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

enum class Form { current, rate };
enum class Readout { rate, state };
Form form_from_name(const std::string& name);        // throws std::invalid_argument
Readout readout_from_name(const std::string& name);  // throws std::invalid_argument

struct RateOptions {
  double alpha = 0.1;  // dt / tau
  Phi phi = Phi::tanh;
  Form form = Form::current;
  Readout readout = Readout::rate;
  double noise_std = 0.0;
  std::uint64_t seed = 0;
};

// Everything that varies per run; buffers are owned by the caller.
template <class S>
struct RateDrive {
  CTensor3<S> u;                   // (T, B, n_in)
  const S* x0 = nullptr;           // (B, n)
  const S* gain = nullptr;         // (T, B), or null for gain_scalar everywhere
  S gain_scalar = S(1);
  const S* neuron_gain = nullptr;  // (n), or null for ones
};

template <class S>
struct RateTrajectory {
  Tensor3<S> x, r, y;  // (T, B, n), (T, B, n), (T, B, n_out)
};

// Recurrent weights that are an (n, n) matrix: rec = R W^T. W^T is kept as a
// row-major copy: for one trial the product is then a sum of contiguous rows of
// W^T (no horizontal reductions), and Eigen's GEMM packs it as fast as W.
template <class S>
struct DenseRecurrence {
  RowMat<S> WT;  // (n, n) = W^T
  explicit DenseRecurrence(const CMatMap<S>& W) : WT(W.transpose()) {}
  Index work_cols() const { return 0; }
  template <class In, class Out>
  void apply(const In& R, Out& out, RowMat<S>& /*work*/) const {
    out.noalias() = R * WT;
  }
};

// W = U V^T / n applied as ((R V) / n) U^T: O(n rank) per trial and step.
template <class S>
struct LowRankRecurrence {
  CMatMap<S> V;  // (n, rank)
  RowMat<S> UT;  // (rank, n) = U^T / n
  LowRankRecurrence(const CMatMap<S>& U, const CMatMap<S>& V_)
      : V(V_), UT(U.transpose() / S(U.rows())) {}
  Index work_cols() const { return V.cols(); }
  template <class In, class Out>
  void apply(const In& R, Out& out, RowMat<S>& work) const {
    work.noalias() = R * V;
    out.noalias() = work * UT;
  }
};

template <class S>
struct RateRNNParams {
  CMatMap<S> W;      // (n, n)
  CMatMap<S> W_in;   // (n, n_in)
  const S* b;        // (n)
  CMatMap<S> W_out;  // (n_out, n)
  const S* b_out;    // (n_out)
};

template <class S>
struct LowRankRNNParams {
  CMatMap<S> U, V;   // (n, rank)
  CMatMap<S> W_in;   // (n, n_in)
  const S* b;        // (n)
  CMatMap<S> W_out;  // (n_out, n)
  const S* b_out;    // (n_out)
};

namespace detail {

template <class S, class Rec>
void rate_rollout(const Rec& rec, const CMatMap<S>& W_in, const S* b, const CMatMap<S>& W_out,
                  const S* b_out, const RateOptions& opt, const RateDrive<S>& drive,
                  const RateTrajectory<S>& out) {
  const Index T = out.x.T, B = out.x.B, n = out.x.N;
  if (T == 0 || B == 0 || n == 0) return;
  const S alpha = S(opt.alpha), decay = S(1.0 - opt.alpha);
  const bool noisy = opt.noise_std != 0.0;
  const S noise_scale = S(std::sqrt(2.0 * opt.alpha) * opt.noise_std);
  const RowMat<S> W_inT = W_in.transpose();  // rows of W_in^T are contiguous for the axpys
  const bool current = opt.form == Form::current;

  // R = phi(ng x), with ng the per-neuron gain; R may alias X
  auto rates = [&](const auto& X, auto&& R) {
    if (drive.neuron_gain) {
      R.array() = X.array().rowwise() * CRowVecMap<S>(drive.neuron_gain, n).array();
      apply_phi_rows<S>(opt.phi, R, R);
    } else {
      apply_phi_rows<S>(opt.phi, X, R);
    }
  };

  for_each_chunk(B, batch_chunk_rows(B, n), [&](Index b0, Index rows) {
    RowMat<S> r0(rows, n), work(rows, rec.work_cols());
    std::vector<double> xi(noisy ? static_cast<std::size_t>(n) : 0);
    const CMatMap<S> X0(drive.x0 + b0 * n, rows, n);
    if (current) rates(X0, r0);

    for (Index t = 0; t < T; ++t) {
      const CMatMap<S> X(t == 0 ? X0.data() : out.x.slab(t - 1, b0, rows).data(), rows, n);
      const CMatMap<S> R(t == 0 ? r0.data() : out.r.slab(t - 1, b0, rows).data(), rows, n);
      MatMap<S> Xn = out.x.slab(t, b0, rows);

      // 1. recurrent drive gain[t] W phi(ng x) (current) or gain[t] W x (rate)
      if (current) {
        rec.apply(R, Xn, work);
      } else {
        rec.apply(X, Xn, work);
      }
      if (drive.gain) {
        for (Index i = 0; i < rows; ++i) Xn.row(i) *= drive.gain[t * B + b0 + i];
      } else if (drive.gain_scalar != S(1)) {
        Xn *= drive.gain_scalar;
      }
      // 2. + W_in u[t] + b
      add_input_drive<S>(drive.u.slab(t, b0, rows), W_inT, b, Xn);
      // 3. Euler step
      if (!current) rates(Xn, Xn);
      Xn = decay * X + alpha * Xn;
      // 4. recurrent noise, keyed by (seed, trial, step)
      if (noisy) {
        for (Index i = 0; i < rows; ++i) {
          philox_normal(opt.seed, static_cast<std::uint64_t>(b0 + i), static_cast<std::uint32_t>(t),
                        xi.data(), n);
          Xn.row(i) += noise_scale * Eigen::Map<const RowVec<double>>(xi.data(), n).cast<S>();
        }
      }
      // 5. rates and readout of the new state
      MatMap<S> Rn = out.r.slab(t, b0, rows);
      rates(Xn, Rn);
      if (opt.readout == Readout::rate) {
        readout<S>(Rn, W_out, b_out, out.y.slab(t, b0, rows));
      } else {
        readout<S>(Xn, W_out, b_out, out.y.slab(t, b0, rows));
      }
    }
  });
}

}  // namespace detail

template <class S>
void rollout(const RateRNNParams<S>& p, const RateOptions& opt, const RateDrive<S>& drive,
             const RateTrajectory<S>& out) {
  detail::rate_rollout(DenseRecurrence<S>(p.W), p.W_in, p.b, p.W_out, p.b_out, opt, drive, out);
}

template <class S>
void rollout(const LowRankRNNParams<S>& p, const RateOptions& opt, const RateDrive<S>& drive,
             const RateTrajectory<S>& out) {
  detail::rate_rollout(LowRankRecurrence<S>(p.U, p.V), p.W_in, p.b, p.W_out, p.b_out, opt, drive,
                       out);
}

extern template void rollout<float>(const RateRNNParams<float>&, const RateOptions&,
                                    const RateDrive<float>&, const RateTrajectory<float>&);
extern template void rollout<double>(const RateRNNParams<double>&, const RateOptions&,
                                     const RateDrive<double>&, const RateTrajectory<double>&);
extern template void rollout<float>(const LowRankRNNParams<float>&, const RateOptions&,
                                    const RateDrive<float>&, const RateTrajectory<float>&);
extern template void rollout<double>(const LowRankRNNParams<double>&, const RateOptions&,
                                     const RateDrive<double>&, const RateTrajectory<double>&);

}  // namespace flexrnn
