// Objective<T>: what a training step minimises, a weighted sum of losses, some
// on the logits and some on an embedding inside the network.
//
//   auto objective = make_objective<float>("cross-entropy+triplet", {1.0, 0.5});
//   T value = objective.forward(net, labels);   // after net.forward(images)
//   objective.backward(net);                    // both gradients, one backward pass
//
// The embedding is the output of the layer named by embedding_layer (AlexNet:
// "relu7", fc7 after its ReLU); its gradient joins the logits' gradient there
// (Sequential::backward with a tap), so one backward pass serves every term.
//
// Names accepted by make_objective (and the trainer's --loss):
//   cross-entropy, hinge, squared-hinge, cosine on the logits; triplet,
//   contrastive, pair-hinge, double-margin, siamese-global, lmnn,
//   improved-triplet, distance-ratio, softpn, lifted, triplet-global, histogram
//   on the embedding; and sums of them joined by '+', such as
//   cross-entropy+triplet. Each name may carry its settings (loss_spec.hpp):
//   contrastive(margin=0.5,normalize=1)+cross-entropy.
#pragma once

#include <cmath>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../models/sequential.hpp"
#include "../tensor.hpp"
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

/// The names make_objective accepts, one loss each.
inline const std::vector<std::string>& loss_names() {
  static const std::vector<std::string> names{
      "cross-entropy", "hinge",          "squared-hinge",  "cosine", "triplet",          "contrastive",
      "pair-hinge",    "double-margin",  "siamese-global", "lmnn",   "improved-triplet", "distance-ratio",
      "softpn",        "lifted",         "triplet-global", "histogram"};
  return names;
}

template <class T>
class Objective {
 public:
  explicit Objective(std::string embedding_layer = "relu7") : embedding_layer_(std::move(embedding_layer)) {}

  /// Adds `weight` x `loss` to the sum.
  void add(std::unique_ptr<Loss<T>> loss, double weight = 1.0) {
    if (!loss) throw ArgumentError("Objective::add: null loss");
    if (!(weight >= 0) || !std::isfinite(weight)) {
      throw ArgumentError(detail::concat("Objective: the weight of ", loss->type_name(),
                                                 " must be finite and >= 0, got ", weight));
    }
    terms_.push_back({std::move(loss), weight, 0.0});
  }

  std::size_t size() const { return terms_.size(); }
  Loss<T>& loss(std::size_t i) { return *terms_.at(i).loss; }
  double weight(std::size_t i) const { return terms_.at(i).weight; }
  /// The unweighted value of term i in the last forward.
  double value(std::size_t i) const { return terms_.at(i).value; }
  const std::string& embedding_layer() const { return embedding_layer_; }

  /// Whether some term reads the logits, i.e. whether the classifier learns.
  bool reads_logits() const { return reads(LossInput::Logits); }
  bool reads_embedding() const { return reads(LossInput::Embedding); }
  /// Whether every term on the embedding L2-normalises it (then its classes are read by cosine).
  bool normalizes_embedding() const {
    bool all = reads_embedding();
    for (const auto& t : terms_) all = all && (t.loss->input() != LossInput::Embedding || t.loss->normalizes_embedding());
    return all;
  }

  /// "cross-entropy+triplet(margin=1) weights=1,0.5 embedding=relu7": stored in checkpoints.
  std::string describe() const {
    std::ostringstream out;
    for (std::size_t i = 0; i < terms_.size(); ++i) out << (i ? "+" : "") << terms_[i].loss->describe();
    out << " weights=";
    for (std::size_t i = 0; i < terms_.size(); ++i) out << (i ? "," : "") << terms_[i].weight;
    if (reads_embedding()) out << " embedding=" << embedding_layer_;
    return out.str();
  }

  /// The weighted sum for given logits and embedding (the embedding may be
  /// null when no term reads it).
  T forward(const Tensor<T>& logits, const Tensor<T>* embedding, const std::vector<int>& labels) {
    if (terms_.empty()) throw StateError("Objective: no loss was added");
    double total = 0;
    for (auto& t : terms_) {
      const bool on_embedding = t.loss->input() == LossInput::Embedding;
      if (on_embedding && !embedding) {
        throw ArgumentError("Objective: " + t.loss->type_name() + " needs the embedding (" + embedding_layer_ +
                                    "), none was given");
      }
      t.value = static_cast<double>(t.loss->forward(on_embedding ? *embedding : logits, labels));
      total += t.weight * t.value;
    }
    logits_shape_ = shape_of(logits);
    embedding_shape_ = embedding ? shape_of(*embedding) : Shape{};
    ready_ = true;
    return static_cast<T>(total);
  }

