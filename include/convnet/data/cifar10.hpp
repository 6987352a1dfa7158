// CIFAR-10 in the official binary layout (cifar-10-batches-bin/):
//   data_batch_1.bin ... data_batch_5.bin   training, 10,000 records each
//   test_batch.bin                          test, 10,000 records
//   batches.meta.txt                        the ten class names, one a line
// A record is 3,073 bytes: the label (0-9), then the picture (cifar_binary.hpp).
// The whole part is read into memory (150 MB for the training set).
#pragma once

#include <cstdint>
#include <string>

#include "cifar_binary.hpp"

namespace convnet {

enum class Cifar10Part { Train, Test };

class Cifar10Dataset : public CifarBinaryDataset {
 public:
  static constexpr Index kRecordBytes = 1 + kPixelBytes;  // 3,073

  /// Reads the training (data_batch_1..5) or test (test_batch) part from `dir`.
  Cifar10Dataset(const std::string& dir, Cifar10Part part) : CifarBinaryDataset(cifar10_layout()) {
    class_names_ = read_class_names(join(dir, "batches.meta.txt"), 10);
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
    d.class_names_ = parse_class_names(class_names, source + " class names", 10);
    d.append_records(records, size, source);
    return d;
  }

 private:
  static CifarLayout cifar10_layout() { return CifarLayout{"CIFAR-10", {10}, 0}; }
  Cifar10Dataset() : CifarBinaryDataset(cifar10_layout()) {}
};

}  // namespace convnet
