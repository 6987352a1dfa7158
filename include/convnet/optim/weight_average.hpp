// WeightAverage: an exponential moving average of a network's parameters and
// buffers (Polyak averaging, as TensorFlow's ExponentialMovingAverage and
// timm's ModelEma), often a better model to evaluate than the last weights
// because it smooths the noise of the last steps.
//
//   WeightAverage<float> average(net, WeightAverageOptions().decay(0.999));
//   ... after every optimizer step:  average.update();
//   { WeightAverage<float>::Swapped in(average);  evaluate(net, ...); }  // the average, then back
//
// After each update, average = d average + (1 - d) current with
// d = min(decay, (1 + t) / (10 + t)) at update t (from 1): the warm-up keeps the
// random initial weights from lingering in the average (TensorFlow's
// num_updates rule); warmup(false) uses decay from the start. Buffers
// (BatchNorm's running statistics) are averaged the same way, so the averaged
// model normalises with statistics that match its weights.
//
// Lookahead (Zhang et al. 2019; what the CIFAR-10 speed records call their EMA): with
// lookahead(true) the network takes the average's values after each averaging, so the fast weights
// keep restarting from the slow ones; every(k) averages at every k-th update() only, and
// ramp(total, power) replaces the warm-up rule by decay (t / total)^power at update call t, which
// leaves the early steps alone and pulls harder as the run ends. The fast recipe uses every(5),
// decay 0.95^5, ramp(steps, 3), and copy_to_network() after its last step.
//
// Checkpoints: save() writes average/param/<name>, average/buffer/<name>, average/updates and
// average/calls; load() checks every shape before it changes anything.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../errors.hpp"
#include "../models/sequential.hpp"

namespace convnet {

struct WeightAverageOptions {
  WeightAverageOptions& decay(double v) { decay_ = v; return *this; }
  WeightAverageOptions& warmup(bool v) { warmup_ = v; return *this; }
  /// Average at every k-th call of update() only (1: every call).
  WeightAverageOptions& every(std::int64_t k) { every_ = k; return *this; }
  /// After each averaging, the network takes the average's values (Lookahead).
  WeightAverageOptions& lookahead(bool v) { lookahead_ = v; return *this; }
  /// The decay at call t is decay (t / total_calls)^power (t capped at total_calls), instead of warm-up's.
  WeightAverageOptions& ramp(std::int64_t total_calls, double power) {
    ramp_calls_ = total_calls;
    ramp_power_ = power;
    return *this;
  }
  double decay() const { return decay_; }
  bool warmup() const { return warmup_; }
  std::int64_t every() const { return every_; }
  bool lookahead() const { return lookahead_; }
  std::int64_t ramp_calls() const { return ramp_calls_; }
  double ramp_power() const { return ramp_power_; }

 private:
  double decay_ = 0.999;
  bool warmup_ = true, lookahead_ = false;
  std::int64_t every_ = 1, ramp_calls_ = 0;
  double ramp_power_ = 0;
};

template <class T>
class WeightAverage {
 public:
  WeightAverage(Sequential<T>& net, const WeightAverageOptions& options) : options_(options) {
    detail::require_option(options.decay() > 0 && options.decay() < 1, "WeightAverage", "decay", "in (0, 1)",
                           options.decay());
    detail::require_option(options.every() >= 1, "WeightAverage", "every", ">= 1", options.every());
    detail::require_option(options.ramp_calls() >= 0 && options.ramp_power() >= 0, "WeightAverage", "ramp",
                           "a count and a power >= 0", options.ramp_power());
    for (const auto& p : net.parameters()) tensors_.push_back({"param/" + p.name, p.shape, p.value, p.size, {}});
    for (const auto& b : net.buffers()) tensors_.push_back({"buffer/" + b.name, b.shape, b.value, b.size, {}});
    for (auto& t : tensors_) t.average.assign(t.live, t.live + t.size);  // starts at the current weights
  }

