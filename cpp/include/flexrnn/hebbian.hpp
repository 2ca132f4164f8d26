// Reward-modulated Hebbian learning with exploratory perturbations (Miconi 2017;
// docs/learning_rules.md). Trials run one after the other; W changes after every trial.
//
// Per trial (state x from x0, r = phi(x), xbar = x0, eligibility e = 0), per step t:
//   1. drive = W r + W_in u[t] + b + kick,  kick_i = kick_amp (2 v_i - 1) when w_i < kick_prob,
//      with (w, v) = uniform(seed, trial, t, 0..2n-1) (w: first n, v: last n)
//   2. Euler step (form "current"): x <- (1-alpha) x + alpha drive; r' = phi(x)
//   3. d = x - xbar, the deviation from the running average of the previous steps (Miconi's
//      code: xbar takes in x[t] after d is formed, so with trace_decay = 0, d = x[t] - x[t-1]
//      and a kick shows as its whole jump alpha kick)
//   4. e_ij += (r_j d_i)^3   (r: the rates before the step), as d^3 (r^3)^T;
//      xbar <- trace_decay xbar + (1 - trace_decay) x
//   5. y[t] = W_out r' + b_out;  r <- r'
// End of trial: R = mean over the last `window` steps and the outputs of |y - target|;
//   Rbar is the running average of the trial's condition (Miconi keeps one per trial type);
//   if it is not finite (the condition's first trial) Rbar = R;
//   W += clip(-eta e (R - Rbar), -clip, clip);  Rbar <- reward_decay Rbar + (1 - reward_decay) R
//
// The learning-rule study's variant (McMahan et al. 2021, options appended below):
//   rbar_factor: W += clip(-eta Rbar e (R - Rbar), -clip, clip) (Rbar before its update);
//   learn_from: W changes only on trials trial0 + b >= learn_from (Rbar is tracked on all);
//   clamp_units / clamp_values: those units' x is held at the values (set at the start of the
//   trial and after every Euler step, r = phi(value)); their kicks have no effect and their
//   deviation from the running average is 0, so only the weights from them change.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "flexrnn/interrupt.hpp"
#include "flexrnn/random.hpp"
#include "flexrnn/rate_rnn.hpp"
#include "flexrnn/trial_step.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

struct HebbianOptions {
  RateOptions rate;  // form "current"
  double kick_prob = 0.003;
  double kick_amp = 30.0;
  double trace_decay = 0.05;  // running average xbar of x (Miconi's code: 0.05)
  double eta = 0.01;
  double clip = 2e-4;
  double reward_decay = 0.75;  // running average Rbar of R
  Index window = 200;          // steps at the end of the trial that R averages
  std::uint64_t seed = 0;
  std::int64_t trial0 = 0;     // trials done before this call: the stream of the kicks
  bool learn = true;
  // the study's variant (appended)
  bool rbar_factor = false;
  std::int64_t learn_from = 0;
  std::vector<std::int64_t> clamp_units{};
  std::vector<double> clamp_values{};
};

template <class S>
struct HebbianNet {
  MatMap<S> W;       // (n, n), trained in place
  CMatMap<S> W_in;   // (n, n_in)
  const S* b;        // (n)
  CMatMap<S> W_out;  // (n_out, n)
  const S* b_out;    // (n_out)
};

