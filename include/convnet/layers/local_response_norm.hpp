// LocalResponseNorm: normalisation across channels (paper §3.3).
//
//   b_c = a_c / scale_c^beta,   scale_c = k + alpha' * sum_{j in win(c)} a_j^2,
//   win(c) = [c - size/2, c + size/2] clipped to [0, C-1]  (size odd),
//
// applied at every (n, y, x). The paper and the replicas disagree on alpha':
//  - LrnConvention::AlphaOnSum:      alpha' = alpha        (the paper's formula, and TensorFlow's)
//  - LrnConvention::AlphaOverN: alpha' = alpha / size (Caffe, PyTorch, cuda-convnet)
// The paper's constants are size 5, alpha 1e-4, beta 0.75, k 2; written in
// PyTorch's units they are size 5, alpha 5e-4, k 2. The AlexNet header uses
// the paper's convention; this class defaults to it too.
//
// Backward (with r_j = g_j * b_j / scale_j):
//   dL/da_c = g_c * scale_c^-beta - 2 * alpha' * beta * a_c * sum_{j : c in win(j)} r_j
// and since the window is symmetric (odd size), {j : c in win(j)} = win(c).
// scale is kept from forward for it (in training mode only: evaluation keeps
// no more than the output, as PyTorch's no_grad inference does).
#pragma once

#include <memory>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../key_values.hpp"
#include "../layer.hpp"
#include "../threading.hpp"

namespace convnet {

enum class LrnConvention {
  AlphaOnSum,  ///< alpha multiplies the sum of squares, as printed in the paper (§3.3): "paper"
  AlphaOverN,  ///< alpha / size multiplies it (Caffe, PyTorch, cuda-convnet): "alpha/n"
};

inline const char* to_string(LrnConvention c) { return c == LrnConvention::AlphaOnSum ? "paper" : "alpha/n"; }

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
    return convention_ == LrnConvention::AlphaOnSum ? alpha_ : alpha_ / static_cast<double>(size_);
  }

 private:
  Index size_ = 5;
  double alpha_ = 1e-4, beta_ = 0.75, k_ = 2.0;
  LrnConvention convention_ = LrnConvention::AlphaOnSum;
};

template <class T>
class LocalResponseNorm : public Layer<T> {
 public:
  explicit LocalResponseNorm(const LocalResponseNormOptions& options = {}) : options_(options) {
    const std::string where = "LocalResponseNorm";
    detail::require_option(options_.size() >= 1 && options_.size() % 2 == 1, where, "size", "odd and >= 1", options_.size());
    detail::require_option(options_.alpha() >= 0, where, "alpha", ">= 0", options_.alpha());
    detail::require_option(options_.beta() >= 0, where, "beta", ">= 0", options_.beta());
    detail::require_option(options_.k() > 0, where, "k", "> 0", options_.k());
  }

