// Transforms applied to one picture at a time, composed into a Pipeline.
//
// Each transform is an immutable object with apply(image, rng): random ones
// draw from the Rng they are given, which the loader seeds per example and
// epoch, so results do not depend on which thread runs them. Pictures are
// float CHW (image.hpp), in 0-255 until Normalize or SubtractMeanImage.
//
// The paper's pipeline (§4.1): shorter side to 256, centre crop 256 x 256,
// subtract the mean image, random 227 x 227 crops with horizontal flips, PCA
// colour augmentation; ten crops at test time.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../random.hpp"
#include "dataset.hpp"
#include "image.hpp"

namespace convnet {

/// Which example of which epoch a loader is transforming: for the transforms whose choice follows
/// the example from epoch to epoch instead of being drawn anew (AlternatingFlip).
struct ExampleDraw {
  std::uint64_t seed = 0;   ///< the loader's
  std::uint64_t epoch = 0;
  Index index = 0;          ///< the example's index in its dataset
};

class Transform {
 public:
  virtual ~Transform() = default;
  virtual void apply(Image& image, Rng& rng) const = 0;
  /// As apply(), knowing the example and epoch (what DataLoader calls); the same as apply() unless a
  /// transform needs them.
  virtual void apply_to(Image& image, Rng& rng, const ExampleDraw& /*draw*/) const { apply(image, rng); }
  virtual std::string describe() const = 0;
};

/// Transforms applied in order.
class Pipeline {
 public:
  template <class T, class... Args>
  Pipeline& add(Args&&... args) {
    steps_.push_back(std::make_shared<const T>(std::forward<Args>(args)...));
    return *this;
  }
  Pipeline& add(std::shared_ptr<const Transform> t) {
    steps_.push_back(std::move(t));
    return *this;
  }
  void apply(Image& image, Rng& rng) const {
    for (const auto& t : steps_) t->apply(image, rng);
  }
  void apply_to(Image& image, Rng& rng, const ExampleDraw& draw) const {
    for (const auto& t : steps_) t->apply_to(image, rng, draw);
  }
  bool empty() const { return steps_.empty(); }
  std::string describe() const {
    std::string s;
    for (const auto& t : steps_) s += (s.empty() ? "" : " -> ") + t->describe();
    return s.empty() ? "identity" : s;
  }

 private:
  std::vector<std::shared_ptr<const Transform>> steps_;
};

namespace detail {
inline void check_image(const Image& image, const char* where) {
  if (image.channels < 1 || image.height < 1 || image.width < 1) {
    throw ShapeError(where, "an image of at least 1x1x1", image.shape_str());
  }
}
/// Scratch space for out-of-place transforms, one per thread.
inline Image& scratch_image() {
  thread_local Image scratch;
  return scratch;
}
}  // namespace detail

/// Bilinear resize (pixel centres aligned, as PIL and OpenCV; no anti-aliasing),
/// to an exact size or with the shorter side to N keeping the aspect ratio.
/// The output is bounded (max_output_pixels, default 2^24 = 4096 x 4096): a
/// thin picture (1 x 1,000,000 pixels is a 3 KB PNG) would otherwise become
/// gigabytes when its shorter side is scaled up.
class Resize : public Transform {
 public:
  static Resize shorter_side(Index n) { return Resize(n, 0, 0); }
  static Resize exact(Index height, Index width) { return Resize(0, height, width); }
  Resize& max_output_pixels(Index v) {
    detail::require_option(v >= 1, "Resize", "max_output_pixels", ">= 1", v);
    max_output_pixels_ = v;
    return *this;
  }

