// Preparation: how pictures become network inputs, for training and for
// evaluation, from one description - so that test-time views are crops of the
// same kind training saw, and a checkpoint can carry everything a predictor
// or a resumed run needs to prepare pictures exactly as training did.
//
// Two pipelines:
//   small  (CIFAR, MNIST):  the picture fitted to the input size (shorter side
//          resized, centre crop; nothing when it already fits), random crops
//          of it zero-padded by `padding` (1/8 of the side), flips, optional
//          PCA colour; per-channel normalisation.
//          Views: the picture; it and its mirror; or ten crops of the padded
//          picture (four corners, centre, mirrors) - the crops training drew.
//   paper  (§4.1, pictures of any size): shorter side resized to 256, centre
//          256 x 256, mean picture or per-channel mean subtracted, random
//          input-size (227) crops, flips, PCA colour from the training set's
//          RGB covariance (alpha ~ N(0, 0.1) times sqrt(lambda), as
//          cuda-convnet); divided by the per-channel standard deviation.
//          Views: the centre crop; it and its mirror; or the paper's ten
//          crops of the 256 x 256 picture.
// Every pipeline first converts pictures to the network's channels (grey
// replicated to RGB, or RGB to grey by luma; alpha is already dropped by
// decoding).
//
//   PreparationOptions options = PreparationOptions().kind(PreparationKind::ResizeAndCrop).input_size(227);
//   const Preparation prep = Preparation::compute(train_set, options);  // statistics on a sample
//   DataLoader loader(train_set, prep.train_pipeline(), ...);
//   prep.save(checkpoint);  ...  Preparation::loaded(checkpoint).views(picture, EvalViews::TenCrop);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../errors.hpp"
#include "../key_values.hpp"
#include "../random.hpp"
#include "dataset.hpp"
#include "image.hpp"
#include "transforms.hpp"

namespace convnet {

/// Small: pictures fitted to the input, padded random crops (CIFAR). ResizeAndCrop: the paper's
/// ImageNet pipeline (shorter side resized, random crops of the input size, PCA colour): "paper".
enum class PreparationKind { Small, ResizeAndCrop };
enum class MeanKind { Channel, Image };
/// Views a picture is evaluated on (their softmax averaged). FlipTranslate: the picture and its
/// mirror, each also moved one pixel up-left and one down-right (zero filled): six views, the
/// test-time augmentation of the CIFAR-10 speed records.
enum class EvalViews { Centre, Flip, TenCrop, FlipTranslate };

inline EvalViews parse_eval_views(const std::string& text) {
  if (text == "centre" || text == "center") return EvalViews::Centre;
  if (text == "flip") return EvalViews::Flip;
  if (text == "ten-crop") return EvalViews::TenCrop;
  if (text == "flip-translate") return EvalViews::FlipTranslate;
  throw ArgumentError("evaluation views must be centre, flip, ten-crop or flip-translate, got '" + text + "'");
}
inline std::string to_string(EvalViews v) {
  switch (v) {
    case EvalViews::Centre: return "centre";
    case EvalViews::Flip: return "flip";
    case EvalViews::TenCrop: return "ten-crop";
    case EvalViews::FlipTranslate: return "flip-translate";
  }
  return "?";
}
inline std::size_t view_count(EvalViews v) {
  switch (v) {
    case EvalViews::Centre: return 1;
    case EvalViews::Flip: return 2;
    case EvalViews::TenCrop: return 10;
    case EvalViews::FlipTranslate: return 6;
  }
  return 1;
}

/// Where the views of `part` lie among those of `whole`, as Preparation::views orders them
/// (FlipTranslate: the picture, moved up-left, moved down-right, then the three mirrored; Flip:
/// the picture, then its mirror), or nothing when they are not all among them. Lets one pass over
/// `whole`'s views give `part`'s average too (the centre and flip reports beside flip-translate's).
inline std::optional<std::vector<std::size_t>> views_within(EvalViews part, EvalViews whole) {
  if (part == whole) {
    std::vector<std::size_t> all(view_count(whole));
    std::iota(all.begin(), all.end(), std::size_t{0});
    return all;
  }
  if (part == EvalViews::Centre && (whole == EvalViews::Flip || whole == EvalViews::FlipTranslate)) {
    return std::vector<std::size_t>{0};
  }
  if (part == EvalViews::Flip && whole == EvalViews::FlipTranslate) return std::vector<std::size_t>{0, 3};
  return std::nullopt;
}

/// Converts pictures to `channels` channels: grey (1) to RGB (3) by repeating it, RGB to grey by
/// luma (ITU-R 601: 0.299 R + 0.587 G + 0.114 B). Pictures already there pass unchanged.
class ToChannels : public Transform {
 public:
  explicit ToChannels(Index channels) : channels_(channels) {
    detail::require_option(channels == 1 || channels == 3, "ToChannels", "channels", "1 or 3", channels);
  }
  void apply(Image& image, Rng&) const override {
    if (image.channels == channels_) return;
    const Index plane = image.height * image.width;
    if (image.channels == 1 && channels_ == 3) {
      image.pixels.resize(static_cast<std::size_t>(3 * plane));
      std::copy(image.pixels.begin(), image.pixels.begin() + plane, image.pixels.begin() + plane);
      std::copy(image.pixels.begin(), image.pixels.begin() + plane, image.pixels.begin() + 2 * plane);
      image.channels = 3;
    } else if (image.channels == 3 && channels_ == 1) {
      for (Index i = 0; i < plane; ++i) {
        image.pixels[static_cast<std::size_t>(i)] =
            0.299f * image.plane(0)[i] + 0.587f * image.plane(1)[i] + 0.114f * image.plane(2)[i];
      }
      image.pixels.resize(static_cast<std::size_t>(plane));
      image.channels = 1;
    } else {
      throw ShapeError("ToChannels", detail::concat("1 or 3 channels"), image.shape_str());
    }
  }
  std::string describe() const override { return channels_ == 3 ? "to RGB" : "to grey"; }

