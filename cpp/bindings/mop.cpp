// NeuroMOP: rollouts + value fitting (one epoch per call), evaluation at given states,
// terminal programs, the value network's loss and gradient, the cart-pole step. The Python
// drivers (flexrnn.mop) validate and convert everything; these wrappers check shapes again
// so that no call can read outside a buffer. No math here.
#include <cstdint>

#include "common.hpp"
#include "flexrnn/mop.hpp"
#include "rate_objects.hpp"

namespace flexrnn::py_bind {
namespace {

using I32 = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

// A program's arrays, kept alive for the duration of a call, and the view of them.
struct ProgramArrays {
  I32 code, start, kind;
  I64 index;
  F64 params, weights;
  Program prog;
};

// Every atom's kind known and its coordinates inside the state (dimension d), a linear atom's
// weights row and a custom atom's predicate present. Returns whether any atom is custom.
bool check_atoms(const ProgramArrays& a, Index d, Index n_custom, const std::string& what) {
  const Index n_atoms = a.kind.shape(0), n_w = a.weights.shape(0);
  bool has_custom = false;
  for (Index at = 0; at < n_atoms; ++at) {
    const std::int32_t kind = a.kind.data()[at];
    const std::int64_t* ij = a.index.data() + 2 * at;
    if (kind < 0 || kind > static_cast<std::int32_t>(AtomKind::custom)) {
      throw py::value_error(what + ": unknown atom kind " + std::to_string(kind));
    }
    const auto k = static_cast<AtomKind>(kind);
    has_custom = has_custom || k == AtomKind::custom;
    const bool uses_ij = k == AtomKind::abs || k == AtomKind::ellipse || k == AtomKind::l1 ||
                         k == AtomKind::heart;
    for (int e = 0; e < 2 && uses_ij; ++e) {
      if (ij[e] < 0 || ij[e] >= d) {
        throw py::value_error(what + ": atom coordinate " + std::to_string(ij[e]) +
                              " outside the state (dimension " + std::to_string(d) + ")");
      }
    }
    if (k == AtomKind::linear && (ij[0] < 0 || ij[0] >= n_w)) {
      throw py::value_error(what + ": linear atom without its weights row");
    }
    if (k == AtomKind::custom && (ij[0] < 0 || ij[0] >= n_custom)) {
      throw py::value_error(what + ": custom atom " + std::to_string(ij[0]) +
                            " has no predicate (" + std::to_string(n_custom) + " given)");
    }
  }
  return has_custom;
}

// Every program of code (its slice start[p]..start[p+1]) leaves exactly one value on a stack
// no deeper than kProgramStack, and names only atoms that exist.
void check_stack(const std::int32_t* code, const std::int32_t* start, Index n_programs,
                 Index n_atoms, const std::string& what) {
  for (Index p = 0; p < n_programs; ++p) {
    int depth = 0;
    for (Index i = start[p]; i < start[p + 1]; ++i) {
      const std::int32_t op = code[2 * i];
      if (op == static_cast<std::int32_t>(ProgramOp::atom)) {
        if (code[2 * i + 1] < 0 || code[2 * i + 1] >= n_atoms) {
          throw py::value_error(what + ": atom index out of range");
        }
        ++depth;
      } else if (op == static_cast<std::int32_t>(ProgramOp::op_not)) {
        if (depth < 1) throw py::value_error(what + ": NOT on an empty stack");
      } else if (op == static_cast<std::int32_t>(ProgramOp::op_and) ||
                 op == static_cast<std::int32_t>(ProgramOp::op_or)) {
        if (depth < 2) throw py::value_error(what + ": AND/OR needs two operands");
        --depth;
      } else {
        throw py::value_error(what + ": unknown operation " + std::to_string(op));
      }
      if (depth > kProgramStack) throw py::value_error(what + ": expression too deep");
    }
    if (depth != 1) throw py::value_error(what + ": a program must leave one value");
  }
}

// n_custom: the number of custom predicates the call was given.
ProgramArrays program_from(const py::object& obj, Index d, Index n_custom, const char* name) {
  ProgramArrays a;
  if (obj.is_none()) return a;
  const auto dict = obj.cast<py::dict>();
  a.code = dict["code"].cast<I32>();
  a.start = dict["start"].cast<I32>();
  a.kind = dict["kind"].cast<I32>();
  a.index = dict["index"].cast<I64>();
  a.params = dict["params"].cast<F64>();
  a.weights = dict["weights"].cast<F64>();
  const std::string what(name);
  if (a.code.ndim() != 2 || a.code.shape(1) != 2) {
    throw py::value_error(what + ": code must be (L, 2)");
  }
  if (a.start.ndim() != 1 || a.kind.ndim() != 1) {
    throw py::value_error(what + ": start and kind must be 1-d");
  }
  if (a.weights.ndim() != 2) throw py::value_error(what + ": weights must be 2-d");
  const Index n_atoms = a.kind.shape(0), n_programs = a.start.shape(0) - 1;
  const Index n_w = a.weights.shape(0), L = a.code.shape(0);
  if (n_programs < 1) throw py::value_error(what + ": no program");
  if (a.index.ndim() != 2 || a.index.shape(0) != n_atoms || a.index.shape(1) != 2 ||
      a.params.ndim() != 2 || a.params.shape(0) != n_atoms || a.params.shape(1) != 4) {
    throw py::value_error(what + ": atom arrays of mismatched shapes");
  }
  if (n_w > 0 && a.weights.shape(1) != d) {
    throw py::value_error(what + ": weights must be (n_weights, " + std::to_string(d) +
                          "): a Readout's w has " + std::to_string(a.weights.shape(1)) +
                          " values, the state has " + std::to_string(d));
  }
  const std::int32_t* start = a.start.data();
  const std::int32_t* code = a.code.data();
  // every program's slice of code lies inside code, before any of code is read
  if (start[0] != 0 || start[n_programs] != L) {
    throw py::value_error(what + ": start must run from 0 to len(code)");
  }
  for (Index p = 0; p < n_programs; ++p) {
    if (start[p + 1] < start[p]) throw py::value_error(what + ": start must not decrease");
  }
  const bool has_custom = check_atoms(a, d, n_custom, what);
  check_stack(code, start, n_programs, n_atoms, what);
  a.prog.code = code;
  a.prog.start = start;
  a.prog.kind = a.kind.data();
  a.prog.index = a.index.data();
  a.prog.params = a.params.data();
  a.prog.weights = a.weights.data();
  a.prog.n_programs = n_programs;
  a.prog.n_atoms = n_atoms;
  a.prog.has_custom = has_custom;
  return a;
}

// The Python predicates of custom atoms: callables (states (m, d)) -> (m,) bool.
template <class S>
CustomAtoms<S> custom_from(const py::list& predicates) {
  return [predicates](Index k, const S* X, Index m, Index d, std::uint8_t* out) {
    py::gil_scoped_acquire acquire;
    if (k < 0 || k >= static_cast<Index>(predicates.size())) {
      throw py::value_error("terminal: custom atom " + std::to_string(k) + " has no callable");
    }
    Arr<S> states(std::vector<py::ssize_t>{m, d});
    std::copy(X, X + m * d, states.mutable_data());
    const py::object result = predicates[static_cast<std::size_t>(k)](states);
    const auto flags = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(result);
    if (!flags || flags.ndim() != 1 || flags.shape(0) != m) {
      throw py::value_error("terminal: a custom predicate must return a (m,) bool array for "
                            "states (m, d)");
    }
    for (Index r = 0; r < m; ++r) out[r] = flags.data()[r] ? 1 : 0;
  };
}

// The NeuroMOP RNN environment as one bound object (MopRnnEnv): the networks' own bound
// parameters (RateRNNParams; their W_in is the controller's K), their common options
// (RateOptions: alpha, phi; form rate) and the environment's rho and noise. Holds the
// parameter objects (references to the models' arrays, no copies).
struct MopRnnEnvObject {
  std::vector<RateParamsObject> nets;
  RateOptions rate;
  double rho = 2.0, noise_std = 0.0;
  Index noise_samples = 1;
  Index n = 0, M = 0;
  bool f32 = false;

