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

template <class S>
struct LSTMArgs {
  LSTMParams<S> p;
  LSTMDrive<S> drive;
  Index T, B, n, n_in, n_out;
  Arr<S> u, h0, c0;  // kept alive for the call (converted to the parameters' dtype if need be)
};

// The parameters' view and the drive u (T, B, n_in), h0, c0 (B, n) checked against them.
template <class S>
LSTMArgs<S> lstm_args(const LSTMParamsObject& p, const py::object& u_, const py::object& h0_,
                      const py::object& c0_) {
  LSTMArgs<S> a{p.view<S>(), {}, 0, 0, p.n, p.n_in, p.n_out, py::cast<Arr<S>>(u_),
                py::cast<Arr<S>>(h0_), py::cast<Arr<S>>(c0_)};
  const CTensor3<S> uv = view(a.u, "u");
  if (uv.N != p.n_in) {
    throw py::value_error("u: expected shape (T, B, n_in) with n_in = " + std::to_string(p.n_in) +
                          " (the columns of W_ih), got last axis " + std::to_string(uv.N));
  }
  a.T = uv.T;
  a.B = uv.B;
  a.drive = LSTMDrive<S>{uv, checked(a.h0, {uv.B, p.n}, "h0"), checked(a.c0, {uv.B, p.n}, "c0")};
  return a;
}

template <class S>
py::object lstm_rollout_call(const LSTMParamsObject& p, const py::object& u,
                             const py::object& h0, const py::object& c0) {
  const auto a = lstm_args<S>(p, u, h0, c0);
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
py::object lstm_loss_and_grad_call(const LSTMParamsObject& p, const py::object& u,
                                   const py::object& h0, const py::object& c0,
                                   const py::object& loss, const py::object& target,
                                   const py::object& mask) {
  const auto a = lstm_args<S>(p, u, h0, c0);
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
  m.def(
      "lstm_rollout",
      [](const LSTMParamsObject& p, const py::object& u, const py::object& h0,
         const py::object& c0) {
        return p.f32 ? lstm_rollout_call<float>(p, u, h0, c0)
                     : lstm_rollout_call<double>(p, u, h0, c0);
      },
      py::arg("params"), py::arg("u"), py::arg("h0"), py::arg("c0"),
      "LSTM rollout (params: LSTMParams). u: (T, B, n_in), h0, c0: (B, n). Returns h, c: (T, "
      "B, n), y: (T, B, n_out).");
  m.def(
      "lstm_loss_and_grad",
      [](const LSTMParamsObject& p, const py::object& u, const py::object& h0,
         const py::object& c0, const py::object& loss, const py::object& target,
         const py::object& mask) {
        return p.f32 ? lstm_loss_and_grad_call<float>(p, u, h0, c0, loss, target, mask)
                     : lstm_loss_and_grad_call<double>(p, u, h0, c0, loss, target, mask);
      },
      py::arg("params"), py::arg("u"), py::arg("h0"), py::arg("c0"), py::arg("loss"),
      py::arg("target"), py::arg("mask"),
      "LSTM forward + loss + BPTT. Arguments as lstm_rollout plus the loss (Loss or its name; "
      "see rate_loss_and_grad). Returns (loss, grads, y): grads keyed W_ih, W_hh, b, C, d, and "
      "h0, c0 per trial (B, n).");
}

}  // namespace flexrnn::py_bind
