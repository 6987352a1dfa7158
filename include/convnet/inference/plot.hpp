// Minimal drawing for reports: an RGB canvas with lines, rectangles and text
// (stb_easy_font's bitmap font), saved as PNG, and the training-curve plot
// (loss and accuracy against epochs, train and validation) the trainer writes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../data/image_io.hpp"
#include "../errors.hpp"
#include "../metrics.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

namespace convnet {

struct Color {
  std::uint8_t r = 0, g = 0, b = 0;
};

class Canvas {
 public:
  /// The largest picture a canvas holds: 16,384 pixels a side and 2^26 pixels (192 MiB of RGB),
  /// so that a size computed from a checkpoint or a flag (tile counts, class counts) is refused
  /// with its figures, never allocated.
  static constexpr Index kMaxSide = 16384, kMaxPixels = Index{1} << 26;

  Canvas(Index width, Index height, Color background = {255, 255, 255})
      : width_(checked_width(width, height)), height_(height),
        rgb_(static_cast<std::size_t>(width * height * 3)) {
    fill_rect(0, 0, width, height, background);
  }

  Index width() const { return width_; }
  Index height() const { return height_; }

  /// Whether a canvas of width x height pixels is allowed.
  static bool fits(double width, double height) {
    return width >= 1 && height >= 1 && width <= kMaxSide && height <= kMaxSide && width * height <= kMaxPixels;
  }
  /// An ArgumentError, naming `what` and the size, unless a canvas of that size is allowed: for a
  /// picture computed from counts (tiles, rows, classes), checked before any work it would draw.
  static void require_fits(double width, double height, const std::string& what) {
    if (!fits(width, height)) {
      throw ArgumentError(detail::concat(what, " make a picture of ", static_cast<long long>(width), " x ",
                                         static_cast<long long>(height), " pixels, over the limit of ", kMaxSide,
                                         " a side and ", kMaxPixels, " pixels in all"));
    }
  }

  void set(Index x, Index y, Color c) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    std::uint8_t* p = rgb_.data() + (y * width_ + x) * 3;
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  }
  void fill_rect(Index x, Index y, Index w, Index h, Color c) {
    for (Index j = std::max<Index>(0, y); j < std::min(height_, y + h); ++j)
      for (Index i = std::max<Index>(0, x); i < std::min(width_, x + w); ++i) set(i, j, c);
  }
  /// A line `thickness` pixels wide (Bresenham with a square pen).
  void line(double x0, double y0, double x1, double y1, Color c, int thickness = 1) {
    const double steps = std::max(std::abs(x1 - x0), std::abs(y1 - y0));
    const int n = std::max(1, static_cast<int>(std::ceil(steps)));
    for (int i = 0; i <= n; ++i) {
      const double t = static_cast<double>(i) / n;
      const Index x = static_cast<Index>(std::lround(x0 + t * (x1 - x0)));
      const Index y = static_cast<Index>(std::lround(y0 + t * (y1 - y0)));
      fill_rect(x - thickness / 2, y - thickness / 2, thickness, thickness, c);
    }
  }
  /// The most characters text() draws of one string; longer ones end in "..".
  static constexpr std::size_t kMaxTextChars = 64;
  /// `s` as text() draws it: bytes outside printable ASCII (UTF-8, controls) as '?', since
  /// stb_easy_font indexes its glyph table with them, and cut to kMaxTextChars, since a class
  /// name comes from a file and is never trusted to be short.
  static std::string drawable(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && out.size() < kMaxTextChars; ++i) {
      const unsigned char ch = static_cast<unsigned char>(s[i]);
      out.push_back(ch >= 0x20 && ch < 0x7F ? static_cast<char>(ch) : '?');
    }
    if (s.size() > kMaxTextChars) out.replace(kMaxTextChars - 2, 2, "..");
    return out;
  }
  /// Text with its top-left corner at (x, y); `scale` enlarges stb_easy_font's 7-pixel glyphs.
  void text(Index x, Index y, const std::string& s, Color c, int scale = 1) {
    std::string shown = drawable(s);
    std::vector<char> vertices(std::max<std::size_t>(1, shown.size()) * 270 * 4);  // stb's worst case: 270 bytes a character... x4 margin
    const int quads = stb_easy_font_print(0, 0, shown.data(), nullptr, vertices.data(), static_cast<int>(vertices.size()));
    for (int q = 0; q < quads; ++q) {
      const float* v0 = reinterpret_cast<const float*>(vertices.data() + q * 4 * 16);
      const float* v2 = reinterpret_cast<const float*>(vertices.data() + (q * 4 + 2) * 16);
      fill_rect(x + static_cast<Index>(v0[0] * scale), y + static_cast<Index>(v0[1] * scale),
                static_cast<Index>((v2[0] - v0[0]) * scale), static_cast<Index>((v2[1] - v0[1]) * scale), c);
    }
  }
  static Index text_width(const std::string& s, int scale = 1) {
    std::string shown = drawable(s);
    return stb_easy_font_width(shown.data()) * scale;
  }
  /// Copies an RGB picture (CHW, 0-255) scaled to w x h (nearest neighbour) at (x, y).
  void draw_image(const Image& image, Index x, Index y, Index w, Index h) {
    for (Index j = 0; j < h; ++j) {
      for (Index i = 0; i < w; ++i) {
        const Index sy = j * image.height / h, sx = i * image.width / w;
        auto clamp = [](float v) { return static_cast<std::uint8_t>(std::clamp(v, 0.0f, 255.0f)); };
        const Index c1 = std::min<Index>(1, image.channels - 1), c2 = std::min<Index>(2, image.channels - 1);
        set(x + i, y + j, {clamp(image.at(0, sy, sx)), clamp(image.at(c1, sy, sx)), clamp(image.at(c2, sy, sx))});
      }
    }
  }

  /// The colour at (x, y), which must be inside the canvas.
  Color pixel(Index x, Index y) const {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) {
      throw ArgumentError(detail::concat("Canvas::pixel: (", x, ", ", y, ") is outside ", width_, " x ", height_));
    }
    const std::uint8_t* p = rgb_.data() + (y * width_ + x) * 3;
    return {p[0], p[1], p[2]};
  }

  void save_png(const std::string& path) const { write_png(path, width_, height_, rgb_); }
  const std::vector<std::uint8_t>& pixels() const { return rgb_; }

 private:
  static Index checked_width(Index width, Index height) {
    if (!fits(static_cast<double>(width), static_cast<double>(height))) {
      throw ArgumentError(detail::concat("Canvas: a picture of ", width, " x ", height, " pixels is outside 1 x 1 to ",
                                         kMaxSide, " x ", kMaxSide, " and ", kMaxPixels, " pixels in all"));
    }
    return width;
  }

  Index width_, height_;
  std::vector<std::uint8_t> rgb_;
};