  static MopRnnEnvObject make(const std::vector<RateParamsObject>& nets, const RateOptions& rate,
                              double rho, double noise_std, Index noise_samples) {
    if (nets.empty()) throw py::value_error("nets: need at least one network");
    const RateParamsObject& first = nets.front();
    for (const RateParamsObject& p : nets) {
      if (p.low_rank) {
        throw py::type_error("nets: NeuroMOP drives RateRNNParams (a dense W), got "
                             "LowRankRNNParams");
      }
      if (p.f32 != first.f32 || p.n != first.n || p.n_in != first.n_in) {
        throw py::value_error("nets: the networks of one environment need the same n, n_in "
                              "(= n_bits) and dtype");
      }
    }
    if (rate.form != Form::rate) {
      throw py::value_error("options: NeuroMOP drives a network of form rate");
    }
    if (rate.phi != Phi::tanh && rate.phi != Phi::relu) {
      throw py::value_error("options: NeuroMOP's phi must be tanh or relu");
    }
    if (first.n_in < 1 || first.n_in > 16) {
      throw py::value_error("nets: n_in (= n_bits) must be in 1..16, got " +
                            std::to_string(first.n_in));
    }
    if (!(noise_std >= 0.0)) throw py::value_error("noise_std: must be >= 0");
    if (noise_samples < 1) throw py::value_error("noise_samples: must be >= 1");
    return {nets, rate, rho, noise_std, noise_samples, first.n, first.n_in, first.f32};
  }

