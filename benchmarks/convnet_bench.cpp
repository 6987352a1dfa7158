// convnet's benchmarks (Google Benchmark).
//
//   build/benchmarks/convnet_bench [--benchmark_filter=REGEX]
//
//   Peak             this machine's FMA throughput on all threads (GFLOP/s), the
//                    yardstick for every other figure
//   AmxPeak          the AMX tile unit's bf16 throughput on one thread (skipped without AMX)
//   AmxLoadedPeak    the same with each product's operands loaded from L1 first: the GEMM's ceiling
//   Gemm/2048/{bf16,fp32}/{threads}
//                    C = A B at 2048^3 in bf16 (on the host's path) and in fp32
//   Layer/<config>/<layer>/{forward,backward}
//                    each layer of paper (batch 64), cifar and cifar-half (128),
//                    effective GFLOP/s (the direct method's 2 x multiply-adds
//                    over the time, whichever algorithm ran; backward counts
//                    both products) and "peak", that as a share of the peak
//                    measured at the start of the run (1 = 100%)
//   TrainStep, Infer whole networks in images/s at batches 1, 64 and 128; the
//                    training step also reports heap allocations per step
//   Loader           augmented CIFAR batches per second
//
// Data-loader throughput uses CIFAR-10 from $CIFAR10_DIR (or
// ../shared/data/cifar-10-batches-bin, data/cifar-10-batches-bin) when it is
// there, else generated 32 x 32 pictures of the same size.
#include <benchmark/benchmark.h>

#include <convnet/convnet.hpp>
#include <convnet/cpu_features.hpp>
#include <convnet/kernels/gemm_bf16.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "alloc_counter.hpp"
#include "peak.hpp"

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

// ---- peak ---------------------------------------------------------------------------

void BM_Peak(benchmark::State& state) {
  const long iterations = 1 << 20;
  const int threads = num_threads();
  for (auto _ : state) benchmark::DoNotOptimize(convnet_bench::run_chains(threads, iterations));
  state.counters["GFLOP/s"] = benchmark::Counter(
      convnet_bench::chain_flops(iterations) * threads * static_cast<double>(state.iterations()) / 1e9,
      benchmark::Counter::kIsRate);
  state.SetLabel(std::to_string(threads) + " threads");
}
BENCHMARK(BM_Peak)->UseRealTime()->Unit(benchmark::kMillisecond);

