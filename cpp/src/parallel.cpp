#include "flexrnn/parallel.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>

#ifdef FLEXRNN_HAVE_OPENMP
#include <omp.h>
#endif

namespace flexrnn {
namespace {

int cores() {
#ifdef FLEXRNN_HAVE_OPENMP
  const int n = omp_get_num_procs();
#else
  const int n = static_cast<int>(std::thread::hardware_concurrency());
#endif
  return std::max(n, 1);
}

// 0 until first read: then OpenMP's default (OMP_NUM_THREADS, else the cores), bounded.
std::atomic<int> threads{0};

}  // namespace

int max_num_threads() { return std::min(4 * cores(), 1024); }

void set_num_threads(std::int64_t n) {
  const int limit = max_num_threads();
  if (n < 1 || n > limit) {
    throw std::invalid_argument("n: the number of threads must be in 1.." +
                                std::to_string(limit) + " (4 x the " + std::to_string(cores()) +
                                " cores of this machine, at most 1024), got " +
                                std::to_string(n));
  }
  threads.store(static_cast<int>(n));
}

int get_num_threads() {
  int n = threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
#ifdef FLEXRNN_HAVE_OPENMP
  n = std::clamp(omp_get_max_threads(), 1, max_num_threads());
#else
  n = 1;
#endif
  int expected = 0;
  threads.compare_exchange_strong(expected, n);
  return threads.load();
}

bool in_parallel_region() {
#ifdef FLEXRNN_HAVE_OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

bool have_openmp() {
#ifdef FLEXRNN_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace flexrnn
