// The losses of losses/: hand-computed values on tiny inputs, gradients
// against central differences (the same checker as the layers), finiteness at
// extreme logits, the objective that sums them, and its one backward pass
// through a network with a tap on an inner layer.
#include <gtest/gtest.h>

#include <convnet/layers/dense.hpp>
#include <convnet/layers/relu.hpp>
#include <convnet/losses/contrastive.hpp>
#include <convnet/losses/cosine_similarity.hpp>
#include <convnet/losses/distance_ratio.hpp>
#include <convnet/losses/double_margin.hpp>
#include <convnet/losses/global_loss.hpp>
#include <convnet/losses/histogram.hpp>
#include <convnet/losses/improved_triplet.hpp>
#include <convnet/losses/lifted_structured.hpp>
#include <convnet/losses/lmnn.hpp>
#include <convnet/losses/loss.hpp>
#include <convnet/losses/multiclass_hinge.hpp>
#include <convnet/losses/objective.hpp>
#include <convnet/losses/pair_hinge.hpp>
#include <convnet/losses/soft_pn.hpp>
#include <convnet/losses/softmax_cross_entropy.hpp>
#include <convnet/losses/triplet.hpp>
#include <convnet/models/sequential.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/random.hpp>
#include <convnet/tensor.hpp>
#include <convnet/train/step.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "gradient_check.hpp"

