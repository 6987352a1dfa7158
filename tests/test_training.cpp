// Optimizers, schedules, the training step, and checkpoints.
#include <gtest/gtest.h>

#include <convnet/models/alexnet.hpp>
#include <convnet/checkpoint.hpp>
#include <convnet/distributed/gradient_reducer.hpp>
#include <convnet/metrics.hpp>
#include <convnet/optim/adam.hpp>
#include <convnet/optim/schedules.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/threading.hpp>
#include <convnet/train/step.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>


#include "helpers.hpp"
#include "processes.hpp"

#include <csignal>
#include <sys/resource.h>

namespace {

using namespace convnet;
namespace fs = std::filesystem;

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
  EXPECT_EQ(adamw.type_name(), "AdamW");
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

TEST(Schedules, TrainStepAppliesScheduledRateAndMomentum) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar").width(0.25), 1);
  Sgd<float> sgd(net.parameters(), SgdOptions(1.0).momentum(0.5));
  OneCycleLR schedule(OneCycleLROptions(0.02, 10));
  SoftmaxCrossEntropy<float> loss;
  Tensor<float> images(2, 3, 32, 32);
  images.setRandom();
  train_step(net, loss, sgd, images, {1, 2}, &schedule);
  EXPECT_NEAR(sgd.learning_rate(), 0.02 / 25, 1e-15);
  EXPECT_NEAR(sgd.options().momentum(), 0.95, 1e-15);
  EXPECT_EQ(schedule.state(), std::vector<double>{1.0});
  EXPECT_THROW(sgd.set_momentum(1.0), std::invalid_argument);
}

// ---- training ----------------------------------------------------------------

// A quarter-width CIFAR AlexNet on 16 x 16 inputs: the same eight layers, small enough for a test.
AlexNetConfig tiny_config() {
  AlexNetConfig c = AlexNetConfig::named("cifar").width(0.25).init(AlexNetInit::He);
  c.input_size(16);
  return c;
}

struct TinyData {
  Tensor<float> images;
  std::vector<int> labels;
  TinyData(Index n, std::uint64_t seed) : images(n, 3, 16, 16), labels(static_cast<std::size_t>(n)) {
    Rng rng(seed);
    for (Index i = 0; i < images.size(); ++i) images.data()[i] = static_cast<float>(rng.uniform(-1, 1));
    for (auto& l : labels) l = static_cast<int>(rng.below(10));
  }
};

double overfit(Optimizer<float>& optimizer, Sequential<float>& net, const TinyData& data, int max_steps) {
  SoftmaxCrossEntropy<float> loss;
  for (int step = 0; step < max_steps; ++step) {
    train_step(net, loss, optimizer, data.images, data.labels);
    if (step % 10 == 9 && evaluate(net, data.images, data.labels).top1_accuracy() == 1.0) break;
  }
  return evaluate(net, data.images, data.labels).top1_accuracy();
}

TEST(Training, OverfitsThirtyTwoImagesWithSgd) {
  auto net = make_alexnet<float>(tiny_config(), 1);
  TinyData data(32, 2);
  Sgd<float> sgd(net.parameters(), SgdOptions(0.01).momentum(0.9).weight_decay(0).nesterov(true));
  EXPECT_EQ(overfit(sgd, net, data, 400), 1.0);
}

TEST(Training, OverfitsThirtyTwoImagesWithAdam) {
  auto net = make_alexnet<float>(tiny_config(), 1);
  TinyData data(32, 2);
  Adam<float> adam(net.parameters(), AdamOptions(1e-3));
  EXPECT_EQ(overfit(adam, net, data, 400), 1.0);
}

TEST(Training, EvaluateReportsTopOneAndTopFive) {
  auto net = make_alexnet<float>(tiny_config(), 3);
  TinyData data(40, 4);
  const ClassificationMetrics m = evaluate(net, data.images, data.labels, 16);
  EXPECT_EQ(m.count, 40);
  EXPECT_GE(m.top5, m.top1);
  EXPECT_GT(m.loss(), 0.0);
  EXPECT_TRUE(net.training());  // mode restored
}

