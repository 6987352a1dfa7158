// Inspection (inference/filters.hpp, activations.hpp, saliency.hpp, neighbours.hpp,
// confusion_picture.hpp): each picture drawn from constructed inputs whose answer is known, pixel
// for pixel where the picture is the answer.
#include <gtest/gtest.h>

#include <convnet/data/dataset.hpp>
#include <convnet/data/image.hpp>
#include <convnet/inference/activations.hpp>
#include <convnet/inference/classifier.hpp>
#include <convnet/inference/confusion_picture.hpp>
#include <convnet/inference/filters.hpp>
#include <convnet/inference/neighbours.hpp>
#include <convnet/inference/picture_tiles.hpp>
#include <convnet/inference/saliency.hpp>
#include <convnet/layers/adaptive_avg_pool2d.hpp>
#include <convnet/layers/conv2d.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/layers/flatten.hpp>
#include <convnet/layers/relu.hpp>
#include <convnet/models/sequential.hpp>
#include <convnet/random.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace {

using namespace convnet;

void expect_colour(const Canvas& canvas, Index x, Index y, Color want, const std::string& where) {
  const Color got = canvas.pixel(x, y);
  EXPECT_TRUE(got.r == want.r && got.g == want.g && got.b == want.b)
      << where << " at (" << x << ", " << y << "): got " << int(got.r) << "," << int(got.g) << "," << int(got.b) << ", want "
      << int(want.r) << "," << int(want.g) << "," << int(want.b);
}

// Every pixel of a tile of h x w squares of `scale` pixels at `origin`.
template <class Want>
void expect_tile(const Canvas& canvas, std::array<Index, 2> origin, Index h, Index w, Index scale, Want want,
                 const std::string& where) {
  for (Index y = 0; y < h * scale; ++y)
    for (Index x = 0; x < w * scale; ++x)
      expect_colour(canvas, origin[0] + x, origin[1] + y, want(y / scale, x / scale), where);
}

// A classifier whose preparation leaves pictures as they are (mean 0, deviation 1, the input size).
Classifier identity_classifier(Sequential<float> net, Index side, std::vector<std::string> names) {
  return Classifier(std::move(net), side, ChannelStats{{0, 0, 0}, {1, 1, 1}}, std::move(names));
}

// ---- filters ----------------------------------------------------------------------------------

TEST(Filters, RgbKernelsAreTheirWeightsStretchedAroundGrey) {
  Sequential<float> net;
  auto& conv = net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 2, 2).bias(false));
  float* w = conv.parameters()[0].value;  // [2, 3, 2, 2]
  std::fill(w, w + 24, 0.0f);
  w[0 * 4 + 0] = 2;    // kernel 0, red, (0, 0)
  w[1 * 4 + 1] = -2;   // kernel 0, green, (0, 1)
  w[2 * 4 + 3] = 1;    // kernel 0, blue, (1, 1): half of the largest |weight|
  std::fill(w + 12, w + 24, 0.5f);  // kernel 1: uniform, its own largest
  const FilterPicture f = draw_filters(net, FilterPictureOptions().scale(3));
  ASSERT_EQ(f.origins.size(), 2u);
  EXPECT_EQ(f.layer, "conv1");
  EXPECT_EQ(f.tile, 6);
  const std::uint8_t grey = 128, three_quarters = 191;  // 1 on [-2, 2]: 255 x 0.75 = 191.25
  expect_tile(f.canvas, f.origins[0], 2, 2, 3, [&](Index y, Index x) {
    const Index k = y * 2 + x;
    return Color{k == 0 ? std::uint8_t{255} : grey, k == 1 ? std::uint8_t{0} : grey, k == 3 ? three_quarters : grey};
  }, "kernel 0");
  expect_tile(f.canvas, f.origins[1], 2, 2, 3, [](Index, Index) { return Color{255, 255, 255}; }, "kernel 1");
  EXPECT_GT(f.origins[1][0], f.origins[0][0]);  // side by side
  EXPECT_EQ(f.origins[1][1], f.origins[0][1]);
  // The default scale draws a kernel at least 40 pixels wide: 11 x 11 at 4, 5 x 5 at 8.
  EXPECT_EQ(draw_filters(net).scale, 20);
}

