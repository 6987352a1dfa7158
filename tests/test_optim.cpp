// The optimizers, learning-rate schedules and weight averaging of optim/, against hand-computed
// updates and their formulas.
#include <gtest/gtest.h>

#include <convnet/checkpoint/format.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/losses/softmax_cross_entropy.hpp>
#include <convnet/models/alexnet.hpp>
#include <convnet/models/sequential.hpp>
#include <convnet/optim/adam.hpp>
#include <convnet/optim/schedules.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/optim/weight_average.hpp>
#include <convnet/parameter.hpp>
#include <convnet/tensor.hpp>
#include <convnet/train/step.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

using namespace convnet;

// ---- optimizers against hand-computed updates -------------------------------

struct TwoParameters {
  Vector<double> w{Vector<double>(2)}, gw{Vector<double>(2)}, b{Vector<double>(1)}, gb{Vector<double>(1)};
  TwoParameters() {
    w << 1.0, -2.0;
    gw << 0.5, 0.25;
    b << 3.0;
    gb << 0.5;
  }
  std::vector<Parameter<double>> parameters() {
    return {Parameter<double>{"w", {2}, w.data(), gw.data(), 2, true},
            Parameter<double>{"b", {1}, b.data(), gb.data(), 1, false}};
  }
};

TEST(Sgd, MomentumAndWeightDecayByHand) {
  TwoParameters p;
  Sgd<double> sgd(p.parameters(), SgdOptions(0.1).momentum(0.9).weight_decay(0.01));
  sgd.step();
  // v = -0.1 * (0.5 + 0.01 * 1) = -0.051;  v = -0.1 * (0.25 + 0.01 * -2) = -0.023
  EXPECT_NEAR(p.w[0], 0.949, 1e-15);
  EXPECT_NEAR(p.w[1], -2.023, 1e-15);
  EXPECT_NEAR(p.b[0], 3.0 - 0.05, 1e-15);  // biases skip weight decay
  sgd.step();
  // v = 0.9 * -0.051 - 0.1 * (0.5 + 0.01 * 0.949) = -0.096849
  EXPECT_NEAR(p.w[0], 0.949 - 0.096849, 1e-15);
  EXPECT_EQ(sgd.steps(), 2u);
}

TEST(Sgd, NesterovByHand) {
  TwoParameters p;
  Sgd<double> sgd(p.parameters(), SgdOptions(0.1).momentum(0.9).weight_decay(0.01).nesterov(true));
  sgd.step();
  // v = -0.051;  w = 1 + 0.9 * -0.051 - 0.1 * 0.51 = 0.9031
  EXPECT_NEAR(p.w[0], 0.9031, 1e-15);
}

TEST(Sgd, PerParameterSettings) {
  TwoParameters p;
  Sgd<double> sgd(p.parameters(), SgdOptions(0.1).momentum(0).weight_decay(0.01));
  sgd.set_parameter_settings("b", ParameterSettings{2.0, 0.1});  // double rate, decay 0.1
  sgd.step();
  EXPECT_NEAR(p.b[0], 3.0 - 0.2 * (0.5 + 0.1 * 3.0), 1e-15);
  EXPECT_THROW(sgd.set_parameter_settings("nope", {}), std::invalid_argument);
  TwoParameters q;
  Sgd<double> decay_all(q.parameters(), SgdOptions(0.1).momentum(0).weight_decay(0.01).decay_biases(true));
  decay_all.step();
  EXPECT_NEAR(q.b[0], 3.0 - 0.1 * (0.5 + 0.03), 1e-15);
}

TEST(Adam, TwoStepsByHand) {
  TwoParameters p;
  Adam<double> adam(p.parameters(), AdamOptions(0.1));
  adam.step();
  // m = 0.05, v = 0.00025, m^ = 0.5, v^ = 0.25: w = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
  EXPECT_NEAR(p.w[0], 1 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-15);
  p.gw << 0.25, 0.25;
  adam.step();
  const double m = 0.9 * 0.05 + 0.1 * 0.25, v = 0.999 * 0.00025 + 0.001 * 0.0625;
  const double mhat = m / (1 - 0.81), vhat = v / (1 - 0.999 * 0.999);
  EXPECT_NEAR(p.w[0], 1 - 0.1 * 0.5 / (0.5 + 1e-8) - 0.1 * mhat / (std::sqrt(vhat) + 1e-8), 1e-14);
}

