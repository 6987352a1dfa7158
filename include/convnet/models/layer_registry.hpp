// The layer registry: every layer type by the name checkpoints record it under (type_name()), with
// one line of help and a factory that builds the layer from the settings its settings() writes.
// It is what lets a saved network be rebuilt without its code, and the list the tests hold every
// layer to (a gradient check and a settings round trip for each).
//
//   auto conv = make_layer<float>("Conv2d", {{"in_channels", "3"}, {"out_channels", "96"}, ...});
//
// A new layer: its header (with from_settings beside settings()), a line here, a line in the
// umbrella header and its case in the gradient checks.
#pragma once

#include <memory>
#include <string>
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
#include "../layers/local_response_norm.hpp"
#include "../layers/max_pool2d.hpp"
#include "../layers/relu.hpp"
#include "../layers/softmax.hpp"

namespace convnet {

template <class T>
struct LayerType {
  std::string name;  ///< type_name(): "Conv2d"
  std::string help;
  /// The layer from its settings (each key taken; the caller checks that none is left over).
  std::unique_ptr<Layer<T>> (*make)(KeyValues& settings);
};

namespace detail {
template <class L>
std::unique_ptr<Layer<typename L::Scalar>> make_from_settings(KeyValues& settings) {
  return L::from_settings(settings);
}
}  // namespace detail

/// Every layer type, in the order the documents list them.
template <class T>
const std::vector<LayerType<T>>& layer_types() {
  using detail::make_from_settings;
  static const std::vector<LayerType<T>> types = {
      {"Conv2d", "2-D convolution: kernel, stride, padding, groups, bias", &make_from_settings<Conv2d<T>>},
      {"Dense", "fully connected: in_features -> out_features, bias", &make_from_settings<Dense<T>>},
      {"ReLU", "max(0, x)", &make_from_settings<ReLU<T>>},
      {"LocalResponseNorm", "the paper's local response normalisation across channels", &make_from_settings<LocalResponseNorm<T>>},
      {"MaxPool2d", "max pooling, overlapping when the stride is below the kernel", &make_from_settings<MaxPool2d<T>>},
      {"AdaptiveAvgPool2d", "average pooling to a fixed output size", &make_from_settings<AdaptiveAvgPool2d<T>>},
      {"BatchNorm2d", "batch normalisation over N, H, W per channel", &make_from_settings<BatchNorm2d<T>>},
      {"BatchNorm1d", "batch normalisation over N per feature ([N, C, 1, 1])", &make_from_settings<BatchNorm1d<T>>},
      {"Dropout", "inverted dropout with probability p", &make_from_settings<Dropout<T>>},
      {"Flatten", "[N, C, H, W] -> [N, C*H*W, 1, 1]", &make_from_settings<Flatten<T>>},
      {"Softmax", "softmax over channels (inference)", &make_from_settings<Softmax<T>>},
  };
  return types;
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
  for (const auto& t : layer_types<T>()) {
    if (t.name != type) continue;
    KeyValues values(settings, owner + " (" + type + ")");
    std::unique_ptr<Layer<T>> layer = t.make(values);
    values.finish();
    return layer;
  }
  throw ArgumentError(owner + ": unknown layer type '" + type + "'; known types are " + layer_type_list<T>());
}

}  // namespace convnet
