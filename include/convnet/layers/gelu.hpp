// GELU (Hendrycks and Gimpel 2016): x Phi(x), with Phi the standard normal distribution function,
// element-wise, as PyTorch's nn.GELU() (approximate='none'):
//   y  = x (1 + erf(x / sqrt 2)) / 2
//   dy/dx = Phi(x) + x phi(x),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
// and, with approximate(true), PyTorch's approximate='tanh':
//   y  = x (1 + tanh(u)) / 2,   u = sqrt(2 / pi) (x + 0.044715 x^3)
// The fast CIFAR network (models/fast_cifar.hpp) uses it after every batch normalisation.
//
// erf comes from Eigen's SpecialFunctions module, which vectorises it in float (a rational
// approximation within a few ulp): a scalar erf per element would cost the fast recipe more than
// its convolutions on two cores.
#pragma once

#include <cmath>
#include <memory>
#include <string>

#include <unsupported/Eigen/SpecialFunctions>

#include "../key_values.hpp"
#include "../layer.hpp"
#include "../threading.hpp"

namespace convnet {

template <class T>
class GELU : public Layer<T> {
 public:
  explicit GELU(bool approximate = false) : approximate_(approximate) {}

  std::string type_name() const override { return "GELU"; }
  static std::unique_ptr<GELU> from_settings(KeyValues& s) { return std::make_unique<GELU>(s.take("approximate", false)); }
  LayerSettings settings() const override { return {{"approximate", detail::setting_value(approximate_)}}; }
  std::string describe() const override { return approximate_ ? "GELU(tanh)" : "GELU"; }
  bool approximate() const { return approximate_; }
  Shape output_shape(const Shape& in) const override {
    if (in.size() == 0) this->input_error("[N >= 1, C >= 1, H >= 1, W >= 1]", in);
    return in;
  }

 protected:
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  using ConstMap = Eigen::Map<const Array>;
  using Map = Eigen::Map<Array>;
  static constexpr T kInvSqrt2 = T(0.70710678118654752440);
  static constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
  static constexpr T kSqrt2OverPi = T(0.79788456080286535588);
  static constexpr T kCubic = T(0.044715);

  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    const T* x_data = input.data();
    T* y_data = output.data();
    detail::parallel_chunks(input.size(), [&](Index begin, Index end) {
      const ConstMap x(x_data + begin, end - begin);
      Map y(y_data + begin, end - begin);
      if (approximate_) {
        y = T(0.5) * x * (T(1) + (kSqrt2OverPi * (x + kCubic * x.cube())).tanh());
      } else {
        y = T(0.5) * x * (T(1) + (x * kInvSqrt2).erf());
      }
    });
  }

  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const T* x_data = input.data();
    const T* g_data = grad_output.data();
    T* dx_data = grad_input.data();
    detail::parallel_chunks(input.size(), [&](Index begin, Index end) {
      const ConstMap x(x_data + begin, end - begin), g(g_data + begin, end - begin);
      Map dx(dx_data + begin, end - begin);
      if (approximate_) {
        // d/dx x (1 + tanh u) / 2 = (1 + t) / 2 + x (1 - t^2) u' / 2, u' = sqrt(2/pi) (1 + 3 c x^2)
        // (tanh u is written twice rather than held in an array: backward allocates nothing)
        const auto t = (kSqrt2OverPi * (x + kCubic * x.cube())).tanh();
        dx = g * (T(0.5) * (T(1) + t) +
                  T(0.5) * x * (T(1) - t.square()) * kSqrt2OverPi * (T(1) + T(3) * kCubic * x.square()));
      } else {
        dx = g * (T(0.5) * (T(1) + (x * kInvSqrt2).erf()) + x * kInvSqrt2Pi * (T(-0.5) * x.square()).exp());
      }
    });
  }

 private:
  bool approximate_;
};

}  // namespace convnet
