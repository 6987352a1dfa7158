// CosineSimilarityLoss: one minus the cosine similarity between the softmax of
// the logits and the one-hot target.
//
// With p = softmax(x) and true class t, cos(p, onehot(t)) = p_t / ||p||, so
//   L = 1 - p_t / ||p||,  averaged over the batch; L is in [0, 1).
// ||p|| >= 1/sqrt(classes) > 0 and p comes from the stable softmax (the
// largest logit subtracted first), so the loss is finite for any logits.
//
// Backward goes through the softmax: with g = dL/dp,
//   g_j = -[j == t] / ||p|| + p_t p_j / ||p||^3,
//   dL/dx_i = p_i (g_i - sum_j p_j g_j),
// divided by the batch size.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "loss.hpp"

namespace convnet {

template <class T>
class CosineSimilarityLoss : public Loss<T> {
 public:
  std::string type_name() const override { return "cosine"; }

  T forward(const Tensor<T>& logits, const std::vector<int>& labels) override {
    const Shape s = detail::check_loss_input("CosineSimilarityLoss", LossInput::Logits, logits, labels);
    resize(grad_, s);
    const T inv_n = T(1) / static_cast<T>(s.n);
    double total = 0;
    for (Index n = 0; n < s.n; ++n) {
      const T* x = logits.data() + n * s.c;
      T* g = grad_.data() + n * s.c;  // holds p first, then the gradient
      const Index t = labels[static_cast<std::size_t>(n)];
      const T max_value = *std::max_element(x, x + s.c);
      T sum = 0;
      for (Index j = 0; j < s.c; ++j) sum += (g[j] = std::exp(x[j] - max_value));
      T squares = 0;
      for (Index j = 0; j < s.c; ++j) {
        g[j] /= sum;
        squares += g[j] * g[j];
      }
      const T norm = std::sqrt(squares);
      const T pt = g[t];
      total += 1.0 - static_cast<double>(pt / norm);
      // dL/dp_j, and sum_j p_j dL/dp_j, then through the softmax.
      const T cube = norm * norm * norm;
      T dot = 0;
      for (Index j = 0; j < s.c; ++j) dot += g[j] * (pt * g[j] / cube);
      dot -= pt / norm;  // the -[j == t] / ||p|| term times p_t
      for (Index j = 0; j < s.c; ++j) {
        const T dp = pt * g[j] / cube - (j == t ? T(1) / norm : T(0));
        g[j] = g[j] * (dp - dot) * inv_n;
      }
    }
    ready_ = true;
    return static_cast<T>(total / static_cast<double>(s.n));
  }

  const Tensor<T>& backward() override {
    if (!ready_) throw StateError("CosineSimilarityLoss: backward called before forward");
    return grad_;
  }

 private:
  Tensor<T> grad_;
  bool ready_ = false;
};

}  // namespace convnet
