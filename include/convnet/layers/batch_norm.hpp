// Batch normalisation (Ioffe and Szegedy 2015), as PyTorch's BatchNorm2d and
// BatchNorm1d compute it.
//
// Per channel c, over the batch and (2d) the picture:
//   training    mean_c and var_c of this batch (var biased, divided by the
//               count m = N H W), y = gamma_c (x - mean_c) / sqrt(var_c + eps) + beta_c,
//               and the running statistics move towards the batch's:
//               running = (1 - momentum) running + momentum batch, with the
//               unbiased variance (m / (m - 1)) for running_var, as PyTorch
//   evaluation  the running statistics in place of the batch's
// gamma (weight) starts at 1 and beta (bias) at 0; affine(false) has neither, and weight(false)
// holds gamma at 1 and learns beta alone (the fast CIFAR recipe's batch normalisation: a scale
// before GELU that the next convolution's weights can absorb is one more thing to tune).
// running_mean starts at 0, running_var at 1. They are buffers (Layer::buffers):
// part of the model, saved in checkpoints, never trained.
//
// Backward in training goes through the batch statistics:
//   dx = gamma / sqrt(var + eps) (dy - mean(dy) - x_hat mean(dy x_hat))
// with the means over the channel's m values.
//
// Shapes: BatchNorm2d takes [N, C, H, W]; BatchNorm1d [N, C, 1, 1] (a dense
// layer's output). Training needs more than one value per channel (as
// PyTorch), which a batch of one picture through BatchNorm1d does not have.
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../key_values.hpp"
#include "../layer.hpp"
#include "../threading.hpp"

namespace convnet {

struct BatchNormOptions {
  explicit BatchNormOptions(Index num_features) : num_features_(num_features) {}
  BatchNormOptions& eps(double v) { eps_ = v; return *this; }
  BatchNormOptions& momentum(double v) { momentum_ = v; return *this; }
  BatchNormOptions& affine(bool v) { affine_ = v; return *this; }
  /// With affine: whether gamma is learned (true) or held at 1 (false: only beta is a parameter).
  BatchNormOptions& weight(bool v) { weight_ = v; return *this; }

  Index num_features() const { return num_features_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool weight() const { return weight_; }
  /// Whether gamma is a parameter (affine and weight).
  bool learns_weight() const { return affine_ && weight_; }

 private:
  Index num_features_;
  double eps_ = 1e-5, momentum_ = 0.1;  // PyTorch's defaults
  bool affine_ = true, weight_ = true;
};

namespace detail {
inline BatchNormOptions batch_norm_options_from(KeyValues& s) {
  return BatchNormOptions(s.take<Index>("num_features"))
      .eps(s.take<double>("eps"))
      .momentum(s.take<double>("momentum"))
      .affine(s.take("affine", true))
      .weight(s.take("weight", true));
}

inline std::vector<std::vector<Index>> batch_norm_parameter_shapes(const BatchNormOptions& o) {
  if (!o.affine()) return {};
  if (!o.weight()) return {{o.num_features()}};
  return {{o.num_features()}, {o.num_features()}};
}

template <class T, bool Spatial>
class BatchNorm : public Layer<T> {
 public:
  explicit BatchNorm(const BatchNormOptions& options) : options_(options) {
    const char* where = Spatial ? "BatchNorm2d" : "BatchNorm1d";
    require_option(options_.num_features() >= 1 && options_.num_features() <= (Index{1} << 24), where, "num_features",
                   "in [1, 2^24]", options_.num_features());
    require_option(options_.eps() > 0 && std::isfinite(options_.eps()), where, "eps", "finite and > 0", options_.eps());
    require_option(options_.momentum() >= 0 && options_.momentum() <= 1, where, "momentum", "in [0, 1]", options_.momentum());
    const Index c = options_.num_features();
    running_mean_ = Vector<T>::Zero(c);
    running_var_ = Vector<T>::Ones(c);
    if (options_.affine()) {
      weight_ = Vector<T>::Ones(c);  // held at 1 without weight(true)
      bias_ = Vector<T>::Zero(c);
      if (options_.learns_weight()) weight_grad_ = GradientBuffer<T>(c);
      bias_grad_ = GradientBuffer<T>(c);
    }
    mean_ = Vector<T>::Zero(c);
    inv_std_ = Vector<T>::Zero(c);
  }

