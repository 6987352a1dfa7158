// Training (train/): the step and evaluate() on a tiny AlexNet, and the library's Trainer used
// directly as a program of a user's would: last/best checkpoints, resume mid-epoch bit for bit,
// the weights' average, early stopping, stop requests, non-finite losses, an embedding validated by
// what it classifies. And the part of distributed/ that needs no MPI: the gradient buckets and when
// their sums start (test_mpi.cpp runs data-parallel training on two ranks).
#include <gtest/gtest.h>

#include <convnet/checkpoint.hpp>
#include <convnet/data/dataset.hpp>
#include <convnet/data/image.hpp>
#include <convnet/data/loader.hpp>
#include <convnet/distributed/gradient_reducer.hpp>
#include <convnet/distributed/process_group.hpp>
#include <convnet/inference/embedding_classifier.hpp>
#include <convnet/layers/batch_norm.hpp>
#include <convnet/kernels/bf16.hpp>
#include <convnet/layers/conv2d.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/layers/flatten.hpp>
#include <convnet/layers/relu.hpp>
#include <convnet/losses/objective.hpp>
#include <convnet/losses/softmax_cross_entropy.hpp>
#include <convnet/metrics.hpp>
#include <convnet/models/alexnet.hpp>
#include <convnet/models/sequential.hpp>
#include <convnet/optim/adam.hpp>
#include <convnet/optim/optimizer.hpp>
#include <convnet/optim/schedules.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/tensor.hpp>
#include <convnet/threading.hpp>
#include <convnet/train/callbacks.hpp>
#include <convnet/train/step.hpp>
#include <convnet/train/trainer.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "helpers.hpp"
#include "tiny_alexnet.hpp"
#include "tiny_pictures.hpp"

