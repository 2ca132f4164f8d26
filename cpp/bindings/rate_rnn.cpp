#include "flexrnn/rate_rnn.hpp"

#include "common.hpp"
#include "enums.hpp"
#include "loss.hpp"
#include "rate_objects.hpp"

namespace flexrnn::py_bind {
namespace {

// The sizes of one call and its kernel arguments, from the bound objects.
template <class S>
struct RateArgs {
  RateOptions opt;
  RateDrive<S> drive;
  Index T, B, n, n_in, n_out;
};

template <class S>
RateArgs<S> rate_args(const RateParamsObject& p, const RateOptions& opt,
                      const RateDriveObject& d) {
  RateArgs<S> a;
  a.drive = d.view<S>(p);
  a.opt = opt;
  a.T = a.drive.u.T;
  a.B = a.drive.u.B;
  a.n = p.n;
  a.n_in = p.n_in;
  a.n_out = p.n_out;
  return a;
}

template <class S, class Params>
py::tuple run(const Params& params, const RateArgs<S>& a, bool states) {
  Arr<S> y = empty3<S>(a.T, a.B, a.n_out);
  if (!states) {  // outputs only: no (T, B, n) arrays
    const RateTrajectory<S> out{{nullptr, a.T, a.B, a.n}, {nullptr, a.T, a.B, a.n}, view(y)};
    {
      const LongCall call;
      rollout(params, a.opt, a.drive, out);
    }
    return py::make_tuple(py::none(), py::none(), y);
  }
  Arr<S> x = empty3<S>(a.T, a.B, a.n), r = empty3<S>(a.T, a.B, a.n);
  const RateTrajectory<S> out{view(x), view(r), view(y)};
  {
    const LongCall call;
    rollout(params, a.opt, a.drive, out);
  }
  return py::make_tuple(x, r, y);
}

// Forward, loss and gradients. grads: the recurrent arrays' names (W, or U and V) first.
using NamedShapes = std::vector<std::pair<const char*, std::vector<py::ssize_t>>>;

// wrt: gradients of the gains also wanted, among "gain" (T, B), "pre_gain", "post_gain" and
// "neuron_gain" (T, B, n), per step and trial.
template <class S, class Params>
py::tuple loss_and_grad_run(const Params& params, const RateArgs<S>& a, const NamedShapes& rec,
                            LossKind loss, const py::object& target, const py::object& mask,
                            const std::vector<std::string>& wrt) {
  const LossArgs<S> L = loss_args<S>(loss, target, mask, a.T, a.B, a.n_out);
  Arr<S> x = empty3<S>(a.T, a.B, a.n), r = empty3<S>(a.T, a.B, a.n);
  Arr<S> y = empty3<S>(a.T, a.B, a.n_out);
  Arr<S> pre = empty3<S>(a.opt.form == Form::rate ? a.T : 0, a.B, a.n);
  RateTrajectory<S> tr{view(x), view(r), view(y)};
  if (a.opt.form == Form::rate) tr.pre = view(pre);
  py::dict grads;
  RateGrads<S> g;
  for (const auto& [name, shape] : rec) {
    Arr<S> arr = zeros<S>(shape);
    g.rec.push_back(arr.mutable_data());
    grads[name] = arr;
  }
  auto add = [&](const char* name, std::vector<py::ssize_t> shape) {
    Arr<S> arr = zeros<S>(std::move(shape));
    grads[name] = arr;
    return arr.mutable_data();
  };
  g.W_in = add("W_in", {a.n, a.n_in});
  g.b = add("b", {a.n});
  g.W_out = add("W_out", {a.n_out, a.n});
  g.b_out = add("b_out", {a.n_out});
  g.x0 = add("x0", {a.B, a.n});
  for (const std::string& name : wrt) {
    if (name == "gain") {
      g.gains.gain = add("gain", {a.T, a.B});
    } else if (name == "pre_gain") {
      g.gains.pre_gain = add("pre_gain", {a.T, a.B, a.n});
    } else if (name == "post_gain") {
      g.gains.post_gain = add("post_gain", {a.T, a.B, a.n});
    } else if (name == "neuron_gain") {
      g.gains.neuron_gain = add("neuron_gain", {a.T, a.B, a.n});
    } else {
      throw py::value_error("wrt: unknown gain '" + name +
                            "' (expected gain, pre_gain, post_gain or neuron_gain)");
    }
  }
  Arr<S> z = empty3<S>(g.gains.need_rec() ? a.T : 0, a.B, a.n);
  if (g.gains.need_rec()) tr.rec = view(z);
  double value;
  {
    const LongCall call;
    value = loss_and_grad(params, a.opt, a.drive, L.spec, tr, g);
  }
  return py::make_tuple(value, grads, y);
}

// rollout or loss_and_grad of a RateRNN or LowRankRNN in the parameters' dtype.
template <class F>
auto dispatch(const RateParamsObject& p, const RateOptions& opt, const RateDriveObject& d, F&& f) {
  if (p.f32) {
    const auto a = rate_args<float>(p, opt, d);
    return p.low_rank ? f(p.factors<float>(), a) : f(p.dense<float>(), a);
  }
  const auto a = rate_args<double>(p, opt, d);
  return p.low_rank ? f(p.factors<double>(), a) : f(p.dense<double>(), a);
}

template <class S>
RateParamsObject dense_params(const Arr<S>& W, const Arr<S>& W_in, const Arr<S>& b,
                              const Arr<S>& W_out, const Arr<S>& b_out) {
  RateParamsObject p;
  p.W = W;
  if (W.ndim() != 2) throw py::value_error("W: expected a 2-d array");
  p.set<S>(W_in, b, W_out, b_out);
  return p;
}

template <class S>
RateParamsObject factor_params(const Arr<S>& U, const Arr<S>& V, const Arr<S>& W_in,
                               const Arr<S>& b, const Arr<S>& W_out, const Arr<S>& b_out) {
  RateParamsObject p;
  p.low_rank = true;
  p.U = U;
  p.V = V;
  p.set<S>(W_in, b, W_out, b_out);
  return p;
}

void register_params(py::module_& m) {
  const char* sizes = "n, n_in, n_out: sizes read off the arrays when built.";
  auto common = [&](py::class_<RateParamsObject>& c) {
    c.def_property_readonly("W_in", [](const RateParamsObject& p) { return p.W_in; })
        .def_property_readonly("b", [](const RateParamsObject& p) { return p.b; })
        .def_property_readonly("W_out", [](const RateParamsObject& p) { return p.W_out; })
        .def_property_readonly("b_out", [](const RateParamsObject& p) { return p.b_out; })
        .def_property_readonly("low_rank", [](const RateParamsObject& p) { return p.low_rank; })
        .def_readonly("n", &RateParamsObject::n, sizes)
        .def_readonly("n_in", &RateParamsObject::n_in, sizes)
        .def_readonly("n_out", &RateParamsObject::n_out, sizes)
        .def_property_readonly("dtype", [](const RateParamsObject& p) {
          return py::dtype(p.f32 ? "float32" : "float64");
        });
  };
  // One Python class of each kind over one C++ holder; the kind is the holder's low_rank.
  py::class_<RateParamsObject> dense(m, "RateRNNParams",
                                     "A RateRNN's parameters as the kernels see them: W (n, n), "
                                     "W_in (n, n_in), b (n,), W_out (n_out, n), b_out (n_out,), "
                                     "all of one dtype (float32 or float64), C-contiguous, taken "
                                     "as they are (no conversion, no copies): the kernels read "
                                     "their current values at every call.");
  dense
      .def(py::init(&dense_params<double>), py::arg("W").noconvert(), py::arg("W_in").noconvert(),
           py::arg("b").noconvert(), py::arg("W_out").noconvert(), py::arg("b_out").noconvert())
      .def(py::init(&dense_params<float>), py::arg("W").noconvert(), py::arg("W_in").noconvert(),
           py::arg("b").noconvert(), py::arg("W_out").noconvert(), py::arg("b_out").noconvert())
      .def_property_readonly("W", [](const RateParamsObject& p) { return p.W; });
  common(dense);
  // LowRankRNNParams: the same holder, bound under its own name through a subclass.
  struct LowRank : RateParamsObject {};
  py::class_<LowRank, RateParamsObject> factors(
      m, "LowRankRNNParams",
      "A LowRankRNN's parameters as the kernels see them: U, V (n, rank) with W = U V^T / n, "
      "and W_in, b, W_out, b_out as in RateRNNParams. Keeps references to the arrays.");
  factors
      .def(py::init([](const Arr<double>& U, const Arr<double>& V, const Arr<double>& W_in,
                       const Arr<double>& b, const Arr<double>& W_out, const Arr<double>& b_out) {
             return LowRank{factor_params<double>(U, V, W_in, b, W_out, b_out)};
           }),
           py::arg("U").noconvert(), py::arg("V").noconvert(), py::arg("W_in").noconvert(),
           py::arg("b").noconvert(), py::arg("W_out").noconvert(), py::arg("b_out").noconvert())
      .def(py::init([](const Arr<float>& U, const Arr<float>& V, const Arr<float>& W_in,
                       const Arr<float>& b, const Arr<float>& W_out, const Arr<float>& b_out) {
             return LowRank{factor_params<float>(U, V, W_in, b, W_out, b_out)};
           }),
           py::arg("U").noconvert(), py::arg("V").noconvert(), py::arg("W_in").noconvert(),
           py::arg("b").noconvert(), py::arg("W_out").noconvert(), py::arg("b_out").noconvert())
      .def_property_readonly("U", [](const RateParamsObject& p) { return p.U; })
      .def_property_readonly("V", [](const RateParamsObject& p) { return p.V; });
}

void register_drive(py::module_& m) {
  py::class_<RateDriveObject>(m, "RateDrive",
                              "One run of a rate network: u (T, B, n_in), x0 (B, n), gain (T, "
                              "B) or None (then gain_scalar everywhere), and the per-neuron "
                              "gains neuron_gain (slope of phi), pre_gain (W diag(pre)) and "
                              "post_gain (diag(post) W), each (n,), (T or 1, B or 1, n) or "
                              "None, in the parameters' dtype. Keeps references to the arrays.")
      .def(py::init(&RateDriveObject::make<double>), py::arg("u"), py::arg("x0"),
           py::arg("gain") = py::none(), py::arg("gain_scalar") = 1.0,
           py::arg("neuron_gain") = py::none(), py::arg("pre_gain") = py::none(),
           py::arg("post_gain") = py::none())
      .def(py::init(&RateDriveObject::make<float>), py::arg("u"), py::arg("x0"),
           py::arg("gain") = py::none(), py::arg("gain_scalar") = 1.0,
           py::arg("neuron_gain") = py::none(), py::arg("pre_gain") = py::none(),
           py::arg("post_gain") = py::none())
      .def_readonly("u", &RateDriveObject::u)
      .def_readonly("x0", &RateDriveObject::x0)
      .def_readonly("gain", &RateDriveObject::gain)
      .def_readonly("gain_scalar", &RateDriveObject::gain_scalar)
      .def_readonly("neuron_gain", &RateDriveObject::neuron_gain)
      .def_readonly("pre_gain", &RateDriveObject::pre_gain)
      .def_readonly("post_gain", &RateDriveObject::post_gain);
}

}  // namespace

void register_rate_objects(py::module_& m) {
  py::enum_<Phi>(m, "Phi", "The transfer function phi (reference/names.py: PHI_NAMES).")
      .value("tanh", Phi::tanh)
      .value("relu", Phi::relu)
      .value("softplus", Phi::softplus)
      .value("shifted_tanh", Phi::shifted_tanh)
      .value("identity", Phi::identity);
  py::enum_<Form>(m, "Form", "Where phi acts (reference/names.py: FORMS).")
      .value("current", Form::current)
      .value("rate", Form::rate);
  py::enum_<Readout>(m, "Readout", "What W_out reads (reference/names.py: READOUTS).")
      .value("rate", Readout::rate)
      .value("state", Readout::state);
  py::enum_<LossKind>(m, "Loss", "The masked losses (reference/names.py: LOSSES).")
      .value("mse", LossKind::mse)
      .value("cross_entropy", LossKind::cross_entropy);
  py::class_<RateOptions>(m, "RateOptions",
                          "A rate network's options: alpha = dt / tau, phi, form, readout "
                          "(enum values or their names), noise_std (std of the recurrent noise) "
                          "and seed (key of the counter-based noise generator).")
      .def(py::init([](double alpha, const py::object& phi, const py::object& form,
                       const py::object& readout, double noise_std, std::uint64_t seed) {
             RateOptions o;
             o.alpha = alpha;
             o.phi = enum_arg<Phi>(phi, &phi_from_name, "phi");
             o.form = enum_arg<Form>(form, &form_from_name, "form");
             o.readout = enum_arg<Readout>(readout, &readout_from_name, "readout");
             o.noise_std = noise_std;
             o.seed = seed;
             return o;
           }),
           py::arg("alpha") = 0.1, py::arg("phi") = "tanh", py::arg("form") = "current",
           py::arg("readout") = "rate", py::arg("noise_std") = 0.0, py::arg("seed") = 0)
      .def_readwrite("alpha", &RateOptions::alpha)
      .def_readwrite("phi", &RateOptions::phi)
      .def_readwrite("form", &RateOptions::form)
      .def_readwrite("readout", &RateOptions::readout)
      .def_readwrite("noise_std", &RateOptions::noise_std)
      .def_readwrite("seed", &RateOptions::seed);
  register_params(m);
  register_drive(m);
}

void register_rate_rnn(py::module_& m) {
  register_rate_objects(m);
  m.def(
      "rate_rollout",
      [](const RateParamsObject& p, const RateOptions& opt, const RateDriveObject& d,
         bool states) {
        return dispatch(p, opt, d,
                        [&](const auto& params, const auto& a) { return run(params, a, states); });
      },
      py::arg("params"), py::arg("options"), py::arg("drive"), py::arg("states") = true,
      "Rollout of a RateRNN (params: RateRNNParams) or LowRankRNN (LowRankRNNParams). Returns "
      "x, r: (T, B, n) and y: (T, B, n_out), the state after each step; with states=False, "
      "(None, None, y), the states never stored.");
  m.def(
      "rate_loss_and_grad",
      [](const RateParamsObject& p, const RateOptions& opt, const RateDriveObject& d,
         const py::object& loss, const py::object& target, const py::object& mask,
         const std::vector<std::string>& wrt) {
        const LossKind kind = enum_arg<LossKind>(loss, &loss_from_name, "loss");
        return dispatch(p, opt, d, [&](const auto& params, const auto& a) {
          const std::vector<py::ssize_t> rec{p.n, p.low_rank ? p.U.shape(1) : p.n};
          const NamedShapes names =
              p.low_rank ? NamedShapes{{"U", rec}, {"V", rec}} : NamedShapes{{"W", rec}};
          return loss_and_grad_run(params, a, names, kind, target, mask, wrt);
        });
      },
      py::arg("params"), py::arg("options"), py::arg("drive"), py::arg("loss"),
      py::arg("target"), py::arg("mask"), py::arg("wrt") = std::vector<std::string>{},
      "Forward + loss + BPTT of a RateRNN or LowRankRNN: as rate_rollout, plus loss (Loss or "
      "its name; mse: target, mask (T, B, n_out); cross_entropy: integer labels (T, B), mask "
      "(T, B)). Returns (loss, grads, y): grads keyed W (or U, V), W_in, b, W_out, b_out, x0 "
      "(per trial, (B, n)), and the gains named in wrt (gain: (T, B); pre_gain, post_gain, "
      "neuron_gain: (T, B, n), per step and trial).");
}



}  // namespace flexrnn::py_bind