  const BatchNormOptions& options() const { return options_; }
  std::string type_name() const override { return Spatial ? "BatchNorm2d" : "BatchNorm1d"; }
  LayerSettings settings() const override {
    using detail::setting_value;
    LayerSettings s = {{"num_features", setting_value(options_.num_features())},
                       {"eps", setting_value(options_.eps())},
                       {"momentum", setting_value(options_.momentum())},
                       {"affine", setting_value(options_.affine())}};
    // Only when off: the networks saved before the option existed keep their recorded settings.
    if (!options_.weight()) s.emplace_back("weight", setting_value(false));
    return s;
  }
  std::string describe() const override {
    return concat(type_name(), "(", options_.num_features(),
                  !options_.affine() ? ", no affine" : options_.weight() ? "" : ", bias only", ")");
  }
  Shape output_shape(const Shape& in) const override {
    const bool ok = in.n >= 1 && in.c == options_.num_features() && in.h >= 1 && in.w >= 1 && (Spatial || (in.h == 1 && in.w == 1));
    if (!ok) {
      this->input_error(concat("[N >= 1, ", options_.num_features(), Spatial ? ", H >= 1, W >= 1]" : ", 1, 1]"), in);
    }
    return in;
  }

  std::vector<Parameter<T>> parameters() override {
    if (!options_.affine()) return {};
    const Index c = options_.num_features();
    Parameter<T> bias{"bias", {c}, bias_.data(), bias_grad_.data(), c, false};
    if (!options_.weight()) return {bias};
    return {Parameter<T>{"weight", {c}, weight_.data(), weight_grad_.data(), c, false}, bias};
  }
  std::vector<Buffer<T>> buffers() override {
    const Index c = options_.num_features();
    return {Buffer<T>{"running_mean", {c}, running_mean_.data(), c},
            Buffer<T>{"running_var", {c}, running_var_.data(), c}};
  }

  Vector<T>& running_mean() { return running_mean_; }
  Vector<T>& running_var() { return running_var_; }
  Vector<T>& weight() { return weight_; }
  Vector<T>& bias() { return bias_; }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    const Shape s = shape_of(input);
    const Index plane = s.h * s.w, count = s.n * plane;
    batch_stats_ = this->training();
    if (batch_stats_ && count < 2) {
      throw ArgumentError(concat(this->name(), ": training needs more than one value per channel, got input ",
                                         s.str(), " (a batch of one through BatchNorm1d)"));
    }
    const T momentum = static_cast<T>(options_.momentum()), eps = static_cast<T>(options_.eps());
    parallel_for(s.c, s.n * s.c * plane > 16384, [&](Index c, int) {
      T mean = running_mean_[c], var = running_var_[c];
      if (batch_stats_) {
        // Each plane is summed in T (vectorised), the planes in double: a channel can hold a million values.
        double sum = 0, squares = 0;
        for (Index n = 0; n < s.n; ++n) sum += static_cast<double>(plane_of(input, n, c, s).sum());
        const double m = sum / static_cast<double>(count);
        for (Index n = 0; n < s.n; ++n) {
          squares += static_cast<double>((plane_of(input, n, c, s) - static_cast<T>(m)).square().sum());
        }
        mean = static_cast<T>(m);
        var = static_cast<T>(squares / static_cast<double>(count));
        running_mean_[c] = (1 - momentum) * running_mean_[c] + momentum * mean;
        running_var_[c] = (1 - momentum) * running_var_[c] +
                          momentum * static_cast<T>(squares / static_cast<double>(count - 1));
      }
      const T inv_std = T(1) / std::sqrt(var + eps);
      mean_[c] = mean;
      inv_std_[c] = inv_std;
      const T scale = (options_.affine() ? weight_[c] : T(1)) * inv_std;
      const T shift = (options_.affine() ? bias_[c] : T(0)) - mean * scale;
      for (Index n = 0; n < s.n; ++n) {
        const T* x = input.data() + (n * s.c + c) * plane;
        T* y = output.data() + (n * s.c + c) * plane;
        for (Index k = 0; k < plane; ++k) y[k] = x[k] * scale + shift;
      }
    });
  }

  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const Shape s = shape_of(input);
    const Index plane = s.h * s.w, count = s.n * plane;
    parallel_for(s.c, s.n * s.c * plane > 16384, [&](Index c, int) {
      const T mean = mean_[c], inv_std = inv_std_[c];
      double sum_dy = 0, sum_dy_xhat = 0;  // per plane in T (vectorised), across planes in double
      for (Index n = 0; n < s.n; ++n) {
        const auto dy = plane_of(grad_output, n, c, s);
        sum_dy += static_cast<double>(dy.sum());
        sum_dy_xhat += static_cast<double>((dy * (plane_of(input, n, c, s) - mean)).sum() * inv_std);
      }
      if (options_.affine() && this->trainable()) {
        if (options_.learns_weight()) weight_grad_.data()[c] += static_cast<T>(sum_dy_xhat);
        bias_grad_.data()[c] += static_cast<T>(sum_dy);
      }
      if (!this->input_gradient()) return;
      const T gamma = options_.affine() ? weight_[c] : T(1);
      // Evaluation statistics are constants: dx = gamma inv_std dy. Batch statistics add the two means.
      const T mean_dy = batch_stats_ ? static_cast<T>(sum_dy / static_cast<double>(count)) : T(0);
      const T mean_dy_xhat = batch_stats_ ? static_cast<T>(sum_dy_xhat / static_cast<double>(count)) : T(0);
      const T scale = gamma * inv_std;
      for (Index n = 0; n < s.n; ++n) {
        const T* x = input.data() + (n * s.c + c) * plane;
        const T* dy = grad_output.data() + (n * s.c + c) * plane;
        T* dx = grad_input.data() + (n * s.c + c) * plane;
        for (Index k = 0; k < plane; ++k) dx[k] = scale * (dy[k] - mean_dy - (x[k] - mean) * inv_std * mean_dy_xhat);
      }
    });
  }

