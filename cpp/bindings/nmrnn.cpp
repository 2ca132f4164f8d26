#include "flexrnn/nmrnn.hpp"

#include "common.hpp"
#include "loss.hpp"

namespace flexrnn::py_bind {
namespace {

template <class S>
struct NMRNNArgs {
  NMRNNParams<S> p;
  NMRNNDrive<S> drive;
  NMRNNOptions opt;
  Index T, B, n, n_in, n_mod, rank, n_out;
};

// Checks every array against the sizes read off u, W_z, U and C.
template <class S>
NMRNNArgs<S> nmrnn_args(const Arr<S>& W_z, const Arr<S>& B_z, const Arr<S>& b_z,
                        const Arr<S>& A_z, const Arr<S>& c_z, const Arr<S>& U, const Arr<S>& V,
                        const Arr<S>& B_x, const Arr<S>& C, const Arr<S>& d,
                        const std::optional<Arr<S>>& W_zx, const Arr<S>& u, const Arr<S>& x0,
                        const Arr<S>& z0, const std::optional<Arr<S>>& s_clamp, double alpha_x,
                        double alpha_z, double n_scale) {
  const CTensor3<S> uv = view(u, "u");
  const CMatMap<S> Wz = mat(W_z, "W_z"), Um = mat(U, "U"), Cm = mat(C, "C");
  const Index T = uv.T, B = uv.B, n_in = uv.N;
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
  if (n_scale == 0.0) throw py::value_error("n_scale: must be nonzero");
  return {NMRNNParams<S>{Wz, mat(B_z, "B_z"), b_z.data(), mat(A_z, "A_z"), c_z.data(), Um,
                         mat(V, "V"), mat(B_x, "B_x"), Cm, d.data(),
                         checked(W_zx, {n_mod, n}, "W_zx")},
          NMRNNDrive<S>{uv, checked(x0, {B, n}, "x0"), checked(z0, {B, n_mod}, "z0"),
                        checked(s_clamp, {rank}, "s_clamp", false)},
          NMRNNOptions{alpha_x, alpha_z, n_scale},
          T, B, n, n_in, n_mod, rank, n_out};
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
void register_dtype(py::module_& m) {
  m.def(
      "nmrnn_rollout",
      [](const Arr<S>& W_z, const Arr<S>& B_z, const Arr<S>& b_z, const Arr<S>& A_z,
         const Arr<S>& c_z, const Arr<S>& U, const Arr<S>& V, const Arr<S>& B_x, const Arr<S>& C,
         const Arr<S>& d, const std::optional<Arr<S>>& W_zx, const Arr<S>& u, const Arr<S>& x0,
         const Arr<S>& z0, const std::optional<Arr<S>>& s_clamp, double alpha_x, double alpha_z,
         double n_scale) {
        const auto a = nmrnn_args<S>(W_z, B_z, b_z, A_z, c_z, U, V, B_x, C, d, W_zx, u, x0, z0,
                                     s_clamp, alpha_x, alpha_z, n_scale);
        NMRNNOutputs<S> out(a);
        {
          const LongCall call;
          rollout(a.p, a.opt, a.drive, out.view());
        }
        return py::make_tuple(out.x, out.r, out.z, out.s, out.y);
      },
      py::arg("W_z"), py::arg("B_z"), py::arg("b_z"), py::arg("A_z"), py::arg("c_z"),
      py::arg("U"), py::arg("V"), py::arg("B_x"), py::arg("C"), py::arg("d"), py::arg("W_zx"),
      py::arg("u"), py::arg("x0"), py::arg("z0"), py::arg("s_clamp"), py::arg("alpha_x"),
      py::arg("alpha_z"), py::arg("n_scale"),
      "NM-RNN rollout. u: (T, B, n_in), x0: (B, n), z0: (B, n_mod), s_clamp: (rank,) with NaN = "
      "free, or None. Returns x, r: (T, B, n), z: (T, B, n_mod), s: (T, B, rank), y: (T, B, "
      "n_out).");
  m.def(
      "nmrnn_loss_and_grad",
      [](const Arr<S>& W_z, const Arr<S>& B_z, const Arr<S>& b_z, const Arr<S>& A_z,
         const Arr<S>& c_z, const Arr<S>& U, const Arr<S>& V, const Arr<S>& B_x, const Arr<S>& C,
         const Arr<S>& d, const std::optional<Arr<S>>& W_zx, const Arr<S>& u, const Arr<S>& x0,
         const Arr<S>& z0, const std::optional<Arr<S>>& s_clamp, double alpha_x, double alpha_z,
         double n_scale, const py::object& loss, const py::object& target,
         const py::object& mask) {
        const auto a = nmrnn_args<S>(W_z, B_z, b_z, A_z, c_z, U, V, B_x, C, d, W_zx, u, x0, z0,
                                     s_clamp, alpha_x, alpha_z, n_scale);
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
      },
      py::arg("W_z"), py::arg("B_z"), py::arg("b_z"), py::arg("A_z"), py::arg("c_z"),
      py::arg("U"), py::arg("V"), py::arg("B_x"), py::arg("C"), py::arg("d"), py::arg("W_zx"),
      py::arg("u"), py::arg("x0"), py::arg("z0"), py::arg("s_clamp"), py::arg("alpha_x"),
      py::arg("alpha_z"), py::arg("n_scale"), py::arg("loss"), py::arg("target"),
      py::arg("mask"),
      "NM-RNN forward + loss + BPTT. Arguments as nmrnn_rollout plus the loss (see "
      "rate_rnn_loss_and_grad). Returns (loss, grads, y): grads keyed by parameter name, x0 "
      "(B, n) and z0 (B, n_mod) per trial, W_zx only with feedback.");
}

}  // namespace

void register_nmrnn(py::module_& m) {
  register_dtype<double>(m);
  register_dtype<float>(m);
}

}  // namespace flexrnn::py_bind