TEST(Adam, L2AndDecoupledWeightDecay) {
  TwoParameters p;
  Adam<double> l2(p.parameters(), AdamOptions(0.1).weight_decay(0.5));
  l2.step();
  // g' = 0.5 + 0.5 * 1 = 1: the first Adam step moves by lr whatever the gradient.
  EXPECT_NEAR(p.w[0], 1 - 0.1 * 1.0 / (1.0 + 1e-8), 1e-15);
  TwoParameters q;
  Adam<double> adamw(q.parameters(), AdamOptions(0.1).weight_decay(0.5).decoupled(true));
  adamw.step();
  EXPECT_NEAR(q.w[0], 1 - 0.1 * 0.5 * 1 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-15);
  EXPECT_EQ(adamw.type_name(), "adam");  // the registry's name
  EXPECT_EQ(adamw.describe(), "AdamW");   // what its checkpoints record
}

// ---- schedules against their formulas ---------------------------------------

TEST(Schedules, StepLR) {
  StepLR s(StepLROptions(0.1, 2).gamma(0.5));
  const double expected[] = {0.1, 0.1, 0.05, 0.05, 0.025};
  for (double e : expected) {
    EXPECT_DOUBLE_EQ(s.learning_rate(), e);
    s.epoch_end(0);
  }
}

TEST(Schedules, ReduceOnPlateauDividesByTenWhenValidationStalls) {
  ReduceOnPlateau s(ReduceOnPlateauOptions(0.01).patience(1).threshold(0.0).max_reductions(2));
  const double losses[] = {1.0, 0.9, 0.95, 0.96, 0.97, 0.8, 0.85, 0.86, 0.9, 0.91, 0.92, 0.93};
  const double after[] = {0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4};
  for (int i = 0; i < 12; ++i) {
    s.epoch_end(losses[i]);
    EXPECT_NEAR(s.learning_rate(), after[i], 1e-18) << "after epoch " << i;
  }
  EXPECT_EQ(s.reductions(), 2);  // capped at max_reductions
}

TEST(Schedules, CosineFollowsItsFormula) {
  CosineLR s(CosineLROptions(0.1, 100).min_lr(0.001));
  for (int t = 0; t <= 120; ++t) {
    const double pct = std::min(t, 100) / 100.0;
    EXPECT_NEAR(s.learning_rate(), 0.001 + (0.1 - 0.001) * (1 + std::cos(M_PI * pct)) / 2, 1e-15) << t;
    s.step();
  }
}

TEST(Schedules, OneCycleFollowsItsFormula) {
  OneCycleLR s(OneCycleLROptions(0.05, 100));
  const double initial = 0.05 / 25, final_lr = initial / 1e4;
  for (int t = 0; t < 100; ++t) {
    double expected;
    if (t <= 24) {
      expected = 0.05 + (initial - 0.05) / 2 * (std::cos(M_PI * t / 24.0) + 1);
    } else {
      expected = final_lr + (0.05 - final_lr) / 2 * (std::cos(M_PI * (t - 24) / 75.0) + 1);
    }
    EXPECT_NEAR(s.learning_rate(), expected, 1e-15) << t;
    // Momentum mirrors the rate: 0.95 -> 0.85 while it rises, back to 0.95 while it falls.
    const double m = t <= 24 ? 0.85 + (0.95 - 0.85) / 2 * (std::cos(M_PI * t / 24.0) + 1)
                             : 0.95 + (0.85 - 0.95) / 2 * (std::cos(M_PI * (t - 24) / 75.0) + 1);
    EXPECT_NEAR(s.momentum().value(), m, 1e-15) << t;
    s.step();
  }
  EXPECT_NEAR(s.learning_rate(), final_lr, 1e-18);
  EXPECT_FALSE(CosineLR(CosineLROptions(0.1, 10)).momentum());  // other schedules leave momentum alone
  EXPECT_FALSE(OneCycleLR(OneCycleLROptions(0.1, 10).fixed_momentum()).momentum());
}

