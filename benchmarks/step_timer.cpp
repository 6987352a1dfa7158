// Times whole-network training steps or inference passes on synthetic data,
// one configuration per process, so that benchmarks/compare_pytorch.py can
// measure each run's peak memory with /usr/bin/time -v.
//
//   convnet_step --config cifar-half|fast-cifar --mode train|infer --batch 128 [--steps 10] [--warmup 2] [--threads N]
//                [--precision auto|fp32|bf16] [--conv auto|direct|winograd|tiles] [--per-layer] [--freeze LAYERS]
//
// Prints one line: "convnet config=... mode=... batch=... threads=... median_s=... images_per_s=...
// effective_gflops=... peak_gflops=... peak_share=...": effective GFLOP/s are the direct
// method's FLOPs of a step (training: forward, weight gradients and input gradients but
// conv1's) over its median time, whichever algorithms ran; the peak is this machine's,
// measured in the same process before the steps (benchmarks/peak.hpp). A line before it says which
// kernels run ("kernels: host ... products ..."); --per-layer adds each layer's forward and
// backward milliseconds (medians of the timed steps, a layer at a time).
#include <convnet/cpu_features.hpp>
#include <convnet/models/alexnet.hpp>
#include <convnet/models/fast_cifar.hpp>
#include <convnet/models/transfer.hpp>
#include <convnet/precision.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/threading.hpp>
#include <convnet/train/step.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <convnet/cli/option_table.hpp>
#include "peak.hpp"

