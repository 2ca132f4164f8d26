#include "flexrnn/parallel.hpp"

#ifdef FLEXRNN_HAVE_OPENMP
#include <omp.h>
#endif

namespace flexrnn {

void set_num_threads(int n) {
#ifdef FLEXRNN_HAVE_OPENMP
  omp_set_num_threads(n < 1 ? 1 : n);
#else
  (void)n;
#endif
}

int get_num_threads() {
#ifdef FLEXRNN_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
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