  void apply(Image& image, Rng&) const override {
    detail::check_image(image, "Resize");
    // The output size in double first: the longer side scaled up can overflow an Index for absurd shapes.
    double out_h = static_cast<double>(height_), out_w = static_cast<double>(width_);
    if (shorter_ > 0) {
      const bool tall = image.height > image.width;
      const double longer = static_cast<double>(tall ? image.height : image.width) * static_cast<double>(shorter_) /
                            static_cast<double>(tall ? image.width : image.height);
      out_h = tall ? longer : static_cast<double>(shorter_);
      out_w = tall ? static_cast<double>(shorter_) : longer;
    }
    if (out_h * out_w > static_cast<double>(max_output_pixels_)) {
      throw DataError(detail::concat("Resize: a ", image.width, " x ", image.height, " picture would become ", out_w,
                                     " x ", out_h, " pixels, over the limit of ", max_output_pixels_,
                                     " (Resize::max_output_pixels)"));
    }
    const Index h = std::max<Index>(1, static_cast<Index>(std::llround(out_h)));
    const Index w = std::max<Index>(1, static_cast<Index>(std::llround(out_w)));
    if (h == image.height && w == image.width) return;
    Image& out = detail::scratch_image();
    out.resize(image.channels, h, w);
    const double sy = static_cast<double>(image.height) / static_cast<double>(h);
    const double sx = static_cast<double>(image.width) / static_cast<double>(w);
    for (Index y = 0; y < h; ++y) {
      const double fy = std::clamp((static_cast<double>(y) + 0.5) * sy - 0.5, 0.0, static_cast<double>(image.height - 1));
      const Index y0 = static_cast<Index>(fy), y1 = std::min(y0 + 1, image.height - 1);
      const float wy = static_cast<float>(fy - static_cast<double>(y0));
      for (Index x = 0; x < w; ++x) {
        const double fx = std::clamp((static_cast<double>(x) + 0.5) * sx - 0.5, 0.0, static_cast<double>(image.width - 1));
        const Index x0 = static_cast<Index>(fx), x1 = std::min(x0 + 1, image.width - 1);
        const float wx = static_cast<float>(fx - static_cast<double>(x0));
        for (Index c = 0; c < image.channels; ++c) {
          const float top = image.at(c, y0, x0) * (1 - wx) + image.at(c, y0, x1) * wx;
          const float bottom = image.at(c, y1, x0) * (1 - wx) + image.at(c, y1, x1) * wx;
          out.at(c, y, x) = top * (1 - wy) + bottom * wy;
        }
      }
    }
    std::swap(image, out);
  }
  std::string describe() const override {
    return shorter_ > 0 ? detail::concat("resize(shorter side ", shorter_, ")")
                        : detail::concat("resize(", height_, "x", width_, ")");
  }

 private:
  Resize(Index shorter, Index h, Index w) : shorter_(shorter), height_(h), width_(w) {
    detail::require_option(shorter > 0 || (h > 0 && w > 0), "Resize", "size", "positive", shorter > 0 ? shorter : h);
    if (shorter <= 0) {
      detail::require_option(static_cast<double>(h) * static_cast<double>(w) <= static_cast<double>(max_output_pixels_),
                             "Resize", "height x width", "at most max_output_pixels (2^24)",
                             static_cast<double>(h) * static_cast<double>(w));
    }
  }
  Index shorter_, height_, width_;
  Index max_output_pixels_ = Index{1} << 24;
};

namespace detail {
/// Copies the h x w window at (top, left) of `image`; positions outside it read as 0 (padding).
inline void crop_into(const Image& image, Index top, Index left, Index h, Index w, Image& out) {
  out.resize(image.channels, h, w);
  for (Index c = 0; c < image.channels; ++c) {
    for (Index y = 0; y < h; ++y) {
      const Index sy = top + y;
      float* dst = out.plane(c) + y * w;
      if (sy < 0 || sy >= image.height) {
        std::fill(dst, dst + w, 0.0f);
        continue;
      }
      for (Index x = 0; x < w; ++x) {
        const Index sx = left + x;
        dst[x] = (sx >= 0 && sx < image.width) ? image.at(c, sy, sx) : 0.0f;
      }
    }
  }
}
/// A crop's output is bounded as Resize's is (2^24 pixels), whatever the padding lets it take.
inline void check_crop_size(Index h, Index w, const char* where) {
  require_option(static_cast<double>(h) * static_cast<double>(w) <= static_cast<double>(Index{1} << 24), where,
                 "height x width", "at most 2^24 pixels", static_cast<double>(h) * static_cast<double>(w));
}
inline void check_crop(const Image& image, Index h, Index w, Index padding, const char* where) {
  check_image(image, where);
  if (image.height + 2 * padding < h || image.width + 2 * padding < w) {
    throw ShapeError(where, detail::concat("an image of at least ", h - 2 * padding, "x", w - 2 * padding),
                     image.shape_str());
  }
}
}  // namespace detail

/// The centre h x w window (rounding the offset down).
class CenterCrop : public Transform {
 public:
  CenterCrop(Index height, Index width) : h_(height), w_(width) {
    detail::require_option(height > 0 && width > 0, "CenterCrop", "size", "positive", height);
    detail::check_crop_size(height, width, "CenterCrop");
  }
  void apply(Image& image, Rng&) const override {
    detail::check_crop(image, h_, w_, 0, "CenterCrop");
    Image& out = detail::scratch_image();
    detail::crop_into(image, (image.height - h_) / 2, (image.width - w_) / 2, h_, w_, out);
    std::swap(image, out);
  }
  std::string describe() const override { return detail::concat("centre crop(", h_, "x", w_, ")"); }