namespace {

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Each layer's forward (and, training, backward) on its own, `steps` times: medians in ms.
void time_layers(convnet::Sequential<float>& net, const convnet::Tensor<float>& images, bool train, long steps) {
  using namespace convnet;
  using clock = std::chrono::steady_clock;
  std::vector<std::vector<double>> forward(net.size()), backward(net.size());
  for (long s = 0; s < steps; ++s) {
    const Tensor<float>* x = &images;
    for (std::size_t i = 0; i < net.size(); ++i) {
      const auto start = clock::now();
      x = &net[i].forward(*x);
      forward[i].push_back(std::chrono::duration<double, std::milli>(clock::now() - start).count());
    }
    if (!train) continue;
    Tensor<float> grad = *x;
    grad.setConstant(1e-3f);
    const Tensor<float>* g = &grad;
    for (std::size_t i = net.size(); i-- > 0;) {
      const auto start = clock::now();
      g = &net[i].backward(*g);
      backward[i].push_back(std::chrono::duration<double, std::milli>(clock::now() - start).count());
    }
  }
  for (std::size_t i = 0; i < net.size(); ++i) {
    std::printf("layer %-8s forward_ms=%.3f", net[i].name().c_str(), median_of(forward[i]));
    if (train) std::printf(" backward_ms=%.3f", median_of(backward[i]));
    std::printf("  %s\n", net[i].describe().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace convnet;
  try {
    std::string config_name = "cifar-half", mode = "train", precision_name = "fp32";
    long batch = 128, steps = 10, warmup = 2, threads = 0;
    std::string conv = "auto", freeze;
    bool per_layer = false;
    cli::OptionTable table("usage: convnet_step [options]",
                           {{"options",
                             {{"--config", "NAME", "network configuration, or fast-cifar", &config_name},
                              {"--mode", "train|infer", "what to time", &mode},
                              {"--batch", "N", "pictures per step", &batch},
                              {"--steps", "N", "timed steps", &steps},
                              {"--warmup", "N", "untimed steps first", &warmup},
                              {"--threads", "N", "compute threads (0: all cores)", &threads},
                              {"--precision", "auto|fp32|bf16", "the products' arithmetic", &precision_name},
                              {"--conv", "auto|direct|winograd|tiles", "convolutions' algorithm where it applies (else direct)", &conv},
                              {"--per-layer", "", "also time each layer", &per_layer},
                              {"--freeze", "LAYERS", "fine-tuning: layers that compute no weight gradient (conv1,conv2 or ..fc7)", &freeze}}}});
    if (!table.parse(argc, argv).empty()) throw std::invalid_argument("unexpected argument");
    if (threads > 0) set_num_threads(static_cast<int>(threads));
    if (mode != "train" && mode != "infer") throw std::invalid_argument("--mode must be train or infer");
    if (steps < 1 || warmup < 0 || batch < 1) throw std::invalid_argument("--steps, --batch >= 1, --warmup >= 0");

    // An AlexNet configuration, or the fast CIFAR network (models/fast_cifar.hpp; 32 x 32, 10 classes).
    const bool fast = config_name == "fast-cifar";
    const AlexNetConfig config = AlexNetConfig::named(fast ? "cifar" : config_name);
    auto net = fast ? make_fast_cifar<float>(FastCifarOptions(), 1) : make_alexnet<float>(config, 1);
    net.set_input_gradient(false);
    if (!freeze.empty()) net.freeze(layers_named(net, freeze));
    net.set_precision(parse_precision(precision_name, "--precision"));
    if (conv != "auto" && conv != "direct" && conv != "winograd" && conv != "tiles") {
      throw std::invalid_argument("--conv must be auto, direct, winograd or tiles");
    }
    for (std::size_t i = 0; i < net.size(); ++i) {
      auto* c = dynamic_cast<Conv2d<float>*>(&net[i]);
      if (c == nullptr || conv == "auto") continue;
      const Conv2dOptions& o = c->options();
      const bool fits = conv == "winograd" ? winograd::supports(o.kernel_size(), o.stride(), o.padding())
                                           : conv == "tiles" && conv_tiles::supports(o.kernel_size(), o.stride(), o.padding());
      c->set_algorithm(!fits ? ConvAlgorithm::Direct : conv == "winograd" ? ConvAlgorithm::Winograd : ConvAlgorithm::Tiles);
    }
    std::printf("kernels: host %s; bf16 path %s; products %s\n", cpu_features().describe().c_str(),
                to_string(matrix_path()), describe_precision(net.precision()).c_str());
    // The optimizer (and its momentum, as large as the weights) only where it is used.
    std::unique_ptr<Sgd<float>> sgd;
    if (mode == "train") {
      sgd = std::make_unique<Sgd<float>>(net.trainable_parameters(),
                                         SgdOptions(1e-4).momentum(0.9).weight_decay(5e-4).nesterov(true));
    }
    SoftmaxCrossEntropy<float> loss;
    Objective<float> objective(loss);
    Tensor<float> images(batch, 3, config.input_size(), config.input_size());
    images.setRandom();
    std::vector<int> labels(static_cast<std::size_t>(batch));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % static_cast<std::size_t>(config.classes()));
    if (mode == "infer") net.eval();
    // The direct method's multiply-adds of one step.
    double step_macs = 0;
    Shape shape{batch, 3, config.input_size(), config.input_size()};
    for (std::size_t i = 0; i < net.size(); ++i) {
      const double macs = static_cast<double>(net[i].macs_per_sample(shape)) * static_cast<double>(batch);
      // What backward does: nothing below the first layer it runs; weight gradients where the layer trains.
      const bool runs = i >= net.first_backward_layer();
      const bool weights = runs && !net[i].parameters().empty() && net[i].trainable(), input_gradient = runs && net[i].input_gradient();
      step_macs += mode == "train" ? macs * (1.0 + (weights ? 1.0 : 0.0) + (input_gradient ? 1.0 : 0.0)) : macs;
      shape = net[i].output_shape(shape);
    }
    const double peak = convnet_bench::measure_peak_gflops(num_threads());

    std::vector<double> seconds;
    for (long i = 0; i < warmup + steps; ++i) {
      const auto start = std::chrono::steady_clock::now();
      if (mode == "train") {
        train_step(net, objective, *sgd, images, labels);
      } else {
        net.forward(images);
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (i >= warmup) seconds.push_back(s);
    }
    if (per_layer) time_layers(net, images, mode == "train", steps);
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    const double effective = 2.0 * step_macs / median / 1e9;
    std::printf(
        "convnet config=%s mode=%s batch=%ld threads=%d median_s=%.6f images_per_s=%.2f effective_gflops=%.1f "
        "peak_gflops=%.1f peak_share=%.3f\n",
        config_name.c_str(), mode.c_str(), static_cast<long>(batch), num_threads(), median,
        static_cast<double>(batch) / median, effective, peak, effective / peak);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convnet_step: " << e.what() << "\n";
    return 1;
  }
}
