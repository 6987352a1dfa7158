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
// stands for that neighbourhood here.) No target or no impostor: that term is 0.
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

struct LmnnOptions {
  LmnnOptions& margin(double v) { margin_ = v; return *this; }
  LmnnOptions& mu(double v) { mu_ = v; return *this; }
  double margin() const { return margin_; }
  double mu() const { return mu_; }

 private:
  double margin_ = 1.0, mu_ = 0.5;
};

template <class T>
class LmnnLoss : public detail::PairLoss<T> {
 public:
  explicit LmnnLoss(LmnnOptions options = {}) : detail::PairLoss<T>("LmnnLoss"), options_(options) {
    detail::require_option(options.margin() > 0, "LmnnLoss", "margin", "> 0", options.margin());
    detail::require_option(options.mu() >= 0 && options.mu() <= 1, "LmnnLoss", "mu", "in [0, 1]", options.mu());
  }
  std::string type_name() const override { return "lmnn"; }
  std::string describe() const override {
    return detail::concat("lmnn(margin=", options_.margin(), ",mu=", options_.mu(), ")");
  }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = this->start(embedding, labels);
    detail::PairDistances<T>& distances = this->distances_;
    const Index n = s.n;
    const auto same = [&](Index a, Index b) { return labels[static_cast<std::size_t>(a)] == labels[static_cast<std::size_t>(b)]; };
    Index targets = 0, triplets = 0;
    for (Index i = 0; i < n; ++i) {
      Index own = 0, others = 0;
      for (Index j = 0; j < n; ++j) (same(i, j) ? own : others) += j == i ? 0 : 1;
      targets += own;
      triplets += own * others;
    }
    const T mu = static_cast<T>(options_.mu()), margin = static_cast<T>(options_.margin());
    const T pull_scale = targets ? (1 - mu) / static_cast<T>(targets) : T(0);
    const T push_scale = triplets ? mu / static_cast<T>(triplets) : T(0);
    double pull = 0, push = 0;
    for (Index i = 0; i < n; ++i) {
      for (Index j = 0; j < n; ++j) {
        if (j == i || !same(i, j)) continue;
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
    }
    distances.write_gradient(this->grad_);
    const double mu_d = options_.mu();
    return static_cast<T>((targets ? (1 - mu_d) * pull / static_cast<double>(targets) : 0.0) +
                          (triplets ? mu_d * push / static_cast<double>(triplets) : 0.0));
  }

 private:
  static T square(T v) { return v * v; }
  LmnnOptions options_;
};

}  // namespace convnet
