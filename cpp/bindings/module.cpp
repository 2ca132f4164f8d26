#include "common.hpp"

PYBIND11_MODULE(_core, m) {
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
