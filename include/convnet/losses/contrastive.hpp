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

namespace detail {
/// A pull on same-class pairs beyond `positive_margin` and a push on the others inside `margin`,
/// over every pair of the batch: squared (the contrastive loss: 1/2 max(0, d - positive_margin)^2
/// and 1/2 max(0, margin - d)^2; positive_margin 0 but for the double margin) or not (the pair hinge).
template <class T, bool Squared>
class PairMarginLoss : public PairLoss<T> {
 public:
  PairMarginLoss(const char* where, double margin, double positive_margin = 0)
      : PairLoss<T>(where), margin_(margin), positive_margin_(positive_margin) {
    detail::require_option(margin > 0, where, "margin", "> 0", margin);
    detail::require_option(positive_margin >= 0 && positive_margin < margin, where, "positive margin",
                           "in [0, margin)", positive_margin);
  }
  double margin() const { return margin_; }
  double positive_margin() const { return positive_margin_; }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = this->start(embedding, labels);
    PairDistances<T>& distances = this->distances_;
    const Index n = s.n, pairs = n * (n - 1) / 2;
    if (pairs == 0) return 0;
    const T margin = static_cast<T>(margin_), inv_pairs = T(1) / static_cast<T>(pairs);
    const T positive_margin = static_cast<T>(positive_margin_);
    double total = 0;
    for (Index a = 0; a < n; ++a) {
      for (Index b = a + 1; b < n; ++b) {
        const T d = distances(a, b);
        const bool same = labels[static_cast<std::size_t>(a)] == labels[static_cast<std::size_t>(b)];
        if (same ? d <= positive_margin : d >= margin) continue;
        const T gap = same ? d - positive_margin : margin - d;  // what the pair's term grows with
        total += Squared ? 0.5 * static_cast<double>(gap) * static_cast<double>(gap) : static_cast<double>(gap);
        if (Squared && same && positive_margin_ == 0) {
          distances.add_squared_gradient(a, b, T(0.5) * inv_pairs);  // d(d^2 / 2) = (e_a - e_b): no division
        } else {
          const T slope = (Squared ? gap : T(1)) * inv_pairs;
          distances.add_gradient(a, b, same ? slope : -slope);
        }
      }
    }
    distances.write_gradient(this->grad_);
    return static_cast<T>(total / static_cast<double>(pairs));
  }

 private:
  double margin_, positive_margin_;
};
}  // namespace detail

template <class T>
class ContrastiveLoss : public detail::PairMarginLoss<T, true> {
 public:
  explicit ContrastiveLoss(ContrastiveOptions options = {})
      : detail::PairMarginLoss<T, true>("ContrastiveLoss", options.margin()) {}
  std::string type_name() const override { return "contrastive"; }
  std::string describe() const override { return detail::concat("contrastive(margin=", this->margin(), ")"); }
};

}  // namespace convnet