  /// The weighted sum for the network's last forward.
  T forward(Sequential<T>& net, const std::vector<int>& labels) {
    return forward(net.output(), reads_embedding() ? &net.layer(embedding_layer_).output() : nullptr, labels);
  }

  /// d(objective)/d(logits) and d(objective)/d(embedding) of the last forward
  /// (the second is zero-sized when no term reads the embedding).
  void compute_gradients() {
    if (!ready_) throw StateError("Objective: backward called before forward");
    resize(logits_grad_, logits_shape_);
    flat(logits_grad_).setZero();
    if (reads_embedding()) {
      resize(embedding_grad_, embedding_shape_);
      flat(embedding_grad_).setZero();
    }
    for (auto& t : terms_) {
      Tensor<T>& target = t.loss->input() == LossInput::Embedding ? embedding_grad_ : logits_grad_;
      flat(target) += flat(t.loss->backward()) * static_cast<T>(t.weight);
    }
  }
  const Tensor<T>& logits_gradient() const { return logits_grad_; }
  const Tensor<T>& embedding_gradient() const { return embedding_grad_; }

  /// Backpropagates the whole objective through the network (one pass).
  void backward(Sequential<T>& net) {
    compute_gradients();
    if (reads_embedding()) {
      net.backward(logits_grad_, embedding_layer_, embedding_grad_);
    } else {
      net.backward(logits_grad_);
    }
  }

 private:
  struct Term {
    std::unique_ptr<Loss<T>> loss;
    double weight;
    double value;
  };
  bool reads(LossInput what) const {
    for (const auto& t : terms_) {
      if (t.loss->input() == what) return true;
    }
    return false;
  }

  std::vector<Term> terms_;
  std::string embedding_layer_;
  Shape logits_shape_, embedding_shape_;
  Tensor<T> logits_grad_, embedding_grad_;
  bool ready_ = false;
};

namespace detail {
/// The loss `name` with what `settings` say of it (the rest at its defaults); null for an unknown name.
template <class T>
std::unique_ptr<Loss<T>> build_loss(const std::string& name, LossSettings& settings, const ObjectiveOptions& options) {
  const auto margin = [&](double fallback) { return settings.take("margin", fallback); };
  if (name == "cross-entropy") {
    return std::make_unique<SoftmaxCrossEntropy<T>>(
        CrossEntropyOptions().label_smoothing(settings.take("label_smoothing", options.label_smoothing())));
  }
  if (name == "cosine") return std::make_unique<CosineSimilarityLoss<T>>();
  if (name == "hinge" || name == "squared-hinge") {
    return std::make_unique<MultiClassHinge<T>>(
        HingeOptions().margin(margin(options.hinge_margin())).squared(name == "squared-hinge"));
  }
  if (name == "histogram") {  // normalises by itself (cosine similarities)
    const double nodes = settings.take("nodes", static_cast<double>(HistogramOptions().nodes()));
    require_option(nodes == std::floor(nodes) && nodes >= 0 && nodes <= 1e6, "histogram", "nodes",
                   "a whole number", nodes);
    return std::make_unique<HistogramLoss<T>>(HistogramOptions().nodes(static_cast<Index>(nodes)));
  }
  if (name == "siamese-global" || name == "triplet-global") {  // normalise by default, inside
    const GlobalLossOptions d;
    auto o = GlobalLossOptions().margin(margin(d.margin())).lambda(settings.take("lambda", d.lambda()));
    o.normalize(settings.take_flag("normalize", d.normalize()));
    if (name == "siamese-global") return std::make_unique<SiameseGlobalLoss<T>>(o);
    return std::make_unique<TripletGlobalLoss<T>>(o);
  }
  std::unique_ptr<Loss<T>> loss;  // the pair and triplet losses: on the embedding as it is, or normalised
  if (name == "triplet") {
    loss = std::make_unique<TripletLoss<T>>(
        TripletOptions()
            .margin(margin(options.triplet_margin()))
            .mining(settings.take_flag("semi_hard", false) ? TripletMining::SemiHard : TripletMining::BatchHard)
            .squared(settings.take_flag("squared", false)));
  } else if (name == "contrastive") {
    loss = std::make_unique<ContrastiveLoss<T>>(ContrastiveOptions().margin(margin(ContrastiveOptions().margin())));
  } else if (name == "pair-hinge") {
    loss = std::make_unique<PairHingeLoss<T>>(PairHingeOptions().margin(margin(PairHingeOptions().margin())));
  } else if (name == "double-margin") {
    const DoubleMarginOptions d;
    loss = std::make_unique<DoubleMarginLoss<T>>(
        DoubleMarginOptions()
            .positive_margin(settings.take("positive_margin", d.positive_margin()))
            .negative_margin(settings.take("negative_margin", d.negative_margin())));
  } else if (name == "lmnn") {
    const LmnnOptions d;
    const double targets = settings.take("targets", static_cast<double>(d.targets()));
    require_option(targets == std::floor(targets) && targets >= 0 && targets <= 1e6, "lmnn", "targets",
                   "a whole number", targets);
    loss = std::make_unique<LmnnLoss<T>>(LmnnOptions()
                                             .margin(margin(d.margin()))
                                             .mu(settings.take("mu", d.mu()))
                                             .targets(static_cast<Index>(targets)));
  } else if (name == "improved-triplet") {
    const ImprovedTripletOptions d;
    loss = std::make_unique<ImprovedTripletLoss<T>>(ImprovedTripletOptions()
                                                         .tau1(settings.take("tau1", d.tau1()))
                                                         .tau2(settings.take("tau2", d.tau2()))
                                                         .beta(settings.take("beta", d.beta())));
  } else if (name == "distance-ratio") {
    loss = std::make_unique<DistanceRatioLoss<T>>();
  } else if (name == "softpn") {
    loss = std::make_unique<SoftPnLoss<T>>();
  } else if (name == "lifted") {
    loss = std::make_unique<LiftedStructuredLoss<T>>(
        LiftedStructuredOptions().alpha(settings.take("alpha", LiftedStructuredOptions().alpha())));
  } else {
    return nullptr;
  }
  if (settings.take_flag("normalize", false)) return std::make_unique<NormalizedEmbeddingLoss<T>>(std::move(loss));
  return loss;
}
}  // namespace detail

