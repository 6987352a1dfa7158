// A steady-state training step allocates nothing.
//
// This executable replaces malloc and its relatives (alloc_counter.hpp), so it
// sees every heap allocation: ours, Eigen's, libstdc++'s and OpenMP's
// runtime's. It is a separate executable so the counting cannot disturb the
// other tests.
#include <gtest/gtest.h>
#include <omp.h>

#include <convnet/models/alexnet.hpp>
#include <convnet/models/fast_cifar.hpp>
#include <convnet/inference/classifier.hpp>
#include <convnet/data/image_io.hpp>
#include <convnet/optim/adam.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/optim/weight_average.hpp>
#include <convnet/train/step.hpp>
#include <convnet/train/training_state.hpp>

#include <convnet/layers/dense.hpp>
#include <convnet/layers/flatten.hpp>

#include <cstring>
#include <fstream>
#include <iostream>

#include "../benchmarks/alloc_counter.hpp"  // the counter the benchmarks report with
#include "helpers.hpp"

namespace {

using namespace convnet;

// Allocations in three steps after two warm-up steps, with `objective` (null:
// plain cross-entropy).
long allocations_in_steps(Sequential<float>& net, Optimizer<float>& optimizer, LrSchedule* schedule, Index batch,
                          Index side, Objective<float>* objective = nullptr) {
  omp_set_dynamic(0);  // a runtime free to resize teams (OMP_DYNAMIC=true) could change what is counted
  Tensor<float> images(batch, 3, side, side);
  images.setRandom();
  std::vector<int> labels(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % 10);
  SoftmaxCrossEntropy<float> loss;
  Objective<float> cross_entropy(loss);
  auto step = [&] { train_step(net, objective ? *objective : cross_entropy, optimizer, images, labels, schedule); };
  for (int i = 0; i < 2; ++i) step();  // warm-up sizes buffers
  alloc_counter::start();
  for (int i = 0; i < 3; ++i) step();
  return alloc_counter::stop();
}

TEST(Allocations, CounterSeesAllocations) {
  alloc_counter::start();
  std::vector<int>* v = new std::vector<int>(1000);
  const long seen = alloc_counter::stop();
  delete v;
  EXPECT_GE(seen, 2);  // the vector object and its buffer
}

TEST(Allocations, SteadyStateCifarHalfStepWithSgd) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar-half"), 1);
  Sgd<float> sgd(net.parameters(), SgdOptions(0.01).nesterov(true));
  OneCycleLR schedule(OneCycleLROptions(0.05, 100));
  EXPECT_EQ(allocations_in_steps(net, sgd, &schedule, 16, 32), 0);
}

// At bf16 (on AMX where the host has it, else the emulated path): packed weights, packed columns
// and the tiles' scratch are grow-only too. Batch 32, so that Dense multiplies in bf16 and the
// 3 x 3 layers take Winograd F(2x2, 3x3).
TEST(Allocations, SteadyStateBf16StepWithSgd) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar-half"), 1);
  net.set_precision(Precision::Bf16);
  Sgd<float> sgd(net.parameters(), SgdOptions(0.01).nesterov(true));
  EXPECT_EQ(allocations_in_steps(net, sgd, nullptr, 32, 32), 0);
}

TEST(Allocations, SteadyStateCifarStepWithAdam) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar").groups(2), 1);
  Adam<float> adam(net.parameters(), AdamOptions(1e-4));
  EXPECT_EQ(allocations_in_steps(net, adam, nullptr, 4, 32), 0);
}

// Batch normalisation, label smoothing, normalised and global embedding losses and the weight
// average's update: nothing allocated in steady state either.
TEST(Allocations, SteadyStateBatchNormStepWithSmoothingEmbeddingLossesAndAverage) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar-half-bn"), 1);
  Sgd<float> sgd(net.parameters(), SgdOptions(0.01).nesterov(true));
  auto objective = make_objective<float>("cross-entropy(label_smoothing=0.1)+contrastive(normalize=1)+siamese-global");
  EXPECT_EQ(allocations_in_steps(net, sgd, nullptr, 16, 32, &objective), 0);
  WeightAverage<float> average(net, WeightAverageOptions());
  average.update();
  alloc_counter::start();
  for (int i = 0; i < 3; ++i) average.update();
  { WeightAverage<float>::Swapped in(average); }
  EXPECT_EQ(alloc_counter::stop(), 0);
}

