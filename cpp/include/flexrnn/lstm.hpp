// LSTM baseline (docs/models.md), without peepholes, gates in PyTorch's order:
//   [i; f; g; o] = W_ih u[t] + W_hh h[t] + b,  i, f, o = sigmoid, g = tanh
//   c[t+1] = f c[t] + i g,  h[t+1] = o tanh(c[t+1]),  y[t] = C h[t+1] + d
#pragma once

#include <vector>

#include "flexrnn/kernels.hpp"
#include "flexrnn/loss.hpp"
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
  Tensor3<S> gates{};  // (T, B, 4n) activated gates [i f g o], or unset; kept for backward
};

template <class S>
void rollout(const LSTMParams<S>& p, const LSTMDrive<S>& drive, const LSTMTrajectory<S>& out) {
  const Index T = out.h.T, B = out.h.B, n = out.h.N;
  if (T == 0 || B == 0) return;
  // transposed copies: products with one trial become sums of contiguous rows
  const RowMat<S> W_ihT = p.W_ih.transpose(), W_hhT = p.W_hh.transpose();

  const double work = 4.0 * T * B * n * (n + drive.u.N);  // multiply-adds, roughly
  const double trial_step_work = work / double(std::max<Index>(T * B, 1));

  for_each_chunk(B, batch_chunk_rows(B, 4 * n), work, [&](Index b0, Index rows) {
    RowMat<S> G_local(out.gates.data ? 0 : rows, 4 * n);
    const CMatMap<S> H0(drive.h0 + b0 * n, rows, n), C0(drive.c0 + b0 * n, rows, n);
    InterruptPoint interruption;
    const double step_work = trial_step_work * double(rows);
    for (Index t = 0; t < T; ++t) {
      interruption(step_work);
      const CMatMap<S> H(t == 0 ? H0.data() : out.h.slab(t - 1, b0, rows).data(), rows, n);
      const CMatMap<S> Cp(t == 0 ? C0.data() : out.c.slab(t - 1, b0, rows).data(), rows, n);
      MatMap<S> Hn = out.h.slab(t, b0, rows), Cn = out.c.slab(t, b0, rows);
      MatMap<S> G(out.gates.data ? out.gates.slab(t, b0, rows).data() : G_local.data(), rows,
                  4 * n);
      // 1. gate pre-activations
      G.noalias() = H * W_hhT;
      detail::add_input_drive<S>(drive.u.slab(t, b0, rows), W_ihT, p.b, G);
      // 2. gates: sigmoid on i, f, o; tanh on g (in place in G)
      auto ifo = [&](Index k) { return G.middleCols(k * n, n).array(); };
      for (Index i = 0; i < rows; ++i) {
        // pointers by arithmetic, not &G(i, j): G has no element to refer to when n == 0
        S* row = G.data() + i * 4 * n;
        for (Index k : {0, 1, 3}) apply_sigmoid<S>(row + k * n, row + k * n, n);
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

// Where loss_and_grad writes the gradients (caller-owned, row-major): W_ih, W_hh, b, C, d and
// the per-trial initial states h0, c0 (B, n).
template <class S>
struct LSTMGrads {
  S *W_ih, *W_hh, *b, *C, *d, *h0, *c0;
};

// Forward (into `tr`, with gates set), loss, and BPTT gradients. With gh = dL/dh[t+1],
// gc = dL/dc[t+1] (spec indexing) and the activated gates i, f, g, o of step t:
//   gh += dy C;  dC += dy^T h[t+1];  dd += dy
//   gc += gh o (1 - tanh(c[t+1])^2)
//   dG = [gc g i(1-i),  gc c[t] f(1-f),  gc i (1-g^2),  gh tanh(c[t+1]) o(1-o)]
//   dW_hh += dG^T h[t];  dW_ih += dG^T u[t];  db += dG
//   gh <- dG W_hh;  gc <- gc f
template <class S>
double loss_and_grad(const LSTMParams<S>& p, const LSTMDrive<S>& drive, const LossSpec<S>& loss,
                     const LSTMTrajectory<S>& tr, const LSTMGrads<S>& g) {
  rollout(p, drive, tr);
  const Index T = tr.h.T, B = tr.h.B, n = tr.h.N, n_in = drive.u.N, n_out = tr.y.N;
  if (B == 0) return 0.0;
  const S scale = S(loss.scale());
  const Index rows_per_chunk = detail::backward_chunk_rows(B, batch_chunk_rows(B, 4 * n));
  const Index n_chunks = (B + rows_per_chunk - 1) / rows_per_chunk;
  enum { kWih, kWhh, kb, kC, kd };
  ChunkGrads<S> grads(n_chunks, {{4 * n, n_in}, {4 * n, n}, {1, 4 * n}, {n_out, n}, {1, n_out}});
  std::vector<double> chunk_loss(static_cast<std::size_t>(n_chunks), 0.0);

  const double work = 12.0 * T * B * n * (n + n_in);  // multiply-adds, roughly
  const double trial_step_work = work / double(std::max<Index>(T * B, 1));

  for_each_chunk(B, rows_per_chunk, work, [&](Index b0, Index rows) {
    const Index chunk = b0 / rows_per_chunk;
    auto Gr = [&](int k) -> RowMat<S>& { return grads.at(chunk, static_cast<std::size_t>(k)); };
    RowMat<S> gh = RowMat<S>::Zero(rows, n), gc = RowMat<S>::Zero(rows, n);
    RowMat<S> dY(rows, n_out), dG(rows, 4 * n), tc(rows, n);
    const CMatMap<S> H0(drive.h0 + b0 * n, rows, n), C0(drive.c0 + b0 * n, rows, n);
    double lsum = 0.0;
    InterruptPoint interruption;
    const double step_work = trial_step_work * double(rows);
    for (Index t = T - 1; t >= 0; --t) {
      interruption(step_work);
      const CMatMap<S> Ht(tr.h.slab(t, b0, rows).data(), rows, n);
      const CMatMap<S> Ct(tr.c.slab(t, b0, rows).data(), rows, n);
      const CMatMap<S> H(t == 0 ? H0.data() : tr.h.slab(t - 1, b0, rows).data(), rows, n);
      const CMatMap<S> Cp(t == 0 ? C0.data() : tr.c.slab(t - 1, b0, rows).data(), rows, n);
      const CMatMap<S> Gt(tr.gates.slab(t, b0, rows).data(), rows, 4 * n);
      auto gate = [&](Index k) { return Gt.middleCols(k * n, n).array(); };
      auto dgate = [&](Index k) { return dG.middleCols(k * n, n).array(); };
      // 1. loss and readout y = C h[t+1] + d
      lsum += loss.grad(t, b0, tr.y.slab(t, b0, rows), dY, scale);
      detail::readout_backward<S>(dY, Ht, p.C, Gr(kC), Gr(kd), gh, static_cast<const S*>(nullptr));
      // 2. through h = o tanh(c) into the cell, then the gates' pre-activations
      apply_phi_rows<S>(Phi::tanh, Ct, tc);
      gc.array() += gh.array() * gate(3) * (S(1) - tc.array().square());
      dgate(0) = gc.array() * gate(2) * gate(0) * (S(1) - gate(0));
      dgate(1) = gc.array() * Cp.array() * gate(1) * (S(1) - gate(1));
      dgate(2) = gc.array() * gate(0) * (S(1) - gate(2).square());
      dgate(3) = gh.array() * tc.array() * gate(3) * (S(1) - gate(3));
      // 3. weights, and the adjoint of the previous step
      Gr(kWhh).noalias() += dG.transpose() * H;
      Gr(kWih).noalias() += dG.transpose() * drive.u.slab(t, b0, rows);
      Gr(kb) += dG.colwise().sum();
      gh.noalias() = dG * p.W_hh;
      gc.array() *= gate(1);
    }
    MatMap<S>(g.h0 + b0 * n, rows, n) = gh;
    MatMap<S>(g.c0 + b0 * n, rows, n) = gc;
    chunk_loss[static_cast<std::size_t>(chunk)] = lsum;
  });

  grads.reduce({g.W_ih, g.W_hh, g.b, g.C, g.d});
  double total = 0.0;
  for (double l : chunk_loss) total += l;
  return total * loss.scale();
}

extern template double loss_and_grad(const LSTMParams<float>&, const LSTMDrive<float>&,
                                     const LossSpec<float>&, const LSTMTrajectory<float>&,
                                     const LSTMGrads<float>&);
extern template double loss_and_grad(const LSTMParams<double>&, const LSTMDrive<double>&,
                                     const LossSpec<double>&, const LSTMTrajectory<double>&,
                                     const LSTMGrads<double>&);

extern template void rollout<float>(const LSTMParams<float>&, const LSTMDrive<float>&,
                                    const LSTMTrajectory<float>&);
extern template void rollout<double>(const LSTMParams<double>&, const LSTMDrive<double>&,
                                     const LSTMTrajectory<double>&);

}  // namespace flexrnn
