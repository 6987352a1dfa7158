// Multiply: y = factor x, a constant (not trained). The fast CIFAR network scales its logits by
// 1/9 after the last, bias-free dense layer: with label smoothing, the scale of the logits sets how
// sharp the softmax can get early on, and a constant keeps it out of the learning rates.
#pragma once

#include <cmath>
#include <memory>
#include <string>

#include "../errors.hpp"
#include "../key_values.hpp"
#include "../layer.hpp"
#include "../threading.hpp"

namespace convnet {

template <class T>
class Multiply : public Layer<T> {
 public:
  explicit Multiply(double factor) : factor_(factor) {
    detail::require_option(std::isfinite(factor) && std::fabs(factor) <= 1e12, "Multiply", "factor", "finite, |factor| <= 1e12", factor);
  }

  std::string type_name() const override { return "Multiply"; }
  static std::unique_ptr<Multiply> from_settings(KeyValues& s) { return std::make_unique<Multiply>(s.take<double>("factor")); }
  LayerSettings settings() const override { return {{"factor", detail::setting_value(factor_)}}; }
  std::string describe() const override { return detail::concat("Multiply(", factor_, ")"); }
  double factor() const { return factor_; }
  Shape output_shape(const Shape& in) const override {
    if (in.size() == 0) this->input_error("[N >= 1, C >= 1, H >= 1, W >= 1]", in);
    return in;
  }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override { scaled(input, output); }
  void backward_impl(const Tensor<T>&, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    scaled(grad_output, grad_input);
  }

 private:
  void scaled(const Tensor<T>& from, Tensor<T>& to) const {
    const T f = static_cast<T>(factor_);
    const T* x = from.data();
    T* y = to.data();
    detail::parallel_chunks(from.size(), [&](Index begin, Index end) {
      for (Index i = begin; i < end; ++i) y[i] = f * x[i];
    });
  }

  double factor_;
};

}  // namespace convnet
