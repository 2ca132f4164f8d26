// Single-trial building blocks of the learning rules (FORCE, full-FORCE, Hebbian), whose
// weights change within or between trials and which therefore run one trial at a time.
// The update is the RateRNN's of docs/models.md (as in rate_rnn.hpp), without per-trial
// gain or recurrent noise:
//   drive = W s + W_in u[t] + b + extra       (s = r in form "current", x in form "rate")
//   current: x <- (1-alpha) x + alpha drive;  rate: x <- (1-alpha) x + alpha phi(drive)
//   r = phi(x);  y = W_out h + b_out            (h = r, or x with readout "state")
// `extra` is what a rule adds: output feedback (FORCE) or exploratory kicks (Hebbian).
#pragma once

#include "flexrnn/kernels.hpp"
#include "flexrnn/phi.hpp"
#include "flexrnn/rate_rnn.hpp"
#include "flexrnn/rate_step.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn::detail {

template <class S>
using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;
template <class S>
using VecMap = Eigen::Map<Vec<S>>;
template <class S>
using CVecMap = Eigen::Map<const Vec<S>>;

// drive (n) += W_in u + b, with W_inT = W_in^T (n_in, n).
template <class S>
void add_input(const RowMat<S>& W_inT, const S* b, const S* u, S* drive, Index n) {
  add_input_drive<S>(CMatMap<S>(u, 1, W_inT.rows()), W_inT, b, MatMap<S>(drive, 1, n));
}

// Euler step of x (n) from its complete drive (rate_step.hpp), then r = phi(x). drive is
// overwritten (it becomes the new x).
template <class S>
void euler_step(const RateOptions& opt, S* drive, S* x, S* r, Index n) {
  auto phi_of = [&](const auto& in, auto& out) {
    apply_phi<S>(opt.phi, in.data(), out.data(), n);
  };
  EulerStep<S>(opt.form, opt.alpha)(CVecMap<S>(x, n), CVecMap<S>(drive, n), VecMap<S>(drive, n),
                                    phi_of);
  VecMap<S>(x, n) = CVecMap<S>(drive, n);
  apply_phi<S>(opt.phi, x, r, n);
}

// y (n_out) = W_out h + b_out for one trial.
template <class S>
void readout_one(const S* h, const CMatMap<S>& W_out, const S* b_out, S* y) {
  const Index n = W_out.cols(), n_out = W_out.rows();
  readout<S>(CMatMap<S>(h, 1, n), W_out, b_out, MatMap<S>(y, 1, n_out));
}

}  // namespace flexrnn::detail
