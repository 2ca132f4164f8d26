// A rate network (RateRNN or LowRankRNN) at constant input as an autonomous map
// x -> F(x), the map its rollout iterates (docs/models.md, without noise):
//   current: F(x) = (1-alpha) x + alpha (gain W phi(ng x) + c)
//   rate:    F(x) = (1-alpha) x + alpha phi(ng (gain W x + c)),     c = W_in u + b
// with its Jacobian
//   current: J = (1-alpha) I + alpha gain W diag(ng phi'(ng x))
//   rate:    J = (1-alpha) I + alpha gain diag(ng phi'(ng (gain W x + c))) W
// and what docs/dynamics_analysis.md builds on it: the fixed-point objective
// q(x) = 1/2 ||F(x) - x||^2 with gradient (J - I)^T (F(x) - x), a batched minimiser of q,
// and the Lyapunov spectrum by the QR method. States are rows (row-major (K, n) blocks).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "flexrnn/adam.hpp"
#include "flexrnn/nmrnn.hpp"
#include "flexrnn/parallel.hpp"
#include "flexrnn/phi.hpp"
#include "flexrnn/random.hpp"
#include "flexrnn/rate_rnn.hpp"
#include "flexrnn/rate_step.hpp"
#include "flexrnn/types.hpp"

namespace flexrnn {

// The map's settings: the network's options, a constant input u and one gain.
template <class S>
struct MapSpec {
  double alpha = 0.1;
  Phi phi = Phi::tanh;
  Form form = Form::current;
  const S* u = nullptr;            // (n_in): the constant input
  S gain = S(1);                   // scalar recurrent gain
  const S* neuron_gain = nullptr;  // (n) or null for ones
  double alpha_z = 0.01;           // NMRNN only (alpha is then alpha_x)
  double n_scale = 1.0;            // NMRNN only
};

namespace detail {

// The map of one network, applied to blocks of states (rows).
template <class S, class Rec>
class RateMap {
 public:
  // Dense W: the Lyapunov loop advances tangent vectors by column blocks of W^T (below).
  static constexpr bool kDense = std::is_same_v<Rec, DenseRecurrence<S>>;
  RateMap(const Rec& rec, const CMatMap<S>& W_in, const S* b, const MapSpec<S>& spec)
      : rec_(rec), spec_(spec), n_(W_in.rows()), c_(n_) {
    c_ = CRowVecMap<S>(b, n_);
    for (Index j = 0; j < W_in.cols(); ++j) c_ += spec.u[j] * W_in.col(j).transpose();
  }
  Index n() const { return n_; }
  // scratch for apply / tangent / cotangent on blocks of `rows` states
  RowMat<S> work(Index rows) const { return RowMat<S>(rows, rec_.work_cols()); }
  // what apply keeps for the Jacobian: ng phi'(ng .) per state
  RowMat<S> aux(Index rows) const { return RowMat<S>(rows, n_); }

  // A = ng * arg, then phi (or phi') of it, row by row; A and Out may alias
  template <class In, class Out>
  void phi_of(const In& A, Out& out, bool derivative) const {
    for (Index i = 0; i < A.rows(); ++i) {
      auto o = out.row(i);
      if (spec_.neuron_gain) {
        o = A.row(i).cwiseProduct(CRowVecMap<S>(spec_.neuron_gain, n_));
      } else {
        o = A.row(i);
      }
      if (derivative) {
        apply_dphi<S>(spec_.phi, o.data(), o.data(), n_);
        if (spec_.neuron_gain) o.array() *= CRowVecMap<S>(spec_.neuron_gain, n_).array();
      } else {
        apply_phi<S>(spec_.phi, o.data(), o.data(), n_);
      }
    }
  }

  // F(X) into FX, and D = ng phi'(ng .) at the point where J needs it
  // (current: at x; rate: at gain W x + c). FX, D: (rows, n). work: scratch.
  // The step is the rollout's (rate_step.hpp); its 1 - alpha is rounded from S's alpha
  // (S(1) - a), as the maps always did: in float it can differ from the rollout's
  // S(1.0 - alpha) in the last bit, and keeping it keeps the maps' results bitwise.
  void apply(const RowMat<S>& X, RowMat<S>& FX, RowMat<S>& D, RowMat<S>& work) const {
    const S a = S(spec_.alpha), g = spec_.gain;
    const EulerStep<S> euler(spec_.form, a, S(1) - a);
    auto phi = [&](const RowMat<S>& in, RowMat<S>& out) { phi_of(in, out, false); };
    if (spec_.form == Form::current) {
      phi_of(X, D, false);  // D holds phi(ng x) for now
      rec_.apply(D, FX, work);
    } else {
      rec_.apply(X, FX, work);
    }
    FX *= g;
    FX.rowwise() += c_;  // FX: the drive
    if (spec_.form == Form::rate) phi_of(FX, D, true);
    euler(X, FX, FX, phi);
    if (spec_.form == Form::current) phi_of(X, D, true);
  }

