// Random numbers: small, portable, and with a state that fits in a checkpoint.
//
// Rng is SplitMix64 (Steele, Lea & Flood 2014): one 64-bit word of state, so a
// checkpoint stores it exactly and a resumed run draws the same numbers. The
// normal and uniform draws are written out here rather than taken from
// <random>, whose distributions differ between standard libraries.
//
// counter_uniform() is a counter-based generator: the value depends only on
// (seed, stream, index), not on which thread asks or in which order. Dropout
// uses it so that its masks do not depend on how work is split over threads.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace convnet {

namespace detail {
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

/// Top 53 bits as a double in [0, 1).
inline double to_unit(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }
}  // namespace detail

class Rng {
 public:
  using result_type = std::uint64_t;
  explicit Rng(std::uint64_t seed = 0) : state_(seed) {}

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
  result_type operator()() { return detail::mix64(state_ += detail::kGolden); }

  /// Uniform in [0, 1).
  double uniform() { return detail::to_unit((*this)()); }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform integer in [0, n); n > 0. Lemire's multiply-shift, bias below 2^-64 * n.
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>((*this)()) * n) >> 64);
  }
  /// Normal(mean, stddev) by Box-Muller; one draw per call, so the state stays one word.
  double normal(double mean = 0.0, double stddev = 1.0) {
    const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    const double u2 = uniform();
    return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  /// Fisher-Yates shuffle of [first, last).
  template <class It>
  void shuffle(It first, It last) {
    for (auto n = last - first; n > 1; --n) {
      auto j = static_cast<decltype(n)>(below(static_cast<std::uint64_t>(n)));
      std::swap(first[n - 1], first[j]);
    }
  }

  std::uint64_t state() const { return state_; }
  void set_state(std::uint64_t s) { state_ = s; }

 private:
  std::uint64_t state_;
};

/// A uniform [0, 1) number determined by (seed, stream, index) alone.
inline double counter_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  const std::uint64_t key = detail::mix64(seed + detail::kGolden * (stream + 1));
  return detail::to_unit(detail::mix64(key ^ detail::mix64(index + detail::kGolden)));
}

}  // namespace convnet
