// Flatten: [N, C, H, W] -> [N, C*H*W, 1, 1], in NCHW order (PyTorch's and
// Caffe's), so dense weights move between frameworks unchanged.
#pragma once

#include <memory>
#include <string>

#include "../key_values.hpp"
#include "../layer.hpp"

namespace convnet {

template <class T>
class Flatten : public Layer<T> {
 public:
  std::string type_name() const override { return "Flatten"; }
  static std::unique_ptr<Flatten> from_settings(KeyValues&) { return std::make_unique<Flatten>(); }
  std::string describe() const override { return "Flatten"; }
  Shape output_shape(const Shape& in) const override {
    if (in.size() == 0) this->input_error("[N >= 1, C >= 1, H >= 1, W >= 1]", in);
    return Shape{in.n, in.per_sample(), 1, 1};
  }

 protected:
  // The memory order is unchanged: both directions are plain copies.
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override { flat(output) = flat(input); }
  void backward_impl(const Tensor<T>&, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    flat(grad_input) = flat(grad_output);
  }
};

}  // namespace convnet
