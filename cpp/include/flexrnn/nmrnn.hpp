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
}  // namespace detail

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
  const RowMat<S> W_zT = p.W_z.transpose(), UT = p.U.transpose();

  // multiply-adds, roughly
  const double work = double(T) * B * (n + n_mod) * (2 * rank + n_mod + drive.u.N);
  const double trial_step_work = work / double(std::max<Index>(T * B, 1));

  for_each_chunk(B, batch_chunk_rows(B, n), work, [&](Index b0, Index rows) {
    RowMat<S> r0(rows, n), tz(rows, n_mod), K(rows, rank);
    RowMat<S> Rp(drive.pre_gain ? rows : 0, n);  // pre * tanh(x)
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
      Zn.noalias() = tz * W_zT;
      add_input_drive<S>(Ut, B_zT, p.b_z, Zn);
      if (p.W_zx) Zn.noalias() += R * CMatMap<S>(p.W_zx, n_mod, n).transpose();
      Zn = (S(1) - az) * Z + az * Zn;
      // 2. component gains s[t+1] = sigmoid(A_z z[t+1] + c_z), ablated components held
      Sn.noalias() = Zn * p.A_z.transpose();
      Sn.rowwise() += CRowVecMap<S>(p.c_z, rank);
      for (Index i = 0; i < rows; ++i) apply_sigmoid<S>(Sn.row(i).data(), Sn.row(i).data(), rank);
      if (drive.s_clamp) {
        for (Index k = 0; k < rank; ++k) {
          if (!std::isnan(drive.s_clamp[k])) Sn.col(k).setConstant(drive.s_clamp[k]);
        }
      }
      // 3. output network: x[t+1], the low-rank product applied factor by factor
      if (drive.pre_gain) {
        Rp = R;
        detail::times_neuron_gain(drive.pre_gain, t, b0, Rp);
        K.noalias() = Rp * p.V;
      } else {
        K.noalias() = R * p.V;
      }
      K.array() *= Sn.array() * inv_scale;
      detail::times_gain(drive, t, b0, B, K);
      Xn.noalias() = K * UT;
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
  const Index rows_per_chunk = detail::backward_chunk_rows(B, batch_chunk_rows(B, n));
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
    const bool gained = drive.has_gain();
    RowMat<S> Rp(drive.pre_gain ? rows : 0, n), Dxp(drive.post_gain ? rows : 0, n);
    RowMat<S> Sg(gained ? rows : 0, rank);  // g s / n_scale
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
      if (drive.post_gain) {
        G(kU).noalias() += DxP_all.topRows(m).transpose() * KS_all.topRows(m);
      } else {
        G(kU).noalias() += Dx_all.topRows(m).transpose() * KS_all.topRows(m);
      }
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
      // 2. output network
      Dx = ax * gx;
      const Index at = gathered * rows;
      Dx_all.middleRows(at, rows) = Dx;
      U_all.middleRows(at, rows) = Ut;
      if (gained || drive.pre_gain || drive.post_gain) {
        if (drive.pre_gain) {
          Rp = R;
          detail::times_neuron_gain(drive.pre_gain, t, b0, Rp);
          R_all.middleRows(at, rows) = Rp;
          RV.noalias() = Rp * p.V;
        } else {
          R_all.middleRows(at, rows) = R;
          RV.noalias() = R * p.V;
        }
        if (gained) {
          Sg = St * inv_scale;
          detail::times_gain(drive, t, b0, B, Sg);
        }
        // g s / n_scale as (SG * sg_scale): Sg under a gain, else s with 1 / n_scale
        const CMatMap<S> SG(gained ? Sg.data() : St.data(), rows, rank);
        const S sg_scale = gained ? S(1) : inv_scale;
        KS_all.middleRows(at, rows).array() = RV.array() * SG.array() * sg_scale;  // k g s
        if (drive.post_gain) {
          Dxp = Dx;
          detail::times_neuron_gain(drive.post_gain, t, b0, Dxp);
          DxP_all.middleRows(at, rows) = Dxp;
          dk.noalias() = Dxp * p.U;
        } else {
          dk.noalias() = Dx * p.U;
        }
        ds.array() = dk.array() * RV.array() * inv_scale;
        if (gained) detail::times_gain(drive, t, b0, B, ds);
        dk.array() *= SG.array() * sg_scale;  // dL/d((pre tanh(x)) V)
        dK_all.middleRows(at, rows) = dk;
        if (++gathered == block) flush();
        gr.noalias() = dk * p.V.transpose();
        if (drive.pre_gain) detail::times_neuron_gain(drive.pre_gain, t, b0, gr);
      } else {
        R_all.middleRows(at, rows) = R;
        RV.noalias() = R * p.V;
        KS_all.middleRows(at, rows).array() = RV.array() * St.array() * inv_scale;  // k s
        dk.noalias() = Dx * p.U;
        ds.array() = dk.array() * RV.array() * inv_scale;
        dk.array() *= St.array() * inv_scale;  // dL/d(tanh(x) V)
        dK_all.middleRows(at, rows) = dk;
        if (++gathered == block) flush();
        gr.noalias() = dk * p.V.transpose();
      }
      // 3. component gains: clamped ones are constants
      if (drive.s_clamp) {
        for (Index k = 0; k < rank; ++k) {
          if (!std::isnan(drive.s_clamp[k])) ds.col(k).setZero();
        }
      }
      ds.array() *= St.array() * (S(1) - St.array());
      G(kAz).noalias() += ds.transpose() * Zt;
      G(kcz) += ds.colwise().sum();
      gz.noalias() += ds * p.A_z;
      // 4. modulator
      apply_phi_rows<S>(Phi::tanh, Z, tz);
      Dz = az * gz;
      G(kWz).noalias() += Dz.transpose() * tz;
      G(kBz).noalias() += Dz.transpose() * Ut;
      G(kbz) += Dz.colwise().sum();
      if (feedback) {
        G(kWzx).noalias() += Dz.transpose() * R;
        gr.noalias() += Dz * W_zx;
      }
      J.noalias() = Dz * p.W_z;
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
