#include "flexrnn/nmrnn.hpp"

#include "common.hpp"
#include "loss.hpp"
#include "nmrnn_objects.hpp"

namespace flexrnn::py_bind {
namespace {

// The kernel's view of one call: the parameters, options and drive (checked against the
// parameters), and the sizes of the outputs.
template <class S>
struct NMRNNArgs {
  NMRNNParams<S> p;
  NMRNNDrive<S> drive;
  NMRNNOptions opt;
  Index T, B, n, n_in, n_mod, rank, n_out;
};

template <class S>
NMRNNArgs<S> nmrnn_args(const NMRNNParamsObject& p, const NMRNNOptions& opt,
                        const NMRNNDriveObject& d) {
  const NMRNNParams<S> params = p.view<S>();
  const NMRNNDrive<S> drive = d.view<S>(p);
  return {params, drive, opt, drive.u.T, drive.u.B, p.n, p.n_in, p.n_mod, p.rank, p.n_out};
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
                              const NMRNNDriveObject& drive) {
  const auto a = nmrnn_args<S>(p, opt, drive);
  NMRNNOutputs<S> out(a);
  {
    const LongCall call;
    rollout(a.p, a.opt, a.drive, out.view());
  }
  return py::make_tuple(out.x, out.r, out.z, out.s, out.y);
}

template <class S>
py::object nmrnn_loss_and_grad_call(const NMRNNParamsObject& p, const NMRNNOptions& opt,
                                    const NMRNNDriveObject& drive, const py::object& loss,
                                    const py::object& target, const py::object& mask) {
  const auto a = nmrnn_args<S>(p, opt, drive);
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
  py::class_<NMRNNDriveObject> dc(
      m, "NMRNNDrive",
      "One run of an NM-RNN: u (T, B, n_in), x0 (B, n), z0 (B, n_mod), s_clamp (rank,) with "
      "NaN = free, or None; the gains of the low-rank recurrent term gain[t] post[t] * (U "
      "diag(s) V^T (pre[t] * tanh(x))): gain (T, B) or None (gain_scalar everywhere), "
      "pre_gain and post_gain (n,), (T or 1, B or 1, n) or None; in the parameters' dtype. "
      "Keeps references to the arrays.");
  auto drive_init = [&](auto make) {
    dc.def(py::init(make), py::arg("u"), py::arg("x0"), py::arg("z0"),
           py::arg("s_clamp") = py::none(), py::arg("gain") = py::none(),
           py::arg("gain_scalar") = 1.0, py::arg("pre_gain") = py::none(),
           py::arg("post_gain") = py::none());
  };
  drive_init(&NMRNNDriveObject::make<double>);
  drive_init(&NMRNNDriveObject::make<float>);
  dc.def_readonly("u", &NMRNNDriveObject::u)
      .def_readonly("x0", &NMRNNDriveObject::x0)
      .def_readonly("z0", &NMRNNDriveObject::z0)
      .def_readonly("s_clamp", &NMRNNDriveObject::s_clamp)
      .def_readonly("gain", &NMRNNDriveObject::gain)
      .def_readonly("gain_scalar", &NMRNNDriveObject::gain_scalar)
      .def_readonly("pre_gain", &NMRNNDriveObject::pre_gain)
      .def_readonly("post_gain", &NMRNNDriveObject::post_gain);
}

void register_nmrnn(py::module_& m) {
  register_nmrnn_objects(m);
  m.def(
      "nmrnn_rollout",
      [](const NMRNNParamsObject& p, const NMRNNOptions& opt, const NMRNNDriveObject& drive) {
        return p.f32 ? nmrnn_rollout_call<float>(p, opt, drive)
                     : nmrnn_rollout_call<double>(p, opt, drive);
      },
      py::arg("params"), py::arg("options"), py::arg("drive"),
      "NM-RNN rollout (params: NMRNNParams, options: NMRNNOptions, drive: NMRNNDrive). Returns "
      "x, r: (T, B, n), z: (T, B, n_mod), s: (T, B, rank), y: (T, B, n_out).");
  m.def(
      "nmrnn_loss_and_grad",
      [](const NMRNNParamsObject& p, const NMRNNOptions& opt, const NMRNNDriveObject& drive,
         const py::object& loss, const py::object& target, const py::object& mask) {
        return p.f32 ? nmrnn_loss_and_grad_call<float>(p, opt, drive, loss, target, mask)
                     : nmrnn_loss_and_grad_call<double>(p, opt, drive, loss, target, mask);
      },
      py::arg("params"), py::arg("options"), py::arg("drive"), py::arg("loss"), py::arg("target"),
      py::arg("mask"),
      "NM-RNN forward + loss + BPTT. Arguments as nmrnn_rollout plus the loss (Loss or its "
      "name; see rate_loss_and_grad). Returns (loss, grads, y): grads keyed by parameter name, "
      "x0 (B, n) and z0 (B, n_mod) per trial, W_zx only with feedback.");
}

}  // namespace flexrnn::py_bind
