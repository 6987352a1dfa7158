// Softmax across channels: y_c = exp(x_c) / sum_j exp(x_j), at each (n, y, x).
// For probabilities at inference; training uses SoftmaxCrossEntropy, which
// fuses softmax into the loss for a stable gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "../key_values.hpp"
#include "../layer.hpp"
#include "../threading.hpp"

namespace convnet {

template <class T>
class Softmax : public Layer<T> {
 public:
  std::string type_name() const override { return "Softmax"; }
  static std::unique_ptr<Softmax> from_settings(KeyValues&) { return std::make_unique<Softmax>(); }
  std::string describe() const override { return "Softmax"; }
  Shape output_shape(const Shape& in) const override {
    if (in.size() == 0) this->input_error("[N >= 1, C >= 1, H >= 1, W >= 1]", in);
    return in;
  }

 protected:
  // Subtracting the maximum first keeps exp() finite for any logits.
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    const Shape s = shape_of(input);
    const Index plane = s.plane();
    detail::parallel_for(s.n * plane, s.n * plane >= 64, [&](Index np, int) {
      const Index n = np / plane, p = np % plane;
      const T* x = input.data() + n * s.per_sample() + p;
      T* y = output.data() + n * s.per_sample() + p;
      T max_value = x[0];
      for (Index c = 1; c < s.c; ++c) max_value = std::max(max_value, x[c * plane]);
      T sum = 0;
      for (Index c = 0; c < s.c; ++c) sum += (y[c * plane] = std::exp(x[c * plane] - max_value));
      for (Index c = 0; c < s.c; ++c) y[c * plane] /= sum;
    });
  }

  // dx_c = y_c * (g_c - sum_j g_j y_j)
  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const Shape s = shape_of(input);
    const Index plane = s.plane();
    const Tensor<T>& output = this->output();
    detail::parallel_for(s.n * plane, s.n * plane >= 64, [&](Index np, int) {
      const Index n = np / plane, p = np % plane, base = n * s.per_sample() + p;
      T dot = 0;
      for (Index c = 0; c < s.c; ++c) dot += grad_output.data()[base + c * plane] * output.data()[base + c * plane];
      for (Index c = 0; c < s.c; ++c) {
        grad_input.data()[base + c * plane] =
            output.data()[base + c * plane] * (grad_output.data()[base + c * plane] - dot);
      }
    });
  }
};

}  // namespace convnet
