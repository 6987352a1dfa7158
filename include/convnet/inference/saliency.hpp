// Where a network looks: the gradient of a class score with respect to the input pixels
// (Simonyan, Vedaldi & Zisserman 2014, "saliency map": the largest |gradient| over a pixel's
// channels) and Grad-CAM (Selvaraju et al. 2017) at a convolution's activation: the maps A_c of
// that layer weighted by the mean gradient of the score over each, sum_c alpha_c A_c, negative
// parts cut. Both come from one backward pass; the score is the network's output for the class
// (fc8's logit, before the softmax), and the network's weights and gradients are left as they were.
//
//   Saliency s = saliency(model, decode_image("cat.png"));               // the top class
//   draw_saliency(model, picture, s).save_png("saliency.png");
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../layers/conv2d.hpp"
#include "../models/sequential.hpp"
#include "activations.hpp"
#include "classifier.hpp"
#include "picture_tiles.hpp"
#include "plot.hpp"

namespace convnet {

struct SaliencyOptions {
  /// The class whose score is explained; -1 (the default): the network's top class for the picture.
  SaliencyOptions& class_index(Index v) { class_index_ = v; return *this; }
  /// Grad-CAM's layer; "" (the default): the last convolution's activation (the last layer after the
  /// last Conv2d that keeps its output's shape: its BatchNorm, ReLU or LRN); "none": no Grad-CAM.
  SaliencyOptions& cam_layer(std::string v) { cam_layer_ = std::move(v); return *this; }

  Index class_index() const { return class_index_; }
  const std::string& cam_layer() const { return cam_layer_; }

 private:
  Index class_index_ = -1;
  std::string cam_layer_;
};

struct Saliency {
  Index class_index = 0;
  double score = 0;                   ///< the network's output for the class
  Tensor<float> input_gradient;       ///< d score / d input, the input's shape [1, C, H, W]
  Index height = 0, width = 0;        ///< the input's
  std::vector<float> map;             ///< H x W: the largest |gradient| over the channels of each pixel
  std::string cam_layer;              ///< empty without Grad-CAM
  Index cam_height = 0, cam_width = 0;
  std::vector<float> cam;             ///< cam_height x cam_width, >= 0: sum_c alpha_c A_c, negative parts cut
};

namespace detail {

// The index of the layer Grad-CAM reads, or size() for none.
inline std::size_t cam_layer_index(Sequential<float>& net, const std::string& name, const Shape& input) {
  if (name == "none") return net.size();
  if (!name.empty()) {
    for (std::size_t i = 0; i < net.size(); ++i) {
      if (net[i].name() == name) return i;
    }
    net.layer(name);  // throws, naming the layer
  }
  std::size_t last = net.size();
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (dynamic_cast<Conv2d<float>*>(&net[i])) last = i;
  }
  if (last == net.size()) return last;  // no convolution: no Grad-CAM
  Shape shape = input;
  std::vector<Shape> outputs;
  for (std::size_t i = 0; i < net.size(); ++i) outputs.push_back(shape = net[i].output_shape(shape));
  while (last + 1 < net.size() && outputs[last + 1] == outputs[last]) ++last;
  return last;
}

}  // namespace detail

/// The saliency map and Grad-CAM of one prepared input [1, C, H, W] (what the network reads).
inline Saliency saliency(Sequential<float>& net, const Tensor<float>& input, const SaliencyOptions& options = {}) {
  const Shape in = shape_of(input);
  if (in.n != 1) throw ShapeError("saliency (one input)", "[1, C, H, W]", in.str());
  const std::size_t cam = detail::cam_layer_index(net, options.cam_layer(), in);
  // Evaluation mode, the input's gradient on, every layer frozen (no parameter gradient is touched);
  // all as they were afterwards, however this ends.
  struct Restore {
    Sequential<float>& net;
    bool training, input_gradient;
    std::vector<bool> trainable;
    ~Restore() {
      for (std::size_t i = 0; i < trainable.size(); ++i) net[i].set_trainable(trainable[i]);
      net.set_input_gradient(input_gradient);
      net.set_training(training);
    }
  } restore{net, net.training(), net.input_gradient(), {}};
  for (std::size_t i = 0; i < net.size(); ++i) {
    restore.trainable.push_back(net[i].trainable());
    net[i].set_trainable(false);
  }
  net.eval();
  net.set_input_gradient(true);

  const Tensor<float>& scores = net.forward(input);
  const Index classes = scores.size();
  Saliency out;
  out.class_index = options.class_index() >= 0
                        ? options.class_index()
                        : static_cast<Index>(std::max_element(scores.data(), scores.data() + classes) - scores.data());
  if (out.class_index >= classes) {
    throw ArgumentError(detail::concat("saliency: class ", out.class_index, " is outside the network's ", classes, " outputs"));
  }
  out.score = scores.data()[out.class_index];
  Tensor<float> seed(shape_of(scores).n, shape_of(scores).c, shape_of(scores).h, shape_of(scores).w);
  seed.setZero();
  seed.data()[out.class_index] = 1;
  const Tensor<float>* gradient = &seed;
  Tensor<float> cam_gradient;  // d score / d (the Grad-CAM layer's output)
  for (std::size_t i = net.size(); i-- > 0;) {
    if (i == cam) cam_gradient = *gradient;
    gradient = &net[i].backward(*gradient);
  }
  out.input_gradient = *gradient;
  out.height = in.h;
  out.width = in.w;
  out.map.assign(static_cast<std::size_t>(in.h * in.w), 0.0f);
  for (Index c = 0; c < in.c; ++c)
    for (Index p = 0; p < in.h * in.w; ++p)
      out.map[static_cast<std::size_t>(p)] = std::max(out.map[static_cast<std::size_t>(p)], std::abs(gradient->data()[c * in.h * in.w + p]));

  if (cam < net.size()) {
    const Tensor<float>& a = net[cam].output();
    const Shape s = shape_of(a);
    out.cam_layer = net[cam].name();
    out.cam_height = s.h;
    out.cam_width = s.w;
    out.cam.assign(static_cast<std::size_t>(s.h * s.w), 0.0f);
    const Index plane = s.h * s.w;
    for (Index c = 0; c < s.c; ++c) {
      double alpha = 0;
      for (Index p = 0; p < plane; ++p) alpha += cam_gradient.data()[c * plane + p];
      alpha /= static_cast<double>(plane);
      for (Index p = 0; p < plane; ++p) out.cam[static_cast<std::size_t>(p)] += static_cast<float>(alpha * a.data()[c * plane + p]);
    }
    for (float& v : out.cam) v = std::max(v, 0.0f);
  }
  return out;
}