namespace {

using namespace convnet;
using convnet::testing::compare_with_finite_differences;
using convnet::testing::fill_uniform;

constexpr double kTolerance = 1e-6;

Tensor<double> column(const std::vector<std::vector<double>>& rows) {
  Tensor<double> t(static_cast<Index>(rows.size()), static_cast<Index>(rows[0].size()), 1, 1);
  for (std::size_t n = 0; n < rows.size(); ++n) {
    for (std::size_t c = 0; c < rows[n].size(); ++c) t.data()[n * rows[n].size() + c] = rows[n][c];
  }
  return t;
}

double gradient_error(Loss<double>& loss, Tensor<double>& input, const std::vector<int>& labels) {
  loss.forward(input, labels);
  const Tensor<double> grad = loss.backward();
  const auto errors = compare_with_finite_differences(
      [&] { return static_cast<double>(loss.forward(input, labels)); }, {{"input", input.data()}},
      {{grad.data(), grad.data() + grad.size()}}, {input.size()});
  return errors.at(0).relative_error;
}

TEST(SoftmaxCrossEntropyForward, ByHandAndStableForHugeLogits) {
  SoftmaxCrossEntropy<double> loss;
  Tensor<double> logits(1, 3, 1, 1);
  logits.setValues({{{{1}}, {{2}}, {{3}}}});
  const double expected = -(1 - std::log(std::exp(1) + std::exp(2) + std::exp(3)));
  EXPECT_NEAR(loss.forward(logits, {0}), expected, 1e-14);

  SoftmaxCrossEntropy<float> stable;
  Tensor<float> huge(2, 3, 1, 1);
  huge.setValues({{{{1e4f}}, {{-1e4f}}, {{0}}}, {{{-1e4f}}, {{1e4f}}, {{1e4f}}}});
  const float l = stable.forward(huge, {1, 0});
  EXPECT_TRUE(std::isfinite(l));
  // Sample 0: -log p(class 1) = 2e4; sample 1: -log p(class 0) = 2e4 + log 2.
  EXPECT_NEAR(l, (2e4f + 2e4f + std::log(2.0f)) / 2, 1.0f);
  const Tensor<float>& g = stable.backward();
  for (Index i = 0; i < g.size(); ++i) EXPECT_TRUE(std::isfinite(g.data()[i]));
  EXPECT_NEAR(g(0, 0, 0, 0), 0.5f, 1e-6f);   // p = 1 on a wrong class, / N
  EXPECT_NEAR(g(0, 1, 0, 0), -0.5f, 1e-6f);  // (0 - 1) / N
}

TEST(LossValues, HingeAndSquaredHingeByHand) {
  // Sample 0 (true class 0): violations 1 + 2 - 1 = 2 and 1 + 3 - 1 = 3.
  // Sample 1 (true class 2): 1 + 0 - 5 < 0 and 1 + 4.5 - 5 = 0.5.
  Tensor<double> logits = column({{1, 2, 3}, {0, 4.5, 5}});
  MultiClassHinge<double> hinge;
  EXPECT_DOUBLE_EQ(hinge.forward(logits, {0, 2}), (5.0 + 0.5) / 2);
  const Tensor<double>& g = hinge.backward();
  const std::vector<double> expected{-1, 0.5, 0.5, 0, 0.5, -0.5};
  for (int i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(g.data()[i], expected[static_cast<std::size_t>(i)]) << i;
  MultiClassHinge<double> squared(HingeOptions().squared(true));
  EXPECT_DOUBLE_EQ(squared.forward(logits, {0, 2}), (4.0 + 9.0 + 0.25) / 2);
  EXPECT_EQ(squared.type_name(), "squared-hinge");
  MultiClassHinge<double> wide(HingeOptions().margin(3));
  EXPECT_DOUBLE_EQ(wide.forward(logits, {0, 2}), ((3 + 2 - 1) + (3 + 3 - 1) + (3 + 4.5 - 5) + 0.0) / 2);
  // Every margin met: zero loss, zero gradient.
  Tensor<double> easy = column({{10, 0, 0}});
  EXPECT_EQ(hinge.forward(easy, {0}), 0.0);
  EXPECT_EQ(flat(hinge.backward()).cwiseAbs().sum(), 0.0);
}

TEST(LossValues, CosineByHand) {
  CosineSimilarityLoss<double> cosine;
  // Equal logits: p = 1/4 each, ||p|| = 1/2, cos = (1/4) / (1/2).
  Tensor<double> equal = column({{2, 2, 2, 2}});
  EXPECT_NEAR(cosine.forward(equal, {3}), 0.5, 1e-15);
  // A sure, right answer costs nothing; a sure, wrong one costs 1.
  Tensor<double> sure = column({{50, 0, 0}, {0, 50, 0}});
  EXPECT_NEAR(cosine.forward(sure, {0, 0}), 0.5, 1e-12);
}

TEST(LossValues, TripletMiningAndValueByHand) {
  // One-dimensional embeddings 0, 1, 3.5, 10 with labels 0, 0, 1, 1.
  Tensor<double> e = column({{0}, {1}, {3.5}, {10}});
  TripletLoss<double> triplet;  // margin 1
  // anchor 0: positive 1 (d 1), negative 2 (d 3.5): 1 + 1 - 3.5 < 0
  // anchor 1: positive 0 (d 1), negative 2 (d 2.5): 1 + 1 - 2.5 < 0
  // anchor 2: positive 3 (d 6.5), negative 1 (d 2.5): 1 + 6.5 - 2.5 = 5
  // anchor 3: positive 2 (d 6.5), negative 1 (d 9): 1 + 6.5 - 9 < 0
  EXPECT_NEAR(triplet.forward(e, {0, 0, 1, 1}), 5.0 / 4, 1e-9);
  const std::vector<int> positives{1, 0, 3, 2}, negatives{2, 2, 1, 1};
  for (Index a = 0; a < 4; ++a) {
    EXPECT_EQ(triplet.hardest_positive(a), positives[static_cast<std::size_t>(a)]) << a;
    EXPECT_EQ(triplet.hardest_negative(a), negatives[static_cast<std::size_t>(a)]) << a;
  }
  // Only anchor 2 is active: it moves towards 3 (+1 per unit of d) and away from 1.
  const Tensor<double>& g = triplet.backward();
  EXPECT_NEAR(g.data()[2], (-1.0 - 1.0) / 4, 1e-9);  // d(d23)/de2 = -1, -d(d21)/de2 = -1
  EXPECT_NEAR(g.data()[3], 1.0 / 4, 1e-9);
  EXPECT_NEAR(g.data()[1], 1.0 / 4, 1e-9);   // descending it moves 1 away from 3
  EXPECT_NEAR(g.data()[0], 0.0, 1e-12);
  // Anchors with no positive in the batch are left out of the mean.
  Tensor<double> three = column({{0}, {1}, {4}});
  // anchor 0 has none; anchor 1: pos 2 (d 3), neg 0 (d 1): 1 + 3 - 1 = 3; anchor 2: pos 1 (d 3), neg 0 (d 4): 0.
  EXPECT_NEAR(triplet.forward(three, {0, 1, 1}), 3.0 / 2, 1e-9);
  EXPECT_EQ(triplet.hardest_positive(0), -1);
  // A batch of one class has no triplet at all.
  EXPECT_EQ(triplet.forward(three, {1, 1, 1}), 0.0);
  EXPECT_EQ(flat(triplet.backward()).cwiseAbs().sum(), 0.0);
}

TEST(LossValues, TripletSemiHardMiningByHand) {
  // One-dimensional embeddings 0, 1 (class 0) and 1.5, 3.2 (class 1); one triplet per positive pair.
  Tensor<double> e = column({{0}, {1}, {1.5}, {3.2}});
  const std::vector<int> labels{0, 0, 1, 1};
  TripletLoss<double> semi(TripletOptions().mining(TripletMining::SemiHard));  // margin 1, Euclidean
  // (0, 1): d 1; negatives at 1.5 and 3.2, the closest beyond 1 is sample 2: 1 + 1 - 1.5 = 0.5
  // (1, 0): d 1; negatives at 0.5 and 2.2, only sample 3 is beyond: 1 + 1 - 2.2 < 0
  // (2, 3): d 1.7; negatives at 1.5 and 0.5, none beyond: the farthest, 0: 1 + 1.7 - 1.5 = 1.2
  // (3, 2): d 1.7; negatives at 3.2 and 2.2, the closest beyond is sample 1: 1 + 1.7 - 2.2 = 0.5
  EXPECT_NEAR(semi.forward(e, labels), (0.5 + 0 + 1.2 + 0.5) / 4, 1e-9);
  const std::vector<std::vector<int>> expected{{0, 1, 2}, {1, 0, 3}, {2, 3, 0}, {3, 2, 1}};
  ASSERT_EQ(semi.mined().size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const MinedTriplet& t = semi.mined()[i];
    EXPECT_EQ(std::vector<int>({t.anchor, t.positive, t.negative}), expected[i]) << i;
  }
  EXPECT_EQ(semi.hardest_negative(0), -1);  // batch-hard's record stays empty
  // Squared distances 1, 2.25, 10.24 (from 0), 0.25, 4.84 (from 1), 2.89 (2 to 3), margin 0.2 as FaceNet:
  // only (2, 3) with the farthest negative 0 is active, 0.2 + 2.89 - 2.25 = 0.84.
  TripletLoss<double> facenet(TripletOptions().mining(TripletMining::SemiHard).squared(true).margin(0.2));
  EXPECT_NEAR(facenet.forward(e, labels), 0.84 / 4, 1e-9);
  // d/de of ||a - b||^2 is 2 (a - b), over 4 pairs: anchor 2 (1.5 - 3.2) / 2 - 1.5 / 2, positive 3
  // the opposite of its pull, negative 0 pushed by 1.5 / 2; sample 1 untouched.
  const Tensor<double>& g = facenet.backward();
  EXPECT_NEAR(g.data()[2], -0.85 - 0.75, 1e-9);
  EXPECT_NEAR(g.data()[3], 0.85, 1e-9);
  EXPECT_NEAR(g.data()[0], 0.75, 1e-9);
  EXPECT_EQ(g.data()[1], 0.0);
  // Batch-hard on the same squared distances: one triplet per anchor.
  TripletLoss<double> hard_squared(TripletOptions().squared(true).margin(0.2));
  hard_squared.forward(e, labels);
  EXPECT_EQ(hard_squared.mined().size(), 4u);
  EXPECT_EQ(hard_squared.hardest_negative(0), 2);
  // A class alone in the batch has no negative: no triplet, zero loss and gradient.
  EXPECT_EQ(semi.forward(e, {5, 5, 5, 5}), 0.0);
  EXPECT_TRUE(semi.mined().empty());
  EXPECT_EQ(flat(semi.backward()).cwiseAbs().sum(), 0.0);
}

TEST(LossGradients, HingeSquaredHingeCosineAgainstFiniteDifferences) {
  Rng rng(5);
  Tensor<double> logits(5, 7, 1, 1);
  fill_uniform(logits, rng, -2, 2);  // margin 1: plenty of active and inactive terms
  const std::vector<int> labels{0, 6, 3, 3, 1};
  MultiClassHinge<double> hinge;
  MultiClassHinge<double> squared(HingeOptions().squared(true).margin(0.5));
  CosineSimilarityLoss<double> cosine;
  SoftmaxCrossEntropy<double> cross_entropy;
  SoftmaxCrossEntropy<double> smoothed(CrossEntropyOptions().label_smoothing(0.2));
  for (Loss<double>* loss : std::vector<Loss<double>*>{&hinge, &squared, &cosine, &cross_entropy, &smoothed}) {
    EXPECT_LT(gradient_error(*loss, logits, labels), kTolerance) << loss->describe();
  }
}

TEST(LossValues, LabelSmoothingByHand) {
  // Two classes, logits (0, 0): p = (1/2, 1/2), -log p = log 2 whatever the target's mix.
  Tensor<double> even = column({{0, 0}});
  EXPECT_NEAR(SoftmaxCrossEntropy<double>(CrossEntropyOptions().label_smoothing(0.3)).forward(even, {1}),
              std::log(2.0), 1e-12);
  // Logits (log 3, 0): p = (3/4, 1/4); smoothing 0.2 over 2 classes targets (0.9, 0.1) for label 0.
  Tensor<double> x = column({{std::log(3.0), 0}});
  SoftmaxCrossEntropy<double> smoothed(CrossEntropyOptions().label_smoothing(0.2));
  EXPECT_NEAR(smoothed.forward(x, {0}), -0.9 * std::log(0.75) - 0.1 * std::log(0.25), 1e-12);
  EXPECT_NEAR(smoothed.backward().data()[0], 0.75 - 0.9, 1e-12);
  EXPECT_NEAR(smoothed.backward().data()[1], 0.25 - 0.1, 1e-12);
  EXPECT_EQ(smoothed.describe(), "cross-entropy(label_smoothing=0.2)");
  EXPECT_EQ(SoftmaxCrossEntropy<double>().describe(), "cross-entropy");
  EXPECT_EQ(make_loss<double>("cross-entropy", ObjectiveOptions().label_smoothing(0.1))->describe(),
            "cross-entropy(label_smoothing=0.1)");
  EXPECT_THROW(SoftmaxCrossEntropy<double>(CrossEntropyOptions().label_smoothing(1)), std::invalid_argument);
  EXPECT_THROW(SoftmaxCrossEntropy<double>(CrossEntropyOptions().label_smoothing(-0.1)), std::invalid_argument);
}

TEST(LossGradients, TripletOnABatchWithStableMining) {
  // Two well separated clusters per class, so that a step of 1e-6 never changes
  // which sample is hardest; the margin keeps every anchor active.
  Rng rng(9);
  Tensor<double> e(6, 4, 1, 1);
  fill_uniform(e, rng, -1, 1);
  const std::vector<int> labels{0, 1, 2, 0, 1, 2};
  TripletLoss<double> triplet(TripletOptions().margin(5));
  const double value = triplet.forward(e, labels);
  EXPECT_GT(value, 0);
  for (Index a = 0; a < 6; ++a) EXPECT_GE(triplet.hardest_negative(a), 0);
  EXPECT_LT(gradient_error(triplet, e, labels), kTolerance);
  // With a small margin some anchors drop out; the gradient is still right.
  TripletLoss<double> small(TripletOptions().margin(0.1));
  EXPECT_LT(gradient_error(small, e, labels), kTolerance);
  // Semi-hard mining, Euclidean and squared: one triplet per positive pair (6 here), each with a negative.
  for (bool squared : {false, true}) {
    for (double margin : {5.0, 0.2}) {
      TripletLoss<double> semi(TripletOptions().mining(TripletMining::SemiHard).squared(squared).margin(margin));
      semi.forward(e, labels);
      EXPECT_EQ(semi.mined().size(), 6u);
      EXPECT_LT(gradient_error(semi, e, labels), kTolerance) << semi.describe();
    }
  }
}

// ---- the study's pair and triplet losses on an embedding ---------------------------------

// Three points on a line: 0 and 0.5 of class 0, 3 of class 1 (distances 0.5, 3 and 2.5).
Tensor<double> three_points() { return column({{0}, {0.5}, {3}}); }
const std::vector<int> kThreeLabels{0, 0, 1};
double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

TEST(LossValues, PairAndTripletLossesByHand) {
  Tensor<double> e = three_points();
  // Contrastive: the pair (0, 1) pulls, 1/2 0.5^2; both other pairs are beyond the margin 1.
  EXPECT_NEAR(ContrastiveLoss<double>().forward(e, kThreeLabels), 0.125 / 3, 1e-12);
  // With margin 3 the pair (1, 2), 2.5 apart, pushes: 1/2 0.5^2; (0, 2) is exactly at it.
  EXPECT_NEAR(ContrastiveLoss<double>(ContrastiveOptions().margin(3)).forward(e, kThreeLabels), 0.25 / 3, 1e-12);
  // Pair hinge: the pair (0, 1) pulls 0.5; with margin 3, (1, 2) pushes 3 - 2.5.
  EXPECT_NEAR(PairHingeLoss<double>().forward(e, kThreeLabels), 0.5 / 3, 1e-9);
  EXPECT_NEAR(PairHingeLoss<double>(PairHingeOptions().margin(3)).forward(e, kThreeLabels), 1.0 / 3, 1e-9);
  // LMNN: targets (0, 1) and (1, 0) pull 0.25 each; with margin 1 no impostor is inside (1 + 0.25 < 6.25).
  EXPECT_NEAR(LmnnLoss<double>().forward(e, kThreeLabels), 0.5 * 0.25, 1e-9);
  // Margin 7: the triplet (1, 0, 2) has 7 + 0.25 - 6.25 = 1, (0, 1, 2) 7 + 0.25 - 9 < 0: push = 1 / 2.
  EXPECT_NEAR(LmnnLoss<double>(LmnnOptions().margin(7)).forward(e, kThreeLabels), 0.5 * 0.25 + 0.5 * 0.5, 1e-9);
  EXPECT_NEAR(LmnnLoss<double>(LmnnOptions().margin(7).mu(1)).forward(e, kThreeLabels), 0.5, 1e-9);
  // LMNN with one target neighbour: on a line, 0, 1, 3 of class 0 and 10 of class 1, the targets are
  // 0 -> 1, 1 -> 0 (1 away, where 3 is 2) and 3 -> 1; pull (1 + 1 + 4) / 3. Every target pair: 28 / 6.
  Tensor<double> line = column({{0}, {1}, {3}, {10}});
  const std::vector<int> line_labels{0, 0, 0, 1};
  LmnnLoss<double> nearest(LmnnOptions().targets(1));
  EXPECT_NEAR(nearest.forward(line, line_labels), 0.5 * 2, 1e-9);
  const std::vector<std::pair<Index, Index>> expected_targets{{0, 1}, {1, 0}, {2, 1}};
  EXPECT_EQ(nearest.target_pairs(), expected_targets);
  EXPECT_NEAR(LmnnLoss<double>().forward(line, line_labels), 0.5 * 28 / 6, 1e-9);
  EXPECT_NEAR(LmnnLoss<double>(LmnnOptions().targets(5)).forward(line, line_labels), 0.5 * 28 / 6, 1e-9);
  // Margin 50: only (3, 1, 10) is inside it, 50 + 4 - 49 = 5, over three triplets.
  EXPECT_NEAR(LmnnLoss<double>(LmnnOptions().targets(1).margin(50)).forward(line, line_labels), 1 + 0.5 * 5 / 3, 1e-9);
  // Distance ratio: triplets (0, 1, 2) with d+ - d- = 0.5 - 3 and (1, 0, 2) with 0.5 - 2.5.
  const double expected_ratio = (2 * std::pow(sigmoid(-2.5), 2) + 2 * std::pow(sigmoid(-2.0), 2)) / 2;
  EXPECT_NEAR(DistanceRatioLoss<double>().forward(e, kThreeLabels), expected_ratio, 1e-9);
  // SoftPN: both triplets take the harder negative distance, d(1, 2) = 2.5: 0.5 - 2.5 each.
  EXPECT_NEAR(SoftPnLoss<double>().forward(e, kThreeLabels), 2 * std::pow(sigmoid(-2.0), 2), 1e-9);
  // Lifted, alpha 1: J(0, 1) = log(e^{1-3} + e^{1-2.5}) + 0.5 < 0: nothing.
  EXPECT_NEAR(LiftedStructuredLoss<double>().forward(e, kThreeLabels), 0.0, 1e-12);
  // alpha 3: J = log(e^0 + e^0.5) + 0.5 > 0, loss J^2 / 2 over the one positive pair.
  const double J = std::log(1 + std::exp(0.5)) + 0.5;
  EXPECT_NEAR(LiftedStructuredLoss<double>(LiftedStructuredOptions().alpha(3)).forward(e, kThreeLabels), J * J / 2, 1e-9);
  // Histogram: (1, 0) and (0, 1) of class 0, (1, 0) of class 1: the positive pair has similarity 0,
  // the negatives 1 and 0, so a negative is at least as similar as the positive for certain: 1.
  Tensor<double> h = column({{1, 0}, {0, 1}, {1, 0}});
  EXPECT_NEAR(HistogramLoss<double>().forward(h, kThreeLabels), 1.0, 1e-9);
  // The classes swapped round, (1, 0), (1, 0) | (0, 1): positive similarity 1, negatives 0: never.
  Tensor<double> apart_h = column({{1, 0}, {1, 0}, {0, 1}});
  EXPECT_NEAR(HistogramLoss<double>().forward(apart_h, kThreeLabels), 0.0, 1e-9);
  // No pair of one class: the losses that need one are 0, and so are their gradients.
  Tensor<double> apart = column({{0}, {1}});
  LmnnLoss<double> lmnn;
  DistanceRatioLoss<double> ratio;
  SoftPnLoss<double> soft_pn;
  LiftedStructuredLoss<double> lifted;
  HistogramLoss<double> histogram;
  for (Loss<double>* loss : std::vector<Loss<double>*>{&lmnn, &ratio, &soft_pn, &lifted, &histogram}) {
    EXPECT_EQ(loss->forward(apart, {0, 1}), 0.0) << loss->type_name();
    EXPECT_EQ(flat(loss->backward()).cwiseAbs().maxCoeff(), 0.0) << loss->type_name();
  }
}

TEST(LossValues, DoubleMarginGlobalAndImprovedTripletByHand) {
  Tensor<double> e = three_points();
  // Double margin 0.25 / 3: the positive pair is 0.25 beyond its margin (1/2 0.25^2), the negative
  // pair (1, 2) 0.5 inside its margin (1/2 0.5^2), (0, 2) exactly at it; mean over the 3 pairs.
  const auto two_margins = DoubleMarginOptions().positive_margin(0.25).negative_margin(3);
  EXPECT_NEAR(DoubleMarginLoss<double>(two_margins).forward(e, kThreeLabels), (0.03125 + 0.125) / 3, 1e-12);
  EXPECT_NEAR(DoubleMarginLoss<double>().forward(e, kThreeLabels), 0.0, 1e-12);  // 0.5 <= 0.5, 2.5 >= 1
  // Improved triplet: d2+ = 0.25 in both triplets, d2- = 9 and 6.25: both differences are below
  // tau1 = -1, the pull 0.002 x 0.25 acts. With tau1 = -7 the second difference, -6, counts.
  EXPECT_NEAR(ImprovedTripletLoss<double>().forward(e, kThreeLabels), -1 + 0.0005, 1e-12);
  EXPECT_NEAR(ImprovedTripletLoss<double>(ImprovedTripletOptions().tau1(-7)).forward(e, kThreeLabels),
              (-7 - 6) / 2.0 + 0.0005, 1e-12);
  // Global, unnormalised, q = d^2 / 4: positive 0.0625; negatives 2.25 and 1.5625 (mean 1.90625,
  // variance 0.34375^2). The gap 1.84375 clears margin 0.4; margin 2 adds 0.8 x 0.15625.
  const auto raw = GlobalLossOptions().normalize(false);
  EXPECT_NEAR(SiameseGlobalLoss<double>(raw).forward(e, kThreeLabels), 0.1181640625, 1e-12);
  SiameseGlobalLoss<double> wide(GlobalLossOptions(raw).margin(2));
  EXPECT_NEAR(wide.forward(e, kThreeLabels), 0.1181640625 + 0.125, 1e-12);
  EXPECT_NEAR(wide.mean(true), 0.0625, 1e-12);
  EXPECT_NEAR(wide.mean(false), 1.90625, 1e-12);
  EXPECT_NEAR(wide.variance(true), 0.0, 1e-12);
  EXPECT_NEAR(wide.variance(false), 0.1181640625, 1e-12);
  // Pairs or triplets: 0, 0.5 of class 0, 3 of class 1, 5 of class 2. The pair (2, 3) is in no
  // triplet (neither has a positive), so the triplet variant's negatives are 2.25, 1.5625, 6.25,
  // 5.0625 (mean 3.78125) and the siamese one's also 1 (mean 3.225).
  Tensor<double> four = column({{0}, {0.5}, {3}, {5}});
  const std::vector<int> four_labels{0, 0, 1, 2};
  SiameseGlobalLoss<double> siamese(raw);
  TripletGlobalLoss<double> triplet(raw);
  EXPECT_NEAR(siamese.forward(four, four_labels), 4.2384375, 1e-9);
  EXPECT_NEAR(siamese.mean(false), 3.225, 1e-12);
  EXPECT_NEAR(triplet.forward(four, four_labels), 3.7509765625, 1e-9);
  EXPECT_NEAR(triplet.mean(false), 3.78125, 1e-12);
  // Normalised by default: (1, 0), (2, 0) | (0, 3) become (1, 0), (1, 0) | (0, 1): q+ = 0, q- = 1/2
  // (both), a gap of 0.5 that clears 0.4 but not 0.6 (0.8 x 0.1).
  Tensor<double> h = column({{1, 0}, {2, 0}, {0, 3}});
  EXPECT_NEAR(SiameseGlobalLoss<double>().forward(h, kThreeLabels), 0.0, 1e-12);
  EXPECT_NEAR(SiameseGlobalLoss<double>(GlobalLossOptions().margin(0.6)).forward(h, kThreeLabels), 0.08, 1e-9);
  // Any pair loss on normalised embeddings: the negatives are sqrt 2 apart, inside margin 2.
  auto normalized = make_loss<double>("contrastive(margin=2,normalize=1)");
  EXPECT_NEAR(normalized->forward(h, kThreeLabels), std::pow(2 - std::sqrt(2.0), 2) / 3, 1e-9);
  // Unnormalised: the positive pair pulls 1/2 x 1^2, the negatives (sqrt 10, sqrt 13) are beyond 2.
  EXPECT_NEAR(make_loss<double>("contrastive(margin=2)")->forward(h, kThreeLabels), 0.5 / 3, 1e-9);
  // No pair of one class: zero, with a zero gradient.
  Tensor<double> apart = column({{0}, {1}});
  for (const char* name : {"double-margin", "siamese-global", "triplet-global", "improved-triplet"}) {
    auto loss = make_loss<double>(name);
    EXPECT_EQ(loss->forward(apart, {0, 1}), 0.0) << name;
    EXPECT_EQ(flat(loss->backward()).cwiseAbs().maxCoeff(), 0.0) << name;
  }
}

TEST(LossGradients, PairAndTripletLossesAgainstFiniteDifferences) {
  Rng rng(17);
  Tensor<double> e(6, 4, 1, 1);
  fill_uniform(e, rng, -1, 1);
  const std::vector<int> labels{0, 1, 2, 0, 1, 2};
  ContrastiveLoss<double> contrastive(ContrastiveOptions().margin(5));  // every negative pair inside the margin
  ContrastiveLoss<double> tight;                                        // some outside
  PairHingeLoss<double> pair_hinge(PairHingeOptions().margin(1.5));
  LmnnLoss<double> lmnn(LmnnOptions().margin(5));
  LmnnLoss<double> lmnn_tight(LmnnOptions().margin(0.2).mu(0.3));
  DistanceRatioLoss<double> ratio;
  SoftPnLoss<double> soft_pn;
  LiftedStructuredLoss<double> lifted(LiftedStructuredOptions().alpha(2));
  HistogramLoss<double> histogram;
  HistogramLoss<double> coarse(HistogramOptions().nodes(5));
  DoubleMarginLoss<double> double_margin(DoubleMarginOptions().positive_margin(0.3).negative_margin(2));
  SiameseGlobalLoss<double> siamese(GlobalLossOptions().margin(1));  // normalised, hinge active
  TripletGlobalLoss<double> triplet_global(GlobalLossOptions().margin(5).normalize(false));
  ImprovedTripletLoss<double> improved(ImprovedTripletOptions().tau2(0.5).beta(0.3));
  auto normalized = make_loss<double>("lifted(alpha=2,normalize=1)");
  for (Loss<double>* loss : std::vector<Loss<double>*>{&contrastive, &tight, &pair_hinge, &lmnn, &lmnn_tight, &ratio, &soft_pn,
                                                        &lifted, &histogram, &coarse, &double_margin, &siamese,
                                                        &triplet_global, normalized.get()}) {
    EXPECT_GT(loss->forward(e, labels), 0) << loss->describe();
    EXPECT_LT(gradient_error(*loss, e, labels), kTolerance) << loss->describe();
  }
  // LMNN's k nearest targets: three of a class, so that one target is a choice (the random points
  // have no ties, and the choice is constant near them).
  LmnnLoss<double> lmnn_nearest(LmnnOptions().margin(5).targets(1));
  const std::vector<int> threes{0, 0, 0, 1, 1, 1};
  EXPECT_GT(lmnn_nearest.forward(e, threes), 0);
  EXPECT_EQ(lmnn_nearest.target_pairs().size(), 6u);
  EXPECT_LT(gradient_error(lmnn_nearest, e, threes), kTolerance);
  // The improved triplet can be negative (its floor tau1 is); here terms are above their floors.
  EXPECT_GT(improved.forward(e, labels), -1 + 0.3 * 0.5);
  EXPECT_LT(gradient_error(improved, e, labels), kTolerance);
}

TEST(LossErrors, PairAndTripletLossOptions) {
  EXPECT_THROW(ContrastiveLoss<double>(ContrastiveOptions().margin(0)), std::invalid_argument);
  EXPECT_THROW(PairHingeLoss<double>(PairHingeOptions().margin(-2)), std::invalid_argument);
  EXPECT_THROW(LmnnLoss<double>(LmnnOptions().margin(-1)), std::invalid_argument);
  EXPECT_THROW(LmnnLoss<double>(LmnnOptions().mu(1.5)), std::invalid_argument);
  EXPECT_THROW(LmnnLoss<double>(LmnnOptions().targets(-1)), std::invalid_argument);
  EXPECT_THROW(LiftedStructuredLoss<double>(LiftedStructuredOptions().alpha(0)), std::invalid_argument);
  EXPECT_THROW(HistogramLoss<double>(HistogramOptions().nodes(1)), std::invalid_argument);
  EXPECT_THROW(DoubleMarginLoss<double>(DoubleMarginOptions().positive_margin(1).negative_margin(1)), std::invalid_argument);
  EXPECT_THROW(DoubleMarginLoss<double>(DoubleMarginOptions().positive_margin(-0.1)), std::invalid_argument);
  EXPECT_THROW(SiameseGlobalLoss<double>(GlobalLossOptions().lambda(-1)), std::invalid_argument);
  EXPECT_THROW(TripletGlobalLoss<double>(GlobalLossOptions().margin(-1)), std::invalid_argument);
  EXPECT_THROW(ImprovedTripletLoss<double>(ImprovedTripletOptions().beta(-1)), std::invalid_argument);
  EXPECT_THROW(ImprovedTripletLoss<double>(ImprovedTripletOptions().tau2(-0.5)), std::invalid_argument);
  SoftPnLoss<double> soft_pn;
  EXPECT_THROW(soft_pn.backward(), std::logic_error);
  Tensor<double> e = three_points();
  EXPECT_THROW(soft_pn.forward(e, {0, 0}), ShapeError);
  EXPECT_THROW(soft_pn.forward(e, {0, -1, 1}), std::invalid_argument);
}

TEST(LossValues, FiniteForExtremeLogits) {
  Tensor<float> logits(2, 4, 1, 1);
  const float values[8] = {1e4f, -1e4f, 0, 5e3f, -1e4f, 1e4f, -1e4f, 1e4f};
  std::copy(values, values + 8, logits.data());
  SoftmaxCrossEntropy<float> ce;
  MultiClassHinge<float> hinge;
  MultiClassHinge<float> squared(HingeOptions().squared(true));
  CosineSimilarityLoss<float> cosine;
  TripletLoss<float> triplet;
  TripletLoss<float> facenet(TripletOptions().mining(TripletMining::SemiHard).squared(true));
  ContrastiveLoss<float> contrastive;
  PairHingeLoss<float> pair_hinge;
  LmnnLoss<float> lmnn;
  DistanceRatioLoss<float> ratio;
  SoftPnLoss<float> soft_pn;
  LiftedStructuredLoss<float> lifted;
  HistogramLoss<float> histogram;
  DoubleMarginLoss<float> double_margin;
  SiameseGlobalLoss<float> siamese;
  TripletGlobalLoss<float> triplet_global(GlobalLossOptions().normalize(false));
  ImprovedTripletLoss<float> improved;
  auto normalized = make_loss<float>("contrastive(normalize=1)");
  for (Loss<float>* loss : std::vector<Loss<float>*>{&ce, &hinge, &squared, &cosine, &triplet, &facenet, &contrastive, &pair_hinge,
                                                     &lmnn, &ratio, &soft_pn, &lifted, &histogram, &double_margin,
                                                     &siamese, &triplet_global, &improved, normalized.get()}) {
    const float value = loss->forward(logits, {2, 0});
    EXPECT_TRUE(std::isfinite(value)) << loss->type_name() << " gave " << value;
    EXPECT_TRUE(flat(loss->backward()).allFinite()) << loss->type_name();
  }
  // Cross-entropy of a label 2e4 below the best logit: exactly that, not inf.
  EXPECT_NEAR(ce.forward(logits, {1, 0}), (2e4 + 2e4) / 2, 1.0);
}

TEST(LossErrors, ShapesLabelsAndOptions) {
  MultiClassHinge<double> hinge;
  Tensor<double> wrong(2, 3, 2, 1);
  EXPECT_THROW(hinge.forward(wrong, {0, 1}), ShapeError);
  Tensor<double> logits(2, 3, 1, 1);
  logits.setZero();
  EXPECT_THROW(hinge.forward(logits, {0}), ShapeError);
  EXPECT_THROW(hinge.forward(logits, {0, 3}), std::invalid_argument);
  CosineSimilarityLoss<double> cosine;
  EXPECT_THROW(cosine.backward(), std::logic_error);
  TripletLoss<double> triplet;
  EXPECT_THROW(triplet.forward(logits, {0, -1}), std::invalid_argument);
  EXPECT_NO_THROW(triplet.forward(logits, {0, 70}));  // any class index: no classes dimension here
  EXPECT_THROW(MultiClassHinge<double>(HingeOptions().margin(-1)), std::invalid_argument);
  EXPECT_THROW(TripletLoss<double>(TripletOptions().margin(-0.5)), std::invalid_argument);
}

TEST(Objective, NamesWeightsAndErrors) {
  auto objective = make_objective<double>("cross-entropy+triplet", {1.0, 0.5}, ObjectiveOptions().triplet_margin(2));
  ASSERT_EQ(objective.size(), 2u);
  EXPECT_EQ(objective.loss(0).type_name(), "cross-entropy");
  EXPECT_EQ(objective.loss(1).type_name(), "triplet");
  EXPECT_EQ(objective.weight(1), 0.5);
  EXPECT_TRUE(objective.reads_logits());
  EXPECT_TRUE(objective.reads_embedding());
  EXPECT_EQ(objective.describe(), "cross-entropy+triplet(margin=2) weights=1,0.5 embedding=relu7");
  for (const auto& name : loss_names()) EXPECT_EQ(make_objective<float>(name).loss(0).type_name(), name);
  try {
    make_objective<float>("cross-entropy+focal");
    FAIL() << "no error for an unknown loss";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'focal'"), std::string::npos) << message;
    for (const auto& name : loss_names()) EXPECT_NE(message.find(name), std::string::npos) << message;
  }
  EXPECT_THROW(make_objective<float>("hinge", {1.0, 2.0}), std::invalid_argument);
  EXPECT_THROW(make_objective<float>(""), std::invalid_argument);
  EXPECT_THROW(make_objective<float>("hinge+"), std::invalid_argument);
  EXPECT_THROW(make_objective<float>("hinge", {-1.0}), std::invalid_argument);
}

TEST(Objective, SettingsInTheSpecRoundTrip) {
  // Settings in the name override the defaults and come back in describe(), which parses again.
  auto objective = make_objective<double>("contrastive(margin=0.5,normalize=1)+cross-entropy+triplet(margin=1e+1)");
  ASSERT_EQ(objective.size(), 3u);
  const std::string described = objective.describe();
  EXPECT_EQ(described, "contrastive(margin=0.5,normalize=1)+cross-entropy+triplet(margin=10) weights=1,1,1 embedding=relu7");
  const std::string spec = described.substr(0, described.find(' '));
  EXPECT_EQ(make_objective<double>(spec).describe(), described);
  EXPECT_EQ(make_loss<double>("siamese-global(normalize=0,lambda=2)")->describe(),
            "siamese-global(margin=0.4,lambda=2,normalize=0)");
  EXPECT_EQ(make_loss<double>("double-margin(positive_margin=0.2)")->describe(),
            "double-margin(positive_margin=0.2,negative_margin=1)");
  EXPECT_EQ(make_loss<double>("hinge(margin=3)")->describe(), "hinge(margin=3)");
  const std::string facenet = "triplet(margin=0.2,semi_hard=1,squared=1,normalize=1)";
  EXPECT_EQ(make_loss<double>("triplet(squared=1,semi_hard=1,normalize=1,margin=0.2)")->describe(), facenet);
  EXPECT_EQ(make_loss<double>(facenet)->describe(), facenet);
  EXPECT_THROW(make_loss<double>("triplet(semi_hard=2)"), std::invalid_argument);
  EXPECT_EQ(make_loss<double>("lmnn(targets=3,normalize=1)")->describe(), "lmnn(margin=1,mu=0.5,targets=3,normalize=1)");
  EXPECT_EQ(make_loss<double>("lmnn")->describe(), "lmnn(margin=1,mu=0.5)");
  EXPECT_THROW(make_loss<double>("lmnn(targets=2.5)"), std::invalid_argument);
  // Whether the embedding's classes should be read by cosine: every embedding term normalises.
  EXPECT_TRUE(make_objective<double>("contrastive(normalize=1)+histogram+cross-entropy").normalizes_embedding());
  EXPECT_TRUE(make_objective<double>("siamese-global").normalizes_embedding());
  EXPECT_FALSE(make_objective<double>("siamese-global(normalize=0)").normalizes_embedding());
  EXPECT_FALSE(make_objective<double>("contrastive+histogram").normalizes_embedding());
  EXPECT_FALSE(make_objective<double>("cross-entropy").normalizes_embedding());
  // Each bad spec names what is wrong.
  const auto message_of = [](const std::string& spec) {
    try {
      make_objective<double>(spec);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message_of("contrastive(marign=1)").find("unknown setting 'marign'; it takes margin, normalize"),
            std::string::npos) << message_of("contrastive(marign=1)");
  EXPECT_NE(message_of("cosine(margin=1)").find("takes none"), std::string::npos);
  EXPECT_NE(message_of("cross-entropy(margin=1)").find("it takes label_smoothing"), std::string::npos);
  EXPECT_NE(message_of("hinge(normalize=1)").find("unknown setting 'normalize'"), std::string::npos);
  EXPECT_NE(message_of("contrastive(normalize=2)").find("normalize is 0 or 1"), std::string::npos);
  EXPECT_NE(message_of("contrastive(margin=abc)").find("not a number: 'abc'"), std::string::npos);
  EXPECT_NE(message_of("contrastive(margin=1").find("unbalanced"), std::string::npos);
  EXPECT_NE(message_of("contrastive(margin=1,margin=2)").find("margin is set twice"), std::string::npos);
  EXPECT_NE(message_of("contrastive(margin)").find("'margin' is not key=value"), std::string::npos);
  EXPECT_NE(message_of("contrastive(margin=nan)").find("not finite"), std::string::npos);
  EXPECT_NE(message_of("contrastive(margin=-1)").find("margin must be > 0"), std::string::npos);
  EXPECT_NE(message_of("histogram(nodes=2.5)").find("nodes must be a whole number"), std::string::npos);
  EXPECT_NE(message_of("hinge+(margin=1)").find("unknown loss ''"), std::string::npos);
}

TEST(Objective, WeightedSumAndGradients) {
  Rng rng(3);
  Tensor<double> logits(6, 5, 1, 1), embedding(6, 3, 1, 1);
  fill_uniform(logits, rng, -2, 2);
  fill_uniform(embedding, rng, -1, 1);
  const std::vector<int> labels{0, 1, 2, 0, 1, 2};
  auto objective =
      make_objective<double>("cross-entropy+hinge+triplet", {1.0, 0.25, 2.0}, ObjectiveOptions().triplet_margin(5));
  const double value = objective.forward(logits, &embedding, labels);
  EXPECT_NEAR(value, objective.value(0) + 0.25 * objective.value(1) + 2.0 * objective.value(2), 1e-12);
  objective.compute_gradients();
  const Tensor<double> gl = objective.logits_gradient(), ge = objective.embedding_gradient();
  const auto errors = compare_with_finite_differences(
      [&] { return static_cast<double>(objective.forward(logits, &embedding, labels)); },
      {{"logits", logits.data()}, {"embedding", embedding.data()}},
      {{gl.data(), gl.data() + gl.size()}, {ge.data(), ge.data() + ge.size()}}, {logits.size(), embedding.size()});
  for (const auto& e : errors) EXPECT_LT(e.relative_error, kTolerance) << e.tensor;
  EXPECT_THROW(objective.forward(logits, nullptr, labels), std::invalid_argument);
}

// The embedding's gradient must join the logits' at the tapped layer and reach
// every parameter below it: check the whole network's parameter gradients.
TEST(Objective, BackwardThroughANetworkWithATap) {
  Sequential<double> net;
  net.add<Dense<double>>("fc1", DenseOptions(6, 5));
  net.add<ReLU<double>>("embed");
  net.add<Dense<double>>("fc2", DenseOptions(5, 3));
  Rng rng(21);
  for (auto& p : net.parameters()) {
    for (Index i = 0; i < p.size; ++i) p.value[i] = rng.uniform(-1.0, 1.0);
  }
  Tensor<double> input(6, 6, 1, 1);
  fill_uniform(input, rng, -1, 1);
  const std::vector<int> labels{0, 1, 2, 0, 1, 2};
  auto objective = make_objective<double>("cross-entropy+triplet", {1.0, 0.7},
                                          ObjectiveOptions().triplet_margin(4).embedding_layer("embed"));
  auto value = [&] {
    net.forward(input);
    return static_cast<double>(objective.forward(net, labels));
  };
  net.zero_grad();
  value();
  objective.backward(net);
  std::vector<std::pair<std::string, double*>> values;
  std::vector<std::vector<double>> analytic;
  std::vector<Index> sizes;
  for (auto& p : net.parameters()) {
    values.emplace_back(p.name, p.value);
    analytic.emplace_back(p.grad, p.grad + p.size);
    sizes.push_back(p.size);
  }
  const auto errors = compare_with_finite_differences(value, values, analytic, sizes);
  ASSERT_EQ(errors.size(), 4u);
  for (const auto& e : errors) EXPECT_LT(e.relative_error, kTolerance) << e.tensor;
  // Without the tap (cross-entropy alone), fc1's gradient differs: the tap did something.
  auto plain = make_objective<double>("cross-entropy");
  net.zero_grad();
  net.forward(input);
  plain.forward(net, labels);
  plain.backward(net);
  EXPECT_GT(std::abs(net.parameters()[0].grad[0] - analytic[0][0]), 1e-9);
}

// A loss on the embedding as a one-term objective reads the layer it names; a network without that
// layer is told so, before any update.
TEST(Objective, AnEmbeddingLossNeedsTheLayerItReads) {
  Sequential<float> net;
  net.add<Dense<float>>("fc", DenseOptions(4, 3));
  Sgd<float> sgd(net.parameters(), SgdOptions(0.1));
  TripletLoss<float> triplet;
  Objective<float> objective(triplet);
  Tensor<float> x(2, 4, 1, 1);
  x.setZero();
  try {
    train_step(net, objective, sgd, x, {0, 1});
    FAIL();
  } catch (const LookupError& e) {
    EXPECT_NE(std::string(e.what()).find("relu7"), std::string::npos) << e.what();
  }
  EXPECT_EQ(sgd.steps(), 0u);
}

}  // namespace
