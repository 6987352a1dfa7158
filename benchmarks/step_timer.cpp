// Times whole-network training steps or inference passes on synthetic data,
// one configuration per process, so that benchmarks/compare_pytorch.py can
// measure each run's peak memory with /usr/bin/time -v.
//
//   convnet_step --config cifar-half --mode train|infer --batch 128 [--steps 10] [--warmup 2] [--threads N]
//
// Prints one line: "convnet config=... mode=... batch=... threads=... median_s=... images_per_s=...
// effective_gflops=... peak_gflops=... peak_share=...": effective GFLOP/s are the direct
// method's FLOPs of a step (training: forward, weight gradients and input gradients but
// conv1's) over its median time, whichever algorithms ran; the peak is this machine's,
// measured in the same process before the steps (benchmarks/peak.hpp).
#include <convnet/models/alexnet.hpp>
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

int main(int argc, char** argv) {
  using namespace convnet;
  try {
    std::string config_name = "cifar-half", mode = "train";
    long batch = 128, steps = 10, warmup = 2, threads = 0;
    cli::OptionTable table("usage: convnet_step [options]",
                           {{"options",
                             {{"--config", "NAME", "network configuration", &config_name},
                              {"--mode", "train|infer", "what to time", &mode},
                              {"--batch", "N", "pictures per step", &batch},
                              {"--steps", "N", "timed steps", &steps},
                              {"--warmup", "N", "untimed steps first", &warmup},
                              {"--threads", "N", "compute threads (0: all cores)", &threads}}}});
    if (!table.parse(argc, argv).empty()) throw std::invalid_argument("unexpected argument");
    if (threads > 0) set_num_threads(static_cast<int>(threads));
    if (mode != "train" && mode != "infer") throw std::invalid_argument("--mode must be train or infer");
    if (steps < 1 || warmup < 0 || batch < 1) throw std::invalid_argument("--steps, --batch >= 1, --warmup >= 0");

    const AlexNetConfig config = AlexNetConfig::named(config_name);
    auto net = make_alexnet<float>(config, 1);
    net.set_input_gradient(false);
    // The optimizer (and its momentum, as large as the weights) only where it is used.
    std::unique_ptr<Sgd<float>> sgd;
    if (mode == "train") {
      sgd = std::make_unique<Sgd<float>>(net.parameters(),
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
      const bool weights = !net[i].parameters().empty(), input_gradient = i > 0;
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
