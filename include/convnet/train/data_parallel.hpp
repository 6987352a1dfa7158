// The data-parallel part of training (Trainer::distribute): every process trains the same model on
// its slice of each batch, and the processes sum their gradients in buckets while the backward pass
// runs (distributed/gradient_reducer.hpp). Before the first step the processes check that they have
// the same set-up (a hash of it) and take rank 0's weights, buffers, optimizer state and random
// states; at each epoch's end they average BatchNorm's running statistics; figures (losses, counts,
// a stop request) are summed so every process decides the same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../data/loader.hpp"
#include "../distributed/gradient_reducer.hpp"
#include "../distributed/process_group.hpp"
#include "../errors.hpp"
#include "../models/sequential.hpp"
#include "../optim/optimizer.hpp"

namespace convnet {

template <class T>
class DataParallel {
 public:
  DataParallel(ProcessGroup& group, Sequential<T>& net, Index bucket_bytes)
      : group_(group), reducer_(net, group, bucket_bytes) {}

  int rank() const { return group_.rank(); }
  Index size() const { return group_.size(); }
  const GradientReducer<T>& reducer() const { return reducer_; }

  /// For the length of fit(): the network's backward feeds the reducer, layer by layer; the observer
  /// and the batch offset are removed on every path out. A null `parallel` does nothing.
  class Scope {
   public:
    Scope(DataParallel* parallel, Sequential<T>& net) : parallel_(parallel), net_(net) {
      if (!parallel_) return;
      GradientReducer<T>* reducer = &parallel_->reducer_;
      net_.set_backward_observer([reducer](std::size_t layer) { reducer->layer_done(layer); });
    }
    ~Scope() {
      if (!parallel_) return;
      net_.set_backward_observer(nullptr);
      net_.set_batch_offset(0);
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    DataParallel* parallel_;
    Sequential<T>& net_;
  };

  /// Checks the processes agree (`setup_hash`, the same on each), gives them rank 0's state and their
  /// slices of the data.
  void start(Sequential<T>& net, Optimizer<T>& optimizer, DataLoader& train, DataLoader* validation,
             std::uint64_t setup_hash) {
    if (!group_.all_equal(setup_hash)) {
      throw DataError(detail::concat(
          "Trainer: the ", group_.size(), " processes do not have the same set-up (network, optimizer, data, "
          "batch size, seed, epochs, position of the run or build differ between ranks); start every rank with "
          "the same program, arguments and checkpoint"));
    }
    for (auto& p : net.parameters()) group_.broadcast(p.value, static_cast<std::size_t>(p.size) * sizeof(T), 0);
    for (auto& b : net.buffers()) group_.broadcast(b.value, static_cast<std::size_t>(b.size) * sizeof(T), 0);
    for (auto& b : optimizer.state()) group_.broadcast(b.data, static_cast<std::size_t>(b.size) * sizeof(T), 0);
    for (std::size_t i = 0; i < net.size(); ++i) {
      std::vector<std::uint64_t> state = net[i].random_state();
      if (state.empty()) continue;
      group_.broadcast(state.data(), state.size() * sizeof(std::uint64_t), 0);
      net[i].set_random_state(state);
    }
    train.set_shard(group_.rank(), group_.size());
    if (validation) validation->set_shard(group_.rank(), group_.size());
  }

  /// Before a step on this process's slice of `batch`: where the slice starts (dropout's masks follow
  /// the whole batch) and its share of the gradient sum. Returns the reducer the step finishes.
  GradientReducer<T>& begin_batch(Sequential<T>& net, const Batch& batch) {
    net.set_batch_offset(batch.offset);
    reducer_.begin(static_cast<double>(batch.count()) / static_cast<double>(batch.global_count));
    return reducer_;
  }

  /// BatchNorm's running statistics follow each process's slice of the batches: at the end of an
  /// epoch every process takes their mean, so all validate and save the same model.
  void average_buffers(Sequential<T>& net) {
    const T share = T(1) / static_cast<T>(group_.size());
    for (auto& b : net.buffers()) {
      group_.allreduce_sum(b.value, b.size);
      for (Index i = 0; i < b.size; ++i) b.value[i] *= share;
    }
  }

  /// Sums `values` over the processes.
  void sum(double* values, Index count) { group_.allreduce_sum(values, count); }

 private:
  ProcessGroup& group_;
  GradientReducer<T> reducer_;
};

}  // namespace convnet
