// The three fuzz targets: the CIFAR-10 reader, image decoding (stb_image behind
// our checks) and the checkpoint loader. Each takes arbitrary bytes and
// returns 0; the only outcomes allowed are success or the loader's own error
// type (DataError, CheckpointError). Anything else - another exception, a
// crash, a sanitizer report, an inconsistent result (checked with abort()) -
// is a bug.
//
// Built two ways: by `make fuzz` with clang's libFuzzer (fuzz_main.cpp picks
// one target per executable), and into the test suite, which replays the
// committed corpus in tests/fuzz/corpus/<target>/ (test_fuzz_corpus.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace convnet::fuzz {

int cifar10(const std::uint8_t* data, std::size_t size);
int image(const std::uint8_t* data, std::size_t size);
int checkpoint(const std::uint8_t* data, std::size_t size);

/// A valid checkpoint of the network the checkpoint target restores into
/// (after one SGD step, so it holds momentum buffers too): a seed.
std::string checkpoint_seed();

}  // namespace convnet::fuzz
