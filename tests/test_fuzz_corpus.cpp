// Replays the committed fuzz corpus (tests/fuzz/corpus/<target>/) through the
// fuzz targets, so every input the fuzzers kept - and every regression input
// added after a bug - runs in each test run, under the sanitizers too
// (make check-sanitize). A target aborts on anything but success or its
// loader's own error, which fails the test.
#include <gtest/gtest.h>

#include <convnet/checkpoint.hpp>
#include <convnet/data/cifar10.hpp>
#include <convnet/data/image_io.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <convnet/inference/classifier.hpp>

#include "fuzz/fuzz_targets.hpp"

namespace {

namespace fs = std::filesystem;
using namespace convnet;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Replays every file of one corpus folder; returns how many there were.
int replay(const std::string& target, int (*run)(const std::uint8_t*, std::size_t)) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(CONVNET_FUZZ_CORPUS_DIR) / target)) {
    const std::string bytes = read_bytes(entry.path());
    SCOPED_TRACE(entry.path().string());
    EXPECT_EQ(run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0);
    ++files;
  }
  return files;
}

// Decoding the picture at `path` (named `name` in errors) must fail with a message containing `expected`.
void expect_refused(const fs::path& path, const std::string& name, const std::string& expected) {
  const std::string bytes = read_bytes(path);
  try {
    decode_image_from_memory(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), name);
    ADD_FAILURE() << path << " was decoded";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(FuzzCorpus, Cifar10ReaderReplaysCleanly) { EXPECT_GE(replay("cifar10", convnet::fuzz::cifar10), 4); }
TEST(FuzzCorpus, Cifar100ReaderReplaysCleanly) { EXPECT_GE(replay("cifar100", convnet::fuzz::cifar100), 4); }
TEST(FuzzCorpus, IdxReaderReplaysCleanly) { EXPECT_GE(replay("idx", convnet::fuzz::idx), 5); }
TEST(FuzzCorpus, ImageDecoderReplaysCleanly) { EXPECT_GE(replay("image", convnet::fuzz::image), 9); }
TEST(FuzzCorpus, CheckpointLoaderReplaysCleanly) { EXPECT_GE(replay("checkpoint", convnet::fuzz::checkpoint), 4); }
TEST(FuzzCorpus, ConfigurationTextReplaysCleanly) { EXPECT_GE(replay("config", convnet::fuzz::config), 4); }
TEST(FuzzCorpus, TrainerCheckpointReplaysCleanly) {
  EXPECT_GE(replay("trainer_checkpoint", convnet::fuzz::trainer_checkpoint), 2);
}
TEST(FuzzCorpus, TransformsReplayCleanly) { EXPECT_GE(replay("transforms", convnet::fuzz::transforms), 3); }
TEST(FuzzCorpus, CommandLineReplaysCleanly) { EXPECT_GE(replay("command_line", convnet::fuzz::command_line), 3); }
TEST(FuzzCorpus, OnnxImporterReplaysCleanly) { EXPECT_GE(replay("onnx", convnet::fuzz::onnx), 4); }
TEST(FuzzCorpus, SavedNetworkReplaysCleanly) { EXPECT_GE(replay("saved_network", convnet::fuzz::saved_network), 2); }
TEST(FuzzCorpus, ResumeChecksReplayCleanly) { EXPECT_GE(replay("resume_checks", convnet::fuzz::resume_checks), 2); }

// The seeds are what they claim to be: the valid ones load, the broken ones are refused.
TEST(FuzzCorpus, SeedsAreValidWhereTheySayTheyAre) {
  const fs::path root = CONVNET_FUZZ_CORPUS_DIR;
  // The saved network's seed loads as predict would load it: its paths past the checks are reached.
  const Classifier saved = Classifier::from_checkpoint(Checkpoint::parse(convnet::fuzz::saved_network_seed()));
  EXPECT_EQ(saved.class_names(), (std::vector<std::string>{"cat", "dog", "bird"}));
  EXPECT_EQ(saved.input_size(), 8);
  for (const char* name : {"rgb.png", "rgb.bmp", "rgb.tga", "rgb.jpg", "grey_alpha.png", "tiny.ppm", "one_pixel.gif"}) {
    const std::string bytes = read_bytes(root / "image" / name);
    EXPECT_NO_THROW(decode_image_from_memory(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), name))
        << name;
  }
  expect_refused(root / "image/claims_100000x100000.ppm", "huge.ppm",
                 "huge.ppm claims 100000 x 100000 pixels, over the limit");
  // Found by fuzzing: a PNM header number too long for stb's int (signed overflow inside stb).
  expect_refused(root / "image/regression_pnm_header_int_overflow", "long.ppm",
                 "long.ppm: PNM header field 1 has 21 digits");
  // Found by fuzzing: a 16-bit PNM (maximum value over 255), which stb 2.27 converts with its 8-bit routine.
  expect_refused(root / "image/regression_pnm_16_bit", "deep.pgm", "deep.pgm: a 16-bit PNM (maximum value 2552)");
  // Found by fuzzing: JPEG Huffman tables declaring more than 256 codes (stb 2.27 writes past its table).
  for (const char* name : {"regression_jpeg_huffman_overflow.jpg", "regression_jpeg_huffman_overflow_truncated.jpg",
                           "regression_jpeg_huffman_overflow_fill_bytes.jpg"}) {
    expect_refused(root / "image" / name, name, "corrupt JPEG: a Huffman table at byte");
  }
  // Found by fuzzing: a PNG chunk claiming ~2 GB in a small file made stb allocate that much.
  expect_refused(root / "image/regression_png_chunk_claims_2gb.png", "big.png",
                 "big.png: corrupt PNG: the chunk at byte");
  const std::string cifar = read_bytes(root / "cifar10/two_records");
  const std::size_t zero = cifar.find('\0');
  const auto d = Cifar10Dataset::from_memory(reinterpret_cast<const std::uint8_t*>(cifar.data()) + zero + 1,
                                             cifar.size() - zero - 1, cifar.substr(0, zero));
  EXPECT_EQ(d.size(), 2);
  EXPECT_EQ(d.label(1), 9);
  const std::string ckpt = read_bytes(root / "checkpoint/valid").substr(1);
  EXPECT_NO_THROW(Checkpoint::parse(ckpt));
}

}  // namespace
