#include <cstdint>

#include "common.hpp"
#include "rate_objects.hpp"
#include "flexrnn/evolution.hpp"
#include "flexrnn/force.hpp"
#include "flexrnn/hebbian.hpp"

namespace flexrnn::py_bind {
namespace {

template <class S>
const S* optional_checked(const std::optional<Arr<S>>& a, const std::vector<py::ssize_t>& shape,
                          const char* name) {
  return a ? checked(*a, shape, name) : nullptr;
}

template <class S>
std::vector<py::ssize_t> shape_of(const Arr<S>& a) {
  return {a.shape(), a.shape() + a.ndim()};
}

// An array the kernel updates in place: exactly the parameters' dtype, C-contiguous (no
// converted copy), checked by inout.
template <class S>
Arr<S> in_place_arr(const py::object& a, const char* name) {
  if (!Arr<S>::check_(a)) {
    throw py::type_error(std::string(name) + ": expected a C-contiguous " +
                         (std::is_same_v<S, float> ? "float32" : "float64") +
                         " array (it is updated in place)");
  }
  return py::reinterpret_borrow<Arr<S>>(a);
}

void require_dense(const RateParamsObject& p, const char* rule) {
  if (p.low_rank) {
    throw py::type_error(std::string("params: ") + rule + " trains a RateRNN's dense W, got " +
                         "LowRankRNNParams");
  }
}

template <class S>
py::object force_call(const RateParamsObject& p, const ForceOptions& opt, const py::object& W_fb_,
                      const py::object& P_, const py::object& u_, const py::object& target_,
                      const py::object& mask_, const py::object& x_, const py::object& z_) {
  const RateRNNParams<S> base = p.dense<S>();
  const Index n = p.n, n_out = p.n_out;
  Arr<S> W_out = in_place_arr<S>(p.W_out, "W_out");
  const Arr<S> W_fb = as_arr<S>(W_fb_), u = as_arr<S>(u_);
  const auto target = as_optional<S>(target_), mask = as_optional<S>(mask_);
  Arr<S> P = in_place_arr<S>(P_, "P"), x = in_place_arr<S>(x_, "x");
  std::optional<Arr<S>> z;
  if (!z_.is_none()) z = in_place_arr<S>(z_, "z");
  const CTensor3<S> uv = view(u, "u");
  const Index T = uv.T, B = uv.B;
  if (uv.N != p.n_in) throw py::value_error("u: expected (T, B, n_in) with n_in the columns of W_in");
  S* w_out = opt.learn ? inout(W_out, {n_out, n}, "W_out") : const_cast<S*>(W_out.data());
  checked(W_fb, {n, n_out}, "W_fb");
  const S* tg = optional_checked(target, {T, B, n_out}, "target");
  const S* mk = optional_checked(mask, {T, B}, "mask");
  S* xs = inout(x, {B, n}, "x");
  S* zs = z ? inout(*z, {B, n_out}, "z") : nullptr;
  // W_out is not written, P neither read nor written, without learning
  S* pp = opt.learn ? inout(P, {n, n}, "P") : const_cast<S*>(P.data());
  if (opt.learn && !tg) throw py::value_error("target: needed when learn is True");
  if (opt.update_every < 1) throw py::value_error("update_every: must be >= 1");
  const Index np = opt.learn ? n : 0;
  ForceNet<S> net{base.W,      base.W_in, base.b, MatMap<S>(w_out, n_out, n), base.b_out,
                  CMatMap<S>(W_fb.data(), n, n_out), MatMap<S>(pp, np, np)};
  Arr<S> y = empty3<S>(T, B, n_out);
  std::int64_t updates;
  InPlace in_place;  // an interrupted call leaves W_out, P, x and z as they were
  in_place.keep(xs, B * n);
  in_place.keep(zs, B * n_out);
  if (opt.learn) {
    in_place.keep(w_out, n_out * n);
    in_place.keep(pp, n * n);
  }
  {
    const LongCall call;
    updates = force_run(net, opt, uv, tg, mk, xs, view(y), zs);
  }
  in_place.commit();
  return py::make_tuple(y, updates);
}

template <class S>
py::object full_force_call(const RateParamsObject& p, const ForceOptions& fopt,
                           const py::object& J_D_, const py::object& w_f_,
                           const py::object& w_h_, const py::object& P_, const py::object& u_,
                           const py::object& f_, const py::object& hint_,
                           const py::object& mask_, const py::object& x_,
                           const py::object& x_D_, const py::object& W_in_D_,
                           bool carry_teacher, std::int64_t rls_from) {
  if (fopt.rate.form != Form::current || fopt.rate.readout != Readout::rate) {
    throw py::value_error("options: full-FORCE needs form current and readout rate");
  }
  const RateRNNParams<S> base = p.dense<S>();
  const Index n = p.n, n_out = p.n_out;
  Arr<S> J = in_place_arr<S>(p.W, "W"), W_out = in_place_arr<S>(p.W_out, "W_out");
  const Arr<S> J_D = as_arr<S>(J_D_), w_f = as_arr<S>(w_f_), w_h = as_arr<S>(w_h_);
  const Arr<S> u = as_arr<S>(u_);
  // the teacher's states: read only, or written back (final states) when carried
  Arr<S> x_D = carry_teacher && fopt.learn ? in_place_arr<S>(x_D_, "x_D") : as_arr<S>(x_D_);
  const auto W_in_D = as_optional<S>(W_in_D_);
  const auto f = as_optional<S>(f_), hint = as_optional<S>(hint_), mask = as_optional<S>(mask_);
  Arr<S> P = in_place_arr<S>(P_, "P"), x = in_place_arr<S>(x_, "x");
  const bool learn = fopt.learn;
  S* j = learn ? inout(J, {n, n}, "W") : const_cast<S*>(J.data());
  const CTensor3<S> uv = view(u, "u");
  const Index T = uv.T, B = uv.B;
  if (uv.N != p.n_in) throw py::value_error("u: expected (T, B, n_in) with n_in the columns of W_in");
  const Index n_hint = w_h.ndim() == 2 ? w_h.shape(1) : 0;
  S* w_out = learn ? inout(W_out, {n_out, n}, "W_out") : const_cast<S*>(W_out.data());
  checked(J_D, {n, n}, "J_D");
  checked(w_f, {n, n_out}, "w_f");
  checked(w_h, {n, n_hint}, "w_h");
  const S* fv = optional_checked(f, {T, B, n_out}, "f");
  const S* hv = optional_checked(hint, {T, B, n_hint}, "hint");
  const S* mk = optional_checked(mask, {T, B}, "mask");
  S* xs = inout(x, {B, n}, "x");
  const S* xd = learn ? checked(x_D, {B, n}, "x_D") : x_D.data();
  S* xd_out = learn && carry_teacher ? inout(x_D, {B, n}, "x_D") : nullptr;
  const S* w_in_d = optional_checked(W_in_D, {n, p.n_in}, "W_in_D");
  if (rls_from < 0) throw py::value_error("rls_from: must be >= 0");
  S* pp = learn ? inout(P, {n, n}, "P") : const_cast<S*>(P.data());
  if (learn && !fv) throw py::value_error("f: needed when learn is True");
  if (learn && n_hint > 0 && !hv) throw py::value_error("hint: needed when w_h has columns");
  if (fopt.update_every < 1) throw py::value_error("update_every: must be >= 1");
  FullForceOptions opt;
  opt.rate = fopt.rate;
  opt.update_every = fopt.update_every;
  opt.step0 = fopt.step0;
  opt.learn = learn;
  opt.carry_teacher = carry_teacher;
  opt.rls_from = rls_from;
  FullForceNet<S> net{MatMap<S>(j, n, n),
                      base.W_in,
                      base.b,
                      MatMap<S>(w_out, n_out, n),
                      base.b_out,
                      CMatMap<S>(J_D.data(), n, n),
                      CMatMap<S>(w_f.data(), n, n_out),
                      CMatMap<S>(w_h.data(), n, n_hint),
                      MatMap<S>(pp, learn ? n : 0, learn ? n : 0),
                      w_in_d,
                      xd_out};
  Arr<S> y = empty3<S>(T, B, n_out);
  std::int64_t updates;
  InPlace in_place;  // an interrupted call leaves J, W_out, P and x as they were
  in_place.keep(xs, B * n);
  if (learn) {
    in_place.keep(j, n * n);
    in_place.keep(w_out, n_out * n);
    in_place.keep(pp, n * n);
  }
  if (xd_out) in_place.keep(xd_out, B * n);
  {
    const LongCall call;
    updates = full_force_run(net, opt, uv, fv, hv, n_hint, mk, xs, xd, view(y));
  }
  in_place.commit();
  return py::make_tuple(y, updates);
}

template <class S>
py::object hebbian_call(const RateParamsObject& p, const HebbianOptions& opt,
                        const py::object& u_, const py::object& target_, const py::object& x0_,
                        const std::optional<Arr<std::int64_t>>& condition, Arr<double>& Rbar) {
  if (opt.rate.form != Form::current) {
    throw py::value_error("options: the Hebbian rule needs form current");
  }
  const RateRNNParams<S> base = p.dense<S>();
  const Index n = p.n, n_out = p.n_out;
  Arr<S> W = in_place_arr<S>(p.W, "W");
  const Arr<S> u = as_arr<S>(u_), target = as_arr<S>(target_), x0 = as_arr<S>(x0_);
  S* w = opt.learn ? inout(W, {n, n}, "W") : const_cast<S*>(W.data());
  const CTensor3<S> uv = view(u, "u");
  const Index T = uv.T, B = uv.B;
  if (uv.N != p.n_in) throw py::value_error("u: expected (T, B, n_in) with n_in the columns of W_in");
  const S* tg = checked(target, {B, n_out}, "target");
  const S* x0p = checked(x0, {B, n}, "x0");
  if (opt.window < 1) throw py::value_error("window: must be >= 1");
  if (opt.clamp_units.size() != opt.clamp_values.size()) {
    throw py::value_error("clamp_values: expected one value per unit of clamp_units");
  }
  for (const std::int64_t unit : opt.clamp_units) {
    if (unit < 0 || unit >= n) throw py::value_error("clamp_units: units must be in [0, n)");
  }
  if (Rbar.ndim() != 1 || Rbar.shape(0) < 1) {
    throw py::value_error("Rbar: expected a 1-d array (n_conditions,)");
  }
  if (!Rbar.writeable()) throw py::value_error("Rbar: array is read-only");
  const std::int64_t* cond = nullptr;
  if (condition) {
    cond = checked(*condition, {B}, "condition", false);
    for (Index i = 0; i < B; ++i) {
      if (cond[i] < 0 || cond[i] >= Rbar.shape(0)) {
        throw py::value_error("condition: indices must be in [0, len(Rbar))");
      }
    }
  }
  HebbianNet<S> net{MatMap<S>(w, n, n), base.W_in, base.b, base.W_out, base.b_out};
  Arr<S> y = empty3<S>(T, B, n_out);
  Arr<double> R(std::vector<py::ssize_t>{B});
  double* rbar = Rbar.mutable_data();
  InPlace in_place;  // an interrupted call leaves W and Rbar as they were
  if (opt.learn) {
    in_place.keep(w, n * n);
    in_place.keep(rbar, Rbar.shape(0));
  }
  {
    const LongCall call;
    hebbian_run(net, opt, uv, tg, x0p, cond, rbar, view(y), R.mutable_data());
  }
  in_place.commit();
  return py::make_tuple(y, R);
}

template <class S>
py::tuple population_call(const Arr<S>& W, const Arr<S>& W_in, const Arr<S>& b,
                          const Arr<S>& W_out, const Arr<S>& b_out, const Arr<S>& x0,
                          const Arr<S>& u, const Arr<S>& target,
                          const std::optional<Arr<S>>& mask, const RateOptions& opt,
                          bool return_y) {
  if (W.ndim() != 3 || W.shape(1) != W.shape(2)) {
    throw py::value_error("W: expected a stack of square matrices (P, n, n)");
  }
  Population<S> pop;
  pop.P = W.shape(0);
  pop.n = W.shape(1);
  const CTensor3<S> uv = view(u, "u");
  pop.n_in = uv.N;
  pop.n_out = W_out.ndim() == 3 ? W_out.shape(1) : 0;
  const Index P = pop.P, n = pop.n, n_out = pop.n_out;
  pop.W = checked(W, {P, n, n}, "W");
  pop.W_in = checked(W_in, {P, n, pop.n_in}, "W_in");
  pop.b = checked(b, {P, n}, "b");
  pop.W_out = checked(W_out, {P, n_out, n}, "W_out");
  pop.b_out = checked(b_out, {P, n_out}, "b_out");
  pop.x0 = checked(x0, {P, n}, "x0");
  const S* tg = checked(target, {uv.T, uv.B, n_out}, "target");
  const S* mk = optional_checked(mask, {uv.T, uv.B, n_out}, "mask");
  Arr<double> loss(std::vector<py::ssize_t>{P});
  Arr<S> y(return_y ? std::vector<py::ssize_t>{P, uv.T, uv.B, n_out}
                    : std::vector<py::ssize_t>{0});
  S* yp = return_y ? y.mutable_data() : nullptr;
  {
    const LongCall call;
    population_loss(pop, opt, uv, tg, mk, loss.mutable_data(), yp);
  }
  return py::make_tuple(loss, return_y ? py::object(y) : py::object(py::none()));
}

template <class S>
void register_dtype(py::module_& m) {
  m.def(
      "rls_steps",
      [](Arr<S>& P, const Arr<S>& H) {
        const CMatMap<S> Hm = mat(H, "H");
        const Index n = Hm.cols();
        S* p = inout(P, {n, n}, "P");
        Arr<S> k(std::vector<py::ssize_t>{Hm.rows(), n}), c(std::vector<py::ssize_t>{Hm.rows()});
        InPlace in_place;
        in_place.keep(p, n * n);
        {
          const LongCall call;
          rls_steps(MatMap<S>(p, n, n), Hm, k.mutable_data(), c.mutable_data());
        }
        in_place.commit();
        return py::make_tuple(k, c);
      },
      py::arg("P").noconvert(), py::arg("H"),
      "RLS steps on consecutive rows h of H (steps, n): k = P h, c = 1 / (1 + h^T k), "
      "P -= c k k^T, P (n, n) symmetric, updated in place. Returns k (steps, n), c (steps,).");

  m.def("population_loss", &population_call<S>, py::arg("W"), py::arg("W_in"), py::arg("b"),
        py::arg("W_out"), py::arg("b_out"), py::arg("x0"), py::arg("u"), py::arg("target"),
        py::arg("mask"), py::arg("options"), py::arg("return_y"),
        "Masked MSE of every member of a population of RateRNNs (arrays stacked along a "
        "leading member axis: W (P, n, n), W_in (P, n, n_in), b (P, n), W_out (P, n_out, n), "
        "b_out (P, n_out), x0 (P, n)) on one batch u (T, B, n_in), target and mask (T, B, "
        "n_out), with the options (RateOptions: alpha, phi, form, readout) of the model. One "
        "member per thread. Returns (loss (P,) float64, y (P, T, B, n_out) or None).");

  m.def(
      "mutate_population",
      [](const std::vector<Arr<S>>& src, const Arr<std::int64_t>& parent,
         const Arr<std::uint8_t>& mutate, double sigma, std::uint64_t seed,
         std::uint32_t generation) {
        if (parent.ndim() != 1) throw py::value_error("parent: expected a 1-d array (P,)");
        const Index P = parent.shape(0);
        checked(mutate, {P}, "mutate", false);
        std::vector<const S*> from;
        std::vector<S*> to;
        std::vector<Index> sizes;
        py::list out;
        Index P_src = -1;
        for (const auto& a : src) {
          if (a.ndim() < 1) throw py::value_error("src: expected arrays with a member axis");
          if (P_src >= 0 && a.shape(0) != P_src) {
            throw py::value_error("src: the arrays differ in their number of members");
          }
          P_src = a.shape(0);
          require_finite(a, "src");
          std::vector<py::ssize_t> shape = shape_of(a);
          shape[0] = P;
          Arr<S> child(shape);
          from.push_back(a.data());
          to.push_back(child.mutable_data());
          sizes.push_back(P_src ? a.size() / P_src : 0);
          out.append(child);
        }
        for (Index i = 0; i < P; ++i) {
          if (parent.data()[i] < 0 || parent.data()[i] >= std::max<Index>(P_src, 0)) {
            throw py::value_error("parent: indices must be in [0, members of src)");
          }
        }
        {
          const LongCall call;
          mutate_population(from, to, sizes, P, parent.data(), mutate.data(), sigma, seed,
                            generation);
        }
        return out;
      },
      py::arg("src"), py::arg("parent"), py::arg("mutate"), py::arg("sigma"), py::arg("seed"),
      py::arg("generation"),
      "Next generation: for every array a of src (P_src, ...) a new array (P, ...) whose "
      "member i is src[a][parent[i]] + sigma * normal(seed, i * len(src) + a, generation, .) "
      "(an exact copy where mutate[i] == 0).");

}

void register_rule_options(py::module_& m) {
  py::class_<ForceOptions>(m, "ForceOptions",
                           "FORCE and full-FORCE: rate (the network's RateOptions; noise is not "
                           "used), update_every (steps between RLS updates), step0 (steps "
                           "done before this call: the phase of update_every), learn.")
      .def(py::init([](const RateOptions& rate, std::int64_t update_every, std::int64_t step0,
                       bool learn) {
             return ForceOptions{rate, update_every, step0, learn};
           }),
           py::arg("rate"), py::arg("update_every") = 1, py::arg("step0") = 0,
           py::arg("learn") = true)
      .def_readwrite("rate", &ForceOptions::rate)
      .def_readwrite("update_every", &ForceOptions::update_every)
      .def_readwrite("step0", &ForceOptions::step0)
      .def_readwrite("learn", &ForceOptions::learn);
  py::class_<HebbianOptions>(m, "HebbianOptions",
                             "Reward-modulated Hebbian learning (Miconi 2017): rate (the "
                             "network's RateOptions, form current), kick_prob, kick_amp, "
                             "trace_decay, eta, clip, reward_decay, window, seed, trial0 "
                             "(trials done before this call), learn.")
      .def(py::init([](const RateOptions& rate, double kick_prob, double kick_amp,
                       double trace_decay, double eta, double clip, double reward_decay,
                       Index window, std::uint64_t seed, std::int64_t trial0, bool learn) {
             return HebbianOptions{rate,         kick_prob, kick_amp, trace_decay, eta, clip,
                                   reward_decay, window,    seed,     trial0,      learn};
           }),
           py::arg("rate"), py::arg("kick_prob"), py::arg("kick_amp"), py::arg("trace_decay"),
           py::arg("eta"), py::arg("clip"), py::arg("reward_decay"), py::arg("window"),
           py::arg("seed"), py::arg("trial0"), py::arg("learn"))
      .def_readwrite("rate", &HebbianOptions::rate)
      .def_readwrite("kick_prob", &HebbianOptions::kick_prob)
      .def_readwrite("kick_amp", &HebbianOptions::kick_amp)
      .def_readwrite("trace_decay", &HebbianOptions::trace_decay)
      .def_readwrite("eta", &HebbianOptions::eta)
      .def_readwrite("clip", &HebbianOptions::clip)
      .def_readwrite("reward_decay", &HebbianOptions::reward_decay)
      .def_readwrite("window", &HebbianOptions::window)
      .def_readwrite("seed", &HebbianOptions::seed)
      .def_readwrite("trial0", &HebbianOptions::trial0)
      .def_readwrite("learn", &HebbianOptions::learn)
      // the learning-rule study's variant (McMahan et al. 2021)
      .def_readwrite("rbar_factor", &HebbianOptions::rbar_factor)
      .def_readwrite("learn_from", &HebbianOptions::learn_from)
      .def_readwrite("clamp_units", &HebbianOptions::clamp_units)
      .def_readwrite("clamp_values", &HebbianOptions::clamp_values);
}

void register_rate_rules(py::module_& m) {
  m.def(
      "force_run",
      [](const RateParamsObject& p, const ForceOptions& opt, const py::object& W_fb,
         const py::object& P, const py::object& u, const py::object& target,
         const py::object& mask, const py::object& x, const py::object& z) {
        require_dense(p, "FORCE");
        return in_dtype(p, [&](auto s) {
          return force_call<decltype(s)>(p, opt, W_fb, P, u, target, mask, x, z);
        });
      },
      py::arg("params"), py::arg("options"), py::arg("W_fb"), py::arg("P"), py::arg("u"),
      py::arg("target"), py::arg("mask"), py::arg("x"), py::arg("z") = py::none(),
      "FORCE on a RateRNN (params: RateRNNParams, whose W_out is trained in place) with "
      "output feedback W_fb (n, n_out) over trials run in order: u (T, B, n_in), target (T, "
      "B, n_out) or None, mask (T, B) or None; P (n, n) and x (B, n: initial states in, final "
      "out) are updated in place; z (B, n_out) or None: the output fed back first (in) and the "
      "last a priori output (out). Returns (y (T, B, n_out), updates).");
  m.def(
      "full_force_run",
      [](const RateParamsObject& p, const ForceOptions& opt, const py::object& J_D,
         const py::object& w_f, const py::object& w_h, const py::object& P, const py::object& u,
         const py::object& f, const py::object& hint, const py::object& mask,
         const py::object& x, const py::object& x_D, const py::object& W_in_D,
         bool carry_teacher, std::int64_t rls_from) {
        require_dense(p, "full-FORCE");
        return in_dtype(p, [&](auto s) {
          return full_force_call<decltype(s)>(p, opt, J_D, w_f, w_h, P, u, f, hint, mask, x,
                                              x_D, W_in_D, carry_teacher, rls_from);
        });
      },
      py::arg("params"), py::arg("options"), py::arg("J_D"), py::arg("w_f"), py::arg("w_h"),
      py::arg("P"), py::arg("u"), py::arg("f"), py::arg("hint"), py::arg("mask"), py::arg("x"),
      py::arg("x_D"), py::arg("W_in_D") = py::none(), py::arg("carry_teacher") = false,
      py::arg("rls_from") = 0,
      "full-FORCE on a RateRNN (params: its W (= J) and W_out trained in place) over trials run "
      "in order: teacher J_D (n, n) with target input w_f (n, n_out) and hint input w_h (n, "
      "n_hint); u (T, B, n_in), f (T, B, n_out), hint (T, B, n_hint), mask (T, B) or None; P "
      "and x (B, n) updated in place, x_D (B, n) the teacher's initial states. The learning-rule "
      "study's variant: W_in_D (n, n_in) the teacher's own input weights; carry_teacher: the "
      "teacher is never reset (trial b starts from trial b - 1's final teacher state) and x_D "
      "receives the final teacher states; rls_from > 0: updates only after steps t = 0 and t >= "
      "rls_from. Returns (y (T, B, n_out), updates).");
  m.def(
      "hebbian_run",
      [](const RateParamsObject& p, const HebbianOptions& opt, const py::object& u,
         const py::object& target, const py::object& x0,
         const std::optional<Arr<std::int64_t>>& condition, Arr<double>& Rbar) {
        require_dense(p, "the Hebbian rule");
        return in_dtype(p, [&](auto s) {
          return hebbian_call<decltype(s)>(p, opt, u, target, x0, condition, Rbar);
        });
      },
      py::arg("params"), py::arg("options"), py::arg("u"), py::arg("target"), py::arg("x0"),
      py::arg("condition"), py::arg("Rbar").noconvert(),
      "Reward-modulated Hebbian learning (Miconi 2017) on a RateRNN (params: its W trained in "
      "place when options.learn) over trials run in order: u (T, B, n_in), target (B, n_out), "
      "x0 (B, n), condition (B,) int64 or None (all 0); the running errors Rbar "
      "(n_conditions,) float64 updated in place after every trial. Returns (y (T, B, n_out), R "
      "(B,) the trials' errors).");
}
}  // namespace

void register_learning(py::module_& m) {
  register_dtype<double>(m);
  register_dtype<float>(m);
  register_rule_options(m);
  register_rate_rules(m);
  m.def(
      "philox_uniform",
      [](std::uint64_t seed, std::uint64_t stream, std::uint32_t step, Index n) {
        if (n < 0) throw py::value_error("n: must be >= 0");
        Arr<double> out(std::vector<py::ssize_t>{n});
        philox_uniform(seed, stream, step, out.mutable_data(), n);
        return out;
      },
      py::arg("seed"), py::arg("stream"), py::arg("step"), py::arg("n"),
      "n uniforms in (0, 1) keyed by (seed, stream, step) (docs/internals.md).");
}

}  // namespace flexrnn::py_bind
