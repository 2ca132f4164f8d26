// The only instantiation of the NM-RNN rollout and its loss_and_grad.
#include "flexrnn/nmrnn.hpp"

namespace flexrnn {

template double loss_and_grad(const NMRNNParams<float>&, const NMRNNOptions&,
                              const NMRNNDrive<float>&, const LossSpec<float>&,
                              const NMRNNTrajectory<float>&, const NMRNNGrads<float>&);
template double loss_and_grad(const NMRNNParams<double>&, const NMRNNOptions&,
                              const NMRNNDrive<double>&, const LossSpec<double>&,
                              const NMRNNTrajectory<double>&, const NMRNNGrads<double>&);
template void rollout<float>(const NMRNNParams<float>&, const NMRNNOptions&,
                             const NMRNNDrive<float>&, const NMRNNTrajectory<float>&);
template void rollout<double>(const NMRNNParams<double>&, const NMRNNOptions&,
                              const NMRNNDrive<double>&, const NMRNNTrajectory<double>&);

}  // namespace flexrnn