  // The kernel's view, the networks' arrays checked (shapes and values) for this call.
  template <class S>
  MopRnnEnv<S> view() const {
    MopRnnEnv<S> e;
    for (const RateParamsObject& p : nets) e.nets.push_back(p.dense<S>());
    e.P = static_cast<Index>(nets.size());
    e.n = n;
    e.M = M;
    e.rho = rho;
    e.alpha = rate.alpha;
    e.noise_std = noise_std;
    e.noise_samples = noise_samples;
    e.phi = rate.phi;
    return e;
  }
};

// The environment of a call as the kernels see it: the bound MopRnnEnv's networks or the
// bound cart-pole (MopCartPoleEnv).
template <class S>
struct EnvView {
  bool rnn_env = false;
  MopRnnEnv<S> rnn;
  MopCartPoleEnv cartpole;
  Index dim() const { return rnn_env ? rnn.dim() : cartpole.dim(); }
  Index n_bits() const { return rnn_env ? rnn.n_bits() : cartpole.n_bits(); }
  Index P() const { return rnn_env ? rnn.P : cartpole.P; }
};

template <class S>
EnvView<S> env_from(const py::object& env) {
  EnvView<S> e;
  if (py::isinstance<MopRnnEnvObject>(env)) {
    const auto& o = env.cast<const MopRnnEnvObject&>();
    if (o.f32 != std::is_same_v<S, float>) {
      throw py::type_error(std::string("env: its networks are ") +
                           (o.f32 ? "float32" : "float64") + " but theta is " +
                           (std::is_same_v<S, float> ? "float32" : "float64"));
    }
    e.rnn_env = true;
    e.rnn = o.view<S>();
  } else if (py::isinstance<MopCartPoleEnv>(env)) {
    e.cartpole = env.cast<MopCartPoleEnv>();
  } else {
    throw py::type_error("env: expected a MopRnnEnv or MopCartPoleEnv, got " +
                         py::str(py::type::of(env).attr("__name__")).cast<std::string>());
  }
  return e;
}

// Calls f(env) with the kernel's environment type.
template <class S, class F>
void with_env(const EnvView<S>& e, F&& f) {
  if (e.rnn_env) {
    f(e.rnn);
  } else {
    f(e.cartpole);
  }
}

// Every context of a call in 0..n_contexts-1.
void check_contexts(const Arr<std::int64_t>& contexts, Index n_contexts) {
  for (Index i = 0; i < contexts.size(); ++i) {
    if (contexts.data()[i] < 0 || contexts.data()[i] >= n_contexts) {
      throw py::value_error("contexts: must lie in 0..n_contexts-1");
    }
  }
}

// The terminal and reward programs of a call and their custom predicates, checked for states of
// dimension d, one terminal program per context.
template <class S>
struct CallPrograms {
  ProgramArrays term, rew;
  CustomAtoms<S> predicates;
  bool any_custom = false;
  const CustomAtoms<S>* custom() const { return any_custom ? &predicates : nullptr; }
};

template <class S>
CallPrograms<S> programs_from(const py::object& terminal, const py::object& reward,
                              const py::list& custom, Index d, Index n_contexts) {
  CallPrograms<S> c;
  c.term = program_from(terminal, d, Index(custom.size()), "terminal");
  c.rew = program_from(reward, d, Index(custom.size()), "reward");
  if (c.term.prog.n_programs != n_contexts) {
    throw py::value_error("terminal: one program per context expected");
  }
  c.predicates = custom_from<S>(custom);
  c.any_custom = c.term.prog.has_custom || c.rew.prog.has_custom;
  return c;
}

// An epoch's outputs for P networks, B trajectories of at most T steps, states of dimension d.
template <class S>
struct EpochOutputs {
  Index T, B;
  Arr<S> states, entropy, targets, weights;
  Arr<std::int64_t> actions, lifetime;
  Arr<bool> terminated;

