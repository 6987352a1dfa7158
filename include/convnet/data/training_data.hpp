// TrainingData: any of the study's datasets, or a folder of your own
// pictures, opened from one name and made ready for training - the training
// part, a validation part (its own files, or a seeded stratified split of the
// training part) and the test part when the dataset has one.
//
//   const auto data = TrainingData::open(DatasetSpec::parse("cifar100:data/cifar-100-binary"),
//                                        TrainingDataOptions().validation_fraction(0.1).seed(1));
//   data->train(), data->validation(), data->test() (nullptr without one), data->class_names()
//
// Kinds and their folders:
//   cifar10:DIR        cifar-10-batches-bin (data_batch_1-5.bin, test_batch.bin, batches.meta.txt)
//   cifar100:DIR       cifar-100-binary (train.bin, test.bin, fine/coarse_label_names.txt)
//   mnist:DIR          the four IDX files, plain or .gz
//   fashion-mnist:DIR  the same layout, Fashion-MNIST's classes
//   folder:DIR         DIR/train/<class>/... with DIR/val/ and DIR/test/ when they exist (ImageNet's
//                      layout), else DIR/<class>/... split for validation
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "cifar10.hpp"
#include "cifar100.hpp"
#include "dataset.hpp"
#include "idx.hpp"
#include "image_folder.hpp"

namespace convnet {

/// A kind of dataset TrainingData opens: its name, one line of help, and what the kind alone says of
/// its pictures (MNIST and CIFAR as published), so a run can be checked before any data is read.
struct DatasetKind {
  std::string name, help;
  Index picture_size = 0;    ///< every picture's side; 0: the pictures say (folders)
  Index channels = 3;        ///< 1 for grey datasets
  Index classes = 0;         ///< 0: the data says (folders)
  Index coarse_classes = 0;  ///< cifar100's 20 superclasses; 0 where the kind has no coarse labels
  bool in_memory = true;     ///< held in memory, so statistics over every picture are cheap

  bool shape_known() const { return picture_size > 0; }
  Index classes_for(Cifar100Labels labels) const {
    return labels == Cifar100Labels::Coarse && coarse_classes > 0 ? coarse_classes : classes;
  }
};

/// Every kind, in the order --help lists them: the one place a kind is named.
inline const std::vector<DatasetKind>& dataset_kinds() {
  static const std::vector<DatasetKind> kinds = {
      {"cifar10", "CIFAR-10 binary (data_batch_1-5.bin, test_batch.bin)", 32, 3, 10, 0, true},
      {"cifar100", "CIFAR-100 binary (train.bin, test.bin), fine or coarse labels", 32, 3, 100, 20, true},
      {"mnist", "MNIST's four IDX files, plain or .gz", 28, 1, 10, 0, true},
      {"fashion-mnist", "Fashion-MNIST, MNIST's layout", 28, 1, 10, 0, true},
      {"folder", "pictures in DIR/train/<class>/ (with val/ and test/ when there), or DIR/<class>/", 0, 3, 0, 0, false},
  };
  return kinds;
}

/// "cifar10, cifar100, mnist, fashion-mnist or folder".
inline std::string dataset_kind_list() {
  std::string list;
  const auto& kinds = dataset_kinds();
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    list += (i == 0 ? "" : i + 1 == kinds.size() ? " or " : ", ") + kinds[i].name;
  }
  return list;
}

/// The kind of that name; ArgumentError naming the known kinds otherwise.
inline const DatasetKind& dataset_kind(const std::string& name) {
  for (const auto& k : dataset_kinds()) {
    if (k.name == name) return k;
  }
  throw ArgumentError("unknown dataset kind '" + name + "': " + dataset_kind_list());
}

/// "kind:DIR" as a command line names a dataset.
struct DatasetSpec {
  std::string kind, dir;

  static DatasetSpec parse(const std::string& text) {
    const auto colon = text.find(':');
    DatasetSpec spec{text.substr(0, colon), colon == std::string::npos ? "" : text.substr(colon + 1)};
    bool known = false;
    for (const auto& k : dataset_kinds()) known = known || k.name == spec.kind;
    if (colon == std::string::npos || !known || spec.dir.empty()) {
      throw ArgumentError("dataset '" + text + "' must be kind:DIR with kind " + dataset_kind_list());
    }
    return spec;
  }
  std::string str() const { return kind + ":" + dir; }
  const DatasetKind& info() const { return dataset_kind(kind); }
  /// Pictures held in memory (every kind but folder): statistics over all of them are cheap.
  bool in_memory() const { return info().in_memory; }
};

struct TrainingDataOptions {
  /// Training pictures held out for validation when the dataset has no validation part of its own.
  TrainingDataOptions& validation_fraction(double v) { validation_fraction_ = v; return *this; }
  TrainingDataOptions& seed(std::uint64_t v) { seed_ = v; return *this; }
  /// cifar100: the 100 fine classes or the 20 coarse ones.
  TrainingDataOptions& cifar100_labels(Cifar100Labels v) { cifar100_labels_ = v; return *this; }
  /// folder: the options of its scan (by default the headers only: a corrupt picture is met, skipped
  /// and counted during training).
  TrainingDataOptions& folder(const ImageFolderOptions& v) { folder_ = v; return *this; }

  double validation_fraction() const { return validation_fraction_; }
  std::uint64_t seed() const { return seed_; }
  Cifar100Labels cifar100_labels() const { return cifar100_labels_; }
  const ImageFolderOptions& folder() const { return folder_; }

 private:
  double validation_fraction_ = 0.1;
  std::uint64_t seed_ = 1;
  Cifar100Labels cifar100_labels_ = Cifar100Labels::Fine;
  ImageFolderOptions folder_ = ImageFolderOptions().verify(false);
};