  // Rows of P J^T, i.e. (J p)^T for each row p (tangent vectors as rows), given D from apply.
  void tangent(const RowMat<S>& P, const RowMat<S>& D, RowMat<S>& out, RowMat<S>& work) const {
    const S a = S(spec_.alpha), g = spec_.gain;
    if (spec_.form == Form::current) {
      RowMat<S> PD = P.cwiseProduct(D.replicate(P.rows() / D.rows(), 1));
      rec_.apply(PD, out, work);
      out = (S(1) - a) * P + (a * g) * out;
    } else {
      rec_.apply(P, out, work);
      out = (S(1) - a) * P + (a * g) * out.cwiseProduct(D.replicate(P.rows() / D.rows(), 1));
    }
  }

  // Rows of R J, i.e. (J^T r)^T for each row r, given D from apply (the adjoint).
  void cotangent(const RowMat<S>& R, const RowMat<S>& D, RowMat<S>& out, RowMat<S>& work) const {
    const S a = S(spec_.alpha), g = spec_.gain;
    if (spec_.form == Form::current) {
      rec_.apply_adjoint(R, out, work);
      out = (S(1) - a) * R + (a * g) * out.cwiseProduct(D);
    } else {
      RowMat<S> RD = R.cwiseProduct(D);
      rec_.apply_adjoint(RD, out, work);
      out = (S(1) - a) * R + (a * g) * out;
    }
  }

  // What jacobian needs besides a state's row of D, computed once per call: W^T (for a
  // low-rank W the rows of I W^T, an n^3 product that must not be repeated per state).
  RowMat<S> jacobian_cache() const {
    if constexpr (kDense) return rec_.WT;  // a dense W keeps W^T already: no n^3 product
    RowMat<S> I = RowMat<S>::Identity(n_, n_), WT(n_, n_), work(n_, rec_.work_cols());
    rec_.apply(I, WT, work);
    return WT;
  }

  // Columns j0 .. j0 + nj of the tangent map's rows, `P J^T`, from WT = jacobian_cache();
  // PD = P * D (rows of D repeated) for form "current" (unused for "rate"). Every output
  // element is the same dot product whatever the blocks, so blocks may run on any thread.
  void tangent_columns(const RowMat<S>& P, const RowMat<S>& PD, const RowMat<S>& D,
                       const RowMat<S>& WT, Index j0, Index nj, RowMat<S>& out) const {
    const S a = S(spec_.alpha), g = spec_.gain;
    auto block = out.middleCols(j0, nj);
    if (spec_.form == Form::current) {
      block.noalias() = PD * WT.middleCols(j0, nj);
      block = (S(1) - a) * P.middleCols(j0, nj) + (a * g) * block;
    } else {
      block.noalias() = P * WT.middleCols(j0, nj);
      const auto d = D.row(0).segment(j0, nj).array();
      for (Index i = 0; i < P.rows(); ++i) {
        block.row(i) = (S(1) - a) * P.row(i).segment(j0, nj).array() +
                       (a * g) * block.row(i).array() * d;
      }
    }
  }

  // J (n, n) at one state x, given its row of D and jacobian_cache()
  void jacobian(const S* d, const RowMat<S>& WT, MatMap<S> J) const {
    const S a = S(spec_.alpha), g = spec_.gain;
    const CRowVecMap<S> dv(d, n_);
    if (spec_.form == Form::current) {
      J = (a * g) * (WT.transpose().array().rowwise() * dv.array()).matrix();  // W diag(d)
    } else {
      J = (a * g) * (WT.transpose().array().colwise() * dv.transpose().array()).matrix();
    }
    J.diagonal().array() += S(1) - a;
  }

