#include "fuzz_targets.hpp"

#include <convnet/checkpoint.hpp>
#include <convnet/data/cifar10.hpp>
#include <convnet/data/image_io.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/layers/dropout.hpp>
#include <convnet/layers/relu.hpp>
#include <convnet/optim/sgd.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace convnet::fuzz {

namespace {
[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz target: %s\n", what);
  std::abort();
}
Sequential<float> small_network() {
  Sequential<float> net;
  net.add<Dense<float>>("fc1", DenseOptions(4, 3));
  net.add<ReLU<float>>("relu1");
  net.add<Dropout<float>>("drop1", DropoutOptions(0.5).seed(3));
  net.add<Dense<float>>("fc2", DenseOptions(3, 2));
  return net;
}
}  // namespace

std::string checkpoint_seed() {
  Sequential<float> net = small_network();
  Sgd<float> sgd(net.parameters(), SgdOptions(0.1).momentum(0.9));
  StepLR schedule(StepLROptions(0.1, 2));
  Tensor<float> x(2, 4, 1, 1);
  x.setConstant(0.5f);
  net.forward(x);
  Tensor<float> g(2, 2, 1, 1);
  g.setConstant(1.0f);
  net.backward(g);
  sgd.step();
  schedule.step();
  Checkpoint c;
  save_training_state(c, net, &sgd, &schedule);
  c.set_text("note", "fuzz seed");
  return c.serialize();
}

// Input: the class-names text, a zero byte, then the records.
int cifar10(const std::uint8_t* data, std::size_t size) {
  const auto* zero = static_cast<const std::uint8_t*>(std::memchr(data, 0, size));
  const std::size_t names = zero ? static_cast<std::size_t>(zero - data) : size;
  const std::size_t records = zero ? size - names - 1 : 0;
  try {
    const Cifar10Dataset d = Cifar10Dataset::from_memory(zero ? zero + 1 : data + size, records,
                                                         std::string(reinterpret_cast<const char*>(data), names));
    if (d.size() * Cifar10Dataset::kRecordBytes != static_cast<Index>(records)) fail("record count");
    if (d.class_names().size() != 10) fail("class names");
    Image image;
    for (Index i = 0; i < d.size(); ++i) {
      if (d.label(i) < 0 || d.label(i) > 9) fail("label outside 0-9");
      d.load(i, image);
      if (image.pixels.size() != 3 * 32 * 32) fail("image size");
    }
  } catch (const DataError&) {
  }
  return 0;
}

int image(const std::uint8_t* data, std::size_t size) {
  ImageLimits limits;
  limits.max_pixels(1 << 22);  // keeps the fuzzer within its memory limit; the check is the same
  try {
    const Image image = decode_image_from_memory(data, size, "fuzz input", limits);
    if (image.channels != 3 || image.height < 1 || image.width < 1 ||
        image.pixels.size() != static_cast<std::size_t>(3 * image.height * image.width)) {
      fail("decoded image has an inconsistent shape");
    }
  } catch (const DataError&) {
  }
  return 0;
}

// The first byte chooses whether the header's payload size and checksum are
// recomputed over the rest (so mutations reach the entries instead of
// stopping at the checksum) or left as they are (so the header checks are
// fuzzed too). A parsed checkpoint is then restored into a small network
// with an optimizer, which validates everything before it changes anything.
int checkpoint(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) && bytes.size() >= Checkpoint::kHeaderSize) {
    const std::uint64_t payload = bytes.size() - Checkpoint::kHeaderSize;
    std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, as the format says
    for (std::size_t i = Checkpoint::kHeaderSize; i < bytes.size(); ++i) {
      h ^= static_cast<unsigned char>(bytes[i]);
      h *= 0x100000001b3ULL;
    }
    std::memcpy(&bytes[16], &payload, 8);
    std::memcpy(&bytes[24], &h, 8);
  }
  Sequential<float> net = small_network();
  Sgd<float> sgd(net.parameters(), SgdOptions(0.1).momentum(0.9));
  StepLR schedule(StepLROptions(0.1, 2));
  try {
    const Checkpoint c = Checkpoint::parse(bytes, "fuzz input", CheckpointLimits().tensor_elements(1 << 20));
    restore_training_state(c, net, &sgd, &schedule);
  } catch (const CheckpointError&) {
  }
  return 0;
}

}  // namespace convnet::fuzz