TEST(Training, NonFiniteLossStopsWithTheStep) {
  auto net = make_alexnet<float>(tiny_config(), 1);
  TinyData data(8, 2);
  for (auto& p : net.parameters()) p.values().setConstant(std::nanf(""));
  Sgd<float> sgd(net.parameters());
  SoftmaxCrossEntropy<float> loss;
  try {
    train_step(net, loss, sgd, data.images, data.labels);
    FAIL();
  } catch (const NonFiniteLossError& e) {
    EXPECT_NE(std::string(e.what()).find("step 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("first non-finite parameter: conv1.weight"), std::string::npos) << e.what();
  }
}

TEST(Training, AHugeLearningRateIsCaughtAtTheStepAndLayerWhereItBreaks) {
  auto net = make_alexnet<float>(tiny_config(), 1);
  TinyData data(16, 2);
  Sgd<float> sgd(net.parameters(), SgdOptions(1e12).momentum(0));
  SoftmaxCrossEntropy<float> loss;
  std::string message;
  int steps = 0;
  try {
    for (; steps < 20; ++steps) train_step(net, loss, sgd, data.images, data.labels);
  } catch (const NonFiniteLossError& e) {
    message = e.what();
  }
  ASSERT_FALSE(message.empty()) << "a learning rate of 1e12 never produced a non-finite loss";
  EXPECT_NE(message.find(detail::concat("at optimizer step ", steps + 1)), std::string::npos) << message;
  EXPECT_NE(message.find("first non-finite"), std::string::npos) << message;
}

// ---- checkpoints ---------------------------------------------------------------

using convnet::testing::TempDir;

std::vector<float> all_values(Sequential<float>& net) {
  std::vector<float> v;
  for (const auto& p : net.parameters()) v.insert(v.end(), p.value, p.value + p.size);
  return v;
}

template <class F>
std::string checkpoint_error(F&& f) {
  try {
    f();
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "no CheckpointError";
}

TEST(Checkpoint, SaveLoadGivesIdenticalOutputs) {
  TempDir dir;
  auto net = make_alexnet<float>(tiny_config(), 1);
  net.eval();
  Checkpoint c;
  save_training_state(c, net);
  c.set_text("note", "hello");
  c.set_u64s("epoch", {3});
  c.save(dir.file("a.ckpt"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 1);  // no temporary left

  auto other = make_alexnet<float>(tiny_config(), 99);
  other.eval();
  const Checkpoint loaded = Checkpoint::load(dir.file("a.ckpt"));
  restore_training_state(loaded, other);
  EXPECT_EQ(loaded.text("note"), "hello");
  EXPECT_EQ(loaded.u64s("epoch"), std::vector<std::uint64_t>{3});
  TinyData data(4, 5);
  const Tensor<float> a = net.forward(data.images);
  const Tensor<float> b = other.forward(data.images);
  EXPECT_TRUE(flat(a) == flat(b));

  // Into double precision too.
  auto in_double = make_alexnet<double>(tiny_config(), 7);
  restore_training_state(loaded, in_double);
  EXPECT_DOUBLE_EQ(in_double.parameters()[0].value[5], static_cast<double>(net.parameters()[0].value[5]));
}

// BatchNorm's running statistics are part of the model: saved, restored, required.
TEST(Checkpoint, BatchNormRunningStatisticsTravelWithTheWeights) {
  TempDir dir;
  AlexNetConfig config = AlexNetConfig::named("cifar-bn").width(0.25).init(AlexNetInit::He);
  config.input_size(16);
  auto net = make_alexnet<float>(config, 1);
  TinyData data(8, 3);
  net.forward(data.images);  // training mode: the running statistics move
  net.eval();
  const Tensor<float> expected = net.forward(data.images);
  Checkpoint c;
  save_training_state(c, net);
  ASSERT_TRUE(c.contains("buffer/bn3.running_var"));
  c.save(dir.file("bn.ckpt"));

  auto other = make_alexnet<float>(config, 2);
  other.eval();
  restore_training_state(Checkpoint::load(dir.file("bn.ckpt")), other);
  EXPECT_TRUE(flat(other.forward(data.images)) == flat(expected));
  EXPECT_EQ(other.buffers()[0].value[3], net.buffers()[0].value[3]);
  EXPECT_NE(other.buffers()[0].value[3], 0.0f);  // it did move from its start

  Checkpoint without;
  save_training_state(without, net);
  without.remove("buffer/bn2.running_mean");
  auto third = make_alexnet<float>(config, 3);
  try {
    restore_training_state(without, third);
    FAIL() << "a checkpoint without its running statistics was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("buffer bn2.running_mean is missing"), std::string::npos) << e.what();
  }
}

// Trains `epochs` epochs (shuffled batches of 8 from 32 images), from `first_epoch`.
struct TrainingRun {
  Sequential<float> net;
  Sgd<float> sgd;
  OneCycleLR schedule;
  SoftmaxCrossEntropy<float> loss;
  Rng order;
  explicit TrainingRun(std::uint64_t seed)
      : net(make_alexnet<float>(tiny_config(), seed)),
        sgd(net.parameters(), SgdOptions(0.01).nesterov(true)),
        schedule(OneCycleLROptions(0.02, 16)),
        order(seed + 100) {}
  void epochs(const TinyData& data, int count) {
    std::vector<Index> index(32);
    Tensor<float> batch(8, 3, 16, 16);
    std::vector<int> labels(8);
    for (int e = 0; e < count; ++e) {
      // Each epoch's order depends only on the random state, as a resumed run needs.
      for (Index i = 0; i < 32; ++i) index[static_cast<std::size_t>(i)] = i;
      order.shuffle(index.begin(), index.end());
      for (Index b = 0; b < 4; ++b) {
        for (Index i = 0; i < 8; ++i) {
          const Index src = index[static_cast<std::size_t>(b * 8 + i)];
          std::copy(data.images.data() + src * 768, data.images.data() + (src + 1) * 768, batch.data() + i * 768);
          labels[static_cast<std::size_t>(i)] = data.labels[static_cast<std::size_t>(src)];
        }
        train_step(net, loss, sgd, batch, labels, &schedule);
      }
    }
  }
  Checkpoint save() {
    Checkpoint c;
    save_training_state(c, net, &sgd, &schedule);
    c.set_u64s("order", {order.state()});
    return c;
  }
  void restore(const Checkpoint& c) {
    restore_training_state(c, net, &sgd, &schedule);
    order.set_state(c.u64s("order").at(0));
  }
};

// A caller that catches an error from evaluate() and carries on training must
// find dropout on again: the mode comes back on every path.
TEST(Evaluate, RestoresTheTrainingModeWhenItThrows) {
  auto net = make_alexnet<float>(tiny_config(), 1);
  net.train();
  Tensor<float> wrong(2, 4, 16, 16);  // 4 channels: conv1 refuses them inside evaluate's forward
  wrong.setZero();
  EXPECT_THROW(evaluate(net, wrong, {0, 1}), ShapeError);
  EXPECT_TRUE(net.training());
  net.eval();
  EXPECT_THROW(evaluate(net, wrong, {0, 1}), ShapeError);
  EXPECT_FALSE(net.training());
}

TEST(Metrics, LabelsOutsideTheClassesAreRefusedBeforeIndexing) {
  Tensor<float> scores(2, 3, 1, 1);
  scores.setZero();
  try {
    top_k_correct(scores, {0, 7}, 1);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("label 7 of sample 1 is outside [0, 3)"), std::string::npos) << e.what();
  }
  ConfusionMatrix confusion(3);
  EXPECT_THROW(confusion.add(scores, {-1, 0}), std::invalid_argument);
  EXPECT_EQ(confusion.count(0, 0), 0);  // nothing counted from the refused batch
}

TEST(Checkpoint, ResumeContinuesBitForBit) {
  const int threads = num_threads();
  set_num_threads(1);
  TempDir dir;
  TinyData data(32, 8);
  TrainingRun straight(1);
  straight.epochs(data, 2);

  TrainingRun first(1);
  first.epochs(data, 1);
  first.save().save(dir.file("resume.ckpt"));
  TrainingRun resumed(12345);  // different initial weights: all of it must come from the file
  resumed.restore(Checkpoint::load(dir.file("resume.ckpt")));
  resumed.epochs(data, 1);
  set_num_threads(threads);

  EXPECT_EQ(resumed.sgd.steps(), straight.sgd.steps());
  EXPECT_DOUBLE_EQ(resumed.schedule.learning_rate(), straight.schedule.learning_rate());
  const auto a = all_values(straight.net), b = all_values(resumed.net);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b) << "parameters differ after resuming";
}

TEST(Checkpoint, DifferentConfigurationIsRefusedAndLeavesTheNetworkUntouched) {
  TempDir dir;
  auto net = make_alexnet<float>(tiny_config(), 1);
  Checkpoint c;
  save_training_state(c, net);
  c.save(dir.file("a.ckpt"));

  AlexNetConfig wider = tiny_config();
  wider.width(0.5);
  auto other = make_alexnet<float>(wider, 2);
  const auto before = all_values(other);
  const std::string what = checkpoint_error([&] { restore_training_state(Checkpoint::load(dir.file("a.ckpt")), other); });
  EXPECT_NE(what.find("different network: layer 1 (conv1) has out_channels=16 in the checkpoint but out_channels=32 "
                      "here"), std::string::npos) << what;
  EXPECT_NE(what.find(dir.file("a.ckpt")), std::string::npos) << what;
  EXPECT_TRUE(before == all_values(other));

  // Same architecture, wrong optimizer.
  Adam<float> adam(net.parameters());
  Checkpoint with_sgd;
  Sgd<float> sgd(net.parameters());
  save_training_state(with_sgd, net, &sgd);
  EXPECT_NE(checkpoint_error([&] { restore_training_state(with_sgd, net, &adam); }).find("optimizer state is for Sgd"),
            std::string::npos);
}

// The network is recognised by its structure: a setting that describe() might
// not even show (LRN's alpha) is compared, and the message names it.
TEST(Checkpoint, StructureNamesTheSettingThatDiffers) {
  auto net = make_alexnet<float>(tiny_config(), 1);
  Checkpoint c;
  save_training_state(c, net);
  EXPECT_NE(c.text("structure").find("conv1 Conv2d in_channels=3 out_channels=16 kernel_size=5 stride=1 padding=2 "
                                     "groups=1 bias=true weight=16x3x5x5 bias=16\n"),
            std::string::npos)
      << c.text("structure");
  AlexNetConfig other = tiny_config();
  other.lrn(LocalResponseNormOptions(other.lrn()).alpha(2e-4));
  auto different = make_alexnet<float>(other, 1);
  const std::string what = checkpoint_error([&] { restore_training_state(c, different); });
  EXPECT_NE(what.find("layer 3 (lrn1) has alpha=1e-04 in the checkpoint but alpha=2e-04 here"), std::string::npos)
      << what;
  restore_training_state(c, net);  // and the same network loads
}

// A checkpoint written by convnet 0.1 (an 'architecture' entry of describe()
// lines, before the structural record) still loads, and the restored network
// gives the logits stored beside it (tests/golden/checkpoint_v1.ckpt: a
// width-0.0625 'cifar' network with 4 classes after three SGD steps).
TEST(Checkpoint, ReadsCheckpointsOfTheFirstFormat) {
  const Checkpoint c = Checkpoint::load(std::string(CONVNET_GOLDEN_DIR) + "/checkpoint_v1.ckpt");
  ASSERT_TRUE(c.contains("architecture"));
  ASSERT_FALSE(c.contains("structure"));
  const AlexNetConfig config = AlexNetConfig::parse(c.text("config"));
  auto net = make_alexnet<float>(config, 99);
  Sgd<float> sgd(net.parameters(), SgdOptions(0.01).momentum(0.9).nesterov(true));
  restore_training_state<float>(c, net, &sgd);
  EXPECT_EQ(sgd.steps(), 3u);
  Tensor<float> x(2, 3, 32, 32);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 37 % 101) - 50) / 50.0f;
  net.eval();
  const Tensor<float>& logits = net.forward(x);
  const std::vector<float> expected = c.tensor<float>("golden/logits");
  ASSERT_EQ(expected.size(), 8u);
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(logits.data()[i], expected[i], 1e-5f) << i;
  // Layer names are still checked for such files.
  AlexNetConfig other = config;
  other.use_lrn(false);
  auto without_lrn = make_alexnet<float>(other, 1);
  EXPECT_NE(checkpoint_error([&] { restore_training_state(c, without_lrn); }).find("layer 3 is lrn1 in the checkpoint"),
            std::string::npos);
}

