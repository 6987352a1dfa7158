// TripletLoss: the triplet loss on an embedding, max(0, margin + d(a, p) - d(a, n))
// for an anchor a, a positive p of its class and a negative n of another, with
// the triplets mined inside the batch in one of two ways:
//
//   batch-hard (the default; Hermans, Beyer and Leibe 2017, "In Defense of the
//     Triplet Loss for Person Re-Identification"): one triplet per anchor, its
//       hardest positive  p = argmax over b != a with label b == label a of d(a, b)
//       hardest negative  n = argmin over b with label b != label a of d(a, b)
//     and the loss is the mean over the anchors that have both.
//   semi-hard (Schroff, Kalenichenko and Philbin 2015, "FaceNet", the study's
//     triplet row): one triplet per positive pair (a, p), p != a, with the
//     closest negative that is still farther from a than p is,
//       n = argmin over b of another class with d(a, b) > d(a, p) of d(a, b),
//     or, where every negative is closer than p, the farthest negative (hard
//     negatives picked early in training collapse the embedding, the paper
//     says; TensorFlow's triplet_semihard_loss falls back the same way). The loss
//     is the mean over the positive pairs that have a negative.
// Zero when no anchor has a triplet. Ties go to the lowest index.
//
// d is the Euclidean distance of pair_distances.hpp, sqrt(||e_a - e_b||^2 + eps);
// with squared(true) it is its square, as FaceNet has it (margin 0.2 there, on
// L2-normalised embeddings: triplet(semi_hard=1,squared=1,margin=0.2,normalize=1)).
//
// Input: the embedding [N, D, 1, 1] (in AlexNet, fc7 after its ReLU); labels
// are class indices >= 0.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"
#include "pair_distances.hpp"

namespace convnet {

enum class TripletMining { BatchHard, SemiHard };

struct TripletOptions {
  TripletOptions& margin(double v) { margin_ = v; return *this; }
  TripletOptions& mining(TripletMining v) { mining_ = v; return *this; }
  TripletOptions& squared(bool v) { squared_ = v; return *this; }
  double margin() const { return margin_; }
  TripletMining mining() const { return mining_; }
  bool squared() const { return squared_; }

 private:
  double margin_ = 1.0;
  TripletMining mining_ = TripletMining::BatchHard;
  bool squared_ = false;
};

/// One triplet as mining chose it: indices into the batch.
struct MinedTriplet {
  int anchor, positive, negative;
};

template <class T>
class TripletLoss : public detail::PairLoss<T> {
 public:
  explicit TripletLoss(TripletOptions options = {}) : detail::PairLoss<T>("TripletLoss"), options_(options) {
    detail::require_option(options.margin() >= 0, "TripletLoss", "margin", ">= 0", options.margin());
  }
  std::string type_name() const override { return "triplet"; }
  std::string describe() const override {
    return detail::concat("triplet(margin=", options_.margin(),
                          options_.mining() == TripletMining::SemiHard ? ",semi_hard=1" : "",
                          options_.squared() ? ",squared=1" : "", ")");
  }

  /// The triplets mining chose in the last forward, in anchor order.
  const std::vector<MinedTriplet>& mined() const { return triplets_; }
  /// Batch-hard mining's choice for anchor a in the last forward (-1: none, or semi-hard mining).
  int hardest_positive(Index a) const { return positive_.at(static_cast<std::size_t>(a)); }
  int hardest_negative(Index a) const { return negative_.at(static_cast<std::size_t>(a)); }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Index n = this->start(embedding, labels).n;
    positive_.assign(static_cast<std::size_t>(n), -1);
    negative_.assign(static_cast<std::size_t>(n), -1);
    triplets_.clear();
    triplets_.reserve(static_cast<std::size_t>(n * n));  // at most one per positive pair: no allocation once warm
    if (options_.mining() == TripletMining::SemiHard) {
      mine_semi_hard(labels, n);
    } else {
      mine_batch_hard(labels, n);
    }
    if (triplets_.empty()) return 0;
    detail::PairDistances<T>& distances = this->distances_;
    const T margin = static_cast<T>(options_.margin());
    const T scale = T(1) / static_cast<T>(triplets_.size());
    double total = 0;
    for (const MinedTriplet& t : triplets_) {
      const T value = margin + distance(t.anchor, t.positive) - distance(t.anchor, t.negative);
      if (value <= 0) continue;
      total += static_cast<double>(value);
      if (options_.squared()) {
        distances.add_squared_gradient(t.anchor, t.positive, scale);
        distances.add_squared_gradient(t.anchor, t.negative, -scale);
      } else {
        distances.add_gradient(t.anchor, t.positive, scale);
        distances.add_gradient(t.anchor, t.negative, -scale);
      }
    }
    distances.write_gradient(this->grad_);
    return static_cast<T>(total / static_cast<double>(triplets_.size()));
  }

 private:
  /// The distance the loss is on. Mining compares the Euclidean one: squaring keeps its order.
  T distance(Index a, Index b) const {
    const T d = this->distances_(a, b);
    return options_.squared() ? d * d : d;
  }

  void mine_batch_hard(const std::vector<int>& labels, Index n) {
    const detail::PairDistances<T>& d = this->distances_;
    for (Index a = 0; a < n; ++a) {
      int p = -1, q = -1;
      for (Index b = 0; b < n; ++b) {
        if (labels[static_cast<std::size_t>(b)] == labels[static_cast<std::size_t>(a)]) {
          if (b != a && (p < 0 || d(a, b) > d(a, p))) p = static_cast<int>(b);
        } else if (q < 0 || d(a, b) < d(a, q)) {
          q = static_cast<int>(b);
        }
      }
      positive_[static_cast<std::size_t>(a)] = p;
      negative_[static_cast<std::size_t>(a)] = q;
      if (p >= 0 && q >= 0) triplets_.push_back({static_cast<int>(a), p, q});
    }
  }

  void mine_semi_hard(const std::vector<int>& labels, Index n) {
    const detail::PairDistances<T>& d = this->distances_;
    for (Index a = 0; a < n; ++a) {
      const int label = labels[static_cast<std::size_t>(a)];
      for (Index p = 0; p < n; ++p) {
        if (p == a || labels[static_cast<std::size_t>(p)] != label) continue;
        int beyond = -1, farthest = -1;  // the closest negative beyond d(a, p); the farthest of all
        for (Index b = 0; b < n; ++b) {
          if (labels[static_cast<std::size_t>(b)] == label) continue;
          if (d(a, b) > d(a, p) && (beyond < 0 || d(a, b) < d(a, beyond))) beyond = static_cast<int>(b);
          if (farthest < 0 || d(a, b) > d(a, farthest)) farthest = static_cast<int>(b);
        }
        if (farthest < 0) continue;  // no negative in the batch
        triplets_.push_back({static_cast<int>(a), static_cast<int>(p), beyond >= 0 ? beyond : farthest});
      }
    }
  }

  TripletOptions options_;
  std::vector<int> positive_, negative_;
  std::vector<MinedTriplet> triplets_;
};

}  // namespace convnet
