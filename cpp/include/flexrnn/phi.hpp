// Transfer functions phi and their derivatives over contiguous buffers.
//
// tanh is the hot one (n of them per trial and step). Eigen 3.4 vectorises it
// for float only, and its array `select` has no packet path, so an expression
// for double would run element by element. Here tanh and sigmoid run as an
// explicit loop over SIMD packets; the ragged end of a row goes through the
// same packet code on a padded copy. Every element is thus computed by the same
// formula whatever the row's length or alignment (an Eigen expression would
// compute an unaligned head with scalar std::exp, which rounds differently).
// softplus, which needs log1p, runs element by element with the std functions.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "flexrnn/types.hpp"

namespace flexrnn {

enum class Phi { tanh, relu, softplus, shifted_tanh, identity };

Phi phi_from_name(const std::string& name);  // throws std::invalid_argument
const char* phi_name(Phi phi);

namespace detail {

namespace ei = Eigen::internal;

template <class S>
using Packet = typename ei::packet_traits<S>::type;

// tanh of a packet of doubles. For |x| >= 1/8: tanh|x| = (1 - e) / (1 + e),
// e = exp(-2|x|) in (0, 1] (never overflows). Below 1/8 the cancellation in
// 1 - e would cost relative accuracy, so the odd Taylor series to x^13 is used
// (truncation < 4e-16 relative there).
inline Packet<double> ptanh_double(const Packet<double>& x) {
  using P = Packet<double>;
  const P one = ei::pset1<P>(1.0);
  const P a = ei::pabs(x);
  const P e = ei::pexp(ei::pmul(a, ei::pset1<P>(-2.0)));
  const P big = ei::pdiv(ei::psub(one, e), ei::padd(one, e));
  const P a2 = ei::pmul(a, a);
  P poly = ei::pset1<P>(21844.0 / 6081075);
  poly = ei::pmadd(poly, a2, ei::pset1<P>(-1382.0 / 155925));
  poly = ei::pmadd(poly, a2, ei::pset1<P>(62.0 / 2835));
  poly = ei::pmadd(poly, a2, ei::pset1<P>(-17.0 / 315));
  poly = ei::pmadd(poly, a2, ei::pset1<P>(2.0 / 15));
  poly = ei::pmadd(poly, a2, ei::pset1<P>(-1.0 / 3));
  poly = ei::pmadd(poly, a2, one);
  poly = ei::pmul(poly, a);
  const P mag = ei::pselect(ei::pcmp_lt(a, ei::pset1<P>(0.125)), poly, big);
  return ei::pselect(ei::pcmp_lt(x, ei::pzero(x)), ei::pnegate(mag), mag);
}

template <class S>
Packet<S> psigmoid(const Packet<S>& x) {
  const Packet<S> one = ei::pset1<Packet<S>>(S(1));
  return ei::pdiv(one, ei::padd(one, ei::pexp(ei::pnegate(x))));  // exp overflow -> 0
}

template <class S>
Packet<S> ptanh_any(const Packet<S>& x) {
  if constexpr (std::is_same_v<S, double>) {
    return ptanh_double(x);
  } else {
    return ei::ptanh(x);  // Eigen's rational approximation for float
  }
}

// out[i] = f(in[i]) for packets; in and out may alias.
template <class S, class F>
void packet_map(const S* in, S* out, Index len, F f) {
  constexpr Index L = ei::unpacket_traits<Packet<S>>::size;
  Index i = 0;
  for (; i + L <= len; i += L) ei::pstoreu(out + i, f(ei::ploadu<Packet<S>>(in + i)));
  if (i < len) {
    alignas(64) S pad[L] = {};
    std::copy(in + i, in + len, pad);
    ei::pstoreu(pad, f(ei::ploadu<Packet<S>>(pad)));
    std::copy(pad, pad + (len - i), out + i);
  }
}

}  // namespace detail

// out[i] = phi(in[i]), i < len; in and out may alias.
template <class S>
void apply_phi(Phi phi, const S* in, S* out, Index len) {
  using detail::Packet;
  namespace ei = Eigen::internal;
  using Arr = Eigen::Array<S, Eigen::Dynamic, 1>;
  Eigen::Map<const Arr> x(in, len);
  Eigen::Map<Arr> y(out, len);  // relu and identity only: exact in any traversal order
  switch (phi) {
    case Phi::tanh:
      detail::packet_map(in, out, len, [](const Packet<S>& p) { return detail::ptanh_any<S>(p); });
      break;
    case Phi::shifted_tanh:
      detail::packet_map(in, out, len, [](const Packet<S>& p) {
        return ei::padd(ei::pset1<Packet<S>>(S(1)), detail::ptanh_any<S>(p));
      });
      break;
    case Phi::relu:
      y = x.max(S(0));
      break;
    case Phi::softplus:
      // log(1 + e^x) = max(x, 0) + log1p(e^-|x|), finite for every x
      for (Index i = 0; i < len; ++i) {
        out[i] = std::max(in[i], S(0)) + std::log1p(std::exp(-std::abs(in[i])));
      }
      break;
    case Phi::identity:
      if (in != out) y = x;
      break;
  }
}

// out[i] = phi'(in[i]) (relu'(0) = 0); in and out may alias.
template <class S>
void apply_dphi(Phi phi, const S* in, S* out, Index len) {
  using detail::Packet;
  namespace ei = Eigen::internal;
  using Arr = Eigen::Array<S, Eigen::Dynamic, 1>;
  Eigen::Map<const Arr> x(in, len);
  Eigen::Map<Arr> y(out, len);
  switch (phi) {
    case Phi::tanh:
    case Phi::shifted_tanh:
      detail::packet_map(in, out, len, [](const Packet<S>& p) {
        const Packet<S> t = detail::ptanh_any<S>(p);
        return ei::psub(ei::pset1<Packet<S>>(S(1)), ei::pmul(t, t));
      });
      break;
    case Phi::relu:
      y = (x > S(0)).template cast<S>();
      break;
    case Phi::softplus:
      detail::packet_map(in, out, len, [](const Packet<S>& p) { return detail::psigmoid<S>(p); });
      break;
    case Phi::identity:
      y.setOnes();
      break;
  }
}

// out[i] = 1 / (1 + exp(-in[i])); in and out may alias.
template <class S>
void apply_sigmoid(const S* in, S* out, Index len) {
  using detail::Packet;
  detail::packet_map(in, out, len, [](const Packet<S>& p) { return detail::psigmoid<S>(p); });
}

// Row by row over a row-major block whose rows are contiguous: Y = phi(X). When both blocks
// are contiguous as a whole (no gap between rows), one call covers them: fewer ragged row ends
// (a 100-wide row of doubles is 12 packets and a padded one), the same value per element.
template <class S, class XBlock, class YBlock>
void apply_phi_rows(Phi phi, const XBlock& X, YBlock&& Y) {
  static_assert(XBlock::IsRowMajor && std::decay_t<YBlock>::IsRowMajor, "row-major blocks");
  if (X.rows() > 1 && X.outerStride() == X.cols() && Y.outerStride() == Y.cols()) {
    apply_phi<S>(phi, X.data(), Y.data(), X.rows() * X.cols());
    return;
  }
  for (Index i = 0; i < X.rows(); ++i) apply_phi<S>(phi, X.row(i).data(), Y.row(i).data(), X.cols());
}

// The same for the logistic sigmoid.
template <class S, class Block>
void apply_sigmoid_rows(Block&& Y) {
  static_assert(std::decay_t<Block>::IsRowMajor, "a row-major block");
  if (Y.rows() > 1 && Y.outerStride() == Y.cols()) {
    apply_sigmoid<S>(Y.data(), Y.data(), Y.rows() * Y.cols());
    return;
  }
  for (Index i = 0; i < Y.rows(); ++i) apply_sigmoid<S>(Y.row(i).data(), Y.row(i).data(), Y.cols());
}

}  // namespace flexrnn
