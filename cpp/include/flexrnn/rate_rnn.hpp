// RateRNN and LowRankRNN: the continuous-time rate network of docs/models.md,
//   form "current": x[t+1] = (1-alpha) x[t] + alpha (gain[t] post[t] * W (pre[t] * r[t])
//                              + W_in u[t] + b) + sqrt(2 alpha) sigma xi[t]
//   form "rate":    x[t+1] = (1-alpha) x[t] + alpha phi(ng[t] (gain[t] post[t] * W (pre[t] * x[t])
//                              + W_in u[t] + b)) + sqrt(2 alpha) sigma xi[t]
//   r[t+1] = phi(ng[t] x[t+1]),  r[0] = phi(ng[0] x[0]),
//   y[t] = W_out r[t+1] + b_out   (readout "rate"; "state" reads x)
// with W dense or low-rank (W = U V^T / n, never formed); post (receiving neurons: diag(post) W)
// and pre (sending neurons: W diag(pre)) are per-neuron gains, ng the slope of phi. Stored
// arrays hold the state after each step: x[t] here is x[t+1] of the spec.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "flexrnn/kernels.hpp"
#include "flexrnn/loss.hpp"
#include "flexrnn/parallel.hpp"
#include "flexrnn/phi.hpp"
#include "flexrnn/random.hpp"
#include "flexrnn/rate_step.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

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

// A per-neuron gain of one run: the n values of step t, trial b at data + t * t_stride +
// b * b_stride (a stride is 0 along an axis the gain is constant over: (n,) has both 0);
// null data for ones.
template <class S>
struct NeuronGains {
  const S* data = nullptr;
  Index t_stride = 0, b_stride = 0;
  explicit operator bool() const { return data != nullptr; }
  bool constant() const { return t_stride == 0 && b_stride == 0; }
  const S* at(Index t, Index b) const { return data + t * t_stride + b * b_stride; }
};

// Everything that varies per run; buffers are owned by the caller.
template <class S>
struct RateDrive {
  CTensor3<S> u;                   // (T, B, n_in)
  const S* x0 = nullptr;           // (B, n)
  const S* gain = nullptr;         // (T, B), or null for gain_scalar everywhere
  S gain_scalar = S(1);
  NeuronGains<S> neuron_gain;      // slope of phi, ng
  NeuronGains<S> pre_gain;         // per sending neuron: W diag(pre)
  NeuronGains<S> post_gain;        // per receiving neuron: diag(post) W
};

template <class S>
struct RateTrajectory {
  Tensor3<S> x, r, y;  // (T, B, n), (T, B, n), (T, B, n_out); x, r with null data (T, B, n
                       // still set): not stored, outputs only (rollout, not loss_and_grad)
  Tensor3<S> pre{};    // (T, B, n) or unset: form "rate" keeps phi's argument for backward
  Tensor3<S> rec{};    // (T, B, n) or unset: W (pre * s) of each step, for the gains' gradients
};

// Where the gradients of the gains go (each per step and trial; null: not wanted): gain
// (T, B), pre_gain, post_gain (T, B, n), any contents; neuron_gain (T, B, n), zeros on entry
// (the slope of step t collects from step t and t + 1).
template <class S>
struct GainGrads {
  S* gain = nullptr;
  S* pre_gain = nullptr;
  S* post_gain = nullptr;
  S* neuron_gain = nullptr;
  bool need_rec() const { return gain || post_gain; }
};

