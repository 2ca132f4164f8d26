#include "flexrnn/config.hpp"

#include <cstdint>

#include "common.hpp"
#include "flexrnn/parallel.hpp"

namespace flexrnn::py_bind {

void register_config(py::module_& m) {
  m.def(
      "build_info",
      [] {
        const BuildInfo info = build_info();
        py::dict d;
        d["version"] = info.version;
        d["openmp"] = info.openmp;
        d["cuda"] = info.cuda;
        d["native"] = info.native;
        d["level"] = info.level;
        d["simd"] = info.simd;
        d["eigen"] = info.eigen;
        d["compiler"] = info.compiler;
        return d;
      },
      "What this build contains: version, openmp, cuda, native, level (the instruction-set "
      "level of the kernels), simd, eigen, compiler.");
  m.def(
      "set_num_threads",
      [](std::int64_t n) { set_num_threads(n); },
      py::arg("n"),
      "Threads every later call uses at most, in every thread of the process: 1 <= n <= "
      "max_num_threads() (ValueError otherwise).");
  m.def("get_num_threads", &get_num_threads, "Threads the calls use at most.");
  m.def("max_num_threads", &max_num_threads,
        "The largest thread count set_num_threads accepts: 4 x the cores, at most 1024.");
}

}  // namespace flexrnn::py_bind
