// The fuzz targets: the CIFAR-10, CIFAR-100 and IDX (MNIST, plain or gzip) readers, image decoding (stb_image behind our
// checks, header path and decoder), the checkpoint loader, a checkpoint's
// configuration text on its way to a network, the trainer's own checkpoint
// fields, the transforms on extreme shapes, and the command-line parser. Each
// takes arbitrary bytes and returns 0; the only outcomes allowed are success
// or the clear errors that path documents (DataError, CheckpointError,
// std::invalid_argument for options). Anything else - another exception, a
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
int cifar100(const std::uint8_t* data, std::size_t size);
int idx(const std::uint8_t* data, std::size_t size);
int image(const std::uint8_t* data, std::size_t size);
int checkpoint(const std::uint8_t* data, std::size_t size);
int config(const std::uint8_t* data, std::size_t size);
int trainer_checkpoint(const std::uint8_t* data, std::size_t size);
int transforms(const std::uint8_t* data, std::size_t size);
int command_line(const std::uint8_t* data, std::size_t size);
int onnx(const std::uint8_t* data, std::size_t size);
int saved_network(const std::uint8_t* data, std::size_t size);
int resume_checks(const std::uint8_t* data, std::size_t size);
/// Seeds of the two targets above: a small network saved with its structure, class names and
/// preparation; a trainer's last.ckpt at the end of its best epoch.
std::string saved_network_seed();
std::string resume_seed();

/// A valid checkpoint of the network the checkpoint target restores into
/// (after one SGD step, so it holds momentum buffers too): a seed.
std::string checkpoint_seed();
/// A checkpoint of the trainer the trainer_checkpoint target resumes, after one epoch and a half.
std::string trainer_checkpoint_seed();

}  // namespace convnet::fuzz
