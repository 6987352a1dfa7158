// A view of one trainable tensor and its gradient, as optimizers see it.
#pragma once

#include <string>
#include <vector>

#include "tensor.hpp"

namespace convnet {

/// A parameter's name and shape alone: what a network will hold, before it is built.
struct ParameterShape {
  std::string name;
  std::vector<Index> shape;
};

template <class T>
struct Parameter {
  std::string name;          ///< "weight" or "bias"; containers prefix the layer name ("conv1.weight").
  std::vector<Index> shape;  ///< PyTorch's layout: conv [C_out, C_in/groups, kh, kw], dense [out, in], bias [C].
  T* value = nullptr;
  T* grad = nullptr;
  Index size = 0;
  bool weight_decay = true;  ///< false for biases: optimizers may skip decay where this is false.

  VectorMap<T> values() const { return VectorMap<T>(value, size); }
  VectorMap<T> grads() const { return VectorMap<T>(grad, size); }
};

}  // namespace convnet