#ifdef CONVNET_X86
// The AMX tile peak on one thread: four independent TDPBF16PS chains whose operands stay in tiles
// (16 x 32 by 32 x 16 bf16 into 16 x 16 fp32: 16384 FLOP each), the yardstick of the bf16 products.
__attribute__((target("amx-tile,amx-bf16"))) void amx_chains(long iterations) {
  detail::configure_tiles();
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_zero(4);
  _tile_zero(5);
  _tile_zero(6);
  _tile_zero(7);
  for (long i = 0; i < iterations; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  detail::release_tiles();
}

void BM_AmxPeak(benchmark::State& state) {
  if (best_matrix_path() != MatrixPath::Amx) {
    state.SkipWithError(("no AMX on this host (" + cpu_features().describe() + ")").c_str());
    return;
  }
  const long iterations = 1 << 20;
  for (auto _ : state) amx_chains(iterations);
  state.counters["GFLOP/s"] =
      benchmark::Counter(4.0 * 16384 * iterations * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel("1 thread");
}
BENCHMARK(BM_AmxPeak)->UseRealTime()->Unit(benchmark::kMillisecond);

// The same four chains with their operands loaded from L1 before each use, as any product must
// (the GEMM's 2 x 2 block on 32 KiB of operands, over and over): the ceiling of the bf16 GEMM where
// loading a tile, not multiplying it, sets the pace.
void BM_AmxLoadedPeak(benchmark::State& state) {
  if (best_matrix_path() != MatrixPath::Amx) {
    state.SkipWithError(("no AMX on this host (" + cpu_features().describe() + ")").c_str());
    return;
  }
  constexpr Index steps = 8;  // 32 x 256 of A and 256 x 32 of B: 32 KiB
  std::vector<Bf16> a(32 * 32 * steps, to_bf16(0.5f)), b(a.size(), to_bf16(0.25f));
  alignas(64) float block[32 * 32] = {};
  const long iterations = 1 << 14;
  for (auto _ : state) {
    detail::configure_tiles();
    for (long i = 0; i < iterations; ++i) {
      detail::amx_block_32x32(a.data(), a.data() + 16 * 32 * steps, b.data(), b.data() + 16 * 32 * steps, steps, block,
                              32, true);
    }
    detail::release_tiles();
    benchmark::DoNotOptimize(block);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * 16384 * steps * iterations * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.SetLabel("1 thread");
}
BENCHMARK(BM_AmxLoadedPeak)->UseRealTime()->Unit(benchmark::kMillisecond);
#endif

// C (n x n) = A (n x n) B (n x n) in bf16 on the host's path (or fp32 with range(1) == 0), on
// range(2) threads.
void BM_Gemm(benchmark::State& state) {
  const Index n = state.range(0);
  const bool bf16 = state.range(1) != 0;
  const int threads_before = num_threads();
  set_num_threads(static_cast<int>(state.range(2)));
  std::vector<float> a(static_cast<std::size_t>(n * n)), b(a.size()), c(a.size());
  Rng rng(1);
  for (auto& v : a) v = static_cast<float>(rng.uniform(-1, 1));
  for (auto& v : b) v = static_cast<float>(rng.uniform(-1, 1));
  auto product = [&] {
    if (bf16) {
      gemm_bf16(Transpose::No, Transpose::No, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    } else {
      gemm<float>(Transpose::No, Transpose::No, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    }
  };
  product();  // warm-up: sizes the packing buffers
  for (auto _ : state) product();
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.SetLabel(bf16 ? std::string("bf16 on ") + to_string(matrix_path()) : std::string("fp32"));
  set_num_threads(threads_before);
}
BENCHMARK(BM_Gemm)->Args({2048, 1, 1})->Args({2048, 0, 1})->Args({2048, 1, 2})->Args({2048, 0, 2})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- layers ---------------------------------------------------------------------------

// One network per configuration with every layer's input kept, built on first use.
struct LayerBench {
  Sequential<float> net;
  std::vector<Tensor<float>> inputs;  // inputs[i]: what layer i reads
  Index batch;
};

LayerBench& layer_bench(const std::string& config_name, Index batch) {
  static std::map<std::string, std::unique_ptr<LayerBench>> cache;
  auto& slot = cache[config_name];
  if (!slot) {
    slot = std::make_unique<LayerBench>();
    const AlexNetConfig config = AlexNetConfig::named(config_name);
    slot->net = make_alexnet<float>(config, 1);
    slot->batch = batch;
    Tensor<float> x(batch, 3, config.input_size(), config.input_size());
    x.setRandom();
    for (std::size_t i = 0; i < slot->net.size(); ++i) {
      slot->inputs.push_back(x);
      x = slot->net[i].forward(slot->inputs.back());
    }
  }
  return *slot;
}

void BM_Layer(benchmark::State& state, const std::string& config_name, Index batch, std::size_t index, bool backward) {
  LayerBench& b = layer_bench(config_name, batch);
  Layer<float>& layer = b.net[index];
  const Tensor<float>& input = b.inputs[index];
  const Shape in = shape_of(input);
  Tensor<float> grad = make_tensor<float>(layer.output_shape(in));
  grad.setConstant(1e-3f);
  layer.set_input_gradient(index > 0);  // training skips conv1's input gradient
  layer.forward(input);
  for (auto _ : state) {
    if (backward) {
      benchmark::DoNotOptimize(layer.backward(grad).data());
    } else {
      benchmark::DoNotOptimize(layer.forward(input).data());
    }
  }
  // Forward: 2 x MACs. Backward of a convolution or dense layer: the weight
  // gradient and (except conv1) the input gradient, each as large as forward.
  const double macs = static_cast<double>(layer.macs_per_sample(in) * in.n);
  const double factor = backward ? (index > 0 ? 2.0 : 1.0) : 1.0;
  if (macs > 0) {
    // Effective: the direct method's FLOPs over the time, whichever algorithm ran,
    // and that as a share of this machine's peak measured in this run.
    static const double peak = convnet_bench::measure_peak_gflops(num_threads());
    const double flops = 2.0 * macs * factor;
    state.counters["GFLOP/s"] =
        benchmark::Counter(flops * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
    state.counters["peak"] = benchmark::Counter(flops * static_cast<double>(state.iterations()) / 1e9 / peak,
                                                benchmark::Counter::kIsRate);
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(in.n * state.iterations()), benchmark::Counter::kIsRate);
}

// ---- whole networks --------------------------------------------------------------------

void BM_TrainStep(benchmark::State& state, const std::string& config_name) {
  const Index batch = state.range(0);
  const AlexNetConfig config = AlexNetConfig::named(config_name);
  auto net = make_alexnet<float>(config, 1);
  net.set_input_gradient(false);
  Sgd<float> sgd(net.parameters(), SgdOptions(1e-4).nesterov(true));
  SoftmaxCrossEntropy<float> loss;
  Objective<float> objective(loss);
  Tensor<float> images(batch, 3, config.input_size(), config.input_size());
  images.setRandom();
  std::vector<int> labels(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % config.classes());
  train_step(net, objective, sgd, images, labels);  // warm-up: sizes every buffer
  alloc_counter::start();
  for (auto _ : state) train_step(net, objective, sgd, images, labels);
  const long allocations = alloc_counter::stop();
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["allocs/step"] = static_cast<double>(allocations) / static_cast<double>(state.iterations());
}

void BM_Infer(benchmark::State& state, const std::string& config_name) {
  const Index batch = state.range(0);
  const AlexNetConfig config = AlexNetConfig::named(config_name);
  auto net = make_alexnet<float>(config, 1);
  net.eval();
  Tensor<float> images(batch, 3, config.input_size(), config.input_size());
  images.setRandom();
  net.forward(images);
  for (auto _ : state) benchmark::DoNotOptimize(net.forward(images).data());
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
}

const bool registered = [] {
  const std::vector<std::pair<std::string, Index>> configs{{"paper", 64}, {"cifar", 128}, {"cifar-half", 128}};
  for (const auto& [name, batch] : configs) {
    // The layer list of the configuration (names only; the network is built when a benchmark runs).
    auto probe = make_alexnet<float>(AlexNetConfig::named(name).width(name == "paper" ? 0.01 : 0.1));
    for (std::size_t i = 0; i < probe.size(); ++i) {
      if (probe[i].type_name() == "Flatten") continue;
      for (bool backward : {false, true}) {
        benchmark::RegisterBenchmark(
            ("Layer/" + name + "/" + probe[i].name() + (backward ? "/backward" : "/forward")).c_str(),
            [name = name, batch = batch, i, backward](benchmark::State& st) { BM_Layer(st, name, batch, i, backward); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
    for (Index b : {Index{1}, Index{64}, Index{128}}) {
      benchmark::RegisterBenchmark(("TrainStep/" + name).c_str(),
                                   [name = name](benchmark::State& st) { BM_TrainStep(st, name); })
          ->Arg(b)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("Infer/" + name).c_str(), [name = name](benchmark::State& st) { BM_Infer(st, name); })
          ->Arg(b)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
