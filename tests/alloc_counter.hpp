// Counts heap allocations: replaces malloc and its relatives with counting
// wrappers around glibc's own allocator (__libc_malloc and friends), so it
// sees every allocation - ours, Eigen's, libstdc++'s, the OpenMP runtime's.
// Include it in exactly one source file of an executable (it defines malloc);
// count between alloc_counter::start() and alloc_counter::stop().
#pragma once

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
inline void count() {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}
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
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  alloc_counter::count();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  alloc_counter::count();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* memalign(std::size_t alignment, std::size_t n) {
  alloc_counter::count();
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  alloc_counter::count();
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  alloc_counter::count();
  void* p = __libc_memalign(alignment, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}

