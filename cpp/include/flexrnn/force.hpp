// FORCE (Sussillo & Abbott 2009) and full-FORCE (DePasquale et al. 2018): recursive least
// squares on the rates of a running network (docs/learning_rules.md).
//
// RLS step, one P (n, n) for all outputs, on the vector h the trained weights read:
//   1. k = P h                       (P symmetric: the product reads the upper triangle)
//   2. c = 1 / (1 + h^T k)
//   3. P -= c k k^T                  (symmetric rank-1 update of the upper triangle, in place)
//   4. w -= c e k^T for every trained matrix w with a priori error e
// Only the upper triangle of P is read and written while a call runs (no n x n temporary);
// the lower triangle is mirrored from it once, when the call returns.
#pragma once

#include <cmath>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "flexrnn/parallel.hpp"
#include "flexrnn/rate_rnn.hpp"
#include "flexrnn/trial_step.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

// Steps 1-3 of the RLS step on the upper triangle of P. k (n) receives P h (before the
// update). Returns c.
template <class S>
S rls_update(MatMap<S>& P, const S* h, S* k) {
  const Index n = P.rows();
  const detail::CVecMap<S> hv(h, n);
  detail::VecMap<S> kv(k, n);
  // 1. k = P h using symmetry
  kv.noalias() = P.template selfadjointView<Eigen::Upper>() * hv;
  // 2. c = 1 / (1 + h^T k)
  const S c = S(1) / (S(1) + hv.dot(kv));
  // 3. P -= c k k^T, upper triangle only
  P.template selfadjointView<Eigen::Upper>().rankUpdate(kv, -c);
  return c;
}

// Copies the upper triangle of P onto its lower triangle.
template <class S>
void mirror_upper(MatMap<S>& P) {
  const Index n = P.rows();
  for (Index i = 1; i < n; ++i) {
    for (Index j = 0; j < i; ++j) P(i, j) = P(j, i);
  }
}

// `steps` RLS steps on consecutive rows of H (steps, n), each returning its c: the kernel
// alone, for tests and benchmarks. P's lower triangle is mirrored at the end.
template <class S>
void rls_steps(MatMap<S> P, const CMatMap<S>& H, S* k_out, S* c_out) {
  const Index n = P.rows();
  detail::Vec<S> k(n);
  InterruptPoint interruption;
  for (Index s = 0; s < H.rows(); ++s) {
    interruption(2.0 * double(n) * double(n));
    c_out[s] = rls_update(P, H.row(s).data(), k.data());
    if (k_out) detail::VecMap<S>(k_out + s * n, n) = k;
  }
  mirror_upper(P);
}

struct ForceOptions {
  RateOptions rate;          // alpha, phi, form, readout (noise is not used)
  std::int64_t update_every = 1;
  std::int64_t step0 = 0;    // steps done before this call: the phase of update_every
  bool learn = true;
};

template <class S>
struct ForceNet {
  CMatMap<S> W;      // (n, n)
  CMatMap<S> W_in;   // (n, n_in)
  const S* b;        // (n)
  MatMap<S> W_out;   // (n_out, n), trained in place
  const S* b_out;    // (n_out)
  CMatMap<S> W_fb;   // (n, n_out): output feedback
  MatMap<S> P;       // (n, n), updated in place (unused when not learning)
};

namespace detail {

template <class Options>
bool update_due(const Options& opt, std::int64_t step) {
  return (opt.step0 + step + 1) % opt.update_every == 0;
}

// Runs body(b) for trials b = 0..B-1: in order when learning (the weights carry over from
// trial to trial), otherwise in parallel when `work` is worth it (trials are independent).
template <class Body>
void for_each_trial(Index B, bool in_order, double work, Body&& body) {
  if (in_order) {
    for (Index b = 0; b < B; ++b) body(b);
    return;
  }
  for_each_chunk(B, 1, work, [&](Index b0, Index) { body(b0); });
}

}  // namespace detail

