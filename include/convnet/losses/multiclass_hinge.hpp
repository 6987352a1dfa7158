// MultiClassHinge: the multi-class (class-wise) SVM loss of Weston and Watkins,
// and its squared form.
//
// For logits x and true class t of one sample,
//   hinge          L = sum_{j != t} max(0, margin + x_j - x_t)
//   squared hinge  L = sum_{j != t} max(0, margin + x_j - x_t)^2
// averaged over the batch. Every wrong class that comes within `margin` of the
// true one is pushed down, the true one up. (PyTorch's MultiMarginLoss is the
// same sum divided by the number of classes; Keras's categorical_hinge keeps
// only the largest wrong class. The sum gives every violating class a
// gradient, which is why it is the one used here.)
//
// The gradient with respect to x_j (j != t) is s_j / N with s_j = 1 (hinge)
// or 2 max(0, margin + x_j - x_t) (squared) when the term is positive, and the
// true class gets minus the sum of those. Logits of any size stay finite: the
// loss grows linearly (or quadratically) with them, never exponentially.
#pragma once

#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"

namespace convnet {

struct HingeOptions {
  HingeOptions& margin(double v) { margin_ = v; return *this; }
  HingeOptions& squared(bool v) { squared_ = v; return *this; }
  double margin() const { return margin_; }
  bool squared() const { return squared_; }

 private:
  double margin_ = 1.0;
  bool squared_ = false;
};

template <class T>
class MultiClassHinge : public Loss<T> {
 public:
  explicit MultiClassHinge(HingeOptions options = {}) : options_(options) {
    detail::require_option(options.margin() >= 0, "MultiClassHinge", "margin", ">= 0", options.margin());
  }
  std::string type_name() const override { return options_.squared() ? "squared-hinge" : "hinge"; }
  std::string describe() const override { return detail::concat(type_name(), "(margin=", options_.margin(), ")"); }

  T forward(const Tensor<T>& logits, const std::vector<int>& labels) override {
    const Shape s = detail::check_loss_input("MultiClassHinge", LossInput::Logits, logits, labels);
    resize(grad_, s);
    const T margin = static_cast<T>(options_.margin());
    const T inv_n = T(1) / static_cast<T>(s.n);
    double total = 0;
    for (Index n = 0; n < s.n; ++n) {
      const T* x = logits.data() + n * s.c;
      T* g = grad_.data() + n * s.c;
      const Index t = labels[static_cast<std::size_t>(n)];
      T true_grad = 0;
      for (Index j = 0; j < s.c; ++j) {
        g[j] = 0;
        if (j == t) continue;
        const T violation = margin + x[j] - x[t];
        if (violation <= 0) continue;
        total += options_.squared() ? static_cast<double>(violation) * violation : static_cast<double>(violation);
        g[j] = (options_.squared() ? 2 * violation : T(1)) * inv_n;
        true_grad -= g[j];
      }
      g[t] = true_grad;
    }
    ready_ = true;
    return static_cast<T>(total / static_cast<double>(s.n));
  }

  const Tensor<T>& backward() override {
    if (!ready_) throw StateError("MultiClassHinge: backward called before forward");
    return grad_;
  }

 private:
  HingeOptions options_;
  Tensor<T> grad_;  // computed with the loss: it costs nothing extra there
  bool ready_ = false;
};

}  // namespace convnet
