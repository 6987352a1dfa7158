// The loss registry: every loss by the name --loss and make_objective take (its type_name()), with
// one line of help and a factory that reads its settings ("contrastive(margin=0.5,normalize=1)":
// loss_spec.hpp). The names, the error for an unknown one and the program's --help all come from
// loss_types(); a new loss is its header and a line here.
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "contrastive.hpp"
#include "cosine_similarity.hpp"
#include "distance_ratio.hpp"
#include "double_margin.hpp"
#include "global_loss.hpp"
#include "histogram.hpp"
#include "improved_triplet.hpp"
#include "lifted_structured.hpp"
#include "lmnn.hpp"
#include "loss.hpp"
#include "loss_spec.hpp"
#include "multiclass_hinge.hpp"
#include "normalized_embedding.hpp"
#include "pair_hinge.hpp"
#include "soft_pn.hpp"
#include "softmax_cross_entropy.hpp"
#include "triplet.hpp"

namespace convnet {

/// Settings of the losses make_objective builds.
struct ObjectiveOptions {
  ObjectiveOptions& hinge_margin(double v) { hinge_margin_ = v; return *this; }
  ObjectiveOptions& triplet_margin(double v) { triplet_margin_ = v; return *this; }
  /// Label smoothing of the cross-entropy (0: none), unless its name sets its own.
  ObjectiveOptions& label_smoothing(double v) { label_smoothing_ = v; return *this; }
  double label_smoothing() const { return label_smoothing_; }
  /// The layer whose output the embedding losses read (AlexNet: relu7, fc7 after its ReLU).
  ObjectiveOptions& embedding_layer(std::string v) { embedding_layer_ = std::move(v); return *this; }
  double hinge_margin() const { return hinge_margin_; }
  double triplet_margin() const { return triplet_margin_; }
  const std::string& embedding_layer() const { return embedding_layer_; }