// FORCE on a batch of trials run one after the other, with output feedback:
//   drive[t] = W s[t] + W_fb z[t] + W_in u[t] + b,   z[t] = W_out h[t] + b_out
// (z[t] is the output of the state before step t: y[t-1], or the initial state's output).
// After step t, when an update is due (every update_every steps, counted over the whole
// call from step0, and mask[t] != 0): RLS step on h[t+1] with e = y[t] - target[t] (y[t]
// computed before the update). Without learning, trials run in parallel.
//   u: (T, B, n_in); target: (T, B, n_out) or null when not learning; mask: (T, B) or null;
//   x: (B, n) initial states in, final states out; y: (T, B, n_out) out;
//   z: (B, n_out) or null: the output fed back at the first step (in), and the last step's
//   a priori output (out), so that a run split over calls feeds back what one call would;
//   null: the readout of the initial state.
// Returns the number of RLS updates.
template <class S>
std::int64_t force_run(ForceNet<S>& net, const ForceOptions& opt, const CTensor3<S>& u,
                       const S* target, const S* mask, S* x, const Tensor3<S>& y,
                       S* z_io = nullptr) {
  const Index T = u.T, B = u.B, n = net.W.rows(), n_out = net.W_out.rows();
  const bool learn = opt.learn && target != nullptr;
  if (learn && opt.update_every < 1) throw std::invalid_argument("update_every must be >= 1");
  const bool current = opt.rate.form == Form::current;
  const bool read_rate = opt.rate.readout == Readout::rate;
  const RowMat<S> W_inT = net.W_in.transpose();
  std::int64_t updates = 0;
  const double work = double(T) * B * n * (n + u.N + n_out);

  detail::for_each_trial(B, learn, work, [&](Index b) {
    detail::Vec<S> xs = detail::CVecMap<S>(x + b * n, n), r(n), drive(n), k(n), z(n_out), e(n_out);
    apply_phi<S>(opt.rate.phi, xs.data(), r.data(), n);
    const CMatMap<S> W_out(net.W_out.data(), n_out, n);
    if (z_io) {
      z = detail::CVecMap<S>(z_io + b * n_out, n_out);
    } else {
      detail::readout_one<S>(read_rate ? r.data() : xs.data(), W_out, net.b_out, z.data());
    }
    InterruptPoint interruption;
    const double step_work = double(n) * (n + u.N + n_out) + (learn ? 3.0 * n * n : 0.0);
    for (Index t = 0; t < T; ++t) {
      interruption(step_work);
      // 1. drive = W s + W_fb z + W_in u[t] + b; Euler step
      drive.noalias() = net.W * (current ? r : xs);
      drive.noalias() += net.W_fb * z;
      detail::add_input<S>(W_inT, net.b, u.slab(t, b, 1).data(), drive.data(), n);
      detail::euler_step<S>(opt.rate, drive.data(), xs.data(), r.data(), n);
      // 2. output of the new state (a priori: before any update)
      const S* h = read_rate ? r.data() : xs.data();
      detail::readout_one<S>(h, W_out, net.b_out, z.data());
      S* yt = y.slab(t, b, 1).data();
      for (Index o = 0; o < n_out; ++o) yt[o] = z[o];
      // 3. RLS step on h with the a priori error
      const std::int64_t step = std::int64_t(b) * T + t;
      if (learn && detail::update_due(opt, step) && (!mask || mask[t * B + b] != S(0))) {
        const S c = rls_update(net.P, h, k.data());
        for (Index o = 0; o < n_out; ++o) e[o] = z[o] - target[(t * B + b) * n_out + o];
        net.W_out.noalias() -= (c * e) * k.transpose();
        ++updates;
      }
    }
    detail::VecMap<S>(x + b * n, n) = xs;
    if (z_io) detail::VecMap<S>(z_io + b * n_out, n_out) = z;
  });
  if (learn) mirror_upper(net.P);
  return updates;
}