// u: (T, B, n_in); target: (B, n_out), the response every step of the window should give;
// x0: (B, n); condition: (B) indices into Rbar, or null (all 0); Rbar: (n_conditions) in/out;
// y: (T, B, n_out) out; R: (B) out (each trial's error).
template <class S>
void hebbian_run(HebbianNet<S>& net, const HebbianOptions& opt, const CTensor3<S>& u,
                 const S* target, const S* x0, const std::int64_t* condition, double* Rbar,
                 const Tensor3<S>& y, double* R) {
  const Index T = u.T, B = u.B, n = net.W.rows(), n_out = net.W_out.rows();
  if (opt.rate.form != Form::current) throw std::invalid_argument("hebbian: form 'current' only");
  const bool read_rate = opt.rate.readout == Readout::rate;
  const RowMat<S> W_inT = net.W_in.transpose();
  const Index window = std::min<Index>(std::max<Index>(opt.window, 1), T);
  using V = detail::Vec<S>;
  V x(n), r(n), rn(n), drive(n), xbar(n), d3(n), r3(n);
  RowMat<S> e(opt.learn ? n : 0, opt.learn ? n : 0);
  std::vector<double> w(static_cast<std::size_t>(2 * n));
  const S decay = S(opt.trace_decay), fresh = S(1.0 - opt.trace_decay);
  InterruptPoint interruption;
  const double step_work = double(n) * (n + u.N + n_out) + (opt.learn ? double(n) * n : 0.0);

  const std::size_t n_clamped = std::min(opt.clamp_units.size(), opt.clamp_values.size());
  const auto clamp = [&](V& state) {
    for (std::size_t c = 0; c < n_clamped; ++c) state[opt.clamp_units[c]] = S(opt.clamp_values[c]);
  };
  V clamped_rates(n_clamped > 0 ? n : 0);
  if (n_clamped > 0) {
    V held = V::Zero(n);
    clamp(held);
    apply_phi<S>(opt.rate.phi, held.data(), clamped_rates.data(), n);
  }
  const auto clamp_rates = [&](V& rates) {
    for (std::size_t c = 0; c < n_clamped; ++c) {
      rates[opt.clamp_units[c]] = clamped_rates[opt.clamp_units[c]];
    }
  };

  for (Index b = 0; b < B; ++b) {
    x = detail::CVecMap<S>(x0 + b * n, n);
    clamp(x);
    apply_phi<S>(opt.rate.phi, x.data(), r.data(), n);
    xbar = x;
    if (opt.learn) e.setZero();
    double err = 0.0;
    const auto stream = static_cast<std::uint64_t>(opt.trial0 + b);
    for (Index t = 0; t < T; ++t) {
      interruption(step_work);
      // 1. drive with exploratory kicks
      drive.noalias() = net.W * r;
      detail::add_input<S>(W_inT, net.b, u.slab(t, b, 1).data(), drive.data(), n);
      philox_uniform(opt.seed, stream, static_cast<std::uint32_t>(t), w.data(), 2 * n);
      for (Index i = 0; i < n; ++i) {
        if (w[i] < opt.kick_prob) drive[i] += S(opt.kick_amp * (2.0 * w[n + i] - 1.0));
      }
      // 2. Euler step
      detail::euler_step<S>(opt.rate, drive.data(), x.data(), rn.data(), n);
      if (n_clamped > 0) {
        clamp(x);
        clamp_rates(rn);
      }
      // 3.-4. eligibility from the deviation of x from the running average of earlier steps
      if (opt.learn) {
        d3 = (x - xbar).array().cube().matrix();
        r3 = r.array().cube().matrix();
        e.noalias() += d3 * r3.transpose();
      }
      xbar = decay * xbar + fresh * x;
      // 5. output
      r.swap(rn);
      S* yt = y.slab(t, b, 1).data();
      detail::readout_one<S>(read_rate ? r.data() : x.data(), net.W_out, net.b_out, yt);
      if (t >= T - window) {
        for (Index o = 0; o < n_out; ++o) {
          err += std::abs(double(yt[o]) - double(target[b * n_out + o]));
        }
      }
    }
    R[b] = n_out > 0 ? err / double(window * n_out) : 0.0;
    if (!opt.learn) continue;
    double& rbar = Rbar[condition ? condition[b] : 0];
    if (!std::isfinite(rbar)) rbar = R[b];
    if (opt.trial0 + b >= opt.learn_from) {
      const double factor = opt.rbar_factor ? rbar : 1.0;
      const S scale = S(-opt.eta * factor * (R[b] - rbar)), lim = S(opt.clip);
      net.W.array() += (scale * e.array()).max(-lim).min(lim);
    }
    rbar = opt.reward_decay * rbar + (1.0 - opt.reward_decay) * R[b];
  }
}

extern template void hebbian_run(HebbianNet<float>&, const HebbianOptions&,
                                 const CTensor3<float>&, const float*, const float*,
                                 const std::int64_t*, double*, const Tensor3<float>&, double*);
extern template void hebbian_run(HebbianNet<double>&, const HebbianOptions&,
                                 const CTensor3<double>&, const double*, const double*,
                                 const std::int64_t*, double*, const Tensor3<double>&, double*);

}  // namespace flexrnn
