// Sequential: a network as a list of layers filled at run time.
//
//   Sequential<float> net;
//   net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 32, 3).padding(1));
//   net.add<ReLU<float>>("relu1");
//   ...
//   const Tensor<float>& logits = net.forward(images);
//   net.backward(loss.backward());
//
// forward() runs the layers in order, each reading the previous one's output
// buffer; backward() runs them in reverse. Nothing is copied between layers
// and, once the batch shape is stable, nothing is allocated.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../errors.hpp"
#include "../layer.hpp"
#include "network_state.hpp"

namespace convnet {

/// One row of a model summary; counts are per sample.
struct LayerSummary {
  std::string name;
  std::string type;  ///< "Conv2d", "ReLU", ...
  std::string description;
  Shape output;  ///< with n = 1
  Index parameters = 0;
  Index macs = 0;              ///< multiply-adds of the forward pass
  Index activation_bytes = 0;  ///< the output, in the network's scalar type
};

template <class T>
class Sequential {
 public:
  Sequential() = default;
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;

  /// Constructs a layer in place and appends it under `name`; returns it.
  template <class L, class... Args>
  L& add(const std::string& name, Args&&... args) {
    auto layer = std::make_unique<L>(std::forward<Args>(args)...);
    L& ref = *layer;
    add(std::move(layer), name);
    return ref;
  }

  /// Appends an existing layer under `name` (names must be unique).
  void add(std::unique_ptr<Layer<T>> layer, const std::string& name) {
    if (!layer) throw ArgumentError("Sequential::add: null layer");
    if (name.empty()) throw ArgumentError("Sequential::add: a layer needs a name");
    for (const auto& l : layers_) {
      if (l->name() == name) throw ArgumentError("Sequential::add: duplicate layer name '" + name + "'");
    }
    layer->set_name(name);
    layer->set_training(training_);
    layer->set_precision(precision_);
    layers_.push_back(std::move(layer));
    plan_backward();
  }

  std::size_t size() const { return layers_.size(); }
  Layer<T>& operator[](std::size_t i) { return *layers_.at(i); }
  const Layer<T>& operator[](std::size_t i) const { return *layers_.at(i); }
  /// The layer called `name`; throws std::out_of_range naming it otherwise.
  Layer<T>& layer(const std::string& name) {
    for (auto& l : layers_) {
      if (l->name() == name) return *l;
    }
    throw LookupError("Sequential: no layer named '" + name + "'");
  }

  const Tensor<T>& forward(const Tensor<T>& input) {
    if (layers_.empty()) throw StateError("Sequential::forward: the network has no layers");
    const Tensor<T>* x = &input;
    for (auto& l : layers_) x = &l->forward(*x);
    return *x;
  }

  /// Backpropagates dLoss/dOutput; returns dLoss/dInput and accumulates parameter gradients.
  /// With the input gradient off (set_input_gradient(false)) backward stops at the lowest layer
  /// that trains (freeze): the layers below it have nothing to learn, and what it returns is then
  /// unspecified.
  const Tensor<T>& backward(const Tensor<T>& grad_output) {
    if (layers_.empty()) throw StateError("Sequential::backward: the network has no layers");
    const Tensor<T>* g = &grad_output;
    for (std::size_t i = layers_.size(); i-- > first_backward_;) {
      g = &layers_[i]->backward(*g);
      if (backward_observer_) backward_observer_(i);
    }
    return *g;
  }

  /// Called with a layer's index as soon as backward has finished it (the last
  /// layer first): that layer's parameter gradients are then final for this
  /// pass. Data-parallel training starts summing them over the processes
  /// while the layers below are still computing. An empty function removes it.
  void set_backward_observer(std::function<void(std::size_t)> observer) { backward_observer_ = std::move(observer); }

  /// Where this batch's first example stands in a larger batch split between
  /// processes (data-parallel training): layers that draw a random number per
  /// element (Dropout) then draw what the whole batch would have drawn there.
  void set_batch_offset(Index first_example) {
    for (auto& l : layers_) l->set_batch_offset(first_example);
  }

