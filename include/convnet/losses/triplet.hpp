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
// d is the Euclidean distance sqrt(||e_a - e_b||^2 + eps), eps = 1e-12, so the
// gradient (e_a - e_b) / d stays finite when two embeddings coincide; with
// squared(true) it is ||e_a - e_b||^2, as FaceNet has it (margin 0.2 there, on
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
#include "../threading.hpp"
#include "loss.hpp"

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
class TripletLoss : public Loss<T> {
 public:
  explicit TripletLoss(TripletOptions options = {}) : options_(options) {
    detail::require_option(options.margin() >= 0, "TripletLoss", "margin", ">= 0", options.margin());
  }
  std::string type_name() const override { return "triplet"; }
  std::string describe() const override {
    return detail::concat("triplet(margin=", options_.margin(),
                          options_.mining() == TripletMining::SemiHard ? ",semi_hard=1" : "",
                          options_.squared() ? ",squared=1" : "", ")");
  }
  LossInput input() const override { return LossInput::Embedding; }

  /// The triplets mining chose in the last forward, in anchor order.
  const std::vector<MinedTriplet>& mined() const { return triplets_; }
  /// Batch-hard mining's choice for anchor a in the last forward (-1: none, or semi-hard mining).
  int hardest_positive(Index a) const { return positive_.at(static_cast<std::size_t>(a)); }
  int hardest_negative(Index a) const { return negative_.at(static_cast<std::size_t>(a)); }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = detail::check_loss_input("TripletLoss", LossInput::Embedding, embedding, labels);
    const Index n = s.n, dim = s.c;
    const T* e = embedding.data();
    compute_distances(e, n, dim);
    positive_.assign(static_cast<std::size_t>(n), -1);
    negative_.assign(static_cast<std::size_t>(n), -1);
    triplets_.clear();
    triplets_.reserve(static_cast<std::size_t>(n * n));  // at most one per positive pair: no allocation once warm
    if (options_.mining() == TripletMining::SemiHard) {
      mine_semi_hard(labels, n);
    } else {
      mine_batch_hard(labels, n);
    }
    resize(grad_, s);
    flat(grad_).setZero();
    ready_ = true;
    if (triplets_.empty()) return 0;
    const T margin = static_cast<T>(options_.margin());
    const T inv_count = T(1) / static_cast<T>(triplets_.size());
    double total = 0;
    for (const MinedTriplet& t : triplets_) {
      const T dp = distance(t.anchor, t.positive, n), dn = distance(t.anchor, t.negative, n);
      const T value = margin + dp - dn;
      if (value <= 0) continue;
      total += static_cast<double>(value);
      // Euclidean: d dp / d e_a = (e_a - e_p) / dp; squared: 2 (e_a - e_p). Likewise for dn.
      const T sp = inv_count * (options_.squared() ? T(2) : T(1) / dp);
      const T sn = inv_count * (options_.squared() ? T(2) : T(1) / dn);
      T* ga = grad_.data() + t.anchor * dim;
      T* gp = grad_.data() + t.positive * dim;
      T* gn = grad_.data() + t.negative * dim;
      const T* ea = e + t.anchor * dim;
      const T* ep = e + t.positive * dim;
      const T* en = e + t.negative * dim;
      for (Index k = 0; k < dim; ++k) {
        const T up = (ea[k] - ep[k]) * sp, un = (ea[k] - en[k]) * sn;
        ga[k] += up - un;
        gp[k] -= up;
        gn[k] += un;
      }
    }
    return static_cast<T>(total / static_cast<double>(triplets_.size()));
  }

  const Tensor<T>& backward() override {
    if (!ready_) throw std::logic_error("TripletLoss: backward called before forward");
    return grad_;
  }

 private:
  T distance(Index a, Index b, Index n) const { return distances_[static_cast<std::size_t>(a * n + b)]; }

  // Pairwise distances, computed directly (not through ||a||^2 + ||b||^2 - 2ab,
  // which cancels badly in float for nearby points).
  void compute_distances(const T* e, Index n, Index dim) {
    distances_.resize(static_cast<std::size_t>(n * n));
    const bool squared = options_.squared();
    detail::parallel_for(n, n * n * dim > 65536, [&](Index a, int) {
      for (Index b = 0; b < n; ++b) {
        T sum = 0;
        const T* x = e + a * dim;
        const T* y = e + b * dim;
        for (Index k = 0; k < dim; ++k) sum += (x[k] - y[k]) * (x[k] - y[k]);
        distances_[static_cast<std::size_t>(a * n + b)] = squared ? sum : std::sqrt(sum + static_cast<T>(1e-12));
      }
    });
  }

  void mine_batch_hard(const std::vector<int>& labels, Index n) {
    for (Index a = 0; a < n; ++a) {
      int p = -1, q = -1;
      for (Index b = 0; b < n; ++b) {
        const T d = distance(a, b, n);
        if (labels[static_cast<std::size_t>(b)] == labels[static_cast<std::size_t>(a)]) {
          if (b != a && (p < 0 || d > distance(a, p, n))) p = static_cast<int>(b);
        } else if (q < 0 || d < distance(a, q, n)) {
          q = static_cast<int>(b);
        }
      }
      positive_[static_cast<std::size_t>(a)] = p;
      negative_[static_cast<std::size_t>(a)] = q;
      if (p >= 0 && q >= 0) triplets_.push_back({static_cast<int>(a), p, q});
    }
  }

  void mine_semi_hard(const std::vector<int>& labels, Index n) {
    for (Index a = 0; a < n; ++a) {
      const int label = labels[static_cast<std::size_t>(a)];
      for (Index p = 0; p < n; ++p) {
        if (p == a || labels[static_cast<std::size_t>(p)] != label) continue;
        const T dp = distance(a, p, n);
        int beyond = -1, farthest = -1;  // the closest negative beyond dp; the farthest of all
        for (Index b = 0; b < n; ++b) {
          if (labels[static_cast<std::size_t>(b)] == label) continue;
          const T d = distance(a, b, n);
          if (d > dp && (beyond < 0 || d < distance(a, beyond, n))) beyond = static_cast<int>(b);
          if (farthest < 0 || d > distance(a, farthest, n)) farthest = static_cast<int>(b);
        }
        if (farthest < 0) continue;  // no negative in the batch
        triplets_.push_back({static_cast<int>(a), static_cast<int>(p), beyond >= 0 ? beyond : farthest});
      }
    }
  }

  TripletOptions options_;
  std::vector<T> distances_;
  std::vector<int> positive_, negative_;
  std::vector<MinedTriplet> triplets_;
  Tensor<T> grad_;
  bool ready_ = false;
};

}  // namespace convnet
