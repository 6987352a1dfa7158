// A layer's output computed on a given number of threads: the tests that hold a layer or kernel
// to the same result whatever the thread count (test_layers.cpp, test_kernels.cpp).
#pragma once

#include <convnet/layer.hpp>
#include <convnet/tensor.hpp>
#include <convnet/threading.hpp>

namespace convnet::testing {

// The layer's output for x computed on `threads` threads (the setting is restored).
inline Tensor<float> forward_on_threads(Layer<float>& layer, const Tensor<float>& x, int threads) {
  const int before = num_threads();
  set_num_threads(threads);
  Tensor<float> y = layer.forward(x);
  set_num_threads(before);
  return y;
}

}  // namespace convnet::testing
