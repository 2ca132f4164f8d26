// What this build of flexrnn contains.
#pragma once

#include <string>

namespace flexrnn {

struct BuildInfo {
  std::string version;
  bool openmp;
  bool cuda;
  bool native;        // built with -march=native
  std::string level;  // the instruction-set level of the kernels: "native", "x86-64-v3", ...
  std::string simd;   // Eigen's instruction sets, e.g. "AVX512, FMA"
  std::string eigen;  // Eigen version
  std::string compiler;
};

BuildInfo build_info();

}  // namespace flexrnn
