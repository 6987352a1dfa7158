// MaxPool2d: maximum over k x k windows moved by `stride` (paper §3.4).
//
// With stride < kernel the windows overlap, as in AlexNet (3 x 3, stride 2),
// which the paper found to reduce over-fitting. H_out = (H - kernel)/stride + 1
// (no padding, rounding down): 55 -> 27 -> 13 -> 6 in the paper network.
// Backward sends each output's gradient to the one input that was its maximum
// (the first in row-major window order when several are equal), remembered in
// forward as an index into the input plane.
#pragma once

#include <memory>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>
#include <string>

#include "../errors.hpp"
#include "../key_values.hpp"
#include "../layer.hpp"
#include "../threading.hpp"

namespace convnet {

struct MaxPool2dOptions {
  explicit MaxPool2dOptions(Index kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}

  MaxPool2dOptions& stride(Index v) { stride_ = v; return *this; }

  Index kernel_size() const { return kernel_size_; }
  Index stride() const { return stride_; }

 private:
  Index kernel_size_, stride_;
};

template <class T>
class MaxPool2d : public Layer<T> {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options) : options_(options) {
    detail::require_option(options_.kernel_size() >= 1, "MaxPool2d", "kernel_size", ">= 1", options_.kernel_size());
    detail::require_option(options_.stride() >= 1, "MaxPool2d", "stride", ">= 1", options_.stride());
  }

  const MaxPool2dOptions& options() const { return options_; }
  std::string type_name() const override { return "MaxPool2d"; }
  static std::unique_ptr<MaxPool2d> from_settings(KeyValues& s) {
    return std::make_unique<MaxPool2d>(MaxPool2dOptions(s.take<Index>("kernel_size")).stride(s.take<Index>("stride")));
  }
  LayerSettings settings() const override {
    return {{"kernel_size", detail::setting_value(options_.kernel_size())}, {"stride", detail::setting_value(options_.stride())}};
  }
  std::string describe() const override {
    return detail::concat("MaxPool2d(kernel ", options_.kernel_size(), ", stride ", options_.stride(), ")");
  }
  Shape output_shape(const Shape& in) const override {
    const Index k = options_.kernel_size();
    // The argmax of each window is kept as a 32-bit index into its input plane.
    const bool plane_fits = in.h <= (Index{1} << 31) / std::max<Index>(in.w, 1);
    if (in.n < 1 || in.c < 1 || in.h < k || in.w < k || !plane_fits) {
      this->input_error(detail::concat("[N >= 1, C >= 1, H >= ", k, ", W >= ", k, ", H * W < 2^31]"), in);
    }
    return Shape{in.n, in.c, (in.h - k) / options_.stride() + 1, (in.w - k) / options_.stride() + 1};
  }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    const Shape in = shape_of(input), out = shape_of(output);
    argmax_.resize(static_cast<std::size_t>(out.size()));
    const Index k = options_.kernel_size(), s = options_.stride();
    detail::parallel_for(in.n * in.c, true, [&](Index nc, int) {
      const T* x = input.data() + nc * in.plane();
      T* y = output.data() + nc * out.plane();
      std::int32_t* arg = argmax_.data() + nc * out.plane();
      for (Index oy = 0; oy < out.h; ++oy) {
        for (Index ox = 0; ox < out.w; ++ox) {
          Index best = oy * s * in.w + ox * s;
          T best_value = x[best];
          for (Index i = 0; i < k; ++i) {
            const Index row = (oy * s + i) * in.w + ox * s;
            for (Index j = 0; j < k; ++j) {
              if (x[row + j] > best_value) {
                best_value = x[row + j];
                best = row + j;
              }
            }
          }
          y[oy * out.w + ox] = best_value;
          arg[oy * out.w + ox] = static_cast<std::int32_t>(best);
        }
      }
    });
  }

  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const Shape in = shape_of(input), out = shape_of(grad_output);
    detail::parallel_for(in.n * in.c, true, [&](Index nc, int) {
      T* dx = grad_input.data() + nc * in.plane();
      const T* dy = grad_output.data() + nc * out.plane();
      const std::int32_t* arg = argmax_.data() + nc * out.plane();
      std::fill(dx, dx + in.plane(), T(0));
      for (Index i = 0; i < out.plane(); ++i) dx[arg[i]] += dy[i];
    });
  }

 private:
  MaxPool2dOptions options_;
  std::vector<std::int32_t> argmax_;  // per output element: the index of its maximum in the input plane
};

}  // namespace convnet
