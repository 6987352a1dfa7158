// SoftmaxCrossEntropy: the mean over the batch of -log softmax(logits)[label].
//
// Computed through log-softmax, log p_c = x_c - m - log sum_j exp(x_j - m) with
// m = max_j x_j, so it stays finite for logits of any size (+-1e4 included)
// where softmax followed by log would give log(0). Its gradient with respect
// to the logits is (softmax(x) - onehot(label)) / N.
//
// Label smoothing (Szegedy et al. 2016, as PyTorch's label_smoothing = e): the
// target is (1 - e) onehot(label) + e / classes, so the loss is
// (1 - e) (-log p_label) + e mean_c(-log p_c) and the gradient (softmax(x) -
// target) / N. It keeps the logits from growing without bound on pictures the
// network already gets right.
//
// Shapes: logits [N, classes, 1, 1]; labels N integers in [0, classes).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"

namespace convnet {

struct CrossEntropyOptions {
  CrossEntropyOptions& label_smoothing(double v) { label_smoothing_ = v; return *this; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  double label_smoothing_ = 0;
};

template <class T>
class SoftmaxCrossEntropy : public Loss<T> {
 public:
  explicit SoftmaxCrossEntropy(CrossEntropyOptions options = {}) : options_(options) {
    detail::require_option(options.label_smoothing() >= 0 && options.label_smoothing() < 1, "SoftmaxCrossEntropy",
                           "label_smoothing", "in [0, 1)", options.label_smoothing());
  }
  std::string type_name() const override { return "cross-entropy"; }
  std::string describe() const override {
    if (options_.label_smoothing() == 0) return type_name();
    return detail::concat("cross-entropy(label_smoothing=", options_.label_smoothing(), ")");
  }
  const CrossEntropyOptions& options() const { return options_; }

  /// The mean loss; remembers the probabilities for backward().
  T forward(const Tensor<T>& logits, const std::vector<int>& labels) override {
    const Shape s = detail::check_loss_input("SoftmaxCrossEntropy", LossInput::Logits, logits, labels);
    resize(probabilities_, s);
    labels_ = labels;
    const double smoothing = options_.label_smoothing();
    double total = 0;
    for (Index n = 0; n < s.n; ++n) {
      const T* x = logits.data() + n * s.c;
      T* p = probabilities_.data() + n * s.c;
      T max_value = x[0];
      for (Index c = 1; c < s.c; ++c) max_value = std::max(max_value, x[c]);
      T sum = 0;
      for (Index c = 0; c < s.c; ++c) sum += (p[c] = std::exp(x[c] - max_value));
      const T log_sum = std::log(sum);
      for (Index c = 0; c < s.c; ++c) p[c] /= sum;
      total -= (1 - smoothing) * static_cast<double>(x[labels[n]] - max_value - log_sum);
      if (smoothing > 0) {
        double log_p = 0;  // sum over classes of log p_c
        for (Index c = 0; c < s.c; ++c) log_p += static_cast<double>(x[c] - max_value - log_sum);
        total -= smoothing * log_p / static_cast<double>(s.c);
      }
    }
    return static_cast<T>(total / static_cast<double>(s.n));
  }

  /// d(mean loss)/d(logits) for the last forward.
  const Tensor<T>& backward() override {
    if (labels_.empty()) throw StateError("SoftmaxCrossEntropy: backward called before forward");
    const Shape s = shape_of(probabilities_);
    resize(grad_, s);
    const T inv_n = T(1) / static_cast<T>(s.n);
    const T smoothing = static_cast<T>(options_.label_smoothing());
    flat(grad_) = (flat(probabilities_).array() - smoothing / static_cast<T>(s.c)) * inv_n;
    for (Index n = 0; n < s.n; ++n) grad_.data()[n * s.c + labels_[n]] -= (1 - smoothing) * inv_n;
    return grad_;
  }

  /// softmax(logits) of the last forward, [N, classes, 1, 1].
  const Tensor<T>& probabilities() const { return probabilities_; }

 private:
  CrossEntropyOptions options_;
  Tensor<T> probabilities_, grad_;
  std::vector<int> labels_;
};

}  // namespace convnet
