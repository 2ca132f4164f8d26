#include "common.hpp"

// CMake compiles this module once per instruction-set level in the portable build, as
// flexrnn._core_<level> (FLEXRNN_MODULE_NAME); flexrnn/_dispatch.py imports one of them as
// flexrnn._core.
#ifndef FLEXRNN_MODULE_NAME
#define FLEXRNN_MODULE_NAME _core
#endif
#ifndef FLEXRNN_BUILD_LEVEL
#define FLEXRNN_BUILD_LEVEL "default"
#endif

PYBIND11_MODULE(FLEXRNN_MODULE_NAME, m) {
  // Classes and functions say they come from flexrnn._core whichever level was compiled
  // (pickles made on one machine load on another), so the name is set before anything is bound.
  m.attr("__name__") = "flexrnn._core";
  // The instruction-set level this module was compiled for: "native", "x86-64-v3", ...
  m.attr("build_level") = FLEXRNN_BUILD_LEVEL;
  m.doc() = "flexrnn's C++ core. Use the Python API (flexrnn.RateRNN, ...): it validates "
            "arguments and converts arrays before calling these functions.";
  using namespace flexrnn::py_bind;
  register_interrupt(m);
  register_buffers(m);
  register_config(m);
  register_random(m);
  register_rate_rnn(m);
  register_nmrnn(m);
  register_lstm(m);
  register_dynamics(m);
  register_learning(m);
  register_mop(m);
}
