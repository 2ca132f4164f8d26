// NM-RNN (Costacurta et al. 2024): a small full-rank modulator z whose output s
// scales each rank-one component of a low-rank network x (docs/models.md):
//   z[t+1] = (1-az) z[t] + az (W_z tanh(z[t]) + B_z u[t] + b_z [+ W_zx tanh(x[t])])
//   s[t+1] = sigmoid(A_z z[t+1] + c_z)
//   x[t+1] = (1-ax) x[t] + ax (U diag(s[t+1]) V^T tanh(x[t]) / n_scale + B_x u[t])
//   y[t]   = C x[t+1] + d
// Stored arrays hold the state after each step; r[t] = tanh(x[t+1]). Optional gains of the
// run (as on the rate networks) act on the low-rank recurrent term of step t only:
//   gain[t] post[t] * (U diag(s[t+1]) V^T (pre[t] * tanh(x[t]))) / n_scale
// (gain per trial and step, post per receiving and pre per sending neuron).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "flexrnn/kernels.hpp"
#include "flexrnn/loss.hpp"
#include "flexrnn/parallel.hpp"
#include "flexrnn/phi.hpp"
#include "flexrnn/rate_rnn.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

// Rows (trial-steps) of the factors the backward pass gathers before one product reduces them.
inline constexpr Index kGatherRows = 256;

template <class S>
struct NMRNNParams {
  CMatMap<S> W_z;   // (n_mod, n_mod)
  CMatMap<S> B_z;   // (n_mod, n_in)
  const S* b_z;     // (n_mod)
  CMatMap<S> A_z;   // (rank, n_mod)
  const S* c_z;     // (rank)
  CMatMap<S> U, V;  // (n, rank)
  CMatMap<S> B_x;   // (n, n_in)
  CMatMap<S> C;     // (n_out, n)
  const S* d;       // (n_out)
  const S* W_zx;    // (n_mod, n) x -> z feedback, or null
};

struct NMRNNOptions {
  double alpha_x = 0.1;  // dt / tau_x
  double alpha_z = 0.01;  // dt / tau_z
  double n_scale = 1.0;
};

template <class S>
struct NMRNNDrive {
  CTensor3<S> u;              // (T, B, n_in)
  const S* x0 = nullptr;      // (B, n)
  const S* z0 = nullptr;      // (B, n_mod)
  const S* s_clamp = nullptr;  // (rank): NaN = free, a number = s held there (ablation: 0); or null
  const S* gain = nullptr;     // (T, B), or null for gain_scalar everywhere
  S gain_scalar = S(1);
  NeuronGains<S> pre_gain;     // per sending neuron (n): U diag(s) V^T diag(pre)
  NeuronGains<S> post_gain;    // per receiving neuron (n): diag(post) U diag(s) V^T
  bool has_gain() const { return gain != nullptr || gain_scalar != S(1); }
};

namespace detail {
// A (rows of trials b0..) times a per-neuron gain of step t, row by row.
template <class S, class M>
void times_neuron_gain(const NeuronGains<S>& g, Index t, Index b0, M&& A) {
  for (Index i = 0; i < A.rows(); ++i) {
    A.row(i).array() *= CRowVecMap<S>(g.at(t, b0 + i), A.cols()).array();
  }
}
// A (rows of trials b0..) times the recurrent gain of step t, row by row; nothing at gain 1.
template <class S, class M>
void times_gain(const NMRNNDrive<S>& d, Index t, Index b0, Index B, M&& A) {
  if (d.gain) {
    for (Index i = 0; i < A.rows(); ++i) A.row(i) *= d.gain[t * B + b0 + i];
  } else if (d.gain_scalar != S(1)) {
    A *= d.gain_scalar;
  }
}
// The thin products of the low-rank network, with BT (k, n) row-major (k = rank): Eigen's
// product dispatch and packing cost more than the arithmetic at these sizes.
// Out (rows, k) = A (rows, n) BT^T: dot products of contiguous rows.
template <class S, class A, class BT, class Out>
void thin_dots(const A& a, const BT& bt, Out&& out) {
  for (Index i = 0; i < a.rows(); ++i) {
    for (Index k = 0; k < bt.rows(); ++k) out(i, k) = a.row(i).dot(bt.row(k));
  }
}
// Out (rows, n) = C (rows, k) BT: per row, the k axpys in passes of up to 4 terms each.
template <class S, class C, class BT, class Out>
void thin_axpys(const C& c, const BT& bt, Out&& out) {
  const Index k = bt.rows();
  for (Index i = 0; i < c.rows(); ++i) {
    auto o = out.row(i);
    auto term = [&](Index j) { return c(i, j) * bt.row(j); };
    if (k == 0) o.setZero();
    for (Index j = 0; j < k; j += 4) {
      const bool first = j == 0;
      switch (std::min<Index>(4, k - j)) {
        case 1:
          if (first) o = term(j); else o += term(j);
          break;
        case 2:
          if (first) o = term(j) + term(j + 1); else o += term(j) + term(j + 1);
          break;
        case 3:
          if (first) {
            o = term(j) + term(j + 1) + term(j + 2);
          } else {
            o += term(j) + term(j + 1) + term(j + 2);
          }
          break;
        default:
          if (first) {
            o = term(j) + term(j + 1) + term(j + 2) + term(j + 3);
          } else {
            o += term(j) + term(j + 1) + term(j + 2) + term(j + 3);
          }
      }
    }
  }
}
}  // namespace detail