TEST(Checkpoint, TruncatedCorruptedAndForeignFilesAreReported) {
  TempDir dir;
  auto net = make_alexnet<float>(tiny_config(), 1);
  Checkpoint c;
  save_training_state(c, net);
  const std::string bytes = c.serialize();
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir.file(name), std::ios::binary) << content;
    return dir.file(name);
  };

  const std::string truncated = write("truncated.ckpt", bytes.substr(0, bytes.size() / 2));
  std::string what = checkpoint_error([&] { Checkpoint::load(truncated); });
  EXPECT_NE(what.find(truncated), std::string::npos) << what;
  EXPECT_NE(what.find("truncated"), std::string::npos) << what;

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  what = checkpoint_error([&] { Checkpoint::load(write("flipped.ckpt", flipped)); });
  EXPECT_NE(what.find("checksum mismatch over bytes 32-"), std::string::npos) << what;

  what = checkpoint_error([&] { Checkpoint::load(write("foreign.ckpt", std::string(100, 'x'))); });
  EXPECT_NE(what.find("bytes 0-7 are not the magic number"), std::string::npos) << what;

  what = checkpoint_error([&] { Checkpoint::load(write("tiny.ckpt", "CNV")); });
  EXPECT_NE(what.find("truncated header"), std::string::npos) << what;

  what = checkpoint_error([&] { Checkpoint::load(dir.file("missing.ckpt")); });
  EXPECT_NE(what.find("cannot open checkpoint " + dir.file("missing.ckpt")), std::string::npos) << what;

  // An entry that claims more than the file holds is refused before allocating (checksum fixed up to reach the parser).
  Checkpoint liar;
  liar.set_f64s("x", {1.0, 2.0});
  std::string forged = liar.serialize();
  const std::size_t count_at = 32 + 4 + 1 + 1;  // key length, key "x", kind
  const std::uint64_t huge = 1ULL << 60;
  std::memcpy(&forged[count_at], &huge, 8);
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 32; i < forged.size(); ++i) {
    h ^= static_cast<unsigned char>(forged[i]);
    h *= 0x100000001b3ULL;
  }
  std::memcpy(&forged[24], &h, 8);
  what = checkpoint_error([&] { Checkpoint::parse(forged, "forged"); });
  EXPECT_NE(what.find("entry 'x' claims 1152921504606846976 items"), std::string::npos) << what;
}

