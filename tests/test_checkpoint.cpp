// Checkpoints (checkpoint/): the file format and what it refuses (truncated, corrupted, foreign and
// hostile files, limits), atomic saves, and the training state a checkpoint carries - saved,
// restored bit for bit, refused when it does not fit the network.
#include <gtest/gtest.h>

#include <convnet/checkpoint.hpp>
#include <convnet/losses/softmax_cross_entropy.hpp>
#include <convnet/models/alexnet.hpp>
#include <convnet/models/sequential.hpp>
#include <convnet/optim/adam.hpp>
#include <convnet/optim/schedules.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/random.hpp>
#include <convnet/tensor.hpp>
#include <convnet/threading.hpp>
#include <convnet/train/step.hpp>
#include <convnet/train/trainer.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>
#include <sys/resource.h>
#include <unistd.h>

#include "helpers.hpp"
#include "processes.hpp"
#include "tiny_alexnet.hpp"

namespace {

using namespace convnet;
namespace fs = std::filesystem;

using convnet::testing::TempDir;
using convnet::testing::TinyData;
using convnet::testing::tiny_config;

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
  Objective<float> objective{loss};  // the step minimises an Objective: a loss is Objective(loss)
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
        train_step(net, objective, sgd, batch, labels, &schedule);
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

// A trainer's last.ckpt as convnet wrote it before the one save/load pair (tests/golden/
// checkpoint_v2.ckpt, from tests/golden/make_checkpoint_v2.cpp at b8c20bb: the history as seven
// positional values an epoch, a weight average, BatchNorm buffers, dropout's random state) loads
// whole into a trainer, whose network then gives the logits stored beside it; saved again, it
// writes the history by field, and that loads to the same run.
TEST(Checkpoint, ReadsTrainerCheckpointsOfTheSecondFormat) {
  const Checkpoint c = Checkpoint::load(std::string(CONVNET_GOLDEN_DIR) + "/checkpoint_v2.ckpt");
  ASSERT_TRUE(c.contains("trainer/history"));
  ASSERT_FALSE(c.contains("trainer/history/epoch"));
  struct Run {
    Sequential<float> net;
    SoftmaxCrossEntropy<float> loss;
    Sgd<float> sgd;
    OneCycleLR schedule{OneCycleLROptions(0.05, 6)};
    Trainer<float> trainer;
    explicit Run(const AlexNetConfig& config)
        : net(make_alexnet<float>(config, 99)),
          sgd(net.parameters(), SgdOptions(0.05).momentum(0.9).nesterov(true).weight_decay(5e-4)),
          trainer(net, loss, sgd, &schedule, TrainerOptions().epochs(2).average_weights(0.9)) {}
    std::vector<float> logits(bool averaged) {
      Tensor<float> x(2, 3, 16, 16);
      for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 37 % 101) - 50) / 50.0f;
      net.eval();
      std::optional<WeightAverage<float>::Swapped> in;
      if (averaged) in.emplace(*const_cast<WeightAverage<float>*>(trainer.average()));
      const Tensor<float>& y = net.forward(x);
      return std::vector<float>(y.data(), y.data() + y.size());
    }
  };
  const AlexNetConfig config = AlexNetConfig::parse(c.text("config"));
  Run run(config);
  run.trainer.load(c);
  ASSERT_EQ(run.trainer.history().size(), 2u);
  EXPECT_EQ(run.trainer.history()[1].epoch, 2);
  EXPECT_EQ(run.trainer.position().epoch, 2);
  EXPECT_EQ(run.sgd.steps(), 6u);
  EXPECT_EQ(run.trainer.average()->updates(), 6u);
  const std::vector<float> expected = c.tensor<float>("golden/logits"), averaged = c.tensor<float>("golden/average_logits");
  const std::vector<float> got = run.logits(false), got_averaged = run.logits(true);
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(got[i], expected[i], 1e-5f) << i;
    EXPECT_NEAR(got_averaged[i], averaged[i], 1e-5f) << i;
  }

  Checkpoint again;
  run.trainer.save(again);
  EXPECT_EQ(again.f64s("trainer/history/epoch"), (std::vector<double>{1, 2}));
  EXPECT_FALSE(again.contains("trainer/history"));
  Run second(config);
  second.trainer.load(Checkpoint::parse(again.serialize()));
  EXPECT_EQ(second.logits(false), got);
  EXPECT_EQ(second.logits(true), got_averaged);
  ASSERT_EQ(second.trainer.history().size(), 2u);
  EXPECT_DOUBLE_EQ(second.trainer.history()[1].val_loss, run.trainer.history()[1].val_loss);
  EXPECT_DOUBLE_EQ(second.trainer.average_history()[1].val_accuracy, run.trainer.average_history()[1].val_accuracy);
}

// Every stateful object loads all or nothing, and several through load_all together: when the
// last part does not fit, the parts loaded before it get back what they held.
TEST(Checkpoint, LoadAllGivesEveryPartBackWhenALaterOneFails) {
  auto net = make_alexnet<float>(tiny_config(), 1);
  Sgd<float> sgd(net.parameters(), SgdOptions(0.1).momentum(0.9));
  Checkpoint c;
  save_all(c, {state_part(net, ""), state_part(sgd, "optimizer/")});
  auto other = make_alexnet<float>(tiny_config(), 2);
  Adam<float> adam(other.parameters(), AdamOptions(0.1));  // Sgd's state does not fit an Adam
  const auto before = all_values(other);
  EXPECT_NE(checkpoint_error([&] { load_all(c, {state_part(other, ""), state_part(adam, "optimizer/")}); })
                .find("optimizer state is for Sgd, not Adam"),
            std::string::npos);
  EXPECT_TRUE(before == all_values(other)) << "the network loaded before the optimizer failed was not given back";
  load_all(c, {state_part(other, "")});
  EXPECT_TRUE(all_values(net) == all_values(other));
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

}  // namespace
