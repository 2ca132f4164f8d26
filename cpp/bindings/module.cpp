#include "common.hpp"
#include "flexrnn/config.hpp"

// The portable build links this module once per instruction-set level (the same binding
// objects with each level's kernels), each as flexrnn/_levels/<level>/_core;
// flexrnn/_dispatch.py imports the one this CPU supports as flexrnn._core.
PYBIND11_MODULE(_core, m) {
  // The instruction-set level of the kernels in this module: "native", "x86-64-v3", ...
  m.attr("build_level") = flexrnn::build_info().level;
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