TEST(Schedules, LinearIsATriangleByItsCorners) {
  // 100 steps, peak at 23: 0.2 max at step 0, max at 23, straight down to 0 at 100 and after.
  LinearLR s(LinearLROptions(2.0, 100));
  for (int t = 0; t <= 110; ++t) {
    const double expected = t < 23 ? 2.0 * (0.2 + 0.8 * t / 23.0) : 2.0 * (1 - (std::min(t, 100) - 23) / 77.0);
    EXPECT_NEAR(s.learning_rate(), expected, 1e-14) << t;
    s.step();
  }
  LinearLR flat_start(LinearLROptions(1.0, 10).pct_start(0).end_factor(0.5));
  EXPECT_NEAR(flat_start.learning_rate(), 1.0, 1e-15);  // no warm-up: the peak at step 0
  for (int t = 0; t < 10; ++t) flat_start.step();
  EXPECT_NEAR(flat_start.learning_rate(), 0.5, 1e-15);
  EXPECT_FALSE(flat_start.momentum());
  EXPECT_THROW(LinearLR(LinearLROptions(1.0, 10).pct_start(1)), std::invalid_argument);
  EXPECT_THROW(LinearLR(LinearLROptions(1.0, 0)), std::invalid_argument);
}

TEST(Schedules, TrainStepAppliesScheduledRateAndMomentum) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar").width(0.25), 1);
  Sgd<float> sgd(net.parameters(), SgdOptions(1.0).momentum(0.5));
  OneCycleLR schedule(OneCycleLROptions(0.02, 10));
  SoftmaxCrossEntropy<float> loss;
  Objective<float> objective(loss);
  Tensor<float> images(2, 3, 32, 32);
  images.setRandom();
  train_step(net, objective, sgd, images, {1, 2}, &schedule);
  EXPECT_NEAR(sgd.learning_rate(), 0.02 / 25, 1e-15);
  EXPECT_NEAR(sgd.options().momentum(), 0.95, 1e-15);
  EXPECT_EQ(schedule.state(), std::vector<double>{1.0});
  EXPECT_THROW(sgd.set_momentum(1.0), std::invalid_argument);
}

// ---- the weights' moving average ------------------------------------------------------

TEST(WeightAverage, UpdatesByHandSwapsAndRoundTrips) {
  Sequential<double> net;
  net.add<Dense<double>>("fc", DenseOptions(1, 1));
  auto params = net.parameters();
  params[0].value[0] = 0;
  WeightAverage<double> average(net, WeightAverageOptions().decay(0.9));
  // Warm-up: the first update uses min(0.9, 2/11), the second min(0.9, 3/12).
  params[0].value[0] = 11;
  average.update();
  EXPECT_DOUBLE_EQ(average.next_decay(), 0.25);
  params[0].value[0] = 4;
  average.update();  // (2/11 * 0 + 9/11 * 11) = 9, then 0.25 * 9 + 0.75 * 4 = 5.25
  {
    WeightAverage<double>::Swapped in(average);
    EXPECT_DOUBLE_EQ(params[0].value[0], 5.25);
  }
  EXPECT_DOUBLE_EQ(params[0].value[0], 4);
  WeightAverage<double> plain(net, WeightAverageOptions().decay(0.5).warmup(false));
  params[0].value[0] = 8;
  plain.update();  // 0.5 * 4 + 0.5 * 8
  plain.swap();
  EXPECT_DOUBLE_EQ(params[0].value[0], 6);
  plain.swap();

  Checkpoint c;
  average.save(c);
  WeightAverage<double> back(net, WeightAverageOptions().decay(0.9));
  back.load(c);
  EXPECT_EQ(back.updates(), 2u);
  back.swap();
  EXPECT_DOUBLE_EQ(params[0].value[0], 5.25);
  back.swap();
  EXPECT_THROW(WeightAverage<double>(net, WeightAverageOptions().decay(1)), std::invalid_argument);
  Sequential<double> other;
  other.add<Dense<double>>("fc", DenseOptions(2, 1));
  WeightAverage<double> mismatched(other, WeightAverageOptions());
  EXPECT_THROW(mismatched.load(c), CheckpointError);
}

