// The binary layout shared by CIFAR-10 and CIFAR-100: fixed-size records of
// label bytes followed by 1,024 red, 1,024 green and 1,024 blue values of a
// 32 x 32 picture, rows top to bottom (already CHW). CIFAR-10 has one label
// byte (0-9); CIFAR-100 two (coarse 0-19, then fine 0-99). One reader for
// both, so their checks and messages cannot drift apart.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../regular_file.hpp"
#include "dataset.hpp"
#include "image.hpp"

namespace convnet {

/// What a CIFAR file holds: its name in messages, the label bytes of a record with the number of
/// classes each may take, and which of them is the label the dataset gives.
struct CifarLayout {
  std::string name;                  ///< "CIFAR-10", in every message
  std::vector<int> label_classes;    ///< one entry a label byte: its classes ({10}, or {20, 100})
  std::size_t label_used = 0;        ///< which label byte label() returns
  Index record_bytes() const { return static_cast<Index>(label_classes.size()) + 3 * 32 * 32; }
  int classes() const { return label_classes[label_used]; }
};

/// Records of one layout read into memory (150 MB for a 50,000-picture training part).
class CifarBinaryDataset : public Dataset {
 public:
  static constexpr Index kSide = 32;
  static constexpr Index kPixelBytes = 3 * kSide * kSide;  // 3,072

  Index size() const override { return static_cast<Index>(labels_.size()); }
  int label(Index i) const override {
    check_index(i);
    return labels_[static_cast<std::size_t>(i)];
  }
  void load(Index i, Image& out) const override {
    check_index(i);
    out.resize(3, kSide, kSide);
    const std::uint8_t* src = raw(i);
    for (Index k = 0; k < kPixelBytes; ++k) out.pixels[static_cast<std::size_t>(k)] = src[k];
  }
  const std::vector<std::string>& class_names() const override { return class_names_; }

  /// The raw 3,072 bytes (CHW) of example i.
  const std::uint8_t* raw(Index i) const {
    check_index(i);
    return pixels_.data() + i * kPixelBytes;
  }
  const CifarLayout& layout() const { return layout_; }

 protected:
  explicit CifarBinaryDataset(CifarLayout layout) : layout_(std::move(layout)) {}

  static std::string join(const std::string& dir, const std::string& name) {
    return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
  }

  /// The class names of a names file (one a line, blank lines ignored): exactly `expected` of them.
  /// (Through the bounded reader: at most kMaxNamesBytes of a regular file.)
  std::vector<std::string> read_class_names(const std::string& path, int expected) const {
    std::string text;
    if (const auto refusal = read_regular_file(path, kMaxNamesBytes, text)) {
      if (refusal->kind == FileRefusal::Kind::CannotOpen) {
        throw DataError("cannot open " + layout_.name + " class names " + path + ": " + refusal->detail);
      }
      throw DataError(layout_.name + " class names " + path + " " + refusal_text(*refusal, kMaxNamesBytes, "64 KiB"));
    }
    return parse_class_names(text, layout_.name + " class names " + path, expected);
  }
  static constexpr std::uint64_t kMaxNamesBytes = 65536;  ///< 100 names of 655 bytes

  static std::vector<std::string> parse_class_names(const std::string& text, const std::string& source,
                                                    int expected) {
    std::istringstream in(text);
    std::vector<std::string> names;
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) names.push_back(line);
      if (names.size() > static_cast<std::size_t>(expected)) break;
    }
    if (names.size() != static_cast<std::size_t>(expected)) {
      throw DataError(detail::concat(source, ": expected ", expected, " names, found ",
                                     names.size() > static_cast<std::size_t>(expected) ? "more"
                                                                                        : std::to_string(names.size())));
    }
    return names;
  }

  /// A batch file: a regular file of at most kMaxRecords records (CIFAR-100's train.bin has 50,000).
  void read_file(const std::string& path) {
    const std::string source = layout_.name + " file " + path;
    const auto max_bytes = static_cast<std::uint64_t>(kMaxRecords * layout_.record_bytes());
    std::vector<std::uint8_t> buffer;
    if (const auto refusal = read_regular_file(path, max_bytes, buffer)) {
      if (refusal->kind == FileRefusal::Kind::CannotOpen) throw DataError("cannot open " + source + ": " + refusal->detail);
      throw DataError(source + " " + refusal_text(*refusal, max_bytes, "100,000 records"));
    }
    append_records(buffer.data(), buffer.size(), source);
  }
  static constexpr Index kMaxRecords = 100000;

  // Checks every label before keeping anything, so a bad file adds no records.
  void append_records(const std::uint8_t* bytes, std::size_t size, const std::string& source) {
    check_size(static_cast<std::streamoff>(size), source);
    const Index record = layout_.record_bytes(), records = static_cast<Index>(size) / record;
    const std::size_t label_bytes = layout_.label_classes.size();
    for (Index r = 0; r < records; ++r) {
      for (std::size_t b = 0; b < label_bytes; ++b) {
        const int label = bytes[r * record + static_cast<Index>(b)];
        if (label >= layout_.label_classes[b]) {
          throw DataError(detail::concat(source, ", record ", r, " (byte ", r * record + static_cast<Index>(b), "): ",
                                         label_bytes > 1 ? (b == 0 ? "coarse " : "fine ") : "", "label ", label,
                                         " is outside 0-", layout_.label_classes[b] - 1));
        }
      }
    }
    const std::size_t start = pixels_.size();
    pixels_.resize(start + static_cast<std::size_t>(records * kPixelBytes));
    for (Index r = 0; r < records; ++r) {
      const std::uint8_t* rec = bytes + r * record;
      labels_.push_back(rec[layout_.label_used]);
      std::memcpy(pixels_.data() + start + static_cast<std::size_t>(r * kPixelBytes), rec + label_bytes,
                  static_cast<std::size_t>(kPixelBytes));
    }
  }

  std::vector<std::string> class_names_;

 private:
  void check_size(std::streamoff bytes, const std::string& source) const {
    const Index record = layout_.record_bytes();
    if (bytes <= 0 || bytes % record != 0) {
      throw DataError(detail::concat(source, " has ", bytes, " bytes, not a positive multiple of the ", record,
                                     "-byte record (truncated or not ", layout_.name, " binary)"));
    }
  }

  CifarLayout layout_;
  std::vector<std::uint8_t> labels_;
  std::vector<std::uint8_t> pixels_;
};

}  // namespace convnet