TEST(Filters, DeepKernelsAreTheLengthOfTheirWeightVectorsAndGroupsAreRowsOfTheirOwn) {
  Sequential<float> net;
  net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 4, 1));
  net.add<ReLU<float>>("relu1");
  auto& conv = net.add<Conv2d<float>>("conv2", Conv2dOptions(4, 4, 2).groups(2).bias(false));
  float* w = conv.parameters()[0].value;  // [4, 2, 2, 2]: each kernel reads 2 channels
  std::fill(w, w + 32, 0.0f);
  // kernel 0: lengths 5 (3, 4), 0, 2.5 (0, 2.5), 5 (5, 0) at its four positions
  w[0] = 3, w[4] = 4, w[2] = 0, w[6] = 2.5f, w[3] = 5;
  const FilterPicture f = draw_filters(net, FilterPictureOptions().layer("conv2").scale(2).columns(1));
  ASSERT_EQ(f.origins.size(), 4u);
  const std::uint8_t levels[4] = {255, 0, 128, 255};  // 2.5 of 5: 127.5, rounded up
  expect_tile(f.canvas, f.origins[0], 2, 2, 2, [&](Index y, Index x) {
    const std::uint8_t g = levels[y * 2 + x];
    return Color{g, g, g};
  }, "kernel 0");
  // One column: kernels 0 and 1 (group 1) one under the other, group 2 below them with its label.
  EXPECT_EQ(f.origins[0][0], f.origins[2][0]);
  EXPECT_GT(f.origins[1][1], f.origins[0][1]);
  EXPECT_GT(f.origins[2][1] - f.origins[1][1], f.origins[1][1] - f.origins[0][1]);
  EXPECT_THROW(
      {
        try {
          draw_filters(net, FilterPictureOptions().layer("relu1"));
        } catch (const ArgumentError& e) {
          EXPECT_NE(std::string(e.what()).find("layer 'relu1' is a ReLU, not a convolution (the network's: conv1, conv2)"),
                    std::string::npos) << e.what();
          throw;
        }
      },
      ArgumentError);
  EXPECT_THROW(draw_filters(net, FilterPictureOptions().layer("conv9")), ArgumentError);
  EXPECT_THROW(draw_filters(net, FilterPictureOptions().scale(65)), ArgumentError);
}

TEST(Canvas, RefusesAPictureTooLargeBeforeAllocatingIt) {
  EXPECT_THROW(Canvas(0, 10), ArgumentError);
  EXPECT_THROW(Canvas(16385, 1), ArgumentError);
  EXPECT_THROW(Canvas(16384, 16384), ArgumentError);  // 2^28 pixels: over 2^26
  EXPECT_NO_THROW(Canvas(8192, 8192));
  Sequential<float> net;
  net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 16384, 11));
  EXPECT_THROW(draw_filters(net, FilterPictureOptions().scale(64)), ArgumentError);  // 704-pixel tiles
}

// ---- activations ------------------------------------------------------------------------------