class TrainingData {
 public:
  static std::unique_ptr<TrainingData> open(const DatasetSpec& spec, const TrainingDataOptions& options = {}) {
    std::unique_ptr<TrainingData> d(new TrainingData());
    d->spec_ = spec;
    const std::string& dir = spec.dir;
    if (spec.kind == "cifar10") {
      d->set_parts(std::make_unique<Cifar10Dataset>(dir, Cifar10Part::Train), nullptr,
                   std::make_unique<Cifar10Dataset>(dir, Cifar10Part::Test), options);
      d->picture_size_ = 32;
      d->description_ = "CIFAR-10 from " + dir;
    } else if (spec.kind == "cifar100") {
      const auto labels = options.cifar100_labels();
      d->set_parts(std::make_unique<Cifar100Dataset>(dir, Cifar100Part::Train, labels), nullptr,
                   std::make_unique<Cifar100Dataset>(dir, Cifar100Part::Test, labels), options);
      d->picture_size_ = 32;
      d->description_ = std::string("CIFAR-100 (") + (labels == Cifar100Labels::Fine ? "100 fine" : "20 coarse") +
                        " classes) from " + dir;
    } else if (spec.kind == "mnist" || spec.kind == "fashion-mnist") {
      const auto names = spec.kind == "mnist" ? IdxDataset::mnist_classes() : IdxDataset::fashion_mnist_classes();
      auto train = std::make_unique<IdxDataset>(dir, IdxPart::Train, names);
      d->picture_size_ = train->height() == train->width() ? train->height() : 0;
      d->picture_channels_ = 1;
      d->set_parts(std::move(train), nullptr, std::make_unique<IdxDataset>(dir, IdxPart::Test, names), options);
      d->description_ = (spec.kind == "mnist" ? "MNIST from " : "Fashion-MNIST from ") + dir;
    } else {
      d->open_folder(dir, options);
    }
    return d;
  }

  const Dataset& train() const { return *train_; }
  const Dataset& validation() const { return *validation_; }
  /// The test part, or nullptr when the dataset has none (a folder without test/).
  const Dataset* test() const { return test_; }
  const std::vector<std::string>& class_names() const { return train_all_->class_names(); }
  /// The side of every picture (32 for CIFAR, 28 for MNIST), or 0 when they differ (folders).
  Index picture_size() const { return picture_size_; }
  /// 1 for grey datasets, else 3 (decoded pictures are RGB).
  Index picture_channels() const { return picture_channels_; }
  const DatasetSpec& spec() const { return spec_; }
  /// "CIFAR-10 from DIR: 45000 training / 5000 validation / 10000 test pictures".
  std::string describe() const {
    return detail::concat(description_, ": ", train_->size(), " training / ", validation_->size(), " validation",
                          validation_from_split_ ? " (held out)" : "", test_ ? detail::concat(" / ", test_->size(), " test") : "",
                          " pictures in ", class_names().size(), " classes", scan_note_);
  }

 private:
  TrainingData() = default;

  // Training part, its validation (own files, else a split of the training part), and the test part.
  void set_parts(std::unique_ptr<Dataset> train, std::unique_ptr<Dataset> validation, std::unique_ptr<Dataset> test,
                 const TrainingDataOptions& options) {
    train_all_ = keep(std::move(train));
    test_ = test ? keep(std::move(test)) : nullptr;
    if (validation) {
      train_ = train_all_;
      validation_ = keep(std::move(validation));
      return;
    }
    const Split split = stratified_split(*train_all_, options.validation_fraction(), options.seed());
    train_ = keep(std::make_unique<SubsetDataset>(*train_all_, split.train));
    // No fraction: validation is the training part itself (the trainer still needs one).
    validation_ = keep(std::make_unique<SubsetDataset>(*train_all_, split.validation.empty() ? split.train : split.validation));
    validation_from_split_ = !split.validation.empty();
  }

  void open_folder(const std::string& dir, const TrainingDataOptions& options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool layout = fs::is_directory(fs::path(dir) / "train", ec);
    auto train = std::make_unique<ImageFolderDataset>(layout ? (fs::path(dir) / "train").string() : dir, options.folder());
    ImageFolderOptions same_classes = options.folder();
    same_classes.class_names(train->class_names());  // val/ and test/ label as train/ does
    auto part = [&](const char* name) -> std::unique_ptr<ImageFolderDataset> {
      if (!layout || !fs::is_directory(fs::path(dir) / name, ec)) return nullptr;
      return std::make_unique<ImageFolderDataset>((fs::path(dir) / name).string(), same_classes);
    };
    auto val = part("val"), test = part("test");
    Index skipped = static_cast<Index>(train->skipped().size());
    if (val) skipped += static_cast<Index>(val->skipped().size());
    if (test) skipped += static_cast<Index>(test->skipped().size());
    if (skipped > 0) scan_note_ = detail::concat(" (", skipped, " unreadable files skipped at the scan)");
    set_parts(std::move(train), std::move(val), std::move(test), options);
    description_ = "image folder " + dir;
  }

  const Dataset* keep(std::unique_ptr<Dataset> d) {
    owned_.push_back(std::move(d));
    return owned_.back().get();
  }

  DatasetSpec spec_;
  std::vector<std::unique_ptr<Dataset>> owned_;
  const Dataset* train_all_ = nullptr;
  const Dataset* train_ = nullptr;
  const Dataset* validation_ = nullptr;
  const Dataset* test_ = nullptr;
  Index picture_size_ = 0, picture_channels_ = 3;
  bool validation_from_split_ = false;
  std::string description_, scan_note_;
};

}  // namespace convnet
