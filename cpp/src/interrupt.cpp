#include "flexrnn/interrupt.hpp"

namespace flexrnn {
namespace {

std::atomic<InterruptHook> hook{nullptr};

}  // namespace

void set_interrupt_hook(InterruptHook h) { hook.store(h); }

InterruptHook interrupt_hook() { return hook.load(); }

namespace detail {

bool interrupt_poll(InterruptState& state) {
  if (state.stop.load(std::memory_order_relaxed)) return true;
  if (!state.hook) return false;
  if (std::chrono::steady_clock::now() < state.next_poll) return false;
  const bool stop = state.hook();
  state.next_poll = std::chrono::steady_clock::now() + kPollInterval;
  if (stop) state.stop.store(true, std::memory_order_relaxed);
  return stop;
}

}  // namespace detail
}  // namespace flexrnn
