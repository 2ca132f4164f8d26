// LSTM baseline (specs/models.md), without peepholes, gates in PyTorch's order:
//   [i; f; g; o] = W_ih u[t] + W_hh h[t] + b,  i, f, o = sigmoid, g = tanh
//   c[t+1] = f c[t] + i g,  h[t+1] = o tanh(c[t+1]),  y[t] = C h[t+1] + d
#pragma once

#include "flexrnn/kernels.hpp"
#include "flexrnn/parallel.hpp"
#include "flexrnn/phi.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

template <class S>
struct LSTMParams {
  CMatMap<S> W_ih;  // (4n, n_in)
  CMatMap<S> W_hh;  // (4n, n)
  const S* b;       // (4n)
  CMatMap<S> C;     // (n_out, n)
  const S* d;       // (n_out)
};

template <class S>
struct LSTMDrive {
  CTensor3<S> u;          // (T, B, n_in)
  const S* h0 = nullptr;  // (B, n)
  const S* c0 = nullptr;  // (B, n)
};

template <class S>
struct LSTMTrajectory {
  Tensor3<S> h, c, y;  // (T, B, n), (T, B, n), (T, B, n_out)
};

template <class S>
void rollout(const LSTMParams<S>& p, const LSTMDrive<S>& drive, const LSTMTrajectory<S>& out) {
  const Index T = out.h.T, B = out.h.B, n = out.h.N;
  if (T == 0 || B == 0) return;
  // transposed copies: products with one trial become sums of contiguous rows
  const RowMat<S> W_ihT = p.W_ih.transpose(), W_hhT = p.W_hh.transpose();

  for_each_chunk(B, batch_chunk_rows(B, 4 * n), [&](Index b0, Index rows) {
    RowMat<S> G(rows, 4 * n);
    const CMatMap<S> H0(drive.h0 + b0 * n, rows, n), C0(drive.c0 + b0 * n, rows, n);
    for (Index t = 0; t < T; ++t) {
      const CMatMap<S> H(t == 0 ? H0.data() : out.h.slab(t - 1, b0, rows).data(), rows, n);
      const CMatMap<S> Cp(t == 0 ? C0.data() : out.c.slab(t - 1, b0, rows).data(), rows, n);
      MatMap<S> Hn = out.h.slab(t, b0, rows), Cn = out.c.slab(t, b0, rows);
      // 1. gate pre-activations
      G.noalias() = H * W_hhT;
      detail::add_input_drive<S>(drive.u.slab(t, b0, rows), W_ihT, p.b, G);
      // 2. gates: sigmoid on i, f, o; tanh on g (in place in G)
      auto ifo = [&](Index k) { return G.middleCols(k * n, n).array(); };
      for (Index i = 0; i < rows; ++i) {
        for (Index k : {0, 1, 3}) apply_sigmoid<S>(&G(i, k * n), &G(i, k * n), n);
      }
      apply_phi_rows<S>(Phi::tanh, G.middleCols(2 * n, n), G.middleCols(2 * n, n));
      // 3. cell and hidden state
      Cn.array() = ifo(1) * Cp.array() + ifo(0) * ifo(2);
      apply_phi_rows<S>(Phi::tanh, Cn, Hn);
      Hn.array() *= ifo(3);
      detail::readout<S>(Hn, p.C, p.d, out.y.slab(t, b0, rows));
    }
  });
}

extern template void rollout<float>(const LSTMParams<float>&, const LSTMDrive<float>&,
                                    const LSTMTrajectory<float>&);
extern template void rollout<double>(const LSTMParams<double>&, const LSTMDrive<double>&,
                                     const LSTMTrajectory<double>&);

}  // namespace flexrnn
