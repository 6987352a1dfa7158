// The optimizer interface: a list of parameters, a learning rate set from
// outside (by a schedule), per-parameter settings, and state that checkpoints
// save and restore.
//
// Weight decay is applied to parameters whose Parameter::weight_decay is true
// (weights, not biases) unless the optimizer's decay_biases option is set;
// set_parameter_settings() overrides the decay and scales the learning rate
// of any one parameter by name.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../errors.hpp"
#include "../parameter.hpp"

namespace convnet {

struct ParameterSettings {
  double lr_scale = 1.0;     ///< this parameter's learning rate = lr_scale * learning_rate()
  double weight_decay = -1;  ///< >= 0 replaces the optimizer's weight decay for this parameter
};

/// A named buffer of optimizer state (a momentum, a moment estimate).
template <class T>
struct StateBuffer {
  std::string name;  ///< "velocity/conv1.weight"
  T* data;
  Index size;
};

template <class T>
class Optimizer {
 public:
  Optimizer(std::vector<Parameter<T>> parameters, double learning_rate, double weight_decay, bool decay_biases)
      : parameters_(std::move(parameters)), learning_rate_(learning_rate) {
    detail::require_option(learning_rate >= 0, "Optimizer", "learning rate", ">= 0", learning_rate);
    detail::require_option(weight_decay >= 0, "Optimizer", "weight decay", ">= 0", weight_decay);
    for (const auto& p : parameters_) decay_.push_back(p.weight_decay || decay_biases ? weight_decay : 0.0);
    lr_scale_.assign(parameters_.size(), 1.0);
  }
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// The name the registry knows it by ("sgd", "adam": optim/by_name.hpp), as a layer's and a
  /// loss's type_name() are their registries' names.
  virtual std::string type_name() const = 0;
  /// "Sgd(nesterov)", "AdamW": the kind and the choice that changes what its state means; what a
  /// checkpoint records as optimizer/type, so state is never loaded into the other kind.
  virtual std::string describe() const = 0;
  /// One update of every parameter from its accumulated gradient.
  virtual void step() = 0;
  /// The optimizer's buffers, in a fixed order, for checkpoints.
  virtual std::vector<StateBuffer<T>> state() = 0;

  double learning_rate() const { return learning_rate_; }
  void set_learning_rate(double lr) {
    detail::require_option(lr >= 0, describe(), "learning rate", ">= 0", lr);
    learning_rate_ = lr;
  }
  /// Sets the momentum (SGD's momentum, Adam's beta1), as one-cycle schedules do each step.
  virtual void set_momentum(double momentum) = 0;

  /// Number of step() calls so far (Adam's bias correction uses it).
  std::uint64_t steps() const { return steps_; }
  void set_steps(std::uint64_t s) { steps_ = s; }

  void set_parameter_settings(const std::string& name, const ParameterSettings& settings) {
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      if (parameters_[i].name != name) continue;
      lr_scale_[i] = settings.lr_scale;
      if (settings.weight_decay >= 0) decay_[i] = settings.weight_decay;
      return;
    }
    throw ArgumentError(describe() + ": no parameter named '" + name + "'");
  }
  double weight_decay_of(std::size_t i) const { return decay_.at(i); }

  /// The optimizer in a checkpoint: its type, step count and buffers under `prefix` (the one
  /// save/load pair, checkpoint/state.hpp).
  void save(Checkpoint& c, const std::string& prefix = "optimizer/") const {
    c.set_text(prefix + "type", describe());
    c.set_u64s(prefix + "steps", {steps_});
    for (const auto& b : const_cast<Optimizer&>(*this).state()) c.set_tensor<T>(prefix + b.name, {b.size}, b.data);
  }
  /// Takes back what save() wrote, checked against this optimizer's type and buffer sizes first.
  void load(const Checkpoint& c, const std::string& prefix = "optimizer/") {
    const std::string where = c.source();
    if (!c.contains(prefix + "type")) throw CheckpointError(where + ": holds no optimizer state");
    if (c.text(prefix + "type") != describe()) {
      throw CheckpointError(where + ": optimizer state is for " + c.text(prefix + "type") + ", not " + describe());
    }
    const std::vector<StateBuffer<T>> buffers = state();
    std::vector<std::vector<T>> values;
    for (const auto& b : buffers) {
      const std::string key = prefix + b.name;
      if (!c.contains(key)) throw CheckpointError(where + ": optimizer buffer " + b.name + " is missing");
      values.push_back(c.tensor<T>(key));
      if (static_cast<Index>(values.back().size()) != b.size) {
        throw CheckpointError(detail::concat(where, ": optimizer buffer ", b.name, " has ", values.back().size(),
                                             " values, expected ", b.size));
      }
    }
    const std::uint64_t steps = c.counter(prefix + "steps");
    for (std::size_t i = 0; i < buffers.size(); ++i) std::copy(values[i].begin(), values[i].end(), buffers[i].data);
    steps_ = steps;
  }

  const std::vector<Parameter<T>>& parameters() const { return parameters_; }
  void zero_grad() {
    for (auto& p : parameters_) p.grads().setZero();
  }

 protected:
  std::vector<Parameter<T>> parameters_;
  std::vector<double> decay_, lr_scale_;
  double learning_rate_;
  std::uint64_t steps_ = 0;
};

}  // namespace convnet