TEST(Activations, AHandSetConvolutionGivesKnownMaps) {
  Sequential<float> net;
  auto& conv = net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 2, 1).bias(false));
  float* w = conv.parameters()[0].value;  // [2, 3, 1, 1]: map 0 = red, map 1 = -green
  std::fill(w, w + 6, 0.0f);
  w[0] = 1;
  w[4] = -1;
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc", DenseOptions(32, 2));
  Classifier model = identity_classifier(std::move(net), 4, {"a", "b"});
  Image picture(3, 4, 4, 0.0f);
  for (Index k = 0; k < 16; ++k) picture.pixels[static_cast<std::size_t>(k)] = static_cast<float>(k);  // red: 0..15
  for (Index k = 0; k < 16; ++k) picture.pixels[static_cast<std::size_t>(16 + k)] = 1;                 // green: 1
  const ActivationPicture a = draw_activations(model, picture);  // default: every convolution
  ASSERT_EQ(a.layers.size(), 1u);
  const auto& layer = a.layers[0];
  EXPECT_EQ(layer.name, "conv1");
  EXPECT_FLOAT_EQ(layer.range.lo, -1);
  EXPECT_FLOAT_EQ(layer.range.hi, 15);
  EXPECT_EQ(layer.scale, 10);  // 4 x 4 maps drawn at least 40 pixels wide
  ASSERT_EQ(layer.origins.size(), 2u);
  expect_tile(a.canvas, layer.origins[0], 4, 4, 10, [](Index y, Index x) {
    const auto g = static_cast<std::uint8_t>(std::lround(255.0 * (y * 4 + x + 1) / 16));
    return Color{g, g, g};
  }, "map 0");
  expect_tile(a.canvas, layer.origins[1], 4, 4, 10, [](Index, Index) { return Color{0, 0, 0}; }, "map 1");
  const auto values = activations(model, picture, {"conv1", "fc"});
  ASSERT_EQ(values.size(), 2u);
  EXPECT_EQ(values[0].channels, 2);
  EXPECT_FLOAT_EQ(values[0].values[5], 5.0f);
  EXPECT_FLOAT_EQ(values[0].values[16 + 5], -1.0f);
  EXPECT_EQ(values[1].channels, 2);
  EXPECT_THROW(activations(model, picture, {"conv7"}), LookupError);
  EXPECT_TRUE(model.network().training() == false);  // a classifier's network stays in evaluation mode
}

// ---- saliency ---------------------------------------------------------------------------------

TEST(Saliency, OfALinearModelIsItsWeightsAndLeavesTheNetworkAsItWas) {
  Sequential<float> net;
  net.add<Flatten<float>>("flatten");
  auto& fc = net.add<Dense<float>>("fc", DenseOptions(3 * 4 * 4, 3));
  Tensor<float> input(1, 3, 4, 4);
  Rng rng(5);
  for (Index i = 0; i < input.size(); ++i) input.data()[i] = static_cast<float>(rng.uniform(-1, 1));
  const float* w = fc.parameters()[0].value;  // [3, 48]
  const Saliency s = saliency(net, input, SaliencyOptions().class_index(1));
  EXPECT_EQ(s.class_index, 1);
  double score = fc.parameters()[1].value[1];
  for (Index i = 0; i < 48; ++i) score += static_cast<double>(w[48 + i]) * input.data()[i];
  EXPECT_NEAR(s.score, score, 1e-5);
  for (Index i = 0; i < 48; ++i) EXPECT_FLOAT_EQ(s.input_gradient.data()[i], w[48 + i]) << i;
  for (Index p = 0; p < 16; ++p) {
    const float most = std::max({std::abs(w[48 + p]), std::abs(w[48 + 16 + p]), std::abs(w[48 + 32 + p])});
    EXPECT_FLOAT_EQ(s.map[static_cast<std::size_t>(p)], most) << p;
  }
  EXPECT_TRUE(s.cam.empty());  // no convolution, no Grad-CAM
  // Untouched: the mode, the input gradient setting, the parameters' gradients and trainability.
  EXPECT_TRUE(net.training());
  EXPECT_TRUE(fc.trainable());
  for (auto& p : net.parameters()) EXPECT_EQ(p.grads().cwiseAbs().maxCoeff(), 0.0f) << p.name;
  // Without a class: the top one.
  const Tensor<float>& out = net.forward(input);
  const Index top = static_cast<Index>(std::max_element(out.data(), out.data() + 3) - out.data());
  EXPECT_EQ(saliency(net, input).class_index, top);
  EXPECT_THROW(saliency(net, input, SaliencyOptions().class_index(3)), ArgumentError);
}