// Rows per batch chunk of the NM-RNN (forward and backward): about 8 (its work per row is
// thin) in a number of chunks that is a multiple of 4 from B = 32 on, so that 2 or 4 threads
// get equal shares. Fixed by B alone: results do not depend on the thread count.
inline Index nmrnn_chunk_rows(Index B) {
  if (B < 32) return std::max<Index>(1, (B + 1) / 2);
  const Index chunks = 4 * (B / 32);
  return (B + chunks - 1) / chunks;
}

template <class S>
struct NMRNNTrajectory {
  Tensor3<S> x, r, z, s, y;  // (T,B,n), (T,B,n), (T,B,n_mod), (T,B,rank), (T,B,n_out)
};

template <class S>
void rollout(const NMRNNParams<S>& p, const NMRNNOptions& opt, const NMRNNDrive<S>& drive,
             const NMRNNTrajectory<S>& out) {
  using detail::add_input_drive;
  const Index T = out.x.T, B = out.x.B, n = out.x.N, n_mod = out.z.N, rank = out.s.N;
  if (T == 0 || B == 0) return;
  const S ax = S(opt.alpha_x), az = S(opt.alpha_z);
  const S inv_scale = S(1.0 / opt.n_scale);
  // transposed copies: products with one trial become sums of contiguous rows
  const RowMat<S> B_zT = p.B_z.transpose(), B_xT = p.B_x.transpose();
  const RowMat<S> W_zT = p.W_z.transpose(), A_zT = p.A_z.transpose();
  const RowMat<S> UT = p.U.transpose(), VT = p.V.transpose();

  // multiply-adds, roughly
  const double work = double(T) * B * (n + n_mod) * (2 * rank + n_mod + drive.u.N);
  const double trial_step_work = work / double(std::max<Index>(T * B, 1));

  for_each_chunk(B, nmrnn_chunk_rows(B), work, [&](Index b0, Index rows) {
    RowMat<S> r0(rows, n), tz(rows, n_mod), K(rows, rank);
    RowMat<S> Rp(drive.pre_gain ? rows : 0, n);  // pre * tanh(x)
    RowMat<S> fb(p.W_zx ? rows : 0, n_mod);      // W_zx tanh(x)
    const CMatMap<S> X0(drive.x0 + b0 * n, rows, n), Z0(drive.z0 + b0 * n_mod, rows, n_mod);
    apply_phi_rows<S>(Phi::tanh, X0, r0);
    InterruptPoint interruption;
    const double step_work = trial_step_work * double(rows);

    for (Index t = 0; t < T; ++t) {
      interruption(step_work);
      const CMatMap<S> X(t == 0 ? X0.data() : out.x.slab(t - 1, b0, rows).data(), rows, n);
      const CMatMap<S> R(t == 0 ? r0.data() : out.r.slab(t - 1, b0, rows).data(), rows, n);
      const CMatMap<S> Z(t == 0 ? Z0.data() : out.z.slab(t - 1, b0, rows).data(), rows, n_mod);
      const CMatMap<S> Ut = drive.u.slab(t, b0, rows);
      MatMap<S> Zn = out.z.slab(t, b0, rows), Sn = out.s.slab(t, b0, rows);
      MatMap<S> Xn = out.x.slab(t, b0, rows);

      // 1. modulator: z[t+1]
      apply_phi_rows<S>(Phi::tanh, Z, tz);
      Zn.noalias() = tz.lazyProduct(W_zT);
      add_input_drive<S>(Ut, B_zT, p.b_z, Zn);
      if (p.W_zx) {
        detail::thin_dots<S>(R, CMatMap<S>(p.W_zx, n_mod, n), fb);
        Zn += fb;
      }
      Zn = (S(1) - az) * Z + az * Zn;
      // 2. component gains s[t+1] = sigmoid(A_z z[t+1] + c_z), ablated components held
      Sn.noalias() = Zn.lazyProduct(A_zT);
      Sn.rowwise() += CRowVecMap<S>(p.c_z, rank);
      apply_sigmoid_rows<S>(Sn);
      if (drive.s_clamp) {
        for (Index k = 0; k < rank; ++k) {
          if (!std::isnan(drive.s_clamp[k])) Sn.col(k).setConstant(drive.s_clamp[k]);
        }
      }
      // 3. output network: x[t+1], the low-rank product applied factor by factor
      if (drive.pre_gain) {
        Rp = R;
        detail::times_neuron_gain(drive.pre_gain, t, b0, Rp);
        detail::thin_dots<S>(Rp, VT, K);
      } else {
        detail::thin_dots<S>(R, VT, K);
      }
      K.array() *= Sn.array() * inv_scale;
      detail::times_gain(drive, t, b0, B, K);
      detail::thin_axpys<S>(K, UT, Xn);
      if (drive.post_gain) detail::times_neuron_gain(drive.post_gain, t, b0, Xn);
      add_input_drive<S>(Ut, B_xT, static_cast<const S*>(nullptr), Xn);
      Xn = (S(1) - ax) * X + ax * Xn;
      // 4. rates and readout
      MatMap<S> Rn = out.r.slab(t, b0, rows);
      apply_phi_rows<S>(Phi::tanh, Xn, Rn);
      detail::readout<S>(Xn, p.C, p.d, out.y.slab(t, b0, rows));
    }
  });
}

