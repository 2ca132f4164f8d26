#include "buffers.hpp"

#include <cstdlib>
#include <mutex>
#include <new>

#include "common.hpp"

namespace flexrnn::py_bind {
namespace {

constexpr std::size_t kHeader = 64;                // keeps the data 64-byte aligned
constexpr std::size_t kCacheCap = 512u << 20;      // bytes kept for reuse at most
constexpr std::size_t kMaxCachedBlock = 256u << 20;

struct Block {
  void* base;
  std::size_t bytes;
};

std::mutex cache_mutex;
std::vector<Block> cache;  // freed blocks, most recent last
std::size_t cached_bytes = 0;

std::size_t& size_of(void* base) { return *static_cast<std::size_t*>(base); }

}  // namespace

void* buffer_acquire(std::size_t bytes) {
  const std::size_t total = (bytes + 2 * kHeader - 1) / kHeader * kHeader;  // header + data
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    // reuse a cached block of this size or up to 1/8 larger, most recent first
    for (auto it = cache.rbegin(); it != cache.rend(); ++it) {
      if (it->bytes >= total && it->bytes - total <= total / 8) {
        void* base = it->base;
        cached_bytes -= it->bytes;
        cache.erase(std::next(it).base());
        return static_cast<char*>(base) + kHeader;
      }
    }
  }
  void* base = std::aligned_alloc(kHeader, total);
  if (!base) throw std::bad_alloc();
  size_of(base) = total;
  return static_cast<char*>(base) + kHeader;
}

void buffer_release(void* p) {
  if (!p) return;
  void* base = static_cast<char*>(p) - kHeader;
  const std::size_t bytes = size_of(base);
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (bytes > kMaxCachedBlock) {
    std::free(base);
    return;
  }
  while (!cache.empty() && cached_bytes + bytes > kCacheCap) {  // drop the oldest
    cached_bytes -= cache.front().bytes;
    std::free(cache.front().base);
    cache.erase(cache.begin());
  }
  cache.push_back({base, bytes});
  cached_bytes += bytes;
}

std::size_t buffer_cache_bytes() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return cached_bytes;
}

void buffer_cache_clear() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  for (const Block& b : cache) std::free(b.base);
  cache.clear();
  cached_bytes = 0;
}

void register_buffers(py::module_& m) {
  m.def("buffer_cache_bytes", &buffer_cache_bytes,
        "Bytes of freed output arrays kept for reuse by later rollouts.");
  m.def("buffer_cache_clear", &buffer_cache_clear,
        "Return the memory of cached output arrays to the system.");
}

}  // namespace flexrnn::py_bind
