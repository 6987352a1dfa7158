// AdaptiveAvgPool2d: averages each channel down to a fixed output size,
// whatever the input size (torchvision's AlexNet pools to 6 x 6 this way
// before its classifier, so it accepts inputs other than 224 x 224).
//
// Output cell (i, j) of an H x W plane pooled to OH x OW averages rows
// [floor(i H / OH), ceil((i + 1) H / OH)) and columns likewise - PyTorch's
// rule, so the windows may overlap by one when the sizes do not divide.
// When they are equal the layer is the identity. Backward spreads each
// output's gradient evenly over its window.
#pragma once

#include <memory>
#include <algorithm>
#include <string>

#include "../errors.hpp"
#include "../key_values.hpp"
#include "../layer.hpp"
#include "../threading.hpp"

namespace convnet {

template <class T>
class AdaptiveAvgPool2d : public Layer<T> {
 public:
  AdaptiveAvgPool2d(Index output_height, Index output_width) : oh_(output_height), ow_(output_width) {
    detail::require_option(oh_ >= 1, "AdaptiveAvgPool2d", "output_height", ">= 1", oh_);
    detail::require_option(ow_ >= 1, "AdaptiveAvgPool2d", "output_width", ">= 1", ow_);
  }

  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  static std::unique_ptr<AdaptiveAvgPool2d> from_settings(KeyValues& s) {
    return std::make_unique<AdaptiveAvgPool2d>(s.take<Index>("output_height"), s.take<Index>("output_width"));
  }
  LayerSettings settings() const override {
    return {{"output_height", detail::setting_value(oh_)}, {"output_width", detail::setting_value(ow_)}};
  }
  std::string describe() const override { return detail::concat("AdaptiveAvgPool2d(", oh_, " x ", ow_, ")"); }
  Shape output_shape(const Shape& in) const override {
    if (in.n < 1 || in.c < 1 || in.h < 1 || in.w < 1) this->input_error("[N >= 1, C >= 1, H >= 1, W >= 1]", in);
    return Shape{in.n, in.c, oh_, ow_};
  }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    const Shape in = shape_of(input);
    detail::parallel_for(in.n * in.c, in.n * in.c * in.plane() > 16384, [&](Index nc, int) {
      const T* x = input.data() + nc * in.plane();
      T* y = output.data() + nc * oh_ * ow_;
      for (Index i = 0; i < oh_; ++i) {
        const Index r0 = begin(i, in.h, oh_), r1 = end(i, in.h, oh_);
        for (Index j = 0; j < ow_; ++j) {
          const Index c0 = begin(j, in.w, ow_), c1 = end(j, in.w, ow_);
          T sum = 0;
          for (Index r = r0; r < r1; ++r) {
            for (Index c = c0; c < c1; ++c) sum += x[r * in.w + c];
          }
          y[i * ow_ + j] = sum / static_cast<T>((r1 - r0) * (c1 - c0));
        }
      }
    });
  }

  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const Shape in = shape_of(input);
    detail::parallel_for(in.n * in.c, in.n * in.c * in.plane() > 16384, [&](Index nc, int) {
      T* dx = grad_input.data() + nc * in.plane();
      const T* dy = grad_output.data() + nc * oh_ * ow_;
      std::fill(dx, dx + in.plane(), T(0));
      for (Index i = 0; i < oh_; ++i) {
        const Index r0 = begin(i, in.h, oh_), r1 = end(i, in.h, oh_);
        for (Index j = 0; j < ow_; ++j) {
          const Index c0 = begin(j, in.w, ow_), c1 = end(j, in.w, ow_);
          const T share = dy[i * ow_ + j] / static_cast<T>((r1 - r0) * (c1 - c0));
          for (Index r = r0; r < r1; ++r) {
            for (Index c = c0; c < c1; ++c) dx[r * in.w + c] += share;
          }
        }
      }
    });
  }

 private:
  static Index begin(Index i, Index in, Index out) { return i * in / out; }
  static Index end(Index i, Index in, Index out) { return ((i + 1) * in + out - 1) / out; }

  Index oh_, ow_;
};

}  // namespace convnet