// The fast CIFAR network in bf16 (GELU, bias-only batch normalisation, Multiply, a frozen first layer) with
// label smoothing, and the lookahead's averaging: nothing allocated in steady state.
TEST(Allocations, SteadyStateFastCifarStepAndLookahead) {
  auto net = make_fast_cifar<float>(FastCifarOptions(), 1);
  net.set_input_gradient(false);
  net.set_precision(Precision::Bf16);  // the recipe's (AMX where the host has it, else the emulated path)
  Sgd<float> sgd(net.trainable_parameters(), SgdOptions(0.01).nesterov(true));
  auto objective = make_objective<float>("cross-entropy(label_smoothing=0.2)");
  EXPECT_EQ(allocations_in_steps(net, sgd, nullptr, 4, 32, &objective), 0);
  WeightAverage<float> slow(net, WeightAverageOptions().decay(0.77).every(5).lookahead(true).ramp(100, 3));
  slow.update();
  alloc_counter::start();
  for (int i = 0; i < 10; ++i) slow.update();
  slow.copy_to_network();
  EXPECT_EQ(alloc_counter::stop(), 0);
}

// The objective with a loss on fc7 (the tap in backward) allocates nothing either.
TEST(Allocations, SteadyStateStepWithCrossEntropyAndTriplet) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar-half"), 1);
  Sgd<float> sgd(net.parameters(), SgdOptions(0.01));
  auto objective = make_objective<float>("cross-entropy+hinge+triplet+triplet(semi_hard=1)+lmnn(targets=3)",
                                         {1.0, 0.5, 0.5, 0.5, 0.5});
  EXPECT_EQ(allocations_in_steps(net, sgd, nullptr, 16, 32, &objective), 0);
}

// ---- Hostile inputs never ask for gigabytes ----
// Each runs under a cap on single allocations (256 MiB): an input that made the library ask for more
// would fail here with std::bad_alloc (or be counted in `refused`), on any machine, instead of
// exhausting memory on a big one. Before the checks, each of these asked for tens of GB.
constexpr std::size_t kCap = std::size_t{256} << 20;

// A checkpoint of a few hundred bytes holding only a configuration text (issue 20, item 1).
Checkpoint configuration_only(const std::string& config) {
  Checkpoint c;
  c.set_text("config", config);
  c.set_text("data/classes", "a\nb\n");
  c.set_f64s("data/mean", {0, 0, 0});
  c.set_f64s("data/std", {1, 1, 1});
  return Checkpoint::parse(c.serialize(), "hostile.ckpt");
}

