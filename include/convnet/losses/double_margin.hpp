// DoubleMarginLoss: the double-margin contrastive loss (Lin et al. 2015,
// "DeepHash: Getting Regularization, Depth and Fine-Tuning Right") - the
// study's "double margin" row. The contrastive loss (contrastive.hpp) pulls a
// same-class pair all the way together; this one leaves it alone once it is
// within a positive margin, so positive and negative pairs both stop
// contributing at a margin of their own. Every pair (a, b), a < b, with d the
// Euclidean distance of their embeddings (pair_distances.hpp):
//   same class        1/2 max(0, d - positive_margin)^2
//   different class   1/2 max(0, negative_margin - d)^2
// and the loss is the mean over all pairs. positive_margin 0 is the
// contrastive loss. Defaults 0.5 and 1: our choice on the contrastive loss's
// scale (the margins of the original could not be checked here), with
// 0 <= positive_margin < negative_margin required.
//
// Input: the embedding [N, D, 1, 1]; labels are class indices >= 0.
#pragma once

#include <string>

#include "contrastive.hpp"

namespace convnet {

struct DoubleMarginOptions {
  DoubleMarginOptions& positive_margin(double v) { positive_margin_ = v; return *this; }
  DoubleMarginOptions& negative_margin(double v) { negative_margin_ = v; return *this; }
  double positive_margin() const { return positive_margin_; }
  double negative_margin() const { return negative_margin_; }

 private:
  double positive_margin_ = 0.5, negative_margin_ = 1.0;
};

template <class T>
class DoubleMarginLoss : public detail::PairMarginLoss<T, true> {
 public:
  explicit DoubleMarginLoss(DoubleMarginOptions options = {})
      : detail::PairMarginLoss<T, true>("DoubleMarginLoss", options.negative_margin(), options.positive_margin()) {}
  std::string type_name() const override { return "double-margin"; }
  std::string describe() const override {
    return detail::concat("double-margin(positive_margin=", this->positive_margin(),
                          ",negative_margin=", this->margin(), ")");
  }
};

}  // namespace convnet
