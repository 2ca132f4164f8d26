// The only instantiation of the RateRNN / LowRankRNN rollouts and their loss_and_grad.
#include "flexrnn/rate_rnn.hpp"

#include <stdexcept>

namespace flexrnn {

Phi phi_from_name(const std::string& name) {
  if (name == "tanh") return Phi::tanh;
  if (name == "relu") return Phi::relu;
  if (name == "softplus") return Phi::softplus;
  if (name == "shifted_tanh") return Phi::shifted_tanh;
  if (name == "identity") return Phi::identity;
  throw std::invalid_argument("phi: unknown transfer function '" + name +
                              "' (expected tanh, relu, softplus, shifted_tanh or identity)");
}

const char* phi_name(Phi phi) {
  switch (phi) {
    case Phi::tanh: return "tanh";
    case Phi::relu: return "relu";
    case Phi::softplus: return "softplus";
    case Phi::shifted_tanh: return "shifted_tanh";
    case Phi::identity: return "identity";
  }
  return "?";
}

Form form_from_name(const std::string& name) {
  if (name == "current") return Form::current;
  if (name == "rate") return Form::rate;
  throw std::invalid_argument("form: unknown form '" + name + "' (expected current or rate)");
}

Readout readout_from_name(const std::string& name) {
  if (name == "rate") return Readout::rate;
  if (name == "state") return Readout::state;
  throw std::invalid_argument("readout: unknown readout '" + name + "' (expected rate or state)");
}

LossKind loss_from_name(const std::string& name) {
  if (name == "mse") return LossKind::mse;
  if (name == "cross_entropy") return LossKind::cross_entropy;
  throw std::invalid_argument("loss: unknown loss '" + name + "' (expected mse or cross_entropy)");
}

template double loss_and_grad(const RateRNNParams<float>&, const RateOptions&,
                              const RateDrive<float>&, const LossSpec<float>&,
                              const RateTrajectory<float>&, const RateGrads<float>&);
template double loss_and_grad(const RateRNNParams<double>&, const RateOptions&,
                              const RateDrive<double>&, const LossSpec<double>&,
                              const RateTrajectory<double>&, const RateGrads<double>&);
template double loss_and_grad(const LowRankRNNParams<float>&, const RateOptions&,
                              const RateDrive<float>&, const LossSpec<float>&,
                              const RateTrajectory<float>&, const RateGrads<float>&);
template double loss_and_grad(const LowRankRNNParams<double>&, const RateOptions&,
                              const RateDrive<double>&, const LossSpec<double>&,
                              const RateTrajectory<double>&, const RateGrads<double>&);
template void rollout<float>(const RateRNNParams<float>&, const RateOptions&,
                             const RateDrive<float>&, const RateTrajectory<float>&);
template void rollout<double>(const RateRNNParams<double>&, const RateOptions&,
                              const RateDrive<double>&, const RateTrajectory<double>&);
template void rollout<float>(const LowRankRNNParams<float>&, const RateOptions&,
                             const RateDrive<float>&, const RateTrajectory<float>&);
template void rollout<double>(const LowRankRNNParams<double>&, const RateOptions&,
                              const RateDrive<double>&, const RateTrajectory<double>&);

}  // namespace flexrnn
