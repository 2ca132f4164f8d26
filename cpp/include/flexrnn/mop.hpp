// NeuroMOP (specs/neuromop.md; Mastrogiuseppe & Moreno-Bote 2024): a controller picks one
// of A = 2^M joint actions at every step of a fixed environment (an RNN driven by the
// current rho K a, or a cart-pole), enumerating all A successors, scoring them with a value
// network in one matrix product, and acting by the exact softmax (MOP agent) or
// epsilon-greedily (R agent); the value network is then fitted to the log-sum-exp
// targets by Adam. The exact recipe (bit order, random streams, weights) is in
// docs/internals.md, "NeuroMOP rollouts and value fitting"; flexrnn/reference/mop.py is
// the same text in NumPy.
//
// P independent networks (agents) with B trajectories each run in one call; every
// (network, trajectory) pair is one unit of work with its own buffers and random stream,
// so the result does not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "flexrnn/parallel.hpp"
#include "flexrnn/phi.hpp"
#include "flexrnn/random.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

// ---------------------------------------------------------------------------------------
// Terminal sets and reward regions: postfix programs of atoms and NOT / AND / OR.

enum class ProgramOp : std::int32_t { atom = 0, op_not = 1, op_and = 2, op_or = 3 };
enum class AtomKind : std::int32_t {
  energy = 0,   // sqrt(sum_i (x_i - c)^2) / d - L        params (c, L)
  abs = 1,      // |x_i - c| - L                          index (i), params (c, L)
  linear = 2,   // w . x + b                              index (row of weights), params (b)
  ellipse = 3,  // ((x_i-ci)/si)^2 + ((x_j-cj)/sj)^2 - 1  index (i, j), params (ci, cj, si, sj)
  l1 = 4,       // |x_i| / si + |x_j| / sj - 1            index (i, j), params (si, sj)
  heart = 5,    // (x_i^2 + x_j^2 - c)^3 - x_i^2 x_j^3    index (i, j), params (c)
  custom = 6,   // the k-th caller-supplied predicate     index (k)
};
inline constexpr int kProgramStack = 64;

// One program per context: the code of context c is code[start[c] .. start[c + 1]).
struct Program {
  const std::int32_t* code = nullptr;   // (L, 2): (op, atom)
  const std::int32_t* start = nullptr;  // (n_programs + 1)
  const std::int32_t* kind = nullptr;   // (n_atoms)
  const std::int64_t* index = nullptr;  // (n_atoms, 2)
  const double* params = nullptr;       // (n_atoms, 4)
  const double* weights = nullptr;      // (n_weights, d)
  Index n_programs = 0, n_atoms = 0;
  bool has_custom = false;
  bool empty() const { return n_programs == 0; }
};

// A predicate the core cannot evaluate itself (a Python callable): out[r] = 1 when row r of
// X (m, d) is in the set of custom atom k. Never called from two threads at once.
template <class S>
using CustomAtoms = std::function<void(Index k, const S* X, Index m, Index d, std::uint8_t* out)>;

namespace detail {

template <class S>
double atom_score(const Program& prog, Index a, const S* x, Index d, double custom_flag) {
  const double* q = prog.params + 4 * a;
  const std::int64_t* ij = prog.index + 2 * a;
  const double xi = static_cast<double>(x[ij[0]]);
  const double xj = static_cast<double>(x[ij[1]]);
  switch (static_cast<AtomKind>(prog.kind[a])) {
    case AtomKind::energy: {  // vectorised: every successor of every step asks this
      const Eigen::Map<const Eigen::Array<S, Eigen::Dynamic, 1>> xv(x, d);
      const double sq = static_cast<double>((xv - S(q[0])).square().sum());
      return std::sqrt(sq) / static_cast<double>(d) - q[1];
    }
    case AtomKind::abs:
      return std::abs(xi - q[0]) - q[1];
    case AtomKind::linear: {
      const double* w = prog.weights + ij[0] * d;
      double s = q[0];
      for (Index i = 0; i < d; ++i) s += w[i] * static_cast<double>(x[i]);
      return s;
    }
    case AtomKind::ellipse: {
      const double u = (xi - q[0]) / q[2], v = (xj - q[1]) / q[3];
      return u * u + v * v - 1.0;
    }
    case AtomKind::l1:
      return std::abs(xi) / q[0] + std::abs(xj) / q[1] - 1.0;
    case AtomKind::heart: {
      const double r = xi * xi + xj * xj - q[0];
      return r * r * r - xi * xi * xj * xj * xj;
    }
    case AtomKind::custom:
      return custom_flag;
  }
  throw std::invalid_argument("terminal program: unknown atom kind");
}

}  // namespace detail

