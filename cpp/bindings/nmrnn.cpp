#include "flexrnn/nmrnn.hpp"

#include "common.hpp"
#include "loss.hpp"
#include "nmrnn_objects.hpp"

namespace flexrnn::py_bind {
namespace {

template <class S>
struct NMRNNArgs {
  NMRNNParams<S> p;
  NMRNNDrive<S> drive;
  NMRNNOptions opt;
  Index T, B, n, n_in, n_mod, rank, n_out;
};

// The parameters' view and the drive u (T, B, n_in), x0 (B, n), z0 (B, n_mod), s_clamp (rank,)
// or None, checked against them; the arrays kept alive for the call (converted to the
// parameters' dtype if need be).
template <class S>
struct NMRNNCall : NMRNNArgs<S> {
  Arr<S> u, x0, z0;
  std::optional<Arr<S>> s_clamp;
};

template <class S>
NMRNNCall<S> nmrnn_args(const NMRNNParamsObject& p, const NMRNNOptions& opt,
                        const py::object& u_, const py::object& x0_, const py::object& z0_,
                        const py::object& s_clamp_) {
  NMRNNCall<S> a{{p.view<S>(), NMRNNDrive<S>{}, opt, 0, 0, 0, 0, 0, 0, 0}, {}, {}, {}, {}};
  a.u = py::cast<Arr<S>>(u_);
  a.x0 = py::cast<Arr<S>>(x0_);
  a.z0 = py::cast<Arr<S>>(z0_);
  if (!s_clamp_.is_none()) a.s_clamp = py::cast<Arr<S>>(s_clamp_);
  const CTensor3<S> uv = view(a.u, "u");
  if (uv.N != p.n_in) {
    throw py::value_error("u: expected shape (T, B, n_in) with n_in = " + std::to_string(p.n_in) +
                          " (the columns of B_z and B_x), got last axis " +
                          std::to_string(uv.N));
  }
  a.T = uv.T;
  a.B = uv.B;
  a.n = p.n;
  a.n_in = p.n_in;
  a.n_mod = p.n_mod;
  a.rank = p.rank;
  a.n_out = p.n_out;
  a.drive = NMRNNDrive<S>{uv, checked(a.x0, {a.B, p.n}, "x0"), checked(a.z0, {a.B, p.n_mod}, "z0"),
                          checked(a.s_clamp, {p.rank}, "s_clamp", false)};
  a.opt = opt;
  return a;
}

template <class S>
struct NMRNNOutputs {
  Arr<S> x, r, z, s, y;
  explicit NMRNNOutputs(const NMRNNArgs<S>& a)
      : x(empty3<S>(a.T, a.B, a.n)), r(empty3<S>(a.T, a.B, a.n)),
        z(empty3<S>(a.T, a.B, a.n_mod)), s(empty3<S>(a.T, a.B, a.rank)),
        y(empty3<S>(a.T, a.B, a.n_out)) {}
  NMRNNTrajectory<S> view() { return {py_bind::view(x), py_bind::view(r), py_bind::view(z),
                                      py_bind::view(s), py_bind::view(y)}; }
};

template <class S>
py::object nmrnn_rollout_call(const NMRNNParamsObject& p, const NMRNNOptions& opt,
                              const py::object& u, const py::object& x0, const py::object& z0,
                              const py::object& s_clamp) {
  const auto a = nmrnn_args<S>(p, opt, u, x0, z0, s_clamp);
  NMRNNOutputs<S> out(a);
  {
    const LongCall call;
    rollout(a.p, a.opt, a.drive, out.view());
  }
  return py::make_tuple(out.x, out.r, out.z, out.s, out.y);
}

template <class S>
py::object nmrnn_loss_and_grad_call(const NMRNNParamsObject& p, const NMRNNOptions& opt,
                                    const py::object& u, const py::object& x0,
                                    const py::object& z0, const py::object& s_clamp,
                                    const py::object& loss, const py::object& target,
                                    const py::object& mask) {
  const auto a = nmrnn_args<S>(p, opt, u, x0, z0, s_clamp);
  const LossArgs<S> L = loss_args<S>(loss, target, mask, a.T, a.B, a.n_out);
  NMRNNOutputs<S> out(a);
  py::dict grads;
  auto add = [&](const char* name, std::vector<py::ssize_t> shape) {
    Arr<S> arr = zeros<S>(std::move(shape));
    grads[name] = arr;
    return arr.mutable_data();
  };
  NMRNNGrads<S> g{};
  g.W_z = add("W_z", {a.n_mod, a.n_mod});
  g.B_z = add("B_z", {a.n_mod, a.n_in});
  g.b_z = add("b_z", {a.n_mod});
  g.A_z = add("A_z", {a.rank, a.n_mod});
  g.c_z = add("c_z", {a.rank});
  g.U = add("U", {a.n, a.rank});
  g.V = add("V", {a.n, a.rank});
  g.B_x = add("B_x", {a.n, a.n_in});
  g.C = add("C", {a.n_out, a.n});
  g.d = add("d", {a.n_out});
  g.x0 = add("x0", {a.B, a.n});
  g.z0 = add("z0", {a.B, a.n_mod});
  g.W_zx = a.p.W_zx ? add("W_zx", {a.n_mod, a.n}) : nullptr;
  double value;
  {
    const LongCall call;
    value = loss_and_grad(a.p, a.opt, a.drive, L.spec, out.view(), g);
  }
  return py::make_tuple(value, grads, out.y);
}

}  // namespace

void register_nmrnn_objects(py::module_& m) {
  py::class_<NMRNNParamsObject> c(
      m, "NMRNNParams",
      "An NM-RNN's parameters as the kernels see them: W_z (n_mod, n_mod), B_z (n_mod, n_in), "
      "b_z (n_mod,), A_z (rank, n_mod), c_z (rank,), U, V (n, rank), B_x (n, n_in), C (n_out, "
      "n), d (n_out,), W_zx (n_mod, n) or None; of one dtype, C-contiguous, taken as they are "
      "(no conversion, no copies).");
  c.def(py::init(&NMRNNParamsObject::make<double>), py::arg("W_z").noconvert(),
        py::arg("B_z").noconvert(), py::arg("b_z").noconvert(), py::arg("A_z").noconvert(),
        py::arg("c_z").noconvert(), py::arg("U").noconvert(), py::arg("V").noconvert(),
        py::arg("B_x").noconvert(), py::arg("C").noconvert(), py::arg("d").noconvert(),
        py::arg("W_zx").noconvert() = py::none());
  c.def(py::init(&NMRNNParamsObject::make<float>), py::arg("W_z").noconvert(),
        py::arg("B_z").noconvert(), py::arg("b_z").noconvert(), py::arg("A_z").noconvert(),
        py::arg("c_z").noconvert(), py::arg("U").noconvert(), py::arg("V").noconvert(),
        py::arg("B_x").noconvert(), py::arg("C").noconvert(), py::arg("d").noconvert(),
        py::arg("W_zx").noconvert() = py::none());
  c.def_readonly("n", &NMRNNParamsObject::n)
      .def_readonly("rank", &NMRNNParamsObject::rank)
      .def_readonly("n_mod", &NMRNNParamsObject::n_mod)
      .def_readonly("n_in", &NMRNNParamsObject::n_in)
      .def_readonly("n_out", &NMRNNParamsObject::n_out)
      .def_readonly("W_z", &NMRNNParamsObject::W_z)
      .def_readonly("U", &NMRNNParamsObject::U)
      .def_readonly("V", &NMRNNParamsObject::V)
      .def_readonly("W_zx", &NMRNNParamsObject::W_zx);
  py::class_<NMRNNOptions>(m, "NMRNNOptions",
                           "An NM-RNN's options: alpha_x = dt / tau_x, alpha_z = dt / tau_z, "
                           "n_scale (W = U V^T / n_scale; nonzero).")
      .def(py::init([](double alpha_x, double alpha_z, double n_scale) {
             if (n_scale == 0.0) throw py::value_error("n_scale: must be nonzero");
             return NMRNNOptions{alpha_x, alpha_z, n_scale};
           }),
           py::arg("alpha_x"), py::arg("alpha_z"), py::arg("n_scale"))
      .def_readonly("alpha_x", &NMRNNOptions::alpha_x)
      .def_readonly("alpha_z", &NMRNNOptions::alpha_z)
      .def_readonly("n_scale", &NMRNNOptions::n_scale);
}

void register_nmrnn(py::module_& m) {
  register_nmrnn_objects(m);
  m.def(
      "nmrnn_rollout",
      [](const NMRNNParamsObject& p, const NMRNNOptions& opt, const py::object& u,
         const py::object& x0, const py::object& z0, const py::object& s_clamp) {
        return p.f32 ? nmrnn_rollout_call<float>(p, opt, u, x0, z0, s_clamp)
                     : nmrnn_rollout_call<double>(p, opt, u, x0, z0, s_clamp);
      },
      py::arg("params"), py::arg("options"), py::arg("u"), py::arg("x0"), py::arg("z0"),
      py::arg("s_clamp"),
      "NM-RNN rollout (params: NMRNNParams, options: NMRNNOptions). u: (T, B, n_in), x0: (B, "
      "n), z0: (B, n_mod), s_clamp: (rank,) with NaN = free, or None. Returns x, r: (T, B, n), "
      "z: (T, B, n_mod), s: (T, B, rank), y: (T, B, n_out).");
  m.def(
      "nmrnn_loss_and_grad",
      [](const NMRNNParamsObject& p, const NMRNNOptions& opt, const py::object& u,
         const py::object& x0, const py::object& z0, const py::object& s_clamp,
         const py::object& loss, const py::object& target, const py::object& mask) {
        return p.f32
                   ? nmrnn_loss_and_grad_call<float>(p, opt, u, x0, z0, s_clamp, loss, target, mask)
                   : nmrnn_loss_and_grad_call<double>(p, opt, u, x0, z0, s_clamp, loss, target,
                                                      mask);
      },
      py::arg("params"), py::arg("options"), py::arg("u"), py::arg("x0"), py::arg("z0"),
      py::arg("s_clamp"), py::arg("loss"), py::arg("target"), py::arg("mask"),
      "NM-RNN forward + loss + BPTT. Arguments as nmrnn_rollout plus the loss (Loss or its "
      "name; see rate_loss_and_grad). Returns (loss, grads, y): grads keyed by parameter name, "
      "x0 (B, n) and z0 (B, n_mod) per trial, W_zx only with feedback.");
}

}  // namespace flexrnn::py_bind
