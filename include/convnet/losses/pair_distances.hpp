// The pairwise Euclidean distances of a batch of embeddings, and the chain
// rule through them: what every pair and triplet loss of the study shares.
//
// d(a, b) = sqrt(||e_a - e_b||^2 + eps), eps = 1e-12, so the gradient
// (e_a - e_b) / d stays finite when two embeddings coincide. Distances are
// computed directly, not through ||a||^2 + ||b||^2 - 2 a.b, which cancels
// badly in float for nearby points.
#pragma once

#include <cmath>
#include <vector>

#include "../tensor.hpp"
#include "../threading.hpp"

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

  /// Adds `scale` x d d(a, b) / d e to `grad` [n, dim]: (e_a - e_b) / d to row a, its negative to row b.
  void add_gradient(Index a, Index b, T scale, Tensor<T>& grad) const {
    const T s = scale / (*this)(a, b);
    T* ga = grad.data() + a * dim_;
    T* gb = grad.data() + b * dim_;
    const T* ea = e_ + a * dim_;
    const T* eb = e_ + b * dim_;
    for (Index k = 0; k < dim_; ++k) {
      const T u = (ea[k] - eb[k]) * s;
      ga[k] += u;
      gb[k] -= u;
    }
  }

  /// Adds `scale` x d (d(a, b)^2) / d e: 2 (e_a - e_b) to row a, its negative to row b (no division).
  void add_squared_gradient(Index a, Index b, T scale, Tensor<T>& grad) const {
    T* ga = grad.data() + a * dim_;
    T* gb = grad.data() + b * dim_;
    const T* ea = e_ + a * dim_;
    const T* eb = e_ + b * dim_;
    for (Index k = 0; k < dim_; ++k) {
      const T u = 2 * (ea[k] - eb[k]) * scale;
      ga[k] += u;
      gb[k] -= u;
    }
  }

 private:
  std::vector<T> d_;
  const T* e_ = nullptr;
  Index n_ = 0, dim_ = 0;
};

}  // namespace convnet::detail