// out[r] = 1 when row r of X (m, d) is in the set of program `which`. custom_flags holds,
// for each custom atom k, its m flags at custom_flags[k * m ...] (filled by the caller).
template <class S>
void evaluate_program(const Program& prog, Index which, const S* X, Index m, Index d,
                      const std::uint8_t* custom_flags, std::uint8_t* out) {
  const std::int32_t* code = prog.code + 2 * prog.start[which];
  const Index len = prog.start[which + 1] - prog.start[which];
  bool stack[kProgramStack];
  for (Index r = 0; r < m; ++r) {
    const S* x = X + r * d;
    int top = 0;
    for (Index i = 0; i < len; ++i) {
      const auto op = static_cast<ProgramOp>(code[2 * i]);
      if (op == ProgramOp::atom) {
        const Index a = code[2 * i + 1];
        const double flag =
            (prog.kind[a] == static_cast<std::int32_t>(AtomKind::custom) && custom_flags)
                ? (custom_flags[prog.index[2 * a] * m + r] ? 1.0 : -1.0)
                : 0.0;
        stack[top++] = detail::atom_score(prog, a, x, d, flag) > 0.0;
      } else if (op == ProgramOp::op_not) {
        stack[top - 1] = !stack[top - 1];
      } else {
        const bool rhs = stack[--top];
        const bool lhs = stack[top - 1];
        stack[top - 1] = op == ProgramOp::op_and ? (lhs && rhs) : (lhs || rhs);
      }
    }
    out[r] = stack[0] ? 1 : 0;
  }
}

// Program evaluation with the custom atoms asked of `custom` first (only those the
// program uses; `buffer` is resized as needed).
template <class S>
void evaluate_set(const Program& prog, Index which, const S* X, Index m, Index d,
                  const CustomAtoms<S>* custom, std::vector<std::uint8_t>& buffer,
                  std::uint8_t* out) {
  const std::uint8_t* flags = nullptr;
  if (prog.has_custom) {
    if (!custom) throw std::invalid_argument("terminal program: custom atom without a callback");
    Index n_custom = 0;
    for (Index a = 0; a < prog.n_atoms; ++a) {
      if (prog.kind[a] == static_cast<std::int32_t>(AtomKind::custom)) {
        // the index picks a predicate and a slot of the buffer: never negative
        if (prog.index[2 * a] < 0) {
          throw std::invalid_argument("terminal program: custom atom " +
                                      std::to_string(prog.index[2 * a]) + " (must be >= 0)");
        }
        n_custom = std::max<Index>(n_custom, prog.index[2 * a] + 1);
      }
    }
    buffer.assign(static_cast<std::size_t>(n_custom * m), 0);
    const std::int32_t* code = prog.code + 2 * prog.start[which];
    for (Index i = 0; i < prog.start[which + 1] - prog.start[which]; ++i) {
      const Index a = code[2 * i + 1];
      if (static_cast<ProgramOp>(code[2 * i]) == ProgramOp::atom &&
          prog.kind[a] == static_cast<std::int32_t>(AtomKind::custom)) {
        (*custom)(prog.index[2 * a], X, m, d, buffer.data() + prog.index[2 * a] * m);
      }
    }
    flags = buffer.data();
  }
  evaluate_program(prog, which, X, m, d, flags, out);
}

// ---------------------------------------------------------------------------------------
// Environments.

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
// h = W x + b + rho K a (+ noise_std xi). Arrays stacked over the networks.
template <class S>
struct MopRnnEnv {
  const S* W = nullptr;  // (P, n, n)
  const S* b = nullptr;  // (P, n)
  const S* K = nullptr;  // (P, n, M)
  Index P = 0, n = 0, M = 0;
  double rho = 2.0, alpha = 0.1, noise_std = 0.0;
  Index noise_samples = 1;  // successor sets per step when noise_std > 0
  Phi phi = Phi::tanh;
  Index dim() const { return n; }
  Index n_bits() const { return M; }
};

// The cart-pole of specs/neuromop.md: state (x, xdot, theta, thetadot), force 40 a.
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

// ---------------------------------------------------------------------------------------
// Agent, value network, trajectories.

