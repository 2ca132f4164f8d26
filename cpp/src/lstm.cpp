// The only instantiation of the LSTM rollout and its loss_and_grad.
#include "flexrnn/lstm.hpp"

namespace flexrnn {

template double loss_and_grad(const LSTMParams<float>&, const LSTMDrive<float>&,
                              const LossSpec<float>&, const LSTMTrajectory<float>&,
                              const LSTMGrads<float>&);
template double loss_and_grad(const LSTMParams<double>&, const LSTMDrive<double>&,
                              const LossSpec<double>&, const LSTMTrajectory<double>&,
                              const LSTMGrads<double>&);
template void rollout<float>(const LSTMParams<float>&, const LSTMDrive<float>&,
                             const LSTMTrajectory<float>&);
template void rollout<double>(const LSTMParams<double>&, const LSTMDrive<double>&,
                              const LSTMTrajectory<double>&);

}  // namespace flexrnn
