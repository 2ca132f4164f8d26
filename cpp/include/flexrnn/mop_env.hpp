// NeuroMOP environments (docs/neuromop.md): P RNNs driven by the current rho K a, or the
// cart-pole; what a rollout prepares per network, the buffers of one thread, and the
// successors of a state under every action. Part of mop.hpp (the rollout and fit), which
// includes it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "flexrnn/phi.hpp"
#include "flexrnn/rate_rnn.hpp"
#include "flexrnn/rate_step.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {


// bits(k, m) = 2 ((k >> m) & 1) - 1: row k of the (A, M) joint-action matrix.
template <class S>
RowMat<S> action_bits(Index M) {
  const Index A = Index{1} << M;
  RowMat<S> bits(A, M);
  for (Index k = 0; k < A; ++k) {
    for (Index m = 0; m < M; ++m) bits(k, m) = ((k >> m) & 1) ? S(1) : S(-1);
  }
  return bits;
}

// P RNNs (a RateRNN of the "rate" form each): x' = (1 - alpha) x + alpha phi(h),
// h = W x + b + rho K a (+ noise_std xi), with K the network's input weights W_in. Each
// network is its own parameters (W_out and b_out are not read); alpha and phi are the
// networks' common RateOptions.
template <class S>
struct MopRnnEnv {
  std::vector<RateRNNParams<S>> nets;  // P networks: W (n, n), W_in = K (n, M), b (n)
  Index P = 0, n = 0, M = 0;
  double rho = 2.0, alpha = 0.1, noise_std = 0.0;
  Index noise_samples = 1;  // successor sets per step when noise_std > 0
  Phi phi = Phi::tanh;
  Index dim() const { return n; }
  Index n_bits() const { return M; }
};

// The cart-pole of docs/neuromop.md: state (x, xdot, theta, thetadot), force 40 a.
struct MopCartPoleEnv {
  Index P = 0;
  double noise_std = 0.0;
  Index noise_samples = 1;
  Index dim() const { return 4; }
  Index n_bits() const { return 1; }
};

inline constexpr double kCartPoleForce = 40.0, kCartMass = 1.0, kPoleMass = 0.1,
                        kPoleLength = 1.0, kGravity = 9.81, kCartPoleDt = 0.02,
                        kCartSpeedMax = 6.0, kPoleSpeedMax = 3.0;

// One Euler step of the frictionless cart-pole (old velocities move the positions), the
// velocities then clipped. s and out (4) may alias.
template <class S>
void cartpole_step(const S* s, double force, S* out) {
  const double x = s[0], xd = s[1], th = s[2], thd = s[3];
  const double m_tot = kCartMass + kPoleMass, sin_th = std::sin(th), cos_th = std::cos(th);
  const double temp = (force + kPoleMass * kPoleLength * thd * thd * sin_th) / m_tot;
  const double thacc = (kGravity * sin_th - cos_th * temp) /
                       (kPoleLength * (4.0 / 3.0 - kPoleMass * cos_th * cos_th / m_tot));
  const double xacc = temp - kPoleMass * kPoleLength * thacc * cos_th / m_tot;
  out[0] = static_cast<S>(x + kCartPoleDt * xd);
  out[1] = static_cast<S>(std::clamp(xd + kCartPoleDt * xacc, -kCartSpeedMax, kCartSpeedMax));
  out[2] = static_cast<S>(th + kCartPoleDt * thd);
  out[3] = static_cast<S>(std::clamp(thd + kCartPoleDt * thacc, -kPoleSpeedMax, kPoleSpeedMax));
}

// Rows of states (m, 4) under forces (m) into out (m, 4).
template <class S>
void cartpole_steps(const S* states, const S* forces, Index m, S* out) {
  for (Index r = 0; r < m; ++r) {
    cartpole_step(states + 4 * r, static_cast<double>(forces[r]), out + 4 * r);
  }
}

