// A steady-state training step allocates nothing.
//
// This executable replaces malloc and its relatives with counting wrappers
// around glibc's own allocator (__libc_malloc and friends), so it sees every
// heap allocation: ours, Eigen's, libstdc++'s and OpenMP's runtime's. It is a
// separate executable so the counting cannot disturb the other tests.
#include <gtest/gtest.h>

#include <convnet/alexnet.hpp>
#include <convnet/optim/adam.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/training.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
inline void count() {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  count();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  count();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* memalign(std::size_t alignment, std::size_t n) {
  count();
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  count();
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  count();
  void* p = __libc_memalign(alignment, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}

namespace {

using namespace convnet;

long allocations_in_steps(Sequential<float>& net, Optimizer<float>& optimizer, LrSchedule* schedule, Index batch,
                          Index side) {
  Tensor<float> images(batch, 3, side, side);
  images.setRandom();
  std::vector<int> labels(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % 10);
  SoftmaxCrossEntropy<float> loss;
  for (int i = 0; i < 2; ++i) train_step(net, loss, optimizer, images, labels, schedule);  // warm-up sizes buffers
  allocations = 0;
  counting = true;
  for (int i = 0; i < 3; ++i) train_step(net, loss, optimizer, images, labels, schedule);
  counting = false;
  return allocations.load();
}

TEST(Allocations, CounterSeesAllocations) {
  counting = true;
  allocations = 0;
  std::vector<int>* v = new std::vector<int>(1000);
  counting = false;
  delete v;
  EXPECT_GE(allocations.load(), 2);  // the vector object and its buffer
}

TEST(Allocations, SteadyStateCifarHalfStepWithSgd) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar-half"), 1);
  Sgd<float> sgd(net.parameters(), SgdOptions(0.01).nesterov(true));
  OneCycleLR schedule(0.05, 100);
  EXPECT_EQ(allocations_in_steps(net, sgd, &schedule, 16, 32), 0);
}

TEST(Allocations, SteadyStateCifarStepWithAdam) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar").with_groups(2), 1);
  Adam<float> adam(net.parameters(), AdamOptions(1e-4));
  EXPECT_EQ(allocations_in_steps(net, adam, nullptr, 4, 32), 0);
}

}  // namespace
