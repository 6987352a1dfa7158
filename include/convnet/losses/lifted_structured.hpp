// LiftedStructuredLoss: Song, Xiang, Jegelka and Savarese 2016, "Deep Metric
// Learning via Lifted Structured Feature Embedding" - the study's "lifted
// structured (softmax similarity)" row.
//
// Every positive pair (i, j), i < j, of the batch is set against every
// negative of either: with D Euclidean distances of the embeddings,
//   J(i, j) = log( sum over k of another class than i of e^{alpha - D(i, k)}
//                + sum over l of another class than j of e^{alpha - D(j, l)} ) + D(i, j)
//   loss = 1 / (2 |P|) sum over positive pairs of max(0, J(i, j))^2
// (the paper's smooth upper bound of the hardest negative), alpha = 1 as in
// the paper. The log-sum-exp is taken about its largest term, so it never
// overflows. A pair with no negative in the batch adds nothing; no positive
// pair: 0.
//
// Input: the embedding [N, D, 1, 1]; labels are class indices >= 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"
#include "pair_distances.hpp"

namespace convnet {

struct LiftedStructuredOptions {
  LiftedStructuredOptions& alpha(double v) { alpha_ = v; return *this; }
  double alpha() const { return alpha_; }

 private:
  double alpha_ = 1.0;
};

template <class T>
class LiftedStructuredLoss : public detail::PairLoss<T> {
 public:
  explicit LiftedStructuredLoss(LiftedStructuredOptions options = {})
      : detail::PairLoss<T>("LiftedStructuredLoss"), options_(options) {
    detail::require_option(options.alpha() > 0, "LiftedStructuredLoss", "alpha", "> 0", options.alpha());
  }
  std::string type_name() const override { return "lifted"; }
  std::string describe() const override { return detail::concat("lifted(alpha=", options_.alpha(), ")"); }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = this->start(embedding, labels);
    detail::PairDistances<T>& distances = this->distances_;
    const Index n = s.n;
    const auto label = [&](Index i) { return labels[static_cast<std::size_t>(i)]; };
    Index positives = 0;
    for (Index i = 0; i < n; ++i)
      for (Index j = i + 1; j < n; ++j) positives += label(i) == label(j) ? 1 : 0;
    if (positives == 0) return 0;
    const T alpha = static_cast<T>(options_.alpha()), inv_pairs = T(1) / static_cast<T>(positives);
    weights_.resize(static_cast<std::size_t>(2 * n));
    double total = 0;
    for (Index i = 0; i < n; ++i) {
      for (Index j = i + 1; j < n; ++j) {
        if (label(i) != label(j)) continue;
        // The exponents alpha - D of both anchors' negatives, their largest, and the sum about it.
        T largest = -std::numeric_limits<T>::infinity();
        for (Index side = 0; side < 2; ++side) {
          const Index from = side ? j : i;
          for (Index k = 0; k < n; ++k) {
            if (label(k) != label(from)) largest = std::max(largest, alpha - distances(from, k));
          }
        }
        if (!std::isfinite(largest)) continue;  // no negative in the batch
        T sum = 0;
        for (Index side = 0; side < 2; ++side) {
          const Index from = side ? j : i;
          for (Index k = 0; k < n; ++k) {
            T& w = weights_[static_cast<std::size_t>(side * n + k)];
            w = label(k) != label(from) ? std::exp(alpha - distances(from, k) - largest) : T(0);
            sum += w;
          }
        }
        const T J = largest + std::log(sum) + distances(i, j);
        if (J <= 0) continue;
        total += 0.5 * static_cast<double>(J) * static_cast<double>(J);
        const T g = J * inv_pairs;  // d loss / d J
        distances.add_gradient(i, j, g);
        for (Index side = 0; side < 2; ++side) {
          const Index from = side ? j : i;
          for (Index k = 0; k < n; ++k) {
            const T w = weights_[static_cast<std::size_t>(side * n + k)];
            if (w > 0) distances.add_gradient(from, k, -g * w / sum);
          }
        }
      }
    }
    distances.write_gradient(this->grad_);
    return static_cast<T>(total / static_cast<double>(positives));
  }

 private:
  LiftedStructuredOptions options_;
  std::vector<T> weights_;
};

}  // namespace convnet