enum class MopAgentKind { mop, reward };

struct MopAgentOptions {
  MopAgentKind agent = MopAgentKind::mop;
  double gamma = 0.98, beta = 0.0, mu = 0.0, eps = 0.0;
  double scale = 1.0;  // V = scale * (network output)
  Index hidden = 128, n_contexts = 1;
};

// P value networks V(z) = scale (w2 . relu(W1 z + b1) + b2), z = [x; onehot(context)] (the
// one-hot only when n_contexts > 1), parameters flat: W1 (H, d_in) row-major, b1, w2, b2.
inline Index value_input_dim(Index d, Index n_contexts) {
  return d + (n_contexts > 1 ? n_contexts : 0);
}
inline Index value_param_count(Index d_in, Index hidden) { return hidden * (d_in + 2) + 1; }

// What a rollout records; every array stacked over the P networks.
template <class S>
struct MopTrajectories {
  S* states = nullptr;                   // (P, T + 1, B, d), zero past the end
  std::int64_t* actions = nullptr;       // (P, T, B), -1 past the end
  S* entropy = nullptr;                  // (P, T, B), action entropy (nats), 0 past the end
  S* targets = nullptr;                  // (P, T + 1, B), value targets
  S* weights = nullptr;                  // (P, T + 1, B), 0.1 / 1 (terminal), 0: no target
  std::int64_t* lifetime = nullptr;      // (P, B)
  std::uint8_t* terminated = nullptr;    // (P, B)
  Index T = 0, B = 0;
};

// Each network draws from its own seed, so an agent's run does not depend on the others
// it is batched with.
struct MopRunOptions {
  Index horizon = 1000;
  const std::uint64_t* seeds = nullptr;  // (P)
  std::uint64_t stream0 = 0;
};

inline std::uint64_t mop_stream(std::uint64_t stream0, Index b) {
  return stream0 + static_cast<std::uint64_t>(b);
}
inline std::uint64_t mop_fit_stream(std::uint64_t stream0) {
  return stream0 + (std::uint64_t{1} << 19);
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
  const RowMat<S> K = CMatMap<S>(env.K + p * env.n * env.M, env.n, env.M);
  prep.drive.noalias() = S(env.rho) * action_bits<S>(env.M) * K.transpose();
  prep.W = CMatMap<S>(env.W + p * env.n * env.n, env.n, env.n);
  prep.b = Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(env.b + p * env.n, env.n);
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
  apply_phi<S>(env.phi, buf.H.data(), buf.X.data(), buf.H.size());
  const Eigen::Map<const RowVec<S>> xr(x, n);
  buf.X *= S(env.alpha);
  buf.X.rowwise() += S(1.0 - env.alpha) * xr;
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
  RowVec<S> h = prep.drive.row(k) + buf.c.transpose();
  if (xi) h += Eigen::Map<const RowVec<S>>(xi, n);
  apply_phi<S>(env.phi, h.data(), buf.x_next.data(), n);
  const Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>> xv(x, n);
  buf.x_next = S(env.alpha) * buf.x_next + S(1.0 - env.alpha) * xv;
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

// v = w2 . relu(X W1x^T + bias) + b2 over the rows of X (m, d); bias = b1 + the context's
// column of W1. Z (m, hidden) is scratch.
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

// log sum_a exp(Q_a), max-shifted.
inline double log_sum_exp(const std::vector<double>& Q) {
  const double top = *std::max_element(Q.begin(), Q.end());
  double sum = 0;
  for (double q : Q) sum += std::exp(q - top);
  return top + std::log(sum);
}

}  // namespace detail