 private:
  const Rec& rec_;
  MapSpec<S> spec_;
  Index n_;
  RowVec<S> c_;
};

// The NM-RNN as a map of its joint state [x, z] (n + n_mod) at constant input, u-dependent
// terms folded into cz = B_z u + b_z and cx = B_x u (docs/models.md, no clamping):
//   z' = (1-az) z + az (W_z tanh z + cz [+ W_zx tanh x]),   s' = sigmoid(A_z z' + c_z)
//   x' = (1-ax) x + ax (U diag(s') V^T tanh(x) / n_scale + cx)
// aux keeps, per state: [1 - tanh(x)^2 | 1 - tanh(z)^2 | k = V^T tanh(x) / n_scale | s' | s'(1-s')].
template <class S>
class NMRNNMap {
 public:
  static constexpr bool kDense = false;
  NMRNNMap(const NMRNNParams<S>& p, const MapSpec<S>& spec)
      : p_(p), ax_(S(spec.alpha)), az_(S(spec.alpha_z)), inv_scale_(S(1.0 / spec.n_scale)),
        n_(p.U.rows()), m_(p.W_z.rows()), r_(p.U.cols()), cz_(m_), cx_(n_),
        W_zx_(p.W_zx, p.W_zx ? m_ : 0, p.W_zx ? n_ : 0) {
    cz_ = CRowVecMap<S>(p.b_z, m_);
    cx_.setZero();
    for (Index j = 0; j < p.B_z.cols(); ++j) {
      cz_ += spec.u[j] * p.B_z.col(j).transpose();
      cx_ += spec.u[j] * p.B_x.col(j).transpose();
    }
  }
  Index n() const { return n_ + m_; }
  RowMat<S> work(Index rows) const { return RowMat<S>(rows, 0); }
  RowMat<S> aux(Index rows) const { return RowMat<S>(rows, n_ + m_ + 3 * r_); }

  void apply(const RowMat<S>& X, RowMat<S>& FX, RowMat<S>& D, RowMat<S>& /*work*/) const {
    const Index rows = X.rows();
    RowMat<S> tx(rows, n_), tz(rows, m_), Zn(rows, m_), sp(rows, r_), K(rows, r_);
    apply_phi_rows<S>(Phi::tanh, X.leftCols(n_), tx);
    apply_phi_rows<S>(Phi::tanh, X.rightCols(m_), tz);
    Zn.noalias() = tz * p_.W_z.transpose();
    if (p_.W_zx) Zn.noalias() += tx * W_zx_.transpose();
    Zn.rowwise() += cz_;
    Zn = (S(1) - az_) * X.rightCols(m_) + az_ * Zn;
    sp.noalias() = Zn * p_.A_z.transpose();
    sp.rowwise() += CRowVecMap<S>(p_.c_z, r_);
    apply_sigmoid_rows<S>(sp);
    K.noalias() = (tx * p_.V) * inv_scale_;
    FX.leftCols(n_).noalias() = K.cwiseProduct(sp) * p_.U.transpose();
    FX.leftCols(n_).rowwise() += cx_;
    FX.leftCols(n_) = (S(1) - ax_) * X.leftCols(n_) + ax_ * FX.leftCols(n_);
    FX.rightCols(m_) = Zn;
    D.leftCols(n_).array() = S(1) - tx.array().square();
    D.middleCols(n_, m_).array() = S(1) - tz.array().square();
    D.middleCols(n_ + m_, r_) = K;
    D.middleCols(n_ + m_ + r_, r_) = sp;
    D.rightCols(r_).array() = sp.array() * (S(1) - sp.array());
  }

  // rows of R J (the adjoint), R: (rows, n + n_mod), D from apply at the same states
  void cotangent(const RowMat<S>& R, const RowMat<S>& D, RowMat<S>& out,
                 RowMat<S>& /*work*/) const {
    const auto dx = D.leftCols(n_).array(), dz = D.middleCols(n_, m_).array();
    const auto K = D.middleCols(n_ + m_, r_).array(), sp = D.middleCols(n_ + m_ + r_, r_).array();
    const auto sig = D.rightCols(r_).array();
    const Index rows = R.rows();
    RowMat<S> a(rows, r_), w(rows, m_), tmp(rows, n_);
    a.noalias() = ax_ * (R.leftCols(n_) * p_.U);  // dL/d(K s')
    w.noalias() = (a.array() * K * sig).matrix() * p_.A_z;
    w += R.rightCols(m_);  // dL/dz'
    tmp.noalias() = (a.array() * sp).matrix() * p_.V.transpose();
    out.leftCols(n_) = (S(1) - ax_) * R.leftCols(n_) + (inv_scale_ * tmp.array() * dx).matrix();
    if (p_.W_zx) {
      tmp.noalias() = w * W_zx_;
      out.leftCols(n_).array() += az_ * tmp.array() * dx;
    }
    RowMat<S> wz(rows, m_);
    wz.noalias() = w * p_.W_z;
    out.rightCols(m_) = (S(1) - az_) * w + (az_ * wz.array() * dz).matrix();
  }