 private:
  Index channels_;
};

struct PreparationOptions {
  PreparationOptions& kind(PreparationKind v) { kind_ = v; return *this; }
  /// The network's input side (the crops' size).
  PreparationOptions& input_size(Index v) { input_size_ = v; return *this; }
  /// The network's input channels (1 or 3).
  PreparationOptions& channels(Index v) { channels_ = v; return *this; }
  /// Comma-separated: crop, flip (random), alternating-flip (each picture mirrored every other epoch), pca; or none.
  PreparationOptions& augment(std::string v) { augment_ = std::move(v); return *this; }
  /// paper: the shorter side pictures are resized to (256).
  PreparationOptions& resize(Index v) { resize_ = v; return *this; }
  /// small: the zero padding of random crops (default: input_size / 8, 4 at 32).
  PreparationOptions& padding(Index v) { padding_ = v; return *this; }
  /// paper: subtract the mean picture (the paper's) or the per-channel mean.
  PreparationOptions& mean(MeanKind v) { mean_ = v; return *this; }
  /// Pictures the statistics are computed on, chosen at random (0: all of them).
  PreparationOptions& statistics_sample(Index v) { sample_ = v; return *this; }
  PreparationOptions& seed(std::uint64_t v) { seed_ = v; return *this; }

  PreparationKind kind() const { return kind_; }
  Index input_size() const { return input_size_; }
  Index channels() const { return channels_; }
  const std::string& augment() const { return augment_; }
  Index resize() const { return resize_; }
  Index padding() const { return padding_ >= 0 ? padding_ : input_size_ / 8; }
  MeanKind mean() const { return mean_; }
  Index statistics_sample() const { return sample_; }
  std::uint64_t seed() const { return seed_; }

 private:
  PreparationKind kind_ = PreparationKind::Small;
  Index input_size_ = 32, channels_ = 3, resize_ = 256, padding_ = -1, sample_ = 0;
  std::string augment_ = "crop,flip";
  MeanKind mean_ = MeanKind::Channel;
  std::uint64_t seed_ = 0;
};

namespace detail {
/// A dataset whose unreadable pictures are replaced by the next readable one (for statistics over
/// a folder that holds a few corrupt files); counts them.
class ReadableOnly : public Dataset {
 public:
  explicit ReadableOnly(const Dataset& base) : base_(base) {}
  Index size() const override { return base_.size(); }
  int label(Index i) const override { return base_.label(i); }
  void load(Index i, Image& out) const override {
    const Index n = base_.size();
    load_first_readable(base_, out, std::min(n, kMaxUnreadableInARow), [&](Index step) { return (i + step) % n; },
                        [&](const DataError&) { ++skipped_; });
  }
  const std::vector<std::string>& class_names() const override { return base_.class_names(); }
  Index skipped() const { return skipped_; }