// One step's quantities at a non-terminal state x: Q (A), policy (A), the value target
// and the policy's entropy. For the noisy RNN, S noise samples (normals (S, n), already
// scaled) are averaged. Leaves the last successor set in buf.X.
template <class S, class Env>
void mop_step_values(const Env& env, const detail::MopPrepared<S>& prep,
                     const Program& terminal, const Program& reward, const MopAgentOptions& opt,
                     const S* theta, const S* x, Index context, const S* noise, Index samples,
                     const CustomAtoms<S>* custom, detail::MopBuffers<S>& buf, double& target,
                     double& entropy) {
  const Index d = env.dim(), A = Index{1} << env.n_bits();
  const Index d_in = value_input_dim(d, opt.n_contexts);
  const bool want_entropy = opt.beta != 0.0;
  const bool want_reward = opt.mu != 0.0 && !reward.empty();
  detail::prepare_step(env, prep, x, buf);
  detail::context_bias(theta, d_in, opt.hidden, d, context, buf.bias);
  std::fill(buf.V.begin(), buf.V.end(), 0.0);
  std::fill(buf.s.begin(), buf.s.end(), 0.0);
  std::fill(buf.r.begin(), buf.r.end(), 0.0);
  std::fill(buf.dead.begin(), buf.dead.end(), 0.0);
  for (Index smp = 0; smp < samples; ++smp) {
    const S* xi = noise ? noise + smp * d : nullptr;
    detail::successors(env, prep, x, xi, want_entropy, buf);
    evaluate_set(terminal, context, buf.X.data(), A, d, custom, buf.custom_buffer,
                 buf.flags.data());
    if (want_reward) {
      evaluate_set(reward, 0, buf.X.data(), A, d, custom, buf.custom_buffer,
                   buf.reward_flags.data());
    }
    detail::value_rows(theta, d_in, opt.hidden, d, buf.X, buf.bias, buf.Z, buf.v);
    for (Index a = 0; a < A; ++a) {
      const double dead = buf.flags[a] ? 1.0 : 0.0;
      buf.V[a] += (1.0 - dead) * opt.scale * static_cast<double>(buf.v[a]);
      buf.dead[a] += dead;
      if (want_entropy) buf.s[a] += static_cast<double>(buf.entropy_term[a]);
      if (want_reward) buf.r[a] += buf.reward_flags[a] ? 1.0 : 0.0;
    }
  }
  const double inv = 1.0 / static_cast<double>(samples);
  for (Index a = 0; a < A; ++a) {
    const double survive = opt.agent == MopAgentKind::reward ? 1.0 - buf.dead[a] * inv : 0.0;
    buf.Q[a] = survive + opt.gamma * buf.V[a] * inv + opt.beta * buf.s[a] * inv +
               opt.mu * buf.r[a] * inv;
  }
  if (opt.agent == MopAgentKind::mop) {
    target = detail::log_sum_exp(buf.Q);
    entropy = 0;
    for (Index a = 0; a < A; ++a) {
      buf.pi[a] = std::exp(buf.Q[a] - target);
      if (buf.pi[a] > 0) entropy -= buf.pi[a] * (buf.Q[a] - target);
    }
  } else {
    const auto best = std::max_element(buf.Q.begin(), buf.Q.end()) - buf.Q.begin();
    double mean = 0;
    for (double q : buf.Q) mean += q;
    mean /= static_cast<double>(A);
    target = (1.0 - opt.eps) * buf.Q[best] + opt.eps * mean;
    entropy = 0;
    for (Index a = 0; a < A; ++a) {
      buf.pi[a] = opt.eps / static_cast<double>(A) + (a == best ? 1.0 - opt.eps : 0.0);
      if (buf.pi[a] > 0) entropy -= buf.pi[a] * std::log(buf.pi[a]);
    }
  }
}

