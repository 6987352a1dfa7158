// The most memory the process has held so far (its resident high-water mark), for the training log:
// a run's peak is one of its figures (issue 42 allows the fast recipe 2 GB), and a figure printed
// at each epoch's end says whether training or the report after it sets the peak.
#pragma once

#include <cstdint>
#include <optional>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/resource.h>
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

}  // namespace convnet