 private:
  const Dataset& base_;
  mutable Index skipped_ = 0;  // used by one thread (the statistics pass)
};
}  // namespace detail

class Preparation {
 public:
  static constexpr Index kMaxResize = 4096;

  /// The statistics the pipelines need (per-channel mean and deviation, the mean picture, the RGB
  /// principal components) computed over the training set, or a seeded sample of it.
  static Preparation compute(const Dataset& train, const PreparationOptions& options) {
    Preparation p(options);
    std::vector<Index> chosen(static_cast<std::size_t>(train.size()));
    for (Index i = 0; i < train.size(); ++i) chosen[static_cast<std::size_t>(i)] = i;
    if (options.statistics_sample() > 0 && options.statistics_sample() < train.size()) {
      Rng rng(detail::mix64(options.seed() ^ 0x57a75ULL));
      rng.shuffle(chosen.begin(), chosen.end());
      chosen.resize(static_cast<std::size_t>(options.statistics_sample()));
      std::sort(chosen.begin(), chosen.end());
    }
    const SubsetDataset sample(train, std::move(chosen));
    const detail::ReadableOnly readable(sample);
    const Pipeline& fixed = p.fixed_;
    if (p.mean_ == MeanKind::Image) {
      p.mean_image_ = compute_mean_image(readable, &fixed);
      Pipeline centred = fixed;
      centred.add<SubtractMeanImage>(p.mean_image_);
      p.stats_ = compute_channel_stats(readable, &centred);
      std::fill(p.stats_.mean.begin(), p.stats_.mean.end(), 0.0);  // the mean picture took it away
    } else {
      p.stats_ = compute_channel_stats(readable, &fixed);
    }
    for (double& s : p.stats_.stddev) s = std::max(s, 1e-3);  // a constant channel: no division by zero
    if (p.pca_wanted_) p.pca_ = compute_rgb_pca(readable, &fixed);
    p.statistics_skipped_ = readable.skipped();
    return p;
  }

  /// A preparation with statistics already known (pixels scaled to [0, 1] by ChannelStats{{0,0,0},{255,255,255}}).
  static Preparation with_statistics(const PreparationOptions& options, ChannelStats stats,
                                     std::optional<RgbPca> pca = std::nullopt, Image mean_image = Image()) {
    Preparation p(options);
    Normalize check(stats);  // non-empty, equal lengths, positive deviations
    if (stats.mean.size() != static_cast<std::size_t>(p.channels_)) {
      throw ArgumentError(detail::concat("Preparation: ", stats.mean.size(), " channel statistics for ",
                                                 p.channels_, " channels"));
    }
    if (p.pca_wanted_ && !pca) throw ArgumentError("Preparation: pca augmentation without the components");
    if (p.mean_ == MeanKind::Image && !(mean_image.channels == p.channels_ && mean_image.height == p.resize_ &&
                                         mean_image.width == p.resize_)) {
      throw ArgumentError("Preparation: mean=image needs a mean picture of channels x resize x resize");
    }
    p.stats_ = std::move(stats);
    p.pca_ = std::move(pca);
    p.mean_image_ = std::move(mean_image);
    return p;
  }

  /// Random transforms for training.
  Pipeline train_pipeline() const {
    Pipeline out = fixed_;
    if (mean_ == MeanKind::Image) out.add<SubtractMeanImage>(mean_image_);
    if (crop_) {
      out.add<RandomCrop>(input_size_, input_size_, kind_ == PreparationKind::Small ? padding_ : 0);
    } else if (kind_ == PreparationKind::ResizeAndCrop) {
      out.add<CenterCrop>(input_size_, input_size_);
    }
    if (alternating_flip_) {
      out.add<AlternatingFlip>();
    } else if (flip_) {
      out.add<RandomHorizontalFlip>();
    }
    // sqrt(lambda), a standard deviation, as cuda-convnet and dlib do: the paper's alpha * lambda has the
    // units of a variance, and on 0-255 pixels (lambda in the thousands) it shifted colours by hundreds
    // and the paper network diverged within five steps.
    if (pca_) out.add<PcaColorAugmentation>(*pca_, 0.1, PcaScale::SqrtEigenvalue);
    out.add<Normalize>(stats_);
    return out;
  }

