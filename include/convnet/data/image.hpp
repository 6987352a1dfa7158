// Image: one picture as float values in CHW order (channel planes, rows,
// columns), the layout a network batch needs. Decoded 8-bit pictures hold
// values in [0, 255] until a transform normalises them.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"

namespace convnet {

struct Image {
  Index channels = 0, height = 0, width = 0;
  std::vector<float> pixels;  // channels * height * width, CHW

  Image() = default;
  Image(Index c, Index h, Index w, float value = 0.0f) { reset(c, h, w, value); }

  /// Sets the size; keeps the allocation when it is large enough.
  void resize(Index c, Index h, Index w) {
    channels = c;
    height = h;
    width = w;
    pixels.resize(static_cast<std::size_t>(c * h * w));
  }
  void reset(Index c, Index h, Index w, float value) {
    resize(c, h, w);
    std::fill(pixels.begin(), pixels.end(), value);
  }

  float& at(Index c, Index y, Index x) { return pixels[static_cast<std::size_t>((c * height + y) * width + x)]; }
  float at(Index c, Index y, Index x) const {
    return pixels[static_cast<std::size_t>((c * height + y) * width + x)];
  }
  float* plane(Index c) { return pixels.data() + c * height * width; }
  const float* plane(Index c) const { return pixels.data() + c * height * width; }

  /// "3x32x32" (C x H x W).
  std::string shape_str() const { return detail::concat(channels, "x", height, "x", width); }
  bool same_shape(const Image& o) const { return channels == o.channels && height == o.height && width == o.width; }
};

}  // namespace convnet
