// Times data-parallel training steps over MPI on synthetic data (built when MPI is found):
//
//   mpirun -np 2 convnet_mpi_step --config cifar --batch 128 --threads 1 [--steps 10] [--warmup 2]
//   convnet_mpi_step --config cifar --batch 128 --threads 2      (alone: one process, no MPI calls)
//
// The batch is the global one; each rank trains its slice. Steps alternate between
// the overlapped sums (each bucket starts as soon as backward has finished its
// layers) and sums started only after backward, so both are measured on the same
// machine state. Rank 0 prints one line:
//   "convnet_mpi ranks=... threads=... config=... batch=... median_s=... images_per_s=...
//    serial_median_s=... allreduce_s=... gradient_floats=..."
// serial_median_s is the step without overlap, allreduce_s the median of one blocking
// sum of every gradient (the communication a step cannot avoid).
#include <convnet/models/alexnet.hpp>
#include <convnet/distributed/mpi.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/threading.hpp>
#include <convnet/train/step.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <convnet/cli/option_table.hpp>

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace convnet;
  mpi::World world(argc, argv);
  try {
    std::string config_name = "cifar";
    long batch = 128, steps = 10, warmup = 2, threads = 0;
    cli::OptionTable table("usage: [mpirun -np N] convnet_mpi_step [options]",
                           {{"options",
                             {{"--config", "NAME", "network configuration", &config_name},
                              {"--batch", "N", "pictures per step, over all ranks", &batch},
                              {"--steps", "N", "timed steps of each kind", &steps},
                              {"--warmup", "N", "untimed steps first", &warmup},
                              {"--threads", "N", "compute threads a rank (0: all cores)", &threads}}}});
    if (!table.parse(argc, argv).empty()) throw std::invalid_argument("unexpected argument");
    if (threads > 0) set_num_threads(static_cast<int>(threads));
    const int ranks = world.size(), rank = world.rank();
    if (steps < 1 || warmup < 0 || batch < ranks) throw std::invalid_argument("--steps >= 1, --warmup >= 0, --batch >= ranks");

    const AlexNetConfig config = AlexNetConfig::named(config_name);
    auto net = make_alexnet<float>(config, 1);
    net.set_input_gradient(false);
    Sgd<float> sgd(net.parameters(), SgdOptions(1e-4).momentum(0.9).weight_decay(5e-4).nesterov(true));
    SoftmaxCrossEntropy<float> loss;
    Objective<float> objective(loss);
    const Index offset = batch * rank / ranks, local = batch * (rank + 1) / ranks - offset;
    Tensor<float> images(local, config.input_channels(), config.input_size(), config.input_size());
    images.setRandom();
    std::vector<int> labels(static_cast<std::size_t>(local));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>((offset + static_cast<Index>(i)) % config.classes());

    ProcessGroup* group = world.group();
    std::unique_ptr<GradientReducer<float>> reducer;
    if (group) reducer = std::make_unique<GradientReducer<float>>(net, *group);
    net.set_batch_offset(offset);
    const auto observe = [&](bool overlap) {
      if (!reducer) return;
      if (overlap) {
        net.set_backward_observer([&](std::size_t layer) { reducer->layer_done(layer); });
      } else {
        net.set_backward_observer(nullptr);  // every bucket starts in finish(), after backward
      }
    };
    const auto step = [&] {
      if (reducer) reducer->begin(static_cast<double>(local) / static_cast<double>(batch));
      train_step(net, objective, sgd, images, labels, nullptr, reducer.get());
    };
    observe(true);
    for (long i = 0; i < warmup; ++i) step();
    std::vector<double> overlapped, serial, allreduce;
    for (long i = 0; i < steps; ++i) {
      for (bool overlap : {false, true}) {
        observe(overlap);
        if (group) group->all_equal(0);  // start together
        const auto start = std::chrono::steady_clock::now();
        step();
        (overlap ? overlapped : serial).push_back(seconds_since(start));
      }
    }
    net.set_backward_observer(nullptr);
    // One blocking sum of every gradient at once.
    const Index floats = net.parameter_count();
    std::vector<float> all(static_cast<std::size_t>(floats), 1.0f);
    for (long i = 0; group && i < steps; ++i) {
      group->all_equal(0);
      const auto start = std::chrono::steady_clock::now();
      group->allreduce_sum(all.data(), floats);
      allreduce.push_back(seconds_since(start));
    }
    if (rank == 0) {
      const double m = median(overlapped);
      std::printf("convnet_mpi ranks=%d threads=%d config=%s batch=%ld median_s=%.6f images_per_s=%.2f "
                  "serial_median_s=%.6f allreduce_s=%.6f gradient_floats=%ld\n",
                  ranks, num_threads(), config_name.c_str(), batch, m, static_cast<double>(batch) / m,
                  median(serial), allreduce.empty() ? 0.0 : median(allreduce), static_cast<long>(floats));
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convnet_mpi_step: rank " << world.rank() << ": " << e.what() << std::endl;
    world.abort_job();
    return 1;
  }
}
