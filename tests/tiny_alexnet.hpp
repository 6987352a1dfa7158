// A quarter-width CIFAR AlexNet on 16 x 16 inputs, and random data for it: the network of the
// training-step tests (test_train.cpp) and of the checkpoint tests (test_checkpoint.cpp).
#pragma once

#include <convnet/models/alexnet.hpp>
#include <convnet/random.hpp>
#include <convnet/tensor.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace convnet::testing {

// A quarter-width CIFAR AlexNet on 16 x 16 inputs: the same eight layers, small enough for a test.
inline AlexNetConfig tiny_config() {
  AlexNetConfig c = AlexNetConfig::named("cifar").width(0.25).init(AlexNetInit::He);
  c.input_size(16);
  return c;
}

struct TinyData {
  Tensor<float> images;
  std::vector<int> labels;
  TinyData(Index n, std::uint64_t seed) : images(n, 3, 16, 16), labels(static_cast<std::size_t>(n)) {
    Rng rng(seed);
    for (Index i = 0; i < images.size(); ++i) images.data()[i] = static_cast<float>(rng.uniform(-1, 1));
    for (auto& l : labels) l = static_cast<int>(rng.below(10));
  }
};

}  // namespace convnet::testing