TEST(WeightAverage, LookaheadAveragesEveryKthCallOnARampAndPullsTheNetworkBack) {
  Sequential<double> net;
  net.add<Dense<double>>("fc", DenseOptions(1, 1).bias(false));
  double& w = net.parameters()[0].value[0];
  w = 0;
  // Every 2nd call, decay 0.5 (t / 8)^1: call 2 averages with 0.125, call 4 with 0.25, ...
  WeightAverage<double> slow(net, WeightAverageOptions().decay(0.5).every(2).lookahead(true).ramp(8, 1));
  EXPECT_DOUBLE_EQ(slow.next_decay(), 0.125);
  w = 8;
  slow.update();  // call 1: nothing
  EXPECT_EQ(slow.updates(), 0u);
  EXPECT_DOUBLE_EQ(w, 8);
  w = 16;
  slow.update();  // call 2: average 0.125 * 0 + 0.875 * 16 = 14, and the network takes it
  EXPECT_EQ(slow.updates(), 1u);
  EXPECT_DOUBLE_EQ(w, 14);
  w = 18;
  slow.update();
  w = 22;
  slow.update();  // call 4: 0.25 * 14 + 0.75 * 22 = 20
  EXPECT_DOUBLE_EQ(w, 20);
  EXPECT_DOUBLE_EQ(slow.next_decay(), 0.5 * 6 / 8);
  // The state round-trips with its call count; a checkpoint of older code (no calls) counts updates.
  Checkpoint c;
  slow.save(c);
  w = 100;
  slow.update();  // call 5: nothing, but counted
  WeightAverage<double> back(net, WeightAverageOptions().decay(0.5).every(2).lookahead(true).ramp(8, 1));
  back.load(c);
  EXPECT_EQ(back.calls(), 4u);
  back.copy_to_network();
  EXPECT_DOUBLE_EQ(w, 20);
  Checkpoint older = c;
  ASSERT_TRUE(older.remove("average/calls"));
  WeightAverage<double> from_older(net, WeightAverageOptions().decay(0.5).lookahead(true));
  from_older.load(older);
  EXPECT_EQ(from_older.calls(), 2u);  // its 2 updates, each a call
  EXPECT_THROW(WeightAverage<double>(net, WeightAverageOptions().every(0)), std::invalid_argument);
}

// Counters from a checkpoint are bounded (issue 40, item 6): 2^53 is the last a double holds exactly.
TEST(Optimizer, StoredCountersOver2To53AreRefusedAndNothingChanges) {
  TwoParameters p;
  Adam<double> adam(p.parameters(), AdamOptions(0.1));
  adam.step();
  Checkpoint c;
  adam.save(c);
  Adam<double> back(p.parameters(), AdamOptions(0.1));
  c.set_u64s("optimizer/steps", {kMaxStoredCounter});
  back.load(c);
  EXPECT_EQ(back.steps(), kMaxStoredCounter);
  Adam<double> fresh(p.parameters(), AdamOptions(0.1));
  c.set_u64s("optimizer/steps", {kMaxStoredCounter + 1});
  try {
    fresh.load(c);
    ADD_FAILURE() << "loaded";
  } catch (const CheckpointError& e) {
    EXPECT_EQ(std::string(e.what()), "checkpoint: optimizer/steps is 9007199254740993, over 2^53 (no run counts that far)");
  }
  EXPECT_EQ(fresh.steps(), 0u);
  c.set_u64s("optimizer/steps", {1, 2});
  EXPECT_THROW(fresh.load(c), CheckpointError);

  Sequential<double> net;
  net.add<Dense<double>>("fc", DenseOptions(1, 1));
  WeightAverage<double> average(net, WeightAverageOptions());
  average.update();
  Checkpoint a;
  average.save(a);
  a.set_u64s("average/updates", {~std::uint64_t{0}});
  WeightAverage<double> loaded(net, WeightAverageOptions());
  EXPECT_THROW(loaded.load(a), CheckpointError);
  EXPECT_EQ(loaded.updates(), 0u);
}

}  // namespace
