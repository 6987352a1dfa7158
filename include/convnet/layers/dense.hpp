// Dense (fully connected): y = x W^T + b.
//
// Shapes: input [N, in_features, 1, 1] (put a Flatten in front of a
// convolutional output) -> output [N, out_features, 1, 1]; weight
// [out_features, in_features] (PyTorch's nn.Linear layout), bias [out_features].
// Forward and backward are single GEMMs over the whole batch, in bf16 when the layer's precision
// says so (precision.hpp) and the batch has at least kMinBf16Batch rows: below that the tile rows
// would stand mostly empty while the weights are rounded and packed on every call, and the fp32
// kernel, reading the weights once, is faster.
#pragma once

#include <memory>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "../errors.hpp"
#include "../kernels/gemm.hpp"
#include "../kernels/gemm_bf16.hpp"
#include "../init.hpp"
#include "../key_values.hpp"
#include "../layer.hpp"

namespace convnet {

struct DenseOptions {
  DenseOptions(Index in_features, Index out_features) : in_features_(in_features), out_features_(out_features) {}

  DenseOptions& bias(bool v) { bias_ = v; return *this; }
  /// Seed of the default initialisation (init.hpp); unset: the next of the process-wide sequence.
  DenseOptions& seed(std::uint64_t v) { seed_ = v; return *this; }

  Index in_features() const { return in_features_; }
  Index out_features() const { return out_features_; }
  bool bias() const { return bias_; }
  std::optional<std::uint64_t> seed() const { return seed_; }

 private:
  Index in_features_, out_features_;
  bool bias_ = true;
  std::optional<std::uint64_t> seed_;
};

template <class T>
class Dense : public Layer<T> {
 public:
  explicit Dense(const DenseOptions& options) : options_(options) {
    detail::require_option(options_.in_features() >= 1, "Dense", "in_features", ">= 1", options_.in_features());
    detail::require_option(options_.out_features() >= 1, "Dense", "out_features", ">= 1", options_.out_features());
    const double weights = static_cast<double>(options_.out_features()) * static_cast<double>(options_.in_features());
    detail::require_option(weights <= 2147483648.0, "Dense", "out_features x in_features", "at most 2^31 weights",
                           weights);
    weight_ = Matrix<T>::Zero(options_.out_features(), options_.in_features());
    weight_grad_ = GradientBuffer<T>(weight_.size());
    if (options_.bias()) {
      bias_ = Vector<T>::Zero(options_.out_features());
      bias_grad_ = GradientBuffer<T>(options_.out_features());
    }
    const auto params = parameters();
    const std::uint64_t seed = options_.seed() ? *options_.seed() : next_default_seed();
    init::layer_default(params[0], options_.bias() ? &params[1] : nullptr, seed);
  }

  const DenseOptions& options() const { return options_; }
  std::string type_name() const override { return "Dense"; }
  static std::unique_ptr<Dense> from_settings(KeyValues& s) { return std::make_unique<Dense>(options_from(s)); }
  /// The parameters' shapes those settings give, nothing built (weight, then bias).
  static std::vector<std::vector<Index>> parameter_shapes(KeyValues& s) {
    const DenseOptions o = options_from(s);
    std::vector<std::vector<Index>> shapes{{o.out_features(), o.in_features()}};
    if (o.bias()) shapes.push_back({o.out_features()});
    return shapes;
  }
  static DenseOptions options_from(KeyValues& s) {
    return DenseOptions(s.take<Index>("in_features"), s.take<Index>("out_features")).bias(s.take("bias", true));
  }
  LayerSettings settings() const override {
    using detail::setting_value;
    return {{"in_features", setting_value(options_.in_features())},
            {"out_features", setting_value(options_.out_features())},
            {"bias", setting_value(options_.bias())}};
  }
  std::string describe() const override {
    return detail::concat("Dense(", options_.in_features(), " -> ", options_.out_features(), options_.bias() ? "" : ", no bias",
                          ")");
  }
  Shape output_shape(const Shape& in) const override {
    if (in.n < 1 || in.c != options_.in_features() || in.h != 1 || in.w != 1) {
      this->input_error(detail::concat("[N >= 1, ", options_.in_features(), ", 1, 1]"), in);
    }
    return Shape{in.n, options_.out_features(), 1, 1};
  }
  Index macs_per_sample(const Shape&) const override { return options_.in_features() * options_.out_features(); }

  std::vector<Parameter<T>> parameters() override {
    std::vector<Parameter<T>> params;
    params.push_back(Parameter<T>{"weight", {options_.out_features(), options_.in_features()}, weight_.data(),
                                  weight_grad_.data(), weight_.size(), true});
    if (options_.bias()) {
      params.push_back(
          Parameter<T>{"bias", {options_.out_features()}, bias_.data(), bias_grad_.data(), bias_.size(), false});
    }
    return params;
  }

  Matrix<T>& weight() { return weight_; }
  Vector<T>& bias() { return bias_; }
  MatrixMap<T> weight_grad() { return weight_grad_.matrix(options_.out_features(), options_.in_features()); }
  VectorMap<T> bias_grad() { return bias_grad_.vector(); }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    const Index n = input.dimension(0), in = options_.in_features(), out = options_.out_features();
    // Y = X W^T
    product(Transpose::No, Transpose::Yes, n, out, in, input.data(), in, weight_.data(), in, T(0), output.data(), out,
            n);
    if (options_.bias()) rows_per_sample(output).rowwise() += bias_.transpose();
  }

  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const Index n = input.dimension(0), in = options_.in_features(), out = options_.out_features();
    // dW += dY^T X;  dX = dY W
    if (this->trainable()) {
      product(Transpose::Yes, Transpose::No, out, in, n, grad_output.data(), out, input.data(), in, T(1),
              weight_grad_.data(), in, n);
      if (options_.bias()) bias_grad_.vector() += rows_per_sample(grad_output).colwise().sum().transpose();
    }
    if (!this->input_gradient()) return;
    product(Transpose::No, Transpose::No, n, in, out, grad_output.data(), out, weight_.data(), in, T(0),
            grad_input.data(), in, n);
  }

 public:
  /// Batches below this many rows multiply in fp32 even at bf16 (see the top of this file).
  static constexpr Index kMinBf16Batch = 16;

 private:
  // C = op(A) op(B) + beta C in the layer's precision, for a batch of `batch` rows.
  void product(Transpose ta, Transpose tb, Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb,
               T beta, T* c, Index ldc, Index batch) {
    if constexpr (std::is_same_v<T, float>) {
      if (this->bf16_products() && batch >= kMinBf16Batch) {
        gemm_bf16(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
        return;
      }
    }
    gemm(ta, tb, m, n, k, T(1), a, lda, b, ldb, beta, c, ldc);
  }

 private:
  DenseOptions options_;
  Matrix<T> weight_;
  Vector<T> bias_;
  GradientBuffer<T> weight_grad_, bias_grad_;
};

}  // namespace convnet