  /// Backpropagates dLoss/dOutput plus a second gradient, `tap_grad`, that a
  /// loss computed on the output of the inner layer `tap_layer` (a triplet loss
  /// on an embedding): the two are added where that layer's output gradient
  /// is formed, so both reach every layer below it.
  const Tensor<T>& backward(const Tensor<T>& grad_output, const std::string& tap_layer, const Tensor<T>& tap_grad) {
    if (layers_.empty()) throw StateError("Sequential::backward: the network has no layers");
    std::size_t tap = layers_.size();
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      if (layers_[i]->name() == tap_layer) tap = i;
    }
    if (tap == layers_.size()) throw LookupError("Sequential::backward: no layer named '" + tap_layer + "'");
    if (shape_of(tap_grad) != shape_of(layers_[tap]->output())) {
      throw ShapeError("Sequential::backward (gradient at " + tap_layer + ")", shape_of(layers_[tap]->output()).str(),
                       shape_of(tap_grad).str());
    }
    const Tensor<T>* g = &grad_output;
    for (std::size_t i = layers_.size(); i-- > first_backward_;) {
      if (i == tap) {
        resize(tap_sum_, shape_of(tap_grad));
        flat(tap_sum_) = flat(*g) + flat(tap_grad);
        g = &tap_sum_;
      }
      g = &layers_[i]->backward(*g);
      if (backward_observer_) backward_observer_(i);
    }
    return *g;
  }

  /// Whether backward computes the gradient of the network's input (on by
  /// default). Training does not need it: turning it off skips the first
  /// convolution's input gradient.
  void set_input_gradient(bool on) {
    input_gradient_ = on;
    plan_backward();
  }
  bool input_gradient() const { return input_gradient_; }

  /// Fine-tuning: the named layers keep their weights (Layer::set_trainable(false)); they compute no
  /// weight or bias gradient, trainable_parameters() leaves them out, and with the input gradient
  /// off backward stops at the lowest layer that still trains. LookupError for an unknown name.
  void freeze(const std::vector<std::string>& names, bool frozen = true) {
    for (const auto& name : names) layer(name);  // all known before any changes
    for (const auto& name : names) layer(name).set_trainable(!frozen);
    plan_backward();
  }
  /// Every layer's output and input gradient freed (Layer::release_buffers): the memory of a
  /// training batch's activations, given back once the network will not run again soon.
  void release_buffers() {
    for (auto& l : layers_) l->release_buffers();
    tap_sum_ = Tensor<T>();
  }

  /// Every layer trains again.
  void unfreeze_all() {
    for (auto& l : layers_) l->set_trainable(true);
    plan_backward();
  }
  /// The parameters of the layers that train: what an optimizer for fine-tuning is given.
  std::vector<Parameter<T>> trainable_parameters() {
    std::vector<Parameter<T>> all;
    for (auto& l : layers_) {
      if (!l->trainable()) continue;
      for (auto p : l->parameters()) {
        p.name = l->name() + "." + p.name;
        all.push_back(std::move(p));
      }
    }
    return all;
  }
  /// The layer backward starts below (0: every layer runs backward).
  std::size_t first_backward_layer() const { return first_backward_; }

  /// The output of the last forward.
  const Tensor<T>& output() const { return layers_.back()->output(); }

  /// Output shape of the whole network for an input shape (throws ShapeError naming the first layer that refuses it).
  Shape output_shape(Shape input) const {
    for (const auto& l : layers_) input = l->output_shape(input);
    return input;
  }