 private:
  Index h_, w_;
};

/// A uniformly placed h x w window of the picture zero-padded by `padding` on every side
/// (padding 4 with 32 x 32 crops is the usual CIFAR augmentation).
class RandomCrop : public Transform {
 public:
  RandomCrop(Index height, Index width, Index padding = 0) : h_(height), w_(width), pad_(padding) {
    detail::require_option(height > 0 && width > 0, "RandomCrop", "size", "positive", height);
    detail::require_option(padding >= 0 && padding <= 4096, "RandomCrop", "padding", "in [0, 4096]", padding);
    detail::check_crop_size(height, width, "RandomCrop");
  }
  void apply(Image& image, Rng& rng) const override {
    detail::check_crop(image, h_, w_, pad_, "RandomCrop");
    const Index top = static_cast<Index>(rng.below(static_cast<std::uint64_t>(image.height + 2 * pad_ - h_ + 1))) - pad_;
    const Index left = static_cast<Index>(rng.below(static_cast<std::uint64_t>(image.width + 2 * pad_ - w_ + 1))) - pad_;
    Image& out = detail::scratch_image();
    detail::crop_into(image, top, left, h_, w_, out);
    std::swap(image, out);
  }
  std::string describe() const override {
    return detail::concat("random crop(", h_, "x", w_, pad_ ? detail::concat(", padding ", pad_) : "", ")");
  }

 private:
  Index h_, w_, pad_;
};

/// Mirrors the picture left-right.
inline void flip_horizontal(Image& image) {
  for (Index c = 0; c < image.channels; ++c) {
    for (Index y = 0; y < image.height; ++y) {
      float* row = image.plane(c) + y * image.width;
      std::reverse(row, row + image.width);
    }
  }
}

/// Mirrors with probability p (0.5 in the paper).
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5) : p_(p) {
    detail::require_option(p >= 0 && p <= 1, "RandomHorizontalFlip", "p", "in [0, 1]", p);
  }
  void apply(Image& image, Rng& rng) const override {
    if (rng.uniform() < p_) flip_horizontal(image);
  }
  std::string describe() const override { return detail::concat("random flip(", p_, ")"); }

 private:
  double p_;
};

/// Alternating flips (the CIFAR-10 speed records'): each example is mirrored or not at random in the
/// first epoch, from the loader's seed and its index, and the other way in each epoch after, so every
/// two consecutive epochs show it both ways; random flips show a fourth of the examples the same way
/// twice running. Without a loader (apply()), a random flip.
class AlternatingFlip : public Transform {
 public:
  void apply(Image& image, Rng& rng) const override {
    if (rng.below(2) == 1) flip_horizontal(image);
  }
  void apply_to(Image& image, Rng& /*rng*/, const ExampleDraw& draw) const override {
    if (flipped(draw)) flip_horizontal(image);
  }
  /// Whether `draw`'s example is mirrored in its epoch.
  static bool flipped(const ExampleDraw& draw) {
    const std::uint64_t first = detail::mix64(detail::mix64(draw.seed ^ 0xA17F11Bull) + static_cast<std::uint64_t>(draw.index)) & 1;
    return (first ^ (draw.epoch & 1)) == 1;
  }
  std::string describe() const override { return "alternating flip"; }
};

/// Per-channel mean and standard deviation.
struct ChannelStats {
  std::vector<double> mean, stddev;
};

/// (x - mean_c) / stddev_c for each channel c.
class Normalize : public Transform {
 public:
  explicit Normalize(ChannelStats stats) : stats_(std::move(stats)) {
    detail::require_option(!stats_.mean.empty() && stats_.mean.size() == stats_.stddev.size(), "Normalize",
                           "mean and stddev", "non-empty and of equal length", stats_.stddev.size());
    for (double s : stats_.stddev) detail::require_option(s > 0, "Normalize", "stddev", "> 0", s);
  }
  void apply(Image& image, Rng&) const override {
    if (static_cast<std::size_t>(image.channels) != stats_.mean.size()) {
      throw ShapeError("Normalize", detail::concat(stats_.mean.size(), " channels"), image.shape_str());
    }
    const Index plane = image.height * image.width;
    for (Index c = 0; c < image.channels; ++c) {
      const float mean = static_cast<float>(stats_.mean[static_cast<std::size_t>(c)]);
      const float inv = static_cast<float>(1.0 / stats_.stddev[static_cast<std::size_t>(c)]);
      float* p = image.plane(c);
      for (Index i = 0; i < plane; ++i) p[i] = (p[i] - mean) * inv;
    }
  }
  std::string describe() const override { return "normalize(per channel)"; }
  const ChannelStats& stats() const { return stats_; }