// Recurrent weights that are an (n, n) matrix: rec = R W^T. W^T is kept as a
// row-major copy: for one trial the product is then a sum of contiguous rows of
// W^T (no horizontal reductions), and Eigen's GEMM packs it as fast as W.
template <class S>
struct DenseRecurrence {
  CMatMap<S> W;  // (n, n)
  RowMat<S> WT;  // (n, n) = W^T
  explicit DenseRecurrence(const CMatMap<S>& W_) : W(W_), WT(W_.transpose()) {}
  Index work_cols() const { return 0; }
  template <class In, class Out>
  void apply(const In& R, Out& out, RowMat<S>& /*work*/) const {
    out.noalias() = R * WT;
  }
  // adjoint: out = D W (rows of D are dL/d(drive))
  template <class In, class Out>
  void apply_adjoint(const In& D, Out& out, RowMat<S>& /*work*/) const {
    out.noalias() = D * W;
  }
  std::vector<std::pair<Index, Index>> grad_shapes() const { return {{W.rows(), W.cols()}}; }
  // dW += D^T R over a window of (step, trial) rows
  template <class DBlock, class RBlock>
  void accumulate(const DBlock& D, const RBlock& R, RowMat<S>* grads, RowMat<S>& /*work*/) const {
    grads[0].noalias() += D.transpose() * R;
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
  // adjoint: out = D U V^T / n
  template <class In, class Out>
  void apply_adjoint(const In& D, Out& out, RowMat<S>& work) const {
    auto w = work.topRows(D.rows());
    w.noalias() = D * UT.transpose();
    out.noalias() = w * V.transpose();
  }
  std::vector<std::pair<Index, Index>> grad_shapes() const {
    return {{V.rows(), V.cols()}, {V.rows(), V.cols()}};
  }
  // dU += D^T (R V) / n,  dV += R^T (D U) / n   over a window of (step, trial) rows
  template <class DBlock, class RBlock>
  void accumulate(const DBlock& D, const RBlock& R, RowMat<S>* grads, RowMat<S>& work) const {
    auto w = work.topRows(R.rows());  // work has at least R.rows() rows: no allocation
    w.noalias() = R * V;
    grads[0].noalias() += D.transpose() * w / S(V.rows());
    w.noalias() = D * UT.transpose();
    grads[1].noalias() += R.transpose() * w;
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
  const EulerStep<S> euler(opt.form, opt.alpha);
  const bool noisy = opt.noise_std != 0.0;
  const S noise_scale = S(std::sqrt(2.0 * opt.alpha) * opt.noise_std);
  const RowMat<S> W_inT = W_in.transpose();  // rows of W_in^T are contiguous for the axpys
  const bool current = opt.form == Form::current;

  const NeuronGains<S>& ng = drive.neuron_gain;
  // R = phi(ng[t] x) for the trials b0.. of the block, ng the per-neuron slope; R may alias X
  auto rates = [&](Index t, Index b0, const auto& X, auto&& R) {
    if (!ng) {
      apply_phi_rows<S>(opt.phi, X, R);
      return;
    }
    if (ng.constant()) {
      R.array() = X.array().rowwise() * CRowVecMap<S>(ng.data, n).array();
    } else {
      for (Index i = 0; i < R.rows(); ++i) {
        R.row(i).array() = X.row(i).array() * CRowVecMap<S>(ng.at(t, b0 + i), n).array();
      }
    }
    apply_phi_rows<S>(opt.phi, R, R);
  };
  // rows of A times a per-neuron gain of step t (trials b0..)
  auto scale_rows = [&](const NeuronGains<S>& g, Index t, Index b0, auto&& A) {
    for (Index i = 0; i < A.rows(); ++i) {
      A.row(i).array() *= CRowVecMap<S>(g.at(t, b0 + i), n).array();
    }
  };

  const double work = double(T) * B * n * (n + drive.u.N);  // multiply-adds, roughly
  const double trial_step_work = work / double(std::max<Index>(T * B, 1));

  // Without stored states (out.x.data null: outputs only) each chunk keeps the states of the
  // last two steps in buffers of its own, alternating.
  const bool keep = out.x.data != nullptr;
  for_each_chunk(B, batch_chunk_rows(B, n), work, [&](Index b0, Index rows) {
    RowMat<S> r0(rows, n), work(rows, rec.work_cols());
    RowMat<S> source(drive.pre_gain ? rows : 0, n);  // pre * s
    RowMat<S> xbuf(keep ? 0 : 2 * rows, n), rbuf(keep ? 0 : 2 * rows, n);
    auto x_at = [&](Index t) {
      return keep ? out.x.slab(t, b0, rows) : MatMap<S>(xbuf.data() + (t % 2) * rows * n, rows, n);
    };
    auto r_at = [&](Index t) {
      return keep ? out.r.slab(t, b0, rows) : MatMap<S>(rbuf.data() + (t % 2) * rows * n, rows, n);
    };
    std::vector<double> xi(noisy ? static_cast<std::size_t>(n) : 0);
    const CMatMap<S> X0(drive.x0 + b0 * n, rows, n);
    if (current) rates(0, b0, X0, r0);
    InterruptPoint interruption;
    const double step_work = trial_step_work * double(rows);

    for (Index t = 0; t < T; ++t) {
      interruption(step_work);
      const CMatMap<S> X(t == 0 ? X0.data() : x_at(t - 1).data(), rows, n);
      const CMatMap<S> R(t == 0 ? r0.data() : r_at(t - 1).data(), rows, n);
      MatMap<S> Xn = x_at(t);

      // 1. recurrent drive gain[t] post[t] * W (pre[t] * s), s = phi(ng x) (current) or x (rate)
      const CMatMap<S>& Src = current ? R : X;
      if (drive.pre_gain) {
        source = Src;
        scale_rows(drive.pre_gain, t, b0, source);
        rec.apply(source, Xn, work);
      } else {
        rec.apply(Src, Xn, work);
      }
      if (out.rec.data) out.rec.slab(t, b0, rows) = Xn;
      if (drive.post_gain) scale_rows(drive.post_gain, t, b0, Xn);
      if (drive.gain) {
        for (Index i = 0; i < rows; ++i) Xn.row(i) *= drive.gain[t * B + b0 + i];
      } else if (drive.gain_scalar != S(1)) {
        Xn *= drive.gain_scalar;
      }
      // 2. + W_in u[t] + b
      add_input_drive<S>(drive.u.slab(t, b0, rows), W_inT, b, Xn);
      // 3. Euler step
      if (!current && out.pre.data) out.pre.slab(t, b0, rows) = Xn;
      euler(X, Xn, Xn, [&](const auto& A, auto&& R_) { rates(t, b0, A, R_); });
      // 4. recurrent noise, keyed by (seed, trial, step)
      if (noisy) {
        for (Index i = 0; i < rows; ++i) {
          philox_normal(opt.seed, static_cast<std::uint64_t>(b0 + i), static_cast<std::uint32_t>(t),
                        xi.data(), n);
          Xn.row(i) += noise_scale * Eigen::Map<const RowVec<double>>(xi.data(), n).cast<S>();
        }
      }
      // 5. rates and readout of the new state
      MatMap<S> Rn = r_at(t);
      rates(t, b0, Xn, Rn);
      if (opt.readout == Readout::rate) {
        readout<S>(Rn, W_out, b_out, out.y.slab(t, b0, rows));
      } else {
        readout<S>(Xn, W_out, b_out, out.y.slab(t, b0, rows));
      }
    }
  });
}

// Adjoint of rate_rollout (BPTT), run over the stored trajectory `tr` (x, r, y, pre for
// form "rate", rec when the gradients of gain or post_gain are wanted). With g = dL/dx[t+1]
// (spec indexing), D = dL/d(drive at step t), s = r[t] (current) or x[t] (rate) and
// z = W (pre[t] * s) (tr.rec):
//   readout:  g += dy W_out [* ng phi'(ng x[t+1])],  dW_out += dy^T h[t+1],  db_out += dy
//   current:  D = alpha g;                            source = gain[t] pre[t] * r[t]
//   rate:     D = alpha g * ng phi'(ng pre[t]);       source = gain[t] pre[t] * x[t]
//   dW += (post[t] * D)^T source,  dW_in += D^T u[t],  db += D
//   J = gain[t] (post[t] * D) W
//   g <- (1 - alpha) g + pre[t] * J [* ng phi'(ng x[t]) in form "current"]
//   dgain[t] = sum(post[t] * D * z),  dpost[t] = gain[t] D * z,  dpre[t] = J * s
//   dng: for each phi(ng v), (dL/d phi) * phi'(ng v) * v: the readout's r[t+1] (step t's
//   slope), the rates r[t] the recurrence reads (current: step t-1's slope, step 0's for
//   x0) and the update phi(ng pre[t]) (rate form, step t's slope)
// Parameter gradients are accumulated over windows of steps as one matrix product per
// window (a product per step would have an inner dimension of a few trials).
template <class S, class Rec>
double rate_backward(const Rec& rec, const CMatMap<S>& W_out, const RateOptions& opt,
                     const RateDrive<S>& drive, const RateTrajectory<S>& tr,
                     const LossSpec<S>& loss, const std::vector<S*>& rec_grads, S* dW_in, S* db,
                     S* dW_out, S* db_out, S* dx0, const GainGrads<S>& dgains) {
  const Index T = tr.x.T, B = tr.x.B, n = tr.x.N, n_out = tr.y.N, n_in = drive.u.N;
  const S alpha = S(opt.alpha), decay = S(1.0 - opt.alpha);
  const S scale = S(loss.scale());
  const bool current = opt.form == Form::current;
  const bool read_rate = opt.readout == Readout::rate;
  if (B == 0 || n == 0) return 0.0;

  auto shapes = rec.grad_shapes();
  const std::size_t n_rec = shapes.size();
  shapes.push_back({n, n_in});   // W_in
  shapes.push_back({1, n});      // b
  shapes.push_back({n_out, n});  // W_out
  shapes.push_back({1, n_out});  // b_out
  const Index rows_per_chunk = detail::backward_chunk_rows(B, batch_chunk_rows(B, n));
  const Index n_chunks = (B + rows_per_chunk - 1) / rows_per_chunk;
  ChunkGrads<S> grads(n_chunks, shapes);
  std::vector<double> chunk_loss(static_cast<std::size_t>(n_chunks), 0.0);
  const NeuronGains<S>& ngs = drive.neuron_gain;
  const CRowVecMap<S> ng(ngs.constant() ? ngs.data : nullptr, ngs && ngs.constant() ? n : 0);
  // rows of A times a per-neuron gain of step t (trials b0..)
  auto scale_rows = [&](const NeuronGains<S>& g, Index t, Index b0, auto&& A) {
    for (Index i = 0; i < A.rows(); ++i) {
      A.row(i).array() *= CRowVecMap<S>(g.at(t, b0 + i), n).array();
    }
  };

  // out = ng[t] * phi'(ng[t] X) row by row for the trials b0.. (out may not alias X)
  auto dphi_of = [&](Index t, Index b0, const auto& X, RowMat<S>& out) {
    if (ngs && !ngs.constant()) {
      for (Index i = 0; i < out.rows(); ++i) {
        const CRowVecMap<S> ng_i(ngs.at(t, b0 + i), n);
        out.row(i).array() = X.row(i).array() * ng_i.array();
        apply_dphi<S>(opt.phi, out.row(i).data(), out.row(i).data(), n);
        out.row(i).array() *= ng_i.array();
      }
    } else if (ngs) {
      out.array() = X.array().rowwise() * ng.array();
      for (Index i = 0; i < out.rows(); ++i) {
        apply_dphi<S>(opt.phi, out.row(i).data(), out.row(i).data(), n);
      }
      out.array().rowwise() *= ng.array();
    } else {
      for (Index i = 0; i < out.rows(); ++i) {
        apply_dphi<S>(opt.phi, X.row(i).data(), out.row(i).data(), n);
      }
    }
  };
  auto gain_at = [&](Index t, Index b) -> S {
    return drive.gain ? drive.gain[t * B + b] : drive.gain_scalar;
  };

  const double work = 3.0 * T * B * n * (n + n_in);  // multiply-adds, roughly
  const double trial_step_work = work / double(std::max<Index>(T * B, 1));

  for_each_chunk(B, rows_per_chunk, work, [&](Index b0, Index rows) {
    const Index chunk = b0 / rows_per_chunk;
    RowMat<S>* g_rec = &grads.at(chunk, 0);
    RowMat<S>& g_W_in = grads.at(chunk, n_rec);
    RowMat<S>& g_b = grads.at(chunk, n_rec + 1);
    RowMat<S>& g_W_out = grads.at(chunk, n_rec + 2);
    RowMat<S>& g_b_out = grads.at(chunk, n_rec + 3);
    // windows of `steps` time steps x `rows` trials
    const Index steps = std::max<Index>(1, 256 / rows);
    RowMat<S> Dwin(steps * rows, n), Swin(steps * rows, n), Uwin(steps * rows, n_in);
    RowMat<S> DPwin(drive.post_gain ? steps * rows : 0, n);  // post * D: the side of dW
    RowVec<S> dz(dgains.need_rec() ? n : 0);
    const bool want_dng = dgains.neuron_gain != nullptr;
    RowMat<S> E(want_dng ? rows : 0, n), A(want_dng ? rows : 0, n);
    // E = phi'(ng[t] X) * X, the derivative of phi(ng X) in ng per unit of dL/d phi
    auto dphi_dng = [&](Index t, Index b0_, const auto& X) {
      for (Index i = 0; i < rows; ++i) {
        if (ngs) {
          E.row(i).array() = X.row(i).array() * CRowVecMap<S>(ngs.at(t, b0_ + i), n).array();
        } else {
          E.row(i) = X.row(i);
        }
        apply_dphi<S>(opt.phi, E.row(i).data(), E.row(i).data(), n);
        E.row(i).array() *= X.row(i).array();
      }
    };
    auto add_dng = [&](Index t, const RowMat<S>& Adj) {  // dng[t] += Adj * E
      MatMap<S> out(dgains.neuron_gain + (t * B + b0) * n, rows, n);
      out.array() += Adj.array() * E.array();
    };
    RowMat<S> G = RowMat<S>::Zero(rows, n), D(rows, n), J(rows, n), dY(rows, n_out);
    RowMat<S> dphi_cur(rows, n), dphi_prev(rows, n), work(rows * steps, rec.work_cols());
    RowMat<S> r0(current ? rows : 0, n);
    const CMatMap<S> X0(drive.x0 + b0 * n, rows, n);
    if (current) {
      if (ngs) {
        r0 = X0;
        scale_rows(ngs, 0, b0, r0);
        apply_phi_rows<S>(opt.phi, r0, r0);
      } else {
        apply_phi_rows<S>(opt.phi, X0, r0);
      }
    }
    if (read_rate && T > 0) dphi_of(T - 1, b0, tr.x.slab(T - 1, b0, rows), dphi_cur);
    Index filled = 0;  // steps in the window
    auto flush = [&]() {
      if (filled == 0) return;
      const Index m = filled * rows;
      if (drive.post_gain) {
        rec.accumulate(DPwin.topRows(m), Swin.topRows(m), g_rec, work);
      } else {
        rec.accumulate(Dwin.topRows(m), Swin.topRows(m), g_rec, work);
      }
      g_W_in.noalias() += Dwin.topRows(m).transpose() * Uwin.topRows(m);
      g_b += Dwin.topRows(m).colwise().sum();
      filled = 0;
    };
    double lsum = 0.0;
    InterruptPoint interruption;
    const double step_work = trial_step_work * double(rows);

    for (Index t = T - 1; t >= 0; --t) {
      interruption(step_work);
      const CMatMap<S> Xt(tr.x.slab(t, b0, rows).data(), rows, n);
      const CMatMap<S> Xp(t == 0 ? X0.data() : tr.x.slab(t - 1, b0, rows).data(), rows, n);
      // 1. loss and readout at step t
      lsum += loss.grad(t, b0, tr.y.slab(t, b0, rows), dY, scale);
      if (read_rate) {
        detail::readout_backward<S>(dY, tr.r.slab(t, b0, rows), W_out, g_W_out, g_b_out, G,
                                    dphi_cur.data());
        if (want_dng) {
          A.noalias() = dY * W_out;
          dphi_dng(t, b0, Xt);
          add_dng(t, A);
        }
      } else {
        detail::readout_backward<S>(dY, Xt, W_out, g_W_out, g_b_out, G,
                                    static_cast<const S*>(nullptr));
      }
      // 2. phi' at the previous state: for the adjoint (current) and the next readout
      if (current || read_rate) dphi_of(t == 0 ? 0 : t - 1, b0, Xp, dphi_prev);
      // 3. D = dL/d(drive), stored in the window with its source and input
      const Index w = filled * rows;
      auto Dw = Dwin.middleRows(w, rows);
      const CMatMap<S> Src(current ? (t == 0 ? r0.data() : tr.r.slab(t - 1, b0, rows).data())
                                   : Xp.data(),
                           rows, n);
      if (current) {
        Dw = alpha * G;
      } else {
        const CMatMap<S> P(tr.pre.slab(t, b0, rows).data(), rows, n);
        dphi_of(t, b0, P, D);
        Dw.array() = alpha * G.array() * D.array();
        if (want_dng) {
          A = alpha * G;
          dphi_dng(t, b0, P);
          add_dng(t, A);
        }
      }
      Swin.middleRows(w, rows) = Src;
      for (Index i = 0; i < rows; ++i) Swin.row(w + i) *= gain_at(t, b0 + i);
      if (drive.pre_gain) scale_rows(drive.pre_gain, t, b0, Swin.middleRows(w, rows));
      Uwin.middleRows(w, rows) = drive.u.slab(t, b0, rows);
      // gradients of the gains that act after W: dgain = sum(post D z), dpost = gain D z
      if (dgains.need_rec()) {
        const CMatMap<S> Z(tr.rec.slab(t, b0, rows).data(), rows, n);
        for (Index i = 0; i < rows; ++i) {
          const Index tb = t * B + b0 + i;
          dz = Dw.row(i).cwiseProduct(Z.row(i));
          if (dgains.post_gain) {
            Eigen::Map<RowVec<S>>(dgains.post_gain + tb * n, n) = gain_at(t, b0 + i) * dz;
          }
          if (dgains.gain) {
            if (drive.post_gain) {
              dz.array() *= CRowVecMap<S>(drive.post_gain.at(t, b0 + i), n).array();
            }
            dgains.gain[tb] = dz.sum();
          }
        }
      }
      // 4. adjoint through the recurrence: g <- (1 - alpha) g + pre * (gain post D W) [* dphi]
      for (Index i = 0; i < rows; ++i) D.row(i) = gain_at(t, b0 + i) * Dw.row(i);
      if (drive.post_gain) {
        scale_rows(drive.post_gain, t, b0, D);
        DPwin.middleRows(w, rows) = Dw;
        scale_rows(drive.post_gain, t, b0, DPwin.middleRows(w, rows));
      }
      rec.apply_adjoint(D, J, work);
      if (dgains.pre_gain) {
        MatMap<S>(dgains.pre_gain + (t * B + b0) * n, rows, n) = J.cwiseProduct(Src);
      }
      if (drive.pre_gain) scale_rows(drive.pre_gain, t, b0, J);
      if (current && want_dng) {
        dphi_dng(t == 0 ? 0 : t - 1, b0, Xp);
        add_dng(t == 0 ? 0 : t - 1, J);
      }
      if (current) J.array() *= dphi_prev.array();
      G = decay * G + J;
      std::swap(dphi_cur, dphi_prev);
      if (++filled == steps) flush();
    }
    flush();
    MatMap<S>(dx0 + b0 * n, rows, n) = G;
    chunk_loss[static_cast<std::size_t>(chunk)] = lsum;
  });

  std::vector<S*> outs(rec_grads);
  outs.insert(outs.end(), {dW_in, db, dW_out, db_out});
  grads.reduce(outs);
  double total = 0.0;
  for (double l : chunk_loss) total += l;
  return total * loss.scale();
}

}  // namespace detail

// Where loss_and_grad writes the gradients (caller-owned, row-major, any contents):
// rec = {W} or {U, V}; x0 is per trial (B, n); gains as GainGrads (tr.rec must be set when
// gains.need_rec()).
template <class S>
struct RateGrads {
  std::vector<S*> rec;
  S *W_in, *b, *W_out, *b_out, *x0;
  GainGrads<S> gains{};
};

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

// Forward (into `tr`, which must have pre set for form "rate"), loss, and BPTT gradients.
template <class S, class Params>
double loss_and_grad(const Params& p, const RateOptions& opt, const RateDrive<S>& drive,
                     const LossSpec<S>& loss, const RateTrajectory<S>& tr, const RateGrads<S>& g) {
  auto run = [&](const auto& rec) {
    detail::rate_rollout(rec, p.W_in, p.b, p.W_out, p.b_out, opt, drive, tr);
    return detail::rate_backward(rec, p.W_out, opt, drive, tr, loss, g.rec, g.W_in, g.b,
                                 g.W_out, g.b_out, g.x0, g.gains);
  };
  if constexpr (std::is_same_v<Params, RateRNNParams<S>>) {
    return run(DenseRecurrence<S>(p.W));
  } else {
    return run(LowRankRecurrence<S>(p.U, p.V));
  }
}

extern template double loss_and_grad(const RateRNNParams<float>&, const RateOptions&,
                                     const RateDrive<float>&, const LossSpec<float>&,
                                     const RateTrajectory<float>&, const RateGrads<float>&);
extern template double loss_and_grad(const RateRNNParams<double>&, const RateOptions&,
                                     const RateDrive<double>&, const LossSpec<double>&,
                                     const RateTrajectory<double>&, const RateGrads<double>&);
extern template double loss_and_grad(const LowRankRNNParams<float>&, const RateOptions&,
                                     const RateDrive<float>&, const LossSpec<float>&,
                                     const RateTrajectory<float>&, const RateGrads<float>&);
extern template double loss_and_grad(const LowRankRNNParams<double>&, const RateOptions&,
                                     const RateDrive<double>&, const LossSpec<double>&,
                                     const RateTrajectory<double>&, const RateGrads<double>&);
extern template void rollout<float>(const RateRNNParams<float>&, const RateOptions&,
                                    const RateDrive<float>&, const RateTrajectory<float>&);
extern template void rollout<double>(const RateRNNParams<double>&, const RateOptions&,
                                     const RateDrive<double>&, const RateTrajectory<double>&);
extern template void rollout<float>(const LowRankRNNParams<float>&, const RateOptions&,
                                    const RateDrive<float>&, const RateTrajectory<float>&);
extern template void rollout<double>(const LowRankRNNParams<double>&, const RateOptions&,
                                     const RateDrive<double>&, const RateTrajectory<double>&);

}  // namespace flexrnn
