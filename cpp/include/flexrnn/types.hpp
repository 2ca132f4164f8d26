// Eigen aliases shared by every model: row-major maps over caller-owned buffers
// (NumPy arrays are row-major), and a view of a time-major (T, B, N) tensor.
#pragma once

#include <Eigen/Dense>

#include <cstddef>
#include <cstdint>

namespace flexrnn {

using Index = Eigen::Index;

template <class S>
using RowMat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class S>
using RowVec = Eigen::Matrix<S, 1, Eigen::Dynamic>;
template <class S>
using MatMap = Eigen::Map<RowMat<S>>;
template <class S>
using CMatMap = Eigen::Map<const RowMat<S>>;
template <class S>
using CRowVecMap = Eigen::Map<const RowVec<S>>;

// A time-major (T, B, N) array. slab(t, b0, rows) is the (rows, N) block of
// trials b0..b0+rows-1 at step t, contiguous in memory.
template <class S>
struct Tensor3 {
  S* data = nullptr;
  Index T = 0, B = 0, N = 0;

  MatMap<S> slab(Index t, Index b0, Index rows) const {
    return MatMap<S>(data + (t * B + b0) * N, rows, N);
  }
};

template <class S>
struct CTensor3 {
  const S* data = nullptr;
  Index T = 0, B = 0, N = 0;

  CMatMap<S> slab(Index t, Index b0, Index rows) const {
    return CMatMap<S>(data + (t * B + b0) * N, rows, N);
  }
};

}  // namespace flexrnn
