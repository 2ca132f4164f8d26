// Small building blocks shared by the models' steps: input drive, readout.
// Each works on a chunk of trials (rows) at one time step.
#pragma once

#include "flexrnn/types.hpp"

namespace flexrnn::detail {

// Below this many inputs, X += U W_in^T is done as axpys on contiguous rows of
// W_in^T rather than as a GEMM, whose set-up costs more than the work.
inline constexpr Index kAxpyInputs = 16;

// X (rows, n) += U (rows, n_in) W_in^T + bias, with W_inT = W_in^T (n_in, n).
template <class S, class XBlock>
void add_input_drive(const CMatMap<S>& U, const RowMat<S>& W_inT, const S* bias, XBlock&& X) {
  const Index n = X.cols(), n_in = U.cols();
  if (n_in <= kAxpyInputs) {
    for (Index i = 0; i < X.rows(); ++i) {
      auto x = X.row(i);
      if (bias) x += CRowVecMap<S>(bias, n);
      for (Index j = 0; j < n_in; ++j) x += U(i, j) * W_inT.row(j);
    }
  } else {
    X.noalias() += U * W_inT;
    if (bias) X.rowwise() += CRowVecMap<S>(bias, n);
  }
}

// Below this many outputs, the readout is a few dot products of contiguous
// rows; Eigen's product dispatch would cost more than the arithmetic.
inline constexpr Index kDotOutputs = 8;

// Y (rows, n_out) = H (rows, n) W_out^T + b_out.
template <class S, class HBlock, class YBlock>
void readout(const HBlock& H, const CMatMap<S>& W_out, const S* b_out, YBlock&& Y) {
  if (W_out.rows() <= kDotOutputs) {
    for (Index i = 0; i < Y.rows(); ++i) {
      for (Index k = 0; k < Y.cols(); ++k) {
        Y(i, k) = H.row(i).dot(W_out.row(k)) + (b_out ? b_out[k] : S(0));
      }
    }
    return;
  }
  Y.noalias() = H * W_out.transpose();
  if (b_out) Y.rowwise() += CRowVecMap<S>(b_out, Y.cols());
}

}  // namespace flexrnn::detail