 private:
  ChannelStats stats_;
};

/// Subtracts a per-pixel mean picture of the same size (the paper's centring).
class SubtractMeanImage : public Transform {
 public:
  explicit SubtractMeanImage(Image mean) : mean_(std::move(mean)) {}
  void apply(Image& image, Rng&) const override {
    if (!image.same_shape(mean_)) throw ShapeError("SubtractMeanImage", mean_.shape_str(), image.shape_str());
    for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] -= mean_.pixels[i];
  }
  std::string describe() const override { return "subtract mean image(" + mean_.shape_str() + ")"; }
  const Image& mean() const { return mean_; }

 private:
  Image mean_;
};

/// Principal components of the RGB values of a set of pictures.
struct RgbPca {
  Eigen::Matrix3d vectors;  ///< column i is eigenvector p_i
  Eigen::Vector3d values;   ///< eigenvalue lambda_i, largest first
};

/// How PCA noise is scaled: the paper multiplies alpha_i by the eigenvalue
/// lambda_i; dlib and cuda-convnet by sqrt(lambda_i) (a standard deviation).
enum class PcaScale { Eigenvalue, SqrtEigenvalue };

/// PCA colour augmentation (paper §4.1): adds [p1 p2 p3][a1 s1, a2 s2, a3 s3]^T
/// to every pixel, a_i ~ N(0, stddev) drawn once per picture and
/// presentation, s_i = lambda_i (paper, the default) or sqrt(lambda_i).
class PcaColorAugmentation : public Transform {
 public:
  explicit PcaColorAugmentation(RgbPca pca, double stddev = 0.1, PcaScale scale = PcaScale::Eigenvalue)
      : pca_(std::move(pca)), stddev_(stddev), scale_(scale) {
    detail::require_option(stddev >= 0, "PcaColorAugmentation", "stddev", ">= 0", stddev);
  }
  /// The RGB offset for one draw of alpha (exposed so tests can check its distribution).
  Eigen::Vector3d offset(Rng& rng) const {
    Eigen::Vector3d coefficients;
    for (int i = 0; i < 3; ++i) {
      const double s = scale_ == PcaScale::Eigenvalue ? pca_.values[i] : std::sqrt(std::max(0.0, pca_.values[i]));
      coefficients[i] = rng.normal(0.0, stddev_) * s;
    }
    return pca_.vectors * coefficients;
  }
  void apply(Image& image, Rng& rng) const override {
    if (image.channels != 3) throw ShapeError("PcaColorAugmentation", "3 channels (RGB)", image.shape_str());
    const Eigen::Vector3d delta = offset(rng);
    const Index plane = image.height * image.width;
    for (Index c = 0; c < 3; ++c) {
      float* p = image.plane(c);
      const float d = static_cast<float>(delta[c]);
      for (Index i = 0; i < plane; ++i) p[i] += d;
    }
  }
  std::string describe() const override {
    return detail::concat("PCA colour(", stddev_, ", ", scale_ == PcaScale::Eigenvalue ? "lambda" : "sqrt lambda", ")");
  }

 private:
  RgbPca pca_;
  double stddev_;
  PcaScale scale_;
};

// ---- statistics of a training set ------------------------------------------

namespace detail {
/// Calls f(image) for every example of `data` after `preprocess` (deterministic transforms, e.g. resize + centre crop).
template <class F>
void for_each_image(const Dataset& data, const Pipeline* preprocess, F&& f) {
  Image image;
  Rng rng(0);
  for (Index i = 0; i < data.size(); ++i) {
    data.load(i, image);
    if (preprocess) preprocess->apply(image, rng);
    f(image, i);
  }
}
}  // namespace detail

