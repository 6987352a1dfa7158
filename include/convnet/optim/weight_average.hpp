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
// Checkpoints: save() writes average/param/<name>, average/buffer/<name> and
// average/updates; load() checks every shape before it changes anything.
#pragma once

#include <algorithm>
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
  double decay() const { return decay_; }
  bool warmup() const { return warmup_; }

 private:
  double decay_ = 0.999;
  bool warmup_ = true;
};

template <class T>
class WeightAverage {
 public:
  WeightAverage(Sequential<T>& net, const WeightAverageOptions& options) : options_(options) {
    detail::require_option(options.decay() > 0 && options.decay() < 1, "WeightAverage", "decay", "in (0, 1)",
                           options.decay());
    for (const auto& p : net.parameters()) tensors_.push_back({"param/" + p.name, p.shape, p.value, p.size, {}});
    for (const auto& b : net.buffers()) tensors_.push_back({"buffer/" + b.name, b.shape, b.value, b.size, {}});
    for (auto& t : tensors_) t.average.assign(t.live, t.live + t.size);  // starts at the current weights
  }

  const WeightAverageOptions& options() const { return options_; }
  std::uint64_t updates() const { return updates_; }

  /// The decay the next update will use.
  double next_decay() const {
    const double t = static_cast<double>(updates_ + 1);
    return options_.warmup() ? std::min(options_.decay(), (1 + t) / (10 + t)) : options_.decay();
  }

  /// Moves the average towards the network's current values.
  void update() {
    const T d = static_cast<T>(next_decay()), keep = 1 - d;
    for (auto& t : tensors_) {
      T* avg = t.average.data();
      for (Index i = 0; i < t.size; ++i) avg[i] = d * avg[i] + keep * t.live[i];
    }
    ++updates_;
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
    for (std::size_t i = 0; i < tensors_.size(); ++i) tensors_[i].average = std::move(values[i]);
    updates_ = updates;
  }

 private:
  struct Averaged {
    std::string key;  // "param/conv1.weight", "buffer/bn1.running_mean"
    std::vector<Index> shape;
    T* live;
    Index size;
    std::vector<T> average;
  };
  WeightAverageOptions options_;
  std::vector<Averaged> tensors_;
  std::uint64_t updates_ = 0;
};

}  // namespace convnet