struct FullForceOptions {
  RateOptions rate;  // form "current" only
  std::int64_t update_every = 1;
  std::int64_t step0 = 0;
  bool learn = true;
  // the learning-rule study's variant (McMahan et al. 2021), appended:
  bool carry_teacher = false;  // the teacher is never reset: trial b > 0 starts from the
                               // final teacher state of trial b - 1 (trial 0 from x_D[0])
  std::int64_t rls_from = 0;   // > 0: updates only after in-trial steps t = 0 and t >= rls_from
};

template <class S>
struct FullForceNet {
  MatMap<S> J;       // (n, n) student's recurrent weights, trained in place
  CMatMap<S> W_in;   // (n, n_in), shared with the teacher
  const S* b;        // (n), shared with the teacher
  MatMap<S> W_out;   // (n_out, n), trained in place
  const S* b_out;    // (n_out)
  CMatMap<S> J_D;    // (n, n) teacher's recurrent weights
  CMatMap<S> w_f;    // (n, n_out) target input of the teacher
  CMatMap<S> w_h;    // (n, n_hint) hint input of the teacher
  MatMap<S> P;       // (n, n) shared by J and W_out
  const S* W_in_D = nullptr;  // (n, n_in) the teacher's own input weights (null: W_in)
  S* x_D_out = nullptr;       // (B, n) the teacher's final state of each trial, or null
};

