// AlexNet (Krizhevsky, Sutskever & Hinton 2012) as a composition of Sequential.
//
// Eight trainable layers in the paper's order (§3.5, Figure 2):
//   conv1 -> ReLU -> LRN -> pool;  conv2 -> ReLU -> LRN -> pool;
//   conv3 -> ReLU;  conv4 -> ReLU;  conv5 -> ReLU -> pool;
//   fc6 -> ReLU -> dropout;  fc7 -> ReLU -> dropout;  fc8 (logits; the
//   softmax cross-entropy is the loss, SoftmaxCrossEntropy).
// LRN uses the paper's formula and constants (LrnConvention::AlphaOnSum, size 5,
// alpha 1e-4, beta 0.75, k 2); pooling is overlapping 3 x 3 stride 2; dropout
// p = 0.5.
//
// Configurations, chosen at run time by name:
//   paper       3 x 227 x 227 -> 1000; 62,378,344 parameters (60,965,224 with
//               groups = 2, the paper's two towers: conv2, conv4, conv5 grouped)
//   cifar       3 x 32 x 32 -> 10; conv 64/192/384/256/256, fc 1024; 5,871,434
//   cifar-half  the same with every width halved; 1,472,426
//   cifar-bn    cifar with batch normalisation after each convolution (conv ->
//               BatchNorm2d -> ReLU, the convolutions without bias, which the
//               normalisation would cancel) and no LRN, as most CIFAR AlexNet
//               replicas are built today; 5,872,586 parameters
//   cifar-half-bn  the same at half width; 1,473,002
//   torchvision torchvision.models.alexnet, the variant most published weights
//               are for: 3 x 224 x 224 -> 1000, conv 64/192/384/256/256 (conv1
//               11 x 11 stride 4 padding 2), no LRN, adaptive average pooling
//               to 6 x 6, dropout before fc6 and fc7; 61,100,840 parameters
// and any of them with another class count, width multiplier or groups.
#pragma once

#include <array>
#include <charconv>
#include <locale>
#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../key_values.hpp"
#include "../layers/adaptive_avg_pool2d.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/dense.hpp"
#include "../layers/dropout.hpp"
#include "../layers/flatten.hpp"
#include "../layers/local_response_norm.hpp"
#include "../layers/max_pool2d.hpp"
#include "../layers/relu.hpp"
#include "../random.hpp"
#include "sequential.hpp"

namespace convnet {

/// How the weights are drawn.
enum class AlexNetInit {
  Gaussian,  ///< the paper's (§5, "paper"): weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7, else 0
  He,        ///< weights N(0, sqrt(2 / fan_in)) (He et al. 2015); biases 0. Trains deep nets faster.
};

struct AlexNetConvSpec {
  Index channels, kernel, stride, padding;
  bool grouped;  ///< split into `groups` towers (conv2, conv4, conv5 in the paper)
};


/// A named AlexNet configuration and one line of help: the one list the names come from.
struct AlexNetConfigName {
  std::string name, help;
};
inline const std::vector<AlexNetConfigName>& alexnet_config_names() {
  static const std::vector<AlexNetConfigName> names = {
      {"paper", "the paper's network: 3x227x227 -> 1000, LRN after conv1 and conv2"},
      {"cifar", "the study's CIFAR network: 32x32 inputs, 5x5 kernels, 1024-wide fc6/fc7, LRN"},
      {"cifar-half", "cifar at half width"},
      {"cifar-bn", "cifar with batch normalisation after every convolution instead of LRN"},
      {"cifar-half-bn", "cifar-half with batch normalisation instead of LRN"},
      {"torchvision", "torchvision's variant: 224x224, no LRN, adaptive pooling, dropout before fc6/fc7"},
  };
  return names;
}
/// "paper, cifar, cifar-half, cifar-bn, cifar-half-bn, torchvision".
inline std::string alexnet_config_list() {
  std::string list;
  for (const auto& n : alexnet_config_names()) list += (list.empty() ? "" : ", ") + n.name;
  return list;
}

/// Which AlexNet: a named configuration (named()) with the settings a user may change, set
/// with chainable setters and read with getters, as every options struct of the library.
class AlexNetConfig {
 public:
  /// One of alexnet_config_names().
  static AlexNetConfig named(const std::string& config_name) {
    AlexNetConfig c;
    if (config_name == "paper") return c;
    if (config_name == "cifar-bn" || config_name == "cifar-half-bn") {
      c = named(config_name == "cifar-bn" ? "cifar" : "cifar-half");
      c.name_ = config_name;
      c.use_lrn_ = false;
      c.batch_norm_ = true;
      return c;
    }
    if (config_name == "cifar" || config_name == "cifar-half") {
      c.name_ = config_name;
      c.input_size_ = 32;
      c.conv_ = {{{64, 5, 1, 2, false},
                  {192, 5, 1, 2, true},
                  {384, 3, 1, 1, false},
                  {256, 3, 1, 1, true},
                  {256, 3, 1, 1, true}}};
      c.fc_width_ = 1024;
      c.classes_ = 10;
      if (config_name == "cifar-half") c.width_ = 0.5;
      return c;
    }
    if (config_name == "torchvision") {
      c.name_ = config_name;
      c.input_size_ = 224;
      c.conv_ = {{{64, 11, 4, 2, false},
                  {192, 5, 1, 2, false},
                  {384, 3, 1, 1, false},
                  {256, 3, 1, 1, false},
                  {256, 3, 1, 1, false}}};
      c.use_lrn_ = false;
      c.adaptive_pool_ = 6;
      c.dropout_first_ = true;
      return c;
    }
    throw ArgumentError("AlexNet: unknown configuration '" + config_name + "'; valid names are " + alexnet_config_list());
  }

