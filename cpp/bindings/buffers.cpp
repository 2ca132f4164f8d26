#include "buffers.hpp"

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

#include "common.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define FLEXRNN_BUFFERS_MMAP 1
#endif

namespace flexrnn::py_bind {
namespace {

constexpr std::size_t kHeader = 64;  // keeps the data 64-byte aligned
// Blocks at least this large are mapped and unmapped directly, so that a freed one returns
// to the system at once (glibc keeps freed heap memory mapped).
constexpr std::size_t kMapThreshold = std::size_t{1} << 20;
constexpr std::size_t kDefaultLimit = std::size_t{256} << 20;
// a freed block not reused is released by the second kernel call after it was freed (calls
// reuse before they release: a block freed between two calls of a loop is always reused)
constexpr std::uint64_t kReleaseAfterCalls = 2;

struct Block {
  void* base;
  std::size_t bytes;
  std::uint64_t call;  // the call counter when it was freed
};

std::mutex cache_mutex;
std::vector<Block> cache;  // freed blocks, most recent last
std::size_t cached_bytes = 0;
std::size_t limit = kDefaultLimit;
std::uint64_t calls = 0;

struct Header {
  std::size_t bytes;
};

void* allocate(std::size_t total) {
#ifdef FLEXRNN_BUFFERS_MMAP
  if (total >= kMapThreshold) {
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
#endif
  return std::aligned_alloc(kHeader, total);
}

void deallocate(void* base, std::size_t total) {
#ifdef FLEXRNN_BUFFERS_MMAP
  if (total >= kMapThreshold) {
    munmap(base, total);
    return;
  }
#endif
  (void)total;
  std::free(base);
}

// Drops the oldest blocks until `extra` more bytes fit under the limit (cache_mutex held).
void make_room(std::size_t extra) {
  std::size_t i = 0;
  while (i < cache.size() && cached_bytes + extra > limit) {
    deallocate(cache[i].base, cache[i].bytes);
    cached_bytes -= cache[i].bytes;
    ++i;
  }
  cache.erase(cache.begin(), cache.begin() + static_cast<std::ptrdiff_t>(i));
}

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
  void* base = allocate(total);
  if (!base) throw std::bad_alloc();
  static_cast<Header*>(base)->bytes = total;
  return static_cast<char*>(base) + kHeader;
}

void buffer_release(void* p) {
  if (!p) return;
  void* base = static_cast<char*>(p) - kHeader;
  const std::size_t bytes = static_cast<Header*>(base)->bytes;
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (bytes > limit) {
    deallocate(base, bytes);
    return;
  }
  make_room(bytes);
  cache.push_back({base, bytes, calls});
  cached_bytes += bytes;
}

void buffer_cache_next_call() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  ++calls;
  std::size_t kept = 0;
  for (const Block& b : cache) {
    if (calls - b.call >= kReleaseAfterCalls) {
      deallocate(b.base, b.bytes);
      cached_bytes -= b.bytes;
    } else {
      cache[kept++] = b;
    }
  }
  cache.resize(kept);
}

std::size_t buffer_cache_bytes() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return cached_bytes;
}

void buffer_cache_clear() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  for (const Block& b : cache) deallocate(b.base, b.bytes);
  cache.clear();
  cached_bytes = 0;
}

void register_buffers(py::module_& m) {
  m.def("buffer_cache_bytes", &buffer_cache_bytes,
        "Bytes of freed output arrays kept for reuse by later rollouts.");
  m.def("buffer_cache_clear", &buffer_cache_clear,
        "Return the memory of cached output arrays to the system.");
  m.def(
      "buffer_cache_info",
      [] {
        std::lock_guard<std::mutex> lock(cache_mutex);
        py::dict d;
        d["bytes"] = cached_bytes;
        d["blocks"] = cache.size();
        d["limit"] = limit;
        d["release_after_calls"] = kReleaseAfterCalls;
        return d;
      },
      "The output-buffer cache: bytes and blocks held now, limit in bytes, and the kernel "
      "call after its release (counting from 1) by which a freed buffer not reused is "
      "returned to the system.");
  m.def(
      "set_buffer_cache_limit",
      [](std::size_t bytes) {
        std::lock_guard<std::mutex> lock(cache_mutex);
        limit = bytes;
        make_room(0);
      },
      py::arg("bytes"),
      "At most this many bytes of freed output arrays are kept for reuse (0: none); blocks "
      "over the limit are returned to the system now.");
}

}  // namespace flexrnn::py_bind