TEST(Saliency, GradCamWeighsEachMapByItsMeanGradient) {
  Sequential<float> net;
  auto& conv = net.add<Conv2d<float>>("conv", Conv2dOptions(2, 2, 1).bias(false));
  float* k = conv.parameters()[0].value;  // the identity
  k[0] = 1, k[1] = 0, k[2] = 0, k[3] = 1;
  net.add<ReLU<float>>("relu");
  net.add<AdaptiveAvgPool2d<float>>("pool", 1, 1);
  net.add<Flatten<float>>("flatten");
  auto& fc = net.add<Dense<float>>("fc", DenseOptions(2, 2).bias(false));
  float* v = fc.parameters()[0].value;  // score 0 = mean(A0) - 2 mean(A1)
  v[0] = 1, v[1] = -2, v[2] = 0.5f, v[3] = 3;
  Tensor<float> input(1, 2, 3, 3);
  for (Index i = 0; i < 18; ++i) input.data()[i] = 0.1f + static_cast<float>(i % 7);  // positive: the ReLU passes all
  const Saliency s = saliency(net, input, SaliencyOptions().class_index(0));
  EXPECT_EQ(s.cam_layer, "relu");  // the last convolution's activation: its ReLU keeps the shape, the pool does not
  ASSERT_EQ(s.cam.size(), 9u);
  for (Index p = 0; p < 9; ++p) {
    const double want = std::max(0.0, (1.0 * input.data()[p] - 2.0 * input.data()[9 + p]) / 9);
    EXPECT_NEAR(s.cam[static_cast<std::size_t>(p)], want, 1e-6) << p;
    EXPECT_NEAR(s.input_gradient.data()[p], 1.0 / 9, 1e-7);
    EXPECT_NEAR(s.input_gradient.data()[9 + p], -2.0 / 9, 1e-7);
  }
  EXPECT_EQ(saliency(net, input, SaliencyOptions().cam_layer("conv")).cam_layer, "conv");
  EXPECT_TRUE(saliency(net, input, SaliencyOptions().cam_layer("none")).cam.empty());
  EXPECT_THROW(saliency(net, input, SaliencyOptions().cam_layer("nope")), LookupError);
}

// ---- neighbours -------------------------------------------------------------------------------

// Pictures 3 x 2 x 2 of one value each, labelled as given; picture `unreadable` fails to load.
class FlatPictures : public Dataset {
 public:
  FlatPictures(std::vector<float> values, std::vector<int> labels, Index unreadable = -1)
      : values_(std::move(values)), labels_(std::move(labels)), unreadable_(unreadable) {}
  Index size() const override { return static_cast<Index>(values_.size()); }
  int label(Index i) const override { return labels_[static_cast<std::size_t>(i)]; }
  void load(Index i, Image& out) const override {
    if (i == unreadable_) throw DataError("picture " + std::to_string(i) + " is unreadable");
    out = Image(3, 2, 2, values_[static_cast<std::size_t>(i)]);
  }
  const std::vector<std::string>& class_names() const override { return names_; }

 private:
  std::vector<float> values_;
  std::vector<int> labels_;
  Index unreadable_;
  std::vector<std::string> names_{"even", "odd"};
};

Classifier flattening_classifier() {
  Sequential<float> net;
  net.add<Flatten<float>>("flat");  // the embedding: the picture's 12 values
  net.add<Dense<float>>("fc", DenseOptions(12, 2));
  return identity_classifier(std::move(net), 2, {"even", "odd"});
}

