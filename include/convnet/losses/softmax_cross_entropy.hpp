// SoftmaxCrossEntropy: the mean over the batch of -log softmax(logits)[label].
//
// Computed through log-softmax, log p_c = x_c - m - log sum_j exp(x_j - m) with
// m = max_j x_j, so it stays finite for logits of any size (+-1e4 included)
// where softmax followed by log would give log(0). Its gradient with respect
// to the logits is (softmax(x) - onehot(label)) / N.
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

template <class T>
class SoftmaxCrossEntropy : public Loss<T> {
 public:
  std::string type_name() const override { return "cross-entropy"; }

  /// The mean loss; remembers the probabilities for backward().
  T forward(const Tensor<T>& logits, const std::vector<int>& labels) override {
    const Shape s = detail::check_loss_input("SoftmaxCrossEntropy", LossInput::Logits, logits, labels);
    resize(probabilities_, s);
    labels_ = labels;
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
      total -= static_cast<double>(x[labels[n]] - max_value - log_sum);
    }
    return static_cast<T>(total / static_cast<double>(s.n));
  }

  /// d(mean loss)/d(logits) for the last forward.
  const Tensor<T>& backward() override {
    if (labels_.empty()) throw std::logic_error("SoftmaxCrossEntropy: backward called before forward");
    const Shape s = shape_of(probabilities_);
    resize(grad_, s);
    const T inv_n = T(1) / static_cast<T>(s.n);
    flat(grad_) = flat(probabilities_) * inv_n;
    for (Index n = 0; n < s.n; ++n) grad_.data()[n * s.c + labels_[n]] -= inv_n;
    return grad_;
  }

  /// softmax(logits) of the last forward, [N, classes, 1, 1].
  const Tensor<T>& probabilities() const { return probabilities_; }

 private:
  Tensor<T> probabilities_, grad_;
  std::vector<int> labels_;
};

}  // namespace convnet
