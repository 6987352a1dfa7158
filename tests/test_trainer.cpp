// The library's Trainer and Classifier, used directly as a program of a user's
// would: last/best checkpoints, resume mid-epoch bit for bit, early stopping,
// stop requests, non-finite losses, and a checkpoint turned into a classifier.
#include <gtest/gtest.h>

#include <convnet/inference/classifier.hpp>
#include <convnet/inference/embedding_classifier.hpp>
#include <convnet/data/image.hpp>
#include <convnet/layers/conv2d.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/layers/flatten.hpp>
#include <convnet/layers/relu.hpp>
#include <convnet/losses/softmax_cross_entropy.hpp>
#include <convnet/optim/schedules.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/train/trainer.hpp>
#include <convnet/train/callbacks.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "processes.hpp"

#include <convnet/stop_signals.hpp>

namespace {

using namespace convnet;
using convnet::testing::TempDir;

// 48 pictures 3 x 8 x 8 of three classes: class c is bright in channel c, with noise.
class TinyPictures : public Dataset {
 public:
  explicit TinyPictures(Index n, std::uint64_t seed = 3) {
    Rng rng(seed);
    for (Index i = 0; i < n; ++i) {
      Image image(3, 8, 8);
      const int label = static_cast<int>(i % 3);
      for (Index c = 0; c < 3; ++c)
        for (Index k = 0; k < 64; ++k)
          image.pixels[static_cast<std::size_t>(c * 64 + k)] =
              static_cast<float>((c == label ? 150.0 : 60.0) + rng.uniform(-50, 50));
      images_.push_back(image);
      labels_.push_back(label);
    }
  }
  Index size() const override { return static_cast<Index>(images_.size()); }
  int label(Index i) const override { return labels_[static_cast<std::size_t>(i)]; }
  void load(Index i, Image& out) const override { out = images_[static_cast<std::size_t>(i)]; }
  const std::vector<std::string>& class_names() const override { return names_; }

 private:
  std::vector<Image> images_;
  std::vector<int> labels_;
  std::vector<std::string> names_{"red", "green", "blue"};
};

Pipeline normalise() {
  Pipeline p;
  p.add<Normalize>(ChannelStats{{100, 100, 100}, {60, 60, 60}});
  return p;
}

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
  EXPECT_EQ(last.f64s("trainer/history").size(), 21u);
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
  again.resume(Checkpoint::load(dir / "run/last.ckpt"));
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
  back.restore(c);
  EXPECT_EQ(back.updates(), 2u);
  back.swap();
  EXPECT_DOUBLE_EQ(params[0].value[0], 5.25);
  back.swap();
  EXPECT_THROW(WeightAverage<double>(net, WeightAverageOptions().decay(1)), std::invalid_argument);
  Sequential<double> other;
  other.add<Dense<double>>("fc", DenseOptions(2, 1));
  WeightAverage<double> mismatched(other, WeightAverageOptions());
  EXPECT_THROW(mismatched.restore(c), CheckpointError);
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
  again.resume(Checkpoint::load(dir / "b/last.ckpt"));
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
  EXPECT_NO_THROW(without.resume(a_last));  // the average's entries are simply not read
  TinyRun wants(3);
  Trainer<float> wanting(wants.net, wants.loss, *wants.sgd, &wants.schedule, options("c"));
  Checkpoint no_average;
  {
    TinyRun bare(4);
    Trainer<float> t(bare.net, bare.loss, *bare.sgd, &bare.schedule, TrainerOptions().epochs(1).checkpoint_dir(dir / "d"));
    t.fit(bare.train_loader, &bare.val_loader);
    no_average = Checkpoint::load(dir / "d/last.ckpt");
  }
  EXPECT_THROW(wanting.resume(no_average), CheckpointError);
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
    again.resume(Checkpoint::load(dir / "run/last.ckpt"));
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

// SIGINT and SIGTERM alike: the first sets the flag and says which signal; a second ends the
// process at once, with 128 + its number, without running anything more.
TEST(StopSignals, FirstSignalSetsTheFlagASecondExitsAtOnce) {
  for (const auto& [first, second] : {std::pair<int, int>{SIGTERM, SIGINT}, std::pair<int, int>{SIGINT, SIGTERM}}) {
    convnet::testing::ChildProcess child([first = first, second = second](int fd) {
      ::dup2(fd, STDERR_FILENO);  // where the second signal's message goes
      StopSignals signals;
      ::raise(first);
      const bool seen = signals.received() && signals.signal() == first && signals.exit_status() == 128 + first;
      ::write(fd, seen ? "y" : "n", 1);
      ::raise(second);
      ::write(fd, " and carried on", 15);
    });
    const std::string said = child.read_rest();
    const int status = child.wait();
    EXPECT_EQ(said, "y\nsecond signal: exiting without saving\n");
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 128 + second);
  }
  // Handlers are restored when the guard ends, and only one guard may be installed at a time.
  struct sigaction before {}, after {};
  sigaction(SIGTERM, nullptr, &before);
  {
    StopSignals signals;
    EXPECT_THROW(StopSignals(), std::logic_error);
  }
  sigaction(SIGTERM, nullptr, &after);
  EXPECT_EQ(before.sa_handler, after.sa_handler);
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
    trainer.resume(c);
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
  EXPECT_THROW(trainer.resume(c), CheckpointError);
  c.set_u64s("trainer/position", {0, 1000});
  c.set_f64s("trainer/history", {});
  trainer.resume(c);
  try {
    trainer.fit(run.train_loader);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("stands at batch 1000 of epoch 1 but an epoch of this loader has 6 batches"),
              std::string::npos) << e.what();
  }
}

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
  const auto all = model.predict_ten_crop(picture, 10);
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

  Checkpoint bare;
  save_training_state(bare, net);
  bare.save(dir / "bare.ckpt");
  try {
    Classifier::load(dir / "bare.ckpt");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("no 'config' entry"), std::string::npos) << e.what();
  }
}

// One catch takes every error of convnet's own, and each is still the standard exception it naturally is.
TEST(Errors, EveryConvnetErrorIsAConvnetError) {
  auto message_of = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const convnet::Error& e) {
      return e.what();
    }
    return "(nothing thrown)";
  };
  Dense<float> dense(DenseOptions(4, 2));
  EXPECT_NE(message_of([&] { dense.forward(Tensor<float>(1, 5, 1, 1)); }).find("expected shape"), std::string::npos);
  EXPECT_NE(message_of([] { Checkpoint::parse("nonsense", "x.ckpt"); }).find("x.ckpt"), std::string::npos);
  EXPECT_NE(message_of([] { throw DataError("bad file"); }), "(nothing thrown)");
  EXPECT_NE(message_of([] { throw NonFiniteLossError("nan"); }), "(nothing thrown)");
  EXPECT_THROW(dense.forward(Tensor<float>(1, 5, 1, 1)), std::invalid_argument);
  EXPECT_THROW(Checkpoint::parse("nonsense"), std::runtime_error);
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

}  // namespace
