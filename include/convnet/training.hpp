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
#include <vector>

#include "data/loader.hpp"
#include "errors.hpp"
#include "losses/softmax_cross_entropy.hpp"
#include "metrics.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedules.hpp"
#include "sequential.hpp"

namespace convnet {

/// Thrown when the loss of a step is NaN or infinite.
class NonFiniteLossError : public std::runtime_error {
 public:
  explicit NonFiniteLossError(const std::string& what) : std::runtime_error(what) {}
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

/// One optimisation step on a batch. With a schedule, its rate (and momentum,
/// for one-cycle) is used for this step and it advances by one step afterwards.
template <class T>
StepResult train_step(Sequential<T>& net, SoftmaxCrossEntropy<T>& loss, Optimizer<T>& optimizer,
                      const Tensor<T>& images, const std::vector<int>& labels, LrSchedule* schedule = nullptr) {
  if (schedule) {
    optimizer.set_learning_rate(schedule->learning_rate());
    if (schedule->momentum() >= 0) optimizer.set_momentum(schedule->momentum());
  }
  optimizer.zero_grad();
  const Tensor<T>& logits = net.forward(images);
  const T value = loss.forward(logits, labels);
  if (!std::isfinite(value)) {
    throw NonFiniteLossError(detail::concat("training stopped: the loss became ", value, " at optimizer step ",
                                            optimizer.steps() + 1, " (learning rate ", optimizer.learning_rate(),
                                            "); ", detail::first_non_finite(net, images)));
  }
  StepResult result{static_cast<double>(value), top_k_correct(logits, labels, 1)};
  net.backward(loss.backward());
  optimizer.step();
  if (schedule) schedule->step();
  return result;
}

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
  const bool was_training = net.training();
  net.eval();
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
  net.set_training(was_training);
  return metrics;
}

/// Loss, top-1 and top-5 over the batches of an epoch of `loader` (call
/// start_epoch first; at most `max_batches` of them when that is positive),
/// in evaluation mode; fills `confusion` when given.
template <class T>
ClassificationMetrics evaluate(Sequential<T>& net, DataLoader& loader, ConfusionMatrix* confusion = nullptr,
                               Index max_batches = 0) {
  const bool was_training = net.training();
  net.eval();
  SoftmaxCrossEntropy<T> loss;
  ClassificationMetrics metrics;
  Tensor<T> converted;
  Index done = 0;
  while (const Batch* batch = (max_batches > 0 && done >= max_batches) ? nullptr : loader.next()) {
    ++done;
    const Tensor<T>* input;
    if constexpr (std::is_same<T, float>::value) {
      input = &batch->images;
    } else {
      converted = batch->images.template cast<T>();
      input = &converted;
    }
    const Tensor<T>& logits = net.forward(*input);
    metrics.add(static_cast<double>(loss.forward(logits, batch->labels)), logits, batch->labels);
    if (confusion) confusion->add(logits, batch->labels);
  }
  net.set_training(was_training);
  return metrics;
}

}  // namespace convnet