// The files in a folder, by name.
std::vector<std::string> names_in(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(folder)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A write that fails part-way (here: the file-size limit, in a child with SIGXFSZ ignored, so write()
// fails with EFBIG) reports the error and leaves the previous checkpoint, and no temporary file.
TEST(Checkpoint, AWriteThatFailsPartWayKeepsThePreviousCheckpoint) {
  TempDir dir;
  Checkpoint old;
  old.set_f64s("values", std::vector<double>(1000, 1.0));  // about 8 KB
  old.save(dir.file("keep.ckpt"));
  convnet::testing::ChildProcess child([&](int fd) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &small);
    Checkpoint newer;
    newer.set_f64s("values", std::vector<double>(100000, 2.0));  // about 800 KB
    try {
      newer.save(dir.file("keep.ckpt"));
      ::write(fd, "saved", 5);
    } catch (const CheckpointError& e) {
      ::write(fd, e.what(), std::strlen(e.what()));
    }
  });
  const std::string said = child.read_rest();
  child.wait();
  EXPECT_NE(said.find("cannot write checkpoint " + dir.file("keep.ckpt.tmp.")), std::string::npos) << said;
  EXPECT_NE(said.find("File too large"), std::string::npos) << said;
  EXPECT_EQ(Checkpoint::load(dir.file("keep.ckpt")).f64s("values"), std::vector<double>(1000, 1.0));
  EXPECT_EQ(names_in(dir.path), std::vector<std::string>{"keep.ckpt"});
}

