// LmnnLoss: large margin nearest neighbour (Weinberger and Saul, JMLR 2009)
// on a batch - the study's "large margin nearest neighbour" row.
//
// Within the batch, every other sample of an anchor's class is a target
// neighbour and every sample of another class an impostor. With d2 the squared
// Euclidean distance of two embeddings (pair_distances.hpp),
//   pull = mean over ordered target pairs (i, j)         of d2(i, j)
//   push = mean over triplets (i, j target, l impostor)  of max(0, margin + d2(i, j) - d2(i, l))
//   loss = (1 - mu) pull + mu push
// with the paper's mu = 0.5 and margin 1 by default. (The paper's target
// neighbours are the k nearest of the class in the whole training set; a batch
// stands for that neighbourhood here.) With targets(k), an anchor's targets
// are only the k nearest of its class in the batch, by the current distance
// (ties to the lower index), as the paper's k = 3: pulling every same-class
// pair draws the whole embedding towards one point while an untrained
// network's positive and negative distances are alike (the loss at that
// point, mu * margin, is lower than at the start), and on relu7 it got there.
// No target or no impostor: that term is 0.
//
// Input: the embedding [N, D, 1, 1]; labels are class indices >= 0.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"
#include "pair_distances.hpp"

namespace convnet {

struct LmnnOptions {
  LmnnOptions& margin(double v) { margin_ = v; return *this; }
  LmnnOptions& mu(double v) { mu_ = v; return *this; }
  /// Target neighbours per anchor: the k nearest of its class; 0 (the default) for every one.
  LmnnOptions& targets(Index k) { targets_ = k; return *this; }
  double margin() const { return margin_; }
  double mu() const { return mu_; }
  Index targets() const { return targets_; }

 private:
  double margin_ = 1.0, mu_ = 0.5;
  Index targets_ = 0;
};

template <class T>
class LmnnLoss : public detail::PairLoss<T> {
 public:
  explicit LmnnLoss(LmnnOptions options = {}) : detail::PairLoss<T>("LmnnLoss"), options_(options) {
    detail::require_option(options.margin() > 0, "LmnnLoss", "margin", "> 0", options.margin());
    detail::require_option(options.mu() >= 0 && options.mu() <= 1, "LmnnLoss", "mu", "in [0, 1]", options.mu());
    detail::require_option(options.targets() >= 0, "LmnnLoss", "targets", ">= 0", options.targets());
  }
  std::string type_name() const override { return "lmnn"; }
  std::string describe() const override {
    return detail::concat("lmnn(margin=", options_.margin(), ",mu=", options_.mu(),
                          options_.targets() ? detail::concat(",targets=", options_.targets()) : std::string(), ")");
  }

  /// The target pairs (anchor, target) of the last forward().
  const std::vector<std::pair<Index, Index>>& target_pairs() const { return pairs_; }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = this->start(embedding, labels);
    detail::PairDistances<T>& distances = this->distances_;
    const Index n = s.n;
    const auto same = [&](Index a, Index b) { return labels[static_cast<std::size_t>(a)] == labels[static_cast<std::size_t>(b)]; };
    choose_targets(labels, n);
    Index triplets = 0;
    for (const auto& pair : pairs_) {
      for (Index l = 0; l < n; ++l) triplets += same(pair.first, l) ? 0 : 1;
    }
    const Index targets = static_cast<Index>(pairs_.size());
    const T mu = static_cast<T>(options_.mu()), margin = static_cast<T>(options_.margin());
    const T pull_scale = targets ? (1 - mu) / static_cast<T>(targets) : T(0);
    const T push_scale = triplets ? mu / static_cast<T>(triplets) : T(0);
    double pull = 0, push = 0;
    for (const auto& [i, j] : pairs_) {
      const T dij = square(distances(i, j));
      pull += static_cast<double>(dij);
      distances.add_squared_gradient(i, j, pull_scale);
      for (Index l = 0; l < n; ++l) {
        if (same(i, l)) continue;
        const T value = margin + dij - square(distances(i, l));
        if (value <= 0) continue;
        push += static_cast<double>(value);
        distances.add_squared_gradient(i, j, push_scale);
        distances.add_squared_gradient(i, l, -push_scale);
      }
    }
    distances.write_gradient(this->grad_);
    const double mu_d = options_.mu();
    return static_cast<T>((targets ? (1 - mu_d) * pull / static_cast<double>(targets) : 0.0) +
                          (triplets ? mu_d * push / static_cast<double>(triplets) : 0.0));
  }

 private:
  static T square(T v) { return v * v; }

  /// Fills pairs_ with every (anchor, target): each other sample of the anchor's class, or its
  /// targets() nearest. Both lists are reserved for the batch, so a warm step allocates nothing.
  void choose_targets(const std::vector<int>& labels, Index n) {
    const detail::PairDistances<T>& d = this->distances_;
    pairs_.clear();
    pairs_.reserve(static_cast<std::size_t>(n * n));
    candidates_.reserve(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) {
      candidates_.clear();
      for (Index j = 0; j < n; ++j) {
        if (j != i && labels[static_cast<std::size_t>(j)] == labels[static_cast<std::size_t>(i)]) candidates_.push_back(j);
      }
      const Index k = options_.targets();
      if (k > 0 && k < static_cast<Index>(candidates_.size())) {
        std::partial_sort(candidates_.begin(), candidates_.begin() + k, candidates_.end(), [&](Index a, Index b) {
          return d(i, a) < d(i, b) || (d(i, a) == d(i, b) && a < b);
        });
        candidates_.resize(static_cast<std::size_t>(k));
      }
      for (Index j : candidates_) pairs_.emplace_back(i, j);
    }
  }

  LmnnOptions options_;
  std::vector<std::pair<Index, Index>> pairs_;
  std::vector<Index> candidates_;
};

}  // namespace convnet