TEST(Neighbours, AreTheNearestVectorsInBlocksOfAnySize) {
  Classifier model = flattening_classifier();
  std::vector<float> values;
  std::vector<int> labels;
  for (int i = 0; i < 10; ++i) values.push_back(10.0f * i), labels.push_back(i % 2);
  const FlatPictures reference(values, labels, 5);  // 50 cannot be read
  const FlatPictures queries({31, 77, 52}, {1, 0, 0});
  for (Index block : {1, 3, 4, 256}) {
    const NeighbourSearch found = nearest_neighbours(model, queries, {0, 1, 2}, reference,
                                                     NeighbourOptions().layer("flat").k(3).block(block));
    ASSERT_EQ(found.queries.size(), 3u);
    EXPECT_EQ(found.references, 9);
    EXPECT_EQ(found.skipped, 1);
    const std::vector<std::vector<Index>> want = {{3, 4, 2}, {8, 7, 9}, {6, 4, 7}};  // 52: 60 (8), 40 (12), 70 (18)
    const std::vector<std::vector<double>> distance = {{1, 9, 11}, {3, 7, 13}, {8, 12, 18}};
    for (std::size_t q = 0; q < 3; ++q) {
      ASSERT_EQ(found.queries[q].nearest.size(), 3u);
      for (std::size_t n = 0; n < 3; ++n) {
        EXPECT_EQ(found.queries[q].nearest[n].index, want[q][n]) << "block " << block << ", query " << q;
        EXPECT_EQ(found.queries[q].nearest[n].label, want[q][n] % 2);
        EXPECT_NEAR(found.queries[q].nearest[n].distance, distance[q][n] * std::sqrt(12.0), 1e-3);
      }
    }
    // Of the query's class: 31 (odd) has 30; 77 (even) has 80; 52 (even) has 60 and 40.
    EXPECT_NEAR(found.same_class_share(), 4.0 / 9, 1e-12);
  }
  const Canvas picture = draw_neighbours(nearest_neighbours(model, queries, {0, 1}, reference,
                                                            NeighbourOptions().layer("flat").k(3)),
                                         queries, reference, {"even", "odd"}, 16);
  EXPECT_EQ(picture.height(), 2 * 8 + 12 + 2 * (16 + 6 + 6 + 12));
  EXPECT_NO_THROW(require_neighbours_drawable(185, 6));  // 16,308 pixels high at 64 a picture
  EXPECT_THROW(require_neighbours_drawable(186, 6), ArgumentError);
  EXPECT_THROW(nearest_neighbours(model, queries, {0}, reference, NeighbourOptions().layer("flat").k(0)), ArgumentError);
  EXPECT_THROW(nearest_neighbours(model, queries, {}, reference, NeighbourOptions().layer("flat")), ArgumentError);
  EXPECT_THROW(nearest_neighbours(model, queries, {0}, reference, NeighbourOptions()), LookupError);  // no relu7
}

TEST(Neighbours, ByCosineFollowTheDirectionNotTheLength) {
  Classifier model = flattening_classifier();
  // Directions: 1 (all equal) for every picture; lengths differ, so every cosine distance is 0 and
  // the order falls to the index; by Euclidean distance the nearest is the closest value.
  const FlatPictures reference({100, 1, 7}, {0, 1, 0});
  const FlatPictures queries({6}, {0});
  const auto cosine = nearest_neighbours(model, queries, {0}, reference,
                                         NeighbourOptions().layer("flat").k(3).metric(EmbeddingMetric::Cosine));
  const auto euclid = nearest_neighbours(model, queries, {0}, reference, NeighbourOptions().layer("flat").k(3));
  EXPECT_EQ(cosine.queries[0].nearest[0].index, 0);
  EXPECT_NEAR(cosine.queries[0].nearest[0].distance, 0, 1e-6);
  EXPECT_EQ(euclid.queries[0].nearest[0].index, 2);
  EXPECT_EQ(euclid.queries[0].nearest[2].index, 0);
}

// ---- confusion --------------------------------------------------------------------------------

ConfusionMatrix confusion_of(const std::vector<std::vector<int>>& counts) {
  const Index classes = static_cast<Index>(counts.size());
  ConfusionMatrix m(classes);
  for (Index t = 0; t < classes; ++t) {
    for (Index p = 0; p < classes; ++p) {
      for (int n = 0; n < counts[static_cast<std::size_t>(t)][static_cast<std::size_t>(p)]; ++n) {
        Tensor<float> scores(1, classes, 1, 1);
        scores.setZero();
        scores(0, p, 0, 0) = 1;
        m.add(scores, {static_cast<int>(t)});
      }
    }
  }
  return m;
}

