#include <cstdint>

#include "common.hpp"
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

RateOptions rate_options(double alpha, const std::string& phi, const std::string& form,
                         const std::string& readout) {
  RateOptions opt;
  opt.alpha = alpha;
  opt.phi = phi_from_name(phi);
  opt.form = form_from_name(form);
  opt.readout = readout_from_name(readout);
  return opt;
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

  m.def(
      "force_run",
      [](const Arr<S>& W, const Arr<S>& W_in, const Arr<S>& b, Arr<S>& W_out, const Arr<S>& b_out,
         const Arr<S>& W_fb, Arr<S>& P, const Arr<S>& u, const std::optional<Arr<S>>& target,
         const std::optional<Arr<S>>& mask, Arr<S>& x, double alpha, const std::string& phi,
         const std::string& form, const std::string& readout, std::int64_t update_every,
         std::int64_t step0, bool learn, std::optional<Arr<S>>& z) {
        const CMatMap<S> Wm = mat(W, "W");
        const Index n = Wm.rows();
        if (Wm.cols() != n) throw py::value_error("W: expected a square (n, n) matrix");
        const CTensor3<S> uv = view(u, "u");
        const Index T = uv.T, B = uv.B, n_in = uv.N, n_out = W_out.ndim() ? W_out.shape(0) : 0;
        checked(W_in, {n, n_in}, "W_in");
        checked(b, {n}, "b");
        S* w_out = inout(W_out, {n_out, n}, "W_out");
        checked(b_out, {n_out}, "b_out");
        checked(W_fb, {n, n_out}, "W_fb");
        const S* tg = optional_checked(target, {T, B, n_out}, "target");
        const S* mk = optional_checked(mask, {T, B}, "mask");
        S* xs = inout(x, {B, n}, "x");
        S* zs = z ? inout(*z, {B, n_out}, "z") : nullptr;
        // P is neither read nor written without learning
        S* p = learn ? inout(P, {n, n}, "P") : const_cast<S*>(P.data());
        if (learn && !tg) throw py::value_error("target: needed when learn is True");
        if (update_every < 1) throw py::value_error("update_every: must be >= 1");
        ForceOptions opt;
        opt.rate = rate_options(alpha, phi, form, readout);
        opt.update_every = update_every;
        opt.step0 = step0;
        opt.learn = learn;
        const Index np = learn ? n : 0;
        ForceNet<S> net{Wm,
                        mat(W_in, "W_in"),
                        b.data(),
                        MatMap<S>(w_out, n_out, n),
                        b_out.data(),
                        CMatMap<S>(W_fb.data(), n, n_out),
                        MatMap<S>(p, np, np)};
        Arr<S> y = empty3<S>(T, B, n_out);
        std::int64_t updates;
        InPlace in_place;  // an interrupted call leaves W_out, P, x and z as they were
        in_place.keep(xs, B * n);
        in_place.keep(zs, B * n_out);
        if (learn) {
          in_place.keep(w_out, n_out * n);
          in_place.keep(p, n * n);
        }
        {
          const LongCall call;
          updates = force_run(net, opt, uv, tg, mk, xs, view(y), zs);
        }
        in_place.commit();
        return py::make_tuple(y, updates);
      },
      py::arg("W"), py::arg("W_in"), py::arg("b"), py::arg("W_out").noconvert(),
      py::arg("b_out"), py::arg("W_fb"), py::arg("P").noconvert(), py::arg("u"), py::arg("target"),
      py::arg("mask"), py::arg("x").noconvert(), py::arg("alpha"), py::arg("phi"),
      py::arg("form"), py::arg("readout"), py::arg("update_every"), py::arg("step0"),
      py::arg("learn"), py::arg("z").noconvert() = py::none(),
      "FORCE with output feedback W_fb (n, n_out) over trials run in order: u (T, B, n_in), "
      "target (T, B, n_out) or None, mask (T, B) or None; W_out, P (n, n) and x (B, n: initial "
      "states in, final out) are updated in place; z (B, n_out) or None: the output fed back "
      "first (in) and the last a priori output (out). Returns (y (T, B, n_out), updates).");

  m.def(
      "full_force_run",
      [](Arr<S>& J, const Arr<S>& W_in, const Arr<S>& b, Arr<S>& W_out, const Arr<S>& b_out,
         const Arr<S>& J_D, const Arr<S>& w_f, const Arr<S>& w_h, Arr<S>& P, const Arr<S>& u,
         const std::optional<Arr<S>>& f, const std::optional<Arr<S>>& hint,
         const std::optional<Arr<S>>& mask, Arr<S>& x, const Arr<S>& x_D, double alpha,
         const std::string& phi, std::int64_t update_every, std::int64_t step0, bool learn) {
        const Index n = J.ndim() ? J.shape(0) : 0;
        S* j = inout(J, {n, n}, "J");
        const CTensor3<S> uv = view(u, "u");
        const Index T = uv.T, B = uv.B, n_in = uv.N, n_out = W_out.ndim() ? W_out.shape(0) : 0;
        const Index n_hint = w_h.ndim() == 2 ? w_h.shape(1) : 0;
        checked(W_in, {n, n_in}, "W_in");
        checked(b, {n}, "b");
        S* w_out = inout(W_out, {n_out, n}, "W_out");
        checked(b_out, {n_out}, "b_out");
        checked(J_D, {n, n}, "J_D");
        checked(w_f, {n, n_out}, "w_f");
        checked(w_h, {n, n_hint}, "w_h");
        const S* fv = optional_checked(f, {T, B, n_out}, "f");
        const S* hv = optional_checked(hint, {T, B, n_hint}, "hint");
        const S* mk = optional_checked(mask, {T, B}, "mask");
        S* xs = inout(x, {B, n}, "x");
        const S* xd = learn ? checked(x_D, {B, n}, "x_D") : x_D.data();
        S* p = learn ? inout(P, {n, n}, "P") : const_cast<S*>(P.data());
        if (learn && !fv) throw py::value_error("f: needed when learn is True");
        if (learn && n_hint > 0 && !hv) throw py::value_error("hint: needed when w_h has columns");
        if (update_every < 1) throw py::value_error("update_every: must be >= 1");
        FullForceOptions opt;
        opt.rate = rate_options(alpha, phi, "current", "rate");
        opt.update_every = update_every;
        opt.step0 = step0;
        opt.learn = learn;
        FullForceNet<S> net{MatMap<S>(j, n, n),
                            mat(W_in, "W_in"),
                            b.data(),
                            MatMap<S>(w_out, n_out, n),
                            b_out.data(),
                            CMatMap<S>(J_D.data(), n, n),
                            CMatMap<S>(w_f.data(), n, n_out),
                            CMatMap<S>(w_h.data(), n, n_hint),
                            MatMap<S>(p, learn ? n : 0, learn ? n : 0)};
        Arr<S> y = empty3<S>(T, B, n_out);
        std::int64_t updates;
        InPlace in_place;  // an interrupted call leaves J, W_out, P and x as they were
        in_place.keep(xs, B * n);
        if (learn) {
          in_place.keep(j, n * n);
          in_place.keep(w_out, n_out * n);
          in_place.keep(p, n * n);
        }
        {
          const LongCall call;
          updates = full_force_run(net, opt, uv, fv, hv, n_hint, mk, xs, xd, view(y));
        }
        in_place.commit();
        return py::make_tuple(y, updates);
      },
      py::arg("J").noconvert(), py::arg("W_in"), py::arg("b"), py::arg("W_out").noconvert(),
      py::arg("b_out"), py::arg("J_D"), py::arg("w_f"), py::arg("w_h"),
      py::arg("P").noconvert(), py::arg("u"), py::arg("f"), py::arg("hint"), py::arg("mask"),
      py::arg("x").noconvert(), py::arg("x_D"), py::arg("alpha"), py::arg("phi"),
      py::arg("update_every"), py::arg("step0"), py::arg("learn"),
      "full-FORCE over trials run in order: teacher J_D (n, n) with target input w_f "
      "(n, n_out) and hint input w_h (n, n_hint); u (T, B, n_in), f (T, B, n_out), hint "
      "(T, B, n_hint), mask (T, B) or None; J, W_out, P and x (B, n) updated in place, x_D "
      "(B, n) the teacher's initial states. Returns (y (T, B, n_out), updates).");

  m.def(
      "population_loss",
      [](const Arr<S>& W, const Arr<S>& W_in, const Arr<S>& b, const Arr<S>& W_out,
         const Arr<S>& b_out, const Arr<S>& x0, const Arr<S>& u, const Arr<S>& target,
         const std::optional<Arr<S>>& mask, double alpha, const std::string& phi,
         const std::string& form, const std::string& readout, bool return_y) {
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
        const RateOptions opt = rate_options(alpha, phi, form, readout);
        Arr<double> loss(std::vector<py::ssize_t>{P});
        Arr<S> y(return_y ? std::vector<py::ssize_t>{P, uv.T, uv.B, n_out}
                          : std::vector<py::ssize_t>{0});
        S* yp = return_y ? y.mutable_data() : nullptr;
        {
          const LongCall call;
          population_loss(pop, opt, uv, tg, mk, loss.mutable_data(), yp);
        }
        return py::make_tuple(loss, return_y ? py::object(y) : py::object(py::none()));
      },
      py::arg("W"), py::arg("W_in"), py::arg("b"), py::arg("W_out"), py::arg("b_out"),
      py::arg("x0"), py::arg("u"), py::arg("target"), py::arg("mask"), py::arg("alpha"),
      py::arg("phi"), py::arg("form"), py::arg("readout"), py::arg("return_y"),
      "Masked MSE of every member of a population of RateRNNs (arrays stacked along a "
      "leading member axis: W (P, n, n), W_in (P, n, n_in), b (P, n), W_out (P, n_out, n), "
      "b_out (P, n_out), x0 (P, n)) on one batch u (T, B, n_in), target and mask (T, B, "
      "n_out). One member per thread. Returns (loss (P,) float64, y (P, T, B, n_out) or None).");

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

  m.def(
      "hebbian_run",
      [](Arr<S>& W, const Arr<S>& W_in, const Arr<S>& b, const Arr<S>& W_out,
         const Arr<S>& b_out, const Arr<S>& u, const Arr<S>& target, const Arr<S>& x0,
         const std::optional<Arr<std::int64_t>>& condition, Arr<double>& Rbar, double alpha,
         const std::string& phi, const std::string& readout,
         double kick_prob, double kick_amp, double trace_decay, double eta, double clip,
         double reward_decay, Index window, std::uint64_t seed, std::int64_t trial0,
         bool learn) {
        const Index n = W.ndim() ? W.shape(0) : 0;
        S* w = inout(W, {n, n}, "W");
        const CTensor3<S> uv = view(u, "u");
        const Index T = uv.T, B = uv.B, n_in = uv.N, n_out = W_out.ndim() ? W_out.shape(0) : 0;
        checked(W_in, {n, n_in}, "W_in");
        checked(b, {n}, "b");
        checked(W_out, {n_out, n}, "W_out");
        checked(b_out, {n_out}, "b_out");
        const S* tg = checked(target, {B, n_out}, "target");
        const S* x0p = checked(x0, {B, n}, "x0");
        if (window < 1) throw py::value_error("window: must be >= 1");
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
        HebbianOptions opt;
        opt.rate = rate_options(alpha, phi, "current", readout);
        opt.kick_prob = kick_prob;
        opt.kick_amp = kick_amp;
        opt.trace_decay = trace_decay;
        opt.eta = eta;
        opt.clip = clip;
        opt.reward_decay = reward_decay;
        opt.window = window;
        opt.seed = seed;
        opt.trial0 = trial0;
        opt.learn = learn;
        HebbianNet<S> net{MatMap<S>(w, n, n), mat(W_in, "W_in"), b.data(), mat(W_out, "W_out"),
                          b_out.data()};
        Arr<S> y = empty3<S>(T, B, n_out);
        Arr<double> R(std::vector<py::ssize_t>{B});
        double* rbar = Rbar.mutable_data();
        InPlace in_place;  // an interrupted call leaves W and Rbar as they were
        if (learn) {
          in_place.keep(w, n * n);
          in_place.keep(rbar, Rbar.shape(0));
        }
        {
          const LongCall call;
          hebbian_run(net, opt, uv, tg, x0p, cond, rbar, view(y), R.mutable_data());
        }
        in_place.commit();
        return py::make_tuple(y, R);
      },
      py::arg("W").noconvert(), py::arg("W_in"), py::arg("b"), py::arg("W_out"),
      py::arg("b_out"), py::arg("u"), py::arg("target"), py::arg("x0"), py::arg("condition"),
      py::arg("Rbar").noconvert(),
      py::arg("alpha"), py::arg("phi"), py::arg("readout"), py::arg("kick_prob"),
      py::arg("kick_amp"), py::arg("trace_decay"), py::arg("eta"), py::arg("clip"),
      py::arg("reward_decay"), py::arg("window"), py::arg("seed"), py::arg("trial0"),
      py::arg("learn"),
      "Reward-modulated Hebbian learning (Miconi 2017) over trials run in order: u (T, B, "
      "n_in), target (B, n_out), x0 (B, n), condition (B,) int64 or None (all 0); W (n, n) "
      "and the running errors Rbar (n_conditions,) float64 updated in place after every "
      "trial. Returns (y (T, B, n_out), R (B,) the trials' errors).");
}

}  // namespace

void register_learning(py::module_& m) {
  register_dtype<double>(m);
  register_dtype<float>(m);
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
