// The thread count used by every layer and by Eigen's matrix products.
//
// It follows OMP_NUM_THREADS by default (OpenMP reads it at start-up) and can
// be changed from code with set_num_threads(). Without OpenMP everything runs
// on one thread.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "errors.hpp"

namespace convnet {

/// Number of threads layers will use for their next call.
inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Sets the thread count for layers and for Eigen's GEMM; n >= 1.
inline void set_num_threads(int n) {
  if (n < 1) throw ArgumentError("set_num_threads: thread count must be >= 1, got " + std::to_string(n));
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  Eigen::setNbThreads(n);
}

/// Index of the calling thread inside a parallel region (0 outside one).
inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// Whether the caller already runs inside a parallel region (then a kernel stays on its thread).
inline bool in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

namespace detail {

/// Runs body(i, thread) for i in [0, count), split statically over the threads
/// when `parallel` is true. Inside such a region Eigen's GEMM sees a team of
/// several threads and stays single-threaded, so the two levels never nest.
template <class Body>
void parallel_for(Eigen::Index count, bool parallel, const Body& body) {
#ifdef _OPENMP
  if (parallel && count > 1 && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (Eigen::Index i = 0; i < count; ++i) body(i, omp_get_thread_num());
    return;
  }
#endif
  (void)parallel;
  for (Eigen::Index i = 0; i < count; ++i) body(i, 0);
}

/// Runs body(begin, end) over [0, count) in chunks of about 64 KiB of floats,
/// in parallel when there are several chunks: element-wise layers use it.
template <class Body>
void parallel_chunks(Eigen::Index count, const Body& body) {
  const Eigen::Index chunk = 16384;
  const Eigen::Index chunks = (count + chunk - 1) / chunk;
  parallel_for(chunks, chunks > 1, [&](Eigen::Index c, int) { body(c * chunk, std::min(count, (c + 1) * chunk)); });
}

}  // namespace detail
}  // namespace convnet