TEST(Confusion, CellColoursFollowTheShareOfTheirRow) {
  EXPECT_EQ(confusion_color(0).r, 255);
  EXPECT_EQ(confusion_color(0).b, 255);
  EXPECT_EQ(confusion_color(1).r, 8);
  EXPECT_EQ(confusion_color(1).g, 48);
  EXPECT_EQ(confusion_color(1).b, 107);
  const Color quarter = confusion_color(0.25);  // halfway: the square root of the share
  EXPECT_EQ(quarter.r, 132);
  EXPECT_EQ(quarter.g, 152);
  EXPECT_EQ(quarter.b, 181);
  const std::vector<std::vector<int>> counts = {{8, 2, 0}, {0, 5, 5}, {1, 1, 8}};
  const std::string odd("\xff\xfe name\x01", 8);  // any bytes: drawn as '?'
  const ConfusionPicture p = draw_confusion(confusion_of(counts), {"cat", odd, std::string(300, 'x')});
  EXPECT_EQ(p.cell, 44);
  for (Index t = 0; t < 3; ++t) {
    for (Index q = 0; q < 3; ++q) {
      const double share = counts[static_cast<std::size_t>(t)][static_cast<std::size_t>(q)] / 10.0;
      expect_colour(p.canvas, p.left + q * p.cell + 2, p.top + t * p.cell + 2, confusion_color(share),
                    "cell " + std::to_string(t) + "," + std::to_string(q));
    }
  }
  // 100 classes: cells of 12 pixels, names still beside them; 1,001 classes are refused.
  std::vector<std::vector<int>> big(100, std::vector<int>(100, 0));
  for (int i = 0; i < 100; ++i) big[static_cast<std::size_t>(i)][static_cast<std::size_t>(i)] = 1;
  const ConfusionPicture hundred = draw_confusion(confusion_of(big), std::vector<std::string>(100, "name"));
  EXPECT_EQ(hundred.cell, 12);
  expect_colour(hundred.canvas, hundred.left + 99 * 12 + 2, hundred.top + 99 * 12 + 2, confusion_color(1), "cell 99,99");
  EXPECT_GT(hundred.left, Canvas::text_width("99 name"));
  EXPECT_THROW(draw_confusion(ConfusionMatrix(1001), {}), ArgumentError);
}

// ---- what the pictures share --------------------------------------------------------------------

TEST(PictureTiles, StretchesAndTheDisplayedViewUndoTheirSteps) {
  const float values[] = {-3, 1, 2};
  const ValueRange symmetric = ValueRange::symmetric(values, 3);
  EXPECT_EQ(symmetric.level(-3), 0);
  EXPECT_EQ(symmetric.level(0), 128);
  EXPECT_EQ(symmetric.level(3), 255);
  const ValueRange minmax = ValueRange::of(values, 3);
  EXPECT_EQ(minmax.level(-3), 0);
  EXPECT_EQ(minmax.level(2), 255);
  EXPECT_EQ(ValueRange{}.level(7), 128);  // one value: mid-grey
  EXPECT_EQ(heat_color(0).r, 0);
  EXPECT_EQ(heat_color(1).b, 255);
  // A view normalised with statistics, displayed: the picture again.
  const Preparation prep = Preparation::with_statistics(PreparationOptions().input_size(4),
                                                        ChannelStats{{100, 110, 120}, {50, 60, 70}});
  Image picture(3, 4, 4);
  for (std::size_t i = 0; i < picture.pixels.size(); ++i) picture.pixels[i] = static_cast<float>(i * 5);
  const Image shown = displayed_view(prep, prep.views(picture, EvalViews::Centre).front());
  ASSERT_TRUE(shown.same_shape(picture));
  for (std::size_t i = 0; i < picture.pixels.size(); ++i) EXPECT_NEAR(shown.pixels[i], picture.pixels[i], 1e-3) << i;
}

}  // namespace
