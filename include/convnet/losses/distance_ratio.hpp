// DistanceRatioLoss: the triplet network's loss (Hoffer and Ailon 2015, "Deep
// metric learning using triplet network") - the study's "distance ratio" row.
//
// For a triplet (anchor a, positive p of its class, negative n of another),
// with d+ = d(a, p) and d- = d(a, n) Euclidean distances of the embeddings,
// a softmax over the two distances
//   r+ = e^{d+} / (e^{d+} + e^{d-}),   r- = e^{d-} / (e^{d+} + e^{d-}) = 1 - r+
// and the loss ||(r+, r- - 1)||^2 = 2 r+^2 = 2 sigmoid(d+ - d-)^2: zero only
// as the negative moves infinitely further than the positive. The loss is the
// mean over every triplet of the batch (the paper drew random triplets; a
// batch's triplets are all of them here). No triplet: 0.
//
// Input: the embedding [N, D, 1, 1]; labels are class indices >= 0.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"
#include "pair_distances.hpp"

namespace convnet {

namespace detail {
/// 2 sigmoid(x)^2 and its derivative 4 sigmoid(x)^2 (1 - sigmoid(x)), computed without overflow.
template <class T>
void ratio_term(T x, T& value, T& slope) {
  const T s = x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
  value = 2 * s * s;
  slope = 4 * s * s * (1 - s);
}

/// Calls f(a, p, n) for every triplet of the batch (a != p of one class, n of another); returns how many.
template <class F>
Index for_each_triplet(const std::vector<int>& labels, const F& f) {
  const Index n = static_cast<Index>(labels.size());
  Index count = 0;
  for (Index a = 0; a < n; ++a) {
    for (Index p = 0; p < n; ++p) {
      if (p == a || labels[static_cast<std::size_t>(p)] != labels[static_cast<std::size_t>(a)]) continue;
      for (Index q = 0; q < n; ++q) {
        if (labels[static_cast<std::size_t>(q)] == labels[static_cast<std::size_t>(a)]) continue;
        f(a, p, q);
        ++count;
      }
    }
  }
  return count;
}
}  // namespace detail

namespace detail {
/// 2 sigmoid(d+ - d-)^2 over every triplet of the batch, with d- the anchor's distance to the
/// negative, or (HarderNegative, SoftPN) the smaller of the anchor's and the positive's.
template <class T, bool HarderNegative>
class SoftmaxRatioLoss : public PairLoss<T> {
 public:
  explicit SoftmaxRatioLoss(const char* where) : PairLoss<T>(where) {}

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    this->start(embedding, labels);
    PairDistances<T>& distances = this->distances_;
    const Index triplets = detail::for_each_triplet(labels, [](Index, Index, Index) {});
    if (triplets == 0) return 0;
    const T scale = T(1) / static_cast<T>(triplets);
    double total = 0;
    detail::for_each_triplet(labels, [&](Index a, Index p, Index n) {
      const Index near = HarderNegative && distances(p, n) < distances(a, n) ? p : a;  // a tie takes d(a, n)
      T value, slope;
      detail::ratio_term(distances(a, p) - distances(near, n), value, slope);
      total += static_cast<double>(value);
      distances.add_gradient(a, p, slope * scale);
      distances.add_gradient(near, n, -slope * scale);
    });
    distances.write_gradient(this->grad_);
    return static_cast<T>(total / static_cast<double>(triplets));
  }

};
}  // namespace detail

template <class T>
class DistanceRatioLoss : public detail::SoftmaxRatioLoss<T, false> {
 public:
  DistanceRatioLoss() : detail::SoftmaxRatioLoss<T, false>("DistanceRatioLoss") {}
  std::string type_name() const override { return "distance-ratio"; }
};

}  // namespace convnet
