// The NM-RNN's parameters as one bound object (NMRNNParams): references to the model's arrays
// (no copies), shapes checked when built and at every call, values at every call.
#pragma once

#include <optional>
#include <string>

#include "common.hpp"
#include "flexrnn/nmrnn.hpp"
#include "rate_objects.hpp"

namespace flexrnn::py_bind {

struct NMRNNParamsObject : HeldArrays {
  bool f32 = false;
  py::array W_z, B_z, b_z, A_z, c_z, U, V, B_x, C, d;
  std::optional<py::array> W_zx;
  Index n = 0, rank = 0, n_mod = 0, n_in = 0, n_out = 0;

  // Sizes: n_mod from W_z, n and rank from U, n_in from B_x, n_out from C.
  template <class S>
  void check(bool finite) const {
    for (const auto& [arr, name] : {std::pair{&W_z, "W_z"}, std::pair{&U, "U"},
                                    std::pair{&B_x, "B_x"}, std::pair{&C, "C"}}) {
      if (arr->ndim() != 2) throw py::value_error(std::string(name) + ": expected a 2-d array");
    }
    const Index m = W_z.shape(0), n_ = U.shape(0), r = U.shape(1), ni = B_x.shape(1);
    const Index no = C.shape(0);
    checked(a<S>(W_z), {m, m}, "W_z", finite);
    checked(a<S>(B_z), {m, ni}, "B_z", finite);
    checked(a<S>(b_z), {m}, "b_z", finite);
    checked(a<S>(A_z), {r, m}, "A_z", finite);
    checked(a<S>(c_z), {r}, "c_z", finite);
    checked(a<S>(U), {n_, r}, "U", finite);
    checked(a<S>(V), {n_, r}, "V", finite);
    checked(a<S>(B_x), {n_, ni}, "B_x", finite);
    checked(a<S>(C), {no, n_}, "C", finite);
    checked(a<S>(d), {no}, "d", finite);
    if (W_zx) checked(a<S>(*W_zx), {m, n_}, "W_zx", finite);
  }

  template <class S>
  static NMRNNParamsObject make(const Arr<S>& W_z, const Arr<S>& B_z, const Arr<S>& b_z,
                                const Arr<S>& A_z, const Arr<S>& c_z, const Arr<S>& U,
                                const Arr<S>& V, const Arr<S>& B_x, const Arr<S>& C,
                                const Arr<S>& d, const std::optional<Arr<S>>& W_zx) {
    NMRNNParamsObject p;
    p.f32 = std::is_same_v<S, float>;
    p.W_z = W_z;
    p.B_z = B_z;
    p.b_z = b_z;
    p.A_z = A_z;
    p.c_z = c_z;
    p.U = U;
    p.V = V;
    p.B_x = B_x;
    p.C = C;
    p.d = d;
    if (W_zx) p.W_zx = *W_zx;
    p.check<S>(false);
    p.n_mod = W_z.shape(0);
    p.n = U.shape(0);
    p.rank = U.shape(1);
    p.n_in = B_x.shape(1);
    p.n_out = C.shape(0);
    return p;
  }

  // The kernel's view, checked (shapes and values) for this call.
  template <class S>
  NMRNNParams<S> view() const {
    check<S>(true);
    return {map<S>(W_z), map<S>(B_z), a<S>(b_z).data(), map<S>(A_z), a<S>(c_z).data(),
            map<S>(U),   map<S>(V),   map<S>(B_x),      map<S>(C),   a<S>(d).data(),
            W_zx ? a<S>(*W_zx).data() : nullptr};
  }
};

// One run's drive: inputs u (T, B, n_in), initial states x0 (B, n) and z0 (B, n_mod), the
// clamp s_clamp (rank,) (NaN: free) or none, and the gains of the low-rank recurrent term:
// gain ((T, B) array or a scalar), pre_gain and post_gain ((n,), (T or 1, B or 1, n) or none);
// references to the arrays, in one dtype.
struct NMRNNDriveObject : HeldArrays {
  bool f32 = false;
  py::array u, x0, z0;
  std::optional<py::array> s_clamp, gain, pre_gain, post_gain;
  double gain_scalar = 1.0;

  template <class S>
  static NMRNNDriveObject make(const Arr<S>& u, const Arr<S>& x0, const Arr<S>& z0,
                               const std::optional<Arr<S>>& s_clamp,
                               const std::optional<Arr<S>>& gain, double gain_scalar,
                               const std::optional<Arr<S>>& pre_gain,
                               const std::optional<Arr<S>>& post_gain) {
    NMRNNDriveObject d;
    d.f32 = std::is_same_v<S, float>;
    d.u = u;
    d.x0 = x0;
    d.z0 = z0;
    if (s_clamp) d.s_clamp = *s_clamp;
    if (gain) d.gain = *gain;
    if (pre_gain) d.pre_gain = *pre_gain;
    if (post_gain) d.post_gain = *post_gain;
    d.gain_scalar = gain_scalar;
    return d;
  }

  // The kernel's drive, checked against the parameters' sizes.
  template <class S>
  NMRNNDrive<S> view(const NMRNNParamsObject& p) const {
    const CTensor3<S> uv = drive_inputs<S>(u, f32, p.f32, p.n_in, "B_z and B_x");
    const S* clamp = nullptr;
    if (s_clamp) clamp = checked(a<S>(*s_clamp), {p.rank}, "s_clamp", false);
    NMRNNDrive<S> d;
    d.u = uv;
    d.x0 = checked(a<S>(x0), {uv.B, p.n}, "x0");
    d.z0 = checked(a<S>(z0), {uv.B, p.n_mod}, "z0");
    d.s_clamp = clamp;
    if (gain) d.gain = checked(a<S>(*gain), {uv.T, uv.B}, "gain");
    d.gain_scalar = S(gain_scalar);
    d.pre_gain = neuron_gains<S>(pre_gain, uv.T, uv.B, p.n, "pre_gain");
    d.post_gain = neuron_gains<S>(post_gain, uv.T, uv.B, p.n, "post_gain");
    return d;
  }
};

void register_nmrnn_objects(py::module_& m);

}  // namespace flexrnn::py_bind
