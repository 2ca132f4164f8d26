// Threads: the batch is cut into chunks whose size depends on the problem only
// (never on the thread count), and each thread runs whole chunks through all
// time steps. A trial's arithmetic is then identical for any thread count.
#pragma once

#include <exception>
#include <mutex>
#include <optional>

#include "flexrnn/types.hpp"

namespace flexrnn {

void set_num_threads(int n);
int get_num_threads();
bool have_openmp();
bool in_parallel_region();  // true inside an active OpenMP parallel region

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

// Calls body(b0, rows) for each chunk of the batch, in parallel when `work` (the
// call's multiply-adds, roughly) is worth it. Exceptions thrown by body are
// caught on their thread and the first is rethrown here, so none escapes an
// OpenMP region. Chunks do not depend on the thread count, so neither do results.
template <class Body>
void for_each_chunk(Index B, Index rows_per_chunk, double work, Body&& body) {
  const Index n_chunks = (B + rows_per_chunk - 1) / rows_per_chunk;
  // inside another parallel region (one population member per thread) the chunks run on
  // the calling thread
  const bool parallel = n_chunks > 1 && work >= kMinParallelWork && !in_parallel_region();
  std::exception_ptr error;
  std::mutex error_mutex;
#ifdef FLEXRNN_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (parallel)
#endif
  for (Index c = 0; c < n_chunks; ++c) {
    try {
      const Index b0 = c * rows_per_chunk;
      const Index rows = (b0 + rows_per_chunk <= B) ? rows_per_chunk : B - b0;
      body(b0, rows);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }
  (void)parallel;
  if (error) std::rethrow_exception(error);
}

namespace detail {

// Calls body(p, thread_buffers) for p = 0..P-1, one member per thread when `parallel`;
// every thread owns its buffers. The first exception is rethrown on the calling thread.
template <class Buffers, class Make, class Body>
void for_each_member(Index P, bool parallel, Make&& make, Body&& body) {
  std::exception_ptr error;
  std::mutex error_mutex;
#ifdef FLEXRNN_HAVE_OPENMP
#pragma omp parallel if (parallel)
#endif
  {
    // Every thread reaches the worksharing loop (and its barrier) even when its buffers
    // could not be made; it then skips its members, and the error is rethrown below.
    std::optional<Buffers> buffers;
    try {
      buffers.emplace(make());
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
#ifdef FLEXRNN_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (Index p = 0; p < P; ++p) {
      if (!buffers) continue;
      try {
        body(p, *buffers);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  }
  (void)parallel;
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

}  // namespace flexrnn