// Where loss_and_grad writes the gradients (caller-owned, row-major): one per parameter of
// NMRNNParams (W_zx may be null), and the per-trial initial states x0 (B, n), z0 (B, n_mod).
template <class S>
struct NMRNNGrads {
  S *W_z, *B_z, *b_z, *A_z, *c_z, *U, *V, *B_x, *C, *d, *W_zx, *x0, *z0;
};

// Forward (into `tr`), loss, and BPTT gradients. Adjoint of one step, with gx = dL/dx[t+1],
// gz = dL/dz[t+1] (spec indexing), k = (tanh(x[t]) V) / n_scale:
//   gx += dy C;  dC += dy^T x[t+1];  dd += dy
//   Dx = ax gx:  dB_x += Dx^T u;  dU += Dx^T (k s);  dk = Dx U
//   ds = dk k (0 for clamped components);  gr = (dk s / n_scale) V^T;  dV += tanh(x[t])^T (dk s / n_scale)
//   Ds = ds s (1 - s):  dA_z += Ds^T z[t+1];  dc_z += Ds;  gz += Ds A_z
//   Dz = az gz:  dW_z += Dz^T tanh(z[t]);  dB_z += Dz^T u;  db_z += Dz;  [dW_zx += Dz^T tanh(x[t]); gr += Dz W_zx]
//   gz <- (1 - az) gz + (Dz W_z) (1 - tanh(z[t])^2);  gx <- (1 - ax) gx + gr (1 - tanh(x[t])^2)
// Under the run's gains (g = gain[t], pre[t], post[t]): k = ((pre tanh(x[t])) V) / n_scale,
// Dx enters U's products as post Dx, and the factor s / n_scale becomes g s / n_scale (also in
// ds = g dk k); gr picks up pre, and dV sums (pre tanh(x[t]))^T (...).
template <class S>
double loss_and_grad(const NMRNNParams<S>& p, const NMRNNOptions& opt, const NMRNNDrive<S>& drive,
                     const LossSpec<S>& loss, const NMRNNTrajectory<S>& tr,
                     const NMRNNGrads<S>& g) {
  rollout(p, opt, drive, tr);
  const Index T = tr.x.T, B = tr.x.B, n = tr.x.N, n_mod = tr.z.N, rank = tr.s.N;
  const Index n_in = drive.u.N, n_out = tr.y.N;
  if (B == 0) return 0.0;
  const S ax = S(opt.alpha_x), az = S(opt.alpha_z), inv_scale = S(1.0 / opt.n_scale);
  const S scale = S(loss.scale());
  const bool feedback = p.W_zx != nullptr;
  const CMatMap<S> W_zx(p.W_zx, feedback ? n_mod : 0, feedback ? n : 0);
  enum { kWz, kBz, kbz, kAz, kcz, kU, kV, kBx, kC, kd, kWzx };
  const Index rows_per_chunk = nmrnn_chunk_rows(B);
  const RowMat<S> UT = p.U.transpose(), VT = p.V.transpose();
  const Index n_chunks = (B + rows_per_chunk - 1) / rows_per_chunk;
  ChunkGrads<S> grads(
      n_chunks,
      {{n_mod, n_mod}, {n_mod, n_in}, {1, n_mod}, {rank, n_mod}, {1, rank}, {n, rank}, {n, rank},
       {n, n_in}, {n_out, n}, {1, n_out}, {feedback ? n_mod : 0, feedback ? n : 0}});
  std::vector<double> chunk_loss(static_cast<std::size_t>(n_chunks), 0.0);

  // multiply-adds, roughly
  const double work = 3.0 * T * B * (n + n_mod) * (2 * rank + n_mod + n_in);
  const double trial_step_work = work / double(std::max<Index>(T * B, 1));

  for_each_chunk(B, rows_per_chunk, work, [&](Index b0, Index rows) {
    const Index chunk = b0 / rows_per_chunk;
    auto G = [&](int k) -> RowMat<S>& { return grads.at(chunk, static_cast<std::size_t>(k)); };
    RowMat<S> gx = RowMat<S>::Zero(rows, n), gz = RowMat<S>::Zero(rows, n_mod);
    RowMat<S> dY(rows, n_out), Dx(rows, n), gr(rows, n), r0(rows, n), tz(rows, n_mod);
    RowMat<S> Dz(rows, n_mod), J(rows, n_mod), RV(rows, rank), dk(rows, rank), ds(rows, rank);
    RowMat<S> SG(rows, rank);  // gain s / n_scale
    RowMat<S> Rp(drive.pre_gain ? rows : 0, n), Dxp(drive.post_gain ? rows : 0, n);
    // The gradients of B_x, U and V are sums over steps of products (n x rows)(rows x small):
    // the factors of `block` steps are gathered and reduced in one product each, since a
    // product that thin per step costs mostly Eigen's call and packing overhead.
    const Index block = std::max<Index>(1, kGatherRows / rows);
    RowMat<S> Dx_all(block * rows, n), R_all(block * rows, n), U_all(block * rows, n_in);
    RowMat<S> DxP_all(drive.post_gain ? block * rows : 0, n);  // post * Dx, U's side
    RowMat<S> KS_all(block * rows, rank), dK_all(block * rows, rank);
    Index gathered = 0;  // steps in the buffers
    auto flush = [&]() {
      const Index m = gathered * rows;
      if (m == 0) return;
      G(kBx).noalias() += Dx_all.topRows(m).transpose() * U_all.topRows(m);
      const RowMat<S>& DxU = drive.post_gain ? DxP_all : Dx_all;
      G(kU).noalias() += DxU.topRows(m).transpose() * KS_all.topRows(m);
      G(kV).noalias() += R_all.topRows(m).transpose() * dK_all.topRows(m);
      gathered = 0;
    };
    const CMatMap<S> X0(drive.x0 + b0 * n, rows, n), Z0(drive.z0 + b0 * n_mod, rows, n_mod);
    apply_phi_rows<S>(Phi::tanh, X0, r0);
    double lsum = 0.0;
    InterruptPoint interruption;
    const double step_work = trial_step_work * double(rows);

    for (Index t = T - 1; t >= 0; --t) {
      interruption(step_work);
      const CMatMap<S> Xt(tr.x.slab(t, b0, rows).data(), rows, n);
      const CMatMap<S> Zt(tr.z.slab(t, b0, rows).data(), rows, n_mod);
      const CMatMap<S> St(tr.s.slab(t, b0, rows).data(), rows, rank);
      const CMatMap<S> R(t == 0 ? r0.data() : tr.r.slab(t - 1, b0, rows).data(), rows, n);
      const CMatMap<S> Z(t == 0 ? Z0.data() : tr.z.slab(t - 1, b0, rows).data(), rows, n_mod);
      const CMatMap<S> Ut = drive.u.slab(t, b0, rows);
      // 1. loss and readout y = C x[t+1] + d
      lsum += loss.grad(t, b0, tr.y.slab(t, b0, rows), dY, scale);
      detail::readout_backward<S>(dY, Xt, p.C, G(kC), G(kd), gx, static_cast<const S*>(nullptr));
      // 2. output network: what the sending neurons pass (pre tanh(x)), through V, scaled by
      // g s / n_scale, through U, into the receiving neurons (times post)
      const Index at = gathered * rows;
      auto Dx_at = Dx_all.middleRows(at, rows);
      Dx_at = ax * gx;
      U_all.middleRows(at, rows) = Ut;
      auto R_at = R_all.middleRows(at, rows);  // pre tanh(x[t])
      R_at = R;
      if (drive.pre_gain) detail::times_neuron_gain(drive.pre_gain, t, b0, R_at);
      detail::thin_dots<S>(R_at, VT, RV);
      SG = St * inv_scale;
      detail::times_gain(drive, t, b0, B, SG);
      KS_all.middleRows(at, rows).array() = RV.array() * SG.array();  // k g s
      if (drive.post_gain) {
        auto DxP_at = DxP_all.middleRows(at, rows);
        DxP_at = Dx_at;
        detail::times_neuron_gain(drive.post_gain, t, b0, DxP_at);
        detail::thin_dots<S>(DxP_at, UT, dk);
      } else {
        detail::thin_dots<S>(Dx_at, UT, dk);
      }
      ds.array() = dk.array() * RV.array() * inv_scale;
      detail::times_gain(drive, t, b0, B, ds);
      auto dK_at = dK_all.middleRows(at, rows);
      dK_at.array() = dk.array() * SG.array();  // dL/d((pre tanh(x)) V)
      detail::thin_axpys<S>(dK_at, VT, gr);
      if (drive.pre_gain) detail::times_neuron_gain(drive.pre_gain, t, b0, gr);
      if (++gathered == block) flush();
      // 3. component gains: clamped ones are constants
      if (drive.s_clamp) {
        for (Index k = 0; k < rank; ++k) {
          if (!std::isnan(drive.s_clamp[k])) ds.col(k).setZero();
        }
      }
      ds.array() *= St.array() * (S(1) - St.array());
      G(kAz).noalias() += ds.transpose().lazyProduct(Zt);
      G(kcz) += ds.colwise().sum();
      gz.noalias() += ds.lazyProduct(p.A_z);
      // 4. modulator
      apply_phi_rows<S>(Phi::tanh, Z, tz);
      Dz = az * gz;
      G(kWz).noalias() += Dz.transpose().lazyProduct(tz);
      G(kBz).noalias() += Dz.transpose().lazyProduct(Ut);
      G(kbz) += Dz.colwise().sum();
      if (feedback) {
        G(kWzx).noalias() += Dz.transpose() * R;
        gr.noalias() += Dz * W_zx;
      }
      J.noalias() = Dz.lazyProduct(p.W_z);
      gz = (S(1) - az) * gz + (J.array() * (S(1) - tz.array().square())).matrix();
      gx = (S(1) - ax) * gx + (gr.array() * (S(1) - R.array().square())).matrix();
    }
    flush();
    MatMap<S>(g.x0 + b0 * n, rows, n) = gx;
    MatMap<S>(g.z0 + b0 * n_mod, rows, n_mod) = gz;
    chunk_loss[static_cast<std::size_t>(chunk)] = lsum;
  });

  grads.reduce({g.W_z, g.B_z, g.b_z, g.A_z, g.c_z, g.U, g.V, g.B_x, g.C, g.d, g.W_zx});
  double total = 0.0;
  for (double l : chunk_loss) total += l;
  return total * loss.scale();
}

extern template double loss_and_grad(const NMRNNParams<float>&, const NMRNNOptions&,
                                     const NMRNNDrive<float>&, const LossSpec<float>&,
                                     const NMRNNTrajectory<float>&, const NMRNNGrads<float>&);
extern template double loss_and_grad(const NMRNNParams<double>&, const NMRNNOptions&,
                                     const NMRNNDrive<double>&, const LossSpec<double>&,
                                     const NMRNNTrajectory<double>&, const NMRNNGrads<double>&);

extern template void rollout<float>(const NMRNNParams<float>&, const NMRNNOptions&,
                                    const NMRNNDrive<float>&, const NMRNNTrajectory<float>&);
extern template void rollout<double>(const NMRNNParams<double>&, const NMRNNOptions&,
                                     const NMRNNDrive<double>&, const NMRNNTrajectory<double>&);

}  // namespace flexrnn