std::string refusal_of(const Checkpoint& c) {
  try {
    Classifier::from_checkpoint(c);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "no CheckpointError";
}

TEST(Hostile, ACheckpointOfConfigurationTextAloneAllocatesNothingBig) {
  const std::string wide = AlexNetConfig::named("paper").width(4).str();  // 600 M weights in fc6 alone
  const std::string wider = AlexNetConfig::named("paper").width(8).str();  // fc6 over 2^31 weights
  std::string huge_input = AlexNetConfig::named("torchvision").str();
  huge_input.replace(huge_input.find("input=224"), 9, "input=4000000000");
  alloc_counter::CapGuard cap(kCap);
  const std::string a = refusal_of(configuration_only(wide));
  EXPECT_NE(a.find("needs parameter conv1.weight [384, 3, 11, 11], which it does not hold"), std::string::npos) << a;
  const std::string b = refusal_of(configuration_only(wider));
  EXPECT_NE(b.find("fc6 weights must be at most 2^31"), std::string::npos) << b;
  const std::string c = refusal_of(configuration_only(huge_input));
  EXPECT_NE(c.find("input_size must be in [1, 1024], got 4000000000"), std::string::npos) << c;
  EXPECT_EQ(alloc_counter::refused.load(), 0) << "asked for " << alloc_counter::largest_refused.load() << " bytes";
}

// The stored tensors must have the shapes the configuration implies, checked before the network is built.
TEST(Hostile, StoredTensorsMustMatchTheConfigurationBeforeAnythingIsBuilt) {
  const AlexNetConfig small = AlexNetConfig::named("cifar-half").width(0.25);
  auto net = make_alexnet<float>(small, 1);
  Checkpoint c;
  save_training_state(c, net);
  c.set_text("config", AlexNetConfig::named("cifar-half").width(16).str());  // claims a far bigger network
  alloc_counter::CapGuard cap(kCap);
  const std::string what = refusal_of(Checkpoint::parse(c.serialize(), "hostile.ckpt"));
  EXPECT_NE(what.find("needs parameter conv1.weight [1024, 3, 5, 5] but it holds [16, 3, 5, 5]"), std::string::npos)
      << what;
  EXPECT_EQ(alloc_counter::refused.load(), 0) << "asked for " << alloc_counter::largest_refused.load() << " bytes";
}

// A 1 x 1,000,000 picture (a few KB as a PNG) scaled so its shorter side is 32 (issue 20, item 2).
TEST(Hostile, AThinPictureIsRefusedNotScaledToGigabytes) {
  Image thin;
  thin.resize(3, 1, 1'000'000);
  Rng rng(1);
  {
    alloc_counter::CapGuard cap(kCap);
    try {
      Resize::shorter_side(32).apply(thin, rng);
      ADD_FAILURE() << "resized to " << thin.shape_str();
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("Resize::max_output_pixels"), std::string::npos) << e.what();
    }
    EXPECT_EQ(alloc_counter::refused.load(), 0) << "asked for " << alloc_counter::largest_refused.load() << " bytes";
  }
  // As a file, it is refused when it is read, by its aspect ratio.
  convnet::testing::TempDir dir;
  write_png(dir / "thin.png", 1'000'000, 1, std::vector<std::uint8_t>(3'000'000, 128));
  alloc_counter::CapGuard cap(kCap);
  try {
    decode_image(dir / "thin.png");
    ADD_FAILURE() << "decoded";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("aspect ratio of 1e+06, over the limit of 100 (ImageLimits::max_aspect_ratio)"),
              std::string::npos) << e.what();
  }
  EXPECT_EQ(alloc_counter::refused.load(), 0) << "asked for " << alloc_counter::largest_refused.load() << " bytes";
}

// ---- Checkpoints cost at most what they hold (issue 40, item 3) ----
// Every allocation live during a load is summed (not only the largest): for each crafted file, the
// most held at once stays within twice the file plus a constant, the bound docs/security.md states.
constexpr long long kLoadConstant = 40LL << 20;

std::string write_bytes(const convnet::testing::TempDir& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir / name, std::ios::binary) << bytes;
  return dir / name;
}

// Loads `path` as `convnet predict` would; returns the most bytes held at once, and the refusal.
long long peak_bytes_loading(const std::string& path, std::string& refusal) {
  alloc_counter::start_bytes();
  try {
    Classifier::load(path);
    refusal.clear();
  } catch (const CheckpointError& e) {
    refusal = e.what();
  }
  return alloc_counter::stop_bytes();
}

// A small network any reader can rebuild from its structure: Flatten, then Dense 3072 -> 3.
Checkpoint small_saved_network() {
  Sequential<float> net;
  net.add(std::make_unique<Flatten<float>>(), "flatten");
  net.add(std::make_unique<Dense<float>>(DenseOptions(3072, 3)), "fc");
  Checkpoint c;
  net.save(c);
  c.set_text("data/classes", "cat\ndog\nbird\n");
  return c;
}

