// Output arrays of rollouts come from a small cache of freed buffers.
//
// A rollout returns arrays of T*B*n elements. Allocated afresh each run,
// glibc hands back memory from mmap, and the kernel faults in and zeroes every
// page: at small n that costs as much as the simulation itself. Buffers freed
// by NumPy go back to this cache and are reused by the next runs of the same size.
//
// The cache is bounded by the workload and by a limit: a freed buffer that the next kernel
// call (LongCall, common.hpp) does not reuse is returned to the system by the one after, and
// the cache never holds more than the limit (set_buffer_cache_limit; 0 turns caching off).
#pragma once

#include <pybind11/numpy.h>

#include <cstddef>
#include <vector>

namespace flexrnn::py_bind {

void* buffer_acquire(std::size_t bytes);
void buffer_release(void* p);
std::size_t buffer_cache_bytes();
void buffer_cache_clear();
// Marks the start of a kernel call (after it took its outputs): buffers freed before the
// previous call and not reused since are returned to the system.
void buffer_cache_next_call();

// An uninitialised C-contiguous array whose memory comes from the cache.
template <class S>
pybind11::array_t<S, pybind11::array::c_style> cached_array(std::vector<pybind11::ssize_t> shape) {
  std::size_t count = 1;
  for (auto s : shape) count *= static_cast<std::size_t>(s);
  void* p = buffer_acquire(count * sizeof(S));
  pybind11::capsule owner(p, [](void* q) { buffer_release(q); });
  return pybind11::array_t<S, pybind11::array::c_style>(std::move(shape), static_cast<S*>(p),
                                                         owner);
}

}  // namespace flexrnn::py_bind