  AlexNetConfig& classes(Index v) { classes_ = v; return *this; }
  /// 2 reproduces the paper's two GPUs (conv2, conv4, conv5 split into two towers).
  AlexNetConfig& groups(Index v) { groups_ = v; return *this; }
  /// Multiplies every conv and fc width (cifar-half is cifar at 0.5).
  AlexNetConfig& width(double v) { width_ = v; return *this; }
  AlexNetConfig& dropout(double v) { dropout_ = v; return *this; }
  AlexNetConfig& init(AlexNetInit v) { init_ = v; return *this; }
  /// The side of the square input.
  AlexNetConfig& input_size(Index v) { input_size_ = v; return *this; }
  /// Channels of the input: 3 (RGB, every named configuration) or 1 for grey pictures (MNIST).
  AlexNetConfig& input_channels(Index v) { input_channels_ = v; return *this; }
  AlexNetConfig& lrn(const LocalResponseNormOptions& v) { lrn_ = v; return *this; }
  /// LRN after conv1 and conv2 (the paper's; torchvision's variant has none).
  AlexNetConfig& use_lrn(bool v) { use_lrn_ = v; return *this; }

  const std::string& name() const { return name_; }
  Index input_size() const { return input_size_; }
  Index input_channels() const { return input_channels_; }
  const std::array<AlexNetConvSpec, 5>& conv() const { return conv_; }
  Index fc_width() const { return fc_width_; }
  Index classes() const { return classes_; }
  Index groups() const { return groups_; }
  double width() const { return width_; }
  double dropout() const { return dropout_; }
  const LocalResponseNormOptions& lrn() const { return lrn_; }
  AlexNetInit init() const { return init_; }
  bool use_lrn() const { return use_lrn_; }
  /// Average-pool the features to this square size before fc6 (torchvision); unset: no pooling.
  std::optional<Index> adaptive_pool() const { return adaptive_pool_; }
  /// Dropout before fc6 and fc7 (torchvision) instead of after their ReLUs.
  bool dropout_first() const { return dropout_first_; }
  /// BatchNorm2d after every convolution, whose bias it replaces (cifar-bn, cifar-half-bn).
  bool batch_norm() const { return batch_norm_; }

  /// A width after the multiplier, rounded, kept a multiple of `groups`.
  Index scaled(Index base) const {
    const Index g = std::max<Index>(groups_, 1);
    const Index v = static_cast<Index>(std::llround(static_cast<double>(base) * width_));
    return std::max<Index>(g, (v + g - 1) / g * g);
  }

  static LrnConvention lrn_convention(const std::string& text) {
    if (text == to_string(LrnConvention::AlphaOnSum)) return LrnConvention::AlphaOnSum;
    if (text == to_string(LrnConvention::AlphaOverN)) return LrnConvention::AlphaOverN;
    throw ArgumentError("lrn convention '" + text + "' (paper or alpha/n)");
  }

