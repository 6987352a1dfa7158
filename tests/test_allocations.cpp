// A steady-state training step allocates nothing.
//
// This executable replaces malloc and its relatives (alloc_counter.hpp), so it
// sees every heap allocation: ours, Eigen's, libstdc++'s and OpenMP's
// runtime's. It is a separate executable so the counting cannot disturb the
// other tests.
#include <gtest/gtest.h>
#include <omp.h>

#include <convnet/alexnet.hpp>
#include <convnet/optim/adam.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/training.hpp>

#include "alloc_counter.hpp"

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
  auto step = [&] {
    if (objective) {
      train_step(net, *objective, optimizer, images, labels, schedule);
    } else {
      train_step(net, loss, optimizer, images, labels, schedule);
    }
  };
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

TEST(Allocations, SteadyStateCifarStepWithAdam) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar").groups(2), 1);
  Adam<float> adam(net.parameters(), AdamOptions(1e-4));
  EXPECT_EQ(allocations_in_steps(net, adam, nullptr, 4, 32), 0);
}

// The objective with a loss on fc7 (the tap in backward) allocates nothing either.
TEST(Allocations, SteadyStateStepWithCrossEntropyAndTriplet) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar-half"), 1);
  Sgd<float> sgd(net.parameters(), SgdOptions(0.01));
  auto objective = make_objective<float>("cross-entropy+hinge+triplet", {1.0, 0.5, 0.5});
  EXPECT_EQ(allocations_in_steps(net, sgd, nullptr, 16, 32, &objective), 0);
}

}  // namespace
