// The kernels of a convolution as a picture: the paper's Figure 3 (its 96 first-layer kernels,
// 11 x 11 x 3, the two towers' 48 each in a row of their own).
//
//   FilterPicture f = draw_filters(model.network(), FilterPictureOptions().layer("conv1"));
//   f.canvas.save_png("conv1.png");
//
// Every kernel is a tile of kernel_size x scale pixels, stretched on its own: the range is
// [-m, m] with m its largest |weight|, so grey is zero, and a kernel's pattern shows whatever its
// size. A kernel that reads 3 channels is drawn in RGB (each channel through that range), one that
// reads 1 in grey; one that reads more (conv2 and above) as the length of its weight vector at
// each position (grey, from black at 0 to white at the kernel's longest). A grouped convolution
// is drawn a group under the other, labelled, as the paper draws its two towers.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../layers/conv2d.hpp"
#include "../models/sequential.hpp"
#include "picture_tiles.hpp"
#include "plot.hpp"

namespace convnet {

struct FilterPictureOptions {
  /// The convolution drawn; "" (the default): the network's first.
  FilterPictureOptions& layer(std::string v) { layer_ = std::move(v); return *this; }
  /// Pixels a weight; 0 (the default): the least that draws a kernel 40 pixels wide (11 x 11: 4, 5 x 5: 8).
  FilterPictureOptions& scale(Index v) { scale_ = v; return *this; }
  /// Tiles a row within a group; 0 (the default): 16, fewer when the group has fewer.
  FilterPictureOptions& columns(Index v) { columns_ = v; return *this; }

  const std::string& layer() const { return layer_; }
  Index scale() const { return scale_; }
  Index columns() const { return columns_; }

 private:
  std::string layer_;
  Index scale_ = 0, columns_ = 0;
};

/// A drawn convolution: the picture and where each kernel's tile is, for whoever annotates it.
struct FilterPicture {
  Canvas canvas{1, 1};
  std::string layer;
  Index scale = 0, tile = 0;                  ///< pixels a weight; a tile's side (kernel_size x scale)
  std::vector<std::array<Index, 2>> origins;  ///< each kernel's tile, top-left (x, y), in output-channel order
};

namespace detail {

/// The Conv2d called `name` ("" the first), or an ArgumentError naming what the network has.
inline Conv2d<float>& convolution_named(Sequential<float>& net, const std::string& name) {
  std::string convolutions;
  for (std::size_t i = 0; i < net.size(); ++i) {
    auto* conv = dynamic_cast<Conv2d<float>*>(&net[i]);
    if (conv && (name.empty() || net[i].name() == name)) return *conv;
    if (conv) convolutions += (convolutions.empty() ? "" : ", ") + net[i].name();
  }
  if (name.empty()) throw ArgumentError("the network has no convolution to draw");
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (net[i].name() == name) {
      throw ArgumentError(concat("layer '", name, "' is a ", net[i].type_name(), ", not a convolution (the network's: ",
                                 convolutions, ")"));
    }
  }
  throw ArgumentError(concat("the network has no layer '", name, "' (its convolutions: ", convolutions, ")"));
}

}  // namespace detail

/// Every kernel of `conv` as a tile (see the top of this file).
inline FilterPicture draw_filters(Conv2d<float>& conv, const FilterPictureOptions& options = {}) {
  constexpr Index kMaxKernels = 16384, kMargin = 8, kGap = 2, kLine = 14;
  const Conv2dOptions& o = conv.options();
  const Index kernels = o.out_channels(), groups = o.groups(), per_group = kernels / groups;
  const Index depth = o.in_channels() / groups, k = o.kernel_size();
  detail::require_option(options.scale() >= 0 && options.scale() <= 64, "FilterPictureOptions", "scale", "in [0, 64]",
                         options.scale());
  detail::require_option(options.columns() >= 0 && options.columns() <= 1024, "FilterPictureOptions", "columns",
                         "in [0, 1024]", options.columns());
  if (kernels > kMaxKernels) {
    throw ArgumentError(detail::concat(conv.name(), " has ", kernels, " kernels: at most ", kMaxKernels, " are drawn"));
  }
  FilterPicture out;
  out.layer = conv.name();
  out.scale = options.scale() > 0 ? options.scale() : scale_for(k, 40);
  out.tile = k * out.scale;
  const Index columns = std::min(per_group, options.columns() > 0 ? options.columns() : 16);
  const Index rows = (per_group + columns - 1) / columns;
  const std::string title = detail::concat(conv.name(), ": ", kernels, " kernels of ", k, "x", k, "x", depth);
  const std::string how = depth == 3 ? "RGB, each on its own [-max, max]" : depth == 1 ? "grey, each on its own [-max, max]"
                                                                                      : "length over channels, each on [0, max]";
  const Index group_height = (groups > 1 ? kLine : 0) + rows * out.tile + (rows - 1) * kGap;
  const Index width = std::max({2 * kMargin + columns * out.tile + (columns - 1) * kGap, 2 * kMargin + Canvas::text_width(title),
                                2 * kMargin + Canvas::text_width(how)});
  const Index height = 2 * kMargin + 2 * kLine + groups * group_height + (groups - 1) * kLine;
  Canvas::require_fits(static_cast<double>(width), static_cast<double>(height),
                       detail::concat(conv.name(), ": ", kernels, " kernels at scale ", out.scale));
  out.canvas = Canvas(width, height);
  const Color black{0, 0, 0};
  out.canvas.text(kMargin, kMargin, title, black);
  out.canvas.text(kMargin, kMargin + kLine, how, black);
  const float* weights = conv.parameters()[0].value;
  const Index size = depth * k * k;
  std::vector<float> lengths(static_cast<std::size_t>(k * k));
  for (Index g = 0; g < groups; ++g) {
    Index y = kMargin + 2 * kLine + g * (group_height + kLine);
    if (groups > 1) {
      out.canvas.text(kMargin, y, detail::concat("group ", g + 1, " of ", groups, ": kernels ", g * per_group + 1, "-",
                                                 (g + 1) * per_group), black);
      y += kLine;
    }
    for (Index i = 0; i < per_group; ++i) {
      const Index kernel = g * per_group + i;
      const Index tx = kMargin + (i % columns) * (out.tile + kGap), ty = y + (i / columns) * (out.tile + kGap);
      const float* w = weights + kernel * size;
      if (depth == 1 || depth == 3) {
        const ValueRange range = ValueRange::symmetric(w, size);
        if (depth == 3) draw_rgb_planes(out.canvas, w, k, k, tx, ty, out.scale, range);
        else draw_plane(out.canvas, w, k, k, tx, ty, out.scale, range);
      } else {
        for (Index p = 0; p < k * k; ++p) {
          double sum = 0;
          for (Index c = 0; c < depth; ++c) sum += static_cast<double>(w[c * k * k + p]) * w[c * k * k + p];
          lengths[static_cast<std::size_t>(p)] = static_cast<float>(std::sqrt(sum));
        }
        const ValueRange range{0, *std::max_element(lengths.begin(), lengths.end())};
        draw_plane(out.canvas, lengths.data(), k, k, tx, ty, out.scale, range);
      }
      out.origins.push_back({tx, ty});
    }
  }
  return out;
}

/// The kernels of the network's convolution options.layer() (its first by default).
inline FilterPicture draw_filters(Sequential<float>& net, const FilterPictureOptions& options = {}) {
  return draw_filters(detail::convolution_named(net, options.layer()), options);
}

}  // namespace convnet
