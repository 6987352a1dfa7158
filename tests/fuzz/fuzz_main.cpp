// libFuzzer entry point for one target, chosen at compile time:
//   clang++ -fsanitize=fuzzer,address,undefined -DCONVNET_FUZZ_TARGET=image ...
// (make fuzz builds all three).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return convnet::fuzz::CONVNET_FUZZ_TARGET(data, size);
}