  /// The single centred view, as a pipeline (validation during training).
  Pipeline eval_pipeline() const {
    Pipeline out = fixed_;
    if (mean_ == MeanKind::Image) out.add<SubtractMeanImage>(mean_image_);
    if (kind_ == PreparationKind::ResizeAndCrop) out.add<CenterCrop>(input_size_, input_size_);
    out.add<Normalize>(stats_);
    return out;
  }

  /// The normalised views of a picture the network is evaluated on.
  std::vector<Image> views(Image picture, EvalViews which) const {
    Rng unused(0);
    fixed_.apply(picture, unused);
    if (mean_ == MeanKind::Image) SubtractMeanImage(mean_image_).apply(picture, unused);
    std::vector<Image> out;
    if (which == EvalViews::TenCrop) {
      const Index pad = kind_ == PreparationKind::Small && crop_ ? padding_ : 0;
      if (pad > 0) {  // crops of the zero-padded picture, as training drew them
        Image padded;
        detail::crop_into(picture, -pad, -pad, picture.height + 2 * pad, picture.width + 2 * pad, padded);
        picture = std::move(padded);
      }
      out = ten_crops(picture, input_size_, input_size_);
    } else {
      if (kind_ == PreparationKind::ResizeAndCrop) CenterCrop(input_size_, input_size_).apply(picture, unused);
      out.push_back(picture);
      if (which == EvalViews::FlipTranslate) {
        for (const Index shift : {1, -1}) {  // content moved up-left, then down-right
          out.emplace_back();
          detail::crop_into(picture, shift, shift, picture.height, picture.width, out.back());
        }
      }
      if (which == EvalViews::Flip || which == EvalViews::FlipTranslate) {
        for (std::size_t i = 0, unflipped = out.size(); i < unflipped; ++i) {
          out.push_back(out[i]);
          flip_horizontal(out.back());
        }
      }
    }
    const Normalize normalize(stats_);
    for (auto& v : out) normalize.apply(v, unused);
    return out;
  }

  PreparationKind kind() const { return kind_; }
  Index input_size() const { return input_size_; }
  Index channels() const { return channels_; }
  const ChannelStats& channel_stats() const { return stats_; }
  const std::optional<RgbPca>& pca() const { return pca_; }
  const Image& mean_image() const { return mean_image_; }
  /// Unreadable pictures met (and replaced) while the statistics were computed.
  Index statistics_skipped() const { return statistics_skipped_; }

  /// "paper: 256 shorter side, 227 crops, flip, PCA colour; mean picture" - for logs.
  std::string describe() const { return train_pipeline().describe(); }

  /// The one-line description a checkpoint keeps ("kind=small input=32 channels=3 ...").
  std::string str() const {
    std::ostringstream out;
    out << "kind=" << (kind_ == PreparationKind::Small ? "small" : "paper") << " input=" << input_size_
        << " channels=" << channels_ << " resize=" << resize_ << " padding=" << padding_ << " augment=" << augment_
        << " mean=" << (mean_ == MeanKind::Image ? "image" : "channel");
    return out.str();
  }

  /// The description and statistics in a checkpoint, as entries under `prefix` (the one save/load
  /// pair, checkpoint/state.hpp).
  void save(Checkpoint& c, const std::string& prefix = "data/") const {
    c.set_text(prefix + "preparation", str());
    c.set_f64s(prefix + "mean", stats_.mean);
    c.set_f64s(prefix + "std", stats_.stddev);
    if (pca_) {
      std::vector<double> v(pca_->values.data(), pca_->values.data() + 3);
      v.insert(v.end(), pca_->vectors.data(), pca_->vectors.data() + 9);
      c.set_f64s(prefix + "pca", v);
    }
    if (mean_ == MeanKind::Image) {
      c.set_tensor(prefix + "mean_image", {mean_image_.channels, mean_image_.height, mean_image_.width},
                   mean_image_.pixels.data());
    }
  }