// Rollouts of B trajectories on each of the P networks from x0 (P, B, d) in contexts
// (P, B); theta (P, n_params) the value networks. Fills every array of `out`.
template <class S, class Env>
void mop_rollout(const Env& env, const Program& terminal, const Program& reward,
                 const MopAgentOptions& opt, const MopRunOptions& run, const S* theta,
                 const S* x0, const std::int64_t* contexts, const CustomAtoms<S>* custom,
                 const MopTrajectories<S>& out) {
  const Index P = env.P, B = out.B, T = run.horizon, d = env.dim();
  const Index A = Index{1} << env.n_bits();
  const Index n_params = value_param_count(value_input_dim(d, opt.n_contexts), opt.hidden);
  const bool noisy = env.noise_std > 0.0;
  const Index samples = noisy ? env.noise_samples : 1;
  const Index noise_values = noisy ? (samples + 1) * d : 0;
  std::vector<detail::MopPrepared<S>> prep(static_cast<std::size_t>(P));
  for (Index p = 0; p < P; ++p) {
    prep[p] = detail::prepare<S>(env, p, theta + p * n_params, n_params);
  }

  auto make = [&] { return detail::MopBuffers<S>(A, d, d, opt.hidden, noise_values); };
  // multiply-adds of one step, roughly: the successors and their values
  const double step_work = double(samples) * double(A) * double(d) * double(opt.hidden + d);
  // A Python predicate takes the GIL: its calls would only queue behind each other.
  const bool parallel = !(terminal.has_custom || reward.has_custom) && P * B > 1;
  using Buffers = detail::MopBuffers<S>;
  detail::for_each_member<Buffers>(P * B, parallel, make, [&](Index unit, Buffers& buf) {
    const Index p = unit / B, b = unit % B;
    const S* th = prep[p].theta.data();
    const Index context = contexts[p * B + b];
    const std::uint64_t stream = mop_stream(run.stream0, b);
    const std::uint64_t seed = run.seeds[p];
    auto state_at = [&](Index t) { return out.states + ((p * (T + 1) + t) * B + b) * d; };
    auto at1 = [&](S* a, Index t) -> S& { return a[(p * (T + 1) + t) * B + b]; };
    std::vector<S> noise(static_cast<std::size_t>(noise_values));
    for (Index t = 0; t <= T; ++t) {  // clear this trajectory's slots
      std::fill(state_at(t), state_at(t) + d, S(0));
      at1(out.targets, t) = S(0);
      at1(out.weights, t) = S(0);
      if (t < T) {
        out.actions[(p * T + t) * B + b] = -1;
        out.entropy[(p * T + t) * B + b] = S(0);
      }
    }
    std::copy(x0 + (p * B + b) * d, x0 + (p * B + b + 1) * d, buf.x.data());
    Index lifetime = T;
    bool dead = false;
    std::uint8_t here = 0;
    InterruptPoint interruption;
    for (Index t = 0; t <= T; ++t) {
      interruption(step_work);
      std::copy(buf.x.data(), buf.x.data() + d, state_at(t));
      evaluate_set(terminal, context, buf.x.data(), 1, d, custom, buf.custom_buffer, &here);
      if (here) {
        lifetime = t;
        dead = true;
        at1(out.weights, t) = S(1);  // target 0
        break;
      }
      if (t == T) break;
      const auto step = static_cast<std::uint32_t>(t);
      if (noisy) {
        philox_normal(seed, stream, 2 * step + 1, buf.normals.data(), noise_values);
        for (Index i = 0; i < noise_values; ++i) {
          noise[i] = static_cast<S>(env.noise_std * buf.normals[i]);
        }
      }
      double target = 0, entropy = 0;
      mop_step_values<S>(env, prep[p], terminal, reward, opt, th, buf.x.data(), context,
                      noisy ? noise.data() : nullptr, samples, custom, buf, target, entropy);
      double u[2];
      philox_uniform(seed, stream, 2 * step, u, 2);
      Index k = A - 1;
      if (opt.agent == MopAgentKind::mop) {
        double cum = 0;
        for (Index a = 0; a < A; ++a) {
          cum += buf.pi[a];
          if (cum >= u[0]) {
            k = a;
            break;
          }
        }
      } else if (u[0] < opt.eps) {
        k = std::min<Index>(static_cast<Index>(u[1] * static_cast<double>(A)), A - 1);
      } else {
        k = std::max_element(buf.Q.begin(), buf.Q.end()) - buf.Q.begin();
      }
      at1(out.targets, t) = static_cast<S>(target);
      at1(out.weights, t) = S(0.1);
      out.actions[(p * T + t) * B + b] = k;
      out.entropy[(p * T + t) * B + b] = static_cast<S>(entropy);
      if (noisy) {
        detail::successor(env, prep[p], buf.x.data(), noise.data() + samples * d, k, buf);
        buf.x = buf.x_next;
      } else {
        buf.x = buf.X.row(k).transpose();
      }
    }
    out.lifetime[p * B + b] = lifetime;
    out.terminated[p * B + b] = dead ? 1 : 0;
  });
}

