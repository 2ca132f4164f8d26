// NeuroMOP terminal sets and reward regions (docs/neuromop.md): postfix programs of atoms
// and NOT / AND / OR, evaluated on rows of states. Part of mop.hpp (the rollout and fit),
// which includes it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "flexrnn/types.hpp"

namespace flexrnn {

enum class ProgramOp : std::int32_t { atom = 0, op_not = 1, op_and = 2, op_or = 3 };
enum class AtomKind : std::int32_t {
  energy = 0,   // sqrt(sum_i (x_i - c)^2) / d - L        params (c, L)
  abs = 1,      // |x_i - c| - L                          index (i), params (c, L)
  linear = 2,   // w . x + b                              index (row of weights), params (b)
  ellipse = 3,  // ((x_i-ci)/si)^2 + ((x_j-cj)/sj)^2 - 1  index (i, j), params (ci, cj, si, sj)
  l1 = 4,       // |x_i| / si + |x_j| / sj - 1            index (i, j), params (si, sj)
  heart = 5,    // (x_i^2 + x_j^2 - c)^3 - x_i^2 x_j^3    index (i, j), params (c)
  custom = 6,   // the k-th caller-supplied predicate     index (k)
};
inline constexpr int kProgramStack = 64;

// One program per context: the code of context c is code[start[c] .. start[c + 1]).
struct Program {
  const std::int32_t* code = nullptr;   // (L, 2): (op, atom)
  const std::int32_t* start = nullptr;  // (n_programs + 1)
  const std::int32_t* kind = nullptr;   // (n_atoms)
  const std::int64_t* index = nullptr;  // (n_atoms, 2)
  const double* params = nullptr;       // (n_atoms, 4)
  const double* weights = nullptr;      // (n_weights, d)
  Index n_programs = 0, n_atoms = 0;
  bool has_custom = false;
  bool empty() const { return n_programs == 0; }
};

// A predicate the core cannot evaluate itself (a Python callable): out[r] = 1 when row r of
// X (m, d) is in the set of custom atom k. Never called from two threads at once.
template <class S>
using CustomAtoms = std::function<void(Index k, const S* X, Index m, Index d, std::uint8_t* out)>;

namespace detail {

template <class S>
double atom_score(const Program& prog, Index a, const S* x, Index d, double custom_flag) {
  const double* q = prog.params + 4 * a;
  const std::int64_t* ij = prog.index + 2 * a;
  const double xi = static_cast<double>(x[ij[0]]);
  const double xj = static_cast<double>(x[ij[1]]);
  switch (static_cast<AtomKind>(prog.kind[a])) {
    case AtomKind::energy: {  // vectorised: every successor of every step asks this
      const Eigen::Map<const Eigen::Array<S, Eigen::Dynamic, 1>> xv(x, d);
      const double sq = static_cast<double>((xv - S(q[0])).square().sum());
      return std::sqrt(sq) / static_cast<double>(d) - q[1];
    }
    case AtomKind::abs:
      return std::abs(xi - q[0]) - q[1];
    case AtomKind::linear: {
      const double* w = prog.weights + ij[0] * d;
      double s = q[0];
      for (Index i = 0; i < d; ++i) s += w[i] * static_cast<double>(x[i]);
      return s;
    }
    case AtomKind::ellipse: {
      const double u = (xi - q[0]) / q[2], v = (xj - q[1]) / q[3];
      return u * u + v * v - 1.0;
    }
    case AtomKind::l1:
      return std::abs(xi) / q[0] + std::abs(xj) / q[1] - 1.0;
    case AtomKind::heart: {
      const double r = xi * xi + xj * xj - q[0];
      return r * r * r - xi * xi * xj * xj * xj;
    }
    case AtomKind::custom:
      return custom_flag;
  }
  throw std::invalid_argument("terminal program: unknown atom kind");
}

}  // namespace detail

// out[r] = 1 when row r of X (m, d) is in the set of program `which`. custom_flags holds,
// for each custom atom k, its m flags at custom_flags[k * m ...] (filled by the caller).
template <class S>
void evaluate_program(const Program& prog, Index which, const S* X, Index m, Index d,
                      const std::uint8_t* custom_flags, std::uint8_t* out) {
  const std::int32_t* code = prog.code + 2 * prog.start[which];
  const Index len = prog.start[which + 1] - prog.start[which];
  bool stack[kProgramStack];
  for (Index r = 0; r < m; ++r) {
    const S* x = X + r * d;
    int top = 0;
    for (Index i = 0; i < len; ++i) {
      const auto op = static_cast<ProgramOp>(code[2 * i]);
      if (op == ProgramOp::atom) {
        const Index a = code[2 * i + 1];
        const double flag =
            (prog.kind[a] == static_cast<std::int32_t>(AtomKind::custom) && custom_flags)
                ? (custom_flags[prog.index[2 * a] * m + r] ? 1.0 : -1.0)
                : 0.0;
        stack[top++] = detail::atom_score(prog, a, x, d, flag) > 0.0;
      } else if (op == ProgramOp::op_not) {
        stack[top - 1] = !stack[top - 1];
      } else {
        const bool rhs = stack[--top];
        const bool lhs = stack[top - 1];
        stack[top - 1] = op == ProgramOp::op_and ? (lhs && rhs) : (lhs || rhs);
      }
    }
    out[r] = stack[0] ? 1 : 0;
  }
}

// Program evaluation with the custom atoms asked of `custom` first (only those the
// program uses; `buffer` is resized as needed).
template <class S>
void evaluate_set(const Program& prog, Index which, const S* X, Index m, Index d,
                  const CustomAtoms<S>* custom, std::vector<std::uint8_t>& buffer,
                  std::uint8_t* out) {
  const std::uint8_t* flags = nullptr;
  if (prog.has_custom) {
    if (!custom) throw std::invalid_argument("terminal program: custom atom without a callback");
    Index n_custom = 0;
    for (Index a = 0; a < prog.n_atoms; ++a) {
      if (prog.kind[a] == static_cast<std::int32_t>(AtomKind::custom)) {
        // the index picks a predicate and a slot of the buffer: never negative
        if (prog.index[2 * a] < 0) {
          throw std::invalid_argument("terminal program: custom atom " +
                                      std::to_string(prog.index[2 * a]) + " (must be >= 0)");
        }
        n_custom = std::max<Index>(n_custom, prog.index[2 * a] + 1);
      }
    }
    buffer.assign(static_cast<std::size_t>(n_custom * m), 0);
    const std::int32_t* code = prog.code + 2 * prog.start[which];
    for (Index i = 0; i < prog.start[which + 1] - prog.start[which]; ++i) {
      const Index a = code[2 * i + 1];
      if (static_cast<ProgramOp>(code[2 * i]) == ProgramOp::atom &&
          prog.kind[a] == static_cast<std::int32_t>(AtomKind::custom)) {
        (*custom)(prog.index[2 * a], X, m, d, buffer.data() + prog.index[2 * a] * m);
      }
    }
    flags = buffer.data();
  }
  evaluate_program(prog, which, X, m, d, flags, out);
}

}  // namespace flexrnn