// A link planted where the temporary file used to be written ("<path>.tmp") is never followed: the
// temporary file has a fresh name, created exclusively.
TEST(Checkpoint, ALinkAtTheTemporaryNameIsNotFollowed) {
  TempDir dir;
  std::ofstream(dir.file("victim")) << "precious";
  fs::create_symlink(dir.file("victim"), dir.file("a.ckpt.tmp"));
  Checkpoint c;
  c.set_text("note", "hello");
  c.save(dir.file("a.ckpt"));
  EXPECT_EQ(convnet::testing::read(dir.file("victim")), "precious");
  EXPECT_EQ(Checkpoint::load(dir.file("a.ckpt")).text("note"), "hello");
  EXPECT_FALSE(fs::is_symlink(dir.file("a.ckpt")));
  EXPECT_EQ(names_in(dir.path), (std::vector<std::string>{"a.ckpt", "a.ckpt.tmp", "victim"}));
}

// Two processes saving to one path at once: each rename publishes a whole file of its own, so a
// reader always finds one of the two checkpoints, complete (they used to share "<path>.tmp").
TEST(Checkpoint, TwoWritersOfOnePathNeverTearTheFile) {
  TempDir dir;
  const std::string path = dir.file("shared.ckpt");
  const std::size_t count = 1 << 16;  // 512 KB a file: writes of several system calls
  auto saver = [&](double value) {
    return [&, value](int fd) {
      Checkpoint c;
      c.set_f64s("values", std::vector<double>(count, value));
      for (int i = 0; i < 60; ++i) c.save(path);
      ::write(fd, "d", 1);
    };
  };
  saver(1.0)(-1);
  convnet::testing::ChildProcess a(saver(1.0)), b(saver(2.0));
  auto check = [&] {
    const std::vector<double> v = Checkpoint::load(path).f64s("values");  // must not throw
    return v.size() == count && std::all_of(v.begin(), v.end(), [&](double x) { return x == v[0]; }) &&
           (v[0] == 1 || v[0] == 2);
  };
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(check()) << "load " << i;  // while they write, as far as they still do
  char c = 0;
  EXPECT_TRUE(a.read_byte(c) && c == 'd');
  EXPECT_TRUE(b.read_byte(c) && c == 'd');
  EXPECT_TRUE(check());
  EXPECT_EQ(a.wait(), 0);
  EXPECT_EQ(b.wait(), 0);
  EXPECT_EQ(names_in(dir.path), std::vector<std::string>{"shared.ckpt"});
}

