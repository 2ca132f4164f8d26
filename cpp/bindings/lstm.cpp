#include "flexrnn/lstm.hpp"

#include "common.hpp"
#include "loss.hpp"

namespace flexrnn::py_bind {
namespace {

// An LSTM's parameters as the kernels see them: references to the model's arrays (no copies),
// shapes checked when built and at every call, values at every call.
struct LSTMParamsObject : HeldArrays {
  bool f32 = false;
  py::array W_ih, W_hh, b, C, d;
  Index n = 0, n_in = 0, n_out = 0;

  template <class S>
  void check(bool finite) const {
    const Arr<S> hh = a<S>(W_hh), ih = a<S>(W_ih), Cm = a<S>(C);
    if (hh.ndim() != 2) throw py::value_error("W_hh: expected a 2-d array (4n, n)");
    if (ih.ndim() != 2) throw py::value_error("W_ih: expected a 2-d array (4n, n_in)");
    if (Cm.ndim() != 2) throw py::value_error("C: expected a 2-d array (n_out, n)");
    const Index n_ = hh.shape(1);
    checked(hh, {4 * n_, n_}, "W_hh", finite);
    checked(ih, {4 * n_, ih.shape(1)}, "W_ih", finite);
    checked(a<S>(b), {4 * n_}, "b", finite);
    checked(Cm, {Cm.shape(0), n_}, "C", finite);
    checked(a<S>(d), {Cm.shape(0)}, "d", finite);
  }

  template <class S>
  static LSTMParamsObject make(const Arr<S>& W_ih, const Arr<S>& W_hh, const Arr<S>& b,
                               const Arr<S>& C, const Arr<S>& d) {
    LSTMParamsObject p;
    p.f32 = std::is_same_v<S, float>;
    p.W_ih = W_ih;
    p.W_hh = W_hh;
    p.b = b;
    p.C = C;
    p.d = d;
    p.check<S>(false);
    p.n = W_hh.shape(1);
    p.n_in = W_ih.shape(1);
    p.n_out = C.shape(0);
    return p;
  }

  template <class S>
  LSTMParams<S> view() const {
    check<S>(true);
    return {map<S>(W_ih), map<S>(W_hh), a<S>(b).data(), map<S>(C), a<S>(d).data()};
  }
};

// One run's drive: inputs u (T, B, n_in), initial states h0, c0 (B, n); references to the
// arrays, in one dtype.
struct LSTMDriveObject : HeldArrays {
  bool f32 = false;
  py::array u, h0, c0;

  template <class S>
  static LSTMDriveObject make(const Arr<S>& u, const Arr<S>& h0, const Arr<S>& c0) {
    LSTMDriveObject d;
    d.f32 = std::is_same_v<S, float>;
    d.u = u;
    d.h0 = h0;
    d.c0 = c0;
    return d;
  }