namespace {

using namespace convnet;
using convnet::testing::TempDir;
using convnet::testing::TinyData;
using convnet::testing::TinyPictures;
using convnet::testing::normalise;
using convnet::testing::tiny_config;

// ---- the training step and evaluate() ---------------------------------------------------

double overfit(Optimizer<float>& optimizer, Sequential<float>& net, const TinyData& data, int max_steps) {
  SoftmaxCrossEntropy<float> loss;
  Objective<float> objective(loss);
  for (int step = 0; step < max_steps; ++step) {
    train_step(net, objective, optimizer, data.images, data.labels);
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
  Objective<float> objective(loss);
  try {
    train_step(net, objective, sgd, data.images, data.labels);
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
  Objective<float> objective(loss);
  std::string message;
  int steps = 0;
  try {
    for (; steps < 20; ++steps) train_step(net, objective, sgd, data.images, data.labels);
  } catch (const NonFiniteLossError& e) {
    message = e.what();
  }
  ASSERT_FALSE(message.empty()) << "a learning rate of 1e12 never produced a non-finite loss";
  EXPECT_NE(message.find(detail::concat("at optimizer step ", steps + 1)), std::string::npos) << message;
  EXPECT_NE(message.find("first non-finite"), std::string::npos) << message;
}

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

// ---- the Trainer ---------------------------------------------------------------------------

// A network, its optimizer and schedule, and the data: everything a run needs, built from seeds.
struct TinyRun {
  explicit TinyRun(std::uint64_t seed, double lr = 0.05)
      : train_loader(train, normalise(), LoaderOptions().batch_size(8).workers(0).seed(7)),
        val_loader(validation, normalise(), LoaderOptions().batch_size(16).shuffle(false).workers(0)) {
    net.add<Conv2d<float>>("conv", Conv2dOptions(3, 4, 3).padding(1).seed(seed));
    net.add<ReLU<float>>("relu");
    net.add<Flatten<float>>("flatten");
    net.add<Dense<float>>("fc", DenseOptions(4 * 8 * 8, 3).seed(seed + 1));
    sgd = std::make_unique<Sgd<float>>(net.parameters(), SgdOptions(lr).momentum(0.9));
  }
  std::vector<float> values() {
    std::vector<float> v;
    for (const auto& p : net.parameters()) v.insert(v.end(), p.value, p.value + p.size);
    return v;
  }

  TinyPictures train{48}, validation{24, 11};
  Sequential<float> net;
  SoftmaxCrossEntropy<float> loss;
  std::unique_ptr<Sgd<float>> sgd;
  CosineLR schedule{CosineLROptions(0.05, 3 * 6)};
  DataLoader train_loader, val_loader;
};

// Stops the run after a given batch of a given epoch, as a Ctrl-C handler would.
struct StopAt : TrainerCallback {
  StopAt(Trainer<float>& t, long epoch, Index batch) : trainer(t), epoch(epoch), batch(batch) {}
  void on_batch_end(const BatchReport& r) override {
    if (r.epoch == epoch && r.batch == batch) trainer.request_stop();
  }
  Trainer<float>& trainer;
  long epoch;
  Index batch;
};

TEST(Trainer, WritesLastAndBestAndLearns) {
  TempDir dir;
  TinyRun run(1);
  Trainer<float> trainer(run.net, run.loss, *run.sgd, &run.schedule,
                         TrainerOptions().epochs(3).checkpoint_dir(dir / "out"));
  std::ostringstream out, bar;
  ProgressPrinter progress(out, bar, ProgressOptions().every_batches(2));
  MetricsCsvWriter csv(dir / "out");
  trainer.add_callback(progress).add_callback(csv);
  const FitResult result = trainer.fit(run.train_loader, &run.val_loader);

  EXPECT_EQ(result.outcome, FitOutcome::Completed);
  ASSERT_EQ(trainer.history().size(), 3u);
  EXPECT_GT(trainer.history().back().val_accuracy, 0.9);
  EXPECT_LT(trainer.history().back().train_loss, trainer.history().front().train_loss);
  const Checkpoint last = Checkpoint::load(trainer.last_path());
  EXPECT_EQ(last.u64s("trainer/position"), (std::vector<std::uint64_t>{3, 0}));
  // The history by field, a value an epoch (train/history.hpp).
  EXPECT_EQ(last.f64s("trainer/history/epoch"), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(last.f64s("trainer/history/train_loss").size(), 3u);
  EXPECT_DOUBLE_EQ(last.f64s("trainer/history/val_accuracy")[1], trainer.history()[1].val_accuracy);
  // best.ckpt holds the epoch with the highest validation accuracy (the first of equals).
  std::size_t best = 0;
  for (std::size_t i = 1; i < 3; ++i) {
    if (trainer.history()[i].val_accuracy > trainer.history()[best].val_accuracy) best = i;
  }
  EXPECT_EQ(Checkpoint::load(trainer.best_path()).u64s("trainer/position")[0], best + 1);
  // Progress: a header per epoch, a line every second batch, a summary per epoch; and the CSV.
  EXPECT_NE(out.str().find("epoch 1/3: 6 batches"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("epoch 3/3  train loss"), std::string::npos) << out.str();
  EXPECT_NE(bar.str().find("] 2/6 "), std::string::npos) << bar.str();
  EXPECT_EQ(bar.str().find("] 1/6 "), std::string::npos) << bar.str();
  std::ifstream metrics(dir / "out/metrics.csv");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) ++lines;
  EXPECT_EQ(lines, 4);
}

// Stopped mid-epoch and resumed by a new trainer on a new network: the same
// parameters, optimizer steps and history as a run never stopped.
TEST(Trainer, StopRequestThenResumeContinuesBitForBit) {
  const int threads = num_threads();
  set_num_threads(1);
  TempDir dir;
  TinyRun straight(1);
  Trainer<float> uninterrupted(straight.net, straight.loss, *straight.sgd, &straight.schedule,
                               TrainerOptions().epochs(3));
  uninterrupted.fit(straight.train_loader, &straight.val_loader);

  TinyRun first(1);
  Trainer<float> stopped(first.net, first.loss, *first.sgd, &first.schedule,
                         TrainerOptions().epochs(3).checkpoint_dir(dir / "run"));
  StopAt stop(stopped, 1, 4);
  stopped.add_callback(stop);
  const FitResult interrupted = stopped.fit(first.train_loader, &first.val_loader);
  EXPECT_EQ(interrupted.outcome, FitOutcome::StopRequested);
  EXPECT_EQ(interrupted.position.epoch, 1);
  EXPECT_EQ(interrupted.position.batch, 4);  // the batch under way was finished, no more
  EXPECT_EQ(interrupted.last_checkpoint, dir / "run/last.ckpt");

  TinyRun resumed(999);  // other initial weights: everything must come from the checkpoint
  Trainer<float> again(resumed.net, resumed.loss, *resumed.sgd, &resumed.schedule,
                       TrainerOptions().epochs(3).checkpoint_dir(dir / "run"));
  again.load(Checkpoint::load(dir / "run/last.ckpt"));
  EXPECT_EQ(again.position().epoch, 1);
  EXPECT_EQ(again.position().batch, 4);
  EXPECT_EQ(again.fit(resumed.train_loader, &resumed.val_loader).outcome, FitOutcome::Completed);
  set_num_threads(threads);

  EXPECT_EQ(resumed.sgd->steps(), straight.sgd->steps());
  EXPECT_TRUE(resumed.values() == straight.values()) << "parameters differ after resuming";
  ASSERT_EQ(again.history().size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(again.history()[i].train_loss, uninterrupted.history()[i].train_loss) << i;
    EXPECT_EQ(again.history()[i].val_accuracy, uninterrupted.history()[i].val_accuracy) << i;
  }
}

// Lookahead through the trainer: a run stopped mid-epoch resumes to the same weights as one that was
// not (the slow weights and the call count are in last.ckpt), and after each epoch's last step the
// network holds the slow weights.
TEST(Trainer, LookaheadResumesBitForBitAndEndsOnTheSlowWeights) {
  const int threads = num_threads();
  set_num_threads(1);
  TempDir dir;
  const auto options = [&](const std::string& out) {
    return TrainerOptions().epochs(2).checkpoint_dir(dir / out).lookahead(WeightAverageOptions().decay(0.6).every(3).ramp(10, 2));
  };
  TinyRun straight(1);
  Trainer<float> uninterrupted(straight.net, straight.loss, *straight.sgd, &straight.schedule, options("a"));
  uninterrupted.fit(straight.train_loader, &straight.val_loader);
  TinyRun first(1);
  Trainer<float> stopped(first.net, first.loss, *first.sgd, &first.schedule, options("b"));
  StopAt stop(stopped, 0, 5);
  stopped.add_callback(stop);
  EXPECT_EQ(stopped.fit(first.train_loader, &first.val_loader).outcome, FitOutcome::StopRequested);
  TinyRun resumed(999);
  Trainer<float> again(resumed.net, resumed.loss, *resumed.sgd, &resumed.schedule, options("b"));
  again.load(Checkpoint::load(dir / "b/last.ckpt"));
  EXPECT_EQ(again.fit(resumed.train_loader, &resumed.val_loader).outcome, FitOutcome::Completed);
  set_num_threads(threads);
  EXPECT_TRUE(resumed.values() == straight.values()) << "parameters differ after resuming";
  // The network ends on the slow weights: the lookahead entries of last.ckpt are the parameters.
  const Checkpoint last = Checkpoint::load(dir / "a/last.ckpt");
  for (auto& p : straight.net.parameters()) {
    const std::vector<float> slow = last.tensor<float>("lookahead/param/" + p.name);
    for (Index i = 0; i < p.size; ++i) ASSERT_EQ(slow[static_cast<std::size_t>(i)], p.value[i]) << p.name;
  }
  // Without lookahead the same run ends elsewhere: the averaging did something.
  TinyRun plain(1);
  Trainer<float> without(plain.net, plain.loss, *plain.sgd, &plain.schedule, TrainerOptions().epochs(2));
  without.fit(plain.train_loader, &plain.val_loader);
  EXPECT_FALSE(plain.values() == straight.values());
}

// With average_weights the trainer validates the average each epoch, writes best_average.ckpt with
// it as the parameters, and a stopped run resumes the average bit for bit too.
TEST(Trainer, WeightAverageIsValidatedSavedAndResumed) {
  const int threads = num_threads();
  set_num_threads(1);
  TempDir dir;
  const auto options = [&](const char* out) {
    return TrainerOptions().epochs(3).checkpoint_dir(dir / out).average_weights(0.9);
  };
  TinyRun straight(1);
  Trainer<float> uninterrupted(straight.net, straight.loss, *straight.sgd, &straight.schedule, options("a"));
  std::ostringstream out, bar;
  ProgressPrinter progress(out, bar);
  uninterrupted.add_callback(progress);
  uninterrupted.fit(straight.train_loader, &straight.val_loader);
  ASSERT_EQ(uninterrupted.average_history().size(), 3u);
  EXPECT_GT(uninterrupted.average_history().back().val_accuracy, 0.5);
  EXPECT_NE(out.str().find("(weight average: val loss"), std::string::npos) << out.str();
  EXPECT_EQ(uninterrupted.average()->updates(), 18u);  // 3 epochs of 6 batches

  // best_average.ckpt holds the average as its parameters.
  ASSERT_TRUE(std::filesystem::exists(dir / "a/best_average.ckpt"));
  const Checkpoint best_average = Checkpoint::load(dir / "a/best_average.ckpt");
  EXPECT_EQ(best_average.text("trainer/weights"), "exponential moving average of the weights");
  double best_average_accuracy = 0;
  for (const auto& r : uninterrupted.average_history()) best_average_accuracy = std::max(best_average_accuracy, r.val_accuracy);
  {  // loaded into a fresh network, it validates as the best average did (not as the training weights)
    TinyRun check(77);
    restore_training_state(best_average, check.net);
    check.val_loader.start_epoch(0);
    EXPECT_EQ(evaluate(check.net, check.val_loader).top1_accuracy(), best_average_accuracy);
    EXPECT_NE(best_average.tensor<float>("param/fc.weight"), Checkpoint::load(dir / "a/best.ckpt").tensor<float>("param/fc.weight"));
  }

  TinyRun first(1);
  Trainer<float> stopped(first.net, first.loss, *first.sgd, &first.schedule, options("b"));
  StopAt stop(stopped, 1, 4);
  stopped.add_callback(stop);
  EXPECT_EQ(stopped.fit(first.train_loader, &first.val_loader).outcome, FitOutcome::StopRequested);
  TinyRun resumed(999);
  Trainer<float> again(resumed.net, resumed.loss, *resumed.sgd, &resumed.schedule, options("b"));
  again.load(Checkpoint::load(dir / "b/last.ckpt"));
  again.fit(resumed.train_loader, &resumed.val_loader);
  set_num_threads(threads);
  ASSERT_EQ(again.average_history().size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(again.average_history()[i].val_accuracy, uninterrupted.average_history()[i].val_accuracy) << i;
    EXPECT_EQ(again.average_history()[i].val_loss, uninterrupted.average_history()[i].val_loss) << i;
  }
  Checkpoint a_last = Checkpoint::load(dir / "a/last.ckpt"), b_last = Checkpoint::load(dir / "b/last.ckpt");
  EXPECT_EQ(a_last.tensor<float>("average/param/fc.weight"), b_last.tensor<float>("average/param/fc.weight"));

  // A run without the average cannot resume one that had it, and the other way round.
  TinyRun plain(2);
  Trainer<float> without(plain.net, plain.loss, *plain.sgd, &plain.schedule, TrainerOptions().epochs(3));
  EXPECT_NO_THROW(without.load(a_last));  // the average's entries are simply not read
  TinyRun wants(3);
  Trainer<float> wanting(wants.net, wants.loss, *wants.sgd, &wants.schedule, options("c"));
  Checkpoint no_average;
  {
    TinyRun bare(4);
    Trainer<float> t(bare.net, bare.loss, *bare.sgd, &bare.schedule, TrainerOptions().epochs(1).checkpoint_dir(dir / "d"));
    t.fit(bare.train_loader, &bare.val_loader);
    no_average = Checkpoint::load(dir / "d/last.ckpt");
  }
  EXPECT_THROW(wanting.load(no_average), CheckpointError);
}

// A dataset that calls `hook(i)` whenever picture i is loaded.
class Hooked : public Dataset {
 public:
  Hooked(const Dataset& data, std::function<void(Index)> hook) : data_(data), hook_(std::move(hook)) {}
  Index size() const override { return data_.size(); }
  int label(Index i) const override { return data_.label(i); }
  void load(Index i, Image& out) const override {
    hook_(i);
    data_.load(i, out);
  }
  const std::vector<std::string>& class_names() const override { return data_.class_names(); }

 private:
  const Dataset& data_;
  std::function<void(Index)> hook_;
};

// A stop request while validating (Ctrl-C during evaluation) stops before the next validation batch
// and saves the epoch as trained but not validated; the resumed run validates it and ends exactly as a
// run never stopped. In the last epoch too, where it used to be ignored (the run ended "completed").
TEST(Trainer, StopDuringValidationSavesAndTheResumedRunValidates) {
  const int threads = num_threads();
  set_num_threads(1);
  TinyRun straight(1);
  Trainer<float> uninterrupted(straight.net, straight.loss, *straight.sgd, &straight.schedule,
                               TrainerOptions().epochs(2));
  uninterrupted.fit(straight.train_loader, &straight.val_loader);
  for (long stop_epoch : {0L, 1L}) {
    SCOPED_TRACE(stop_epoch);
    TempDir dir;
    TinyRun first(1);
    Trainer<float> stopped(first.net, first.loss, *first.sgd, &first.schedule,
                           TrainerOptions().epochs(2).checkpoint_dir(dir / "run"));
    long pass = -1;
    Index loaded_in_pass = 0;
    Hooked validation(first.validation, [&](Index i) {
      if (i == 0) ++pass, loaded_in_pass = 0;
      ++loaded_in_pass;
      if (pass == stop_epoch && i == 0) stopped.request_stop();  // during the first of two batches
    });
    DataLoader val_loader(validation, normalise(), LoaderOptions().batch_size(16).shuffle(false).workers(0));
    const FitResult result = stopped.fit(first.train_loader, &val_loader);
    EXPECT_EQ(result.outcome, FitOutcome::StopRequested);
    EXPECT_EQ(loaded_in_pass, 16);  // the second validation batch was never built
    EXPECT_EQ(stopped.history().size(), static_cast<std::size_t>(stop_epoch));
    EXPECT_EQ(Checkpoint::load(dir / "run/last.ckpt").u64s("trainer/position"),
              (std::vector<std::uint64_t>{static_cast<std::uint64_t>(stop_epoch), 6}));

    TinyRun resumed(999);
    Trainer<float> again(resumed.net, resumed.loss, *resumed.sgd, &resumed.schedule,
                         TrainerOptions().epochs(2).checkpoint_dir(dir / "run"));
    again.load(Checkpoint::load(dir / "run/last.ckpt"));
    EXPECT_EQ(again.fit(resumed.train_loader, &resumed.val_loader).outcome, FitOutcome::Completed);
    EXPECT_TRUE(resumed.values() == straight.values()) << "parameters differ after resuming";
    ASSERT_EQ(again.history().size(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(again.history()[i].train_loss, uninterrupted.history()[i].train_loss) << i;
      EXPECT_EQ(again.history()[i].val_loss, uninterrupted.history()[i].val_loss) << i;
      EXPECT_EQ(again.history()[i].val_accuracy, uninterrupted.history()[i].val_accuracy) << i;
    }
  }
  set_num_threads(threads);
}

// A flag of the caller's (StopSignals::flag()) stops a trainer as request_stop() does.
TEST(Trainer, StopsOnAnExternalFlag) {
  TinyRun run(1);
  std::atomic<bool> flag{false};
  Trainer<float> trainer(run.net, run.loss, *run.sgd, &run.schedule, TrainerOptions().epochs(3));
  trainer.stop_on(flag);
  struct RaiseAt : TrainerCallback {
    std::atomic<bool>* flag;
    void on_batch_end(const BatchReport& r) override {
      if (r.epoch == 1 && r.batch == 2) flag->store(true);
    }
  } raise;
  raise.flag = &flag;
  trainer.add_callback(raise);
  const FitResult result = trainer.fit(run.train_loader, &run.val_loader);
  EXPECT_EQ(result.outcome, FitOutcome::StopRequested);
  EXPECT_EQ(result.position.epoch, 1);
  EXPECT_EQ(result.position.batch, 2);
}

TEST(Trainer, EarlyStoppingWhenTheValidationLossStalls) {
  TinyRun run(1, /*lr=*/0.0);  // nothing learns: the validation loss never improves after the first epoch
  ConstantLR zero(0.0);
  Trainer<float> trainer(run.net, run.loss, *run.sgd, &zero, TrainerOptions().epochs(10).patience(2));
  const FitResult result = trainer.fit(run.train_loader, &run.val_loader);
  EXPECT_EQ(result.outcome, FitOutcome::EarlyStopped);
  EXPECT_EQ(trainer.history().size(), 3u);
  EXPECT_EQ(result.epochs_without_improvement, 2);
}

// A BatchNorm network leaves out a last batch of one picture (BatchNorm1d refuses it, BatchNorm2d would
// normalise by one picture's statistics): 49 pictures in batches of 8 train 6 batches, not 7.
TEST(Trainer, BatchNormLeavesOutALastBatchOfOnePicture) {
  TinyPictures one_over{49}, single{1};
  Sequential<float> net;
  net.add<Conv2d<float>>("conv", Conv2dOptions(3, 4, 3).padding(1).bias(false).seed(1));
  net.add<BatchNorm2d<float>>("bn", BatchNormOptions(4));
  net.add<ReLU<float>>("relu");
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc", DenseOptions(4 * 8 * 8, 3).seed(2));
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> sgd(net.parameters(), SgdOptions(0.05).momentum(0.9));
  DataLoader loader(one_over, normalise(), LoaderOptions().batch_size(8).workers(0).seed(7));
  Trainer<float> trainer(net, loss, sgd, nullptr, TrainerOptions().epochs(1));
  std::ostringstream out, bar;
  ProgressPrinter progress(out, bar, ProgressOptions().every_batches(1));
  trainer.add_callback(progress);
  EXPECT_EQ(trainer.fit(loader).outcome, FitOutcome::Completed);
  EXPECT_NE(out.str().find("epoch 1/1: 6 batches"), std::string::npos) << out.str();
  EXPECT_EQ(trainer.position().epoch, 1);

  // One picture makes no batch at all: a clear error before any step, not the layer's mid-epoch.
  DataLoader tiny(single, normalise(), LoaderOptions().batch_size(8).workers(0));
  Trainer<float> again(net, loss, sgd, nullptr, TrainerOptions().epochs(1));
  try {
    again.fit(tiny);
    ADD_FAILURE() << "a training set of one picture trained a BatchNorm network";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("1 training examples make no batch of 2"), std::string::npos) << e.what();
  }
}

TEST(Trainer, NonFiniteLossStopsWithTheLastGoodCheckpointOnDisk) {
  TempDir dir;
  TinyRun run(1, /*lr=*/1e12);
  ConstantLR huge(1e12);
  Trainer<float> trainer(run.net, run.loss, *run.sgd, &huge,
                         TrainerOptions().epochs(2).checkpoint_dir(dir / "run").save_every(1));
  EXPECT_THROW(trainer.fit(run.train_loader), NonFiniteLossError);
  const Checkpoint last = Checkpoint::load(dir / "run/last.ckpt");  // written before the step that failed
  // It holds every step that succeeded, and the run stopped at the step that failed.
  EXPECT_EQ(last.u64s("trainer/position"),
            (std::vector<std::uint64_t>{static_cast<std::uint64_t>(trainer.position().epoch),
                                        static_cast<std::uint64_t>(trainer.position().batch)}));
  EXPECT_GE(trainer.position().batch, 1);
}

TEST(Trainer, RefusesBadOptionsAndForeignPositions) {
  TinyRun run(1);
  EXPECT_THROW(Trainer<float>(run.net, run.loss, *run.sgd, nullptr, TrainerOptions().epochs(0)),
               std::invalid_argument);
  EXPECT_THROW(Trainer<float>(run.net, run.loss, *run.sgd, nullptr, TrainerOptions().save_every(0)),
               std::invalid_argument);
  Trainer<float> trainer(run.net, run.loss, *run.sgd, nullptr, TrainerOptions().epochs(2));
  Checkpoint c;
  save_training_state<float>(c, run.net, run.sgd.get());
  c.set_u64s("trainer/position", {5, 0});
  c.set_f64s("trainer/partial", {0, 0, 0, 0});
  c.set_f64s("trainer/history", {});
  try {
    trainer.load(c);
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("trainer/position (5, 0) is outside this run of 2 epochs"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(trainer.position().epoch, 0);
  // A history epoch beyond an int (found by fuzzing: the cast was undefined), and a position past the
  // epochs of the loader the run is given.
  c.set_u64s("trainer/position", {1, 0});
  c.set_f64s("trainer/history", {4294967296.0, 1, 0.5, 1, 0.5, 0.1, 1});
  EXPECT_THROW(trainer.load(c), CheckpointError);
  c.set_u64s("trainer/position", {0, 1000});
  c.set_f64s("trainer/history", {});
  trainer.load(c);
  try {
    trainer.fit(run.train_loader);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("stands at batch 1000 of epoch 1 but an epoch of this loader has 6 batches"),
              std::string::npos) << e.what();
  }
}

TEST(Trainer, ValidatesALossOnTheEmbeddingAloneByWhatTheEmbeddingClassifies) {
  TempDir dir;
  TinyRun run(1);
  auto objective = make_objective<float>("contrastive", {}, ObjectiveOptions().embedding_layer("flatten"));
  Trainer<float> trainer(run.net, objective, *run.sgd, &run.schedule,
                         TrainerOptions().epochs(2).checkpoint_dir(dir / "out").validate_embedding(
                             "flatten", EmbeddingMetric::Euclidean));
  ASSERT_EQ(trainer.fit(run.train_loader, &run.val_loader).outcome, FitOutcome::Completed);
  // The network after the last epoch is the one that epoch validated: its figure is the split
  // half's of its validation embeddings, not the untrained head's.
  run.val_loader.start_epoch(0);
  const EmbeddingSet set = embed(run.net, run.val_loader, "flatten");
  ASSERT_EQ(set.size(), 24);
  const double expected = static_cast<double>(split_half_centroid_correct(set, EmbeddingMetric::Euclidean)) / 24;
  EXPECT_DOUBLE_EQ(trainer.history().back().val_accuracy, expected);
  run.val_loader.start_epoch(0);
  const double head = evaluate(run.net, run.val_loader).top1_accuracy();
  EXPECT_NE(head, expected) << "the test cannot tell the two figures apart";
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

// ---- training at bf16 (precision.hpp) ------------------------------------------------------------

namespace {

// The tiny AlexNet's weights, flattened.
std::vector<float> weights_of(Sequential<float>& net) {
  std::vector<float> v;
  for (const auto& p : net.parameters()) v.insert(v.end(), p.value, p.value + p.size);
  return v;
}

// Ten SGD steps at bf16 follow the same ten at fp32 from the same weights and batches, as closely
// as fp32 follows itself. Short runs at a useful rate are chaotic (measured: fp32 from weights moved
// by 0.1% ends 25% of its update away), so the yardstick is a third run in fp32 whose weights were
// rounded once to bf16 at the start: the bf16 run may end at most 3 times as far from fp32 as that
// one (measured on AMX: about 1x), and each step's loss within 5% (measured: at most 2.7%).
TEST(Bf16Training, TenStepsFollowTheFp32StepsAsCloselyAsFp32FollowsItself) {
  std::cout << "[ path ] training steps at bf16 on " << to_string(matrix_path()) << "\n";
  TinyData data(32, 5);
  auto fp32 = make_alexnet<float>(tiny_config(), 4), bf16 = make_alexnet<float>(tiny_config(), 4),
       nudged = make_alexnet<float>(tiny_config(), 4);
  bf16.set_precision(Precision::Bf16);
  for (std::size_t i = 0; i < bf16.size(); ++i) {
    if (auto* conv = dynamic_cast<Conv2d<float>*>(&bf16[i])) conv->set_algorithm(ConvAlgorithm::Direct);  // all in bf16
  }
  for (auto& p : nudged.parameters()) {
    for (Index i = 0; i < p.size; ++i) p.value[i] = round_to_bf16(p.value[i]);
  }
  const auto options = SgdOptions(0.01).momentum(0.9).weight_decay(5e-4).nesterov(true);
  Sgd<float> sgd_fp32(fp32.parameters(), options), sgd_bf16(bf16.parameters(), options),
      sgd_nudged(nudged.parameters(), options);
  SoftmaxCrossEntropy<float> loss;
  Objective<float> objective(loss);
  const std::vector<float> start = weights_of(fp32);
  for (int step = 0; step < 10; ++step) {
    const double a = train_step(fp32, objective, sgd_fp32, data.images, data.labels).loss;
    const double b = train_step(bf16, objective, sgd_bf16, data.images, data.labels).loss;
    train_step(nudged, objective, sgd_nudged, data.images, data.labels);
    EXPECT_NEAR(b, a, 0.05 * a) << "step " << step;
  }
  const std::vector<float> w32 = weights_of(fp32), w16 = weights_of(bf16), wn = weights_of(nudged);
  double update = 0, apart = 0, nudged_apart = 0;
  for (std::size_t i = 0; i < w32.size(); ++i) {
    update += (w32[i] - start[i]) * (w32[i] - start[i]);
    apart += (w16[i] - w32[i]) * (w16[i] - w32[i]);
    nudged_apart += (wn[i] - w32[i]) * (wn[i] - w32[i]);
  }
  std::cout << "[ bf16 ] after 10 steps: update " << std::sqrt(update) << ", bf16 run apart " << std::sqrt(apart)
            << ", fp32 run from rounded weights apart " << std::sqrt(nudged_apart) << "\n";
  EXPECT_GT(update, 0.0);
  EXPECT_GT(apart, 0.0) << "bf16 changed nothing: the products were not rounded";
  EXPECT_LT(std::sqrt(apart), 3 * std::sqrt(nudged_apart)) << "the bf16 run left the fp32 run faster than fp32 leaves itself";
}

// The trainer applies its precision to the network; the weights it saves are fp32 and load into
// a network at either precision, which then computes as that precision does.
TEST(Bf16Training, TheTrainerSetsThePrecisionAndCheckpointsLoadUnderEither) {
  TempDir dir;
  TinyRun run(1);
  Trainer<float> trainer(run.net, run.loss, *run.sgd, &run.schedule,
                         TrainerOptions().epochs(1).checkpoint_dir(dir / "out").precision(Precision::Bf16));
  EXPECT_EQ(run.net.precision(), Precision::Bf16);
  EXPECT_EQ(run.net[0].precision(), Precision::Bf16);
  trainer.fit(run.train_loader, &run.val_loader);
  TinyRun fp32(9), bf16(9);
  const Checkpoint last = Checkpoint::load(trainer.last_path());
  fp32.net.load(last);
  bf16.net.set_precision(Precision::Bf16);
  bf16.net.load(last);
  EXPECT_EQ(fp32.values(), run.values());
  EXPECT_EQ(bf16.values(), run.values());
  Tensor<float> x(4, 3, 8, 8);
  x.setRandom();
  fp32.net.eval();
  bf16.net.eval();
  const Tensor<float> y32 = fp32.net.forward(x);
  const Tensor<float> y16 = bf16.net.forward(x);
  double worst = 0, scale = 0;
  for (Index i = 0; i < y32.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(y32.data()[i] - y16.data()[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(y32.data()[i])));
  }
  EXPECT_LT(worst, 0.02 * scale);
}

}  // namespace