// The step quantities of network p at the states X (m, d) (assumed non-terminal; noise-free
// successors): Q and policy (m, A), target and entropy (m).
template <class S, class Env>
void mop_evaluate(const Env& env, Index p, const Program& terminal, const Program& reward,
                  const MopAgentOptions& opt, const S* theta, const S* X, Index m,
                  const std::int64_t* contexts, const CustomAtoms<S>* custom, double* Q,
                  double* policy, double* target, double* entropy) {
  const Index d = env.dim(), A = Index{1} << env.n_bits();
  const Index n_params = value_param_count(value_input_dim(d, opt.n_contexts), opt.hidden);
  const detail::MopPrepared<S> prep = detail::prepare<S>(env, p, theta, n_params);
  auto make = [&] { return detail::MopBuffers<S>(A, d, d, opt.hidden, 0); };
  const bool parallel = !(terminal.has_custom || reward.has_custom) && m > 1;
  using Buffers = detail::MopBuffers<S>;
  detail::for_each_member<Buffers>(m, parallel, make, [&](Index r, Buffers& buf) {
    InterruptPoint{}(double(A) * double(d) * double(opt.hidden + d));
    std::copy(X + r * d, X + (r + 1) * d, buf.x.data());  // aligned, as in a rollout
    mop_step_values<S>(env, prep, terminal, reward, opt, prep.theta.data(), buf.x.data(),
                       contexts[r], nullptr, 1, custom, buf, target[r], entropy[r]);
    std::copy(buf.Q.begin(), buf.Q.end(), Q + r * A);
    std::copy(buf.pi.begin(), buf.pi.end(), policy + r * A);
  });
}

// ---------------------------------------------------------------------------------------
// Value fitting.

template <class S>
struct ValueNets {
  S* theta = nullptr;           // (P, n_params)
  S* m = nullptr;               // (P, n_params) Adam first moments
  S* v = nullptr;               // (P, n_params) Adam second moments
  std::int64_t* step = nullptr;  // (P) Adam steps taken
  Index P = 0, d = 0, n_contexts = 1, hidden = 128;
};

struct MopFitOptions {
  double lr = 1e-3;
  Index updates = 50, batch_size = 256;
  const std::uint64_t* seeds = nullptr;  // (P)
  std::uint64_t stream0 = 0;
};

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
  const CMatMap<S> W1(theta, hidden, d_in);
  const Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>> b1(theta + hidden * d_in, hidden);
  const Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>> w2(theta + hidden * (d_in + 1),
                                                                 hidden);
  const S b2 = theta[hidden * (d_in + 2)];
  Hd.noalias() = Z * W1.transpose();
  Hd.rowwise() += b1.transpose();
  Hd = Hd.cwiseMax(S(0));
  Eigen::Matrix<S, Eigen::Dynamic, 1> v = Hd * w2;
  v.array() += b2;
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

// One bias-corrected Adam step (betas 0.9, 0.999, eps 1e-8); step is the new step count.
template <class S>
void adam_step(S* theta, const S* grad, S* m, S* v, Index len, std::int64_t step, double lr) {
  constexpr double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const double c1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double c2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  for (Index i = 0; i < len; ++i) {
    const double g = grad[i];
    const double mi = beta1 * m[i] + (1.0 - beta1) * g;
    const double vi = beta2 * v[i] + (1.0 - beta2) * g * g;
    m[i] = static_cast<S>(mi);
    v[i] = static_cast<S>(vi);
    theta[i] = static_cast<S>(theta[i] - lr * (mi / c1) / (std::sqrt(vi / c2) + eps));
  }
}

