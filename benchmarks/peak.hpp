// This machine's peak: independent fused multiply-add chains, as wide as the
// compiler makes them (-march=native: AVX-512 or AVX2 + FMA), on every thread.
// Every speed figure is quoted as a share of this, measured in the same run,
// because "2 cores" has meant CPUs with 225 and 437 GFLOP/s on two threads.
#pragma once

#include <algorithm>
#include <chrono>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace convnet_bench {

using Lanes = float __attribute__((vector_size(64)));
constexpr int kChains = 12;  // enough to cover two FMA pipes' latency

inline double fma_chains(long iterations) {
  Lanes acc[kChains];
  const Lanes mul = Lanes{} + 0.999999f, add = Lanes{} + 1e-7f;
  for (int c = 0; c < kChains; ++c) acc[c] = Lanes{} + static_cast<float>(c);
  for (long i = 0; i < iterations; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * mul + add;
  }
  float sum = 0;
  for (int c = 0; c < kChains; ++c) sum += acc[c][0];
  return sum;
}

/// FLOPs of one fma_chains(iterations) call.
inline double chain_flops(long iterations) {
  return 2.0 * (sizeof(Lanes) / sizeof(float)) * kChains * static_cast<double>(iterations);
}

/// Runs fma_chains on `threads` threads at once; returns the sink so nothing is optimised away.
inline double run_chains(int threads, long iterations) {
  double sink = 0;
#pragma omp parallel for reduction(+ : sink) num_threads(threads)
  for (int t = 0; t < threads; ++t) sink += fma_chains(iterations);
  return sink;
}

/// GFLOP/s on `threads` threads: the best of seven runs of ~10 ms after an
/// untimed one that starts the thread team. The best, not the median: other
/// work on the machine can only slow a run down, and this is the yardstick.
inline double measure_peak_gflops(int threads) {
  const long iterations = 1 << 22;
  volatile double sink = run_chains(threads, iterations / 8);
  double best = 0;
  for (int r = 0; r < 7; ++r) {
    const auto start = std::chrono::steady_clock::now();
    sink = sink + run_chains(threads, iterations);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, chain_flops(iterations) * threads / s / 1e9);
  }
  return best;
}

}  // namespace convnet_bench
