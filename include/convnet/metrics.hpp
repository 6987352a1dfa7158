// Classification metrics: top-k counts, a running accuracy, a confusion
// matrix, and the record of one training epoch.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "errors.hpp"
#include "tensor.hpp"

namespace convnet {

namespace detail {
/// Refuses a label outside [0, classes) before anything indexes by it.
inline void check_labels(const std::vector<int>& labels, Index classes, const char* where) {
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes) {
      throw ArgumentError(concat(where, ": label ", labels[i], " of sample ", i, " is outside [0, ", classes,
                                         ")"));
    }
  }
}
}  // namespace detail

/// Number of samples whose label is among the k highest scores (scores [N, classes, 1, 1],
/// logits or probabilities). A tie with the label's score counts against it, so
/// constant scores never look correct.
template <class T>
Index top_k_correct(const Tensor<T>& scores, const std::vector<int>& labels, Index k) {
  const Shape s = shape_of(scores);
  if (static_cast<Index>(labels.size()) != s.n || s.h != 1 || s.w != 1) {
    throw ShapeError("top_k_correct", detail::concat("[", labels.size(), ", classes, 1, 1]"), s.str());
  }
  detail::check_labels(labels, s.c, "top_k_correct");
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

/// counts[true][predicted] over a set of examples, and the per-class accuracy.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(Index classes = 0) : classes_(classes), counts_(static_cast<std::size_t>(classes * classes), 0) {}

  Index classes() const { return classes_; }
  Index count(Index truth, Index predicted) const {
    return counts_[static_cast<std::size_t>(truth * classes_ + predicted)];
  }

  /// Adds a batch of scores [N, classes, 1, 1]; the prediction is the highest score.
  template <class T>
  void add(const Tensor<T>& scores, const std::vector<int>& labels) {
    const Shape s = shape_of(scores);
    if (s.c != classes_ || static_cast<Index>(labels.size()) != s.n) {
      throw ShapeError("ConfusionMatrix::add", detail::concat("[", labels.size(), ", ", classes_, ", 1, 1]"), s.str());
    }
    detail::check_labels(labels, classes_, "ConfusionMatrix::add");
    for (Index n = 0; n < s.n; ++n) {
      const T* row = scores.data() + n * s.c;
      const Index predicted = static_cast<Index>(std::max_element(row, row + s.c) - row);
      ++counts_[static_cast<std::size_t>(labels[static_cast<std::size_t>(n)] * classes_ + predicted)];
    }
  }

  /// Correct / total for class `truth` (0 when it has no examples).
  double class_accuracy(Index truth) const {
    Index total = 0;
    for (Index p = 0; p < classes_; ++p) total += count(truth, p);
    return total ? static_cast<double>(count(truth, truth)) / static_cast<double>(total) : 0.0;
  }

 private:
  Index classes_;
  std::vector<Index> counts_;
};

/// One epoch's numbers, as the trainer records them (1-based epoch; accuracies as fractions).
struct EpochRecord {
  int epoch = 0;
  double train_loss = 0, train_accuracy = 0, val_loss = 0, val_accuracy = 0, learning_rate = 0, seconds = 0;
};

}  // namespace convnet
