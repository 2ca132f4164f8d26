// The objects a rate network (RateRNN, LowRankRNN) crosses the boundary as: its parameters
// (RateRNNParams, LowRankRNNParams), its options (flexrnn::RateOptions, bound as it is) and
// one run's drive (RateDrive). The parameter and drive objects keep references to the NumPy
// arrays they were built from (no copies) and hand the kernels Eigen maps of them; their
// shapes are checked when built and again at every call (an array's shape can be reassigned
// in place), their values (finite) at every call, since training updates them in place.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "flexrnn/rate_rnn.hpp"

namespace flexrnn::py_bind {

// Parameters of a RateRNN (recurrent: W) or of a LowRankRNN (recurrent: U, V).
struct RateParamsObject : HeldArrays {
  bool low_rank = false;
  bool f32 = false;
  py::array W, U, V, W_in, b, W_out, b_out;  // W unset for a LowRankRNN, U and V for a RateRNN
  Index n = 0, n_in = 0, n_out = 0;

  // Shapes of every array against each other; with finite, also their values.
  template <class S>
  void check(bool finite) const {
    const char* first = low_rank ? "U" : "W";
    const Arr<S> R = a<S>(low_rank ? U : W);
    if (R.ndim() != 2) throw py::value_error(std::string(first) + ": expected a 2-d array");
    const Index n_ = R.shape(0);
    if (low_rank) {
      checked(a<S>(U), {n_, R.shape(1)}, "U", finite);
      checked(a<S>(V), {n_, R.shape(1)}, "V", finite);
    } else {
      if (R.shape(1) != n_) throw py::value_error("W: expected a square (n, n) matrix");
      checked(a<S>(W), {n_, n_}, "W", finite);
    }
    const Arr<S> Win = a<S>(W_in);
    if (Win.ndim() != 2) throw py::value_error("W_in: expected a 2-d array");
    checked(Win, {n_, Win.shape(1)}, "W_in", finite);
    checked(a<S>(b), {n_}, "b", finite);
    const Arr<S> Wout = a<S>(W_out);
    if (Wout.ndim() != 2) throw py::value_error("W_out: expected a 2-d array");
    checked(Wout, {Wout.shape(0), n_}, "W_out", finite);
    checked(a<S>(b_out), {Wout.shape(0)}, "b_out", finite);
  }

  template <class S>
  void set(const Arr<S>& W_in_, const Arr<S>& b_, const Arr<S>& W_out_, const Arr<S>& b_out_) {
    f32 = std::is_same_v<S, float>;
    W_in = W_in_;
    b = b_;
    W_out = W_out_;
    b_out = b_out_;
    check<S>(false);
    n = a<S>(low_rank ? U : W).shape(0);
    n_in = W_in.shape(1);
    n_out = W_out.shape(0);
  }

  // The kernel's view of the arrays, checked (shapes and values) for this call.
  template <class S>
  RateRNNParams<S> dense() const {
    check<S>(true);
    return {map<S>(W), map<S>(W_in), a<S>(b).data(), map<S>(W_out), a<S>(b_out).data()};
  }
  template <class S>
  LowRankRNNParams<S> factors() const {
    check<S>(true);
    return {map<S>(U), map<S>(V), map<S>(W_in), a<S>(b).data(), map<S>(W_out), a<S>(b_out).data()};
  }
};

// A per-neuron gain argument, (n,) or (T or 1, B or 1, n), as the kernel's NeuronGains.
template <class S>
NeuronGains<S> neuron_gains(const std::optional<py::array>& g, Index T, Index B, Index n,
                            const char* name) {
  if (!g) return {};
  const Arr<S> a = HeldArrays::a<S>(*g);
  const std::vector<py::ssize_t> got(a.shape(), a.shape() + a.ndim());
  if (a.ndim() == 1) return {checked(a, {n}, name), 0, 0};
  if (a.ndim() == 3 && (got[0] == 1 || got[0] == T) && (got[1] == 1 || got[1] == B) &&
      got[2] == n) {
    require_finite(a, name);
    return {a.data(), got[0] == 1 ? 0 : got[1] * n, got[1] == 1 ? 0 : n};
  }
  throw py::value_error(std::string(name) + ": expected shape (n,) = " + shape_str({n}) +
                        " or (T or 1, B or 1, n) with (T, B, n) = " + shape_str({T, B, n}) +
                        ", got " + shape_str(got));
}

// One run's drive: inputs u (T, B, n_in), initial states x0 (B, n), the recurrent gain
// ((T, B) array or a scalar) and the per-neuron gains neuron_gain (slope of phi), pre_gain
// (sending neurons) and post_gain (receiving neurons), each (n,), (T or 1, B or 1, n) or none.
struct RateDriveObject {
  bool f32 = false;
  py::array u, x0;
  std::optional<py::array> gain, neuron_gain, pre_gain, post_gain;
  double gain_scalar = 1.0;

  template <class S>
  static RateDriveObject make(const Arr<S>& u, const Arr<S>& x0, const std::optional<Arr<S>>& gain,
                              double gain_scalar, const std::optional<Arr<S>>& neuron_gain,
                              const std::optional<Arr<S>>& pre_gain,
                              const std::optional<Arr<S>>& post_gain) {
    RateDriveObject d;
    d.f32 = std::is_same_v<S, float>;
    d.u = u;
    d.x0 = x0;
    if (gain) d.gain = *gain;
    if (neuron_gain) d.neuron_gain = *neuron_gain;
    if (pre_gain) d.pre_gain = *pre_gain;
    if (post_gain) d.post_gain = *post_gain;
    d.gain_scalar = gain_scalar;
    return d;
  }

  // The kernel's drive, checked against the parameters' sizes.
  template <class S>
  flexrnn::RateDrive<S> view(const RateParamsObject& p) const {
    flexrnn::RateDrive<S> d;
    d.u = drive_inputs<S>(u, f32, p.f32, p.n_in, "W_in");
    d.x0 = checked(RateParamsObject::a<S>(x0), {d.u.B, p.n}, "x0");
    if (gain) d.gain = checked(RateParamsObject::a<S>(*gain), {d.u.T, d.u.B}, "gain");
    d.gain_scalar = S(gain_scalar);
    d.neuron_gain = neuron_gains<S>(neuron_gain, d.u.T, d.u.B, p.n, "neuron_gain");
    d.pre_gain = neuron_gains<S>(pre_gain, d.u.T, d.u.B, p.n, "pre_gain");
    d.post_gain = neuron_gains<S>(post_gain, d.u.T, d.u.B, p.n, "post_gain");
    return d;
  }
};

// Registers Phi, Form, Readout, Loss, RateOptions, RateRNNParams, LowRankRNNParams and
// RateDrive (rate_objects.cpp part of rate_rnn.cpp).
void register_rate_objects(py::module_& m);

// An array argument in the parameters' dtype (converted when given in another), kept alive
// by the caller for the call; as_optional gives nullopt for None.
template <class S>
Arr<S> as_arr(const py::object& a) {
  return py::cast<Arr<S>>(a);
}
template <class S>
std::optional<Arr<S>> as_optional(const py::object& a) {
  if (a.is_none()) return std::nullopt;
  return py::cast<Arr<S>>(a);
}

// f(S{}) in the dtype of the parameters.
template <class F>
py::object in_dtype(const RateParamsObject& p, F&& f) {
  return p.f32 ? py::object(f(float{})) : py::object(f(double{}));
}

}  // namespace flexrnn::py_bind
