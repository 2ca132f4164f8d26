// NeuroMOP value network (docs/neuromop.md): V(z) = scale (w2 . relu(W1 z + b1) + b2),
// its forward pass over rows of states and its masked squared-error loss and gradient.
// Part of mop.hpp (the rollout and fit), which includes it.
#pragma once

#include <algorithm>
#include <vector>

#include "flexrnn/types.hpp"

namespace flexrnn {

// P value networks V(z) = scale (w2 . relu(W1 z + b1) + b2), z = [x; onehot(context)] (the
// one-hot only when n_contexts > 1), parameters flat: W1 (H, d_in) row-major, b1, w2, b2.
inline Index value_input_dim(Index d, Index n_contexts) {
  return d + (n_contexts > 1 ? n_contexts : 0);
}
inline Index value_param_count(Index d_in, Index hidden) { return hidden * (d_in + 2) + 1; }

namespace detail {

// The forward pass, the one definition every caller uses:
// v = w2 . relu(X W1x^T + bias) + b2 over the rows of X (m, d), W1x the first d columns of
// W1. A rollout passes states (d < d_in) with bias = b1 + the context's column of W1
// (context_bias); the fit passes whole inputs z (d = d_in) with bias = b1. Z (m, hidden)
// receives the hidden layer relu(X W1x^T + bias).
template <class S, class XBlock, class ZBlock, class VBlock>
void value_rows(const S* theta, Index d_in, Index hidden, Index d, const XBlock& X,
                const Eigen::Matrix<S, Eigen::Dynamic, 1>& bias, ZBlock&& Z, VBlock&& v) {
  using Stride = Eigen::OuterStride<>;
  const Eigen::Map<const RowMat<S>, 0, Stride> W1x(theta, hidden, d, Stride(d_in));
  const Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>> w2(theta + hidden * (d_in + 1),
                                                                 hidden);
  const S b2 = theta[hidden * (d_in + 2)];
  Z.noalias() = X * W1x.transpose();
  Z.rowwise() += bias.transpose();
  Z = Z.cwiseMax(S(0));
  v.noalias() = Z * w2;
  v.array() += b2;
}

template <class S>
void context_bias(const S* theta, Index d_in, Index hidden, Index d, Index context,
                  Eigen::Matrix<S, Eigen::Dynamic, 1>& bias) {
  bias = Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(theta + hidden * d_in, hidden);
  if (d_in > d) {
    for (Index h = 0; h < hidden; ++h) bias[h] += theta[h * d_in + d + context];
  }
}

}  // namespace detail

// Outputs v (m) (before scale) of the value network theta on the inputs Z (m, d_in).
template <class S>
void value_forward(const S* theta, Index d_in, Index hidden, const S* Z, Index m, S* v) {
  const RowMat<S> Zm = CMatMap<S>(Z, m, d_in);  // aligned copies: see MopPrepared
  using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;
  const Vec th = Eigen::Map<const Vec>(theta, value_param_count(d_in, hidden));
  const Vec b1 = th.segment(hidden * d_in, hidden);
  RowMat<S> H(m, hidden);
  Vec vv(m);
  detail::value_rows(th.data(), d_in, hidden, d_in, Zm, b1, H, vv);
  std::copy(vv.data(), vv.data() + m, v);
}

// Loss sum c (v - y)^2 / sum c of network theta over rows Z (m, d_in) and its gradient
// (n_params) (y already divided by scale). Z_hidden (m, hidden) is scratch.
template <class S>
double value_loss_and_grad(const S* theta, Index d_in, Index hidden, const RowMat<S>& Z,
                           const Eigen::Matrix<S, Eigen::Dynamic, 1>& y,
                           const Eigen::Matrix<S, Eigen::Dynamic, 1>& c, RowMat<S>& Hd, S* grad) {
  using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;
  const Vec b1 = Eigen::Map<const Vec>(theta + hidden * d_in, hidden);
  const Eigen::Map<const Vec> w2(theta + hidden * (d_in + 1), hidden);
  Vec v(Z.rows());
  detail::value_rows(theta, d_in, hidden, d_in, Z, b1, Hd, v);  // Hd: relu(Z W1^T + b1)
  const double csum = static_cast<double>(c.sum());
  const Eigen::Matrix<S, Eigen::Dynamic, 1> e = v - y;
  const double loss = static_cast<double>((c.array() * e.array().square()).sum()) / csum;
  // dL/dv = 2 c e / sum c; back through the output layer and the ReLU
  const Eigen::Matrix<S, Eigen::Dynamic, 1> dv =
      (S(2.0 / csum) * c.array() * e.array()).matrix();
  MatMap<S> gW1(grad, hidden, d_in);
  Eigen::Map<Eigen::Matrix<S, Eigen::Dynamic, 1>> gb1(grad + hidden * d_in, hidden);
  Eigen::Map<Eigen::Matrix<S, Eigen::Dynamic, 1>> gw2(grad + hidden * (d_in + 1), hidden);
  gw2.noalias() = Hd.transpose() * dv;
  grad[hidden * (d_in + 2)] = dv.sum();
  // dH = dv w2^T where the unit is active (Hd > 0 after the ReLU)
  Hd = ((Hd.array() > S(0)).template cast<S>() * (dv * w2.transpose()).array()).matrix();
  gW1.noalias() = Hd.transpose() * Z;
  gb1 = Hd.colwise().sum().transpose();
  return loss;
}


}  // namespace flexrnn