namespace detail {


// Per-network data made once per call: rho K a for every action, diag(W), and copies of W,
// b and the value network in Eigen's aligned storage. Eigen's vectorised products peel a
// different number of leading elements depending on where a buffer starts, which changes the
// rounding; NumPy's buffers start anywhere, so without these copies two runs of the same
// call could differ in the last bit (and a chaotic network then takes other actions).
template <class S>
struct MopPrepared {
  RowMat<S> drive;  // (A, n)
  RowMat<S> W;      // (n, n)
  Eigen::Matrix<S, Eigen::Dynamic, 1> b, diag_W, theta;
};

template <class S>
MopPrepared<S> prepare(const MopRnnEnv<S>& env, Index p, const S* theta, Index n_params) {
  MopPrepared<S> prep;
  const RateRNNParams<S>& net = env.nets[static_cast<std::size_t>(p)];
  const RowMat<S> K = net.W_in;
  prep.drive.noalias() = S(env.rho) * action_bits<S>(env.M) * K.transpose();
  prep.W = net.W;
  prep.b = Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(net.b, env.n);
  prep.diag_W = prep.W.diagonal();
  prep.theta = Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(theta, n_params);
  return prep;
}

template <class S>
MopPrepared<S> prepare(const MopCartPoleEnv&, Index, const S* theta, Index n_params) {
  MopPrepared<S> prep;
  prep.theta = Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(theta, n_params);
  return prep;
}

// The buffers of one thread (one unit at a time).
template <class S>
struct MopBuffers {
  RowMat<S> H, X, Z;  // pre-activations (A, n), successors (A, d), hidden (A, hidden)
  Eigen::Matrix<S, Eigen::Dynamic, 1> c, v, x, x_next, entropy_term, bias;
  std::vector<double> V, s, r, dead, Q, pi, normals;
  std::vector<std::uint8_t> flags, reward_flags, custom_buffer;

  MopBuffers(Index A, Index n, Index d, Index hidden, Index noise_values)
      : H(A, n), X(A, d), Z(A, hidden), c(n), v(A), x(d), x_next(d), entropy_term(A),
        bias(hidden), V(A), s(A), r(A), dead(A), Q(A), pi(A), normals(noise_values),
        flags(A), reward_flags(A) {}
};

// Successors of x for every action into buf.X (A, d), with noise xi (n) or none, and the
// state-entropy terms into buf.entropy_term when wanted. buf.c holds W x + b.
template <class S>
void successors(const MopRnnEnv<S>& env, const MopPrepared<S>& prep, const S* x, const S* xi,
                bool entropy, MopBuffers<S>& buf) {
  const Index n = env.n;
  buf.H = prep.drive;
  buf.H.rowwise() += buf.c.transpose();
  if (xi) buf.H.rowwise() += Eigen::Map<const RowVec<S>>(xi, n);
  auto phi = [&](const RowMat<S>& in, RowMat<S>& out) {
    apply_phi<S>(env.phi, in.data(), out.data(), in.size());
  };
  const Eigen::Map<const RowVec<S>> xr(x, n);
  EulerStep<S>(Form::rate, env.alpha).in_two_passes(xr, buf.H, buf.X, phi);
  if (entropy) {
    // s_a = alpha (-n + sum_i phi'(h_ai) W_ii): dt times the trace of grad f
    apply_dphi<S>(env.phi, buf.H.data(), buf.H.data(), buf.H.size());
    buf.entropy_term.noalias() = buf.H * prep.diag_W;
    buf.entropy_term = (buf.entropy_term.array() - S(n)) * S(env.alpha);
  }
}

template <class S>
void successors(const MopCartPoleEnv&, const MopPrepared<S>&, const S* x, const S*, bool,
                MopBuffers<S>& buf) {
  for (Index k = 0; k < 2; ++k) cartpole_step(x, kCartPoleForce * (k ? 1.0 : -1.0), &buf.X(k, 0));
  buf.entropy_term.setZero();
}

// The next state after action k with noise xi (RNN) into buf.x_next.
template <class S>
void successor(const MopRnnEnv<S>& env, const MopPrepared<S>& prep, const S* x, const S* xi,
               Index k, MopBuffers<S>& buf) {
  const Index n = env.n;
  using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;
  Vec h = (prep.drive.row(k) + buf.c.transpose()).transpose();
  if (xi) h += Eigen::Map<const Vec>(xi, n);
  auto phi = [&](const Vec& in, Vec& out) { apply_phi<S>(env.phi, in.data(), out.data(), n); };
  EulerStep<S>(Form::rate, env.alpha).in_two_passes(Eigen::Map<const Vec>(x, n), h, buf.x_next,
                                                    phi);
}

template <class S>
void successor(const MopCartPoleEnv&, const MopPrepared<S>&, const S* x, const S*, Index k,
               MopBuffers<S>& buf) {
  cartpole_step(x, kCartPoleForce * (k ? 1.0 : -1.0), buf.x_next.data());
}

template <class S>
void prepare_step(const MopRnnEnv<S>&, const MopPrepared<S>& prep, const S* x,
                  MopBuffers<S>& buf) {
  buf.x_next = Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(x, prep.W.cols());
  buf.c.noalias() = prep.W * buf.x_next;  // x copied to aligned storage first (see above)
  buf.c += prep.b;
}

template <class S>
void prepare_step(const MopCartPoleEnv&, const MopPrepared<S>&, const S*, MopBuffers<S>&) {}

}  // namespace detail

}  // namespace flexrnn