namespace detail {

inline std::string format_number(double v) {
  char buf[32];
  if (std::abs(v) >= 100 || v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  }
  return buf;
}

// One panel: axes with ticks and labels, two series against epochs, a legend.
inline void plot_panel(Canvas& canvas, Index left, Index top, Index w, Index h, const std::string& title,
                       const std::string& y_label, const std::vector<double>& train, const std::vector<double>& val,
                       bool percent) {
  const Color black{0, 0, 0}, grey{220, 220, 220}, blue{31, 119, 180}, orange{255, 127, 14};
  const Index x0 = left + 60, y0 = top + 30, pw = w - 80, ph = h - 80;  // plot area
  double lo = 1e300, hi = -1e300;
  for (double v : train) lo = std::min(lo, v), hi = std::max(hi, v);
  for (double v : val) lo = std::min(lo, v), hi = std::max(hi, v);
  if (percent) lo = std::min(lo, 0.0), hi = std::max(hi, 100.0) > 100.0 ? hi : 100.0;
  if (!(hi > lo)) hi = lo + 1;
  if (!percent) lo = std::min(0.0, lo);
  const int epochs = static_cast<int>(std::max(train.size(), val.size()));
  auto px = [&](double e) { return static_cast<double>(x0) + (epochs <= 1 ? 0.5 : (e - 1) / (epochs - 1)) * pw; };
  auto py = [&](double v) { return static_cast<double>(y0 + ph) - (v - lo) / (hi - lo) * ph; };
  canvas.text(x0 + pw / 2 - Canvas::text_width(title, 2) / 2, top + 5, title, black, 2);
  for (int i = 0; i <= 5; ++i) {  // horizontal grid and y ticks
    const double v = lo + (hi - lo) * i / 5;
    const double y = py(v);
    canvas.line(static_cast<double>(x0), y, static_cast<double>(x0 + pw), y, grey);
    const std::string label = format_number(v);
    canvas.text(x0 - 8 - Canvas::text_width(label), static_cast<Index>(y) - 3, label, black);
  }
  const int step = std::max(1, epochs / 10);
  for (int e = 1; e <= epochs; e += step) {  // x ticks
    const double x = px(e);
    canvas.line(x, static_cast<double>(y0 + ph), x, static_cast<double>(y0 + ph + 4), black);
    const std::string label = std::to_string(e);
    canvas.text(static_cast<Index>(x) - Canvas::text_width(label) / 2, y0 + ph + 8, label, black);
  }
  canvas.line(static_cast<double>(x0), static_cast<double>(y0), static_cast<double>(x0), static_cast<double>(y0 + ph), black);
  canvas.line(static_cast<double>(x0), static_cast<double>(y0 + ph), static_cast<double>(x0 + pw),
              static_cast<double>(y0 + ph), black);
  canvas.text(x0 + pw / 2 - Canvas::text_width("epoch") / 2, y0 + ph + 22, "epoch", black);
  canvas.text(left + 4, y0 - 16, y_label, black);
  auto series = [&](const std::vector<double>& values, Color c) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double x = px(static_cast<double>(i + 1)), y = py(values[i]);
      canvas.fill_rect(static_cast<Index>(x) - 2, static_cast<Index>(y) - 2, 5, 5, c);
      if (i > 0) canvas.line(px(static_cast<double>(i)), py(values[i - 1]), x, y, c, 2);
    }
  };
  series(train, blue);
  series(val, orange);
  const Index lx = x0 + pw - 110, ly = y0 + 8;
  canvas.fill_rect(lx, ly, 14, 4, blue);
  canvas.text(lx + 20, ly - 2, "train", black);
  canvas.fill_rect(lx, ly + 14, 14, 4, orange);
  canvas.text(lx + 20, ly + 12, "validation", black);
}

}  // namespace detail

/// Writes the loss and accuracy curves of a run (train and validation against epochs) to a PNG.
inline void plot_training_curves(const std::vector<EpochRecord>& history, const std::string& path) {
  std::vector<double> tl, vl, ta, va;
  for (const auto& r : history) {
    tl.push_back(r.train_loss);
    vl.push_back(r.val_loss);
    ta.push_back(100 * r.train_accuracy);
    va.push_back(100 * r.val_accuracy);
  }
  Canvas canvas(1000, 420);
  detail::plot_panel(canvas, 0, 0, 500, 420, "Loss", "cross-entropy", tl, vl, false);
  detail::plot_panel(canvas, 500, 0, 500, 420, "Accuracy", "top-1 (%)", ta, va, true);
  canvas.save_png(path);
}

}  // namespace convnet
