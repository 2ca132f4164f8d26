#include "flexrnn/rate_rnn.hpp"

#include "common.hpp"
#include "loss.hpp"

namespace flexrnn::py_bind {
namespace {

template <class S>
struct RateArgs {
  RateOptions opt;
  RateDrive<S> drive;
  Index T, B, n, n_in, n_out;
};

// Checks the per-run arrays against the weights' sizes and fills the options.
template <class S>
RateArgs<S> rate_args(Index n, Index n_out, const Arr<S>& W_in, const Arr<S>& b,
                      const Arr<S>& W_out, const Arr<S>& b_out, const Arr<S>& u, const Arr<S>& x0,
                      const std::optional<Arr<S>>& gain, double gain_scalar,
                      const std::optional<Arr<S>>& neuron_gain, double alpha,
                      const std::string& phi, const std::string& form,
                      const std::string& readout, double noise_std, std::uint64_t seed) {
  RateArgs<S> a;
  a.n = n;
  a.n_out = n_out;
  a.drive.u = view(u, "u");
  a.T = a.drive.u.T;
  a.B = a.drive.u.B;
  a.n_in = a.drive.u.N;
  checked(W_in, {n, a.n_in}, "W_in");
  checked(b, {n}, "b");
  checked(W_out, {n_out, n}, "W_out");
  checked(b_out, {n_out}, "b_out");
  a.drive.x0 = checked(x0, {a.B, n}, "x0");
  a.drive.gain = checked(gain, {a.T, a.B}, "gain");
  a.drive.gain_scalar = S(gain_scalar);
  a.drive.neuron_gain = checked(neuron_gain, {n}, "neuron_gain");
  a.opt.alpha = alpha;
  a.opt.phi = phi_from_name(phi);
  a.opt.form = form_from_name(form);
  a.opt.readout = readout_from_name(readout);
  a.opt.noise_std = noise_std;
  a.opt.seed = seed;
  return a;
}

template <class S, class Params>
py::tuple run(const Params& params, const RateArgs<S>& a) {
  Arr<S> x = empty3<S>(a.T, a.B, a.n), r = empty3<S>(a.T, a.B, a.n);
  Arr<S> y = empty3<S>(a.T, a.B, a.n_out);
  const RateTrajectory<S> out{view(x), view(r), view(y)};
  {
    const LongCall call;
    rollout(params, a.opt, a.drive, out);
  }
  return py::make_tuple(x, r, y);
}

// Forward, loss and gradients. grads: the recurrent arrays' names (W, or U and V) first.
using NamedShapes = std::vector<std::pair<const char*, std::vector<py::ssize_t>>>;

template <class S, class Params>
py::tuple loss_and_grad_run(const Params& params, const RateArgs<S>& a, const NamedShapes& rec,
                            const std::string& loss, const py::object& target,
                            const py::object& mask) {
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
  double value;
  {
    const LongCall call;
    value = loss_and_grad(params, a.opt, a.drive, L.spec, tr, g);
  }
  return py::make_tuple(value, grads, y);
}

template <class S>
void register_dtype(py::module_& m) {
  m.def(
      "rate_rnn_rollout",
      [](const Arr<S>& W, const Arr<S>& W_in, const Arr<S>& b, const Arr<S>& W_out,
         const Arr<S>& b_out, const Arr<S>& u, const Arr<S>& x0,
         const std::optional<Arr<S>>& gain, double gain_scalar,
         const std::optional<Arr<S>>& neuron_gain, double alpha, const std::string& phi,
         const std::string& form, const std::string& readout, double noise_std,
         std::uint64_t seed) {
        const CMatMap<S> Wm = mat(W, "W");
        if (Wm.rows() != Wm.cols()) throw py::value_error("W: expected a square (n, n) matrix");
        const auto a = rate_args<S>(Wm.rows(), W_out.ndim() ? W_out.shape(0) : 0, W_in, b, W_out,
                                    b_out, u, x0, gain, gain_scalar, neuron_gain, alpha, phi,
                                    form, readout, noise_std, seed);
        const RateRNNParams<S> p{Wm, mat(W_in, "W_in"), b.data(), mat(W_out, "W_out"),
                                 b_out.data()};
        return run(p, a);
      },
      py::arg("W"), py::arg("W_in"), py::arg("b"), py::arg("W_out"), py::arg("b_out"),
      py::arg("u"), py::arg("x0"), py::arg("gain"), py::arg("gain_scalar"),
      py::arg("neuron_gain"), py::arg("alpha"), py::arg("phi"), py::arg("form"),
      py::arg("readout"), py::arg("noise_std"), py::arg("seed"),
      "RateRNN rollout. u: (T, B, n_in), x0: (B, n), gain: (T, B) or None (then gain_scalar), "
      "neuron_gain: (n,) or None. Returns x, r: (T, B, n) and y: (T, B, n_out), the state after "
      "each step.");
  m.def(
      "low_rank_rnn_rollout",
      [](const Arr<S>& U, const Arr<S>& V, const Arr<S>& W_in, const Arr<S>& b,
         const Arr<S>& W_out, const Arr<S>& b_out, const Arr<S>& u, const Arr<S>& x0,
         const std::optional<Arr<S>>& gain, double gain_scalar,
         const std::optional<Arr<S>>& neuron_gain, double alpha, const std::string& phi,
         const std::string& form, const std::string& readout, double noise_std,
         std::uint64_t seed) {
        const CMatMap<S> Um = mat(U, "U");
        checked(V, {Um.rows(), Um.cols()}, "V");
        const auto a = rate_args<S>(Um.rows(), W_out.ndim() ? W_out.shape(0) : 0, W_in, b, W_out,
                                    b_out, u, x0, gain, gain_scalar, neuron_gain, alpha, phi,
                                    form, readout, noise_std, seed);
        const LowRankRNNParams<S> p{Um, mat(V, "V"), mat(W_in, "W_in"), b.data(),
                                    mat(W_out, "W_out"), b_out.data()};
        return run(p, a);
      },
      py::arg("U"), py::arg("V"), py::arg("W_in"), py::arg("b"), py::arg("W_out"),
      py::arg("b_out"), py::arg("u"), py::arg("x0"), py::arg("gain"), py::arg("gain_scalar"),
      py::arg("neuron_gain"), py::arg("alpha"), py::arg("phi"), py::arg("form"),
      py::arg("readout"), py::arg("noise_std"), py::arg("seed"),
      "LowRankRNN rollout with W = U V^T / n (U, V: (n, rank)); otherwise as rate_rnn_rollout.");
  m.def(
      "rate_rnn_loss_and_grad",
      [](const Arr<S>& W, const Arr<S>& W_in, const Arr<S>& b, const Arr<S>& W_out,
         const Arr<S>& b_out, const Arr<S>& u, const Arr<S>& x0,
         const std::optional<Arr<S>>& gain, double gain_scalar,
         const std::optional<Arr<S>>& neuron_gain, double alpha, const std::string& phi,
         const std::string& form, const std::string& readout, double noise_std,
         std::uint64_t seed, const std::string& loss, const py::object& target,
         const py::object& mask) {
        const CMatMap<S> Wm = mat(W, "W");
        if (Wm.rows() != Wm.cols()) throw py::value_error("W: expected a square (n, n) matrix");
        const auto a = rate_args<S>(Wm.rows(), W_out.ndim() ? W_out.shape(0) : 0, W_in, b, W_out,
                                    b_out, u, x0, gain, gain_scalar, neuron_gain, alpha, phi,
                                    form, readout, noise_std, seed);
        const RateRNNParams<S> p{Wm, mat(W_in, "W_in"), b.data(), mat(W_out, "W_out"),
                                 b_out.data()};
        return loss_and_grad_run(p, a, {{"W", {a.n, a.n}}}, loss, target, mask);
      },
      py::arg("W"), py::arg("W_in"), py::arg("b"), py::arg("W_out"), py::arg("b_out"),
      py::arg("u"), py::arg("x0"), py::arg("gain"), py::arg("gain_scalar"),
      py::arg("neuron_gain"), py::arg("alpha"), py::arg("phi"), py::arg("form"),
      py::arg("readout"), py::arg("noise_std"), py::arg("seed"), py::arg("loss"),
      py::arg("target"), py::arg("mask"),
      "RateRNN forward + loss + BPTT. Arguments as rate_rnn_rollout, plus loss ('mse': target, "
      "mask (T, B, n_out); 'cross_entropy': integer labels (T, B), mask (T, B)). Returns (loss, "
      "grads, y): grads keyed W, W_in, b, W_out, b_out, x0 (per trial, (B, n)).");
  m.def(
      "low_rank_rnn_loss_and_grad",
      [](const Arr<S>& U, const Arr<S>& V, const Arr<S>& W_in, const Arr<S>& b,
         const Arr<S>& W_out, const Arr<S>& b_out, const Arr<S>& u, const Arr<S>& x0,
         const std::optional<Arr<S>>& gain, double gain_scalar,
         const std::optional<Arr<S>>& neuron_gain, double alpha, const std::string& phi,
         const std::string& form, const std::string& readout, double noise_std,
         std::uint64_t seed, const std::string& loss, const py::object& target,
         const py::object& mask) {
        const CMatMap<S> Um = mat(U, "U");
        checked(V, {Um.rows(), Um.cols()}, "V");
        const auto a = rate_args<S>(Um.rows(), W_out.ndim() ? W_out.shape(0) : 0, W_in, b, W_out,
                                    b_out, u, x0, gain, gain_scalar, neuron_gain, alpha, phi,
                                    form, readout, noise_std, seed);
        const LowRankRNNParams<S> p{Um, mat(V, "V"), mat(W_in, "W_in"), b.data(),
                                    mat(W_out, "W_out"), b_out.data()};
        const std::vector<py::ssize_t> shape{Um.rows(), Um.cols()};
        return loss_and_grad_run(p, a, {{"U", shape}, {"V", shape}}, loss, target, mask);
      },
      py::arg("U"), py::arg("V"), py::arg("W_in"), py::arg("b"), py::arg("W_out"),
      py::arg("b_out"), py::arg("u"), py::arg("x0"), py::arg("gain"), py::arg("gain_scalar"),
      py::arg("neuron_gain"), py::arg("alpha"), py::arg("phi"), py::arg("form"),
      py::arg("readout"), py::arg("noise_std"), py::arg("seed"), py::arg("loss"),
      py::arg("target"), py::arg("mask"),
      "LowRankRNN forward + loss + BPTT; as rate_rnn_loss_and_grad with grads U, V instead of W.");
}

}  // namespace

void register_rate_rnn(py::module_& m) {
  register_dtype<double>(m);
  register_dtype<float>(m);
}

}  // namespace flexrnn::py_bind
