// PairHingeLoss: the hinge on pairs of embeddings - our reading of the study's
// "pairwise hinge" row. The name is ambiguous (Keras's one-vs-rest `hinge` on
// the logits is the other candidate); we take the pair loss because the row
// sits among the study's pair losses and scores below them, as an unsquared,
// unnormalised pair loss does: every pair (a, b), a < b, of the batch, with d
// the Euclidean distance of their embeddings (pair_distances.hpp),
//   same class        d                      (pulled together, linearly)
//   different class   max(0, margin - d)     (pushed apart to the margin)
// and the loss is the mean over all pairs; margin 1 by default. It is the
// contrastive loss (contrastive.hpp) without its squares.
//
// Input: the embedding [N, D, 1, 1]; labels are class indices >= 0.
#pragma once

#include <string>

#include "contrastive.hpp"

namespace convnet {

struct PairHingeOptions {
  PairHingeOptions& margin(double v) { margin_ = v; return *this; }
  double margin() const { return margin_; }

 private:
  double margin_ = 1.0;
};

template <class T>
class PairHingeLoss : public detail::PairMarginLoss<T, false> {
 public:
  explicit PairHingeLoss(PairHingeOptions options = {})
      : detail::PairMarginLoss<T, false>("PairHingeLoss", options.margin()) {}
  std::string type_name() const override { return "pair-hinge"; }
  std::string describe() const override { return detail::concat("pair-hinge(margin=", this->margin(), ")"); }
};

}  // namespace convnet
