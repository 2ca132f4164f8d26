// The only instantiation of the learning-rule kernels (RLS / FORCE / full-FORCE, genetic
// algorithm, reward-modulated Hebbian).
#include "flexrnn/evolution.hpp"
#include "flexrnn/force.hpp"
#include "flexrnn/hebbian.hpp"

namespace flexrnn {

#define FLEXRNN_LEARNING_INSTANTIATE(S)                                                       \
  template void rls_steps(MatMap<S>, const CMatMap<S>&, S*, S*);                             \
  template std::int64_t force_run(ForceNet<S>&, const ForceOptions&, const CTensor3<S>&,     \
                                  const S*, const S*, S*, const Tensor3<S>&, S*);             \
  template std::int64_t full_force_run(FullForceNet<S>&, const FullForceOptions&,              \
                                       const CTensor3<S>&, const S*, const S*, Index,         \
                                       const S*, S*, const S*, const Tensor3<S>&);            \
  template void population_loss(const Population<S>&, const RateOptions&, const CTensor3<S>&, \
                                const S*, const S*, double*, S*);                             \
  template void mutate_population(const std::vector<const S*>&, const std::vector<S*>&,       \
                                  const std::vector<Index>&, Index, const std::int64_t*,      \
                                  const std::uint8_t*, double, std::uint64_t, std::uint32_t); \
  template void hebbian_run(HebbianNet<S>&, const HebbianOptions&, const CTensor3<S>&,       \
                            const S*, const S*, const std::int64_t*, double*, const Tensor3<S>&, \
                            double*);
FLEXRNN_LEARNING_INSTANTIATE(float)
FLEXRNN_LEARNING_INSTANTIATE(double)
#undef FLEXRNN_LEARNING_INSTANTIATE

}  // namespace flexrnn
