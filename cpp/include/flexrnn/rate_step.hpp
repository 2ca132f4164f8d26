// The Euler step of the rate network (docs/models.md), the one definition that the
// rollout (rate_rnn.hpp), the learning rules' trial steps (trial_step.hpp), the dynamics
// maps (dynamics.hpp, RateMap::apply) and the NeuroMOP environment (mop_env.hpp) use:
//   form "current": x' = (1 - alpha) x + alpha drive
//   form "rate":    x' = (1 - alpha) x + alpha phi(ng drive)
// with drive = gain W s + W_in u + b (+ what a caller adds: feedback, kicks, rho K a),
// which each caller forms its own way (dense or low-rank W, trials or states as rows).
//
// The last bit of x' depends on how the sum is evaluated: with -march=native the compiler
// fuses one of the two products with the addition. operator() (one expression) is the form
// of the rollout, the trial steps and the maps; in_two_passes (alpha v rounded first) is the
// NeuroMOP environment's. Each caller keeps its form, so results stay bitwise what they were.
#pragma once

#include <type_traits>

#include "flexrnn/types.hpp"

namespace flexrnn {

enum class Form { current, rate };

template <class S>
class EulerStep {
 public:
  // alpha = dt / tau; 1 - alpha rounded once from double (the rollout's rounding)
  EulerStep(Form form, double alpha) : form_(form), alpha_(S(alpha)), decay_(S(1.0 - alpha)) {}
  // the two coefficients as the caller rounded them
  EulerStep(Form form, S alpha, S decay) : form_(form), alpha_(alpha), decay_(decay) {}
  Form form() const { return form_; }

  // out = (1 - alpha) x + alpha v over blocks of equal shape, v = drive (form "current") or
  // phi_of(drive, out) (form "rate", phi(ng .) as the caller applies it, written into out
  // first). out may be drive (then overwritten); in form "rate" it must not be x.
  template <class X, class Drive, class Out, class PhiOf>
  void operator()(const X& x, const Drive& drive, Out&& out, PhiOf&& phi_of) const {
    if (form_ == Form::rate) {
      phi_of(drive, out);
      out = decay_ * x + alpha_ * out;
    } else {
      out = decay_ * x + alpha_ * drive;
    }
  }

  // The same step as two passes, out = alpha v, then out += (1 - alpha) x. x has out's
  // shape, or is one state (a row vector) for a block of drives (the NeuroMOP successors of
  // one state under every action; (1 - alpha) x is then rounded once). out may be drive.
  template <class X, class Drive, class Out, class PhiOf>
  void in_two_passes(const X& x, const Drive& drive, Out&& out, PhiOf&& phi_of) const {
    if (form_ == Form::rate) {
      phi_of(drive, out);
    } else {
      out = drive;
    }
    out *= alpha_;
    using O = std::decay_t<Out>;
    if constexpr (X::RowsAtCompileTime == 1 && O::RowsAtCompileTime != 1) {
      out.rowwise() += decay_ * x;
    } else {
      out += decay_ * x;
    }
  }

 private:
  Form form_;
  S alpha_, decay_;
};

}  // namespace flexrnn