// `updates` Adam steps per network on the targets of a rollout (internals.md, "Fit"):
// losses (P, updates) out, the minibatch loss before each step.
template <class S>
void mop_fit(const ValueNets<S>& nets, const MopTrajectories<S>& tr, const std::int64_t* contexts,
             double scale, const MopFitOptions& fit, double* losses) {
  const Index P = nets.P, B = tr.B, T = tr.T, d = nets.d;
  const Index d_in = value_input_dim(d, nets.n_contexts);
  const Index n_params = value_param_count(d_in, nets.hidden);
  // theta and its gradient in aligned storage (see MopPrepared), copied back at the end
  struct FitBuffers {
    RowMat<S> Z, Hd;
    Eigen::Matrix<S, Eigen::Dynamic, 1> y, c, theta, grad;
    std::vector<double> u;
  };
  auto make = [&] {
    FitBuffers f;
    f.Z.resize(fit.batch_size, d_in);
    f.Hd.resize(fit.batch_size, nets.hidden);
    f.y.resize(fit.batch_size);
    f.c.resize(fit.batch_size);
    f.grad.resize(n_params);
    f.u.resize(static_cast<std::size_t>(fit.batch_size));
    return f;
  };
  detail::for_each_member<FitBuffers>(P, P > 1, make, [&](Index p, FitBuffers& f) {
    // rows with a target, in (t, b) order, and each trajectory's number of rows
    std::vector<Index> rows_t, rows_b;
    std::vector<double> per_traj(static_cast<std::size_t>(B), 0.0);
    for (Index t = 0; t <= T; ++t) {
      for (Index b = 0; b < B; ++b) {
        if (tr.weights[(p * (T + 1) + t) * B + b] > S(0)) {
          rows_t.push_back(t);
          rows_b.push_back(b);
          per_traj[b] += 1.0;
        }
      }
    }
    const Index N = static_cast<Index>(rows_t.size());
    Eigen::Map<Eigen::Matrix<S, Eigen::Dynamic, 1>> theta_out(nets.theta + p * n_params,
                                                              n_params);
    f.theta = theta_out;
    S* theta = f.theta.data();
    const std::uint64_t stream = mop_fit_stream(fit.stream0);
    InterruptPoint interruption;
    for (Index k = 0; k < fit.updates; ++k) {
      interruption(3.0 * double(fit.batch_size) * double(d_in) * double(nets.hidden));
      if (N == 0) {
        losses[p * fit.updates + k] = 0.0;
        continue;
      }
      const auto update = static_cast<std::uint32_t>(k);
      philox_uniform(fit.seeds[p], stream, update, f.u.data(), fit.batch_size);
      f.Z.setZero();
      for (Index i = 0; i < fit.batch_size; ++i) {
        const Index r = std::min<Index>(static_cast<Index>(f.u[i] * static_cast<double>(N)), N - 1);
        const Index t = rows_t[r], b = rows_b[r];
        const Index at = (p * (T + 1) + t) * B + b;
        std::copy(tr.states + at * d, tr.states + (at + 1) * d, &f.Z(i, 0));
        if (d_in > d) f.Z(i, d + contexts[p * B + b]) = S(1);
        f.y[i] = static_cast<S>(static_cast<double>(tr.targets[at]) / scale);
        f.c[i] = static_cast<S>(static_cast<double>(tr.weights[at]) / per_traj[b]);
      }
      losses[p * fit.updates + k] =
          value_loss_and_grad(theta, d_in, nets.hidden, f.Z, f.y, f.c, f.Hd, f.grad.data());
      nets.step[p] += 1;
      adam_step(theta, f.grad.data(), nets.m + p * n_params, nets.v + p * n_params, n_params,
                nets.step[p], fit.lr);
    }
    theta_out = f.theta;
  });
}

// Instantiated once, in cpp/src/mop.cpp.
#define FLEXRNN_MOP_TEMPLATES_ENV(KW, S, E)                                                     \
  KW template void mop_rollout(const E&, const Program&, const Program&, const MopAgentOptions&, \
                            const MopRunOptions&, const S*, const S*, const std::int64_t*,      \
                            const CustomAtoms<S>*, const MopTrajectories<S>&);                  \
  KW template void mop_evaluate(const E&, Index, const Program&, const Program&,                \
                             const MopAgentOptions&, const S*, const S*, Index,                 \
                             const std::int64_t*, const CustomAtoms<S>*, double*, double*,      \
                             double*, double*);

#define FLEXRNN_MOP_TEMPLATES(KW, S)                                                            \
  FLEXRNN_MOP_TEMPLATES_ENV(KW, S, MopRnnEnv<S>)                                                \
  FLEXRNN_MOP_TEMPLATES_ENV(KW, S, MopCartPoleEnv)                                              \
  KW template void mop_fit(const ValueNets<S>&, const MopTrajectories<S>&, const std::int64_t*, \
                        double, const MopFitOptions&, double*);                                 \
  KW template double value_loss_and_grad(const S*, Index, Index, const RowMat<S>&,              \
                                      const Eigen::Matrix<S, Eigen::Dynamic, 1>&,               \
                                      const Eigen::Matrix<S, Eigen::Dynamic, 1>&, RowMat<S>&,   \
                                      S*);                                                      \
  KW template void evaluate_set(const Program&, Index, const S*, Index, Index,                  \
                             const CustomAtoms<S>*, std::vector<std::uint8_t>&,                 \
                             std::uint8_t*);                                                    \
  KW template void cartpole_steps(const S*, const S*, Index, S*);                              \
  KW template void value_forward(const S*, Index, Index, const S*, Index, S*);
#define FLEXRNN_MOP_EXTERN extern
FLEXRNN_MOP_TEMPLATES(FLEXRNN_MOP_EXTERN, float)
FLEXRNN_MOP_TEMPLATES(FLEXRNN_MOP_EXTERN, double)
#undef FLEXRNN_MOP_EXTERN

}  // namespace flexrnn
