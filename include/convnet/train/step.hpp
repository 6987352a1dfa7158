// The training step and the evaluation pass.
//
// train_step: forward, loss, backward, update. Activations, gradients,
// optimizer state and the loss's buffers are all kept by their owners, so once
// the first step has sized them a step allocates nothing.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <optional>
#include <vector>

#include "../data/loader.hpp"
#include "../distributed/gradient_reducer.hpp"
#include "../errors.hpp"
#include "../losses/loss.hpp"
#include "../losses/objective.hpp"
#include "../losses/softmax_cross_entropy.hpp"
#include "../metrics.hpp"
#include "../optim/optimizer.hpp"
#include "../optim/schedules.hpp"
#include "../models/sequential.hpp"

namespace convnet {

/// Thrown when the loss of a step is NaN or infinite.
class NonFiniteLossError : public ErrorAs<std::runtime_error> {
 public:
  explicit NonFiniteLossError(const std::string& what) : ErrorAs(what) {}
};

namespace detail {
/// Where NaN or infinity first shows up in the last forward pass: the input, a
/// parameter of a layer, or a layer's output (in network order).
template <class T>
std::string first_non_finite(Sequential<T>& net, const Tensor<T>& input) {
  if (!flat(input).allFinite()) return "the input batch holds non-finite values";
  for (std::size_t i = 0; i < net.size(); ++i) {
    for (auto& p : net[i].parameters()) {
      if (!p.values().allFinite()) return "first non-finite parameter: " + net[i].name() + "." + p.name;
    }
    if (!flat(net[i].output()).allFinite()) return "first non-finite output: layer " + net[i].name();
  }
  return "every layer output is finite (the loss overflowed)";
}
}  // namespace detail

struct StepResult {
  double loss = 0;   ///< mean over the batch
  Index correct = 0;  ///< top-1 hits in the batch (before the update)
};


/// One optimisation step on a batch: forward, the objective (a weighted sum of losses, some of
/// which may read an inner layer's output; a single loss is Objective(loss)), backward, update.
/// With a schedule, its rate (and momentum, for one-cycle) is used for this step and it advances by
/// one step afterwards. With a reducer (data-parallel training; begun by the caller, observing the
/// network's backward), the gradients are summed over the processes before the update.
template <class T>
StepResult train_step(Sequential<T>& net, Objective<T>& objective, Optimizer<T>& optimizer, const Tensor<T>& images,
                      const std::vector<int>& labels, LrSchedule* schedule = nullptr,
                      GradientReducer<T>* reducer = nullptr) {
  if (schedule) {
    optimizer.set_learning_rate(schedule->learning_rate());
    if (const auto momentum = schedule->momentum()) optimizer.set_momentum(*momentum);
  }
  optimizer.zero_grad();
  const Tensor<T>& logits = net.forward(images);
  const T value = objective.forward(net, labels);
  if (!std::isfinite(value)) {
    throw NonFiniteLossError(detail::concat("training stopped: the loss became ", value, " at optimizer step ",
                                            optimizer.steps() + 1, " (learning rate ", optimizer.learning_rate(),
                                            "); ", detail::first_non_finite(net, images)));
  }
  StepResult result{static_cast<double>(value), top_k_correct(logits, labels, 1)};
  objective.backward(net);
  if (reducer) reducer->finish();
  optimizer.step();
  if (schedule) schedule->step();
  return result;
}


namespace detail {
/// Evaluation mode for as long as it lives; the network's own mode back on every path, exceptions included.
template <class T>
class EvaluationMode {
 public:
  explicit EvaluationMode(Sequential<T>& net) : net_(net), was_training_(net.training()) { net_.eval(); }
  ~EvaluationMode() { net_.set_training(was_training_); }
  EvaluationMode(const EvaluationMode&) = delete;
  EvaluationMode& operator=(const EvaluationMode&) = delete;

