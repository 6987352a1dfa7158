// HistogramLoss: Ustinova and Lempitsky 2016, "Learning Deep Embeddings with
// Histogram Loss" - the study's "histogram loss" row.
//
// Embeddings are L2-normalised (as in the paper), so the similarity of a pair
// is s = <x_a, x_b> in [-1, 1]. Every pair (a, b), a < b, of the batch goes to
// the positive or the negative set by its labels, and each set becomes a
// histogram over R nodes t_r = -1 + r * delta (r = 0 .. R-1, delta = 2 / (R-1))
// with linear assignment: a pair with t_k <= s <= t_{k+1} adds
// (t_{k+1} - s) / delta to bin k and (s - t_k) / delta to bin k+1; each
// histogram is divided by its number of pairs. The loss is the probability
// that a random negative pair is more similar than a random positive one,
//   L = sum over r of h-_r * (h+_0 + ... + h+_r),
// which is piecewise linear in every s, so its gradient flows through the
// assignment weights and the normalisation. R = 101 nodes (delta = 0.02) by
// default (our choice; the paper varies it). No positive or no negative pair: 0.
//
// Input: the embedding [N, D, 1, 1]; labels are class indices >= 0. A zero
// embedding is normalised as if its norm were 1e-6 (fc7 after a ReLU can be 0).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"

namespace convnet {

struct HistogramOptions {
  HistogramOptions& nodes(Index v) { nodes_ = v; return *this; }
  Index nodes() const { return nodes_; }

 private:
  Index nodes_ = 101;
};

template <class T>
class HistogramLoss : public Loss<T> {
 public:
  explicit HistogramLoss(HistogramOptions options = {}) : options_(options) {
    detail::require_option(options.nodes() >= 2 && options.nodes() <= 100000, "HistogramLoss", "nodes",
                           "in [2, 100000]", options.nodes());
  }
  std::string type_name() const override { return "histogram"; }
  std::string describe() const override { return detail::concat("histogram(nodes=", options_.nodes(), ")"); }
  bool normalizes_embedding() const override { return true; }
  LossInput input() const override { return LossInput::Embedding; }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = detail::check_loss_input("HistogramLoss", LossInput::Embedding, embedding, labels);
    const Index n = s.n, dim = s.c, R = options_.nodes();
    resize(grad_, s);
    flat(grad_).setZero();
    ready_ = true;
    // Normalised rows x and the norms.
    x_.resize(static_cast<std::size_t>(n * dim));
    norm_.resize(static_cast<std::size_t>(n));
    for (Index a = 0; a < n; ++a) {
      T sum = 0;
      for (Index k = 0; k < dim; ++k) sum += embedding.data()[a * dim + k] * embedding.data()[a * dim + k];
      norm_[static_cast<std::size_t>(a)] = std::max(std::sqrt(sum), static_cast<T>(1e-6));
      for (Index k = 0; k < dim; ++k) x_[static_cast<std::size_t>(a * dim + k)] = embedding.data()[a * dim + k] / norm_[static_cast<std::size_t>(a)];
    }
    Index positives = 0, negatives = 0;
    for (Index a = 0; a < n; ++a)
      for (Index b = a + 1; b < n; ++b) (same(labels, a, b) ? positives : negatives) += 1;
    if (positives == 0 || negatives == 0) return 0;
    const T delta = T(2) / static_cast<T>(R - 1);
    h_plus_.assign(static_cast<std::size_t>(R), T(0));
    h_minus_.assign(static_cast<std::size_t>(R), T(0));
    for (Index a = 0; a < n; ++a) {
      for (Index b = a + 1; b < n; ++b) {
        Index k;
        T w;
        locate(similarity(a, b, dim), delta, R, k, w);
        std::vector<T>& h = same(labels, a, b) ? h_plus_ : h_minus_;
        const T scale = T(1) / static_cast<T>(same(labels, a, b) ? positives : negatives);
        h[static_cast<std::size_t>(k)] += (1 - w) * scale;
        h[static_cast<std::size_t>(k + 1)] += w * scale;
      }
    }
    // L = sum_r h-_r cdf+_r;  dL/dh-_r = cdf+_r;  dL/dh+_q = sum over r >= q of h-_r.
    cdf_plus_.resize(static_cast<std::size_t>(R));
    tail_minus_.resize(static_cast<std::size_t>(R));
    double loss = 0;
    T running = 0;
    for (Index r = 0; r < R; ++r) {
      running += h_plus_[static_cast<std::size_t>(r)];
      cdf_plus_[static_cast<std::size_t>(r)] = running;
      loss += static_cast<double>(h_minus_[static_cast<std::size_t>(r)] * running);
    }
    running = 0;
    for (Index r = R; r-- > 0;) {
      running += h_minus_[static_cast<std::size_t>(r)];
      tail_minus_[static_cast<std::size_t>(r)] = running;
    }
    // dL/ds of each pair, then through s = <x_a, x_b> to the normalised rows (kept in grad_ for now).
    for (Index a = 0; a < n; ++a) {
      for (Index b = a + 1; b < n; ++b) {
        Index k;
        T w;
        locate(similarity(a, b, dim), delta, R, k, w);
        const bool positive = same(labels, a, b);
        const std::vector<T>& slope = positive ? tail_minus_ : cdf_plus_;
        const T scale = T(1) / static_cast<T>(positive ? positives : negatives);
        // h_k gets (1 - w), h_{k+1} gets w, with w = (s - t_k) / delta.
        const T ds = (slope[static_cast<std::size_t>(k + 1)] - slope[static_cast<std::size_t>(k)]) * scale / delta;
        for (Index j = 0; j < dim; ++j) {
          grad_.data()[a * dim + j] += ds * x_[static_cast<std::size_t>(b * dim + j)];
          grad_.data()[b * dim + j] += ds * x_[static_cast<std::size_t>(a * dim + j)];
        }
      }
    }
    // Through the normalisation: de = (dx - x <x, dx>) / ||e||.
    for (Index a = 0; a < n; ++a) {
      T dot = 0;
      for (Index j = 0; j < dim; ++j) dot += x_[static_cast<std::size_t>(a * dim + j)] * grad_.data()[a * dim + j];
      for (Index j = 0; j < dim; ++j) {
        T& g = grad_.data()[a * dim + j];
        g = (g - x_[static_cast<std::size_t>(a * dim + j)] * dot) / norm_[static_cast<std::size_t>(a)];
      }
    }
    return static_cast<T>(loss);
  }

  const Tensor<T>& backward() override {
    if (!ready_) throw StateError("HistogramLoss: backward called before forward");
    return grad_;
  }

 private:
  static bool same(const std::vector<int>& labels, Index a, Index b) {
    return labels[static_cast<std::size_t>(a)] == labels[static_cast<std::size_t>(b)];
  }
  T similarity(Index a, Index b, Index dim) const {
    T s = 0;
    for (Index j = 0; j < dim; ++j) s += x_[static_cast<std::size_t>(a * dim + j)] * x_[static_cast<std::size_t>(b * dim + j)];
    return s;
  }
  // The node k at or below s (k <= R - 2) and the weight w = (s - t_k) / delta in [0, 1].
  static void locate(T s, T delta, Index R, Index& k, T& w) {
    const T position = (std::min(std::max(s, T(-1)), T(1)) + 1) / delta;
    k = std::min(static_cast<Index>(position), R - 2);
    w = position - static_cast<T>(k);
  }

  HistogramOptions options_;
  std::vector<T> x_, norm_, h_plus_, h_minus_, cdf_plus_, tail_minus_;
  Tensor<T> grad_;
  bool ready_ = false;
};

}  // namespace convnet
