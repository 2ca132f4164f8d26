// The only instantiation of the LSTM rollout.
#include "flexrnn/lstm.hpp"

namespace flexrnn {

template void rollout<float>(const LSTMParams<float>&, const LSTMDrive<float>&,
                             const LSTMTrajectory<float>&);
template void rollout<double>(const LSTMParams<double>&, const LSTMDrive<double>&,
                              const LSTMTrajectory<double>&);

}  // namespace flexrnn
