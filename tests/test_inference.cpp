// Inference (inference/): a trainer's checkpoint turned into a Classifier that predicts and
// evaluates pictures, and classes read from an embedding (EmbeddingClassifier): centroids,
// neighbours, split halves, and a dataset embedded through a named layer.
#include <gtest/gtest.h>

#include <convnet/checkpoint.hpp>
#include <convnet/data/image.hpp>
#include <convnet/data/loader.hpp>
#include <convnet/inference/classifier.hpp>
#include <convnet/inference/embedding_classifier.hpp>
#include <convnet/inference/plot.hpp>
#include <convnet/layers/conv2d.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/layers/flatten.hpp>
#include <convnet/layers/relu.hpp>
#include <convnet/models/alexnet.hpp>
#include <convnet/models/sequential.hpp>

#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "tiny_pictures.hpp"

namespace {

using namespace convnet;
using convnet::testing::TempDir;
using convnet::testing::TinyPictures;
using convnet::testing::normalise;

// ---- a trainer's checkpoint as a classifier ------------------------------------------------

// A trainer checkpoint with the entries the trainer example adds becomes a classifier.
TEST(Classifier, LoadsACheckpointAndPredictsTopK) {
  TempDir dir;
  const AlexNetConfig config = AlexNetConfig::named("cifar").width(0.0625).classes(3);
  auto net = make_alexnet<float>(config, 4);
  Checkpoint c;
  save_training_state(c, net);
  c.set_text("config", config.str());
  c.set_f64s("data/mean", {100, 100, 100});
  c.set_f64s("data/std", {60, 60, 60});
  c.set_text("data/classes", "red\ngreen\nblue\n");
  c.save(dir / "model.ckpt");

  Classifier model = Classifier::load(dir / "model.ckpt");
  EXPECT_EQ(model.input_size(), 32);
  EXPECT_EQ(model.class_names(), (std::vector<std::string>{"red", "green", "blue"}));
  Image picture(3, 40, 50, 120.0f);
  for (std::size_t i = 0; i < picture.pixels.size(); ++i) picture.pixels[i] += static_cast<float>(i % 17);
  const auto top = model.predict(picture, 2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_GE(top[0].probability, top[1].probability);
  EXPECT_EQ(top[0].name, model.class_names()[static_cast<std::size_t>(top[0].label)]);
  const auto all = model.predict(picture, 10, EvalViews::TenCrop);
  ASSERT_EQ(all.size(), 3u);  // k is capped at the number of classes
  EXPECT_NEAR(all[0].probability + all[1].probability + all[2].probability, 1.0, 1e-5);
  // The same picture through the network by hand: resize shorter side, centre crop, normalise.
  const auto by_hand = model.probabilities({picture});
  EXPECT_NEAR(by_hand[0][static_cast<std::size_t>(top[0].label)], top[0].probability, 1e-12);

  TinyPictures data(12);
  const ClassificationReport report = model.evaluate(data);
  EXPECT_EQ(report.metrics.count, 12);
  Index counted = 0;
  for (Index t = 0; t < 3; ++t)
    for (Index p = 0; p < 3; ++p) counted += report.confusion.count(t, p);
  EXPECT_EQ(counted, 12);
  std::ostringstream text;
  print_report(text, report);
  EXPECT_NE(text.str().find("confusion matrix"), std::string::npos);

  // Without its configuration the network is rebuilt from its structure: the same scores (with the
  // same normalisation) ...
  Checkpoint bare;
  save_training_state(bare, net);
  bare.set_f64s("data/mean", {100, 100, 100});
  bare.set_f64s("data/std", {60, 60, 60});
  bare.save(dir / "bare.ckpt");
  Classifier rebuilt = Classifier::load(dir / "bare.ckpt");
  EXPECT_EQ(rebuilt.probabilities({picture}), model.probabilities({picture}));
  // ... and a checkpoint with neither says so.
  Checkpoint nothing;
  nothing.set_f64s("data/mean", {100, 100, 100});
  nothing.save(dir / "nothing.ckpt");
  try {
    Classifier::load(dir / "nothing.ckpt");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("no 'config' or 'structure' entry"), std::string::npos) << e.what();
  }
}

// Counts the pictures read: how many passes an evaluation made over the data.
class CountingPictures : public TinyPictures {
 public:
  using TinyPictures::TinyPictures;
  void load(Index i, Image& out) const override {
    ++loads;
    TinyPictures::load(i, out);
  }
  mutable Index loads = 0;
};

// The centre and flip reports beside flip-translate's come from its one pass (their views are
// among its six), and agree with evaluating each set by itself; a set that is not within another
// (ten crops) has a pass of its own.
TEST(Classifier, ViewSetsWithinAWiderOneShareItsPass) {
  // A small network whose scores follow its input (the pictures are 8 x 8, three classes).
  Sequential<float> net;
  net.add<Conv2d<float>>("conv", Conv2dOptions(3, 4, 3).padding(1));
  net.add<ReLU<float>>("relu");
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc", DenseOptions(4 * 8 * 8, 3));
  Rng rng(5);
  for (const Parameter<float>& p : net.parameters()) {
    for (Index i = 0; i < p.size; ++i) p.value[i] = static_cast<float>(rng.uniform(-0.5, 0.5));
  }
  const Preparation prep = Preparation::with_statistics(PreparationOptions().input_size(8),
                                                        ChannelStats{{100, 100, 100}, {60, 60, 60}});
  Classifier model(std::move(net), prep, {"red", "green", "blue"});

  // The indices name the same pictures, pixel for pixel.
  Image picture(3, 8, 8, 0.0f);
  for (std::size_t i = 0; i < picture.pixels.size(); ++i) picture.pixels[i] = static_cast<float>((i * 37) % 251);
  const auto six = model.views(picture, EvalViews::FlipTranslate);
  for (EvalViews part : {EvalViews::Centre, EvalViews::Flip}) {
    const auto own = model.views(picture, part);
    const auto at = views_within(part, EvalViews::FlipTranslate);
    ASSERT_TRUE(at.has_value());
    ASSERT_EQ(at->size(), own.size());
    for (std::size_t k = 0; k < own.size(); ++k) EXPECT_EQ(own[k].pixels, six[(*at)[k]].pixels) << to_string(part) << " view " << k;
  }
  EXPECT_FALSE(views_within(EvalViews::FlipTranslate, EvalViews::Flip).has_value());
  EXPECT_FALSE(views_within(EvalViews::Centre, EvalViews::TenCrop).has_value());

  CountingPictures data(20);
  const std::vector<EvalViews> sets{EvalViews::FlipTranslate, EvalViews::Centre, EvalViews::Flip};
  const std::vector<ClassificationReport> together = model.evaluate(data, sets);
  EXPECT_EQ(data.loads, 20);  // one pass
  ASSERT_EQ(together.size(), 3u);
  for (std::size_t k = 0; k < sets.size(); ++k) {
    data.loads = 0;
    const ClassificationReport alone = model.evaluate(data, sets[k]);
    EXPECT_EQ(data.loads, 20);
    EXPECT_EQ(together[k].metrics.count, 20);
    EXPECT_EQ(together[k].metrics.top1_accuracy(), alone.metrics.top1_accuracy()) << to_string(sets[k]);
    EXPECT_NEAR(together[k].metrics.loss(), alone.metrics.loss(), 1e-6) << to_string(sets[k]);
    for (Index t = 0; t < 3; ++t)
      for (Index p = 0; p < 3; ++p) EXPECT_EQ(together[k].confusion.count(t, p), alone.confusion.count(t, p));
  }
  // The three sets differ: the centre's loss is not the six views' (the average changes it).
  EXPECT_NE(together[0].metrics.loss(), together[1].metrics.loss());

  data.loads = 0;
  const auto two = model.evaluate(data, {EvalViews::TenCrop, EvalViews::Centre});
  EXPECT_EQ(data.loads, 40);  // ten crops do not hold the centre view as views_within knows them: two passes
  data.loads = 0;
  EXPECT_NEAR(two[1].metrics.loss(), model.evaluate(data, EvalViews::Centre).metrics.loss(), 1e-6);
}

// ---- classes from an embedding ----------------------------------------------------------

EmbeddingSet points(const std::vector<std::vector<float>>& rows, const std::vector<int>& labels) {
  EmbeddingSet set;
  set.rows.resize(static_cast<Index>(rows.size()), static_cast<Index>(rows.front().size()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (std::size_t k = 0; k < rows[i].size(); ++k) set.rows(static_cast<Index>(i), static_cast<Index>(k)) = rows[i][k];
  }
  set.labels = labels;
  return set;
}

TEST(EmbeddingClassifier, CentroidAndNeighboursOnAToyEmbedding) {
  // Class 0 at (0, 0), (0.2, 0) and (10, 0) (centroid (3.4, 0)); class 1 alone at (5, 1.5).
  const EmbeddingClassifier euclid(points({{0, 0}, {0.2f, 0}, {10, 0}, {5, 1.5f}}, {0, 0, 0, 1}),
                                   EmbeddingMetric::Euclidean);
  const float q[2] = {5, 0.5f};  // 1.0 from class 1's point and centroid, 1.68 from class 0's centroid
  EXPECT_EQ(euclid.nearest_centroid(q), 1);
  EXPECT_EQ(euclid.nearest_neighbours(q, 1), 1);
  EXPECT_EQ(euclid.nearest_neighbours(q, 2), 1);   // one vote each: the class of the closest
  EXPECT_EQ(euclid.nearest_neighbours(q, 3), 0);   // (5, 1.5), (0.2, 0), (0, 0): two of class 0
  EXPECT_EQ(euclid.nearest_neighbours(q, 99), 0);  // k capped at the reference: 3 votes to 1
  const float far[2] = {9, 0};
  EXPECT_EQ(euclid.nearest_centroid(far), 1);       // (5, 1.5) is closer than (3.4, 0)
  EXPECT_EQ(euclid.nearest_neighbours(far, 1), 0);  // (10, 0)
  const EmbeddingAccuracy a = euclid.evaluate(points({{5, 0.5f}, {9, 0}}, {0, 0}), {1, 3});
  EXPECT_EQ(a.count, 2);
  EXPECT_DOUBLE_EQ(a.centroid, 0.0);
  EXPECT_DOUBLE_EQ(a.knn[0], 0.5);  // k = 1: wrong on the first, right on the second
  EXPECT_DOUBLE_EQ(a.knn[1], 1.0);  // k = 3: right on both

  // Cosine reads directions only: long vectors along x, short ones along y.
  const auto reference = points({{100, 0}, {90, 5}, {0.1f, 0.2f}, {0, 0.1f}}, {0, 0, 1, 1});
  const float tilted[2] = {1, 0.1f};
  EXPECT_EQ(EmbeddingClassifier(reference, EmbeddingMetric::Euclidean).nearest_neighbours(tilted, 1), 1);
  EXPECT_EQ(EmbeddingClassifier(reference, EmbeddingMetric::Cosine).nearest_neighbours(tilted, 1), 0);
  EXPECT_EQ(EmbeddingClassifier(reference, EmbeddingMetric::Cosine).nearest_centroid(tilted), 0);

  EXPECT_THROW(euclid.nearest_neighbours(q, 0), std::invalid_argument);
  EXPECT_THROW(euclid.evaluate(points({{1, 2, 3}}, {0})), ShapeError);
  EXPECT_THROW(EmbeddingClassifier(EmbeddingSet(), EmbeddingMetric::Cosine), std::invalid_argument);
  EXPECT_THROW(EmbeddingClassifier(points({{1, 2}}, {-1}), EmbeddingMetric::Cosine), std::invalid_argument);
}

TEST(EmbeddingClassifier, EmbedsADatasetThroughANamedLayer) {
  // The flattened pictures themselves as the embedding: each class is bright in its own channel.
  Sequential<float> net;
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc", DenseOptions(3 * 8 * 8, 3).seed(1));
  TinyPictures train(48, 3), test(30, 4);
  DataLoader train_loader(train, normalise(), LoaderOptions().batch_size(16).shuffle(false).workers(0));
  DataLoader test_loader(test, normalise(), LoaderOptions().batch_size(7).shuffle(false).workers(0));
  train_loader.start_epoch(0);
  test_loader.start_epoch(0);
  net.train();
  const EmbeddingSet embedded = embed(net, train_loader, "flatten");
  EXPECT_TRUE(net.training()) << "the network's mode is restored";
  ASSERT_EQ(embedded.size(), 48);
  EXPECT_EQ(embedded.rows.cols(), 3 * 8 * 8);
  Image first;
  train.load(0, first);
  EXPECT_NEAR(embedded.rows(0, 0), (first.pixels[0] - 100.0f) / 60.0f, 1e-5);  // normalised pixel 0
  for (Index i = 0; i < 48; ++i) EXPECT_EQ(embedded.labels[static_cast<std::size_t>(i)], train.label(i));
  const EmbeddingClassifier reference(embedded, EmbeddingMetric::Euclidean);
  const EmbeddingAccuracy a = reference.evaluate(embed(net, test_loader, "flatten"), {1, 10});
  EXPECT_EQ(a.count, 30);
  EXPECT_DOUBLE_EQ(a.centroid, 1.0);
  EXPECT_DOUBLE_EQ(a.knn[0], 1.0);
  EXPECT_DOUBLE_EQ(a.knn[1], 1.0);
  EXPECT_THROW(embed(net, test_loader, "relu7"), std::out_of_range);
}

TEST(EmbeddingClassifier, SplitHalfCentroidOnAToyEmbedding) {
  // Rows 0, 2, 4 (class 0 at 0 and 5, class 1 at 10) give centroids 2.5 and 10: rows 1 (0.2),
  // 3 (9) and 5 (7) are classified right. Rows 1, 3, 5 give 0.2 and 8: rows 0 and 2 right, and
  // row 4 (class 0 at 5: 4.8 from 0.2, 3 from 8) wrong.
  const auto set = points({{0, 0}, {0.2f, 0}, {10, 0}, {9, 0}, {5, 0}, {7, 0}}, {0, 0, 1, 1, 0, 1});
  EXPECT_EQ(split_half_centroid_correct(set, EmbeddingMetric::Euclidean), 5);
  // Class 0 along x, one long and one short: from rows 0 and 2, row 1 (0.5, 0) is 1.1 from
  // class 1's (0, 1) and 9.5 from class 0's (10, 0), but in class 0's direction.
  const auto directions = points({{10, 0}, {0.5f, 0}, {0, 1}, {0, 0.5f}}, {0, 0, 1, 1});
  EXPECT_EQ(split_half_centroid_correct(directions, EmbeddingMetric::Euclidean), 3);
  EXPECT_EQ(split_half_centroid_correct(directions, EmbeddingMetric::Cosine), 4);
  EXPECT_EQ(split_half_centroid_correct(points({{1, 0}}, {0}), EmbeddingMetric::Euclidean), 0);  // no other half
  EXPECT_EQ(split_half_centroid_correct(EmbeddingSet(), EmbeddingMetric::Euclidean), 0);
}

}  // namespace

// Class names come from files: any bytes are drawn safely (issue 40, item 6). stb_easy_font indexes
// its glyph table with a signed char, so a UTF-8 name read out of bounds (the ASan build shows it);
// a 1 MiB name asked for 1 GB of vertices.
TEST(Canvas, NamesOfAnyBytesAreDrawnAsPrintableAsciiCutToAFixedWidth) {
  EXPECT_EQ(Canvas::drawable("caf\xc3\xa9 \x01x\x7f"), "caf?? ?x?");
  const std::string huge(1 << 20, 'n');
  const std::string shown = Canvas::drawable(huge);
  EXPECT_EQ(shown.size(), Canvas::kMaxTextChars);
  EXPECT_EQ(shown, std::string(Canvas::kMaxTextChars - 2, 'n') + "..");
  EXPECT_EQ(Canvas::text_width(huge), Canvas::text_width(shown));
  Canvas a(400, 12), b(400, 12);
  a.text(0, 0, "caf\xc3\xa9", {0, 0, 0});
  b.text(0, 0, "caf??", {0, 0, 0});
  EXPECT_EQ(a.pixels(), b.pixels());
  Canvas c(400, 12);
  c.text(0, 0, huge, {0, 0, 0});
  Canvas d(400, 12);
  d.text(0, 0, shown, {0, 0, 0});
  EXPECT_EQ(c.pixels(), d.pixels());
  EXPECT_NE(c.pixels(), Canvas(400, 12).pixels());
}
