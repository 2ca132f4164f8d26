// Interrupting long calls (Ctrl-C). The library knows nothing of Python: whoever embeds it
// installs a hook that says whether the running call should stop (the Python bindings ask
// for a pending signal), and opens an InterruptScope around each long call.
//
// Kernels put an InterruptPoint in their loops and call it with the work done since the last
// call (multiply-adds, roughly). Any thread may call it: it throws Interrupted once the call
// is to stop. Only the thread that opened the scope ever runs the hook, and only when the
// work since its last look at the clock exceeds kWorkPerClockRead and kPollInterval has
// passed since the last poll: the cost is one branch per call and a clock read per ~1e5
// multiply-adds. The other threads only read the call's stop flag, which for_each_chunk and
// for_each_member (parallel.hpp) hand to the threads of their parallel regions; they also
// leave their loops early once it is set and throw Interrupted on the calling thread.
#pragma once

#include <atomic>
#include <chrono>
#include <exception>

namespace flexrnn {

// Thrown by a long call that was asked to stop; the call leaves its outputs undefined and
// (where the kernel documents it) arrays updated in place partly updated: callers restore
// those (the Python bindings do, so that an interrupted call changes nothing).
class Interrupted : public std::exception {
 public:
  const char* what() const noexcept override { return "flexrnn: the call was interrupted"; }
};

// Returns true when the running call should stop. Called on the thread that opened the
// call's InterruptScope, at most every kPollInterval, never from two threads at once.
using InterruptHook = bool (*)();
void set_interrupt_hook(InterruptHook hook);  // null: calls are never interrupted
InterruptHook interrupt_hook();

inline constexpr std::chrono::milliseconds kPollInterval{50};
inline constexpr double kWorkPerClockRead = 1e5;

namespace detail {

struct InterruptState {
  std::atomic<bool> stop{false};
  InterruptHook hook = nullptr;
  std::chrono::steady_clock::time_point next_poll;
};

// The call a thread works for, and whether this thread opened it (and so may poll).
struct InterruptContext {
  InterruptState* state = nullptr;
  bool owner = false;
};

inline InterruptContext& interrupt_context() {
  thread_local InterruptContext context;
  return context;
}

// Runs the hook if the poll interval has passed; true once the call is to stop.
bool interrupt_poll(InterruptState& state);

// Installs the calling thread's context on a thread of a parallel region for its lifetime
// (nothing on the calling thread itself, or when the thread already works for that call).
class InterruptBinding {
 public:
  explicit InterruptBinding(const InterruptContext& caller) : saved_(interrupt_context()) {
    if (caller.state && saved_.state != caller.state) {
      interrupt_context() = InterruptContext{caller.state, false};
      bound_ = true;
    }
  }
  ~InterruptBinding() {
    if (bound_) interrupt_context() = saved_;
  }
  InterruptBinding(const InterruptBinding&) = delete;
  InterruptBinding& operator=(const InterruptBinding&) = delete;

 private:
  InterruptContext saved_;
  bool bound_ = false;
};

}  // namespace detail

// Makes the calls made on this thread while it lives interruptible through the hook (if one
// is installed). Inside another scope on the same thread it only joins that one.
class InterruptScope {
 public:
  InterruptScope() {
    detail::InterruptContext& context = detail::interrupt_context();
    if (context.state) return;
    state_.hook = interrupt_hook();
    state_.next_poll = std::chrono::steady_clock::now() + kPollInterval;
    context = detail::InterruptContext{&state_, true};
    opened_ = true;
  }
  ~InterruptScope() {
    if (opened_) detail::interrupt_context() = detail::InterruptContext{};
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  detail::InterruptState state_;
  bool opened_ = false;
};

// True once the call this thread works for is to stop (false outside any scope).
inline bool interrupt_requested() {
  const detail::InterruptState* state = detail::interrupt_context().state;
  return state && state->stop.load(std::memory_order_relaxed);
}

// A kernel loop's view of the call's interruption state, made on the thread that runs the
// loop (it reads that thread's context once).
class InterruptPoint {
 public:
  InterruptPoint() : context_(detail::interrupt_context()) {}
  // `work`: multiply-adds (roughly) since the last call. Throws Interrupted once the call is
  // to stop.
  void operator()(double work) {
    if (!context_.state) return;
    if (context_.state->stop.load(std::memory_order_relaxed)) throw Interrupted();
    if (!context_.owner) return;
    work_ += work + 1.0;
    if (work_ < kWorkPerClockRead) return;
    work_ = 0.0;
    if (detail::interrupt_poll(*context_.state)) throw Interrupted();
  }

 private:
  detail::InterruptContext context_;
  double work_ = 0.0;
};

}  // namespace flexrnn