  const LocalResponseNormOptions& options() const { return options_; }
  std::string type_name() const override { return "LocalResponseNorm"; }
  static std::unique_ptr<LocalResponseNorm> from_settings(KeyValues& s) {
    const std::string convention = s.take<std::string>("convention", "paper");
    if (convention != "paper" && convention != "alpha_over_n") {
      throw ArgumentError(s.owner() + ": convention is paper or alpha_over_n, got '" + convention + "'");
    }
    return std::make_unique<LocalResponseNorm>(
        LocalResponseNormOptions(s.take<Index>("size"))
            .alpha(s.take<double>("alpha"))
            .beta(s.take<double>("beta"))
            .k(s.take<double>("k"))
            .convention(convention == "paper" ? LrnConvention::AlphaOnSum : LrnConvention::AlphaOverN));
  }
  LayerSettings settings() const override {
    using detail::setting_value;
    return {{"size", setting_value(options_.size())}, {"alpha", setting_value(options_.alpha())},
            {"beta", setting_value(options_.beta())}, {"k", setting_value(options_.k())},
            {"convention", options_.convention() == LrnConvention::AlphaOnSum ? "paper" : "alpha_over_n"}};
  }
  std::string describe() const override {
    return detail::concat("LocalResponseNorm(size ", options_.size(), ", alpha ", options_.alpha(), ", beta ", options_.beta(),
                          ", k ", options_.k(), ", ", to_string(options_.convention()), ")");
  }
  Shape output_shape(const Shape& in) const override {
    if (in.size() == 0) this->input_error("[N >= 1, C >= 1, H >= 1, W >= 1]", in);
    return in;
  }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    const Shape s = shape_of(input);
    const Index plane = s.plane();
    // Training keeps every scale for backward; evaluation needs one plane a thread.
    const bool keep = this->training();
    if (keep) resize(scale_, s);
    scale_kept_ = keep;
    prepare_planes(keep ? 0 : 1, plane);
    detail::parallel_for(s.n * s.c, true, [&](Index nc, int thread) {
      ArrayMap scale(keep ? scale_.data() + nc * plane : planes_[static_cast<std::size_t>(thread)].data(), plane);
      compute_scale(input, nc, scale);
      ArrayMap out(output.data() + nc * plane, plane);
      with_inverse_power(scale, [&](const auto& p) { out = plane_of(input, nc, plane) * p; });
    });
  }

  // One image a thread, channels in order, with the ratios r_j of the window in
  // a ring of `size` planes: each r_j is computed once and no tensor of them is kept.
  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const Shape s = shape_of(input);
    if (!scale_kept_) {  // forward ran in evaluation mode: work the scales out again
      resize(scale_, s);
      detail::parallel_for(s.n * s.c, true, [&](Index nc, int) {
        ArrayMap scale(scale_.data() + nc * s.plane(), s.plane());
        compute_scale(input, nc, scale);
      });
      scale_kept_ = true;
    }
    const Index size = options_.size(), half = size / 2, plane = s.plane();
    const T factor = T(2) * static_cast<T>(options_.effective_alpha()) * static_cast<T>(options_.beta());
    const Tensor<T>& output = this->output();
    prepare_planes(size, plane);
    detail::parallel_for(s.n, true, [&](Index n, int thread) {
      T* ring = planes_[static_cast<std::size_t>(thread)].data();
      auto ratio = [&](Index j) { return ArrayMap(ring + (j % size) * plane, plane); };
      auto compute_ratio = [&](Index j) {
        const Index nj = n * s.c + j;
        ratio(j) = plane_of(grad_output, nj, plane) * plane_of(output, nj, plane) / plane_of(scale_, nj, plane);
      };
      for (Index j = 0; j < std::min(half, s.c); ++j) compute_ratio(j);
      for (Index c = 0; c < s.c; ++c) {
        if (c + half < s.c) compute_ratio(c + half);
        const Index nc = n * s.c + c;
        const Index lo = std::max<Index>(0, c - half), hi = std::min<Index>(s.c - 1, c + half);
        ArrayMap dx(grad_input.data() + nc * plane, plane);
        dx = ratio(lo);
        for (Index j = lo + 1; j <= hi; ++j) dx += ratio(j);
        with_inverse_power(plane_of(scale_, nc, plane), [&](const auto& p) {
          dx = plane_of(grad_output, nc, plane) * p - factor * plane_of(input, nc, plane) * dx;
        });
      }
    });
  }

 private:
  using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

  static ConstArrayMap plane_of(const Tensor<T>& t, Index index, Index plane) {
    return ConstArrayMap(t.data() + index * plane, plane);
  }

  // scale = k + alpha' * sum of the squares of the window around plane nc (= n * C + c).
  void compute_scale(const Tensor<T>& input, Index nc, ArrayMap& scale) const {
    const Shape s = shape_of(input);
    const Index half = options_.size() / 2, plane = s.plane(), n = nc / s.c, c = nc % s.c;
    const Index lo = std::max<Index>(0, c - half), hi = std::min<Index>(s.c - 1, c + half);
    const T alpha = static_cast<T>(options_.effective_alpha()), k = static_cast<T>(options_.k());
    scale = plane_of(input, n * s.c + lo, plane).square();
    for (Index j = lo + 1; j <= hi; ++j) scale += plane_of(input, n * s.c + j, plane).square();
    scale = k + alpha * scale;
  }

  // `count` planes a thread (grow-only: steady-state steps do not allocate).
  void prepare_planes(Index count, Index plane) {
    if (planes_.size() < static_cast<std::size_t>(num_threads())) planes_.resize(static_cast<std::size_t>(num_threads()));
    for (auto& p : planes_) {
      if (static_cast<Index>(p.size()) < count * plane) p.resize(static_cast<std::size_t>(count * plane));
    }
  }

  // Calls use(p) with p = scale^-beta as an array expression, so Eigen
  // vectorises it (std::sqrt and std::pow in a loop stay scalar under
  // -fmath-errno). beta = 0.75, the paper's, avoids pow: s^-3/4 = 1 / (sqrt(s) * sqrt(sqrt(s))).
  template <class Scale, class Use>
  void with_inverse_power(const Scale& scale, const Use& use) const {
    if (options_.beta() == 0.75) {
      use((scale.sqrt() * scale.sqrt().sqrt()).inverse());
    } else {
      // Any other beta: std::pow, element by element (Eigen's vectorised pow
      // trips a false -Wuninitialized in GCC 12's AVX-512 headers).
      const T beta = static_cast<T>(options_.beta());
      use(scale.unaryExpr([beta](T x) { return std::pow(x, -beta); }));
    }
  }

  LocalResponseNormOptions options_;
  Tensor<T> scale_;                   // k + alpha' * sum of squares, kept in training for backward
  bool scale_kept_ = false;           // whether scale_ belongs to the last forward
  std::vector<std::vector<T>> planes_;  // per thread: a ring of ratios, or a scale plane in evaluation
};

}  // namespace convnet
