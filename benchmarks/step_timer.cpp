// Times whole-network training steps or inference passes on synthetic data,
// one configuration per process, so that benchmarks/compare_pytorch.py can
// measure each run's peak memory with /usr/bin/time -v.
//
//   convnet_step --config cifar-half --mode train|infer --batch 128 [--steps 10] [--warmup 2] [--threads N]
//
// Prints one line: "convnet config=... mode=... batch=... threads=... median_s=... images_per_s=..."
#include <convnet/alexnet.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/threading.hpp>
#include <convnet/training.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "../examples/cli.hpp"

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
    Sgd<float> sgd(net.parameters(), SgdOptions(1e-4).momentum(0.9).weight_decay(5e-4).nesterov(true));
    SoftmaxCrossEntropy<float> loss;
    Tensor<float> images(batch, 3, config.input_size(), config.input_size());
    images.setRandom();
    std::vector<int> labels(static_cast<std::size_t>(batch));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % static_cast<std::size_t>(config.classes()));
    if (mode == "infer") net.eval();

    std::vector<double> seconds;
    for (long i = 0; i < warmup + steps; ++i) {
      const auto start = std::chrono::steady_clock::now();
      if (mode == "train") {
        train_step(net, loss, sgd, images, labels);
      } else {
        net.forward(images);
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (i >= warmup) seconds.push_back(s);
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    std::printf("convnet config=%s mode=%s batch=%ld threads=%d median_s=%.6f images_per_s=%.2f\n",
                config_name.c_str(), mode.c_str(), static_cast<long>(batch), num_threads(), median,
                static_cast<double>(batch) / median);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convnet_step: " << e.what() << "\n";
    return 1;
  }
}
