// ProcessGroup: what data-parallel training asks of a group of processes that
// train one model together - who I am, broadcast, and sums over every process,
// blocking or started now and finished later. The core library only sees this
// interface; distributed/mpi.hpp implements it over MPI (the optional target
// convnet::mpi), so nothing here needs MPI to build or to test.
//
// Every process must make the same calls in the same order (the collective
// contract of MPI): Trainer and GradientReducer do, by construction.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "../errors.hpp"
#include "../tensor.hpp"

namespace convnet {

/// What ends a wait inside a collective other than its completion: a deadline (a rank that stopped
/// answering would otherwise hang the whole job forever) and a stop request (SIGINT/SIGTERM, which
/// must be honoured while the others do not come).
struct CollectiveWatch {
  /// A collective that has not completed after this long ends the job, naming the rank that is late
  /// (default 10 minutes: generous, a real step of any network takes far less; 0: no deadline).
  CollectiveWatch& timeout_seconds(double v) { timeout_seconds_ = v; return *this; }
  /// No deadline at all: a collective ends only on an event (late_when, the stop flag).
  CollectiveWatch& no_deadline() { return timeout_seconds(0); }
  /// Polled while waiting; once set, a collective that still has not completed after
  /// stop_grace_seconds ends the job with the exit status `exit_status` gives (130, 143).
  CollectiveWatch& stop_flag(const std::atomic<bool>* v) { stop_flag_ = v; return *this; }
  CollectiveWatch& stop_grace_seconds(double v) { stop_grace_seconds_ = v; return *this; }
  /// A stop request ends a collective still waiting at once, with no grace.
  CollectiveWatch& stop_without_grace() { return stop_grace_seconds(0); }
  CollectiveWatch& exit_status(std::function<int()> v) { exit_status_ = std::move(v); return *this; }
  /// Polled while waiting, beside the timeout: once it returns true the collective ends as a timeout
  /// would, naming the late rank. For tests, which end a wait on an event (a rank said it stopped
  /// answering), never on time: a slow or busy machine cannot make them fail.
  CollectiveWatch& late_when(std::function<bool()> v) { late_when_ = std::move(v); return *this; }
  double timeout_seconds() const { return timeout_seconds_; }
  const std::atomic<bool>* stop_flag() const { return stop_flag_; }
  double stop_grace_seconds() const { return stop_grace_seconds_; }
  int exit_status_now() const { return exit_status_ ? exit_status_() : 143; }
  bool declared_late() const { return late_when_ && late_when_(); }
  /// Seconds from any origin: what the timeout and the grace are measured on.
  double now() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

 private:
  double timeout_seconds_ = 600;
  const std::atomic<bool>* stop_flag_ = nullptr;
  double stop_grace_seconds_ = 5;
  std::function<int()> exit_status_;
  std::function<bool()> late_when_;
};

/// A collective that did not complete within CollectiveWatch::timeout_seconds; says which rank is late.
class CollectiveTimeout : public SystemError {
 public:
  explicit CollectiveTimeout(const std::string& what) : SystemError(what) {}
};

/// A stop request (SIGINT, SIGTERM) while a collective waited for ranks that did not come; the job
/// ends with exit_status() (128 + the signal).
class CollectiveStopped : public SystemError {
 public:
  CollectiveStopped(const std::string& what, int exit_status) : SystemError(what), exit_status_(exit_status) {}
  int exit_status() const { return exit_status_; }

 private:
  int exit_status_;
};

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
  /// How waits end besides completion (a group whose collectives cannot hang ignores it).
  virtual void set_watch(const CollectiveWatch&) {}
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
