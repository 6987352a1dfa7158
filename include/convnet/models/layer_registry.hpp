// The layer registry: every layer type by the name checkpoints record it under (type_name()), with
// one line of help and a factory that builds the layer from the settings its settings() writes.
// It is what lets a saved network be rebuilt without its code, and the list the tests hold every
// layer to (a gradient check and a settings round trip for each).
//
//   auto conv = make_layer<float>("Conv2d", {{"in_channels", "3"}, {"out_channels", "96"}, ...});
//
// A new built-in layer: its header (with from_settings beside settings()), a line here, a line in
// the umbrella header and its case in the gradient checks. A program's own layer: one line,
// CONVNET_REGISTER_LAYER(MyLayer, "what it does") (README, docs/library.md).
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../key_values.hpp"
#include "../layer.hpp"
#include "../layers/adaptive_avg_pool2d.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/dense.hpp"
#include "../layers/dropout.hpp"
#include "../layers/flatten.hpp"
#include "../layers/gelu.hpp"
#include "../layers/local_response_norm.hpp"
#include "../layers/max_pool2d.hpp"
#include "../layers/multiply.hpp"
#include "../layers/relu.hpp"
#include "../layers/softmax.hpp"

namespace convnet {

template <class T>
struct LayerType {
  std::string name;  ///< type_name(): "Conv2d"
  std::string help;
  /// The layer from its settings (each key taken; the caller checks that none is left over).
  std::unique_ptr<Layer<T>> (*make)(KeyValues& settings) = nullptr;
  /// The shapes of the parameters those settings give, without building the layer (null for a type
  /// whose settings size nothing): a network read from a file is checked against the tensors the
  /// file holds before a layer allocates anything.
  std::vector<std::vector<Index>> (*parameter_shapes)(KeyValues& settings) = nullptr;
  bool built_in = true;  ///< false for the types a program registers (register_layer)
};

namespace detail {
template <class L>
std::unique_ptr<Layer<typename L::Scalar>> make_from_settings(KeyValues& settings) {
  return L::from_settings(settings);
}
template <class L, class = void>
struct has_parameter_shapes : std::false_type {};
template <class L>
struct has_parameter_shapes<L, std::void_t<decltype(L::parameter_shapes(std::declval<KeyValues&>()))>> : std::true_type {};

/// The registry entry of layer class L: from_settings, and parameter_shapes where L has it.
template <class L>
LayerType<typename L::Scalar> layer_type(std::string name, std::string help, bool built_in = true) {
  LayerType<typename L::Scalar> t{std::move(name), std::move(help), &make_from_settings<L>, nullptr, built_in};
  if constexpr (has_parameter_shapes<L>::value) t.parameter_shapes = &L::parameter_shapes;
  return t;
}

template <class T>
std::vector<LayerType<T>>& layer_table() {
  static std::vector<LayerType<T>> types = {
      layer_type<Conv2d<T>>("Conv2d", "2-D convolution: kernel, stride, padding, groups, bias"),
      layer_type<Dense<T>>("Dense", "fully connected: in_features -> out_features, bias"),
      layer_type<ReLU<T>>("ReLU", "max(0, x)"),
      layer_type<LocalResponseNorm<T>>("LocalResponseNorm", "the paper's local response normalisation across channels"),
      layer_type<MaxPool2d<T>>("MaxPool2d", "max pooling, overlapping when the stride is below the kernel"),
      layer_type<AdaptiveAvgPool2d<T>>("AdaptiveAvgPool2d", "average pooling to a fixed output size"),
      layer_type<BatchNorm2d<T>>("BatchNorm2d", "batch normalisation over N, H, W per channel"),
      layer_type<BatchNorm1d<T>>("BatchNorm1d", "batch normalisation over N per feature ([N, C, 1, 1])"),
      layer_type<Dropout<T>>("Dropout", "inverted dropout with probability p"),
      layer_type<Flatten<T>>("Flatten", "[N, C, H, W] -> [N, C*H*W, 1, 1]"),
      layer_type<Softmax<T>>("Softmax", "softmax over channels (inference)"),
      layer_type<GELU<T>>("GELU", "x Phi(x), the Gaussian error linear unit; approximate: the tanh form"),
      layer_type<Multiply<T>>("Multiply", "y = factor x, a constant factor"),
  };
  return types;
}
}  // namespace detail

/// Every layer type: the built-in ones in the order the documents list them, then those a program
/// registered.
template <class T>
const std::vector<LayerType<T>>& layer_types() {
  return detail::layer_table<T>();
}

/// The registered type called `name`, or null.
template <class T>
const LayerType<T>* find_layer_type(const std::string& name) {
  for (const auto& t : layer_types<T>()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

/// Registers a layer class template of a program's own, in float and double, under `name` (which its
/// type_name() must return): it then saves, loads and exports like the built-in layers. The class
/// needs settings() and `static std::unique_ptr<L> from_settings(KeyValues&)`; a class with parameters
/// should also give `static std::vector<std::vector<Index>> parameter_shapes(KeyValues&)`, so a file's
/// settings are checked before the layer allocates. Usually through CONVNET_REGISTER_LAYER.
template <template <class> class L>
bool register_layer(const std::string& name, const std::string& help) {
  if (find_layer_type<float>(name) != nullptr) {
    throw ArgumentError("register_layer: a layer type called '" + name + "' is already registered");
  }
  detail::layer_table<float>().push_back(detail::layer_type<L<float>>(name, help, false));
  detail::layer_table<double>().push_back(detail::layer_type<L<double>>(name, help, false));
  return true;
}

/// "Conv2d, Dense, ...".
template <class T>
std::string layer_type_list() {
  std::string list;
  for (const auto& t : layer_types<T>()) list += (list.empty() ? "" : ", ") + t.name;
  return list;
}

/// The layer `type` built from `settings` (as settings() writes them): ArgumentError naming `owner`
/// for an unknown type, a missing or unreadable setting, or one the type does not take.
template <class T>
std::unique_ptr<Layer<T>> make_layer(const std::string& type, const LayerSettings& settings,
                                     const std::string& owner = "layer") {
  if (const LayerType<T>* t = find_layer_type<T>(type)) {
    KeyValues values(settings, owner + " (" + type + ")");
    std::unique_ptr<Layer<T>> layer = t->make(values);
    values.finish();
    return layer;
  }
  throw ArgumentError(owner + ": unknown layer type '" + type + "'; known types are " + layer_type_list<T>());
}

}  // namespace convnet

/// Registers a program's own layer class template `Type` (float and double) under the name "Type",
/// at namespace scope, once in the program:  CONVNET_REGISTER_LAYER(Scale, "multiplies by a learned factor");
#define CONVNET_REGISTER_LAYER(Type, help) \
  static const bool convnet_layer_registered_##Type [[maybe_unused]] = ::convnet::register_layer<Type>(#Type, help)
