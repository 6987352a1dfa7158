// Loss<T>: the interface every loss shares, and the checks at its boundary.
//
// A loss reads one tensor of the network, [N, features, 1, 1], and a class
// index per sample, and returns the mean over the batch. Most losses read the
// logits (the network's output); a metric-learning loss such as the triplet
// loss reads an embedding (an inner layer's output) instead, which is what
// input() tells the training objective (objective.hpp).
//
// forward() remembers what backward() needs; backward() returns
// d(mean loss)/d(input) for the last forward, in a buffer the loss keeps, so a
// steady-state training step allocates nothing.
#pragma once

#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"

namespace convnet {

/// Which tensor of the network a loss reads.
enum class LossInput { Logits, Embedding };

template <class T>
class Loss {
 public:
  virtual ~Loss() = default;
  /// Which loss this is, as make_objective and the trainer's --loss name it ("cross-entropy", "hinge", ...).
  /// (A Layer's name() is its place in a network, "conv1"; a loss has no such name.)
  virtual std::string type_name() const = 0;
  /// The type with its settings ("triplet(margin=1)"), for logs and checkpoints.
  virtual std::string describe() const { return type_name(); }
  virtual LossInput input() const { return LossInput::Logits; }
  /// Whether the loss L2-normalises the embedding it reads, so that what it measures is cosine
  /// (an embedding classifier should then compare directions, not points).
  virtual bool normalizes_embedding() const { return false; }
  /// The mean loss over the batch.
  virtual T forward(const Tensor<T>& input, const std::vector<int>& labels) = 0;
  /// d(mean loss)/d(input) of the last forward.
  virtual const Tensor<T>& backward() = 0;
};

namespace detail {
/// Checks a loss's input and its labels. Logits must be [N >= 1, classes >= 1,
/// 1, 1] with one label per sample in [0, classes); an embedding
/// [N >= 1, features >= 1, 1, 1] with labels >= 0. Returns the shape.
template <class T>
Shape check_loss_input(const char* where, LossInput kind, const Tensor<T>& input,
                       const std::vector<int>& labels) {  // const char*: no string built unless it fails
  const Shape s = shape_of(input);
  const bool logits = kind == LossInput::Logits;
  if (s.n < 1 || s.c < 1 || s.h != 1 || s.w != 1) {
    throw ShapeError(std::string(where) + (logits ? " forward (logits)" : " forward (embedding)"),
                     logits ? "[N >= 1, classes >= 1, 1, 1]" : "[N >= 1, features >= 1, 1, 1]", s.str());
  }
  const Index classes = logits ? s.c : 0;
  if (static_cast<Index>(labels.size()) != s.n) {
    throw ShapeError(std::string(where) + " forward (labels)", concat("[", s.n, "] (one label per sample)"),
                     concat("[", labels.size(), "]"));
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || (classes > 0 && labels[i] >= classes)) {
      throw ArgumentError(classes > 0 ? concat(where, ": label ", labels[i], " of sample ", i,
                                                       " is outside [0, ", classes, ")")
                                              : concat(where, ": label ", labels[i], " of sample ", i,
                                                       " is negative"));
    }
  }
  return s;
}
}  // namespace detail

}  // namespace convnet
