// Ctrl-C in long calls: the hook the core polls (interrupt.hpp) asks Python for pending
// signals, and flexrnn::Interrupted becomes the error the signal's handler raised
// (KeyboardInterrupt for SIGINT's default handler).
#include "common.hpp"

namespace flexrnn::py_bind {
namespace {

unsigned long main_thread = 0;  // Python's main thread: the only one that runs signal handlers

// The error a signal handler raised during a kernel call on this thread, until the call's
// Interrupted is translated (on the same thread).
struct PendingError {
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* traceback = nullptr;
};
thread_local PendingError pending;

void discard(PendingError& e) {
  Py_XDECREF(e.type);
  Py_XDECREF(e.value);
  Py_XDECREF(e.traceback);
  e = PendingError{};
}

bool python_signal_pending() {
  if (PyThread_get_thread_ident() != main_thread) return false;
  py::gil_scoped_acquire acquire;
  if (PyErr_CheckSignals() == 0) return false;
  discard(pending);
  PyErr_Fetch(&pending.type, &pending.value, &pending.traceback);
  return true;
}

}  // namespace

void discard_pending_interrupt() {
  if (pending.type) discard(pending);
}

void register_interrupt(py::module_& m) {
  main_thread = py::module_::import("threading")
                    .attr("main_thread")()
                    .attr("ident")
                    .cast<unsigned long>();
  set_interrupt_hook(&python_signal_pending);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Interrupted&) {
      if (pending.type) {
        PyErr_Restore(pending.type, pending.value, pending.traceback);
        pending = PendingError{};
      } else {
        PyErr_SetNone(PyExc_KeyboardInterrupt);
      }
    }
  });
  m.def(
      "interrupt_poll_interval",
      [] { return std::chrono::duration<double>(kPollInterval).count(); },
      "Seconds between two looks for pending signals (Ctrl-C) in a long call.");
}

}  // namespace flexrnn::py_bind
