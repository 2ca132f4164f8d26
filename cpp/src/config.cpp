#include "flexrnn/config.hpp"

#include <Eigen/Core>

#include "flexrnn/parallel.hpp"

// CMake names the level the kernels are compiled for (-march=<level>, or "native").
#ifndef FLEXRNN_BUILD_LEVEL
#define FLEXRNN_BUILD_LEVEL "default"
#endif

namespace flexrnn {

BuildInfo build_info() {
  BuildInfo info;
  info.version = FLEXRNN_VERSION_STRING;
  info.openmp = have_openmp();
  info.cuda = false;
#ifdef FLEXRNN_BUILT_NATIVE
  info.native = true;
#else
  info.native = false;
#endif
  info.level = FLEXRNN_BUILD_LEVEL;
  info.simd = Eigen::SimdInstructionSetsInUse();
  info.eigen = std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
               "." + std::to_string(EIGEN_MINOR_VERSION);
#if defined(__clang__)
  info.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  info.compiler = "gcc " __VERSION__;
#else
  info.compiler = "unknown";
#endif
  return info;
}

}  // namespace flexrnn