  // rows of P J^T, i.e. (J p)^T per row p, with D one state's aux (1 row)
  void tangent(const RowMat<S>& P, const RowMat<S>& D, RowMat<S>& out,
               RowMat<S>& /*work*/) const {
    const auto dx = D.leftCols(n_).array(), dz = D.middleCols(n_, m_).array();
    const auto K = D.middleCols(n_ + m_, r_).array(), sp = D.middleCols(n_ + m_ + r_, r_).array();
    const auto sig = D.rightCols(r_).array();
    const Index rows = P.rows();
    RowMat<S> pxd = (P.leftCols(n_).array().rowwise() * dx.row(0)).matrix();
    RowMat<S> pzd = (P.rightCols(m_).array().rowwise() * dz.row(0)).matrix();
    RowMat<S> dzn(rows, m_), ds(rows, r_), ks(rows, r_);
    dzn.noalias() = pzd * p_.W_z.transpose();
    if (p_.W_zx) dzn.noalias() += pxd * W_zx_.transpose();
    dzn = (S(1) - az_) * P.rightCols(m_) + az_ * dzn;
    ds.noalias() = dzn * p_.A_z.transpose();  // dz' -> d(A_z z')
    ks.noalias() = (pxd * p_.V) * inv_scale_;   // dx -> dK
    ks = (ks.array().rowwise() * sp.row(0) + ds.array().rowwise() * (K * sig).row(0)).matrix();
    out.leftCols(n_).noalias() = ks * p_.U.transpose();
    out.leftCols(n_) = (S(1) - ax_) * P.leftCols(n_) + ax_ * out.leftCols(n_);
    out.rightCols(m_) = dzn;
  }

  RowMat<S> jacobian_cache() const { return RowMat<S>(0, 0); }  // nothing to share

  // J (N, N) at one state, given its aux row: columns J e_j from the tangent map
  void jacobian(const S* d, const RowMat<S>& /*cache*/, MatMap<S> J) const {
    const Index N = n();
    const RowMat<S> D = CMatMap<S>(d, 1, aux(1).cols());
    RowMat<S> I = RowMat<S>::Identity(N, N), JT(N, N), w = work(N);
    tangent(I, D, JT, w);
    J = JT.transpose();
  }