  // The kernel's drive, checked against the parameters' sizes.
  template <class S>
  LSTMDrive<S> view(const LSTMParamsObject& p) const {
    const CTensor3<S> uv = drive_inputs<S>(u, f32, p.f32, p.n_in, "W_ih");
    return {uv, checked(a<S>(h0), {uv.B, p.n}, "h0"), checked(a<S>(c0), {uv.B, p.n}, "c0")};
  }
};

// The kernel's view of one call: the parameters and the drive (checked against them), and the
// sizes of the outputs.
template <class S>
struct LSTMArgs {
  LSTMParams<S> p;
  LSTMDrive<S> drive;
  Index T, B, n, n_in, n_out;
};

template <class S>
LSTMArgs<S> lstm_args(const LSTMParamsObject& p, const LSTMDriveObject& d) {
  const LSTMParams<S> params = p.view<S>();
  const LSTMDrive<S> drive = d.view<S>(p);
  return {params, drive, drive.u.T, drive.u.B, p.n, p.n_in, p.n_out};
}

template <class S>
py::object lstm_rollout_call(const LSTMParamsObject& p, const LSTMDriveObject& drive) {
  const auto a = lstm_args<S>(p, drive);
  Arr<S> h = empty3<S>(a.T, a.B, a.n), c = empty3<S>(a.T, a.B, a.n);
  Arr<S> y = empty3<S>(a.T, a.B, a.n_out);
  const LSTMTrajectory<S> out{view(h), view(c), view(y)};
  {
    const LongCall call;
    rollout(a.p, a.drive, out);
  }
  return py::make_tuple(h, c, y);
}

template <class S>
py::object lstm_loss_and_grad_call(const LSTMParamsObject& p, const LSTMDriveObject& drive,
                                   const py::object& loss, const py::object& target,
                                   const py::object& mask) {
  const auto a = lstm_args<S>(p, drive);
  const LossArgs<S> L = loss_args<S>(loss, target, mask, a.T, a.B, a.n_out);
  Arr<S> h = empty3<S>(a.T, a.B, a.n), c = empty3<S>(a.T, a.B, a.n);
  Arr<S> gates = empty3<S>(a.T, a.B, 4 * a.n), y = empty3<S>(a.T, a.B, a.n_out);
  const LSTMTrajectory<S> tr{view(h), view(c), view(y), view(gates)};
  py::dict grads;
  auto add = [&](const char* name, std::vector<py::ssize_t> shape) {
    Arr<S> arr = zeros<S>(std::move(shape));
    grads[name] = arr;
    return arr.mutable_data();
  };
  LSTMGrads<S> g{};
  g.W_ih = add("W_ih", {4 * a.n, a.n_in});
  g.W_hh = add("W_hh", {4 * a.n, a.n});
  g.b = add("b", {4 * a.n});
  g.C = add("C", {a.n_out, a.n});
  g.d = add("d", {a.n_out});
  g.h0 = add("h0", {a.B, a.n});
  g.c0 = add("c0", {a.B, a.n});
  double value;
  {
    const LongCall call;
    value = loss_and_grad(a.p, a.drive, L.spec, tr, g);
  }
  return py::make_tuple(value, grads, y);
}

}  // namespace

void register_lstm(py::module_& m) {
  py::class_<LSTMParamsObject>(m, "LSTMParams",
                               "An LSTM's parameters as the kernels see them: W_ih (4n, n_in), "
                               "W_hh (4n, n), b (4n,), C (n_out, n), d (n_out,), of one dtype, "
                               "C-contiguous, taken as they are (no conversion, no copies).")
      .def(py::init(&LSTMParamsObject::make<double>), py::arg("W_ih").noconvert(),
           py::arg("W_hh").noconvert(), py::arg("b").noconvert(), py::arg("C").noconvert(),
           py::arg("d").noconvert())
      .def(py::init(&LSTMParamsObject::make<float>), py::arg("W_ih").noconvert(),
           py::arg("W_hh").noconvert(), py::arg("b").noconvert(), py::arg("C").noconvert(),
           py::arg("d").noconvert())
      .def_readonly("W_ih", &LSTMParamsObject::W_ih)
      .def_readonly("W_hh", &LSTMParamsObject::W_hh)
      .def_readonly("b", &LSTMParamsObject::b)
      .def_readonly("C", &LSTMParamsObject::C)
      .def_readonly("d", &LSTMParamsObject::d)
      .def_readonly("n", &LSTMParamsObject::n)
      .def_readonly("n_in", &LSTMParamsObject::n_in)
      .def_readonly("n_out", &LSTMParamsObject::n_out);
  py::class_<LSTMDriveObject>(m, "LSTMDrive",
                              "One run of an LSTM: u (T, B, n_in), h0, c0 (B, n), in the "
                              "parameters' dtype. Keeps references to the arrays.")
      .def(py::init(&LSTMDriveObject::make<double>), py::arg("u"), py::arg("h0"), py::arg("c0"))
      .def(py::init(&LSTMDriveObject::make<float>), py::arg("u"), py::arg("h0"), py::arg("c0"))
      .def_readonly("u", &LSTMDriveObject::u)
      .def_readonly("h0", &LSTMDriveObject::h0)
      .def_readonly("c0", &LSTMDriveObject::c0);
  m.def(
      "lstm_rollout",
      [](const LSTMParamsObject& p, const LSTMDriveObject& drive) {
        return p.f32 ? lstm_rollout_call<float>(p, drive) : lstm_rollout_call<double>(p, drive);
      },
      py::arg("params"), py::arg("drive"),
      "LSTM rollout (params: LSTMParams, drive: LSTMDrive). Returns h, c: (T, B, n), y: (T, B, "
      "n_out).");
  m.def(
      "lstm_loss_and_grad",
      [](const LSTMParamsObject& p, const LSTMDriveObject& drive, const py::object& loss,
         const py::object& target, const py::object& mask) {
        return p.f32 ? lstm_loss_and_grad_call<float>(p, drive, loss, target, mask)
                     : lstm_loss_and_grad_call<double>(p, drive, loss, target, mask);
      },
      py::arg("params"), py::arg("drive"), py::arg("loss"), py::arg("target"), py::arg("mask"),
      "LSTM forward + loss + BPTT. Arguments as lstm_rollout plus the loss (Loss or its name; "
      "see rate_loss_and_grad). Returns (loss, grads, y): grads keyed W_ih, W_hh, b, C, d, and "
      "h0, c0 per trial (B, n).");
}

}  // namespace flexrnn::py_bind
