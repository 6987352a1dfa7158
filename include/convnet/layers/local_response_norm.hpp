// LocalResponseNorm: normalisation across channels (paper §3.3).
//
//   b_c = a_c / scale_c^beta,   scale_c = k + alpha' * sum_{j in win(c)} a_j^2,
//   win(c) = [c - size/2, c + size/2] clipped to [0, C-1]  (size odd),
//
// applied at every (n, y, x). The paper and the replicas disagree on alpha':
//  - LrnConvention::Paper:      alpha' = alpha        (the paper's formula, and TensorFlow's)
//  - LrnConvention::AlphaOverN: alpha' = alpha / size (Caffe, PyTorch, cuda-convnet)
// The paper's constants are size 5, alpha 1e-4, beta 0.75, k 2; written in
// PyTorch's units they are size 5, alpha 5e-4, k 2. The AlexNet header uses
// the paper's convention; this class defaults to it too.
//
// Backward (with r_j = g_j * b_j / scale_j):
//   dL/da_c = g_c * scale_c^-beta - 2 * alpha' * beta * a_c * sum_{j : c in win(j)} r_j
// and since the window is symmetric (odd size), {j : c in win(j)} = win(c).
// scale is kept from forward for it.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "../errors.hpp"
#include "../layer.hpp"
#include "../threading.hpp"

namespace convnet {

enum class LrnConvention {
  Paper,       ///< alpha multiplies the sum of squares as printed in the paper.
  AlphaOverN,  ///< alpha / size multiplies it (Caffe, PyTorch, cuda-convnet).
};

inline const char* to_string(LrnConvention c) { return c == LrnConvention::Paper ? "paper" : "alpha/n"; }

struct LocalResponseNormOptions {
  LocalResponseNormOptions() = default;
  explicit LocalResponseNormOptions(Index size) : size_(size) {}

  LocalResponseNormOptions& size(Index v) { size_ = v; return *this; }
  LocalResponseNormOptions& alpha(double v) { alpha_ = v; return *this; }
  LocalResponseNormOptions& beta(double v) { beta_ = v; return *this; }
  LocalResponseNormOptions& k(double v) { k_ = v; return *this; }
  LocalResponseNormOptions& convention(LrnConvention v) { convention_ = v; return *this; }

  Index size() const { return size_; }
  double alpha() const { return alpha_; }
  double beta() const { return beta_; }
  double k() const { return k_; }
  LrnConvention convention() const { return convention_; }
  /// The factor that multiplies the sum of squares under the chosen convention.
  double effective_alpha() const {
    return convention_ == LrnConvention::Paper ? alpha_ : alpha_ / static_cast<double>(size_);
  }

 private:
  Index size_ = 5;
  double alpha_ = 1e-4, beta_ = 0.75, k_ = 2.0;
  LrnConvention convention_ = LrnConvention::Paper;
};

template <class T>
class LocalResponseNorm : public Layer<T> {
 public:
  explicit LocalResponseNorm(const LocalResponseNormOptions& options = {}) : opt_(options) {
    const std::string where = "LocalResponseNorm";
    detail::require_option(opt_.size() >= 1 && opt_.size() % 2 == 1, where, "size", "odd and >= 1", opt_.size());
    detail::require_option(opt_.alpha() >= 0, where, "alpha", ">= 0", opt_.alpha());
    detail::require_option(opt_.beta() >= 0, where, "beta", ">= 0", opt_.beta());
    detail::require_option(opt_.k() > 0, where, "k", "> 0", opt_.k());
  }

  const LocalResponseNormOptions& options() const { return opt_; }
  std::string type_name() const override { return "LocalResponseNorm"; }
  LayerSettings settings() const override {
    using detail::setting_value;
    return {{"size", setting_value(opt_.size())}, {"alpha", setting_value(opt_.alpha())},
            {"beta", setting_value(opt_.beta())}, {"k", setting_value(opt_.k())},
            {"convention", opt_.convention() == LrnConvention::Paper ? "paper" : "alpha_over_n"}};
  }
  std::string describe() const override {
    return detail::concat("LocalResponseNorm(size ", opt_.size(), ", alpha ", opt_.alpha(), ", beta ", opt_.beta(),
                          ", k ", opt_.k(), ", ", to_string(opt_.convention()), ")");
  }
  Shape output_shape(const Shape& in) const override {
    if (in.size() == 0) this->input_error("[N >= 1, C >= 1, H >= 1, W >= 1]", in);
    return in;
  }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    const Shape s = shape_of(input);
    resize(scale_, s);
    const Index half = opt_.size() / 2, plane = s.plane();
    const T alpha = static_cast<T>(opt_.effective_alpha()), k = static_cast<T>(opt_.k());
    const T beta = static_cast<T>(opt_.beta());
    detail::parallel_for(s.n * s.c, true, [&](Index nc, int) {
      const Index n = nc / s.c, c = nc % s.c;
      const Index lo = std::max<Index>(0, c - half), hi = std::min<Index>(s.c - 1, c + half);
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> scale(scale_.data() + nc * plane, plane);
      scale.setZero();
      for (Index j = lo; j <= hi; ++j) {
        scale += ConstVectorMap<T>(input.data() + (n * s.c + j) * plane, plane).array().square();
      }
      scale = k + alpha * scale;
      const T* x = input.data() + nc * plane;
      T* out = output.data() + nc * plane;
      for (Index i = 0; i < plane; ++i) out[i] = x[i] * inverse_power(scale[i], beta);
    });
  }

  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const Shape s = shape_of(input);
    resize(ratio_, s);
    const Index half = opt_.size() / 2, plane = s.plane();
    const T beta = static_cast<T>(opt_.beta());
    const T factor = T(2) * static_cast<T>(opt_.effective_alpha()) * beta;
    const Tensor<T>& output = this->output();
    flat(ratio_).array() = flat(grad_output).array() * flat(output).array() / flat(scale_).array();
    detail::parallel_for(s.n * s.c, true, [&](Index nc, int) {
      const Index n = nc / s.c, c = nc % s.c;
      const Index lo = std::max<Index>(0, c - half), hi = std::min<Index>(s.c - 1, c + half);
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> dx(grad_input.data() + nc * plane, plane);
      dx.setZero();
      for (Index j = lo; j <= hi; ++j) dx += ConstVectorMap<T>(ratio_.data() + (n * s.c + j) * plane, plane).array();
      const T* x = input.data() + nc * plane;
      const T* g = grad_output.data() + nc * plane;
      const T* scale = scale_.data() + nc * plane;
      for (Index i = 0; i < plane; ++i) dx[i] = g[i] * inverse_power(scale[i], beta) - factor * x[i] * dx[i];
    });
  }

 private:
  // scale^-beta; beta = 0.75 (the paper's) avoids pow: s^-3/4 = 1 / (sqrt(s) * sqrt(sqrt(s))).
  static T inverse_power(T scale, T beta) {
    if (beta == T(0.75)) {
      const T root = std::sqrt(scale);
      return T(1) / (root * std::sqrt(root));
    }
    return std::pow(scale, -beta);
  }

  LocalResponseNormOptions opt_;
  Tensor<T> scale_, ratio_;
};

}  // namespace convnet