 private:
  const NMRNNParams<S>& p_;
  S ax_, az_, inv_scale_;
  Index n_, m_, r_;
  RowVec<S> cz_, cx_;
  CMatMap<S> W_zx_;
};

}  // namespace detail

// Settings of the batched minimiser of q: Adam on every state independently.
struct FixedPointOptions {
  int iters = 2000;
  double lr = 0.01;
  double tol = 1e-12;  // a chunk stops once every q in it is below tol
};

// X (K, n): initial states, overwritten by the minimisers; q (K): q at the returned states;
// iterations (K): Adam steps taken.
template <class S, class Params>
void minimize_q(const Params& p, const MapSpec<S>& spec, const FixedPointOptions& opt, S* X,
                Index K, S* q, std::int32_t* iterations);

// At the states X (K, n): q (K), gradient G (K, n) (null to skip), Jacobians J (K, n, n)
// (null to skip), F(X) (K, n) (null to skip).
template <class S, class Params>
void map_at(const Params& p, const MapSpec<S>& spec, const S* X, Index K, S* q, S* G, S* J,
            S* FX);

struct LyapunovOptions {
  int k = 10;             // exponents
  int steps = 1000;       // steps averaged
  int transient = 500;    // steps discarded first (state and tangent vectors)
  int reorthonormalize = 1;  // QR every this many steps
  std::uint64_t seed = 0;  // initial tangent vectors: normals keyed (seed, trial, 0)
};

// Lyapunov spectra per step of the map (divide by alpha for units of tau) of B
// independent runs, trial b from x0 (B, n) at gains[b]: exponents (B, k), descending
// within a run up to sampling noise.
template <class S, class Params>
void lyapunov_spectrum(const Params& p, const MapSpec<S>& spec, const S* gains, const S* x0,
                       Index B, const LyapunovOptions& opt, S* exponents);

namespace detail {

template <class S, class Params, class F>
auto with_map(const Params& p, const MapSpec<S>& spec, F&& f) {
  if constexpr (std::is_same_v<Params, NMRNNParams<S>>) {
    return f(NMRNNMap<S>(p, spec));
  } else if constexpr (std::is_same_v<Params, RateRNNParams<S>>) {
    const DenseRecurrence<S> rec(p.W);
    return f(RateMap<S, DenseRecurrence<S>>(rec, p.W_in, p.b, spec));
  } else {
    const LowRankRecurrence<S> rec(p.U, p.V);
    return f(RateMap<S, LowRankRecurrence<S>>(rec, p.W_in, p.b, spec));
  }
}

}  // namespace detail

template <class S, class Params>
void map_at(const Params& p, const MapSpec<S>& spec, const S* X, Index K, S* q, S* G, S* J,
            S* FX) {
  detail::with_map(p, spec, [&](const auto& map) {
    const Index n = map.n();
    const Index chunk = 16;
    const double work = double(K) * n * n * (J ? 3 : 2);
    const RowMat<S> cache = J ? map.jacobian_cache() : RowMat<S>(0, 0);
    for_each_chunk(K, chunk, work, [&](Index k0, Index rows) {
      RowMat<S> Xc = CMatMap<S>(X + k0 * n, rows, n), Fc(rows, n), D = map.aux(rows), R(rows, n);
      RowMat<S> Gc(rows, n), w = map.work(rows);
      map.apply(Xc, Fc, D, w);
      R = Fc - Xc;
      for (Index i = 0; i < rows; ++i) q[k0 + i] = S(0.5) * R.row(i).squaredNorm();
      if (FX) MatMap<S>(FX + k0 * n, rows, n) = Fc;
      if (G) {
        map.cotangent(R, D, Gc, w);
        MatMap<S>(G + k0 * n, rows, n) = Gc - R;  // (J - I)^T r
      }
      if (J) {
        for (Index i = 0; i < rows; ++i) {
          map.jacobian(D.row(i).data(), cache, MatMap<S>(J + (k0 + i) * n * n, n, n));
        }
      }
    });
  });
}

template <class S, class Params>
void minimize_q(const Params& p, const MapSpec<S>& spec, const FixedPointOptions& opt, S* X,
                Index K, S* q, std::int32_t* iterations) {
  detail::with_map(p, spec, [&](const auto& map) {
    const Index n = map.n();
    const Index chunk = 16;
    const double work = double(K) * n * n * 2 * opt.iters;
    for_each_chunk(K, chunk, work, [&](Index k0, Index rows) {
      MatMap<S> Xc(X + k0 * n, rows, n);
      RowMat<S> Fc(rows, n), D = map.aux(rows), R(rows, n), Gc(rows, n), w = map.work(rows);
      RowMat<S> m = RowMat<S>::Zero(rows, n), v = RowMat<S>::Zero(rows, n), Xr = Xc;
      const AdamSettings adam{opt.lr, kAdamBeta1, kAdamBeta2, 1e-12};
      const S b1 = S(adam.beta1), b2 = S(adam.beta2);
      S b1t = S(1), b2t = S(1);  // beta^t as running products in S
      int it = 0;
      InterruptPoint interruption;
      for (; it < opt.iters; ++it) {
        interruption(2.0 * double(rows) * double(n) * double(n));
        map.apply(Xr, Fc, D, w);
        R = Fc - Xr;
        S worst = S(0);
        for (Index i = 0; i < rows; ++i) {
          q[k0 + i] = S(0.5) * R.row(i).squaredNorm();
          worst = std::max(worst, q[k0 + i]);
        }
        if (worst < S(opt.tol)) break;
        map.cotangent(R, D, Gc, w);
        Gc -= R;
        // Adam, every state its own moments
        b1t *= b1;
        b2t *= b2;
        auto Xa = Xr.array();
        auto ma = m.array();
        auto va = v.array();
        AdamStep<S>(adam, b1t, b2t).update(Xa, Gc.array(), ma, va);
      }
      if (it == opt.iters) {  // q of the final states
        map.apply(Xr, Fc, D, w);
        R = Fc - Xr;
        for (Index i = 0; i < rows; ++i) q[k0 + i] = S(0.5) * R.row(i).squaredNorm();
      }
      Xc = Xr;
      for (Index i = 0; i < rows; ++i) iterations[k0 + i] = it;
    });
  });
}

template <class S, class Params>
void lyapunov_spectrum(const Params& p, const MapSpec<S>& spec_in, const S* gains, const S* x0,
                       Index B, const LyapunovOptions& opt, S* exponents) {
  const Index k = opt.k;
  for_each_chunk(B, 1, 1e300, [&](Index b, Index) {
    MapSpec<S> spec = spec_in;
    spec.gain = gains[b];
    detail::with_map(p, spec, [&](const auto& map) {
      const Index n = map.n();
      RowMat<S> x = CMatMap<S>(x0 + b * n, 1, n), Fx(1, n), D = map.aux(1), w1 = map.work(1);
      RowMat<S> Q(k, n), JQ(k, n), PD(k, n), wk = map.work(k);
      std::vector<double> xi(static_cast<std::size_t>(n));
      for (Index i = 0; i < k; ++i) {
        philox_normal(opt.seed, static_cast<std::uint64_t>(b), static_cast<std::uint32_t>(i),
                      xi.data(), n);
        Q.row(i) = Eigen::Map<const RowVec<double>>(xi.data(), n).cast<S>();
      }
      // Dense W: Q J^T by column blocks of W^T, fixed by n alone, on the threads when this
      // trajectory has them to itself (B == 1; nested regions otherwise run serially); each
      // block packs only its slice of W^T. The exponents do not depend on the thread count.
      using Map = std::decay_t<decltype(map)>;
      constexpr Index kColumns = 128;
      const Index n_col_blocks = (n + kColumns - 1) / kColumns;
      const double step_work = B == 1 ? 2.0 * double(k) * double(n) * double(n) : 0.0;
      RowMat<S> WT;
      if constexpr (Map::kDense) WT = map.jacobian_cache();
      std::vector<double> sum(static_cast<std::size_t>(k), 0.0);
      // Gram-Schmidt twice (CGS2) on the rows of Q: orthonormal rows, R's diagonal the norms
      RowVec<S> coef(k);
      auto orthonormalize = [&](bool count) {
        for (Index i = 0; i < k; ++i) {
          auto qi = Q.row(i);
          for (int pass = 0; pass < 2 && i > 0; ++pass) {
            coef.head(i).noalias() = qi * Q.topRows(i).transpose();
            qi.noalias() -= coef.head(i) * Q.topRows(i);
          }
          const S norm = qi.norm();
          if (norm > S(0)) qi /= norm;
          if (count) sum[i] += std::log(double(norm));
        }
      };
      orthonormalize(false);
      const int total = opt.transient + opt.steps;
      InterruptPoint interruption;
      for (int t = 0; t < total; ++t) {
        interruption(2.0 * double(k) * double(n) * double(n));
        map.apply(x, Fx, D, w1);  // D at x: the Jacobian of this step
        if constexpr (Map::kDense) {
          if (spec.form == Form::current) PD = Q.cwiseProduct(D.replicate(k, 1));
          for_each_chunk(n_col_blocks, 1, step_work, [&](Index j, Index) {
            const Index j0 = j * kColumns;
            map.tangent_columns(Q, PD, D, WT, j0, std::min(kColumns, n - j0), JQ);
          });
        } else {
          map.tangent(Q, D, JQ, wk);
        }
        Q.swap(JQ);
        x.swap(Fx);
        // a QR at the end of the transient, so that counted growth starts there
        if ((t + 1) % opt.reorthonormalize == 0 || t + 1 == opt.transient || t + 1 == total) {
          orthonormalize(t >= opt.transient);
        }
      }
      for (Index i = 0; i < k; ++i) exponents[b * k + i] = S(sum[i] / opt.steps);
    });
  });
}

#define FLEXRNN_DYNAMICS_EXTERN(S, P)                                                        \
  extern template void minimize_q(const P<S>&, const MapSpec<S>&, const FixedPointOptions&, S*, \
                                  Index, S*, std::int32_t*);                                    \
  extern template void map_at(const P<S>&, const MapSpec<S>&, const S*, Index, S*, S*, S*, S*); \
  extern template void lyapunov_spectrum(const P<S>&, const MapSpec<S>&, const S*, const S*,    \
                                         Index, const LyapunovOptions&, S*);
FLEXRNN_DYNAMICS_EXTERN(float, RateRNNParams)
FLEXRNN_DYNAMICS_EXTERN(double, RateRNNParams)
FLEXRNN_DYNAMICS_EXTERN(float, LowRankRNNParams)
FLEXRNN_DYNAMICS_EXTERN(double, LowRankRNNParams)
FLEXRNN_DYNAMICS_EXTERN(float, NMRNNParams)
FLEXRNN_DYNAMICS_EXTERN(double, NMRNNParams)
#undef FLEXRNN_DYNAMICS_EXTERN

}  // namespace flexrnn
