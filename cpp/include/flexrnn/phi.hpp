// Transfer functions phi and their derivatives, applied to whole blocks so that
// Eigen vectorises them.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

#include "flexrnn/types.hpp"

namespace flexrnn {

enum class Phi { tanh, relu, softplus, shifted_tanh, identity };

Phi phi_from_name(const std::string& name);  // throws std::invalid_argument
const char* phi_name(Phi phi);

namespace detail {

// tanh for double, vectorised. Eigen vectorises tanh for float only; std::tanh
// per element would dominate a step at small n. For |x| >= 1/8,
// tanh|x| = (1 - e) / (1 + e) with e = exp(-2|x|) in (0, 1] (no overflow);
// below 1/8 the cancellation in 1 - e would cost relative accuracy, so the odd
// Taylor series to x^13 is used (truncation < 4e-16 relative there).
template <class Derived>
auto tanh_double(const Eigen::ArrayBase<Derived>& x) {
  const auto a = x.abs();
  const auto e = (a * -2.0).exp();
  const auto big = (1.0 - e) / (1.0 + e);
  const auto x2 = a * a;
  const auto poly =
      a * (1.0 + x2 * (-1.0 / 3 + x2 * (2.0 / 15 + x2 * (-17.0 / 315 +
          x2 * (62.0 / 2835 + x2 * (-1382.0 / 155925 + x2 * (21844.0 / 6081075)))))));
  const auto mag = (a < 0.125).select(poly, big);
  return (x < 0.0).select(-mag, mag);
}

template <class S, class Derived>
auto tanh_expr(const Eigen::ArrayBase<Derived>& x) {
  if constexpr (std::is_same_v<S, double>) {
    return tanh_double(x);
  } else {
    return x.tanh();
  }
}

}  // namespace detail

// out = phi(in), elementwise; in and out may alias.
template <class S, class In, class Out>
void apply_phi(Phi phi, const Eigen::ArrayBase<In>& in, const Eigen::ArrayBase<Out>& out_) {
  auto& out = const_cast<Eigen::ArrayBase<Out>&>(out_);  // Eigen's idiom for writable temporaries
  switch (phi) {
    case Phi::tanh:
      out = detail::tanh_expr<S>(in);
      break;
    case Phi::relu:
      out = in.max(S(0));
      break;
    case Phi::softplus:
      // log(1 + e^x) = max(x, 0) + log1p(e^-|x|), finite for every x
      out = in.max(S(0)) + (-in.abs()).exp().log1p();
      break;
    case Phi::shifted_tanh:
      out = S(1) + detail::tanh_expr<S>(in);
      break;
    case Phi::identity:
      out = in;
      break;
  }
}

// out = phi'(in), elementwise (relu'(0) = 0).
template <class S, class In, class Out>
void apply_dphi(Phi phi, const Eigen::ArrayBase<In>& in, const Eigen::ArrayBase<Out>& out_) {
  auto& out = const_cast<Eigen::ArrayBase<Out>&>(out_);
  switch (phi) {
    case Phi::tanh:
    case Phi::shifted_tanh:
      out = S(1) - detail::tanh_expr<S>(in).square();
      break;
    case Phi::relu:
      out = (in > S(0)).template cast<S>();
      break;
    case Phi::softplus:
      out = S(1) / (S(1) + (-in).exp());
      break;
    case Phi::identity:
      out.setOnes();
      break;
  }
}

}  // namespace flexrnn
