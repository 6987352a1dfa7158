// Counts heap allocations: replaces malloc and its relatives with counting
// wrappers around glibc's own allocator (__libc_malloc and friends), so it
// sees every allocation - ours, Eigen's, libstdc++'s, the OpenMP runtime's.
// Include it in exactly one source file of an executable (it defines malloc);
// count between alloc_counter::start() and alloc_counter::stop().
#pragma once

#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <cstddef>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace alloc_counter {
inline std::atomic<bool> counting{false};
inline std::atomic<long> allocations{0};
/// A cap on one allocation (0: none): bigger requests fail as if memory had run out, and are counted
/// in `refused` with the largest remembered - so a test can show that hostile input never asks for
/// gigabytes, without the machine having to refuse (or grant) them.
inline std::atomic<std::size_t> cap{0};
inline std::atomic<long> refused{0};
inline std::atomic<std::size_t> largest_refused{0};
/// Heap bytes held (as malloc_usable_size gives them) since start_bytes(), and the most at once:
/// the sum of every allocation live, not only the largest.
inline std::atomic<bool> counting_bytes{false};
inline std::atomic<long long> live_bytes{0};
inline std::atomic<long long> peak_bytes{0};
inline void count() {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}
inline void* gained(void* p) {
  if (p != nullptr && counting_bytes.load(std::memory_order_relaxed)) {
    const long long now = live_bytes.fetch_add(static_cast<long long>(malloc_usable_size(p))) +
                          static_cast<long long>(malloc_usable_size(p));
    long long peak = peak_bytes.load();
    while (now > peak && !peak_bytes.compare_exchange_weak(peak, now)) {
    }
  }
  return p;
}
inline void released(void* p) {
  if (p != nullptr && counting_bytes.load(std::memory_order_relaxed)) {
    live_bytes.fetch_sub(static_cast<long long>(malloc_usable_size(p)));
  }
}
inline void start_bytes() {
  live_bytes = 0;
  peak_bytes = 0;
  counting_bytes = true;
}
/// Stops; returns the most bytes held at once since start_bytes().
inline long long stop_bytes() {
  counting_bytes = false;
  return peak_bytes.load();
}
/// True when an allocation of `n` bytes must fail under the cap.
inline bool over_cap(std::size_t n) {
  const std::size_t c = cap.load(std::memory_order_relaxed);
  if (c == 0 || n <= c) return false;
  refused.fetch_add(1);
  if (n > largest_refused.load()) largest_refused.store(n);
  return true;
}
/// Caps every single allocation at `bytes` until the guard ends.
struct CapGuard {
  explicit CapGuard(std::size_t bytes) {
    refused = 0;
    largest_refused = 0;
    cap = bytes;
  }
  ~CapGuard() { cap = 0; }
};
inline void start() {
  allocations = 0;
  counting = true;
}
/// Stops counting; returns the allocations since start().
inline long stop() {
  counting = false;
  return allocations.load();
}
}  // namespace alloc_counter

extern "C" {
void* malloc(std::size_t n) {
  alloc_counter::count();
  if (alloc_counter::over_cap(n)) return errno = ENOMEM, nullptr;
  return alloc_counter::gained(__libc_malloc(n));
}
void* calloc(std::size_t n, std::size_t size) {
  alloc_counter::count();
  if (size != 0 && n > static_cast<std::size_t>(-1) / size) return errno = ENOMEM, nullptr;
  if (alloc_counter::over_cap(n * size)) return errno = ENOMEM, nullptr;
  return alloc_counter::gained(__libc_calloc(n, size));
}
void* realloc(void* p, std::size_t n) {
  alloc_counter::count();
  if (alloc_counter::over_cap(n)) return errno = ENOMEM, nullptr;
  if (!alloc_counter::counting_bytes.load(std::memory_order_relaxed)) return __libc_realloc(p, n);
  const long long before = p != nullptr ? static_cast<long long>(malloc_usable_size(p)) : 0;
  void* q = __libc_realloc(p, n);
  if (q != nullptr || n == 0) alloc_counter::live_bytes.fetch_sub(before);
  return alloc_counter::gained(q);
}
void free(void* p) {
  alloc_counter::released(p);
  __libc_free(p);
}
void* memalign(std::size_t alignment, std::size_t n) {
  alloc_counter::count();
  if (alloc_counter::over_cap(n)) return errno = ENOMEM, nullptr;
  return alloc_counter::gained(__libc_memalign(alignment, n));
}
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  alloc_counter::count();
  if (alloc_counter::over_cap(n)) return errno = ENOMEM, nullptr;
  return alloc_counter::gained(__libc_memalign(alignment, n));
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  alloc_counter::count();
  if (alloc_counter::over_cap(n)) return ENOMEM;
  void* p = __libc_memalign(alignment, n);
  if (!p) return ENOMEM;
  *out = alloc_counter::gained(p);
  return 0;
}
}