  /// Takes back what save() wrote, every field bounded and checked against the others before this
  /// preparation changes. A checkpoint from before prefix + "preparation" existed reads as the small
  /// pipeline of this preparation's input size and channels.
  void load(const Checkpoint& c, const std::string& prefix = "data/") { *this = loaded(c, input_size_, channels_, prefix); }

  /// The preparation a checkpoint holds (what load() reads), for a program that has none yet. A
  /// checkpoint from before prefix + "preparation" existed reads as the small pipeline of `input_size`
  /// with its per-channel statistics (or pixels scaled to [0, 1] without them).
  static Preparation loaded(const Checkpoint& c, Index input_size = 32, Index channels = 3,
                            const std::string& prefix = "data/") {
    PreparationOptions options = PreparationOptions().input_size(input_size).channels(channels);
    if (c.contains(prefix + "preparation")) options = parse(c.text(prefix + "preparation"), c.source());
    Preparation p = [&] {
      try {
        return Preparation(options);
      } catch (const std::invalid_argument& e) {
        throw CheckpointError(c.source() + ": " + prefix + "preparation: " + e.what());
      }
    }();
    p.stats_ = ChannelStats{std::vector<double>(static_cast<std::size_t>(p.channels_), 0.0),
                            std::vector<double>(static_cast<std::size_t>(p.channels_), 255.0)};
    if (c.contains(prefix + "mean")) p.stats_ = ChannelStats{c.f64s(prefix + "mean"), c.f64s(prefix + "std")};
    auto bad = [&](const std::string& what) { return CheckpointError(c.source() + ": " + what); };
    if (p.stats_.mean.size() != static_cast<std::size_t>(p.channels_) || p.stats_.stddev.size() != p.stats_.mean.size()) {
      throw bad(detail::concat("data/mean and data/std must hold ", p.channels_, " values each"));
    }
    for (std::size_t i = 0; i < p.stats_.mean.size(); ++i) {
      if (!std::isfinite(p.stats_.mean[i]) || !(p.stats_.stddev[i] > 0) || !std::isfinite(p.stats_.stddev[i])) {
        throw bad("data/mean and data/std must be finite, the deviations positive");
      }
    }
    if (p.pca_wanted_) {
      if (!c.contains(prefix + "pca") || c.f64s(prefix + "pca").size() != 12) throw bad("pca augmentation without its 12 data/pca values");
      const auto& v = c.f64s(prefix + "pca");
      for (double x : v) {
        if (!std::isfinite(x)) throw bad("data/pca holds a value that is not finite");
      }
      RgbPca pca;
      for (int i = 0; i < 3; ++i) pca.values[i] = v[static_cast<std::size_t>(i)];
      for (int i = 0; i < 9; ++i) pca.vectors.data()[i] = v[static_cast<std::size_t>(3 + i)];
      p.pca_ = pca;
    }
    if (p.mean_ == MeanKind::Image) {
      std::vector<Index> shape;
      if (!c.contains(prefix + "mean_image")) throw bad("mean=image without data/mean_image");
      std::vector<float> values = c.tensor<float>(prefix + "mean_image", &shape);
      const std::vector<Index> expected{p.channels_, p.resize_, p.resize_};
      if (shape != expected) {
        throw bad(detail::concat("data/mean_image must be ", p.channels_, "x", p.resize_, "x", p.resize_));
      }
      p.mean_image_.resize(p.channels_, p.resize_, p.resize_);
      p.mean_image_.pixels = std::move(values);
    }
    return p;
  }