 private:
  double hinge_margin_ = 1.0, triplet_margin_ = 1.0, label_smoothing_ = 0.0;
  std::string embedding_layer_ = "relu7";
};

template <class T>
struct LossType {
  std::string name, help;
  /// The loss from its settings (each taken; make_loss refuses any left over).
  std::unique_ptr<Loss<T>> (*make)(LossSettings& settings, const ObjectiveOptions& options);
  /// A pair or triplet loss on the embedding as it is: normalize=1 L2-normalises the embedding first.
  bool normalizable = false;
};

namespace detail {
inline Index whole_setting(LossSettings& s, const char* loss, const char* key, Index fallback) {
  const double v = s.take(key, static_cast<double>(fallback));
  require_option(v == std::floor(v) && v >= 0 && v <= 1e6, loss, key, "a whole number", v);
  return static_cast<Index>(v);
}
template <class T>
std::unique_ptr<Loss<T>> make_global_loss(LossSettings& s, bool triplet) {  // normalises by default, inside
  const GlobalLossOptions d;
  auto o = GlobalLossOptions().margin(s.take("margin", d.margin())).lambda(s.take("lambda", d.lambda()));
  o.normalize(s.take("normalize", d.normalize()));
  if (triplet) return std::make_unique<TripletGlobalLoss<T>>(o);
  return std::make_unique<SiameseGlobalLoss<T>>(o);
}
}  // namespace detail

/// Every loss, in the order --help lists them: on the logits first, then on the embedding.
template <class T>
const std::vector<LossType<T>>& loss_types() {
  using S = LossSettings;
  using O = ObjectiveOptions;
  using P = std::unique_ptr<Loss<T>>;
  static const std::vector<LossType<T>> types = {
      {"cross-entropy", "softmax cross-entropy on the logits (label_smoothing)",
       [](S& s, const O& o) -> P {
         return std::make_unique<SoftmaxCrossEntropy<T>>(
             CrossEntropyOptions().label_smoothing(s.take("label_smoothing", o.label_smoothing())));
       }},
      {"hinge", "multi-class hinge on the logits (margin)",
       [](S& s, const O& o) -> P {
         return std::make_unique<MultiClassHinge<T>>(HingeOptions().margin(s.take("margin", o.hinge_margin())));
       }},
      {"squared-hinge", "squared multi-class hinge on the logits (margin)",
       [](S& s, const O& o) -> P {
         return std::make_unique<MultiClassHinge<T>>(
             HingeOptions().margin(s.take("margin", o.hinge_margin())).squared(true));
       }},
      {"cosine", "cosine similarity of the logits to the one-hot label",
       [](S&, const O&) -> P { return std::make_unique<CosineSimilarityLoss<T>>(); }},
      {"triplet", "triplet loss on the embedding, batch-hard or semi-hard (margin, semi_hard, squared)",
       [](S& s, const O& o) -> P {
         return std::make_unique<TripletLoss<T>>(
             TripletOptions()
                 .margin(s.take("margin", o.triplet_margin()))
                 .mining(s.take("semi_hard", false) ? TripletMining::SemiHard : TripletMining::BatchHard)
                 .squared(s.take("squared", false)));
       },
       true},
      {"contrastive", "contrastive pairs (margin)",
       [](S& s, const O&) -> P {
         return std::make_unique<ContrastiveLoss<T>>(ContrastiveOptions().margin(s.take("margin", ContrastiveOptions().margin())));
       },
       true},
      {"pair-hinge", "hinge on pair distances (margin)",
       [](S& s, const O&) -> P {
         return std::make_unique<PairHingeLoss<T>>(PairHingeOptions().margin(s.take("margin", PairHingeOptions().margin())));
       },
       true},
      {"double-margin", "pairs pulled inside one margin and pushed past another (positive_margin, negative_margin)",
       [](S& s, const O&) -> P {
         const DoubleMarginOptions d;
         return std::make_unique<DoubleMarginLoss<T>>(
             DoubleMarginOptions()
                 .positive_margin(s.take("positive_margin", d.positive_margin()))
                 .negative_margin(s.take("negative_margin", d.negative_margin())));
       },
       true},
      {"siamese-global", "the global loss on pair distances' means and variances (margin, lambda, normalize)",
       [](S& s, const O&) -> P { return detail::make_global_loss<T>(s, false); }},
      {"lmnn", "large margin nearest neighbour (margin, mu, targets)",
       [](S& s, const O&) -> P {
         const LmnnOptions d;
         const Index targets = detail::whole_setting(s, "lmnn", "targets", d.targets());
         return std::make_unique<LmnnLoss<T>>(
             LmnnOptions().margin(s.take("margin", d.margin())).mu(s.take("mu", d.mu())).targets(targets));
       },
       true},
      {"improved-triplet", "the improved triplet loss (tau1, tau2, beta)",
       [](S& s, const O&) -> P {
         const ImprovedTripletOptions d;
         return std::make_unique<ImprovedTripletLoss<T>>(
             ImprovedTripletOptions().tau1(s.take("tau1", d.tau1())).tau2(s.take("tau2", d.tau2())).beta(s.take("beta", d.beta())));
       },
       true},
      {"distance-ratio", "softmax over the positive and negative distance",
       [](S&, const O&) -> P { return std::make_unique<DistanceRatioLoss<T>>(); }, true},
      {"softpn", "SoftPN: the distance ratio with the harder of two negatives",
       [](S&, const O&) -> P { return std::make_unique<SoftPnLoss<T>>(); }, true},
      {"lifted", "lifted structured embedding, softmax similarity (alpha)",
       [](S& s, const O&) -> P {
         return std::make_unique<LiftedStructuredLoss<T>>(
             LiftedStructuredOptions().alpha(s.take("alpha", LiftedStructuredOptions().alpha())));
       },
       true},
      {"triplet-global", "the global loss on triplet distance differences (margin, lambda, normalize)",
       [](S& s, const O&) -> P { return detail::make_global_loss<T>(s, true); }},
      {"histogram", "the histogram loss on cosine similarities (nodes)",
       [](S& s, const O&) -> P {
         return std::make_unique<HistogramLoss<T>>(
             HistogramOptions().nodes(detail::whole_setting(s, "histogram", "nodes", HistogramOptions().nodes())));
       }},
  };
  return types;
}

/// The names make_objective accepts, one loss each, in loss_types()' order.
inline const std::vector<std::string>& loss_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& t : loss_types<float>()) n.push_back(t.name);
    return n;
  }();
  return names;
}

/// One loss by name with optional settings: "contrastive", "contrastive(margin=0.5,normalize=1)"
/// (see loss_types() and each loss's header for the settings it takes; normalize=1
/// L2-normalises the embedding of any pair or triplet loss).
template <class T>
std::unique_ptr<Loss<T>> make_loss(const std::string& spec, const ObjectiveOptions& options = {}) {
  ParsedLossSpec parsed = parse_loss_spec(spec);
  for (const auto& type : loss_types<T>()) {
    if (type.name != parsed.name) continue;
    std::unique_ptr<Loss<T>> loss = type.make(parsed.settings, options);
    if (type.normalizable && parsed.settings.take("normalize", false)) {
      loss = std::make_unique<NormalizedEmbeddingLoss<T>>(std::move(loss));
    }
    parsed.settings.finish();
    return loss;
  }
  std::string valid;
  for (const auto& n : loss_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw ArgumentError("unknown loss '" + parsed.name + "'; valid names are " + valid +
                      ", and sums of them joined by '+' (cross-entropy+hinge)");
}

}  // namespace convnet
