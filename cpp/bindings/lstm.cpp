#include "flexrnn/lstm.hpp"

#include "common.hpp"

namespace flexrnn::py_bind {
namespace {

template <class S>
void register_dtype(py::module_& m) {
  m.def(
      "lstm_rollout",
      [](const Arr<S>& W_ih, const Arr<S>& W_hh, const Arr<S>& b, const Arr<S>& C,
         const Arr<S>& d, const Arr<S>& u, const Arr<S>& h0, const Arr<S>& c0) {
        const CTensor3<S> uv = view(u, "u");
        const Index T = uv.T, B = uv.B, n_in = uv.N;
        const CMatMap<S> Cm = mat(C, "C");
        const Index n = Cm.cols(), n_out = Cm.rows();
        checked(W_ih, {4 * n, n_in}, "W_ih");
        checked(W_hh, {4 * n, n}, "W_hh");
        checked(b, {4 * n}, "b");
        checked(d, {n_out}, "d");
        const LSTMParams<S> p{mat(W_ih, "W_ih"), mat(W_hh, "W_hh"), b.data(), Cm, d.data()};
        const LSTMDrive<S> drive{uv, checked(h0, {B, n}, "h0"), checked(c0, {B, n}, "c0")};
        Arr<S> h = empty3<S>(T, B, n), c = empty3<S>(T, B, n), y = empty3<S>(T, B, n_out);
        const LSTMTrajectory<S> out{view(h), view(c), view(y)};
        {
          py::gil_scoped_release release;
          rollout(p, drive, out);
        }
        return py::make_tuple(h, c, y);
      },
      py::arg("W_ih"), py::arg("W_hh"), py::arg("b"), py::arg("C"), py::arg("d"), py::arg("u"),
      py::arg("h0"), py::arg("c0"),
      "LSTM rollout. u: (T, B, n_in), h0, c0: (B, n). Returns h, c: (T, B, n), y: (T, B, "
      "n_out).");
}

}  // namespace

void register_lstm(py::module_& m) {
  register_dtype<double>(m);
  register_dtype<float>(m);
}

}  // namespace flexrnn::py_bind
