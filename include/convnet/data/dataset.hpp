// Dataset: labelled pictures addressed by index, and views of one.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../random.hpp"
#include "image.hpp"

namespace convnet {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual Index size() const = 0;
  virtual int label(Index i) const = 0;
  /// Decodes example i into `out` (values 0-255, CHW). Must be safe to call from several threads.
  virtual void load(Index i, Image& out) const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;
  Index classes() const { return static_cast<Index>(class_names().size()); }

 protected:
  void check_index(Index i) const {
    if (i < 0 || i >= size()) {
      throw LookupError(detail::concat("dataset index ", i, " is outside [0, ", size(), ")"));
    }
  }
};

namespace detail {
/// How many unreadable pictures in a row a skipping reader passes over before it gives up: enough
/// for a corrupt file here and there, few enough that a folder of unreadable files fails at once.
constexpr Index kMaxUnreadableInARow = 1000;

/// Loads the first example of index_at(0), index_at(1), ... that reads, at most `attempts` of them,
/// through load(index, out) (a dataset's load, or a load and its transforms): a DataError calls
/// on_skip(error) and moves on; the last one is rethrown. Returns the index loaded.
template <class Load, class IndexAt, class OnSkip>
Index load_first_readable_with(Load load, Image& out, Index attempts, IndexAt index_at, OnSkip on_skip) {
  for (Index step = 0;; ++step) {
    const Index index = index_at(step);
    try {
      load(index, out);
      return index;
    } catch (const DataError& e) {
      if (step + 1 >= attempts) throw;
      on_skip(e);
    }
  }
}
template <class IndexAt, class OnSkip>
Index load_first_readable(const Dataset& data, Image& out, Index attempts, IndexAt index_at, OnSkip on_skip) {
  return load_first_readable_with([&](Index i, Image& image) { data.load(i, image); }, out, attempts, index_at,
                                  on_skip);
}
}  // namespace detail

/// The examples of `base` at `indices`, in that order (base must outlive it).
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(const Dataset& base, std::vector<Index> indices) : base_(base), indices_(std::move(indices)) {
    for (Index i : indices_) {
      if (i < 0 || i >= base_.size()) {
        throw LookupError(detail::concat("SubsetDataset: index ", i, " is outside [0, ", base_.size(), ")"));
      }
    }
  }
  Index size() const override { return static_cast<Index>(indices_.size()); }
  int label(Index i) const override {
    check_index(i);
    return base_.label(indices_[static_cast<std::size_t>(i)]);
  }
  void load(Index i, Image& out) const override {
    check_index(i);
    base_.load(indices_[static_cast<std::size_t>(i)], out);
  }
  const std::vector<std::string>& class_names() const override { return base_.class_names(); }
  const std::vector<Index>& indices() const { return indices_; }

 private:
  const Dataset& base_;
  std::vector<Index> indices_;
};

/// A validation split: for each class, round(fraction * its count) examples
/// chosen at random (seeded) go to validation, the rest to training. Both
/// lists come back sorted.
struct Split {
  std::vector<Index> train, validation;
};

inline Split stratified_split(const Dataset& data, double fraction, std::uint64_t seed) {
  detail::require_option(fraction >= 0 && fraction < 1, "stratified_split", "fraction", "in [0, 1)", fraction);
  std::vector<std::vector<Index>> by_class(static_cast<std::size_t>(std::max<Index>(data.classes(), 1)));
  for (Index i = 0; i < data.size(); ++i) {
    const int label = data.label(i);
    if (label < 0 || label >= data.classes()) {
      throw DataError(detail::concat("stratified_split: example ", i, " has label ", label, " outside [0, ",
                                     data.classes(), ")"));
    }
    by_class[static_cast<std::size_t>(label)].push_back(i);
  }
  Split split;
  for (std::size_t c = 0; c < by_class.size(); ++c) {
    auto& members = by_class[c];
    Rng rng(detail::mix64(seed + detail::kGolden * (c + 1)));
    rng.shuffle(members.begin(), members.end());
    const std::size_t held = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(members.size())));
    split.validation.insert(split.validation.end(), members.begin(), members.begin() + static_cast<long>(held));
    split.train.insert(split.train.end(), members.begin() + static_cast<long>(held), members.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  return split;
}

}  // namespace convnet