std::uint64_t fnv1a(const std::string& s, std::size_t from) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = from; i < s.size(); ++i) {
    h ^= static_cast<unsigned char>(s[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// `count` entries, each a 3-byte key and an empty text: 16 bytes an entry, as the file.
std::string empty_entries(std::uint32_t count) {
  std::string file("CNVNCKPT", 8);
  auto put = [&](std::uint64_t v, int bytes) { file.append(reinterpret_cast<const char*>(&v), bytes); };
  put(1, 4);
  put(count, 4);
  put(std::uint64_t{count} * 16, 8);
  put(0, 8);  // the checksum, below
  for (std::uint32_t i = 0; i < count; ++i) {
    put(3, 4);
    put(i, 3);
    put(1, 1);  // text
    put(0, 8);
  }
  const std::uint64_t sum = fnv1a(file, 32);
  std::memcpy(&file[24], &sum, 8);
  return file;
}

TEST(CheckpointCost, EveryCraftedFileCostsAtMostTwiceItsSizePlusAConstant) {
  convnet::testing::TempDir dir;
  struct Case {
    std::string name, bytes, refusal;  // refusal: "" when the file loads
  };
  std::vector<Case> cases;
  cases.push_back({"entries_1M.ckpt", empty_entries(1'000'000), "announces 1000000 entries, over the limit of 65536"});
  cases.push_back({"entries_65536.ckpt", empty_entries(65'536), "does not say which network it holds"});
  {
    Checkpoint c = small_saved_network();
    cases.push_back({"good.ckpt", c.serialize(), ""});
    std::string tokens;
    for (int i = 0; i < (8 << 20); ++i) tokens += "a ";
    c.set_text("structure", tokens);  // the one line of millions of one-letter tokens
    cases.push_back({"tokens.ckpt", c.serialize(), "has a line of 16777216 bytes (at most 8192)"});
    std::string lines;  // as many lines with as many settings as the bounds let through
    for (int l = 0; l < 4096; ++l) {
      lines += "l" + std::to_string(l) + " Odd";
      for (int k = 0; k < 64; ++k) lines += " a";
      lines += "\n";
    }
    c.set_text("structure", lines);
    cases.push_back({"settings.ckpt", c.serialize(), "unknown layer type 'Odd'"});
  }
  {
    Checkpoint c = small_saved_network();
    c.set_text("data/classes", std::string(1 << 20, 'n'));
    cases.push_back({"long_name.ckpt", c.serialize(), "class name 1 is 1048576 bytes long (at most 256)"});
    std::string names;
    for (int i = 0; i < 100'001; ++i) names += std::to_string(i) + "\n";
    c.set_text("data/classes", names);
    cases.push_back({"many_names.ckpt", c.serialize(), "data/classes lists more than 100000 names"});
    names.clear();
    for (int i = 0; i < 100'000; ++i) names += std::string(255, 'n') + "\n";
    c.set_text("data/classes", names);
    cases.push_back({"longest_names.ckpt", c.serialize(), ""});
    c.set_text(std::string(8 << 20, 'k'), "");
    cases.push_back({"long_key.ckpt", c.serialize(), "has a key of 8388608 bytes, over the limit of 1024"});
  }
  for (const Case& k : cases) {
    const std::string path = write_bytes(dir, k.name, k.bytes);
    std::string refusal;
    const long long peak = peak_bytes_loading(path, refusal);
    const long long bound = 2 * static_cast<long long>(k.bytes.size()) + kLoadConstant;
    EXPECT_LE(peak, bound) << k.name << ": " << k.bytes.size() << " bytes, " << refusal;
    if (k.refusal.empty()) {
      EXPECT_EQ(refusal, "") << k.name;
    } else {
      EXPECT_NE(refusal.find(k.refusal), std::string::npos) << k.name << ": " << refusal;
    }
    std::cout << "[ info     ] " << k.name << ": " << k.bytes.size() << " bytes, at most " << peak
              << " bytes held while loading\n";
  }
}

}  // namespace
