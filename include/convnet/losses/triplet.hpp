// TripletLoss: batch-hard triplet loss on an embedding (Hermans, Beyer and
// Leibe 2017, "In Defense of the Triplet Loss for Person Re-Identification").
//
// For every sample a of the batch (the anchor), mining picks inside the batch
//   the hardest positive  p = argmax over b != a with label b == label a of d(a, b)
//   the hardest negative  n = argmin over b with label b != label a of d(a, b)
// with d the Euclidean distance, and the anchor's loss is
//   max(0, margin + d(a, p) - d(a, n)).
// The loss is the mean over the anchors that have both a positive and a
// negative in the batch (zero when none has). Ties go to the lowest index.
//
// d(a, b) = sqrt(||e_a - e_b||^2 + eps), eps = 1e-12, so the gradient
// (e_a - e_b) / d stays finite when two embeddings coincide.
//
// Input: the embedding [N, D, 1, 1] (in AlexNet, fc7 after its ReLU); labels
// are class indices >= 0.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "../threading.hpp"
#include "loss.hpp"

namespace convnet {

struct TripletOptions {
  TripletOptions& margin(double v) { margin_ = v; return *this; }
  double margin() const { return margin_; }

 private:
  double margin_ = 1.0;
};

template <class T>
class TripletLoss : public Loss<T> {
 public:
  explicit TripletLoss(TripletOptions options = {}) : options_(options) {
    detail::require_option(options.margin() >= 0, "TripletLoss", "margin", ">= 0", options.margin());
  }
  std::string type_name() const override { return "triplet"; }
  std::string describe() const override { return detail::concat("triplet(margin=", options_.margin(), ")"); }
  LossInput input() const override { return LossInput::Embedding; }

  /// The samples mining chose for anchor a in the last forward (-1: none).
  int hardest_positive(Index a) const { return positive_.at(static_cast<std::size_t>(a)); }
  int hardest_negative(Index a) const { return negative_.at(static_cast<std::size_t>(a)); }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = detail::check_loss_input("TripletLoss", LossInput::Embedding, embedding, labels);
    const Index n = s.n, dim = s.c;
    const T* e = embedding.data();
    // Pairwise distances, computed directly (not through ||a||^2 + ||b||^2 - 2ab,
    // which cancels badly in float for nearby points).
    distances_.resize(static_cast<std::size_t>(n * n));
    detail::parallel_for(n, n * n * dim > 65536, [&](Index a, int) {
      for (Index b = 0; b < n; ++b) {
        T sum = 0;
        const T* x = e + a * dim;
        const T* y = e + b * dim;
        for (Index k = 0; k < dim; ++k) sum += (x[k] - y[k]) * (x[k] - y[k]);
        distances_[static_cast<std::size_t>(a * n + b)] = std::sqrt(sum + static_cast<T>(1e-12));
      }
    });
    positive_.assign(static_cast<std::size_t>(n), -1);
    negative_.assign(static_cast<std::size_t>(n), -1);
    resize(grad_, s);
    flat(grad_).setZero();
    const T margin = static_cast<T>(options_.margin());
    double total = 0;
    Index anchors = 0;
    for (Index a = 0; a < n; ++a) {
      int p = -1, q = -1;
      for (Index b = 0; b < n; ++b) {
        const T d = distances_[static_cast<std::size_t>(a * n + b)];
        if (labels[static_cast<std::size_t>(b)] == labels[static_cast<std::size_t>(a)]) {
          if (b != a && (p < 0 || d > distances_[static_cast<std::size_t>(a * n + p)])) p = static_cast<int>(b);
        } else if (q < 0 || d < distances_[static_cast<std::size_t>(a * n + q)]) {
          q = static_cast<int>(b);
        }
      }
      positive_[static_cast<std::size_t>(a)] = p;
      negative_[static_cast<std::size_t>(a)] = q;
      if (p >= 0 && q >= 0) ++anchors;
    }
    if (anchors == 0) {
      ready_ = true;
      return 0;
    }
    const T inv_anchors = T(1) / static_cast<T>(anchors);
    for (Index a = 0; a < n; ++a) {
      const int p = positive_[static_cast<std::size_t>(a)], q = negative_[static_cast<std::size_t>(a)];
      if (p < 0 || q < 0) continue;
      const T dp = distances_[static_cast<std::size_t>(a * n + p)];
      const T dn = distances_[static_cast<std::size_t>(a * n + q)];
      const T value = margin + dp - dn;
      if (value <= 0) continue;
      total += static_cast<double>(value);
      // d dp / d e_a = (e_a - e_p) / dp, d dn / d e_a = (e_a - e_n) / dn.
      T* ga = grad_.data() + a * dim;
      T* gp = grad_.data() + p * dim;
      T* gn = grad_.data() + q * dim;
      const T* ea = e + a * dim;
      const T* ep = e + p * dim;
      const T* en = e + q * dim;
      const T sp = inv_anchors / dp, sn = inv_anchors / dn;
      for (Index k = 0; k < dim; ++k) {
        const T up = (ea[k] - ep[k]) * sp, un = (ea[k] - en[k]) * sn;
        ga[k] += up - un;
        gp[k] -= up;
        gn[k] += un;
      }
    }
    ready_ = true;
    return static_cast<T>(total / static_cast<double>(anchors));
  }

  const Tensor<T>& backward() override {
    if (!ready_) throw std::logic_error("TripletLoss: backward called before forward");
    return grad_;
  }

 private:
  TripletOptions options_;
  std::vector<T> distances_;
  std::vector<int> positive_, negative_;
  Tensor<T> grad_;
  bool ready_ = false;
};

}  // namespace convnet