  /// Reads the text form written by str(); throws ArgumentError naming a bad field.
  static AlexNetConfig parse(const std::string& text) {
    KeyValues fields = KeyValues::parse(text, ' ', "AlexNetConfig::parse: '" + text + "'");
    AlexNetConfig c = named(fields.take<std::string>("name"));
    c.input_size_ = fields.take<Index>("input");
    c.input_channels_ = fields.take<Index>("channels", 3);  // absent: 3, as before the field existed
    c.classes_ = fields.take<Index>("classes");
    c.groups_ = fields.take<Index>("groups");
    c.width_ = fields.take<double>("width");
    c.dropout_ = fields.take<double>("dropout");
    const std::string init = fields.take<std::string>("init");
    if (init != "he" && init != "paper") throw ArgumentError("AlexNetConfig::parse: init '" + init + "' (he or paper)");
    c.init_ = init == "he" ? AlexNetInit::He : AlexNetInit::Gaussian;
    // "none": a network without LRN. Constants leave the name's choice as it is: the BatchNorm
    // configurations' checkpoints written before "none" existed carry the unused constants.
    const std::string lrn = fields.take<std::string>("lrn");
    fields.finish();
    if (lrn == "none") {
      c.use_lrn_ = false;
      return c;
    }
    std::string part[5];
    std::size_t at = 0;
    for (std::size_t i = 0; i < 5; ++i) {
      const std::size_t comma = i < 4 ? lrn.find(',', at) : lrn.size();
      if (comma == std::string::npos || (i == 4 && lrn.find(',', at) != std::string::npos)) {
        throw ArgumentError("AlexNetConfig::parse: lrn '" + lrn + "' is not size,alpha,beta,k,convention");
      }
      part[i] = lrn.substr(at, comma - at);
      at = comma + 1;
    }
    try {
      c.lrn_ = LocalResponseNormOptions(detail::parse_number<Index>(part[0]))
                   .alpha(detail::parse_number<double>(part[1]))
                   .beta(detail::parse_number<double>(part[2]))
                   .k(detail::parse_number<double>(part[3]))
                   .convention(lrn_convention(part[4]));
    } catch (const ArgumentError& e) {
      throw ArgumentError("AlexNetConfig::parse: lrn '" + lrn + "': " + e.what());
    }
    return c;
  }

  /// A one-line text form ("name=cifar classes=10 ..."), stored in checkpoints.
  std::string str() const {
    std::ostringstream out;
    out.imbue(std::locale::classic());  // '.' as the decimal point whatever the program's locale
    out.precision(12);
    out << "name=" << name_ << " input=" << input_size_;
    if (input_channels_ != 3) out << " channels=" << input_channels_;  // absent: 3, as before the field existed
    out << " classes=" << classes_ << " groups=" << groups_
        << " width=" << width_ << " dropout=" << dropout_ << " init=" << (init_ == AlexNetInit::He ? "he" : "paper");
    if (!use_lrn_) return out.str() + " lrn=none";
    out << " lrn=" << lrn_.size() << "," << lrn_.alpha() << "," << lrn_.beta() << "," << lrn_.k() << ","
        << to_string(lrn_.convention());
    return out.str();
  }

