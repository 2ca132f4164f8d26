// The only instantiation of the NM-RNN rollout.
#include "flexrnn/nmrnn.hpp"

namespace flexrnn {

template void rollout<float>(const NMRNNParams<float>&, const NMRNNOptions&,
                             const NMRNNDrive<float>&, const NMRNNTrajectory<float>&);
template void rollout<double>(const NMRNNParams<double>&, const NMRNNOptions&,
                              const NMRNNDrive<double>&, const NMRNNTrajectory<double>&);

}  // namespace flexrnn
