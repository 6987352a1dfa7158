// What a picture does inside a network: the outputs of chosen layers (feature maps), drawn under
// the picture as a grid of channels per layer.
//
//   ActivationPicture a = draw_activations(model, decode_image("cat.png"),
//                                          ActivationPictureOptions().layers({"conv1", "relu2"}));
//   a.canvas.save_png("activations.png");
//
// The picture goes through the classifier's centre view (prepared as in training) and the network
// in evaluation mode. Each layer's maps share one stretch, [min, max] over all of that layer's
// values (black to white, said in its label), so that a quiet channel looks quiet beside a busy one;
// a map is scaled by a whole number to at least map_side() pixels. Dense layers (1 x 1 maps) are
// drawn as cells of 8 pixels, 64 a row.
#pragma once

#include <array>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../layers/conv2d.hpp"
#include "../models/sequential.hpp"
#include "classifier.hpp"
#include "picture_tiles.hpp"
#include "plot.hpp"

namespace convnet {

struct ActivationPictureOptions {
  /// The layers drawn, in this order; empty (the default): every convolution's output.
  ActivationPictureOptions& layers(std::vector<std::string> v) { layers_ = std::move(v); return *this; }
  /// The least side a map is drawn at, in pixels (default 40).
  ActivationPictureOptions& map_side(Index v) { map_side_ = v; return *this; }
  /// Maps a row (default 16).
  ActivationPictureOptions& columns(Index v) { columns_ = v; return *this; }
  /// The most channels drawn of one layer (default 256): the first ones, said in its label.
  ActivationPictureOptions& max_channels(Index v) { max_channels_ = v; return *this; }

  const std::vector<std::string>& layers() const { return layers_; }
  Index map_side() const { return map_side_; }
  Index columns() const { return columns_; }
  Index max_channels() const { return max_channels_; }

 private:
  std::vector<std::string> layers_;
  Index map_side_ = 40, columns_ = 16, max_channels_ = 256;
};

/// One layer's output for one picture: [channels, height, width] values.
struct LayerActivation {
  std::string layer;
  Index channels = 0, height = 0, width = 0;
  std::vector<float> values;
};

/// A drawn set of layers: the picture, and for each layer its stretch, its scale and where each map is.
struct ActivationPicture {
  struct Layer {
    std::string name;
    ValueRange range;
    Index scale = 0;
    std::vector<std::array<Index, 2>> origins;  ///< each drawn channel's map, top-left (x, y)
  };
  Canvas canvas{1, 1};
  std::vector<Layer> layers;
};

namespace detail {

/// The names of the network's convolutions, in order.
inline std::vector<std::string> convolution_names(Sequential<float>& net) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (dynamic_cast<Conv2d<float>*>(&net[i])) names.push_back(net[i].name());
  }
  return names;
}

/// A picture's centre view as a batch of one, in the network's input layout.
inline Tensor<float> centre_view_batch(const Classifier& model, const Image& picture) {
  const Image view = model.views(picture, EvalViews::Centre).front();
  Tensor<float> batch(1, view.channels, view.height, view.width);
  std::copy(view.pixels.begin(), view.pixels.end(), batch.data());
  return batch;
}

/// Runs `body` with the network in evaluation mode, and gives its mode back however body ends.
template <class Body>
auto in_eval_mode(Sequential<float>& net, Body body) {
  struct Restore {
    Sequential<float>& net;
    bool training;
    ~Restore() { net.set_training(training); }
  } restore{net, net.training()};
  net.eval();
  return body();
}

}  // namespace detail

/// The outputs of `layers` (each must be in the network) for the centre view of `picture`.
inline std::vector<LayerActivation> activations(Classifier& model, const Image& picture,
                                                const std::vector<std::string>& layers) {
  Sequential<float>& net = model.network();
  for (const auto& name : layers) net.layer(name);  // a wrong name is said before any work
  const Tensor<float> batch = detail::centre_view_batch(model, picture);
  return detail::in_eval_mode(net, [&] {
    net.forward(batch);
    std::vector<LayerActivation> out;
    for (const auto& name : layers) {
      const Tensor<float>& t = net.layer(name).output();
      const Shape s = shape_of(t);
      out.push_back({name, s.c, s.h, s.w, std::vector<float>(t.data(), t.data() + t.size())});
    }
    return out;
  });
}