 private:
  explicit Preparation(const PreparationOptions& o)
      : kind_(o.kind()), input_size_(o.input_size()), channels_(o.channels()), resize_(o.resize()),
        padding_(o.padding()), augment_(o.augment()), mean_(o.mean()) {
    detail::require_option(input_size_ >= 1 && input_size_ <= 1024, "Preparation", "input_size", "in [1, 1024]",
                           input_size_);
    detail::require_option(channels_ == 1 || channels_ == 3, "Preparation", "channels", "1 or 3", channels_);
    detail::require_option(padding_ >= 0 && padding_ <= input_size_, "Preparation", "padding",
                           "in [0, input_size]", padding_);
    if (kind_ == PreparationKind::ResizeAndCrop) {
      detail::require_option(resize_ >= input_size_ && resize_ <= kMaxResize, "Preparation", "resize",
                             "in [input_size, 4096]", resize_);
    }
    if (mean_ == MeanKind::Image && kind_ != PreparationKind::ResizeAndCrop) {
      throw ArgumentError("Preparation: the mean picture belongs to the paper pipeline (mean=image)");
    }
    std::istringstream names(augment_);
    for (std::string name; std::getline(names, name, ',');) {
      if (name != "crop" && name != "flip" && name != "alternating-flip" && name != "pca" && name != "none") {
        throw ArgumentError("augmentation takes crop, flip, alternating-flip, pca or none, got '" + name + "'");
      }
      crop_ = crop_ || name == "crop";
      flip_ = flip_ || name == "flip";
      alternating_flip_ = alternating_flip_ || name == "alternating-flip";
      pca_wanted_ = pca_wanted_ || name == "pca";
    }
    if (pca_wanted_ && channels_ != 3) {
      throw ArgumentError("pca colour augmentation needs RGB input (channels 3)");
    }
    // The deterministic start of every pipeline: channels, then the picture fitted (small) or
    // resized and centred (paper).
    fixed_.add<ToChannels>(channels_);
    if (kind_ == PreparationKind::Small) {
      fixed_.add<FitSquare>(input_size_);
    } else {
      fixed_.add<Resize>(Resize::shorter_side(resize_));
      fixed_.add<CenterCrop>(resize_, resize_);
    }
  }

  /// small: a picture already n x n passes; another has its shorter side resized to n, then the centre.
  class FitSquare : public Transform {
   public:
    explicit FitSquare(Index n) : n_(n) {}
    void apply(Image& image, Rng& rng) const override {
      if (image.height == n_ && image.width == n_) return;
      Resize::shorter_side(n_).apply(image, rng);
      CenterCrop(n_, n_).apply(image, rng);
    }
    std::string describe() const override { return detail::concat("fit(", n_, "x", n_, ")"); }

   private:
    Index n_;
  };

  static PreparationOptions parse(const std::string& text, const std::string& source) {
    std::string kind, mean, augment;
    Index input = 0, channels = 0, resize = 0, padding = 0;
    try {
      KeyValues fields = KeyValues::parse(text, ' ', "data/preparation");
      kind = fields.take<std::string>("kind");
      mean = fields.take<std::string>("mean");
      augment = fields.take<std::string>("augment");
      input = fields.take<Index>("input");
      channels = fields.take<Index>("channels");
      resize = fields.take<Index>("resize");
      padding = fields.take<Index>("padding");
      fields.finish();
    } catch (const ArgumentError& e) {
      throw CheckpointError(source + ": " + e.what());
    }
    if (kind != "small" && kind != "paper") throw CheckpointError(source + ": data/preparation: kind '" + kind + "'");
    if (mean != "channel" && mean != "image") throw CheckpointError(source + ": data/preparation: mean '" + mean + "'");
    auto bounded = [&](const char* key, Index v, Index lo, Index hi) {
      if (v < lo || v > hi) throw CheckpointError(detail::concat(source, ": data/preparation: ", key, " ", v, " is outside [", lo, ", ", hi, "]"));
    };
    bounded("input", input, 1, 1024);
    bounded("resize", resize, 1, kMaxResize);
    bounded("padding", padding, 0, 4096);
    bounded("channels", channels, 1, 3);
    return PreparationOptions()
        .kind(kind == "small" ? PreparationKind::Small : PreparationKind::ResizeAndCrop)
        .input_size(input).channels(channels).resize(resize).padding(padding).augment(augment)
        .mean(mean == "image" ? MeanKind::Image : MeanKind::Channel);
  }

  PreparationKind kind_;
  Index input_size_, channels_, resize_, padding_;
  std::string augment_;
  MeanKind mean_;
  bool crop_ = false, flip_ = false, alternating_flip_ = false, pca_wanted_ = false;  // what augment_ names
  Pipeline fixed_;
  ChannelStats stats_;
  std::optional<RgbPca> pca_;
  Image mean_image_;
  Index statistics_skipped_ = 0;
};

}  // namespace convnet