  const WeightAverageOptions& options() const { return options_; }
  /// Averagings done, and calls of update() (every(k): k calls an averaging).
  std::uint64_t updates() const { return updates_; }
  std::uint64_t calls() const { return calls_; }

  /// The decay the next averaging will use (at call calls() + 1 with every(1)).
  double next_decay() const { return decay_at(calls_ + static_cast<std::uint64_t>(options_.every())); }

  /// Moves the average towards the network's current values (at every every()-th call), and with
  /// lookahead sets the network to the average.
  void update() {
    if (++calls_ % static_cast<std::uint64_t>(options_.every()) != 0) return;
    const T d = static_cast<T>(decay_at(calls_)), keep = 1 - d;
    for (auto& t : tensors_) {
      T* avg = t.average.data();
      for (Index i = 0; i < t.size; ++i) avg[i] = d * avg[i] + keep * t.live[i];
    }
    ++updates_;
    if (options_.lookahead()) copy_to_network();
  }

  /// The network takes the average's values (Lookahead's last step).
  void copy_to_network() {
    for (auto& t : tensors_) std::copy(t.average.begin(), t.average.end(), t.live);
  }

  /// Exchanges the network's values with the average (call twice to undo).
  void swap() {
    for (auto& t : tensors_) std::swap_ranges(t.live, t.live + t.size, t.average.data());
  }

  /// The average in the network for a scope (evaluation, saving), the training weights back after.
  class Swapped {
   public:
    explicit Swapped(WeightAverage& a) : a_(a) { a_.swap(); }
    ~Swapped() { a_.swap(); }
    Swapped(const Swapped&) = delete;
    Swapped& operator=(const Swapped&) = delete;

   private:
    WeightAverage& a_;
  };

  /// The average in a checkpoint under `prefix` (the one save/load pair, checkpoint/state.hpp).
  void save(Checkpoint& c, const std::string& prefix = "average/") const {
    for (const auto& t : tensors_) c.set_tensor<T>(prefix + t.key, t.shape, t.average.data());
    c.set_u64s(prefix + "updates", {updates_});
    c.set_u64s(prefix + "calls", {calls_});
  }

  /// Takes back what save() wrote; everything is checked first (a CheckpointError names what is wrong).
  void load(const Checkpoint& c, const std::string& prefix = "average/") {
    std::vector<std::vector<T>> values;
    for (const auto& t : tensors_) {
      const std::string key = prefix + t.key;
      if (!c.contains(key)) throw CheckpointError(c.source() + ": the weight average's " + t.key + " is missing");
      std::vector<Index> shape;
      values.push_back(c.tensor<T>(key, &shape));
      if (shape != t.shape) throw CheckpointError(c.source() + ": the weight average's " + t.key + " has another shape");
    }
    const std::uint64_t updates = c.counter(prefix + "updates");
    // Checkpoints from before every(k) averaged at every call.
    const std::uint64_t calls = c.contains(prefix + "calls") ? c.counter(prefix + "calls") : updates;
    for (std::size_t i = 0; i < tensors_.size(); ++i) tensors_[i].average = std::move(values[i]);
    updates_ = updates;
    calls_ = calls;
  }

 private:
  struct Averaged {
    std::string key;  // "param/conv1.weight", "buffer/bn1.running_mean"
    std::vector<Index> shape;
    T* live;
    Index size;
    std::vector<T> average;
  };
  /// The decay of the averaging at update call `call` (the first is 1).
  double decay_at(std::uint64_t call) const {
    if (options_.ramp_calls() > 0) {
      const double share = std::min(1.0, static_cast<double>(call) / static_cast<double>(options_.ramp_calls()));
      return options_.decay() * std::pow(share, options_.ramp_power());
    }
    const double t = static_cast<double>(updates_ + 1);
    return options_.warmup() ? std::min(options_.decay(), (1 + t) / (10 + t)) : options_.decay();
  }

  WeightAverageOptions options_;
  std::vector<Averaged> tensors_;
  std::uint64_t updates_ = 0, calls_ = 0;
};

}  // namespace convnet
