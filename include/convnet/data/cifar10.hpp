// CIFAR-10 in the official binary layout (cifar-10-batches-bin/):
//   data_batch_1.bin ... data_batch_5.bin   training, 10,000 records each
//   test_batch.bin                          test, 10,000 records
//   batches.meta.txt                        the ten class names, one a line
// A record is 3,073 bytes: the label (0-9), then 1,024 red, 1,024 green and
// 1,024 blue values of a 32 x 32 picture, rows top to bottom - already CHW.
// The whole part is read into memory (150 MB for the training set).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dataset.hpp"
#include "image.hpp"

namespace convnet {

enum class Cifar10Part { Train, Test };

class Cifar10Dataset : public Dataset {
 public:
  static constexpr Index kSide = 32;
  static constexpr Index kRecordBytes = 1 + 3 * kSide * kSide;  // 3,073

  /// Reads the training (data_batch_1..5) or test (test_batch) part from `dir`.
  Cifar10Dataset(const std::string& dir, Cifar10Part part) : dir_(dir) {
    class_names_ = read_class_names(join(dir, "batches.meta.txt"));
    if (part == Cifar10Part::Train) {
      for (int i = 1; i <= 5; ++i) read_file(join(dir, "data_batch_" + std::to_string(i) + ".bin"));
    } else {
      read_file(join(dir, "test_batch.bin"));
    }
  }

  /// A dataset from bytes in memory: `records` in the .bin layout and
  /// `class_names` as in batches.meta.txt; `source` names them in errors.
  static Cifar10Dataset from_memory(const std::uint8_t* records, std::size_t size, const std::string& class_names,
                                    const std::string& source = "(memory)") {
    Cifar10Dataset d;
    d.dir_ = source;
    d.class_names_ = parse_class_names(class_names, source + " class names");
    d.append_records(records, size, source);
    return d;
  }

  Index size() const override { return static_cast<Index>(labels_.size()); }
  int label(Index i) const override {
    check_index(i);
    return labels_[static_cast<std::size_t>(i)];
  }
  void load(Index i, Image& out) const override {
    check_index(i);
    out.resize(3, kSide, kSide);
    const std::uint8_t* src = pixels_.data() + i * (kRecordBytes - 1);
    for (Index k = 0; k < kRecordBytes - 1; ++k) out.pixels[static_cast<std::size_t>(k)] = src[k];
  }
  const std::vector<std::string>& class_names() const override { return class_names_; }

  /// The raw 3,072 bytes (CHW) of example i.
  const std::uint8_t* raw(Index i) const {
    check_index(i);
    return pixels_.data() + i * (kRecordBytes - 1);
  }

 private:
  static std::string join(const std::string& dir, const std::string& name) {
    return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
  }

  Cifar10Dataset() = default;

  static std::vector<std::string> read_class_names(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw DataError("cannot open CIFAR-10 class names " + path + ": " + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    return parse_class_names(text.str(), "CIFAR-10 class names " + path);
  }

  static std::vector<std::string> parse_class_names(const std::string& text, const std::string& source) {
    std::istringstream in(text);
    std::vector<std::string> names;
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) names.push_back(line);
      if (names.size() > 10) break;
    }
    if (names.size() != 10) {
      throw DataError(detail::concat(source, ": expected 10 names, found ", names.size() > 10 ? "more" : "",
                                     names.size() > 10 ? "" : std::to_string(names.size())));
    }
    return names;
  }

  void read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw DataError("cannot open CIFAR-10 file " + path + ": " + std::strerror(errno));
    const std::streamoff bytes = in.tellg();
    check_size(bytes, "CIFAR-10 file " + path);
    in.seekg(0);
    std::vector<std::uint8_t> buffer(static_cast<std::size_t>(bytes));
    if (!in.read(reinterpret_cast<char*>(buffer.data()), bytes)) {
      throw DataError("cannot read CIFAR-10 file " + path);
    }
    append_records(buffer.data(), buffer.size(), "CIFAR-10 file " + path);
  }

  static void check_size(std::streamoff bytes, const std::string& source) {
    if (bytes <= 0 || bytes % kRecordBytes != 0) {
      throw DataError(detail::concat(source, " has ", bytes, " bytes, not a positive multiple of the ", kRecordBytes,
                                     "-byte record (truncated or not CIFAR-10 binary)"));
    }
  }

  // Checks every label before keeping anything, so a bad file adds no records.
  void append_records(const std::uint8_t* bytes, std::size_t size, const std::string& source) {
    check_size(static_cast<std::streamoff>(size), source);
    const Index records = static_cast<Index>(size) / kRecordBytes;
    for (Index r = 0; r < records; ++r) {
      const std::uint8_t label = bytes[r * kRecordBytes];
      if (label > 9) {
        throw DataError(detail::concat(source, ", record ", r, " (byte ", r * kRecordBytes, "): label ",
                                       static_cast<int>(label), " is outside 0-9"));
      }
    }
    const std::size_t start = pixels_.size();
    pixels_.resize(start + static_cast<std::size_t>(records * (kRecordBytes - 1)));
    for (Index r = 0; r < records; ++r) {
      const std::uint8_t* rec = bytes + r * kRecordBytes;
      labels_.push_back(rec[0]);
      std::memcpy(pixels_.data() + start + static_cast<std::size_t>(r * (kRecordBytes - 1)), rec + 1,
                  static_cast<std::size_t>(kRecordBytes - 1));
    }
  }

  std::string dir_;
  std::vector<std::string> class_names_;
  std::vector<std::uint8_t> labels_;
  std::vector<std::uint8_t> pixels_;
};

}  // namespace convnet
