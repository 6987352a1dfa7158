// The interface every layer implements.
//
// Contract (what a call needs and what it promises):
//   forward(input)
//     requires: input's shape is accepted by output_shape() (otherwise
//               ShapeError, naming the layer, the expected and actual shape).
//     ensures:  returns the layer's output, held by the layer and valid until
//               its next forward. The layer keeps a pointer to `input`:
//               the caller keeps that tensor alive and unchanged until the
//               matching backward.
//   backward(grad_output)
//     requires: forward was called; grad_output has the shape of the output
//               (otherwise ShapeError).
//     ensures:  returns dLoss/dInput, held by the layer, and *adds* this
//               batch's dLoss/dParameter to every parameter's gradient
//               (zero_grad() clears them), so gradients accumulate as in
//               PyTorch and llm.c.
// Output and gradient buffers keep their memory between calls: once shapes are
// stable, forward and backward allocate nothing.
#pragma once

#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "parameter.hpp"
#include "precision.hpp"
#include "tensor.hpp"

namespace convnet {

using LayerSettings = std::vector<std::pair<std::string, std::string>>;

namespace detail {
/// A number as settings() writes it: shortest round-trip form, '.' as the decimal point whatever the locale.
inline std::string setting_value(double v) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, result.ptr);
}
inline std::string setting_value(Index v) { return std::to_string(v); }
inline std::string setting_value(bool v) { return v ? "true" : "false"; }
}  // namespace detail

template <class T>
class Layer {
 public:
  using Scalar = T;
  virtual ~Layer() = default;
  Layer() = default;
  Layer(const Layer&) = delete;  // layers hold pointers into their own buffers
  Layer& operator=(const Layer&) = delete;

  /// The name the layer registry and checkpoints know it by, e.g. "Conv2d" (models/layer_registry.hpp).
  virtual std::string type_name() const = 0;
  /// One line for model summaries, e.g. "Conv2d(3 -> 96, kernel 11, stride 4)". For people: free to change.
  virtual std::string describe() const = 0;
  /// What decides the layer's computation, as (setting, value) pairs in a fixed, locale-free form, e.g.
  /// {"kernel_size", "11"}. Checkpoints record them, with the type and the parameter shapes, to recognise
  /// the network they were saved from.
  virtual LayerSettings settings() const { return {}; }
  /// The output shape for an input shape; throws ShapeError if the input is not accepted.
  virtual Shape output_shape(const Shape& input) const = 0;
  /// Trainable tensors and their gradients (empty for parameter-free layers).
  virtual std::vector<Parameter<T>> parameters() { return {}; }
  /// Tensors of the model that are not trained (BatchNorm's running statistics); checkpoints keep them.
  virtual std::vector<Buffer<T>> buffers() { return {}; }
  /// Multiply-adds of one forward pass for one sample of the given input shape
  /// (convolutions and dense layers; element-wise layers count 0).
  virtual Index macs_per_sample(const Shape& /*input*/) const { return 0; }

  /// State that is neither a parameter nor an activation but decides future
  /// results (Dropout's random stream). Checkpoints save and restore it so a
  /// resumed run continues exactly.
  virtual std::vector<std::uint64_t> random_state() const { return {}; }
  virtual void set_random_state(const std::vector<std::uint64_t>& state) {
    if (!state.empty()) throw ArgumentError(name() + ": this layer has no random state to restore");
  }

  /// Where this batch's first example stands in a larger batch split between
  /// processes (Sequential::set_batch_offset); only layers with per-element
  /// randomness (Dropout) use it.
  virtual void set_batch_offset(Index /*first_example*/) {}

  /// Training mode (the default) or evaluation mode; Dropout and BatchNorm behave differently.
  virtual void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }

  /// Whether backward computes dLoss/dInput. The first layer of a network
  /// never needs it (its input is data), and for a convolution it is a third
  /// of the backward pass. When off, backward still returns a tensor of the
  /// input's shape, with unspecified contents.
  void set_input_gradient(bool on) { input_gradient_ = on; }
  bool input_gradient() const { return input_gradient_; }

  /// Whether backward computes this layer's parameter gradients (on by default). A frozen layer
  /// (off) keeps its weights: it computes no weight or bias gradient, and an optimizer built from
  /// Sequential::trainable_parameters() does not see it (fine-tuning, Sequential::freeze).
  void set_trainable(bool on) { trainable_ = on; }
  bool trainable() const { return trainable_; }

  /// The arithmetic of this layer's matrix products (precision.hpp), resolved for this host: Conv2d
  /// and Dense compute in bf16 when it is Bf16 and the layer is in float; other layers ignore it.
  void set_precision(Precision p) { precision_ = resolve(p); }
  Precision precision() const { return precision_; }

  /// The name used in messages and summaries; the type name until a container sets one.
  std::string name() const { return name_.empty() ? type_name() : name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  const Tensor<T>& forward(const Tensor<T>& input) {
    const Shape out_shape = output_shape(shape_of(input));
    resize(output_, out_shape);
    input_ = &input;
    forward_impl(input, output_);
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& grad_output) {
    if (input_ == nullptr) throw StateError(name() + ": backward called before forward");
    if (shape_of(grad_output) != shape_of(output_)) {
      throw ShapeError(name() + " backward (gradient of the output)", shape_of(output_).str(),
                       shape_of(grad_output).str());
    }
    resize(grad_input_, shape_of(*input_));
    backward_impl(*input_, grad_output, grad_input_);
    return grad_input_;
  }

  /// Sets every parameter gradient to zero.
  void zero_grad() {
    for (auto& p : parameters()) p.grads().setZero();
  }

  /// Number of trainable scalars.
  Index parameter_count() {
    Index count = 0;
    for (auto& p : parameters()) count += p.size;
    return count;
  }

  /// The output of the last forward.
  const Tensor<T>& output() const { return output_; }

  /// Frees the last forward's output and backward's input gradient: a network that has finished
  /// training gives their memory back before something else needs it (convnet train's test report
  /// loads the best checkpoint as a network of its own). The next forward allocates them again;
  /// a backward before it is refused.
  void release_buffers() {
    output_ = Tensor<T>();
    grad_input_ = Tensor<T>();
    input_ = nullptr;
  }

 protected:
  /// `output` already has output_shape(shape_of(input)).
  virtual void forward_impl(const Tensor<T>& input, Tensor<T>& output) = 0;
  /// `grad_input` already has the input's shape; output() is still the last forward's.
  virtual void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) = 0;

  /// Whether this layer's products run in bf16: precision Bf16 and a network in float.
  bool bf16_products() const { return std::is_same_v<T, float> && precision_ == Precision::Bf16; }

  /// Throws ShapeError for this layer's input.
  [[noreturn]] void input_error(const std::string& expected, const Shape& actual) const {
    throw ShapeError(name() + " forward (input)", expected, actual.str());
  }

 private:
  std::string name_;
  bool training_ = true, input_gradient_ = true, trainable_ = true;
  Precision precision_ = Precision::Fp32;
  const Tensor<T>* input_ = nullptr;
  Tensor<T> output_;
  Tensor<T> grad_input_;
};

}  // namespace convnet
