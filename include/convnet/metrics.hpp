// Classification metrics: top-k counts and a running accuracy.
#pragma once

#include <vector>

#include "errors.hpp"
#include "tensor.hpp"

namespace convnet {

/// Number of samples whose label is among the k highest scores (scores [N, classes, 1, 1],
/// logits or probabilities). A tie with the label's score counts against it, so
/// constant scores never look correct.
template <class T>
Index top_k_correct(const Tensor<T>& scores, const std::vector<int>& labels, Index k) {
  const Shape s = shape_of(scores);
  if (static_cast<Index>(labels.size()) != s.n || s.h != 1 || s.w != 1) {
    throw ShapeError("top_k_correct", detail::concat("[", labels.size(), ", classes, 1, 1]"), s.str());
  }
  Index correct = 0;
  for (Index n = 0; n < s.n; ++n) {
    const T* row = scores.data() + n * s.c;
    const T target = row[labels[static_cast<std::size_t>(n)]];
    Index at_least = 0;  // other classes scoring >= the label's
    for (Index c = 0; c < s.c; ++c) {
      if (c != labels[static_cast<std::size_t>(n)] && row[c] >= target) ++at_least;
    }
    if (at_least < k) ++correct;
  }
  return correct;
}

/// Sums over batches: mean loss, top-1 and top-5 accuracy.
struct ClassificationMetrics {
  double loss_sum = 0;  ///< sum over samples of the loss
  Index top1 = 0, top5 = 0, count = 0;

  double loss() const { return count ? loss_sum / static_cast<double>(count) : 0.0; }
  double top1_accuracy() const { return count ? static_cast<double>(top1) / static_cast<double>(count) : 0.0; }
  double top5_accuracy() const { return count ? static_cast<double>(top5) / static_cast<double>(count) : 0.0; }

  /// Adds one batch: its mean loss and scores.
  template <class T>
  void add(double mean_loss, const Tensor<T>& scores, const std::vector<int>& labels) {
    const Index n = static_cast<Index>(labels.size());
    loss_sum += mean_loss * static_cast<double>(n);
    top1 += top_k_correct(scores, labels, 1);
    top5 += top_k_correct(scores, labels, 5);
    count += n;
  }
};

}  // namespace convnet