/// One loss by name with optional settings: "contrastive", "contrastive(margin=0.5,normalize=1)"
/// (see loss_names() and each loss's header for the settings it takes; normalize=1
/// L2-normalises the embedding of any pair or triplet loss).
template <class T>
std::unique_ptr<Loss<T>> make_loss(const std::string& spec, const ObjectiveOptions& options = {}) {
  ParsedLossSpec parsed = parse_loss_spec(spec);
  std::unique_ptr<Loss<T>> loss = detail::build_loss<T>(parsed.name, parsed.settings, options);
  if (!loss) {
    std::string valid;
    for (const auto& n : loss_names()) valid += (valid.empty() ? "" : ", ") + n;
    throw ArgumentError("unknown loss '" + parsed.name + "'; valid names are " + valid +
                                ", and sums of them joined by '+' (cross-entropy+hinge)");
  }
  parsed.settings.require_all_taken();
  return loss;
}

/// An objective from a spec such as "cross-entropy+triplet" and one weight per
/// term (empty: all 1).
/// Weights written as "1,0.5" (one number per term of a loss name such as cross-entropy+triplet).
inline std::vector<double> parse_loss_weights(const std::string& text) {
  std::vector<double> weights;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    try {
      weights.push_back(detail::parse_number<double>(part));
    } catch (const ArgumentError&) {
      throw ArgumentError("loss weights are numbers separated by commas, got '" + text + "'");
    }
  }
  return weights;
}

template <class T>
Objective<T> make_objective(const std::string& spec, const std::vector<double>& weights = {},
                            const ObjectiveOptions& options = {}) {
  const std::vector<std::string> parts = split_loss_terms(spec);
  bool empty_term = false;
  for (const auto& part : parts) empty_term = empty_term || part.empty();
  if (empty_term) {
    throw ArgumentError("loss '" + spec + "': expected names joined by '+', such as cross-entropy+hinge");
  }
  if (!weights.empty() && weights.size() != parts.size()) {
    throw ArgumentError(detail::concat("loss '", spec, "' has ", parts.size(), " terms but ", weights.size(),
                                               " weights were given"));
  }
  Objective<T> objective(options.embedding_layer());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    objective.add(make_loss<T>(parts[i], options), weights.empty() ? 1.0 : weights[i]);
  }
  return objective;
}

}  // namespace convnet
