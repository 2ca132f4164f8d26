#include "flexrnn/nmrnn.hpp"

#include "common.hpp"

namespace flexrnn::py_bind {
namespace {

template <class S>
void register_dtype(py::module_& m) {
  m.def(
      "nmrnn_rollout",
      [](const Arr<S>& W_z, const Arr<S>& B_z, const Arr<S>& b_z, const Arr<S>& A_z,
         const Arr<S>& c_z, const Arr<S>& U, const Arr<S>& V, const Arr<S>& B_x, const Arr<S>& C,
         const Arr<S>& d, const std::optional<Arr<S>>& W_zx, const Arr<S>& u, const Arr<S>& x0,
         const Arr<S>& z0, const std::optional<Arr<S>>& s_clamp, double alpha_x, double alpha_z,
         double n_scale) {
        const CTensor3<S> uv = view(u, "u");
        const Index T = uv.T, B = uv.B, n_in = uv.N;
        const CMatMap<S> Wz = mat(W_z, "W_z"), Um = mat(U, "U"), Cm = mat(C, "C");
        const Index n_mod = Wz.rows(), n = Um.rows(), rank = Um.cols(), n_out = Cm.rows();
        checked(W_z, {n_mod, n_mod}, "W_z");
        checked(B_z, {n_mod, n_in}, "B_z");
        checked(b_z, {n_mod}, "b_z");
        checked(A_z, {rank, n_mod}, "A_z");
        checked(c_z, {rank}, "c_z");
        checked(V, {n, rank}, "V");
        checked(B_x, {n, n_in}, "B_x");
        checked(C, {n_out, n}, "C");
        checked(d, {n_out}, "d");
        const NMRNNParams<S> p{Wz,          mat(B_z, "B_z"), b_z.data(), mat(A_z, "A_z"),
                               c_z.data(),  Um,              mat(V, "V"), mat(B_x, "B_x"),
                               Cm,          d.data(),        checked(W_zx, {n_mod, n}, "W_zx")};
        const NMRNNDrive<S> drive{uv, checked(x0, {B, n}, "x0"), checked(z0, {B, n_mod}, "z0"),
                                  checked(s_clamp, {rank}, "s_clamp", false)};
        if (n_scale == 0.0) throw py::value_error("n_scale: must be nonzero");
        const NMRNNOptions opt{alpha_x, alpha_z, n_scale};
        Arr<S> x = empty3<S>(T, B, n), r = empty3<S>(T, B, n), z = empty3<S>(T, B, n_mod);
        Arr<S> s = empty3<S>(T, B, rank), y = empty3<S>(T, B, n_out);
        const NMRNNTrajectory<S> out{view(x), view(r), view(z), view(s), view(y)};
        {
          py::gil_scoped_release release;
          rollout(p, opt, drive, out);
        }
        return py::make_tuple(x, r, z, s, y);
      },
      py::arg("W_z"), py::arg("B_z"), py::arg("b_z"), py::arg("A_z"), py::arg("c_z"),
      py::arg("U"), py::arg("V"), py::arg("B_x"), py::arg("C"), py::arg("d"), py::arg("W_zx"),
      py::arg("u"), py::arg("x0"), py::arg("z0"), py::arg("s_clamp"), py::arg("alpha_x"),
      py::arg("alpha_z"), py::arg("n_scale"),
      "NM-RNN rollout. u: (T, B, n_in), x0: (B, n), z0: (B, n_mod), s_clamp: (rank,) with NaN = "
      "free, or None. Returns x, r: (T, B, n), z: (T, B, n_mod), s: (T, B, rank), y: (T, B, "
      "n_out).");
}

}  // namespace

void register_nmrnn(py::module_& m) {
  register_dtype<double>(m);
  register_dtype<float>(m);
}

}  // namespace flexrnn::py_bind
