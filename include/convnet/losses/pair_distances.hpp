// The pairwise Euclidean distances of a batch of embeddings, and the chain
// rule through them: what every pair and triplet loss of the study shares.
//
// d(a, b) = sqrt(||e_a - e_b||^2 + eps), eps = 1e-12, so the gradient
// (e_a - e_b) / d stays finite when two embeddings coincide. Distances are
// computed directly, not through ||a||^2 + ||b||^2 - 2 a.b, which cancels
// badly in float for nearby points.
//
// A loss records d(loss)/d(distance) of each pair it uses (add_gradient, or
// add_squared_gradient for d(loss)/d(distance^2)) and write_gradient turns
// them into d(loss)/d(embedding) in one pass, G = diag(W 1) E - W E with W the
// symmetrised coefficients: one n x n by n x dim product, however many
// triplets touched each pair (a triplet loss touches n^3 of them).
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../kernels/gemm.hpp"
#include "../tensor.hpp"
#include "../threading.hpp"
#include "loss.hpp"
#include "normalized_embedding.hpp"

namespace convnet::detail {

template <class T>
class PairDistances {
 public:
  /// Fills the n x n distances of `embedding` [n, dim, 1, 1].
  void compute(const Tensor<T>& embedding) {
    n_ = embedding.dimension(0);
    dim_ = embedding.dimension(1);
    e_ = embedding.data();
    d_.resize(static_cast<std::size_t>(n_ * n_));
    coef_.assign(static_cast<std::size_t>(n_ * n_), T(0));
    detail::parallel_for(n_, n_ * n_ * dim_ > 65536, [&](Index a, int) {
      for (Index b = 0; b < n_; ++b) {
        T sum = 0;
        const T* x = e_ + a * dim_;
        const T* y = e_ + b * dim_;
        for (Index k = 0; k < dim_; ++k) sum += (x[k] - y[k]) * (x[k] - y[k]);
        d_[static_cast<std::size_t>(a * n_ + b)] = std::sqrt(sum + static_cast<T>(1e-12));
      }
    });
  }

  T operator()(Index a, Index b) const { return d_[static_cast<std::size_t>(a * n_ + b)]; }
  Index size() const { return n_; }

  /// Records `scale` x d d(a, b) / d e: (e_a - e_b) / d for row a, its negative for row b.
  void add_gradient(Index a, Index b, T scale) { coef_[static_cast<std::size_t>(a * n_ + b)] += scale / (*this)(a, b); }
  /// Records `scale` x d (d(a, b)^2) / d e: 2 (e_a - e_b) for row a, its negative for row b (no division).
  void add_squared_gradient(Index a, Index b, T scale) { coef_[static_cast<std::size_t>(a * n_ + b)] += 2 * scale; }

  /// Writes into `grad` [n, dim] the gradient of everything recorded since compute():
  /// row a = sum over b of w_ab (e_a - e_b), w = C + C^T.
  void write_gradient(Tensor<T>& grad) {
    for (Index a = 0; a < n_; ++a) {
      for (Index b = a + 1; b < n_; ++b) {
        const T w = coef_[static_cast<std::size_t>(a * n_ + b)] + coef_[static_cast<std::size_t>(b * n_ + a)];
        coef_[static_cast<std::size_t>(a * n_ + b)] = coef_[static_cast<std::size_t>(b * n_ + a)] = w;
      }
      coef_[static_cast<std::size_t>(a * n_ + a)] = 0;
    }
    gemm(Transpose::No, Transpose::No, n_, dim_, n_, T(-1), coef_.data(), n_, e_, dim_, T(0), grad.data(), dim_);
    for (Index a = 0; a < n_; ++a) {
      T total = 0;
      for (Index b = 0; b < n_; ++b) total += coef_[static_cast<std::size_t>(a * n_ + b)];
      for (Index k = 0; k < dim_; ++k) grad.data()[a * dim_ + k] += total * e_[a * dim_ + k];
    }
  }

 private:
  std::vector<T> d_, coef_;  // distances, and d(loss)/d(distance) coefficients as recorded
  const T* e_ = nullptr;
  Index n_ = 0, dim_ = 0;
};

/// What every pair and triplet loss shares: the checks at the boundary, the distances and the
/// gradient buffer. A loss's forward begins with start() and records its pairs' coefficients in
/// distances_; distances_.write_gradient(grad_) turns them into the embedding's gradient.
template <class T>
class PairLoss : public Loss<T> {
 public:
  explicit PairLoss(const char* where) : where_(where) {}
  LossInput input() const override { return LossInput::Embedding; }
  const Tensor<T>& backward() override {
    if (!ready_) throw StateError(std::string(where_) + ": backward called before forward");
    return grad_;
  }

 protected:
  /// Checks the embedding and the labels, computes the distances (of the normalised rows when
  /// `normalizer` is given) and zeroes the gradient. Returns the embedding's shape.
  Shape start(const Tensor<T>& embedding, const std::vector<int>& labels, RowNormalizer<T>* normalizer = nullptr) {
    const Shape s = check_loss_input(where_, LossInput::Embedding, embedding, labels);
    distances_.compute(normalizer ? normalizer->forward(embedding) : embedding);
    resize(grad_, s);
    flat(grad_).setZero();
    ready_ = true;
    return s;
  }

  const char* where_;
  PairDistances<T> distances_;
  Tensor<T> grad_;

 private:
  bool ready_ = false;
};

}  // namespace convnet::detail
