#include "flexrnn/lstm.hpp"

#include "common.hpp"
#include "loss.hpp"

namespace flexrnn::py_bind {
namespace {

template <class S>
struct LSTMArgs {
  LSTMParams<S> p;
  LSTMDrive<S> drive;
  Index T, B, n, n_in, n_out;
};

// Checks every array against the sizes read off u and C.
template <class S>
LSTMArgs<S> lstm_args(const Arr<S>& W_ih, const Arr<S>& W_hh, const Arr<S>& b, const Arr<S>& C,
                      const Arr<S>& d, const Arr<S>& u, const Arr<S>& h0, const Arr<S>& c0) {
  const CTensor3<S> uv = view(u, "u");
  const CMatMap<S> Cm = mat(C, "C");
  const Index n = Cm.cols(), n_out = Cm.rows();
  checked(W_ih, {4 * n, uv.N}, "W_ih");
  checked(W_hh, {4 * n, n}, "W_hh");
  checked(b, {4 * n}, "b");
  checked(d, {n_out}, "d");
  return {LSTMParams<S>{mat(W_ih, "W_ih"), mat(W_hh, "W_hh"), b.data(), Cm, d.data()},
          LSTMDrive<S>{uv, checked(h0, {uv.B, n}, "h0"), checked(c0, {uv.B, n}, "c0")},
          uv.T, uv.B, n, uv.N, n_out};
}

template <class S>
void register_dtype(py::module_& m) {
  m.def(
      "lstm_rollout",
      [](const Arr<S>& W_ih, const Arr<S>& W_hh, const Arr<S>& b, const Arr<S>& C,
         const Arr<S>& d, const Arr<S>& u, const Arr<S>& h0, const Arr<S>& c0) {
        const auto a = lstm_args<S>(W_ih, W_hh, b, C, d, u, h0, c0);
        Arr<S> h = empty3<S>(a.T, a.B, a.n), c = empty3<S>(a.T, a.B, a.n);
        Arr<S> y = empty3<S>(a.T, a.B, a.n_out);
        const LSTMTrajectory<S> out{view(h), view(c), view(y)};
        {
          const LongCall call;
          rollout(a.p, a.drive, out);
        }
        return py::make_tuple(h, c, y);
      },
      py::arg("W_ih"), py::arg("W_hh"), py::arg("b"), py::arg("C"), py::arg("d"), py::arg("u"),
      py::arg("h0"), py::arg("c0"),
      "LSTM rollout. u: (T, B, n_in), h0, c0: (B, n). Returns h, c: (T, B, n), y: (T, B, "
      "n_out).");
  m.def(
      "lstm_loss_and_grad",
      [](const Arr<S>& W_ih, const Arr<S>& W_hh, const Arr<S>& b, const Arr<S>& C,
         const Arr<S>& d, const Arr<S>& u, const Arr<S>& h0, const Arr<S>& c0,
         const py::object& loss, const py::object& target, const py::object& mask) {
        const auto a = lstm_args<S>(W_ih, W_hh, b, C, d, u, h0, c0);
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
      },
      py::arg("W_ih"), py::arg("W_hh"), py::arg("b"), py::arg("C"), py::arg("d"), py::arg("u"),
      py::arg("h0"), py::arg("c0"), py::arg("loss"), py::arg("target"), py::arg("mask"),
      "LSTM forward + loss + BPTT. Arguments as lstm_rollout plus the loss (see "
      "rate_rnn_loss_and_grad). Returns (loss, grads, y): grads keyed W_ih, W_hh, b, C, d, and "
      "h0, c0 per trial (B, n).");
}

}  // namespace

void register_lstm(py::module_& m) {
  register_dtype<double>(m);
  register_dtype<float>(m);
}

}  // namespace flexrnn::py_bind