 private:
  /// Picture n's plane of channel c, as an array (so Eigen vectorises the reductions).
  static Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> plane_of(const Tensor<T>& t, Index n, Index c, const Shape& s) {
    return {t.data() + (n * s.c + c) * s.h * s.w, s.h * s.w};
  }

  BatchNormOptions options_;
  Vector<T> weight_, bias_, running_mean_, running_var_;
  GradientBuffer<T> weight_grad_, bias_grad_;
  Vector<T> mean_, inv_std_;  // what the last forward normalised with
  bool batch_stats_ = true;   // whether it used the batch's statistics
};
}  // namespace detail

/// Batch normalisation over N, H and W of [N, C, H, W] (after a convolution).
template <class T>
class BatchNorm2d : public detail::BatchNorm<T, true> {
 public:
  explicit BatchNorm2d(const BatchNormOptions& options) : detail::BatchNorm<T, true>(options) {}
  static std::unique_ptr<BatchNorm2d> from_settings(KeyValues& s) {
    return std::make_unique<BatchNorm2d>(detail::batch_norm_options_from(s));
  }
  /// The parameters' shapes those settings give, nothing built (weight and bias when affine).
  static std::vector<std::vector<Index>> parameter_shapes(KeyValues& s) {
    return detail::batch_norm_parameter_shapes(detail::batch_norm_options_from(s));
  }
};

/// Batch normalisation over N of [N, C, 1, 1] (after a dense layer).
template <class T>
class BatchNorm1d : public detail::BatchNorm<T, false> {
 public:
  explicit BatchNorm1d(const BatchNormOptions& options) : detail::BatchNorm<T, false>(options) {}
  static std::unique_ptr<BatchNorm1d> from_settings(KeyValues& s) {
    return std::make_unique<BatchNorm1d>(detail::batch_norm_options_from(s));
  }
  /// The parameters' shapes those settings give, nothing built (weight and bias when affine).
  static std::vector<std::vector<Index>> parameter_shapes(KeyValues& s) {
    return detail::batch_norm_parameter_shapes(detail::batch_norm_options_from(s));
  }
};

}  // namespace convnet
