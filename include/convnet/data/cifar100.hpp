// CIFAR-100 in the official binary layout (cifar-100-binary/):
//   train.bin                 training, 50,000 records
//   test.bin                  test, 10,000 records
//   coarse_label_names.txt    the 20 superclass names, one a line
//   fine_label_names.txt      the 100 class names, one a line
// A record is 3,074 bytes: the coarse label (0-19), the fine label (0-99),
// then the picture (cifar_binary.hpp). Both labels are checked whichever one
// the dataset gives.
#pragma once

#include <cstdint>
#include <string>

#include "cifar_binary.hpp"

namespace convnet {

enum class Cifar100Part { Train, Test };
enum class Cifar100Labels { Fine, Coarse };

class Cifar100Dataset : public CifarBinaryDataset {
 public:
  static constexpr Index kRecordBytes = 2 + kPixelBytes;  // 3,074

  /// Reads train.bin or test.bin from `dir`, labelled with the 100 fine or the 20 coarse classes.
  Cifar100Dataset(const std::string& dir, Cifar100Part part, Cifar100Labels labels = Cifar100Labels::Fine)
      : CifarBinaryDataset(cifar100_layout(labels)) {
    const bool fine = labels == Cifar100Labels::Fine;
    class_names_ = read_class_names(join(dir, fine ? "fine_label_names.txt" : "coarse_label_names.txt"), fine ? 100 : 20);
    read_file(join(dir, part == Cifar100Part::Train ? "train.bin" : "test.bin"));
  }

  /// A dataset from bytes in memory: `records` in the .bin layout and `class_names` (100 fine or 20
  /// coarse, as `labels` says); `source` names them in errors.
  static Cifar100Dataset from_memory(const std::uint8_t* records, std::size_t size, const std::string& class_names,
                                     Cifar100Labels labels, const std::string& source = "(memory)") {
    Cifar100Dataset d(labels);
    d.class_names_ = parse_class_names(class_names, source + " class names", labels == Cifar100Labels::Fine ? 100 : 20);
    d.append_records(records, size, source);
    return d;
  }

 private:
  static CifarLayout cifar100_layout(Cifar100Labels labels) {
    return CifarLayout{"CIFAR-100", {20, 100}, labels == Cifar100Labels::Fine ? std::size_t{1} : std::size_t{0}};
  }
  explicit Cifar100Dataset(Cifar100Labels labels) : CifarBinaryDataset(cifar100_layout(labels)) {}
};

}  // namespace convnet
