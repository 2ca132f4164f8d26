// NeuroMOP (docs/neuromop.md; Mastrogiuseppe & Moreno-Bote 2024): a controller picks one
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
//
// The pieces: mop_program.hpp (terminal sets), mop_env.hpp (environments and successors),
// mop_value.hpp (the value network); this header holds the step, the rollout and the fit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "flexrnn/adam.hpp"
#include "flexrnn/mop_env.hpp"
#include "flexrnn/mop_program.hpp"
#include "flexrnn/mop_value.hpp"
#include "flexrnn/parallel.hpp"
#include "flexrnn/random.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

// ---------------------------------------------------------------------------------------
// Agent and trajectories.

enum class MopAgentKind { mop, reward };

struct MopAgentOptions {
  MopAgentKind agent = MopAgentKind::mop;
  double gamma = 0.98, beta = 0.0, mu = 0.0, eps = 0.0;
  double scale = 1.0;  // V = scale * (network output)
  Index hidden = 128, n_contexts = 1;
};

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

// log sum_a exp(Q_a), max-shifted.
inline double log_sum_exp(const std::vector<double>& Q) {
  const double top = *std::max_element(Q.begin(), Q.end());
  double sum = 0;
  for (double q : Q) sum += std::exp(q - top);
  return top + std::log(sum);
}

// The action taken: the MOP agent samples its policy pi (A) with u[0]; the R agent takes a
// uniform action (u[1]) with probability eps, else the best Q (A).
inline Index choose_action(const MopAgentOptions& opt, const std::vector<double>& pi,
                           const std::vector<double>& Q, const double u[2]) {
  const Index A = static_cast<Index>(Q.size());
  if (opt.agent == MopAgentKind::mop) {
    double cum = 0;
    for (Index a = 0; a < A; ++a) {
      cum += pi[a];
      if (cum >= u[0]) return a;
    }
    return A - 1;
  }
  if (u[0] < opt.eps) {
    return std::min<Index>(static_cast<Index>(u[1] * static_cast<double>(A)), A - 1);
  }
  return std::max_element(Q.begin(), Q.end()) - Q.begin();
}

// Trajectory b of network p (T steps) cleared: states, targets, weights and entropy 0,
// actions -1.
template <class S>
void clear_trajectory(const MopTrajectories<S>& out, Index p, Index b, Index T, Index d) {
  const Index B = out.B;
  for (Index t = 0; t <= T; ++t) {
    S* state = out.states + ((p * (T + 1) + t) * B + b) * d;
    std::fill(state, state + d, S(0));
    out.targets[(p * (T + 1) + t) * B + b] = S(0);
    out.weights[(p * (T + 1) + t) * B + b] = S(0);
    if (t < T) {
      out.actions[(p * T + t) * B + b] = -1;
      out.entropy[(p * T + t) * B + b] = S(0);
    }
  }
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
    detail::clear_trajectory(out, p, b, T, d);
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
      const Index k = detail::choose_action(opt, buf.pi, buf.Q, u);
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

namespace detail {

// The rows of network p's trajectories that carry a target (weight > 0), in (t, b) order,
// and each trajectory's number of them.
struct TargetRows {
  std::vector<Index> t, b;
  std::vector<double> per_traj;
};

template <class S>
TargetRows target_rows(const MopTrajectories<S>& tr, Index p) {
  const Index T = tr.T, B = tr.B;
  TargetRows rows;
  rows.per_traj.assign(static_cast<std::size_t>(B), 0.0);
  for (Index t = 0; t <= T; ++t) {
    for (Index b = 0; b < B; ++b) {
      if (tr.weights[(p * (T + 1) + t) * B + b] > S(0)) {
        rows.t.push_back(t);
        rows.b.push_back(b);
        rows.per_traj[b] += 1.0;
      }
    }
  }
  return rows;
}

}  // namespace detail

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
    const detail::TargetRows rows = detail::target_rows(tr, p);
    const Index N = static_cast<Index>(rows.t.size());
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
        const Index t = rows.t[r], b = rows.b[r];
        const Index at = (p * (T + 1) + t) * B + b;
        std::copy(tr.states + at * d, tr.states + (at + 1) * d, &f.Z(i, 0));
        if (d_in > d) f.Z(i, d + contexts[p * B + b]) = S(1);
        f.y[i] = static_cast<S>(static_cast<double>(tr.targets[at]) / scale);
        f.c[i] = static_cast<S>(static_cast<double>(tr.weights[at]) / rows.per_traj[b]);
      }
      losses[p * fit.updates + k] =
          value_loss_and_grad(theta, d_in, nets.hidden, f.Z, f.y, f.c, f.Hd, f.grad.data());
      nets.step[p] += 1;
      const double t = static_cast<double>(nets.step[p]);
      const AdamStep<double, AdamSquare::left_to_right> adam(
          AdamSettings{fit.lr}, std::pow(kAdamBeta1, t), std::pow(kAdamBeta2, t));
      adam(theta, f.grad.data(), nets.m + p * n_params, nets.v + p * n_params, n_params);
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
