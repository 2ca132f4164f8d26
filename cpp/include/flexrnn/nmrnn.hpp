// NM-RNN (Costacurta et al. 2024): a small full-rank modulator z whose output s
// scales each rank-one component of a low-rank network x (specs/models.md):
//   z[t+1] = (1-az) z[t] + az (W_z tanh(z[t]) + B_z u[t] + b_z [+ W_zx tanh(x[t])])
//   s[t+1] = sigmoid(A_z z[t+1] + c_z)
//   x[t+1] = (1-ax) x[t] + ax (U diag(s[t+1]) V^T tanh(x[t]) / n_scale + B_x u[t])
//   y[t]   = C x[t+1] + d
// Stored arrays hold the state after each step; r[t] = tanh(x[t+1]).
#pragma once

#include <cmath>
#include <limits>

#include "flexrnn/kernels.hpp"
#include "flexrnn/parallel.hpp"
#include "flexrnn/phi.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

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
};

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

  for_each_chunk(B, batch_chunk_rows(B, n), [&](Index b0, Index rows) {
    RowMat<S> r0(rows, n), tz(rows, n_mod), K(rows, rank);
    const CMatMap<S> X0(drive.x0 + b0 * n, rows, n), Z0(drive.z0 + b0 * n_mod, rows, n_mod);
    apply_phi_rows<S>(Phi::tanh, X0, r0);

    for (Index t = 0; t < T; ++t) {
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
      K.noalias() = R * p.V;
      K.array() *= Sn.array() * inv_scale;
      Xn.noalias() = K * UT;
      add_input_drive<S>(Ut, B_xT, static_cast<const S*>(nullptr), Xn);
      Xn = (S(1) - ax) * X + ax * Xn;
      // 4. rates and readout
      MatMap<S> Rn = out.r.slab(t, b0, rows);
      apply_phi_rows<S>(Phi::tanh, Xn, Rn);
      detail::readout<S>(Xn, p.C, p.d, out.y.slab(t, b0, rows));
    }
  });
}

extern template void rollout<float>(const NMRNNParams<float>&, const NMRNNOptions&,
                                    const NMRNNDrive<float>&, const NMRNNTrajectory<float>&);
extern template void rollout<double>(const NMRNNParams<double>&, const NMRNNOptions&,
                                     const NMRNNDrive<double>&, const NMRNNTrajectory<double>&);

}  // namespace flexrnn
