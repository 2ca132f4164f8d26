// Threads: the batch is cut into chunks whose size depends on the problem only
// (never on the thread count), and each thread runs whole chunks through all
// time steps. A trial's arithmetic is then identical for any thread count.
#pragma once

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "flexrnn/interrupt.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

// The number of threads every parallel region of the library uses at most: one setting for
// the whole process (every thread's calls read it), clamped to the work of each region.
// set_num_threads throws std::invalid_argument unless 1 <= n <= max_num_threads().
void set_num_threads(std::int64_t n);
int get_num_threads();
int max_num_threads();  // 4 x the cores of this machine, at most 1024
bool have_openmp();
bool in_parallel_region();  // true inside an active OpenMP parallel region

// Threads for a region of `items` independent pieces of work: never more than the pieces.
inline int team_size(Index items) {
  const int threads = get_num_threads();
  return items < Index(threads) ? int(items < 1 ? 1 : items) : threads;
}

// Trials per chunk for a batch of B trials of an n-unit network: large enough
// that a chunk's matrix products amortise Eigen's packing of W, and at most
// half the batch, so that any batch of two or more trials spreads over threads.
inline Index batch_chunk_rows(Index B, Index n) {
  const Index target = n >= 256 ? 32 : 8;
  const Index half = (B + 1) / 2;
  return half < 1 ? 1 : (half < target ? half : target);
}

// Below this many multiply-adds in a whole call, chunks run on the calling thread:
// a parallel region's cost, and on a loaded machine the wait for a descheduled
// thread at its closing barrier (a scheduler time slice), would exceed the work.
inline constexpr double kMinParallelWork = 4e5;

namespace detail {

// The first exception of a parallel loop, kept to be rethrown on the calling thread (none
// may escape an OpenMP region). Once one is kept, or the call is interrupted, the remaining
// pieces of work are skipped. An interruption wins over any other error.
class LoopErrors {
 public:
  explicit LoopErrors(const InterruptContext& caller) : caller_(caller) {}
  bool stopped() const {
    return failed_.load(std::memory_order_relaxed) ||
           (caller_.state && caller_.state->stop.load(std::memory_order_relaxed));
  }
  void keep(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = e;
    failed_.store(true, std::memory_order_relaxed);
  }
  void rethrow() const {
    if (caller_.state && caller_.state->stop.load(std::memory_order_relaxed)) throw Interrupted();
    if (error_) std::rethrow_exception(error_);
  }
  const InterruptContext& caller() const { return caller_; }

 private:
  InterruptContext caller_;
  std::exception_ptr error_;
  std::mutex mutex_;
  std::atomic<bool> failed_{false};
};

// Only the calling thread may run the interrupt hook. When it runs out of work in a parallel
// loop while other threads still run long pieces (a NeuroMOP trajectory, a population
// member), it keeps polling until they are done instead of waiting unpolled at the barrier:
// it spins for the first millisecond (the usual case: the others finish at about the same
// time), then sleeps in half-millisecond steps.
inline void poll_while_others_work(const std::atomic<Index>& finished, Index total) {
  const InterruptContext& context = interrupt_context();
  if (!context.owner || !context.state || !context.state->hook) return;
  const auto start = std::chrono::steady_clock::now();
  while (finished.load(std::memory_order_acquire) < total) {
    if (interrupt_poll(*context.state)) return;
    if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1)) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
}

}  // namespace detail

// Calls body(b0, rows) for each chunk of the batch, in parallel when `work` (the
// call's multiply-adds, roughly) is worth it. Exceptions thrown by body are
// caught on their thread and the first is rethrown here, so none escapes an
// OpenMP region. Chunks do not depend on the thread count, so neither do results.
// The call's interruption state (interrupt.hpp) reaches every thread: bodies may use
// InterruptPoint, and the chunks not yet started are skipped once the call is to stop.
template <class Body>
void for_each_chunk(Index B, Index rows_per_chunk, double work, Body&& body) {
  const Index n_chunks = (B + rows_per_chunk - 1) / rows_per_chunk;
  // inside another parallel region (one population member per thread) the chunks run on
  // the calling thread
  const bool parallel = n_chunks > 1 && work >= kMinParallelWork && !in_parallel_region();
  const int team = parallel ? team_size(n_chunks) : 1;
  detail::LoopErrors errors(detail::interrupt_context());
  const double chunk_work = n_chunks > 0 ? work / double(n_chunks) : 0.0;
  std::atomic<Index> finished{0};
#ifdef FLEXRNN_HAVE_OPENMP
#pragma omp parallel num_threads(team) if (parallel)
#endif
  {
    detail::InterruptBinding binding(errors.caller());
    InterruptPoint interruption;
#ifdef FLEXRNN_HAVE_OPENMP
#pragma omp for schedule(static) nowait
#endif
    for (Index c = 0; c < n_chunks; ++c) {
      if (!errors.stopped()) {
        try {
          interruption(chunk_work);
          const Index b0 = c * rows_per_chunk;
          const Index rows = (b0 + rows_per_chunk <= B) ? rows_per_chunk : B - b0;
          body(b0, rows);
        } catch (...) {
          errors.keep(std::current_exception());
        }
      }
      finished.fetch_add(1, std::memory_order_release);
    }
    if (parallel) detail::poll_while_others_work(finished, n_chunks);
  }
  (void)team;
  errors.rethrow();
}

namespace detail {

// Calls body(p, thread_buffers) for p = 0..P-1, one member per thread when `parallel`;
// every thread owns its buffers. The first exception is rethrown on the calling thread.
template <class Buffers, class Make, class Body>
void for_each_member(Index P, bool parallel, Make&& make, Body&& body) {
  LoopErrors errors(interrupt_context());
  const int team = parallel ? team_size(P) : 1;
  std::atomic<Index> finished{0};
#ifdef FLEXRNN_HAVE_OPENMP
#pragma omp parallel num_threads(team) if (parallel)
#endif
  {
    InterruptBinding binding(errors.caller());
    // Every thread reaches the worksharing loop (and its barrier) even when its buffers
    // could not be made; it then skips its members, and the error is rethrown below.
    std::optional<Buffers> buffers;
    try {
      buffers.emplace(make());
    } catch (...) {
      errors.keep(std::current_exception());
    }
#ifdef FLEXRNN_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1) nowait
#endif
    for (Index p = 0; p < P; ++p) {
      if (buffers && !errors.stopped()) {
        try {
          body(p, *buffers);
        } catch (...) {
          errors.keep(std::current_exception());
        }
      }
      finished.fetch_add(1, std::memory_order_release);
    }
    if (parallel) poll_while_others_work(finished, P);
  }
  (void)team;
  errors.rethrow();
}

}  // namespace detail

}  // namespace flexrnn