/// `picture` above the maps of each of `options.layers()` (see the top of this file).
inline ActivationPicture draw_activations(Classifier& model, const Image& picture,
                                          const ActivationPictureOptions& options = {}) {
  constexpr Index kMargin = 8, kGap = 2, kLine = 14, kPictureSide = 128;
  detail::require_option(options.map_side() >= 1 && options.map_side() <= 512, "ActivationPictureOptions", "map_side",
                         "in [1, 512]", options.map_side());
  detail::require_option(options.columns() >= 1 && options.columns() <= 256, "ActivationPictureOptions", "columns",
                         "in [1, 256]", options.columns());
  detail::require_option(options.max_channels() >= 1 && options.max_channels() <= 4096, "ActivationPictureOptions",
                         "max_channels", "in [1, 4096]", options.max_channels());
  std::vector<std::string> names = options.layers().empty() ? detail::convolution_names(model.network()) : options.layers();
  if (names.empty()) throw ArgumentError("draw_activations: no layer to draw (the network has no convolution; name the layers)");
  if (names.size() > 64) throw ArgumentError(detail::concat("draw_activations: ", names.size(), " layers asked, at most 64"));
  const std::vector<LayerActivation> maps = activations(model, picture, names);

  // Sizes first, so that a picture too large is refused before anything is drawn.
  ActivationPicture out;
  Index width = 2 * kMargin + kPictureSide, height = 3 * kMargin + kPictureSide + kLine;
  std::vector<Index> shown;
  for (const auto& m : maps) {
    ActivationPicture::Layer layer;
    layer.name = m.layer;
    layer.range = ValueRange::of(m.values.data(), static_cast<Index>(m.values.size()));
    const bool cells = m.height == 1 && m.width == 1;  // a dense layer: a small cell a unit, many a row
    layer.scale = cells ? 8 : scale_for(std::max(m.height, m.width), options.map_side());
    shown.push_back(std::min(m.channels, options.max_channels()));
    const Index columns = std::min(shown.back(), cells ? 64 : options.columns()), rows = (shown.back() + columns - 1) / columns;
    width = std::max(width, 2 * kMargin + columns * (m.width * layer.scale + kGap));
    height += kLine + rows * (m.height * layer.scale + kGap) + kGap;
    out.layers.push_back(std::move(layer));
    Canvas::require_fits(static_cast<double>(width), static_cast<double>(height),
                         detail::concat("draw_activations: the maps up to ", m.layer));
  }
  out.canvas = Canvas(width, height);
  const Color black{0, 0, 0};
  out.canvas.draw_image(displayed_view(model.preparation(), model.views(picture, EvalViews::Centre).front()), kMargin,
                        kMargin, kPictureSide, kPictureSide);
  out.canvas.text(kMargin, kMargin + kPictureSide + 3, "the picture as the network sees it (centre view)", black);
  Index y = 2 * kMargin + kPictureSide + kLine;
  for (std::size_t l = 0; l < maps.size(); ++l) {
    const LayerActivation& m = maps[l];
    ActivationPicture::Layer& layer = out.layers[l];
    const bool cells = m.height == 1 && m.width == 1;
    const Index n = shown[l], columns = std::min(n, cells ? 64 : options.columns()), side_x = m.width * layer.scale,
                side_y = m.height * layer.scale;
    char range[64];
    std::snprintf(range, sizeof range, "[%.3g, %.3g]", static_cast<double>(layer.range.lo), static_cast<double>(layer.range.hi));
    out.canvas.text(kMargin, y, detail::concat(m.layer, ": ", m.channels, " maps ", m.height, "x", m.width,
                                               n < m.channels ? detail::concat(" (first ", n, ")") : std::string(), ", ", range),
                    black);
    y += kLine;
    for (Index c = 0; c < n; ++c) {
      const Index x0 = kMargin + (c % columns) * (side_x + kGap), y0 = y + (c / columns) * (side_y + kGap);
      draw_plane(out.canvas, m.values.data() + c * m.height * m.width, m.height, m.width, x0, y0, layer.scale, layer.range);
      layer.origins.push_back({x0, y0});
    }
    y += ((n + columns - 1) / columns) * (side_y + kGap) + kGap;
  }
  return out;
}

}  // namespace convnet