// full-FORCE on a batch of trials run one after the other. Teacher (driven by the target
// f and the hint h) and student (the network) run side by side:
//   teacher: x_D <- (1-alpha) x_D + alpha (J_D r_D + w_f f[t] + w_h h[t] + W_in u[t] + b)
//   student: x   <- (1-alpha) x   + alpha (J r + W_in u[t] + b)
// After step t (state r = r[t+1]), when an update is due: k = P r, c, P -= c k k^T, and
//   J     -= c (J r - J_D r_D - w_f f[t+1] - w_h h[t+1]) k^T   (if t + 1 < T: the student's
//            recurrent input of the next step against the teacher's)
//   W_out -= c (W_out r + b_out - f[t]) k^T                     (if mask[t] != 0)
// Without learning only the student runs (teacher arrays unused), trials in parallel.
//   u: (T, B, n_in); f: (T, B, n_out); hint: (T, B, n_hint); mask: (T, B) or null;
//   x, x_D: (B, n) initial states (x: final states out); y: (T, B, n_out) out.
// The study's variant: net.W_in_D replaces W_in in the teacher; opt.carry_teacher chains the
// teacher's state through the trials; opt.rls_from restricts the updates to t = 0 and
// t >= rls_from; net.x_D_out receives the teacher's final states.
template <class S>
std::int64_t full_force_run(FullForceNet<S>& net, const FullForceOptions& opt,
                            const CTensor3<S>& u, const S* f, const S* hint, Index n_hint,
                            const S* mask, S* x, const S* x_D, const Tensor3<S>& y) {
  const Index T = u.T, B = u.B, n = net.J.rows(), n_out = net.W_out.rows();
  const bool learn = opt.learn && f != nullptr;
  if (opt.rate.form != Form::current || opt.rate.readout != Readout::rate) {
    throw std::invalid_argument("full-FORCE: form 'current' and readout 'rate' only");
  }
  if (learn && opt.update_every < 1) throw std::invalid_argument("update_every must be >= 1");
  const RowMat<S> W_inT = net.W_in.transpose();
  const RowMat<S> W_in_DT =
      net.W_in_D ? RowMat<S>(CMatMap<S>(net.W_in_D, n, u.N).transpose()) : RowMat<S>();
  const RowMat<S>& teacher_W_inT = net.W_in_D ? W_in_DT : W_inT;
  detail::Vec<S> carried(learn && opt.carry_teacher ? n : 0);  // trials run in order
  std::int64_t updates = 0;
  const double work = double(T) * B * n * (n + u.N + n_out);

  detail::for_each_trial(B, learn, work, [&](Index b) {
    using V = detail::Vec<S>;
    V xs = detail::CVecMap<S>(x + b * n, n), r(n), drive(n), k(n), eJ(n), z(n_out);
    V xD(learn ? n : 0), rD(learn ? n : 0), dD(learn ? n : 0);
    apply_phi<S>(opt.rate.phi, xs.data(), r.data(), n);
    if (learn) {
      if (opt.carry_teacher && b > 0) {
        xD = carried;
      } else {
        xD = detail::CVecMap<S>(x_D + b * n, n);
      }
      apply_phi<S>(opt.rate.phi, xD.data(), rD.data(), n);
    }
    const CMatMap<S> W_out(net.W_out.data(), n_out, n);
    // teacher's recurrent input at step t: J_D r_D + w_f f[t] + w_h h[t]
    auto teacher_input = [&](Index t) {
      dD.noalias() = net.J_D * rD;
      dD.noalias() += net.w_f * detail::CVecMap<S>(f + (t * B + b) * n_out, n_out);
      if (n_hint > 0) {
        dD.noalias() += net.w_h * detail::CVecMap<S>(hint + (t * B + b) * n_hint, n_hint);
      }
    };
    InterruptPoint interruption;
    const double step_work = double(n) * (n + u.N + n_out) * (learn ? 2.0 : 1.0) +
                             (learn ? 4.0 * n * n : 0.0);
    for (Index t = 0; t < T; ++t) {
      interruption(step_work);
      // 1. student and teacher steps
      drive.noalias() = net.J * r;
      detail::add_input<S>(W_inT, net.b, u.slab(t, b, 1).data(), drive.data(), n);
      if (learn) {
        teacher_input(t);
        detail::add_input<S>(teacher_W_inT, net.b, u.slab(t, b, 1).data(), dD.data(), n);
        detail::euler_step<S>(opt.rate, dD.data(), xD.data(), rD.data(), n);
      }
      detail::euler_step<S>(opt.rate, drive.data(), xs.data(), r.data(), n);
      detail::readout_one<S>(r.data(), W_out, net.b_out, z.data());
      S* yt = y.slab(t, b, 1).data();
      for (Index o = 0; o < n_out; ++o) yt[o] = z[o];
      // 2. RLS step on r = r[t+1], errors a priori
      const std::int64_t step = std::int64_t(b) * T + t;
      if (!learn || !detail::update_due(opt, step)) continue;
      if (opt.rls_from > 0 && t != 0 && t < opt.rls_from) continue;
      const bool train_J = t + 1 < T;
      const bool train_out = !mask || mask[t * B + b] != S(0);
      if (!train_J && !train_out) continue;
      if (train_J) {
        teacher_input(t + 1);
        eJ.noalias() = net.J * r;
        eJ -= dD;
      }
      const S c = rls_update(net.P, r.data(), k.data());
      if (train_J) net.J.noalias() -= (c * eJ) * k.transpose();
      if (train_out) {
        for (Index o = 0; o < n_out; ++o) z[o] -= f[(t * B + b) * n_out + o];
        net.W_out.noalias() -= (c * z) * k.transpose();
      }
      ++updates;
    }
    detail::VecMap<S>(x + b * n, n) = xs;
    if (learn && opt.carry_teacher) carried = xD;
    if (learn && net.x_D_out) detail::VecMap<S>(net.x_D_out + b * n, n) = xD;
  });
  if (learn) mirror_upper(net.P);
  return updates;
}

#define FLEXRNN_FORCE_DECLARE(S)                                                              \
  extern template void rls_steps(MatMap<S>, const CMatMap<S>&, S*, S*);                      \
  extern template std::int64_t force_run(ForceNet<S>&, const ForceOptions&, const CTensor3<S>&, \
                                         const S*, const S*, S*, const Tensor3<S>&, S*);      \
  extern template std::int64_t full_force_run(FullForceNet<S>&, const FullForceOptions&,       \
                                              const CTensor3<S>&, const S*, const S*, Index,  \
                                              const S*, S*, const S*, const Tensor3<S>&);
FLEXRNN_FORCE_DECLARE(float)
FLEXRNN_FORCE_DECLARE(double)
#undef FLEXRNN_FORCE_DECLARE

}  // namespace flexrnn