/// Per-channel mean and standard deviation over every pixel of every picture.
inline ChannelStats compute_channel_stats(const Dataset& data, const Pipeline* preprocess = nullptr) {
  std::vector<double> sum, sum_sq;
  double count = 0;
  detail::for_each_image(data, preprocess, [&](const Image& image, Index) {
    if (sum.empty()) {
      sum.assign(static_cast<std::size_t>(image.channels), 0.0);
      sum_sq = sum;
    }
    if (static_cast<std::size_t>(image.channels) != sum.size()) {
      throw DataError("compute_channel_stats: pictures have different channel counts");
    }
    const Index plane = image.height * image.width;
    for (Index c = 0; c < image.channels; ++c) {
      const float* p = image.plane(c);
      double s = 0, s2 = 0;
      for (Index i = 0; i < plane; ++i) {
        s += p[i];
        s2 += static_cast<double>(p[i]) * p[i];
      }
      sum[static_cast<std::size_t>(c)] += s;
      sum_sq[static_cast<std::size_t>(c)] += s2;
    }
    count += static_cast<double>(plane);
  });
  if (count == 0) throw DataError("compute_channel_stats: the dataset is empty");
  ChannelStats stats;
  for (std::size_t c = 0; c < sum.size(); ++c) {
    const double mean = sum[c] / count;
    stats.mean.push_back(mean);
    stats.stddev.push_back(std::sqrt(std::max(0.0, sum_sq[c] / count - mean * mean)));
  }
  return stats;
}

/// The per-pixel mean picture; every picture (after `preprocess`) must have the same size.
inline Image compute_mean_image(const Dataset& data, const Pipeline* preprocess = nullptr) {
  std::vector<double> sum;
  Image shape;
  detail::for_each_image(data, preprocess, [&](const Image& image, Index i) {
    if (sum.empty()) {
      sum.assign(image.pixels.size(), 0.0);
      shape.resize(image.channels, image.height, image.width);
    }
    if (!image.same_shape(shape)) {
      throw ShapeError(detail::concat("compute_mean_image (example ", i, ")"), shape.shape_str(), image.shape_str());
    }
    for (std::size_t k = 0; k < sum.size(); ++k) sum[k] += image.pixels[k];
  });
  if (sum.empty()) throw DataError("compute_mean_image: the dataset is empty");
  for (std::size_t k = 0; k < sum.size(); ++k) {
    shape.pixels[k] = static_cast<float>(sum[k] / static_cast<double>(data.size()));
  }
  return shape;
}

/// Eigen-decomposition of the 3 x 3 covariance of RGB values over every pixel.
inline RgbPca compute_rgb_pca(const Dataset& data, const Pipeline* preprocess = nullptr) {
  Eigen::Vector3d sum = Eigen::Vector3d::Zero();
  Eigen::Matrix3d outer = Eigen::Matrix3d::Zero();
  double count = 0;
  detail::for_each_image(data, preprocess, [&](const Image& image, Index i) {
    if (image.channels != 3) throw ShapeError(detail::concat("compute_rgb_pca (example ", i, ")"), "3 channels", image.shape_str());
    const Index plane = image.height * image.width;
    for (Index k = 0; k < plane; ++k) {
      const Eigen::Vector3d v(image.plane(0)[k], image.plane(1)[k], image.plane(2)[k]);
      sum += v;
      outer += v * v.transpose();
    }
    count += static_cast<double>(plane);
  });
  if (count == 0) throw DataError("compute_rgb_pca: the dataset is empty");
  const Eigen::Vector3d mean = sum / count;
  const Eigen::Matrix3d covariance = outer / count - mean * mean.transpose();
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> solver(covariance);
  RgbPca pca;
  for (int i = 0; i < 3; ++i) {  // Eigen sorts ascending; the paper's p1 is the largest
    pca.values[i] = solver.eigenvalues()[2 - i];
    pca.vectors.col(i) = solver.eigenvectors().col(2 - i);
  }
  return pca;
}

// ---- test-time ten crops -----------------------------------------------------

/// The paper's ten test patches: the four corners and the centre, then the
/// same five mirrored (§4.1). Order: top-left, top-right, bottom-left,
/// bottom-right, centre, and their mirrors.
inline std::vector<Image> ten_crops(const Image& image, Index height, Index width) {
  detail::check_crop(image, height, width, 0, "ten_crops");
  const Index bottom = image.height - height, right = image.width - width;
  const std::array<std::pair<Index, Index>, 5> corners{
      {{0, 0}, {0, right}, {bottom, 0}, {bottom, right}, {bottom / 2, right / 2}}};
  std::vector<Image> crops(10);
  for (std::size_t i = 0; i < 5; ++i) {
    detail::crop_into(image, corners[i].first, corners[i].second, height, width, crops[i]);
    crops[i + 5] = crops[i];
    flip_horizontal(crops[i + 5]);
  }
  return crops;
}

}  // namespace convnet
