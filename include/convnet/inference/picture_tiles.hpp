// What the inspection pictures share (filters, activations, saliency, neighbours, confusion): how
// values become grey levels, the colour maps, tiles drawn at a whole-number scale, and a prepared
// view turned back into the pixels it was made from, so that what is drawn is what the network saw.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "../data/image.hpp"
#include "../data/preparation.hpp"
#include "../data/transforms.hpp"
#include "../errors.hpp"
#include "../random.hpp"
#include "plot.hpp"

namespace convnet {

/// The values drawn from black (lo) to white (hi), linearly.
struct ValueRange {
  float lo = 0, hi = 0;

  /// [min, max] of `values`.
  static ValueRange of(const float* values, Index count) {
    if (count <= 0) return {};
    const auto [lo, hi] = std::minmax_element(values, values + count);
    return {*lo, *hi};
  }
  /// [-m, m], m the largest |value|: zero is mid-grey (128) and a weight's sign is its side of grey.
  static ValueRange symmetric(const float* values, Index count) {
    float m = 0;
    for (Index i = 0; i < count; ++i) m = std::max(m, std::abs(values[i]));
    return {-m, m};
  }
  /// 0 at lo, 255 at hi, rounded, clamped; a range of one value draws everything 128.
  std::uint8_t level(float v) const {
    if (!(hi > lo)) return 128;
    const double t = (static_cast<double>(v) - lo) / (static_cast<double>(hi) - lo);
    return static_cast<std::uint8_t>(std::lround(std::clamp(t, 0.0, 1.0) * 255));
  }
};

/// The "hot" colour map for t in [0, 1]: black, red (1/3), yellow (2/3), white: saliency and Grad-CAM.
inline Color heat_color(double t) {
  const double v = std::clamp(t, 0.0, 1.0) * 3;
  auto byte = [](double x) { return static_cast<std::uint8_t>(std::lround(std::clamp(x, 0.0, 1.0) * 255)); };
  return {byte(v), byte(v - 1), byte(v - 2)};
}

/// `a` over `b` with opacity `alpha` in [0, 1].
inline Color blend(Color a, Color b, double alpha) {
  auto mix = [&](std::uint8_t x, std::uint8_t y) {
    return static_cast<std::uint8_t>(std::lround(alpha * x + (1 - alpha) * y));
  };
  return {mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b)};
}

/// One plane of h x w values as grey squares of `scale` pixels, top-left at (x, y).
inline void draw_plane(Canvas& canvas, const float* plane, Index h, Index w, Index x, Index y, Index scale,
                       const ValueRange& range) {
  for (Index j = 0; j < h; ++j) {
    for (Index i = 0; i < w; ++i) {
      const std::uint8_t g = range.level(plane[j * w + i]);
      canvas.fill_rect(x + i * scale, y + j * scale, scale, scale, {g, g, g});
    }
  }
}

/// Three planes of h x w values (CHW) as RGB squares of `scale` pixels, each channel through `range`.
inline void draw_rgb_planes(Canvas& canvas, const float* chw, Index h, Index w, Index x, Index y, Index scale,
                            const ValueRange& range) {
  const Index plane = h * w;
  for (Index j = 0; j < h; ++j) {
    for (Index i = 0; i < w; ++i) {
      const Index k = j * w + i;
      canvas.fill_rect(x + i * scale, y + j * scale, scale, scale,
                       {range.level(chw[k]), range.level(chw[plane + k]), range.level(chw[2 * plane + k])});
    }
  }
}

/// The least whole-number scale that draws `side` values at least `pixels` wide (at most 64).
inline Index scale_for(Index side, Index pixels) {
  return std::clamp<Index>((pixels + std::max<Index>(side, 1) - 1) / std::max<Index>(side, 1), 1, 64);
}

/// A view that `preparation` made (normalised, cropped) as the 0-255 pixels it shows: the
/// normalisation undone and, for a preparation with a mean picture, that picture's centre added back.
inline Image displayed_view(const Preparation& preparation, Image view) {
  const ChannelStats& stats = preparation.channel_stats();
  if (static_cast<std::size_t>(view.channels) != stats.mean.size()) {
    throw ShapeError("displayed_view", detail::concat(stats.mean.size(), " channels"), view.shape_str());
  }
  for (Index c = 0; c < view.channels; ++c) {
    const float mean = static_cast<float>(stats.mean[static_cast<std::size_t>(c)]);
    const float deviation = static_cast<float>(stats.stddev[static_cast<std::size_t>(c)]);
    float* p = view.plane(c);
    for (Index i = 0; i < view.height * view.width; ++i) p[i] = p[i] * deviation + mean;
  }
  const Image& mean_picture = preparation.mean_image();
  if (!mean_picture.pixels.empty()) {
    Image centre = mean_picture;
    Rng unused(0);
    CenterCrop(view.height, view.width).apply(centre, unused);
    for (std::size_t i = 0; i < view.pixels.size(); ++i) view.pixels[i] += centre.pixels[i];
  }
  return view;
}

}  // namespace convnet
