// 48 (or n) small pictures of three classes and the pipeline that normalises them: the data of the
// Trainer tests (test_train.cpp) and of the classifier tests (test_inference.cpp).
#pragma once

#include <convnet/data/dataset.hpp>
#include <convnet/data/image.hpp>
#include <convnet/data/transforms.hpp>
#include <convnet/random.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace convnet::testing {

// 48 pictures 3 x 8 x 8 of three classes: class c is bright in channel c, with noise.
class TinyPictures : public Dataset {
 public:
  explicit TinyPictures(Index n, std::uint64_t seed = 3) {
    Rng rng(seed);
    for (Index i = 0; i < n; ++i) {
      Image image(3, 8, 8);
      const int label = static_cast<int>(i % 3);
      for (Index c = 0; c < 3; ++c)
        for (Index k = 0; k < 64; ++k)
          image.pixels[static_cast<std::size_t>(c * 64 + k)] =
              static_cast<float>((c == label ? 150.0 : 60.0) + rng.uniform(-50, 50));
      images_.push_back(image);
      labels_.push_back(label);
    }
  }
  Index size() const override { return static_cast<Index>(images_.size()); }
  int label(Index i) const override { return labels_[static_cast<std::size_t>(i)]; }
  void load(Index i, Image& out) const override { out = images_[static_cast<std::size_t>(i)]; }
  const std::vector<std::string>& class_names() const override { return names_; }

 private:
  std::vector<Image> images_;
  std::vector<int> labels_;
  std::vector<std::string> names_{"red", "green", "blue"};
};

inline Pipeline normalise() {
  Pipeline p;
  p.add<Normalize>(ChannelStats{{100, 100, 100}, {60, 60, 60}});
  return p;
}

}  // namespace convnet::testing