/// The saliency of `picture`'s centre view, prepared as the classifier prepares it.
inline Saliency saliency(Classifier& model, const Image& picture, const SaliencyOptions& options = {}) {
  return saliency(model.network(), detail::centre_view_batch(model, picture), options);
}

namespace detail {

// `values` (h x w) resampled to out_h x out_w, bilinearly, pixel centres aligned.
inline std::vector<float> resample(const std::vector<float>& values, Index h, Index w, Index out_h, Index out_w) {
  std::vector<float> out(static_cast<std::size_t>(out_h * out_w));
  auto at = [&](Index y, Index x) { return values[static_cast<std::size_t>(std::clamp<Index>(y, 0, h - 1) * w + std::clamp<Index>(x, 0, w - 1))]; };
  for (Index j = 0; j < out_h; ++j) {
    const double sy = (j + 0.5) * static_cast<double>(h) / static_cast<double>(out_h) - 0.5;
    const Index y0 = static_cast<Index>(std::floor(sy));
    const double fy = sy - static_cast<double>(y0);
    for (Index i = 0; i < out_w; ++i) {
      const double sx = (i + 0.5) * static_cast<double>(w) / static_cast<double>(out_w) - 0.5;
      const Index x0 = static_cast<Index>(std::floor(sx));
      const double fx = sx - static_cast<double>(x0);
      out[static_cast<std::size_t>(j * out_w + i)] = static_cast<float>(
          (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)));
    }
  }
  return out;
}

// Values (h x w, >= 0) as the hot colour map, over `under` with opacity `alpha`, at (x, y) in side x side.
inline void draw_heat(Canvas& canvas, const std::vector<float>& values, Index h, Index w, const Canvas* under,
                      Index x, Index y, Index side, double alpha) {
  const std::vector<float> big = resample(values, h, w, side, side);
  const float top = std::max(1e-30f, *std::max_element(big.begin(), big.end()));
  for (Index j = 0; j < side; ++j) {
    for (Index i = 0; i < side; ++i) {
      const Color heat = heat_color(big[static_cast<std::size_t>(j * side + i)] / top);
      canvas.set(x + i, y + j, under ? blend(heat, under->pixel(x + i, y + j), alpha) : heat);
    }
  }
}

}  // namespace detail

/// Three panels: the centre view as the network saw it, the saliency map, and Grad-CAM over the
/// view (when `s` has one), each `side` pixels square, labelled with the class and its score.
inline Canvas draw_saliency(Classifier& model, const Image& picture, const Saliency& s, Index side = 224) {
  detail::require_option(side >= 16 && side <= 2048, "draw_saliency", "side", "in [16, 2048]", side);
  constexpr Index kMargin = 8, kLine = 14;
  const Index panels = s.cam.empty() ? 2 : 3;
  Canvas canvas(kMargin + panels * (side + kMargin), 2 * kMargin + 2 * kLine + side);
  const Color black{0, 0, 0};
  const Image view = displayed_view(model.preparation(), model.views(picture, EvalViews::Centre).front());
  const std::string name = s.class_index < model.classes() ? model.class_names()[static_cast<std::size_t>(s.class_index)]
                                                           : detail::concat("class ", s.class_index);
  char score[32];
  std::snprintf(score, sizeof score, "%.3g", s.score);
  canvas.text(kMargin, kMargin, detail::concat("class ", s.class_index, " (", name, "), score ", score), black);
  const Index y = kMargin + 2 * kLine;
  canvas.draw_image(view, kMargin, y, side, side);
  canvas.text(kMargin, y - kLine + 2, "the centre view", black);
  const Index x1 = kMargin + side + kMargin;
  detail::draw_heat(canvas, s.map, s.height, s.width, nullptr, x1, y, side, 1.0);
  canvas.text(x1, y - kLine + 2, "saliency: max |d score / d pixel|", black);
  if (!s.cam.empty()) {
    const Index x2 = x1 + side + kMargin;
    canvas.draw_image(view, x2, y, side, side);
    detail::draw_heat(canvas, s.cam, s.cam_height, s.cam_width, &canvas, x2, y, side, 0.5);
    canvas.text(x2, y - kLine + 2, detail::concat("Grad-CAM at ", s.cam_layer, " (", s.cam_height, "x", s.cam_width, ")"), black);
  }
  return canvas;
}

}  // namespace convnet