  /// Every parameter, named "<layer>.<parameter>" ("conv1.weight").
  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> all;
    for (auto& l : layers_) {
      for (auto p : l->parameters()) {
        p.name = l->name() + "." + p.name;
        all.push_back(std::move(p));
      }
    }
    return all;
  }

  /// Every buffer, named "<layer>.<buffer>" ("bn1.running_mean").
  std::vector<Buffer<T>> buffers() {
    std::vector<Buffer<T>> all;
    for (auto& l : layers_) {
      for (auto b : l->buffers()) {
        b.name = l->name() + "." + b.name;
        all.push_back(std::move(b));
      }
    }
    return all;
  }

  /// The network in a checkpoint: its structure, parameters, buffers and random states under
  /// `prefix` (models/network_state.hpp has the keys). The one save/load pair (checkpoint/state.hpp).
  void save(Checkpoint& c, const std::string& prefix = "") const {
    save_network(c, const_cast<Sequential&>(*this), prefix);  // reads only: parameters() hands out views
  }
  /// Takes back what save() wrote; everything is checked against this network first, and on a
  /// mismatch (a CheckpointError naming it) nothing has changed.
  void load(const Checkpoint& c, const std::string& prefix = "") { load_network(c, *this, prefix); }

  Index parameter_count() {
    Index n = 0;
    for (auto& l : layers_) n += l->parameter_count();
    return n;
  }

  void zero_grad() {
    for (auto& l : layers_) l->zero_grad();
  }

  /// Training or evaluation mode, for every layer.
  void set_training(bool training) {
    training_ = training;
    for (auto& l : layers_) l->set_training(training);
  }
  /// The arithmetic of every layer's products (precision.hpp), now and for layers added later;
  /// Auto is resolved for this host. The weights stay fp32 either way, so a checkpoint saved under
  /// one precision loads under the other.
  void set_precision(Precision p) {
    precision_ = resolve(p);
    for (auto& l : layers_) l->set_precision(precision_);
  }
  Precision precision() const { return precision_; }

  void train() { set_training(true); }
  void eval() { set_training(false); }
  bool training() const { return training_; }

  /// One "name: description" line per layer: what a checkpoint compares to
  /// decide whether it was saved from this network.
  std::vector<std::string> architecture() const {
    std::vector<std::string> lines;
    for (const auto& l : layers_) lines.push_back(l->name() + ": " + l->describe());
    return lines;
  }

  /// Per-layer output shape, parameters, multiply-adds and activation memory for one sample.
  std::vector<LayerSummary> summary(Shape input) {
    input.n = 1;
    std::vector<LayerSummary> rows;
    for (auto& l : layers_) {
      LayerSummary row;
      row.name = l->name();
      row.type = l->type_name();
      row.description = l->describe();
      row.macs = l->macs_per_sample(input);
      input = l->output_shape(input);
      row.output = input;
      row.parameters = l->parameter_count();
      row.activation_bytes = input.per_sample() * static_cast<Index>(sizeof(T));
      rows.push_back(row);
    }
    return rows;
  }

 private:
  std::vector<std::unique_ptr<Layer<T>>> layers_;
  Tensor<T> tap_sum_;  // backward's sum of the two gradients at the tapped layer
  std::function<void(std::size_t)> backward_observer_;
  bool training_ = true, input_gradient_ = true;
  std::size_t first_backward_ = 0;  // backward runs layers [first_backward_, size())

  // Which layers backward runs, and which of them must pass a gradient down: with the network's
  // input gradient wanted, all of them; otherwise from the lowest layer with parameters that
  // trains (none: the top layer alone, so a loss still sees a backward), whose own input gradient
  // is not needed.
  void plan_backward() {
    first_backward_ = 0;
    if (!input_gradient_) {
      first_backward_ = layers_.empty() ? 0 : layers_.size() - 1;
      for (std::size_t i = 0; i < layers_.size(); ++i) {
        if (layers_[i]->trainable() && layers_[i]->parameter_count() > 0) {
          first_backward_ = i;
          break;
        }
      }
    }
    for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->set_input_gradient(input_gradient_ || i > first_backward_);
  }
  Precision precision_ = Precision::Fp32;
};

}  // namespace convnet
