// Output losses of docs/learning_rules.md and the per-chunk gradient bookkeeping shared by
// every model's backward pass.
//   masked MSE:     L = sum(mask (y - target)^2) / sum(mask),   dL/dy = 2 mask (y - target) / sum(mask)
//   cross-entropy:  L = sum_tb mask (logsumexp(y) - y[label]) / sum(mask),
//                   dL/dy = mask (softmax(y) - onehot(label)) / sum(mask)
// A mask that sums to zero gives L = 0 and zero gradients. This header is the one home of
// these definitions in C++: LossSpec (the losses and gradients of the BPTT kernels) and
// masked_mse (the genetic algorithm's population loss, without gradients).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "flexrnn/types.hpp"

namespace flexrnn {

enum class LossKind { mse, cross_entropy };
LossKind loss_from_name(const std::string& name);  // throws std::invalid_argument

// sum(mask) over len weights in double, in order; a null mask counts as len ones.
template <class S>
double mask_total(const S* mask, Index len) {
  if (!mask) return double(len);
  double total = 0.0;
  for (Index i = 0; i < len; ++i) total += double(mask[i]);
  return total;
}

// The masked MSE of len outputs y against target, evaluated element by element in double
// (mask null: ones) and divided by total = mask_total(mask, len), 0 when total is 0.
template <class S>
double masked_mse(const S* y, const S* target, const S* mask, Index len, double total) {
  double sum = 0.0;
  for (Index i = 0; i < len; ++i) {
    const double d = double(y[i]) - double(target[i]);
    sum += (mask ? double(mask[i]) : 1.0) * d * d;
  }
  return total > 0 ? sum / total : 0.0;
}

template <class S>
struct LossSpec {
  LossKind kind = LossKind::mse;
  const S* target = nullptr;               // mse: (T, B, n_out)
  const std::int64_t* labels = nullptr;    // cross_entropy: (T, B), in 0..n_out-1 where mask != 0
  const S* mask = nullptr;                 // mse: (T, B, n_out); cross_entropy: (T, B)
  Index T = 0, B = 0, n_out = 0;

  // 1 / sum(mask), or 0 for an all-zero mask
  double scale() const {
    const double total = mask_total(mask, kind == LossKind::mse ? T * B * n_out : T * B);
    return total == 0.0 ? 0.0 : 1.0 / total;
  }

  // dY = dL/dy of trials b0..b0+rows-1 at step t (unnormalised by sum(mask) except through
  // `scale`); returns their unnormalised loss sum(mask * per-element loss) in double.
  template <class YBlock, class DBlock>
  double grad(Index t, Index b0, const YBlock& Y, DBlock&& dY, S scale_) const {
    const Index rows = Y.rows(), C = Y.cols();
    double loss = 0.0;
    if (kind == LossKind::mse) {
      const Index off = (t * B + b0) * n_out;
      const CMatMap<S> Tg(target + off, rows, C), M(mask + off, rows, C);
      dY.array() = Y.array() - Tg.array();
      loss = (M.array() * dY.array().square()).template cast<double>().sum();
      dY.array() *= S(2) * scale_ * M.array();
      return loss;
    }
    for (Index i = 0; i < rows; ++i) {
      const Index tb = t * B + b0 + i;
      const S m = mask[tb];
      if (m == S(0)) {
        dY.row(i).setZero();
        continue;
      }
      const S ymax = Y.row(i).maxCoeff();
      dY.row(i).array() = (Y.row(i).array() - ymax).exp();
      const S total = dY.row(i).sum();
      const Index label = static_cast<Index>(labels[tb]);
      loss += double(m) * (double(ymax) + std::log(double(total)) - double(Y(i, label)));
      dY.row(i) *= m * scale_ / total;
      dY(i, label) -= m * scale_;
    }
    return loss;
  }
};

// Gradient accumulators, one set per chunk of the batch, summed in chunk order at the end:
// the result does not depend on which thread ran which chunk.
template <class S>
class ChunkGrads {
 public:
  ChunkGrads(Index n_chunks, std::vector<std::pair<Index, Index>> shapes)
      : shapes_(std::move(shapes)), parts_(static_cast<std::size_t>(n_chunks) * shapes_.size()) {
    for (std::size_t c = 0; c < static_cast<std::size_t>(n_chunks); ++c) {
      for (std::size_t k = 0; k < shapes_.size(); ++k) {
        parts_[c * shapes_.size() + k].setZero(shapes_[k].first, shapes_[k].second);
      }
    }
  }
  RowMat<S>& at(Index chunk, std::size_t k) {
    return parts_[static_cast<std::size_t>(chunk) * shapes_.size() + k];
  }
  // out[k] (row-major, shapes[k]) = sum over chunks of part k
  void reduce(const std::vector<S*>& out) const {
    const std::size_t n_chunks = parts_.size() / (shapes_.empty() ? 1 : shapes_.size());
    for (std::size_t k = 0; k < shapes_.size(); ++k) {
      if (!out[k]) continue;
      MatMap<S> o(out[k], shapes_[k].first, shapes_[k].second);
      o.setZero();
      for (std::size_t c = 0; c < n_chunks; ++c) o += parts_[c * shapes_.size() + k];
    }
  }

 private:
  std::vector<std::pair<Index, Index>> shapes_;
  std::vector<RowMat<S>> parts_;
};

namespace detail {

// Trials per chunk in a backward pass: as in the forward pass, but never more than 16
// chunks, which bounds the memory of the per-chunk gradient accumulators.
inline Index backward_chunk_rows(Index B, Index forward_rows) {
  const Index cap = (B + 15) / 16;
  return forward_rows > cap ? forward_rows : cap;
}

// dW_out += dY^T H, db_out += colsum(dY), G += (dY W_out) [* dphi]: the readout's share of
// the adjoint at one step, as dot products and axpys (few outputs).
template <class S, class DY, class H, class GBlock>
void readout_backward(const DY& dY, const H& Hs, const CMatMap<S>& W_out, RowMat<S>& dW_out,
                      RowMat<S>& db_out, GBlock&& G, const S* dphi) {
  const Index rows = dY.rows(), n_out = dY.cols(), n = Hs.cols();
  for (Index i = 0; i < rows; ++i) {
    for (Index k = 0; k < n_out; ++k) {
      const S e = dY(i, k);
      if (e == S(0)) continue;
      dW_out.row(k) += e * Hs.row(i);
      db_out(0, k) += e;
      if (dphi) {
        G.row(i).array() += e * W_out.row(k).array() * CRowVecMap<S>(dphi + i * n, n).array();
      } else {
        G.row(i) += e * W_out.row(k);
      }
    }
  }
}

}  // namespace detail

}  // namespace flexrnn
