// ProcessGroup: what data-parallel training asks of a group of processes that
// train one model together - who I am, broadcast, and sums over every process,
// blocking or started now and finished later. The core library only sees this
// interface; distributed/mpi.hpp implements it over MPI (the optional target
// convnet::mpi), so nothing here needs MPI to build or to test.
//
// Every process must make the same calls in the same order (the collective
// contract of MPI): Trainer and GradientReducer do, by construction.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../tensor.hpp"

namespace convnet {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  /// Copies `bytes` from `root`'s buffer into every other process's.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  /// In place: every process ends with the element-wise sum over all of them.
  virtual void allreduce_sum(double* data, Index count) = 0;
  virtual void allreduce_sum(float* data, Index count) = 0;
  /// Whether every process passed the same value (a hash of what must agree).
  virtual bool all_equal(std::uint64_t value) = 0;

  /// Non-blocking sums: start one, let it progress between other work, then
  /// wait for it. The handle is valid until wait() returns.
  using Request = std::size_t;
  virtual Request start_allreduce_sum(float* data, Index count) = 0;
  virtual Request start_allreduce_sum(double* data, Index count) = 0;
  /// Lets started sums progress (MPI moves them only inside its calls); true when `request` is done.
  virtual bool test(Request request) = 0;
  virtual void wait(Request request) = 0;
};

/// One process alone: every collective is the identity. What a trainer without
/// a group behaves as, and a reference for the data-parallel tests.
class SingleProcess : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void broadcast(void*, std::size_t, int) override {}
  void allreduce_sum(double*, Index) override {}
  void allreduce_sum(float*, Index) override {}
  bool all_equal(std::uint64_t) override { return true; }
  Request start_allreduce_sum(float*, Index) override { return 0; }
  Request start_allreduce_sum(double*, Index) override { return 0; }
  bool test(Request) override { return true; }
  void wait(Request) override {}
};

}  // namespace convnet
