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

bool have_openmp() {
#ifdef FLEXRNN_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace flexrnn
