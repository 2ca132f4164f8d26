// The only instantiation of the NeuroMOP kernels (rollouts, evaluation, value fitting).
#include "flexrnn/mop.hpp"

namespace flexrnn {

#define FLEXRNN_MOP_DEFINE
FLEXRNN_MOP_TEMPLATES(FLEXRNN_MOP_DEFINE, float)
FLEXRNN_MOP_TEMPLATES(FLEXRNN_MOP_DEFINE, double)
#undef FLEXRNN_MOP_DEFINE

}  // namespace flexrnn
