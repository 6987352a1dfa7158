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

#include "distance_ratio.hpp"

namespace convnet {

template <class T>
class SoftPnLoss : public detail::SoftmaxRatioLoss<T, true> {
 public:
  SoftPnLoss() : detail::SoftmaxRatioLoss<T, true>("SoftPnLoss") {}
  std::string type_name() const override { return "softpn"; }
};

}  // namespace convnet