TEST(Checkpoint, ConfigurableLimitsRefuseBigFilesAndTensorsBeforeReading) {
  TempDir dir;
  Checkpoint c;
  c.set_f64s("small", {1.0});
  const std::vector<float> big(10000, 1.0f);
  c.set_tensor<float>("big", {100, 100}, big.data());
  c.save(dir.file("c.ckpt"));
  EXPECT_NO_THROW(Checkpoint::load(dir.file("c.ckpt")));
  std::string what =
      checkpoint_error([&] { Checkpoint::load(dir.file("c.ckpt"), CheckpointLimits().tensor_elements(9999)); });
  EXPECT_NE(what.find("entry 'big' claims a tensor of 10000 values, over the limit of 9999"), std::string::npos)
      << what;
  what = checkpoint_error([&] { Checkpoint::load(dir.file("c.ckpt"), CheckpointLimits().file_bytes(1000)); });
  EXPECT_NE(what.find(dir.file("c.ckpt") + " is "), std::string::npos) << what;
  EXPECT_NE(what.find("over the limit of 1000 (CheckpointLimits::max_file_bytes)"), std::string::npos) << what;
}

TEST(Checkpoint, NonFiniteScheduleStateIsRefusedBeforeAnythingChanges) {
  auto net = make_alexnet<float>(tiny_config(), 1);
  StepLR schedule(StepLROptions(0.1, 2));
  schedule.epoch_end(0);
  Checkpoint c;
  save_training_state<float>(c, net, nullptr, &schedule);
  for (double bad : {std::nan(""), -1.0, 1e300, 2.5}) {
    c.set_f64s("schedule/state", {bad});
    StepLR other(StepLROptions(0.1, 2));
    const std::string what = checkpoint_error([&] { restore_training_state<float>(c, net, nullptr, &other); });
    EXPECT_NE(what.find("schedule state epoch must be a whole number >= 0"), std::string::npos) << what;
    EXPECT_EQ(other.state(), std::vector<double>{0.0});
  }
  ReduceOnPlateau plateau(ReduceOnPlateauOptions(0.1));
  EXPECT_THROW(plateau.set_state({std::nan(""), 1.0, 0.0, 0.0}), std::invalid_argument);
  EXPECT_THROW(plateau.set_state({0.1, std::nan(""), 0.0, 0.0}), std::invalid_argument);
  EXPECT_EQ(plateau.learning_rate(), 0.1);  // unchanged by the refused states
}

// ---- data-parallel training without MPI: the bucket plan and when sums start ---------------

