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
// Names accepted by make_objective (and the trainer's --loss): every loss of the
// registry (loss_registry.hpp: loss_types()), and sums of them joined by '+', such
// as cross-entropy+triplet. Each name may carry its settings (loss_spec.hpp):
// contrastive(margin=0.5,normalize=1)+cross-entropy.
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
#include "loss.hpp"
#include "loss_registry.hpp"
#include "loss_spec.hpp"
#include "softmax_cross_entropy.hpp"

namespace convnet {

template <class T>
class Objective {
 public:
  explicit Objective(std::string embedding_layer = "relu7") : embedding_layer_(std::move(embedding_layer)) {}
  /// A single loss as a one-term objective (weight 1), the loss borrowed: it must outlive the
  /// objective. What a step minimises is always an Objective; this is how a plain loss becomes one.
  explicit Objective(Loss<T>& loss, std::string embedding_layer = "relu7") : embedding_layer_(std::move(embedding_layer)) {
    terms_.push_back({nullptr, &loss, 1.0, 0.0});
  }
  Objective(Objective&&) = default;
  Objective& operator=(Objective&&) = default;

  /// Adds `weight` x `loss` to the sum.
  void add(std::unique_ptr<Loss<T>> loss, double weight = 1.0) {
    if (!loss) throw ArgumentError("Objective::add: null loss");
    if (!(weight >= 0) || !std::isfinite(weight)) {
      throw ArgumentError(detail::concat("Objective: the weight of ", loss->type_name(),
                                                 " must be finite and >= 0, got ", weight));
    }
    Loss<T>* borrowed = loss.get();
    terms_.push_back({std::move(loss), borrowed, weight, 0.0});
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
    std::unique_ptr<Loss<T>> owned;  ///< null when the loss is borrowed (Objective(Loss&))
    Loss<T>* loss;
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
