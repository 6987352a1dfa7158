// PairHingeLoss: the hinge on pairs of embeddings - our reading of the study's
// "pairwise hinge" row. The name is ambiguous (Keras's one-vs-rest `hinge` on
// the logits is the other candidate); we take the pair loss because the row
// sits among the study's pair losses and scores below them, as an unsquared,
// unnormalised pair loss does: every pair (a, b), a < b, of the batch, with d
// the Euclidean distance of their embeddings (pair_distances.hpp),
//   same class        d                      (pulled together, linearly)
//   different class   max(0, margin - d)     (pushed apart to the margin)
// and the loss is the mean over all pairs; margin 1 by default. It is the
// contrastive loss (contrastive.hpp) without its squares.
//
// Input: the embedding [N, D, 1, 1]; labels are class indices >= 0.
#pragma once

#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"
#include "pair_distances.hpp"

namespace convnet {

struct PairHingeOptions {
  PairHingeOptions& margin(double v) { margin_ = v; return *this; }
  double margin() const { return margin_; }

 private:
  double margin_ = 1.0;
};

template <class T>
class PairHingeLoss : public Loss<T> {
 public:
  explicit PairHingeLoss(PairHingeOptions options = {}) : options_(options) {
    detail::require_option(options.margin() > 0, "PairHingeLoss", "margin", "> 0", options.margin());
  }
  std::string type_name() const override { return "pair-hinge"; }
  std::string describe() const override { return detail::concat("pair-hinge(margin=", options_.margin(), ")"); }
  LossInput input() const override { return LossInput::Embedding; }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = detail::check_loss_input("PairHingeLoss", LossInput::Embedding, embedding, labels);
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
          total += static_cast<double>(d);
          distances_.add_gradient(a, b, inv_pairs, grad_);
        } else if (d < margin) {
          total += static_cast<double>(margin - d);
          distances_.add_gradient(a, b, -inv_pairs, grad_);
        }
      }
    }
    return static_cast<T>(total / static_cast<double>(pairs));
  }

  const Tensor<T>& backward() override {
    if (!ready_) throw std::logic_error("PairHingeLoss: backward called before forward");
    return grad_;
  }

 private:
  PairHingeOptions options_;
  detail::PairDistances<T> distances_;
  Tensor<T> grad_;
  bool ready_ = false;
};

}  // namespace convnet
