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
//   cross-entropy, hinge, squared-hinge, cosine, triplet, contrastive,
//   pair-hinge, lmnn, distance-ratio, softpn, lifted, histogram, and sums of
//   them joined by '+', such as cross-entropy+hinge or cross-entropy+triplet.
//   The last eight read the embedding; the others the logits.
#pragma once

#include <cmath>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../sequential.hpp"
#include "../tensor.hpp"
#include "contrastive.hpp"
#include "cosine_similarity.hpp"
#include "distance_ratio.hpp"
#include "histogram.hpp"
#include "lifted_structured.hpp"
#include "lmnn.hpp"
#include "loss.hpp"
#include "multiclass_hinge.hpp"
#include "pair_hinge.hpp"
#include "soft_pn.hpp"
#include "softmax_cross_entropy.hpp"
#include "triplet.hpp"

namespace convnet {

/// Settings of the losses make_objective builds.
struct ObjectiveOptions {
  ObjectiveOptions& hinge_margin(double v) { hinge_margin_ = v; return *this; }
  ObjectiveOptions& triplet_margin(double v) { triplet_margin_ = v; return *this; }
  /// The layer whose output the embedding losses read (AlexNet: relu7, fc7 after its ReLU).
  ObjectiveOptions& embedding_layer(std::string v) { embedding_layer_ = std::move(v); return *this; }
  double hinge_margin() const { return hinge_margin_; }
  double triplet_margin() const { return triplet_margin_; }
  const std::string& embedding_layer() const { return embedding_layer_; }

 private:
  double hinge_margin_ = 1.0, triplet_margin_ = 1.0;
  std::string embedding_layer_ = "relu7";
};

/// The names make_objective accepts, one loss each.
inline const std::vector<std::string>& loss_names() {
  static const std::vector<std::string> names{"cross-entropy", "hinge",          "squared-hinge", "cosine",
                                              "triplet",       "contrastive",    "pair-hinge",    "lmnn",
                                              "distance-ratio", "softpn",       "lifted",        "histogram"};
  return names;
}

template <class T>
class Objective {
 public:
  explicit Objective(std::string embedding_layer = "relu7") : embedding_layer_(std::move(embedding_layer)) {}

  /// Adds `weight` x `loss` to the sum.
  void add(std::unique_ptr<Loss<T>> loss, double weight = 1.0) {
    if (!loss) throw std::invalid_argument("Objective::add: null loss");
    if (!(weight >= 0) || !std::isfinite(weight)) {
      throw std::invalid_argument(detail::concat("Objective: the weight of ", loss->type_name(),
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
    if (terms_.empty()) throw std::logic_error("Objective: no loss was added");
    double total = 0;
    for (auto& t : terms_) {
      const bool on_embedding = t.loss->input() == LossInput::Embedding;
      if (on_embedding && !embedding) {
        throw std::invalid_argument("Objective: " + t.loss->type_name() + " needs the embedding (" + embedding_layer_ +
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
    if (!ready_) throw std::logic_error("Objective: backward called before forward");
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

/// One loss by name (see loss_names()).
template <class T>
std::unique_ptr<Loss<T>> make_loss(const std::string& name, const ObjectiveOptions& options = {}) {
  if (name == "cross-entropy") return std::make_unique<SoftmaxCrossEntropy<T>>();
  if (name == "hinge") return std::make_unique<MultiClassHinge<T>>(HingeOptions().margin(options.hinge_margin()));
  if (name == "squared-hinge") {
    return std::make_unique<MultiClassHinge<T>>(HingeOptions().margin(options.hinge_margin()).squared(true));
  }
  if (name == "cosine") return std::make_unique<CosineSimilarityLoss<T>>();
  if (name == "triplet") return std::make_unique<TripletLoss<T>>(TripletOptions().margin(options.triplet_margin()));
  if (name == "contrastive") return std::make_unique<ContrastiveLoss<T>>();
  if (name == "pair-hinge") return std::make_unique<PairHingeLoss<T>>();
  if (name == "lmnn") return std::make_unique<LmnnLoss<T>>();
  if (name == "distance-ratio") return std::make_unique<DistanceRatioLoss<T>>();
  if (name == "softpn") return std::make_unique<SoftPnLoss<T>>();
  if (name == "lifted") return std::make_unique<LiftedStructuredLoss<T>>();
  if (name == "histogram") return std::make_unique<HistogramLoss<T>>();
  std::string valid;
  for (const auto& n : loss_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown loss '" + name + "'; valid names are " + valid +
                              ", and sums of them joined by '+' (cross-entropy+hinge)");
}

/// An objective from a spec such as "cross-entropy+triplet" and one weight per
/// term (empty: all 1).
/// Weights written as "1,0.5" (one number per term of a loss name such as cross-entropy+triplet).
inline std::vector<double> parse_loss_weights(const std::string& text) {
  std::vector<double> weights;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    try {
      std::size_t used = 0;
      weights.push_back(std::stod(part, &used));
      if (used != part.size()) throw std::invalid_argument(part);
    } catch (const std::logic_error&) {
      throw std::invalid_argument("loss weights are numbers separated by commas, got '" + text + "'");
    }
  }
  return weights;
}

template <class T>
Objective<T> make_objective(const std::string& spec, const std::vector<double>& weights = {},
                            const ObjectiveOptions& options = {}) {
  std::vector<std::string> parts;
  std::istringstream in(spec);
  for (std::string part; std::getline(in, part, '+');) parts.push_back(part);
  if (spec.empty() || parts.empty() || spec.back() == '+') {
    throw std::invalid_argument("loss '" + spec + "': expected names joined by '+', such as cross-entropy+hinge");
  }
  if (!weights.empty() && weights.size() != parts.size()) {
    throw std::invalid_argument(detail::concat("loss '", spec, "' has ", parts.size(), " terms but ", weights.size(),
                                               " weights were given"));
  }
  Objective<T> objective(options.embedding_layer());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    objective.add(make_loss<T>(parts[i], options), weights.empty() ? 1.0 : weights[i]);
  }
  return objective;
}

}  // namespace convnet
