// Dense (fully connected): y = x W^T + b.
//
// Shapes: input [N, in_features, 1, 1] (put a Flatten in front of a
// convolutional output) -> output [N, out_features, 1, 1]; weight
// [out_features, in_features] (PyTorch's nn.Linear layout), bias [out_features].
// Forward and backward are single GEMMs over the whole batch.
#pragma once

#include <string>
#include <vector>

#include "../errors.hpp"
#include "../layer.hpp"

namespace convnet {

struct DenseOptions {
  DenseOptions(Index in_features, Index out_features) : in_features_(in_features), out_features_(out_features) {}

  DenseOptions& bias(bool v) { bias_ = v; return *this; }

  Index in_features() const { return in_features_; }
  Index out_features() const { return out_features_; }
  bool bias() const { return bias_; }

 private:
  Index in_features_, out_features_;
  bool bias_ = true;
};

template <class T>
class Dense : public Layer<T> {
 public:
  explicit Dense(const DenseOptions& options) : opt_(options) {
    detail::require_option(opt_.in_features() >= 1, "Dense", "in_features", ">= 1", opt_.in_features());
    detail::require_option(opt_.out_features() >= 1, "Dense", "out_features", ">= 1", opt_.out_features());
    weight_ = Matrix<T>::Zero(opt_.out_features(), opt_.in_features());
    weight_grad_ = Matrix<T>::Zero(opt_.out_features(), opt_.in_features());
    if (opt_.bias()) {
      bias_ = Vector<T>::Zero(opt_.out_features());
      bias_grad_ = Vector<T>::Zero(opt_.out_features());
    }
  }

  const DenseOptions& options() const { return opt_; }
  std::string type_name() const override { return "Dense"; }
  std::string describe() const override {
    return detail::concat("Dense(", opt_.in_features(), " -> ", opt_.out_features(), opt_.bias() ? "" : ", no bias",
                          ")");
  }
  Shape output_shape(const Shape& in) const override {
    if (in.n < 1 || in.c != opt_.in_features() || in.h != 1 || in.w != 1) {
      this->input_error(detail::concat("[N >= 1, ", opt_.in_features(), ", 1, 1]"), in);
    }
    return Shape{in.n, opt_.out_features(), 1, 1};
  }
  Index macs_per_sample(const Shape&) const override { return opt_.in_features() * opt_.out_features(); }

  std::vector<Parameter<T>> parameters() override {
    std::vector<Parameter<T>> params;
    params.push_back(Parameter<T>{"weight", {opt_.out_features(), opt_.in_features()}, weight_.data(),
                                  weight_grad_.data(), weight_.size(), true});
    if (opt_.bias()) {
      params.push_back(
          Parameter<T>{"bias", {opt_.out_features()}, bias_.data(), bias_grad_.data(), bias_.size(), false});
    }
    return params;
  }

  Matrix<T>& weight() { return weight_; }
  Vector<T>& bias() { return bias_; }
  Matrix<T>& weight_grad() { return weight_grad_; }
  Vector<T>& bias_grad() { return bias_grad_; }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    auto y = rows_per_sample(output);
    y.noalias() = rows_per_sample(input) * weight_.transpose();
    if (opt_.bias()) y.rowwise() += bias_.transpose();
  }

  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const auto dy = rows_per_sample(grad_output);
    weight_grad_.noalias() += dy.transpose() * rows_per_sample(input);
    if (opt_.bias()) bias_grad_.noalias() += dy.colwise().sum().transpose();
    rows_per_sample(grad_input).noalias() = dy * weight_;
  }

 private:
  DenseOptions opt_;
  Matrix<T> weight_, weight_grad_;
  Vector<T> bias_, bias_grad_;
};

}  // namespace convnet
