// SoftPnLoss: PN-Net's loss (Balntas, Johns, Tang and Mikolajczyk 2016,
// "PN-Net: Conjoined Triple Deep Network for Learning Local Image
// Descriptors") - the study's "SoftPN" row.
//
// The distance ratio loss (distance_ratio.hpp) with the harder of the
// triplet's two negative distances: for a triplet (a, p, n),
//   d+ = d(a, p),   d* = min(d(a, n), d(p, n))
//   loss = 2 sigmoid(d+ - d*)^2          (= ||(r+, r* - 1)||^2 of the softmax over d+ and d*)
// so the positive pair must be closer than the negative is to either of them.
// Mean over every triplet of the batch; no triplet: 0. A tie between the two
// negative distances takes d(a, n).
//
// Input: the embedding [N, D, 1, 1]; labels are class indices >= 0.
#pragma once

#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "distance_ratio.hpp"
#include "loss.hpp"
#include "pair_distances.hpp"

namespace convnet {

template <class T>
class SoftPnLoss : public Loss<T> {
 public:
  std::string type_name() const override { return "softpn"; }
  LossInput input() const override { return LossInput::Embedding; }

  T forward(const Tensor<T>& embedding, const std::vector<int>& labels) override {
    const Shape s = detail::check_loss_input("SoftPnLoss", LossInput::Embedding, embedding, labels);
    distances_.compute(embedding);
    resize(grad_, s);
    flat(grad_).setZero();
    ready_ = true;
    const Index triplets = detail::for_each_triplet(labels, [](Index, Index, Index) {});
    if (triplets == 0) return 0;
    const T scale = T(1) / static_cast<T>(triplets);
    double total = 0;
    detail::for_each_triplet(labels, [&](Index a, Index p, Index n) {
      const bool from_anchor = distances_(a, n) <= distances_(p, n);
      const Index near = from_anchor ? a : p;
      T value, slope;
      detail::ratio_term(distances_(a, p) - distances_(near, n), value, slope);
      total += static_cast<double>(value);
      distances_.add_gradient(a, p, slope * scale, grad_);
      distances_.add_gradient(near, n, -slope * scale, grad_);
    });
    return static_cast<T>(total / static_cast<double>(triplets));
  }

  const Tensor<T>& backward() override {
    if (!ready_) throw std::logic_error("SoftPnLoss: backward called before forward");
    return grad_;
  }

 private:
  detail::PairDistances<T> distances_;
  Tensor<T> grad_;
  bool ready_ = false;
};

}  // namespace convnet