 private:
  Sequential<T>& net_;
  bool was_training_;
};
}  // namespace detail

/// Loss, top-1 and top-5 over in-memory images [N, C, H, W] in evaluation
/// mode (dropout off), batch by batch; the network's mode is restored after.
template <class T>
ClassificationMetrics evaluate(Sequential<T>& net, const Tensor<T>& images, const std::vector<int>& labels,
                               Index batch_size = 256) {
  const Shape s = shape_of(images);
  if (static_cast<Index>(labels.size()) != s.n) {
    throw ShapeError("evaluate (labels)", detail::concat("[", s.n, "]"), detail::concat("[", labels.size(), "]"));
  }
  detail::require_option(batch_size >= 1, "evaluate", "batch_size", ">= 1", batch_size);
  const detail::EvaluationMode<T> mode(net);
  SoftmaxCrossEntropy<T> loss;
  ClassificationMetrics metrics;
  Tensor<T> batch;
  std::vector<int> batch_labels;
  for (Index start = 0; start < s.n; start += batch_size) {
    const Index count = std::min(batch_size, s.n - start);
    resize(batch, Shape{count, s.c, s.h, s.w});
    std::copy(images.data() + start * s.per_sample(), images.data() + (start + count) * s.per_sample(), batch.data());
    batch_labels.assign(labels.begin() + start, labels.begin() + start + count);
    const Tensor<T>& logits = net.forward(batch);
    metrics.add(static_cast<double>(loss.forward(logits, batch_labels)), logits, batch_labels);
  }
  return metrics;
}

namespace detail {
struct NeverStop {
  bool operator()() const { return false; }
};

/// evaluate() over a loader with `value(logits, labels)` as the loss; ends early, before the next
/// batch, once `stop()` is true (the trainer's stop requests).
template <class T, class Value, class Stop = NeverStop>
ClassificationMetrics evaluate_loader(Sequential<T>& net, DataLoader& loader, ConfusionMatrix* confusion,
                                      std::optional<Index> max_batches, const Value& value, const Stop& stop = Stop()) {
  const EvaluationMode<T> mode(net);
  ClassificationMetrics metrics;
  Tensor<T> converted;
  Index done = 0;
  while (const Batch* batch = (stop() || (max_batches && done >= *max_batches)) ? nullptr : loader.next()) {
    ++done;
    if (batch->count() == 0) continue;  // a data-parallel slice of a batch smaller than the processes
    const Tensor<T>& logits = net.forward(batch_images(*batch, converted));
    metrics.add(static_cast<double>(value(logits, batch->labels)), logits, batch->labels);
    if (confusion) confusion->add(logits, batch->labels);
  }
  return metrics;
}
}  // namespace detail

namespace detail {
/// evaluate() with the objective's value as the loss (the cross-entropy without one); stops early
/// once `stop()` is true.
template <class T, class Stop = NeverStop>
ClassificationMetrics evaluate_with(Sequential<T>& net, DataLoader& loader, ConfusionMatrix* confusion,
                                    std::optional<Index> max_batches, Objective<T>* objective,
                                    const Stop& stop = Stop()) {
  SoftmaxCrossEntropy<T> cross_entropy;
  return evaluate_loader(net, loader, confusion, max_batches,
                         [&](const Tensor<T>& logits, const std::vector<int>& labels) {
                           return objective ? objective->forward(net, labels) : cross_entropy.forward(logits, labels);
                         },
                         stop);
}
}  // namespace detail

/// Loss, top-1 and top-5 over the batches of an epoch of `loader` (call
/// start_epoch first; at most `max_batches` of them when that is given),
/// in evaluation mode; fills `confusion` when given. The loss is the
/// objective's when one is given (a single loss: Objective(loss)), else the cross-entropy.
template <class T>
ClassificationMetrics evaluate(Sequential<T>& net, DataLoader& loader, ConfusionMatrix* confusion = nullptr,
                               std::optional<Index> max_batches = std::nullopt, Objective<T>* objective = nullptr) {
  return detail::evaluate_with<T>(net, loader, confusion, max_batches, objective);
}

}  // namespace convnet
