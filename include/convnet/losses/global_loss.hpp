// The global loss (Kumar, Carneiro and Reid 2016, "Learning Local Image
// Descriptors with Deep Siamese and Triplet Convolutional Networks by
// Minimising Global Loss Functions") - the study's "siamese with global" and
// "triplet with global" rows.
//
// Instead of a term per pair, the loss looks at the distributions of the
// positive and the negative distances over the batch: it wants each narrow
// (small variances) and the negatives' mean a margin beyond the positives':
//   J = var+ + var- + lambda * max(0, margin - (mean- - mean+))
// Distances are q(a, b) = ||x_a - x_b||^2 / 4 on L2-normalised embeddings x
// (normalize, on by default), so q = (1 - cos)/2 lies in [0, 1]. The two
// variants differ in what the statistics run over:
//   SiameseGlobalLoss  every pair of the batch once (positive: one class)
//   TripletGlobalLoss  every triplet (a, p, n) of the batch: its q(a, p) joins
//                      the positives and its q(a, n) the negatives, so a pair
//                      counts once per triplet it is part of
// Means and variances are the population ones (divided by the count). The
// paper's best triplet network adds a triplet term to J; write that as a sum,
// triplet-global+triplet. Defaults margin 0.4, lambda 0.8: our reading of the
// paper, which could not be checked here. A batch without a positive or a
// negative pair gives 0.
//
// Input: the embedding [N, D, 1, 1]; labels are class indices >= 0.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"
#include "normalized_embedding.hpp"
#include "pair_distances.hpp"

namespace convnet {

struct GlobalLossOptions {
  GlobalLossOptions& margin(double v) { margin_ = v; return *this; }
  GlobalLossOptions& lambda(double v) { lambda_ = v; return *this; }
  GlobalLossOptions& normalize(bool v) { normalize_ = v; return *this; }
  double margin() const { return margin_; }
  double lambda() const { return lambda_; }
  bool normalize() const { return normalize_; }

 private:
  double margin_ = 0.4, lambda_ = 0.8;
  bool normalize_ = true;
};

namespace detail {
template <class T, bool OverTriplets>
class GlobalLoss : public PairLoss<T> {
 public:
  GlobalLoss(const char* where, const GlobalLossOptions& options) : PairLoss<T>(where), options_(options) {
    require_option(options.margin() >= 0, where, "margin", ">= 0", options.margin());
    require_option(options.lambda() >= 0 && std::isfinite(options.lambda()), where, "lambda", "finite and >= 0",
                   options.lambda());
  }
  bool normalizes_embedding() const override { return options_.normalize(); }
  const GlobalLossOptions& options() const { return options_; }
  /// The statistics of the last forward: mean and variance of the positive and the negative q.
  double mean(bool positive) const { return stats_[positive ? 0 : 1].mean; }
  double variance(bool positive) const { return stats_[positive ? 0 : 1].variance; }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = this->start(embedding, labels, options_.normalize() ? &normalizer_ : nullptr);
    PairDistances<T>& distances = this->distances_;
    const Index n = s.n;
    count_in_class(labels);
    // Every ordered pair (a, b), a != b, with its weight: half a pair each way, or the number
    // of triplets with anchor a it takes part in.
    const auto weight = [&](Index a, Index b) -> double {
      const bool same = labels[static_cast<std::size_t>(a)] == labels[static_cast<std::size_t>(b)];
      if (!OverTriplets) return 0.5;
      const double own = static_cast<double>(own_[static_cast<std::size_t>(a)]);
      return same ? static_cast<double>(n) - 1 - own : own;
    };
    const auto q = [&](Index a, Index b) { return 0.25 * square(static_cast<double>(distances(a, b))); };
    Stats st[2];
    for (int pass = 0; pass < 2; ++pass) {  // means first, then variances around them
      for (Index a = 0; a < n; ++a) {
        for (Index b = 0; b < n; ++b) {
          if (b == a) continue;
          Stats& t = st[labels[static_cast<std::size_t>(a)] == labels[static_cast<std::size_t>(b)] ? 0 : 1];
          const double w = weight(a, b);
          if (pass == 0) {
            t.weight += w;
            t.mean += w * q(a, b);
          } else {
            t.variance += w * square(q(a, b) - t.mean);
          }
        }
      }
      for (auto& t : st) {
        if (t.weight == 0) continue;
        if (pass == 0) t.mean /= t.weight;
        else t.variance /= t.weight;
      }
    }
    stats_[0] = st[0];
    stats_[1] = st[1];
    if (st[0].weight == 0 || st[1].weight == 0) return static_cast<T>(0);
    const double gap = options_.margin() - (st[1].mean - st[0].mean);
    const double hinge = gap > 0 ? options_.lambda() : 0;
    // d J / d q of each ordered pair, recorded as d J / d (d^2) = 1/4 of it.
    for (Index a = 0; a < n; ++a) {
      for (Index b = 0; b < n; ++b) {
        if (b == a) continue;
        const bool same = labels[static_cast<std::size_t>(a)] == labels[static_cast<std::size_t>(b)];
        const Stats& t = st[same ? 0 : 1];
        const double w = weight(a, b) / t.weight;
        const double slope = w * (2 * (q(a, b) - t.mean) + (same ? hinge : -hinge));
        distances.add_squared_gradient(a, b, static_cast<T>(0.25 * slope));
      }
    }
    distances.write_gradient(this->grad_);  // d J / d x
    if (options_.normalize()) normalizer_.backward(this->grad_, this->grad_);
    return static_cast<T>(st[0].variance + st[1].variance + (gap > 0 ? options_.lambda() * gap : 0));
  }

 private:
  struct Stats {
    double weight = 0, mean = 0, variance = 0;
  };
  /// own_[a]: the other samples of a's class in the batch.
  void count_in_class(const std::vector<int>& labels) {
    own_.assign(labels.size(), 0);
    for (std::size_t a = 0; a < labels.size(); ++a)
      for (std::size_t b = 0; b < labels.size(); ++b) own_[a] += (b != a && labels[b] == labels[a]) ? 1 : 0;
  }
  template <class V>
  static V square(V v) { return v * v; }

  GlobalLossOptions options_;
  RowNormalizer<T> normalizer_;
  std::vector<Index> own_;
  Stats stats_[2];
};

inline std::string describe_global(const char* name, const GlobalLossOptions& o) {
  return concat(name, "(margin=", o.margin(), ",lambda=", o.lambda(), ",normalize=", o.normalize() ? 1 : 0, ")");
}
}  // namespace detail

template <class T>
class SiameseGlobalLoss : public detail::GlobalLoss<T, false> {
 public:
  explicit SiameseGlobalLoss(GlobalLossOptions options = {})
      : detail::GlobalLoss<T, false>("SiameseGlobalLoss", options) {}
  std::string type_name() const override { return "siamese-global"; }
  std::string describe() const override { return detail::describe_global("siamese-global", this->options()); }
};

template <class T>
class TripletGlobalLoss : public detail::GlobalLoss<T, true> {
 public:
  explicit TripletGlobalLoss(GlobalLossOptions options = {})
      : detail::GlobalLoss<T, true>("TripletGlobalLoss", options) {}
  std::string type_name() const override { return "triplet-global"; }
  std::string describe() const override { return detail::describe_global("triplet-global", this->options()); }
};

}  // namespace convnet
