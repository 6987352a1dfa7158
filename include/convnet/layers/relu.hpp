// ReLU: max(0, x), element-wise (paper §3.1).
#pragma once

#include <memory>
#include <string>

#include "../key_values.hpp"
#include "../layer.hpp"
#include "../threading.hpp"

namespace convnet {

template <class T>
class ReLU : public Layer<T> {
 public:
  std::string type_name() const override { return "ReLU"; }
  static std::unique_ptr<ReLU> from_settings(KeyValues&) { return std::make_unique<ReLU>(); }
  std::string describe() const override { return "ReLU"; }
  Shape output_shape(const Shape& in) const override {
    if (in.size() == 0) this->input_error("[N >= 1, C >= 1, H >= 1, W >= 1]", in);
    return in;
  }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    const T* x = input.data();
    T* y = output.data();
    detail::parallel_chunks(input.size(), [&](Index begin, Index end) {
      for (Index i = begin; i < end; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
    });
  }
  // The derivative is taken as 0 at x = 0, as PyTorch and Caffe do.
  void backward_impl(const Tensor<T>& /*input*/, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const T* y = this->output().data();
    const T* g = grad_output.data();
    T* dx = grad_input.data();
    detail::parallel_chunks(grad_output.size(), [&](Index begin, Index end) {
      for (Index i = begin; i < end; ++i) dx[i] = y[i] > T(0) ? g[i] : T(0);
    });
  }
};

}  // namespace convnet
