#include "flexrnn/random.hpp"

#include "common.hpp"

namespace flexrnn::py_bind {

void register_random(py::module_& m) {
  m.def(
      "philox_normal",
      [](std::uint64_t seed, std::uint64_t stream, std::uint32_t step, Index n) {
        if (n < 0) throw py::value_error("n: must be >= 0");
        Arr<double> out(std::vector<py::ssize_t>{n});
        philox_normal(seed, stream, step, out.mutable_data(), n);
        return out;
      },
      py::arg("seed"), py::arg("stream"), py::arg("step"), py::arg("n"),
      "n standard normals keyed by (seed, stream, step): the recurrent noise of trial "
      "`stream` at step `step` (docs/internals.md). Returns (n,) float64.");
}

}  // namespace flexrnn::py_bind
