// convnet's benchmarks (Google Benchmark).
//
//   build/benchmarks/convnet_bench [--benchmark_filter=REGEX]
//
// Data-loader throughput uses CIFAR-10 from $CIFAR10_DIR (or
// ../shared/data/cifar-10-batches-bin, data/cifar-10-batches-bin) when it is
// there, else generated 32 x 32 pictures of the same size.
#include <benchmark/benchmark.h>

#include <convnet/convnet.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace {

using namespace convnet;

// ---- data loader --------------------------------------------------------------------

class SyntheticCifar : public Dataset {
 public:
  explicit SyntheticCifar(Index n) : n_(n), names_(10, "class") {}
  Index size() const override { return n_; }
  int label(Index i) const override { return static_cast<int>(i % 10); }
  void load(Index i, Image& out) const override {
    out.resize(3, 32, 32);
    for (std::size_t k = 0; k < out.pixels.size(); ++k) out.pixels[k] = static_cast<float>((i * 7 + k) % 256);
  }
  const std::vector<std::string>& class_names() const override { return names_; }

 private:
  Index n_;
  std::vector<std::string> names_;
};

std::string cifar_dir() {
  if (const char* env = std::getenv("CIFAR10_DIR")) return env;
  for (const char* p : {"../shared/data/cifar-10-batches-bin", "../../shared/data/cifar-10-batches-bin",
                        "data/cifar-10-batches-bin"}) {
    if (std::filesystem::exists(std::string(p) + "/test_batch.bin")) return p;
  }
  return "";
}

const Dataset& loader_dataset() {
  static std::unique_ptr<Dataset> data = [] () -> std::unique_ptr<Dataset> {
    const std::string dir = cifar_dir();
    if (!dir.empty()) return std::make_unique<Cifar10Dataset>(dir, Cifar10Part::Test);
    return std::make_unique<SyntheticCifar>(10000);
  }();
  return *data;
}

// The CIFAR training pipeline: random crop with padding 4, flip, per-channel normalisation.
// workers = 0 builds every batch on the benchmark's own thread: one thread's throughput.
void BM_LoaderCifarAugmented(benchmark::State& state) {
  const Dataset& data = loader_dataset();
  Pipeline pipeline;
  pipeline.add<RandomCrop>(32, 32, 4).add<RandomHorizontalFlip>().add<Normalize>(
      ChannelStats{{125.3, 123.0, 113.9}, {63.0, 62.1, 66.7}});
  DataLoader loader(data, pipeline,
                    LoaderOptions().batch_size(128).workers(static_cast<int>(state.range(0))).seed(1));
  std::uint64_t epoch = 0;
  loader.start_epoch(epoch);
  Index images = 0;
  for (auto _ : state) {
    const Batch* batch = loader.next();
    if (!batch) {
      loader.start_epoch(++epoch);
      batch = loader.next();
    }
    benchmark::DoNotOptimize(batch->images.data());
    images += batch->count();
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
  state.SetLabel(cifar_dir().empty() ? "generated pictures" : "CIFAR-10 test set");
}
BENCHMARK(BM_LoaderCifarAugmented)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- whole-network training step ------------------------------------------------------

void BM_TrainStep(benchmark::State& state, const std::string& config_name) {
  const Index batch = state.range(0);
  const AlexNetConfig config = AlexNetConfig::named(config_name);
  auto net = make_alexnet<float>(config, 1);
  Sgd<float> sgd(net.parameters(), SgdOptions(1e-4).nesterov(true));
  SoftmaxCrossEntropy<float> loss;
  Tensor<float> images(batch, 3, config.input_size, config.input_size);
  images.setRandom();
  std::vector<int> labels(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % config.classes);
  train_step(net, loss, sgd, images, labels);  // warm-up: sizes every buffer
  for (auto _ : state) train_step(net, loss, sgd, images, labels);
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_TrainStep, cifar_half, std::string("cifar-half"))->Arg(128)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStep, cifar, std::string("cifar"))->Arg(128)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
