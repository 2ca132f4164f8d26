#include "flexrnn/config.hpp"

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
        d["simd"] = info.simd;
        d["eigen"] = info.eigen;
        d["compiler"] = info.compiler;
        return d;
      },
      "What this build contains: version, openmp, cuda, native, simd, eigen, compiler.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Number of OpenMP threads for the next rollouts (at least 1).");
  m.def("get_num_threads", &get_num_threads, "Number of OpenMP threads rollouts use.");
}

}  // namespace flexrnn::py_bind