TEST(GradientBuckets, EveryValueInOneBucketLastLayerFirst) {
  // Parameters (layer, size) in network order; buckets of at most 12 values.
  const std::vector<BucketedParameter> params{{0, 10}, {0, 3}, {2, 50}, {2, 5}, {4, 7}};
  const auto buckets = plan_gradient_buckets(params, 12);
  std::vector<std::vector<int>> covered;
  for (const auto& p : params) covered.emplace_back(static_cast<std::size_t>(p.size), 0);
  std::size_t previous_layer = 5;
  Index total = 0;
  for (const auto& b : buckets) {
    EXPECT_LE(b.size, 12);
    EXPECT_LE(b.first_layer, previous_layer);
    previous_layer = b.first_layer;
    Index size = 0;
    std::size_t lowest = 99;
    for (const auto& piece : b.pieces) {
      for (Index k = piece.offset; k < piece.offset + piece.count; ++k) ++covered[piece.parameter][static_cast<std::size_t>(k)];
      size += piece.count;
      lowest = std::min(lowest, params[piece.parameter].layer);
    }
    EXPECT_EQ(size, b.size);
    EXPECT_EQ(lowest, b.first_layer) << "a bucket is complete once backward has finished its lowest layer";
    total += size;
  }
  EXPECT_EQ(total, 75);
  EXPECT_EQ(buckets.size(), 7u);  // 75 values, all but the last bucket full
  for (const auto& c : covered) EXPECT_EQ(std::count(c.begin(), c.end(), 1), static_cast<long>(c.size()));
  EXPECT_EQ(buckets.front().pieces.front().parameter, 4u) << "the last layer's parameter comes first";
  EXPECT_THROW(plan_gradient_buckets(params, 0), std::invalid_argument);
}

// A group of one that records, for each sum started, the last layer backward had finished.
class RecordingGroup : public SingleProcess {
 public:
  Request start_allreduce_sum(float* data, Index count) override {
    starts.push_back({last_layer, count});
    return SingleProcess::start_allreduce_sum(data, count);
  }
  std::size_t last_layer = 999;
  std::vector<std::pair<std::size_t, Index>> starts;
};

TEST(GradientReducer, StartsSummingTheLastLayersWhileBackwardRuns) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar").width(0.125), 3);
  RecordingGroup group;
  GradientReducer<float> reducer(net, group, 20000 * sizeof(float));
  Tensor<float> images(4, 3, 32, 32);
  images.setRandom();
  net.eval();  // dropout off: two passes give the same gradients
  const auto pass = [&] {
    net.zero_grad();
    net.forward(images);
    Tensor<float> grad = make_tensor<float>(shape_of(net.output()));
    grad.setConstant(1.0f);
    net.backward(grad);
  };
  net.set_backward_observer(nullptr);
  pass();
  std::vector<std::vector<float>> alone;
  for (const auto& p : net.parameters()) alone.emplace_back(p.grad, p.grad + p.size);
  net.set_backward_observer([&](std::size_t layer) {
    group.last_layer = layer;
    reducer.layer_done(layer);
  });
  reducer.begin(0.25);
  pass();
  reducer.finish();
  net.set_backward_observer(nullptr);
  ASSERT_EQ(group.starts.size(), reducer.buckets().size());
  // Each bucket's sum started as soon as backward had finished the lowest layer it holds, so the
  // first (fc8, fc7 and part of fc6) long before the convolutions were done.
  for (std::size_t b = 0; b < group.starts.size(); ++b) {
    EXPECT_EQ(group.starts[b].first, reducer.buckets()[b].first_layer) << "bucket " << b;
    EXPECT_EQ(group.starts[b].second, reducer.buckets()[b].size) << "bucket " << b;
  }
  EXPECT_GT(reducer.buckets().front().first_layer, 10u);
  // A group of one sums nothing: every gradient is this process's share of it, staged or in place.
  const auto params = net.parameters();
  for (std::size_t p = 0; p < params.size(); ++p) {
    const ConstVectorMap<float> expected(alone[p].data(), params[p].size);
    EXPECT_LE((params[p].grads() - 0.25f * expected).cwiseAbs().maxCoeff(), 1e-6f * expected.cwiseAbs().maxCoeff())
        << params[p].name;
  }
}

}  // namespace
