// L2-normalised embeddings for the pair and triplet losses.
//
// fc7 after its ReLU has no fixed scale, so a margin of 1 can mean "every
// negative pair is already far enough" from the first step (what our first
// contrastive run showed). Dividing each embedding by its norm puts every
// distance in [0, 2] (in [0, sqrt 2] for non-negative embeddings), where the
// originals' margins have a meaning.
//
//   detail::RowNormalizer   x = e / ||e|| row by row, and the chain rule back
//   NormalizedEmbeddingLoss any embedding loss on the normalised rows
//                           (make_loss builds it for "name(normalize=1)")
//
// A zero row is divided by 1e-6 instead of 0 (fc7 after a ReLU can be all 0):
// it stays 0 and its gradient stays finite.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"

namespace convnet {

namespace detail {
template <class T>
class RowNormalizer {
 public:
  /// The rows of `e` [n, dim, 1, 1] divided by their norms (kept until the next forward).
  const Tensor<T>& forward(const Tensor<T>& e) {
    const Shape s = shape_of(e);
    resize(x_, s);
    norm_.resize(static_cast<std::size_t>(s.n));
    for (Index a = 0; a < s.n; ++a) {
      const T* in = e.data() + a * s.c;
      T sum = 0;
      for (Index k = 0; k < s.c; ++k) sum += in[k] * in[k];
      const T norm = std::max(std::sqrt(sum), static_cast<T>(1e-6));
      norm_[static_cast<std::size_t>(a)] = norm;
      for (Index k = 0; k < s.c; ++k) x_.data()[a * s.c + k] = in[k] / norm;
    }
    return x_;
  }

  /// d(loss)/d(e) from d(loss)/d(x): (g - x <x, g>) / ||e|| row by row. `grad` may be `into`.
  void backward(const Tensor<T>& grad, Tensor<T>& into) const {
    const Shape s = shape_of(x_);
    if (&grad != &into) resize(into, s);
    for (Index a = 0; a < s.n; ++a) {
      const T* x = x_.data() + a * s.c;
      const T* g = grad.data() + a * s.c;
      T* out = into.data() + a * s.c;
      T dot = 0;
      for (Index k = 0; k < s.c; ++k) dot += x[k] * g[k];
      const T inv = T(1) / norm_[static_cast<std::size_t>(a)];
      for (Index k = 0; k < s.c; ++k) out[k] = (g[k] - x[k] * dot) * inv;
    }
  }

 private:
  Tensor<T> x_;
  std::vector<T> norm_;
};
}  // namespace detail

/// `inner` applied to the L2-normalised embedding; describe() adds normalize=1 to the inner loss's settings.
template <class T>
class NormalizedEmbeddingLoss : public Loss<T> {
 public:
  explicit NormalizedEmbeddingLoss(std::unique_ptr<Loss<T>> inner) : inner_(std::move(inner)) {
    if (!inner_ || inner_->input() != LossInput::Embedding) {
      throw ArgumentError("NormalizedEmbeddingLoss: the inner loss must read the embedding");
    }
  }
  std::string type_name() const override { return inner_->type_name(); }
  std::string describe() const override {
    const std::string inner = inner_->describe();
    if (!inner.empty() && inner.back() == ')') return inner.substr(0, inner.size() - 1) + ",normalize=1)";
    return inner + "(normalize=1)";
  }
  LossInput input() const override { return LossInput::Embedding; }
  bool normalizes_embedding() const override { return true; }
  Loss<T>& inner() { return *inner_; }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    detail::check_loss_input("NormalizedEmbeddingLoss", LossInput::Embedding, embedding, labels);
    ready_ = true;
    return inner_->forward(normalizer_.forward(embedding), labels);
  }
  const Tensor<T>& backward() override {
    if (!ready_) throw StateError("NormalizedEmbeddingLoss: backward called before forward");
    normalizer_.backward(inner_->backward(), grad_);
    return grad_;
  }

 private:
  std::unique_ptr<Loss<T>> inner_;
  detail::RowNormalizer<T> normalizer_;
  Tensor<T> grad_;
  bool ready_ = false;
};

}  // namespace convnet
