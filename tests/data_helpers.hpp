// Helpers of the data tests: a dataset of generated pictures and the message of a DataError.
#pragma once

#include <convnet/data/dataset.hpp>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace convnet::testing {

/// `n` pictures made by `make(i, out)`, labelled i % classes.
class GeneratedDataset : public Dataset {
 public:
  GeneratedDataset(Index n, std::function<void(Index, Image&)> make, Index classes = 3)
      : n_(n), make_(std::move(make)) {
    for (Index c = 0; c < classes; ++c) names_.push_back("class" + std::to_string(c));
  }
  Index size() const override { return n_; }
  int label(Index i) const override { return static_cast<int>(i % classes()); }
  void load(Index i, Image& out) const override { make_(i, out); }
  const std::vector<std::string>& class_names() const override { return names_; }

 private:
  Index n_;
  std::function<void(Index, Image&)> make_;
  std::vector<std::string> names_;
};

/// What f() threw as a DataError, or "no DataError".
template <class F>
std::string data_error(F&& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "no DataError";
}

}  // namespace convnet::testing
