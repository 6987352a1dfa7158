// ReLU: max(0, x), element-wise (paper §3.1).
#pragma once

#include <string>

#include "../layer.hpp"

namespace convnet {

template <class T>
class ReLU : public Layer<T> {
 public:
  std::string type_name() const override { return "ReLU"; }
  std::string describe() const override { return "ReLU"; }
  Shape output_shape(const Shape& in) const override {
    if (in.size() == 0) this->input_error("[N >= 1, C >= 1, H >= 1, W >= 1]", in);
    return in;
  }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    flat(output) = flat(input).cwiseMax(T(0));
  }
  // The derivative is taken as 0 at x = 0, as PyTorch and Caffe do.
  void backward_impl(const Tensor<T>& /*input*/, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    flat(grad_input) = (flat(this->output()).array() > T(0)).select(flat(grad_output), T(0));
  }
};

}  // namespace convnet
