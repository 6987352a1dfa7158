// A confusion matrix as a heat map: a row per true class, a column per predicted one, each cell
// coloured by the share of the row's pictures it holds (white 0 to dark blue 1, by its square root,
// so that a row's colours are comparable whatever its class's size), with its count written in when the cells are
// large enough, the class names beside the rows and each class's accuracy as a bar on the right.
// Readable for 10 classes (cells of 44 pixels) and for 100 (cells of 12); at most 1,000 classes.
//
//   ConfusionPicture p = draw_confusion(report.confusion, report.class_names);
//   p.canvas.save_png("confusion.png");
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../metrics.hpp"
#include "picture_tiles.hpp"
#include "plot.hpp"

namespace convnet {

/// The colour of a cell holding `share` of its row (clamped to [0, 1]): white to dark blue, linearly in
/// the square root of the share, so that a confusion of a few percent shows beside a diagonal of 90%.
inline Color confusion_color(double share) {
  const double t = std::sqrt(std::clamp(share, 0.0, 1.0));
  auto channel = [&](double to) { return static_cast<std::uint8_t>(std::lround(255 + t * (to - 255))); };
  return {channel(8), channel(48), channel(107)};
}

struct ConfusionPicture {
  Canvas canvas{1, 1};
  Index cell = 0;          ///< a cell's side in pixels
  Index left = 0, top = 0;  ///< the top-left corner of the cell (true 0, predicted 0)
};

/// The heat map of `confusion` (see the top of this file); `class_names` may be shorter (numbered then).
inline ConfusionPicture draw_confusion(const ConfusionMatrix& confusion, const std::vector<std::string>& class_names) {
  constexpr Index kMaxClasses = 1000, kMargin = 8, kLine = 14, kBar = 100;
  const Index classes = confusion.classes();
  if (classes < 1 || classes > kMaxClasses) {
    throw ArgumentError(detail::concat("draw_confusion: ", classes, " classes; between 1 and ", kMaxClasses));
  }
  ConfusionPicture out;
  // 44-pixel cells for 10 classes, 12 for 11-100 (text is 7 pixels high), then smaller: 1,000 classes get 2.
  out.cell = classes <= 100 ? std::clamp<Index>(440 / classes, 12, 44) : std::max<Index>(2, 2000 / classes);
  const bool labelled = out.cell >= 10;  // a row of text is 7 pixels high
  const bool counts = out.cell >= 24;
  auto name = [&](Index c) {
    return detail::concat(c, " ", c < static_cast<Index>(class_names.size()) ? class_names[static_cast<std::size_t>(c)] : std::string());
  };
  Index names_width = 0;
  if (labelled) {
    for (Index c = 0; c < classes; ++c) names_width = std::max(names_width, Canvas::text_width(name(c)));
  }
  out.left = kMargin + names_width + 6;
  out.top = kMargin + 3 * kLine + (labelled ? kLine : 0);
  const Index grid = classes * out.cell;
  out.canvas = Canvas(out.left + grid + 12 + kBar + 50 + kMargin, out.top + grid + kLine + kMargin);
  const Color black{0, 0, 0}, grey{200, 200, 200}, bar{70, 110, 170};
  Index total = 0, right = 0;
  for (Index t = 0; t < classes; ++t) {
    for (Index p = 0; p < classes; ++p) total += confusion.count(t, p);
    right += confusion.count(t, t);
  }
  char accuracy[48];
  std::snprintf(accuracy, sizeof accuracy, "%.2f%%", total ? 100.0 * static_cast<double>(right) / static_cast<double>(total) : 0.0);
  out.canvas.text(kMargin, kMargin, detail::concat("confusion matrix: ", total, " pictures, top-1 ", accuracy), black);
  out.canvas.text(kMargin, kMargin + kLine, "rows: true class; colour: share of the row", black);
  out.canvas.text(out.left, kMargin + 2 * kLine, "predicted ->", black);
  out.canvas.text(out.left + grid + 12, out.top - kLine, "class accuracy", black);
  for (Index t = 0; t < classes; ++t) {
    Index row = 0;
    for (Index p = 0; p < classes; ++p) row += confusion.count(t, p);
    const Index y = out.top + t * out.cell;
    for (Index p = 0; p < classes; ++p) {
      const Index n = confusion.count(t, p), x = out.left + p * out.cell;
      const double share = row ? static_cast<double>(n) / static_cast<double>(row) : 0.0;
      const Color c = confusion_color(share);
      out.canvas.fill_rect(x, y, out.cell, out.cell, c);
      if (counts && n > 0) {
        const std::string text = std::to_string(n);
        const Color ink = share > 0.5 ? Color{255, 255, 255} : black;
        out.canvas.text(x + (out.cell - Canvas::text_width(text)) / 2, y + out.cell / 2 - 4, text, ink);
      }
    }
    if (labelled) {
      const std::string label = name(t);
      out.canvas.text(out.left - 6 - Canvas::text_width(label), y + out.cell / 2 - 4, label, black);
    }
    const double a = confusion.class_accuracy(t);
    const Index bx = out.left + grid + 12, bh = std::max<Index>(1, std::min<Index>(out.cell - 2, 10));
    out.canvas.fill_rect(bx, y + (out.cell - bh) / 2, kBar, bh, Color{235, 235, 235});
    out.canvas.fill_rect(bx, y + (out.cell - bh) / 2, static_cast<Index>(std::lround(kBar * a)), bh, bar);
    if (labelled) {
      char text[16];
      std::snprintf(text, sizeof text, "%.1f%%", 100 * a);
      out.canvas.text(bx + kBar + 4, y + out.cell / 2 - 4, text, black);
    }
  }
  if (labelled) {  // column numbers, every one when they fit, else every tenth
    const Index every = out.cell >= 20 ? 1 : 10;
    for (Index p = 0; p < classes; p += every) {
      const std::string text = std::to_string(p);
      out.canvas.text(out.left + p * out.cell + (out.cell - Canvas::text_width(text)) / 2, out.top - kLine + 2, text, black);
    }
  }
  // Grid lines between cells large enough to show them.
  if (out.cell >= 10) {
    for (Index i = 0; i <= classes; ++i) {
      out.canvas.fill_rect(out.left + i * out.cell, out.top, 1, grid, grey);
      out.canvas.fill_rect(out.left, out.top + i * out.cell, grid, 1, grey);
    }
  }
  return out;
}

}  // namespace convnet
