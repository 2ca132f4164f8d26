#include "flexrnn/dynamics.hpp"

#include "common.hpp"
#include "nmrnn_objects.hpp"
#include "rate_objects.hpp"

namespace flexrnn::py_bind {
namespace {

// A rate network given as W (dense) or U, V (low rank), with the map's settings checked.
template <class S>
struct MapArgs {
  std::optional<RateRNNParams<S>> dense;
  std::optional<LowRankRNNParams<S>> low_rank;
  MapSpec<S> spec;
  Index n;
  std::vector<S> zeros;  // W_out / b_out stand-ins: the map reads no readout
};

// The map's settings: the network's bound parameters (their readout is not read), alpha, phi
// and form of its options, a constant input u (n_in,), the gain and per-neuron gains.
template <class S>
MapArgs<S> map_args(const RateParamsObject& p, const RateOptions& opt, const Arr<S>& u,
                    double gain, const std::optional<Arr<S>>& neuron_gain) {
  MapArgs<S> a;
  if (p.low_rank) {
    a.low_rank.emplace(p.factors<S>());
  } else {
    a.dense.emplace(p.dense<S>());
  }
  a.n = p.n;
  a.spec.u = checked(u, {p.n_in}, "u");
  a.spec.gain = S(gain);
  a.spec.neuron_gain = checked(neuron_gain, {a.n}, "neuron_gain");
  a.spec.alpha = opt.alpha;
  a.spec.phi = opt.phi;
  a.spec.form = opt.form;
  return a;
}


// The NM-RNN's arrays (no readout: the map does not read it), checked against U and W_z.
template <class S>
struct NMRNNMapArgs {
  std::optional<NMRNNParams<S>> p;
  MapSpec<S> spec;
  Index n;  // joint state size n + n_mod
};

// The NM-RNN's map: its bound parameters (the readout is not read), its options and a
// constant input u (n_in,).
template <class S>
NMRNNMapArgs<S> nmrnn_map_args(const NMRNNParamsObject& p, const NMRNNOptions& opt,
                               const Arr<S>& u) {
  NMRNNMapArgs<S> a;
  a.p.emplace(p.view<S>());
  a.spec.u = checked(u, {p.n_in}, "u");
  a.spec.alpha = opt.alpha_x;
  a.spec.alpha_z = opt.alpha_z;
  a.spec.n_scale = opt.n_scale;
  a.n = p.n + p.n_mod;
  return a;
}

template <class S, class F>
void with_params(const NMRNNMapArgs<S>& a, F&& f) {
  const LongCall call;
  f(*a.p);
}

template <class S, class F>
void with_params(const MapArgs<S>& a, F&& f) {
  const LongCall call;
  if (a.dense) {
    f(*a.dense);
  } else {
    f(*a.low_rank);
  }
}

// q, F(X), gradient (or None), Jacobians (or None) at the states X (K, N)
template <class S, class Args>
py::tuple map_at_call(const Args& a, const Arr<S>& X, bool gradient, bool jacobian) {
  const CMatMap<S> Xm = mat(X, "X");
  checked(X, {Xm.rows(), a.n}, "X");
  const Index K = Xm.rows(), n = a.n;
  Arr<S> q({K}), FX({K, n});
  py::object G = py::none(), J = py::none();
  S* g = nullptr;
  S* j = nullptr;
  if (gradient) {
    Arr<S> arr({K, n});
    g = arr.mutable_data();
    G = arr;
  }
  if (jacobian) {
    Arr<S> arr({K, n, n});
    j = arr.mutable_data();
    J = arr;
  }
  S* qd = q.mutable_data();
  S* fd = FX.mutable_data();
  with_params(a, [&](const auto& p) { map_at(p, a.spec, X.data(), K, qd, g, j, fd); });
  return py::make_tuple(q, FX, G, J);
}

// minimisers of q from every row of X0 (K, N): states, q, Adam steps taken
template <class S, class Args>
py::tuple minimize_call(const Args& a, const Arr<S>& X0, int iters, double lr, double tol) {
  const CMatMap<S> Xm = mat(X0, "X0");
  checked(X0, {Xm.rows(), a.n}, "X0");
  if (iters < 0) throw py::value_error("iters: must be >= 0");
  if (!(lr > 0.0)) throw py::value_error("lr: must be > 0");
  const Index K = Xm.rows();
  Arr<S> X({K, a.n}), q({K});
  py::array_t<std::int32_t> its({K});
  std::copy(X0.data(), X0.data() + X0.size(), X.mutable_data());
  const FixedPointOptions opt{iters, lr, tol};
  S* xd = X.mutable_data();
  S* qd = q.mutable_data();
  std::int32_t* id = its.mutable_data();
  with_params(a, [&](const auto& p) { minimize_q(p, a.spec, opt, xd, K, qd, id); });
  return py::make_tuple(X, q, its);
}

void register_nmrnn_maps(py::module_& m) {
  m.def(
      "nmrnn_map_at",
      [](const NMRNNParamsObject& p, const NMRNNOptions& opt, const py::object& u,
         const py::object& X, bool gradient, bool jacobian) {
        auto go = [&](auto s) -> py::object {
          using S = decltype(s);
          const Arr<S> ua = as_arr<S>(u), Xa = as_arr<S>(X);
          return map_at_call(nmrnn_map_args<S>(p, opt, ua), Xa, gradient, jacobian);
        };
        return p.f32 ? go(float{}) : go(double{});
      },
      py::arg("params"), py::arg("options"), py::arg("u"), py::arg("X"), py::arg("gradient"),
      py::arg("jacobian"),
      "The NM-RNN's map of its joint state [x, z] (params: NMRNNParams, options: "
      "NMRNNOptions) at constant input u: (n_in,), at X: (K, n + n_mod). Returns q: (K,), F(X): "
      "(K, n + n_mod), the gradient of q or None, the Jacobians (K, n + n_mod, n + n_mod) or "
      "None.");
  m.def(
      "nmrnn_minimize_q",
      [](const NMRNNParamsObject& p, const NMRNNOptions& opt, const py::object& u,
         const py::object& X0, int iters, double lr, double tol) {
        auto go = [&](auto s) -> py::object {
          using S = decltype(s);
          const Arr<S> ua = as_arr<S>(u), Xa = as_arr<S>(X0);
          return minimize_call(nmrnn_map_args<S>(p, opt, ua), Xa, iters, lr, tol);
        };
        return p.f32 ? go(float{}) : go(double{});
      },
      py::arg("params"), py::arg("options"), py::arg("u"), py::arg("X0"), py::arg("iters"),
      py::arg("lr"), py::arg("tol"),
      "Minimise q over the NM-RNN's joint state from every row of X0: (K, n + n_mod); as "
      "rate_minimize_q.");
}

void register_rate_maps(py::module_& m) {
  m.def(
      "rate_map_at",
      [](const RateParamsObject& p, const RateOptions& opt, const py::object& u, double gain,
         const py::object& neuron_gain, const py::object& X, bool gradient, bool jacobian) {
        return in_dtype(p, [&](auto s) {
          using S = decltype(s);
          const Arr<S> ua = as_arr<S>(u), Xa = as_arr<S>(X);
          const auto ng = as_optional<S>(neuron_gain);
          return map_at_call(map_args<S>(p, opt, ua, gain, ng), Xa, gradient, jacobian);
        });
      },
      py::arg("params"), py::arg("options"), py::arg("u"), py::arg("gain"),
      py::arg("neuron_gain"), py::arg("X"), py::arg("gradient"), py::arg("jacobian"),
      "The map x -> F(x) of a rate network (params: RateRNNParams or LowRankRNNParams; "
      "options: RateOptions, of which alpha, phi and form) at constant input u: (n_in,), at "
      "the states X: (K, n). Returns q = |F(x) - x|^2 / 2: (K,), F(X): (K, n), the gradient of "
      "q: (K, n) or None, the Jacobians of F: (K, n, n) or None.");
  m.def(
      "rate_minimize_q",
      [](const RateParamsObject& p, const RateOptions& opt, const py::object& u, double gain,
         const py::object& neuron_gain, const py::object& X0, int iters, double lr, double tol) {
        return in_dtype(p, [&](auto s) {
          using S = decltype(s);
          const Arr<S> ua = as_arr<S>(u), Xa = as_arr<S>(X0);
          const auto ng = as_optional<S>(neuron_gain);
          return minimize_call(map_args<S>(p, opt, ua, gain, ng), Xa, iters, lr, tol);
        });
      },
      py::arg("params"), py::arg("options"), py::arg("u"), py::arg("gain"),
      py::arg("neuron_gain"), py::arg("X0"), py::arg("iters"), py::arg("lr"), py::arg("tol"),
      "Minimise q(x) = |F(x) - x|^2 / 2 from every row of X0: (K, n) by Adam (own moments per "
      "state); arguments as rate_map_at. Returns the states (K, n), q (K,) and the steps taken "
      "(K,).");
  m.def(
      "rate_lyapunov_spectrum",
      [](const RateParamsObject& p, const RateOptions& opt, const py::object& u,
         const py::object& gains, const py::object& neuron_gain, const py::object& x0, int k,
         int steps, int transient, int reorthonormalize, std::uint64_t seed) {
        return in_dtype(p, [&](auto s) {
          using S = decltype(s);
          const Arr<S> ua = as_arr<S>(u), ga = as_arr<S>(gains), xa = as_arr<S>(x0);
          const auto ng = as_optional<S>(neuron_gain);
          const auto a = map_args<S>(p, opt, ua, 1.0, ng);
          const CMatMap<S> X0 = mat(xa, "x0");
          checked(xa, {X0.rows(), a.n}, "x0");
          const Index B = X0.rows();
          checked(ga, {B}, "gains");
          if (k < 1 || k > a.n) throw py::value_error("k: must be in 1..n");
          if (steps < 1) throw py::value_error("steps: must be >= 1");
          if (transient < 0) throw py::value_error("transient: must be >= 0");
          if (reorthonormalize < 1) throw py::value_error("reorthonormalize: must be >= 1");
          const LyapunovOptions lo{k, steps, transient, reorthonormalize, seed};
          Arr<S> out({B, static_cast<Index>(k)});
          S* od = out.mutable_data();
          with_params(a, [&](const auto& params) {
            lyapunov_spectrum(params, a.spec, ga.data(), xa.data(), B, lo, od);
          });
          return py::object(out);
        });
      },
      py::arg("params"), py::arg("options"), py::arg("u"), py::arg("gains"),
      py::arg("neuron_gain"), py::arg("x0"), py::arg("k"), py::arg("steps"),
      py::arg("transient"), py::arg("reorthonormalize"), py::arg("seed"),
      "Lyapunov spectra (QR method) of the map at constant input u, one run per row of x0: "
      "(B, n) at gains: (B,); params and options as in rate_map_at. Returns (B, k) exponents "
      "per step of the map (divide by alpha for units of tau).");
}

}  // namespace

void register_dynamics(py::module_& m) {
  register_rate_maps(m);
  register_nmrnn_maps(m);
}

}  // namespace flexrnn::py_bind
