// ContrastiveLoss: Hadsell, Chopra and LeCun 2006, "Dimensionality Reduction
// by Learning an Invariant Mapping" - the study's "Hadsell" row.
//
// Every pair (a, b), a < b, of the batch: with d = d(a, b) the Euclidean
// distance of their embeddings (pair_distances.hpp),
//   same class        1/2 d^2                      (pulled together)
//   different class   1/2 max(0, margin - d)^2     (pushed apart to the margin)
// and the loss is the mean over all pairs. margin defaults to 1.
//
// Input: the embedding [N, D, 1, 1] (in AlexNet, fc7 after its ReLU); labels
// are class indices >= 0. A batch of one sample has no pair: the loss is 0.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"
#include "pair_distances.hpp"

namespace convnet {

struct ContrastiveOptions {
  ContrastiveOptions& margin(double v) { margin_ = v; return *this; }
  double margin() const { return margin_; }

 private:
  double margin_ = 1.0;
};

template <class T>
class ContrastiveLoss : public Loss<T> {
 public:
  explicit ContrastiveLoss(ContrastiveOptions options = {}) : options_(options) {
    detail::require_option(options.margin() > 0, "ContrastiveLoss", "margin", "> 0", options.margin());
  }
  std::string type_name() const override { return "contrastive"; }
  std::string describe() const override { return detail::concat("contrastive(margin=", options_.margin(), ")"); }
  LossInput input() const override { return LossInput::Embedding; }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = detail::check_loss_input("ContrastiveLoss", LossInput::Embedding, embedding, labels);
    distances_.compute(embedding);
    resize(grad_, s);
    flat(grad_).setZero();
    ready_ = true;
    const Index n = s.n, pairs = n * (n - 1) / 2;
    if (pairs == 0) return 0;
    const T margin = static_cast<T>(options_.margin()), inv_pairs = T(1) / static_cast<T>(pairs);
    double total = 0;
    for (Index a = 0; a < n; ++a) {
      for (Index b = a + 1; b < n; ++b) {
        const T d = distances_(a, b);
        if (labels[static_cast<std::size_t>(a)] == labels[static_cast<std::size_t>(b)]) {
          total += 0.5 * static_cast<double>(d) * static_cast<double>(d);
          distances_.add_squared_gradient(a, b, T(0.5) * inv_pairs, grad_);  // d(d^2 / 2) = (e_a - e_b)
        } else if (d < margin) {
          total += 0.5 * static_cast<double>(margin - d) * static_cast<double>(margin - d);
          distances_.add_gradient(a, b, -(margin - d) * inv_pairs, grad_);
        }
      }
    }
    return static_cast<T>(total / static_cast<double>(pairs));
  }

  const Tensor<T>& backward() override {
    if (!ready_) throw std::logic_error("ContrastiveLoss: backward called before forward");
    return grad_;
  }

 private:
  ContrastiveOptions options_;
  detail::PairDistances<T> distances_;
  Tensor<T> grad_;
  bool ready_ = false;
};

}  // namespace convnet
