// The most memory the process has held so far (its resident high-water mark), for the training log:
// a run's peak is one of its figures (issue 42 allows the fast recipe 2 GB), and a figure printed
// at each epoch's end says whether training or the report after it sets the peak. And the one
// allocator setting that keeps that peak from drifting upwards over a run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/resource.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace convnet {

/// Peak resident memory in bytes; none where the system does not say.
inline std::optional<std::int64_t> peak_memory_bytes() {
#if defined(__unix__) || defined(__APPLE__)
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return std::nullopt;
#if defined(__APPLE__)
  return static_cast<std::int64_t>(usage.ru_maxrss);  // bytes on macOS
#else
  return static_cast<std::int64_t>(usage.ru_maxrss) * 1024;  // kilobytes on Linux and the BSDs
#endif
#else
  return std::nullopt;
#endif
}

/// Makes every allocation of at least `bytes` a mapping of its own, which free() gives back to the
/// system at once (glibc's M_MMAP_THRESHOLD; false, nothing done, with another C library). Why: by
/// default glibc raises that threshold each time such a block is freed, up to 32 MiB, so later
/// blocks of that size come from the heap, which keeps their pages as sizes change. A network's
/// activations change shape several times an epoch (the last, smaller batch; validation), and the
/// fast recipe's run grew by ~125 MiB an epoch that way. A program calls it once, first thing.
inline bool return_large_blocks_to_the_system(std::size_t bytes = std::size_t{1} << 20) {
#if defined(__GLIBC__)
  return mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) == 1;
#else
  (void)bytes;
  return false;
#endif
}

}  // namespace convnet
