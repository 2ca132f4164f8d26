// The loss arguments of every *_loss_and_grad binding: checked, and kept alive for the call.
#pragma once

#include <cstdint>
#include <string>

#include "common.hpp"
#include "enums.hpp"
#include "flexrnn/loss.hpp"

namespace flexrnn::py_bind {

template <class S>
struct LossArgs {
  Arr<S> target, mask;
  py::array_t<std::int64_t, py::array::c_style> labels;
  LossSpec<S> spec;
};

// mse: target and mask (T, B, n_out); cross_entropy: integer labels (T, B) in 0..n_out-1
// wherever mask (T, B) is nonzero.
template <class S>
LossArgs<S> loss_args(LossKind kind, const py::object& target, const py::object& mask, Index T,
                      Index B, Index n_out) {
  LossArgs<S> a;
  a.spec.kind = kind;
  a.spec.T = T;
  a.spec.B = B;
  a.spec.n_out = n_out;
  a.mask = py::cast<Arr<S>>(mask);
  if (a.spec.kind == LossKind::mse) {
    a.target = py::cast<Arr<S>>(target);
    a.spec.target = checked(a.target, {T, B, n_out}, "target");
    a.spec.mask = checked(a.mask, {T, B, n_out}, "mask");
    return a;
  }
  a.labels = py::cast<py::array_t<std::int64_t, py::array::c_style>>(target);
  std::vector<py::ssize_t> got(a.labels.shape(), a.labels.shape() + a.labels.ndim());
  if (got != std::vector<py::ssize_t>{T, B}) {
    throw py::value_error("target: expected integer labels of shape " + shape_str({T, B}) +
                          " for cross_entropy, got " + shape_str(got));
  }
  a.spec.labels = a.labels.data();
  a.spec.mask = checked(a.mask, {T, B}, "mask");
  for (Index i = 0; i < T * B; ++i) {
    if (a.spec.mask[i] != S(0) && (a.spec.labels[i] < 0 || a.spec.labels[i] >= n_out)) {
      throw py::value_error("target: label " + std::to_string(a.spec.labels[i]) +
                            " at a masked-in step is not a class in 0.." +
                            std::to_string(n_out - 1));
    }
  }
  return a;
}

// kind: a Loss value or its name
template <class S>
LossArgs<S> loss_args(const py::object& kind, const py::object& target, const py::object& mask,
                      Index T, Index B, Index n_out) {
  return loss_args<S>(enum_arg<LossKind>(kind, &loss_from_name, "loss"), target, mask, T, B,
                      n_out);
}

template <class S>
Arr<S> zeros(std::vector<py::ssize_t> shape) {
  Arr<S> a(shape);
  std::fill(a.mutable_data(), a.mutable_data() + a.size(), S(0));
  return a;
}

}  // namespace flexrnn::py_bind
