// Weight initialisation: the helpers any parameter can be drawn with, and the
// seeded default that Conv2d and Dense start from.
//
// Every helper takes a Parameter view (what layer.parameters() returns) and a
// random stream, and fills the parameter in place. Fans follow PyTorch's
// layout: for a weight [out, in, kh, kw] (or [out, in]) fan_in = in * kh * kw
// and fan_out = out * kh * kw; a bias [out] has fan_in = fan_out = out.
//
// The layers' default is PyTorch's (nn.Conv2d, nn.Linear reset_parameters):
// weights Kaiming-uniform with a = sqrt(5), which works out to
// U(-1/sqrt(fan_in), +1/sqrt(fan_in)), and biases U(-1/sqrt(fan_in), +1/sqrt(fan_in))
// with the weight's fan_in. Without this a hand-built network cannot learn:
// all-zero weights give every hidden unit the same value and the same gradient.
//
// Seeds: a layer built with `.seed(s)` in its options draws from Rng(s), so
// the same seed gives the same weights. A layer built without one takes the
// next seed of a process-wide sequence (as PyTorch's global generator), so two
// layers of a network differ while a program still builds the same network
// every run; manual_seed(s) restarts the sequence.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "errors.hpp"
#include "parameter.hpp"
#include "random.hpp"

namespace convnet {

namespace detail {
inline std::atomic<std::uint64_t>& default_seed_sequence() {
  static std::atomic<std::uint64_t> next{0x5EED};
  return next;
}
}  // namespace detail

/// Restarts the sequence of seeds that layers built without an explicit seed draw from.
inline void manual_seed(std::uint64_t seed) { detail::default_seed_sequence().store(seed); }

/// The seed the next layer built without an explicit seed will use (and advances the sequence).
inline std::uint64_t next_default_seed() {
  return detail::mix64(detail::default_seed_sequence().fetch_add(1) + detail::kGolden);
}

namespace init {

/// Inputs feeding one output unit: the product of every dimension but the first.
inline Index fan_in(const std::vector<Index>& shape) {
  if (shape.size() < 2) return shape.empty() ? 1 : shape[0];
  Index f = 1;
  for (std::size_t d = 1; d < shape.size(); ++d) f *= shape[d];
  return f;
}

/// Outputs one input unit feeds: the first dimension times the receptive field.
inline Index fan_out(const std::vector<Index>& shape) {
  if (shape.size() < 2) return shape.empty() ? 1 : shape[0];
  Index f = shape[0];
  for (std::size_t d = 2; d < shape.size(); ++d) f *= shape[d];
  return f;
}

template <class T>
void constant(const Parameter<T>& p, double value) {
  p.values().setConstant(static_cast<T>(value));
}

/// N(mean, stddev) in every element; stddev >= 0.
template <class T>
void normal(const Parameter<T>& p, double stddev, Rng& rng, double mean = 0.0) {
  detail::require_option(stddev >= 0.0 && std::isfinite(stddev), "init::normal", "stddev", "finite and >= 0",
                         stddev);
  for (Index i = 0; i < p.size; ++i) p.value[i] = static_cast<T>(rng.normal(mean, stddev));
}

/// U(low, high) in every element; low <= high.
template <class T>
void uniform(const Parameter<T>& p, double low, double high, Rng& rng) {
  detail::require_option(low <= high && std::isfinite(low) && std::isfinite(high), "init::uniform", "high",
                         ">= low and finite", high);
  for (Index i = 0; i < p.size; ++i) p.value[i] = static_cast<T>(rng.uniform(low, high));
}

/// He et al. 2015 for ReLU networks: N(0, sqrt(2 / fan_in)).
template <class T>
void he_normal(const Parameter<T>& p, Rng& rng) {
  normal(p, std::sqrt(2.0 / static_cast<double>(fan_in(p.shape))), rng);
}

/// Glorot & Bengio 2010: U(-b, b) with b = sqrt(6 / (fan_in + fan_out)).
template <class T>
void xavier_uniform(const Parameter<T>& p, Rng& rng) {
  const double bound = std::sqrt(6.0 / static_cast<double>(fan_in(p.shape) + fan_out(p.shape)));
  uniform(p, -bound, bound, rng);
}

/// The layers' default (PyTorch's): weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
/// fan_in taken from the weight. `bias` may be null (a layer without bias).
template <class T>
void layer_default(const Parameter<T>& weight, const Parameter<T>* bias, std::uint64_t seed) {
  Rng rng(seed);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(weight.shape)));
  uniform(weight, -bound, bound, rng);
  if (bias) uniform(*bias, -bound, bound, rng);
}

}  // namespace init
}  // namespace convnet
