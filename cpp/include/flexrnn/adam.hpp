// Adam (Kingma & Ba 2015), the one C++ definition; the fixed-point minimiser
// (dynamics.hpp) and the NeuroMOP value fit (mop.hpp) use it. Step t (1, 2, ...) of one
// parameter theta with gradient g and moments m, v:
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
//   theta -= lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// computed in an arithmetic type T (the stored type S, or double for float storage: the
// moments and the parameter are then rounded to S once). The NumPy twin is
// flexrnn/reference/adam.py (the same equations; it groups the bias corrections
// differently, so the two agree to rounding, not bitwise).
#pragma once

#include <cmath>

#include "flexrnn/types.hpp"

namespace flexrnn {

inline constexpr double kAdamBeta1 = 0.9, kAdamBeta2 = 0.999, kAdamEps = 1e-8;

struct AdamSettings {
  double lr = 1e-3, beta1 = kAdamBeta1, beta2 = kAdamBeta2, eps = kAdamEps;
};

// How (1 - beta2) g^2 is rounded: (1 - beta2) * (g * g) (the fixed-point minimiser) or
// ((1 - beta2) * g) * g (the NeuroMOP fit). The two round differently in the last bit; each
// caller keeps its own so that its results stay what they were. For the same reason the
// minimiser runs update() on Eigen arrays and the fit per element: with -march=native the
// compiler fuses a * b + c into one multiply-add where the code's shape allows it, and a
// vectorised Eigen expression and a scalar loop are fused differently.
enum class AdamSquare { grouped, left_to_right };

namespace detail {
inline float adam_sqrt(float x) { return std::sqrt(x); }
inline double adam_sqrt(double x) { return std::sqrt(x); }
template <class E>
auto adam_sqrt(const Eigen::ArrayBase<E>& x) {
  return x.sqrt();
}
}  // namespace detail

// The coefficients of one step, given beta1^t and beta2^t (each caller keeps its powers:
// the minimiser as running products in S, the MOP fit as std::pow in double).
template <class T, AdamSquare Square = AdamSquare::grouped>
class AdamStep {
 public:
  AdamStep(const AdamSettings& s, T beta1_t, T beta2_t)
      : beta1_(T(s.beta1)), beta2_(T(s.beta2)), eps_(T(s.eps)), lr_(T(s.lr)),
        c1_(T(1) - beta1_t), c2_(T(1) - beta2_t) {}

  // The step of a parameter theta with gradient g and moments m, v, all of type T, or of
  // Eigen arrays of them element by element (vectorised, as the minimiser runs it).
  template <class P, class G, class M, class V>
  void update(P& theta, const G& g, M& m, V& v) const {
    m = beta1_ * m + (T(1) - beta1_) * g;
    if constexpr (Square == AdamSquare::grouped) {
      v = beta2_ * v + (T(1) - beta2_) * (g * g);
    } else {
      v = beta2_ * v + (T(1) - beta2_) * g * g;
    }
    theta -= lr_ * (m / c1_) / (detail::adam_sqrt(v / c2_) + eps_);
  }

  // The step on len parameters stored as S (rounded once from T) with gradients g and
  // moments m, v.
  template <class S>
  void operator()(S* theta, const S* g, S* m, S* v, Index len) const {
    for (Index i = 0; i < len; ++i) {
      T th = T(theta[i]), mi = T(m[i]), vi = T(v[i]);
      update(th, T(g[i]), mi, vi);
      m[i] = static_cast<S>(mi);
      v[i] = static_cast<S>(vi);
      theta[i] = static_cast<S>(th);
    }
  }

 private:
  T beta1_, beta2_, eps_, lr_, c1_, c2_;
};

}  // namespace flexrnn