  EpochOutputs(Index P, Index T_, Index B_, Index d)
      : T(T_), B(B_), states(std::vector<py::ssize_t>{P, T + 1, B, d}),
        entropy(std::vector<py::ssize_t>{P, T, B}), targets(std::vector<py::ssize_t>{P, T + 1, B}),
        weights(std::vector<py::ssize_t>{P, T + 1, B}), actions(std::vector<py::ssize_t>{P, T, B}),
        lifetime(std::vector<py::ssize_t>{P, B}), terminated(std::vector<py::ssize_t>{P, B}) {}

  MopTrajectories<S> view() {
    return {states.mutable_data(),  actions.mutable_data(),
            entropy.mutable_data(), targets.mutable_data(),
            weights.mutable_data(), lifetime.mutable_data(),
            reinterpret_cast<std::uint8_t*>(terminated.mutable_data()),
            T,                      B};
  }

  py::dict as_dict(const Arr<double>& losses) const {
    py::dict out;
    out["states"] = states;
    out["actions"] = actions;
    out["entropy"] = entropy;
    out["targets"] = targets;
    out["weights"] = weights;
    out["lifetime"] = lifetime;
    out["terminated"] = terminated;
    out["losses"] = losses;
    return out;
  }
};

// The fit of an epoch: its options (MopFitOptions: lr, updates, batch_size; the seeds and
// streams of the call) and the P value networks theta with Adam's moments and step counts, all
// updated in place.
template <class S>
struct ValueFit {
  MopFitOptions options;
  ValueNets<S> nets;
};

template <class S>
ValueFit<S> fit_from(const MopFitOptions& fit, S* theta, std::optional<Arr<S>>& adam_m,
                     std::optional<Arr<S>>& adam_v, std::optional<Arr<std::int64_t>>& adam_step,
                     const Arr<std::uint64_t>& seeds, std::uint64_t stream0,
                     const MopAgentOptions& opt, Index P, Index d, Index n_params) {
  ValueFit<S> f;
  f.options = fit;
  f.options.seeds = seeds.data();
  f.options.stream0 = stream0;
  if (!adam_m || !adam_v || !adam_step) {
    throw py::value_error("adam_m, adam_v, adam_step: needed when fitting");
  }
  f.nets.theta = theta;
  f.nets.m = inout(*adam_m, {P, n_params}, "adam_m");
  f.nets.v = inout(*adam_v, {P, n_params}, "adam_v");
  checked(*adam_step, {P}, "adam_step", false);
  if (!adam_step->writeable()) throw py::value_error("adam_step: array is read-only");
  f.nets.step = adam_step->mutable_data();
  f.nets.P = P;
  f.nets.d = d;
  f.nets.n_contexts = opt.n_contexts;
  f.nets.hidden = opt.hidden;
  return f;
}

template <class S>
py::dict mop_epoch_call(const py::object& env, const MopAgentOptions& opt, const py::object& terminal,
                        const py::object& reward, const py::list& custom, Arr<S>& theta,
                        const Arr<S>& x0, const Arr<std::int64_t>& contexts, Index horizon,
                        const Arr<std::uint64_t>& seeds, std::uint64_t stream0,
                        const std::optional<MopFitOptions>& fit, std::optional<Arr<S>>& adam_m,
                        std::optional<Arr<S>>& adam_v,
                        std::optional<Arr<std::int64_t>>& adam_step) {
  const EnvView<S> e = env_from<S>(env);
  const Index P = e.P(), d = e.dim();
  if (x0.ndim() != 3) throw py::value_error("x0: expected (P, B, d)");
  const Index B = x0.shape(1);
  checked(x0, {P, B, d}, "x0");
  checked(contexts, {P, B}, "contexts", false);
  checked(seeds, {P}, "seeds", false);
  check_contexts(contexts, opt.n_contexts);
  const Index n_params = value_param_count(value_input_dim(d, opt.n_contexts), opt.hidden);
  if (horizon < 0) throw py::value_error("horizon: must be >= 0");
  const CallPrograms<S> programs = programs_from<S>(terminal, reward, custom, d, opt.n_contexts);
  EpochOutputs<S> out(P, horizon, B, d);
  const MopTrajectories<S> tr = out.view();
  MopRunOptions run;
  run.horizon = horizon;
  run.seeds = seeds.data();
  run.stream0 = stream0;

  const bool fitting = fit.has_value();
  S* th = fitting ? inout(theta, {P, n_params}, "theta")
                  : const_cast<S*>(checked(theta, {P, n_params}, "theta"));
  ValueFit<S> vf;
  if (fitting) {
    vf = fit_from<S>(*fit, th, adam_m, adam_v, adam_step, seeds, stream0, opt, P,
                     d, n_params);
  }
  Arr<double> losses(std::vector<py::ssize_t>{P, fitting ? vf.options.updates : 0});
  InPlace in_place;  // an interrupted epoch leaves the value networks and Adam as they were
  if (fitting) {
    in_place.keep(vf.nets.theta, P * n_params);
    in_place.keep(vf.nets.m, P * n_params);
    in_place.keep(vf.nets.v, P * n_params);
    in_place.keep(vf.nets.step, P);
  }
  {
    const LongCall call;
    with_env(e, [&](const auto& kernel_env) {
      mop_rollout<S>(kernel_env, programs.term.prog, programs.rew.prog, opt, run, th, x0.data(),
                     contexts.data(), programs.custom(), tr);
    });
    if (fitting) {
      mop_fit(vf.nets, tr, contexts.data(), opt.scale, vf.options, losses.mutable_data());
    }
  }
  in_place.commit();
  return out.as_dict(losses);
}

template <class S>
py::tuple mop_evaluate_call(const py::object& env, const MopAgentOptions& opt,
                            const py::object& terminal, const py::object& reward,
                            const py::list& custom, const Arr<S>& theta, Index p, const Arr<S>& X,
                            const Arr<std::int64_t>& contexts) {
  const EnvView<S> e = env_from<S>(env);
  const Index d = e.dim(), A = Index{1} << e.n_bits();
  if (p < 0 || p >= e.P()) throw py::value_error("p: no such network");
  if (X.ndim() != 2) throw py::value_error("X: expected (m, d)");
  const Index rows = X.shape(0);
  checked(X, {rows, d}, "X");
  checked(contexts, {rows}, "contexts", false);
  check_contexts(contexts, opt.n_contexts);
  const Index n_params = value_param_count(value_input_dim(d, opt.n_contexts), opt.hidden);
  checked(theta, {n_params}, "theta");
  const CallPrograms<S> programs = programs_from<S>(terminal, reward, custom, d, opt.n_contexts);
  Arr<double> Q(std::vector<py::ssize_t>{rows, A}), policy(std::vector<py::ssize_t>{rows, A});
  Arr<double> target(std::vector<py::ssize_t>{rows}), entropy(std::vector<py::ssize_t>{rows});
  {
    const LongCall call;
    with_env(e, [&](const auto& kernel_env) {
      mop_evaluate<S>(kernel_env, p, programs.term.prog, programs.rew.prog, opt, theta.data(),
                      X.data(), rows, contexts.data(), programs.custom(), Q.mutable_data(),
                      policy.mutable_data(), target.mutable_data(), entropy.mutable_data());
    });
  }
  return py::make_tuple(Q, policy, target, entropy);
}

template <class S>
void register_dtype(py::module_& m) {
  m.def("mop_epoch", &mop_epoch_call<S>, py::arg("env"), py::arg("agent"), py::arg("terminal"),
        py::arg("reward"), py::arg("custom"), py::arg("theta").noconvert(), py::arg("x0"),
        py::arg("contexts"), py::arg("horizon"), py::arg("seeds"), py::arg("stream0"),
        py::arg("fit"), py::arg("adam_m").noconvert() = py::none(),
        py::arg("adam_v").noconvert() = py::none(),
        py::arg("adam_step").noconvert() = py::none(),
        "One NeuroMOP epoch for P networks (env: MopRnnEnv or MopCartPoleEnv; network p draws "
        "from seeds[p]; agent: MopAgentOptions): B trajectories each from x0 (P, B, d) in "
        "contexts (P, B), then (fit: MopFitOptions or None) Adam steps on the value networks theta (P, "
        "n_params), adam_m/adam_v (P, n_params), adam_step (P,) in place. Returns dict(states "
        "(P, T+1, B, d), actions (P, T, B), entropy (P, T, B), targets and weights (P, T+1, B), "
        "lifetime (P, B), terminated (P, B), losses (P, updates)).");

  m.def("mop_evaluate", &mop_evaluate_call<S>, py::arg("env"), py::arg("agent"),
        py::arg("terminal"), py::arg("reward"), py::arg("custom"), py::arg("theta").noconvert(),
        py::arg("p"), py::arg("X"), py::arg("contexts"),
        "The step quantities of network p's agent (env: MopRnnEnv or MopCartPoleEnv; agent: "
        "MopAgentOptions) at states "
        "X (m, d) (noise-free successors): Returns (Q (m, A), policy (m, A), target (m,), "
        "entropy (m,)) in float64.");

  m.def(
      "mop_terminal",
      [](const py::object& program, const Arr<S>& X, Index context, const py::list& custom) {
        if (X.ndim() != 2) throw py::value_error("X: expected (m, d)");
        const Index rows = X.shape(0), d = X.shape(1);
        checked(X, {rows, d}, "X");
        const ProgramArrays prog = program_from(program, d, Index(custom.size()), "program");
        if (context < 0 || context >= prog.prog.n_programs) {
          throw py::value_error("context: no such program");
        }
        const CustomAtoms<S> predicates = custom_from<S>(custom);
        Arr<bool> out(std::vector<py::ssize_t>{rows});
        std::vector<std::uint8_t> buffer;
        evaluate_set(prog.prog, context, X.data(), rows, d, &predicates, buffer,
                     reinterpret_cast<std::uint8_t*>(out.mutable_data()));
        return out;
      },
      py::arg("program"), py::arg("X").noconvert(), py::arg("context"), py::arg("custom"),
      "Membership of the states X (m, d) in program `context` of a compiled set (terminal "
      "set or reward region). Returns (m,) bool.");

  m.def(
      "mop_value_loss_and_grad",
      [](const Arr<S>& theta, const Arr<S>& Z, const Arr<S>& y, const Arr<S>& c, Index hidden) {
        if (Z.ndim() != 2) throw py::value_error("Z: expected (m, d_in)");
        const Index rows = Z.shape(0), d_in = Z.shape(1);
        if (rows < 1 || hidden < 1) throw py::value_error("Z, hidden: need rows and units");
        checked(theta, {value_param_count(d_in, hidden)}, "theta");
        checked(y, {rows}, "y");
        checked(c, {rows}, "c");
        RowMat<S> Zm = CMatMap<S>(Z.data(), rows, d_in), Hd(rows, hidden);
        const Eigen::Matrix<S, Eigen::Dynamic, 1> yv =
            Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(y.data(), rows);
        const Eigen::Matrix<S, Eigen::Dynamic, 1> cv =
            Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(c.data(), rows);
        Arr<S> grad(std::vector<py::ssize_t>{theta.size()});
        const double loss =
            value_loss_and_grad(theta.data(), d_in, hidden, Zm, yv, cv, Hd, grad.mutable_data());
        return py::make_tuple(loss, grad);
      },
      py::arg("theta").noconvert(), py::arg("Z"), py::arg("y"), py::arg("c"), py::arg("hidden"),
      "Weighted squared error sum c (v - y)^2 / sum c of the value network theta "
      "(flat: W1 (H, d_in), b1, w2, b2) on inputs Z (m, d_in), and its gradient.");

  m.def(
      "mop_value",
      [](const Arr<S>& theta, const Arr<S>& Z, Index hidden) {
        if (Z.ndim() != 2) throw py::value_error("Z: expected (m, d_in)");
        const Index rows = Z.shape(0), d_in = Z.shape(1);
        if (hidden < 1) throw py::value_error("hidden: must be >= 1");
        checked(theta, {value_param_count(d_in, hidden)}, "theta");
        checked(Z, {rows, d_in}, "Z");
        Arr<S> v(std::vector<py::ssize_t>{rows});
        value_forward(theta.data(), d_in, hidden, Z.data(), rows, v.mutable_data());
        return v;
      },
      py::arg("theta").noconvert(), py::arg("Z"), py::arg("hidden"),
      "Outputs (before scale) of the value network theta on inputs Z (m, d_in) -> (m,).");

  m.def(
      "cartpole_step",
      [](const Arr<S>& state, const Arr<S>& force) {
        if (state.ndim() != 2 || state.shape(1) != 4) {
          throw py::value_error("state: expected (m, 4)");
        }
        const Index rows = state.shape(0);
        checked(state, {rows, 4}, "state");
        checked(force, {rows}, "force");
        Arr<S> out(std::vector<py::ssize_t>{rows, 4});
        cartpole_steps(state.data(), force.data(), rows, out.mutable_data());
        return out;
      },
      py::arg("state").noconvert(), py::arg("force"),
      "One cart-pole step (docs/neuromop.md) of states (m, 4) under forces (m,).");
}

}  // namespace

void register_mop(py::module_& m) {
  py::enum_<ProgramOp>(m, "ProgramOp", "Operations of a terminal program (docs/internals.md).")
      .value("atom", ProgramOp::atom)
      .value("op_not", ProgramOp::op_not)
      .value("op_and", ProgramOp::op_and)
      .value("op_or", ProgramOp::op_or);
  py::enum_<AtomKind>(m, "AtomKind", "Atoms of a terminal program (docs/internals.md).")
      .value("energy", AtomKind::energy)
      .value("abs", AtomKind::abs)
      .value("linear", AtomKind::linear)
      .value("ellipse", AtomKind::ellipse)
      .value("l1", AtomKind::l1)
      .value("heart", AtomKind::heart)
      .value("custom", AtomKind::custom);
  py::enum_<MopAgentKind>(m, "MopAgentKind", "The agent: MOP (occupancy) or R (reward).")
      .value("mop", MopAgentKind::mop)
      .value("reward", MopAgentKind::reward);
  py::class_<MopAgentOptions>(m, "MopAgentOptions",
                              "A NeuroMOP agent's options (docs/neuromop.md): agent kind, "
                              "gamma, beta (state entropy), mu (reward region), eps (R agent's "
                              "exploration), scale (V = scale * output), the value network's "
                              "hidden units and the number of contexts.")
      .def(py::init([](MopAgentKind agent, double gamma, double beta, double mu, double eps,
                       double scale, Index hidden, Index n_contexts) {
             if (hidden < 1) throw py::value_error("hidden: must be >= 1");
             if (n_contexts < 1) throw py::value_error("n_contexts: must be >= 1");
             return MopAgentOptions{agent, gamma, beta, mu, eps, scale, hidden, n_contexts};
           }),
           py::arg("agent"), py::arg("gamma"), py::arg("beta"), py::arg("mu"), py::arg("eps"),
           py::arg("scale"), py::arg("hidden"), py::arg("n_contexts"))
      .def_readonly("agent", &MopAgentOptions::agent)
      .def_readonly("gamma", &MopAgentOptions::gamma)
      .def_readonly("beta", &MopAgentOptions::beta)
      .def_readonly("mu", &MopAgentOptions::mu)
      .def_readonly("eps", &MopAgentOptions::eps)
      .def_readonly("scale", &MopAgentOptions::scale)
      .def_readonly("hidden", &MopAgentOptions::hidden)
      .def_readonly("n_contexts", &MopAgentOptions::n_contexts);
  py::class_<MopFitOptions>(m, "MopFitOptions",
                            "The value fit of a NeuroMOP epoch: Adam's learning rate lr, "
                            "updates (Adam steps) and batch_size (rows per step).")
      .def(py::init([](double lr, Index updates, Index batch_size) {
             if (updates < 0) throw py::value_error("updates: must be >= 0");
             if (batch_size < 1) throw py::value_error("batch_size: must be >= 1");
             MopFitOptions f;
             f.lr = lr;
             f.updates = updates;
             f.batch_size = batch_size;
             return f;
           }),
           py::arg("lr"), py::arg("updates"), py::arg("batch_size"))
      .def_readonly("lr", &MopFitOptions::lr)
      .def_readonly("updates", &MopFitOptions::updates)
      .def_readonly("batch_size", &MopFitOptions::batch_size);
  py::class_<MopRnnEnvObject>(
      m, "MopRnnEnv",
      "The NeuroMOP RNN environment of a kernel call (docs/neuromop.md): P networks of the "
      "rate form, each its own RateRNNParams (W (n, n), b (n,), W_in = K (n, n_bits)), their "
      "common RateOptions (alpha, phi tanh or relu, form rate), the action drive rho, and the "
      "state noise noise_std with noise_samples draws per step. Holds the parameter objects.")
      .def(py::init(&MopRnnEnvObject::make), py::arg("nets"), py::arg("options"),
           py::arg("rho"), py::arg("noise_std") = 0.0, py::arg("noise_samples") = 1)
      .def_property_readonly("P", [](const MopRnnEnvObject& e) { return e.nets.size(); })
      .def_readonly("n", &MopRnnEnvObject::n)
      .def_readonly("n_bits", &MopRnnEnvObject::M)
      .def_readonly("options", &MopRnnEnvObject::rate)
      .def_readonly("rho", &MopRnnEnvObject::rho)
      .def_readonly("noise_std", &MopRnnEnvObject::noise_std)
      .def_readonly("noise_samples", &MopRnnEnvObject::noise_samples);
  py::class_<MopCartPoleEnv>(m, "MopCartPoleEnv",
                             "The NeuroMOP cart-pole environment of a kernel call "
                             "(docs/neuromop.md), for P agents.")
      .def(py::init([](Index P) {
             if (P < 1) throw py::value_error("P: must be >= 1");
             MopCartPoleEnv e;
             e.P = P;
             return e;
           }),
           py::arg("P"))
      .def_readonly("P", &MopCartPoleEnv::P);
  m.def(
      "mop_check_program",
      [](const py::object& program, Index d, Index n_custom, const std::string& name) {
        if (program.is_none()) throw py::value_error(name + ": no program");
        program_from(program, d, n_custom, name.c_str());
      },
      py::arg("program"), py::arg("d"), py::arg("n_custom"), py::arg("name"),
      "Validate a compiled terminal program (the dict of compile_sets) for states of dimension "
      "d with n_custom custom predicates, as every MOP kernel does before reading it: a "
      "ValueError naming the program (name) and the problem.");
  register_dtype<float>(m);
  register_dtype<double>(m);
}

}  // namespace flexrnn::py_bind
