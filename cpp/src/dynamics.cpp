// The only instantiation of the dynamics kernels (fixed points, Jacobians, Lyapunov spectra).
#include "flexrnn/dynamics.hpp"

namespace flexrnn {

#define FLEXRNN_DYNAMICS_INSTANTIATE(S, P)                                                    \
  template void minimize_q(const P<S>&, const MapSpec<S>&, const FixedPointOptions&, S*, Index, \
                           S*, std::int32_t*);                                               \
  template void map_at(const P<S>&, const MapSpec<S>&, const S*, Index, S*, S*, S*, S*);     \
  template void lyapunov_spectrum(const P<S>&, const MapSpec<S>&, const S*, const S*, Index,  \
                                  const LyapunovOptions&, S*);
FLEXRNN_DYNAMICS_INSTANTIATE(float, RateRNNParams)
FLEXRNN_DYNAMICS_INSTANTIATE(double, RateRNNParams)
FLEXRNN_DYNAMICS_INSTANTIATE(float, LowRankRNNParams)
FLEXRNN_DYNAMICS_INSTANTIATE(double, LowRankRNNParams)
FLEXRNN_DYNAMICS_INSTANTIATE(float, NMRNNParams)
FLEXRNN_DYNAMICS_INSTANTIATE(double, NMRNNParams)
#undef FLEXRNN_DYNAMICS_INSTANTIATE

}  // namespace flexrnn