 private:
  std::string name_ = "paper";
  Index input_size_ = 227;
  Index input_channels_ = 3;
  std::array<AlexNetConvSpec, 5> conv_{{{96, 11, 4, 0, false},
                                        {256, 5, 1, 2, true},
                                        {384, 3, 1, 1, false},
                                        {384, 3, 1, 1, true},
                                        {256, 3, 1, 1, true}}};
  Index fc_width_ = 4096;
  Index classes_ = 1000;
  Index groups_ = 1;
  double width_ = 1.0;
  double dropout_ = 0.5;
  LocalResponseNormOptions lrn_ = LocalResponseNormOptions();  // the paper's constants and convention
  AlexNetInit init_ = AlexNetInit::Gaussian;
  // Structure, fixed by the configuration's name (so not part of str()):
  bool use_lrn_ = true;
  std::optional<Index> adaptive_pool_;
  bool dropout_first_ = false;
  bool batch_norm_ = false;
};

/// The ranges a configuration must keep. A configuration can come from a file (a checkpoint's
/// 'config' text) or a flag, so every field is bounded before anything is built: together with
/// the 2^31-weights limit of Conv2d and Dense these keep any configuration's network within
/// tens of GB at the very most, and the checkpoint checks (alexnet_parameter_shapes) bound a
/// stored one by the file's own size.
struct AlexNetBounds {
  static constexpr Index kMaxClasses = 100'000;
  static constexpr Index kMaxGroups = 64;
  static constexpr double kMaxWidth = 16;
  static constexpr Index kMaxInputSize = 1024;
  static constexpr Index kMaxInputChannels = 64;
  static constexpr Index kMaxLrnSize = 255;
};

namespace detail {
inline void alexnet_validate(const AlexNetConfig& c) {
  using B = AlexNetBounds;
  const std::string where = "AlexNet(" + c.name() + ")";
  require_option(c.classes() >= 1 && c.classes() <= B::kMaxClasses, where, "classes", "in [1, 100000]", c.classes());
  require_option(c.groups() >= 1 && c.groups() <= B::kMaxGroups, where, "groups", "in [1, 64]", c.groups());
  require_option(c.width() > 0 && c.width() <= B::kMaxWidth, where, "width", "in (0, 16]", c.width());
  require_option(c.input_size() >= 1 && c.input_size() <= B::kMaxInputSize, where, "input_size", "in [1, 1024]",
                 c.input_size());
  require_option(c.input_channels() >= 1 && c.input_channels() <= B::kMaxInputChannels, where, "input_channels",
                 "in [1, 64]", c.input_channels());
  require_option(c.dropout() >= 0 && c.dropout() < 1, where, "dropout", "in [0, 1)", c.dropout());
  const LocalResponseNormOptions& lrn = c.lrn();
  require_option(lrn.size() >= 1 && lrn.size() <= B::kMaxLrnSize && lrn.size() % 2 == 1, where, "lrn size",
                 "odd, in [1, 255]", lrn.size());
  require_option(lrn.alpha() >= 0 && lrn.beta() >= 0 && lrn.k() > 0 && std::isfinite(lrn.alpha()) &&
                     std::isfinite(lrn.beta()) && std::isfinite(lrn.k()),
                 where, "lrn alpha, beta, k", "finite, >= 0, >= 0, > 0", concat(lrn.alpha(), ",", lrn.beta(), ",", lrn.k()));
}
}  // namespace detail

/// The parameters make_alexnet(config) would create, in order, worked out without building anything
/// (so a configuration read from a file can be checked against the tensors stored with it before any
/// memory is committed). Validates the configuration; throws std::invalid_argument for an input too
/// small for the network, or a layer over 2^31 weights.
inline std::vector<ParameterShape> alexnet_parameter_shapes(const AlexNetConfig& config) {
  detail::alexnet_validate(config);
  const std::string where = "AlexNet(" + config.name() + ")";
  std::vector<ParameterShape> shapes;
  auto add = [&](const std::string& layer, std::vector<Index> weight, bool bias = true) {
    double count = 1;
    for (Index d : weight) count *= static_cast<double>(d);
    detail::require_option(count <= 2147483648.0, where, (layer + " weights").c_str(), "at most 2^31", count);
    const Index out = weight[0];
    shapes.push_back({layer + ".weight", std::move(weight)});
    if (bias) shapes.push_back({layer + ".bias", {out}});
  };
  Index channels = config.input_channels(), side = config.input_size();
  for (int i = 0; i < 5; ++i) {
    const AlexNetConvSpec& s = config.conv()[static_cast<std::size_t>(i)];
    const std::string layer = "conv" + std::to_string(i + 1);
    const Index out = config.scaled(s.channels), groups = s.grouped ? config.groups() : 1;
    add(layer, {out, channels / groups, s.kernel, s.kernel}, !config.batch_norm());
    if (config.batch_norm()) add("bn" + std::to_string(i + 1), {out});  // gamma and beta
    if (side + 2 * s.padding < s.kernel) {
      throw ArgumentError(detail::concat(where, ": input_size ", config.input_size(), " is too small: ", layer,
                                                 " gets ", side, " x ", side, " for its ", s.kernel, " x ", s.kernel,
                                                 " kernel"));
    }
    side = (side + 2 * s.padding - s.kernel) / s.stride + 1;
    if (i < 2 || i == 4) {
      if (side < 3) {
        throw ArgumentError(detail::concat(where, ": input_size ", config.input_size(), " is too small: pool",
                                                   i + 1, " gets ", side, " x ", side, " for its 3 x 3 window"));
      }
      side = (side - 3) / 2 + 1;
    }
    channels = out;
  }
  if (const auto pooled = config.adaptive_pool()) side = *pooled;
  const Index fc = config.scaled(config.fc_width());
  add("fc6", {fc, channels * side * side});
  add("fc7", {fc, fc});
  add("fc8", {config.classes(), fc});
  return shapes;
}

/// Builds the network and initialises it from `seed` (the same seed gives the same weights).
template <class T>
Sequential<T> make_alexnet(const AlexNetConfig& config, std::uint64_t seed = 0) {
  alexnet_parameter_shapes(config);  // every bound, before a layer is built
  Sequential<T> net;
  Index channels = config.input_channels();
  for (int i = 0; i < 5; ++i) {
    const AlexNetConvSpec& s = config.conv()[static_cast<std::size_t>(i)];
    const std::string n = std::to_string(i + 1);
    const Index out = config.scaled(s.channels);
    net.template add<Conv2d<T>>("conv" + n, Conv2dOptions(channels, out, s.kernel)
                                                 .stride(s.stride)
                                                 .padding(s.padding)
                                                 .groups(s.grouped ? config.groups() : 1)
                                                 .bias(!config.batch_norm()));
    if (config.batch_norm()) net.template add<BatchNorm2d<T>>("bn" + n, BatchNormOptions(out));
    net.template add<ReLU<T>>("relu" + n);
    if (i < 2 && config.use_lrn()) net.template add<LocalResponseNorm<T>>("lrn" + n, config.lrn());
    if (i < 2 || i == 4) net.template add<MaxPool2d<T>>("pool" + n, MaxPool2dOptions(3).stride(2));
    channels = out;
  }
  if (const auto side = config.adaptive_pool()) net.template add<AdaptiveAvgPool2d<T>>("avgpool", *side, *side);
  const Shape features = net.output_shape(Shape{1, config.input_channels(), config.input_size(), config.input_size()});
  net.template add<Flatten<T>>("flatten");
  const Index fc = config.scaled(config.fc_width());
  Index in = features.per_sample();
  for (int k = 6; k <= 7; ++k) {
    const std::string n = std::to_string(k);
    auto dropout = [&] {
      net.template add<Dropout<T>>("drop" + n, DropoutOptions(config.dropout()).seed(detail::mix64(seed + k)));
    };
    if (config.dropout_first()) dropout();
    net.template add<Dense<T>>("fc" + n, DenseOptions(in, fc));
    net.template add<ReLU<T>>("relu" + n);
    if (!config.dropout_first()) dropout();
    in = fc;
  }
  net.template add<Dense<T>>("fc8", DenseOptions(fc, config.classes()));

  // Initialisation, layer by layer in order, from one stream.
  Rng rng(seed);
  for (std::size_t i = 0; i < net.size(); ++i) {
    Layer<T>& layer = net[i];
    const std::string& name = layer.name();
    const bool bias_one = name == "conv2" || name == "conv4" || name == "conv5" || name == "fc6" || name == "fc7";
    if (name.rfind("bn", 0) == 0) continue;  // batch normalisation starts as the identity: gamma 1, beta 0
    for (auto& p : layer.parameters()) {
      if (p.name == "bias") {
        const T value = (config.init() == AlexNetInit::Gaussian && bias_one) ? T(1) : T(0);
        p.values().setConstant(value);
        continue;
      }
      Index fan_in = 1;
      for (std::size_t d = 1; d < p.shape.size(); ++d) fan_in *= p.shape[d];
      const double stddev =
          config.init() == AlexNetInit::Gaussian ? 0.01 : std::sqrt(2.0 / static_cast<double>(fan_in));
      for (Index k = 0; k < p.size; ++k) p.value[k] = static_cast<T>(rng.normal(0.0, stddev));
    }
  }
  return net;
}

}  // namespace convnet
