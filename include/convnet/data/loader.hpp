// DataLoader: shuffled, augmented batches in the network's layout (NCHW
// float), prepared on background threads while the current batch trains.
//
//   DataLoader loader(train_set, pipeline, LoaderOptions().batch_size(128).workers(1).seed(7));
//   for (std::uint64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (const Batch* batch = loader.next()) train_step(net, objective, sgd, batch->images, batch->labels);
//   }
//
// Determinism: the order of epoch e is a shuffle drawn from (seed, e), and the
// example at position p of epoch e is transformed with an Rng seeded from
// (seed, e, p). No random number depends on which thread does the work, so
// the same seed gives the same batches for any number of workers (0 = build
// each batch in the calling thread, no background threads).
//
// Up to `prefetch` batches are prepared ahead in a ring of buffers that are
// reused, so a steady-state epoch allocates nothing for its batches. A batch
// returned by next() stays valid until the following call to next() or
// start_epoch(). An error while preparing a batch (an undecodable picture) is
// rethrown by next(); with skip_unreadable(true), a picture whose load()
// or whose transforms throw a DataError is replaced by the next one of the epoch's order that
// loads (the same replacement whichever thread meets it) and counted in
// skipped(), so one corrupt file in a million does not end a run (1,000
// unreadable in a row do: the error is rethrown).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <type_traits>
#include <vector>

#include "../errors.hpp"
#include "../random.hpp"
#include "../tensor.hpp"
#include "dataset.hpp"
#include "transforms.hpp"

namespace convnet {

namespace detail {
/// Called with a worker's number before the loader starts its thread; empty unless a test sets it.
/// A test throws std::system_error from it to make a thread fail to start under any sanitizer (an
/// address-space limit, the real cause, does not mix with a sanitizer's shadow memory).
inline std::function<void(int)>& loader_thread_start_hook() {
  static std::function<void(int)> hook;
  return hook;
}
}  // namespace detail

struct LoaderOptions {
  LoaderOptions& batch_size(Index v) { batch_size_ = v; return *this; }
  LoaderOptions& shuffle(bool v) { shuffle_ = v; return *this; }
  LoaderOptions& drop_last(bool v) { drop_last_ = v; return *this; }
  LoaderOptions& workers(int v) { workers_ = v; return *this; }
  LoaderOptions& prefetch(int v) { prefetch_ = v; return *this; }
  LoaderOptions& seed(std::uint64_t v) { seed_ = v; return *this; }
  LoaderOptions& skip_unreadable(bool v) { skip_unreadable_ = v; return *this; }
  /// Pictures of one class kept together in runs of `v` (0: off): the epoch's order is the classes'
  /// shuffled pictures cut into runs of v, the runs shuffled, so a batch of P x v pictures holds
  /// about P classes with v pictures each - positives for every anchor of a pair or triplet loss.
  LoaderOptions& per_class(Index v) { per_class_ = v; return *this; }

  Index batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  bool drop_last() const { return drop_last_; }
  int workers() const { return workers_; }
  int prefetch() const { return prefetch_; }
  std::uint64_t seed() const { return seed_; }
  bool skip_unreadable() const { return skip_unreadable_; }
  Index per_class() const { return per_class_; }

 private:
  Index batch_size_ = 128;
  bool shuffle_ = true, drop_last_ = false, skip_unreadable_ = false;
  int workers_ = 1, prefetch_ = 4;
  std::uint64_t seed_ = 0;
  Index per_class_ = 0;
};

struct Batch {
  Tensor<float> images;        ///< [count, C, H, W]
  std::vector<int> labels;     ///< count labels
  std::vector<Index> indices;  ///< the dataset index of each example
  /// With set_shard: where this slice starts in the whole batch, and the whole batch's size
  /// (without: 0 and count()).
  Index offset = 0, global_count = 0;
  Index count() const { return static_cast<Index>(labels.size()); }
};

class DataLoader {
 public:
  DataLoader(const Dataset& data, Pipeline pipeline, const LoaderOptions& options = LoaderOptions())
      : data_(data), pipeline_(std::move(pipeline)), options_(options) {
    detail::require_option(options_.batch_size() >= 1, "DataLoader", "batch_size", ">= 1", options_.batch_size());
    detail::require_option(options_.batch_size() <= kMaxBatchSize, "DataLoader", "batch_size", "at most 65536",
                           options_.batch_size());
    detail::require_option(options_.workers() >= 0 && options_.workers() <= kMaxWorkers, "DataLoader", "workers",
                           "in [0, 256]", options_.workers());
    detail::require_option(options_.prefetch() >= 1 && options_.prefetch() <= kMaxPrefetch, "DataLoader", "prefetch",
                           "in [1, 1024]", options_.prefetch());
    detail::require_option(options_.per_class() >= 0 && options_.per_class() <= options_.batch_size(), "DataLoader", "per_class",
                           "in [0, batch_size]", options_.per_class());
    if (data_.size() == 0) throw DataError("DataLoader: the dataset is empty");
    slots_.resize(static_cast<std::size_t>(options_.workers() == 0 ? 1 : options_.prefetch()));
    try {
      for (int w = 0; w < options_.workers(); ++w) {
        if (detail::loader_thread_start_hook()) detail::loader_thread_start_hook()(w);
        threads_.emplace_back([this] { work(); });
      }
    } catch (...) {  // a thread could not start (std::system_error): end the ones that did, then report it
      stop_workers();
      throw;
    }
  }

  ~DataLoader() { stop_workers(); }

  static constexpr Index kMaxBatchSize = 65536;
  static constexpr int kMaxWorkers = 256, kMaxPrefetch = 1024;

  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  Index batches_per_epoch() const {
    const Index n = data_.size(), b = options_.batch_size();
    return options_.drop_last() ? n / b : (n + b - 1) / b;
  }
  const Dataset& dataset() const { return data_; }
  /// Pictures replaced because they could not be loaded (skip_unreadable), over every epoch so far.
  Index skipped() const { return skipped_.load(); }
  /// Why the first of them could not be loaded ("" when none was).
  std::string first_skip_reason() const {
    std::lock_guard<std::mutex> lock(skip_mutex_);
    return first_skip_reason_;
  }
  const LoaderOptions& options() const { return options_; }

  /// Data-parallel training: from the next start_epoch on, every batch is this
  /// process's slice (`rank` of `processes`, contiguous, sizes differing by at most
  /// one) of the batch one process would get - the same order, the same random
  /// transforms, so the slices of all processes together are exactly that batch.
  /// A batch with fewer examples than processes leaves some slices empty.
  void set_shard(int rank, int processes) {
    detail::require_option(processes >= 1, "DataLoader::set_shard", "processes", ">= 1", processes);
    detail::require_option(rank >= 0 && rank < processes, "DataLoader::set_shard", "rank",
                           detail::concat("in [0, ", processes - 1, "]").c_str(), rank);
    std::unique_lock<std::mutex> lock(mutex_);
    end_task_ = next_task_;  // as start_epoch: nothing new starts, what is in flight finishes
    idle_.wait(lock, [&] { return in_flight_ == 0; });
    shard_rank_ = rank;
    shard_count_ = processes;
    started_ = false;
  }
  int shard_rank() const { return shard_rank_; }
  int shard_count() const { return shard_count_; }

  /// Begins epoch `epoch` at batch `first_batch` (to resume an interrupted epoch).
  void start_epoch(std::uint64_t epoch, Index first_batch = 0) {
    detail::require_option(first_batch >= 0 && first_batch <= batches_per_epoch(), "DataLoader::start_epoch",
                           "first_batch", detail::concat("in [0, ", batches_per_epoch(), "]").c_str(), first_batch);
    std::unique_lock<std::mutex> lock(mutex_);
    end_task_ = next_task_;  // no new work; let the batches in flight finish
    idle_.wait(lock, [&] { return in_flight_ == 0; });
    epoch_ = epoch;
    order_.resize(static_cast<std::size_t>(data_.size()));
    for (Index i = 0; i < data_.size(); ++i) order_[static_cast<std::size_t>(i)] = i;
    if (options_.shuffle()) {
      Rng rng(detail::mix64(options_.seed() + detail::kGolden * (epoch + 1)) ^ 0x5DEECE66DULL);
      rng.shuffle(order_.begin(), order_.end());
      if (options_.per_class() > 0) group_by_class(rng);
    }
    for (auto& s : slots_) s.state = Slot::Empty;
    next_task_ = released_ = next_out_ = first_batch;
    end_task_ = batches_per_epoch();
    holding_ = false;
    started_ = true;
    lock.unlock();
    work_ready_.notify_all();
  }

  /// The next batch of the epoch, or nullptr when it is over.
  const Batch* next() {
    if (!started_) throw StateError("DataLoader::next: call start_epoch first");
    std::unique_lock<std::mutex> lock(mutex_);
    if (holding_) {  // the caller is done with the batch it holds
      holding_ = false;
      released_ = next_out_;
      lock.unlock();
      work_ready_.notify_all();
      lock.lock();
    }
    if (next_out_ >= batches_per_epoch()) return nullptr;
    const Index task = next_out_;
    Slot& slot = slots_[static_cast<std::size_t>(task) % slots_.size()];
    if (threads_.empty()) {
      slot.task = task;
      slot.state = Slot::Filling;
      lock.unlock();
      const bool ok = fill(slot, task);
      lock.lock();
      slot.state = ok ? Slot::Ready : Slot::Failed;
    } else {
      batch_ready_.wait(lock, [&] { return slot.task == task && (slot.state == Slot::Ready || slot.state == Slot::Failed); });
    }
    ++next_out_;
    holding_ = true;
    if (slot.state == Slot::Failed) {
      std::exception_ptr error = slot.error;
      slot.error = nullptr;
      std::rethrow_exception(error);
    }
    return &slot.batch;
  }

 private:
  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    work_ready_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  struct Slot {
    enum State { Empty, Filling, Ready, Failed } state = Empty;
    Index task = -1;
    Batch batch;
    Image image;  // scratch for the picture being transformed
    std::exception_ptr error;
  };

  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      work_ready_.wait(lock, [&] {
        return stop_ || (next_task_ < end_task_ && next_task_ < released_ + static_cast<Index>(slots_.size()));
      });
      if (stop_) return;
      const Index task = next_task_++;
      Slot& slot = slots_[static_cast<std::size_t>(task) % slots_.size()];
      slot.task = task;
      slot.state = Slot::Filling;
      ++in_flight_;
      lock.unlock();
      const bool ok = fill(slot, task);
      lock.lock();
      slot.state = ok ? Slot::Ready : Slot::Failed;
      --in_flight_;
      batch_ready_.notify_all();
      idle_.notify_all();
    }
  }

  // Rearranges the shuffled order into runs of per_class() pictures of one class, in shuffled run order.
  void group_by_class(Rng& rng) {
    const std::size_t classes = data_.class_names().size();
    std::vector<std::vector<Index>> by_class(classes);
    for (Index i : order_) {
      const int label = data_.label(i);
      if (label < 0 || static_cast<std::size_t>(label) >= classes) {
        throw DataError(detail::concat("DataLoader (per_class): example ", i, " has label ", label,
                                       ", outside the dataset's ", classes, " classes"));
      }
      by_class[static_cast<std::size_t>(label)].push_back(i);
    }
    std::vector<std::pair<std::size_t, std::size_t>> runs;  // (class, first picture of the run)
    const auto k = static_cast<std::size_t>(options_.per_class());
    for (std::size_t c = 0; c < by_class.size(); ++c) {
      for (std::size_t first = 0; first < by_class[c].size(); first += k) runs.emplace_back(c, first);
    }
    rng.shuffle(runs.begin(), runs.end());
    order_.clear();
    for (const auto& [c, first] : runs) {
      const auto end = std::min(by_class[c].size(), first + k);
      order_.insert(order_.end(), by_class[c].begin() + static_cast<std::ptrdiff_t>(first),
                    by_class[c].begin() + static_cast<std::ptrdiff_t>(end));
    }
  }

  // Builds batch `task` of the current epoch into `slot` (no lock held; only this
  // thread touches the slot's buffers). On failure the error is kept in the slot.
  bool fill(Slot& slot, Index task) {
    try {
      const Index global_begin = task * options_.batch_size();
      const Index global_count = std::min(options_.batch_size(), data_.size() - global_begin);
      const Index offset = global_count * shard_rank_ / shard_count_;
      const Index begin = global_begin + offset;
      const Index count = global_count * (shard_rank_ + 1) / shard_count_ - offset;
      Batch& batch = slot.batch;
      batch.offset = offset;
      batch.global_count = global_count;
      batch.labels.resize(static_cast<std::size_t>(count));
      batch.indices.resize(static_cast<std::size_t>(count));
      Shape first;
      for (Index k = 0; k < count; ++k) {
        const Index position = begin + k;
        const Index index = load_or_skip(position, slot.image);
        const Shape shape{count, slot.image.channels, slot.image.height, slot.image.width};
        if (k == 0) {
          first = shape;
          resize(batch.images, shape);
        } else if (shape != first) {
          throw DataError(detail::concat("DataLoader: example ", index, " is ", slot.image.shape_str(),
                                         " after the transforms but the batch's first is ", first.c, "x", first.h,
                                         "x", first.w, "; add a Resize or crop so every picture has one size"));
        }
        std::copy(slot.image.pixels.begin(), slot.image.pixels.end(), batch.images.data() + k * first.per_sample());
        batch.labels[static_cast<std::size_t>(k)] = data_.label(index);
        batch.indices[static_cast<std::size_t>(k)] = index;
      }
      return true;
    } catch (...) {
      slot.error = std::current_exception();
      return false;
    }
  }

  // Loads the example at `position` of the epoch's order into `image`, transformed, and returns its
  // index; with skip_unreadable, one that cannot be read or that a transform refuses (a picture too
  // thin to resize, say) is counted and the following positions are tried in turn, each transformed
  // with the position's own random numbers.
  Index load_or_skip(Index position, Image& image) {
    const Index n = data_.size();
    const Index attempts = options_.skip_unreadable() ? std::min(n, detail::kMaxUnreadableInARow) : 1;
    auto load_and_transform = [&](Index index, Image& out) {
      data_.load(index, out);
      Rng rng(detail::mix64(detail::mix64(options_.seed() + detail::kGolden * (epoch_ + 1)) ^
                            detail::mix64(static_cast<std::uint64_t>(position))));
      pipeline_.apply_to(out, rng, ExampleDraw{options_.seed(), epoch_, index});
    };
    return detail::load_first_readable_with(
        load_and_transform, image, attempts,
        [&](Index step) { return order_[static_cast<std::size_t>((position + step) % n)]; },
        [&](const DataError& e) {
          if (skipped_.fetch_add(1) == 0) {
            std::lock_guard<std::mutex> lock(skip_mutex_);
            first_skip_reason_ = e.what();
          }
        });
  }

  const Dataset& data_;
  Pipeline pipeline_;
  LoaderOptions options_;
  std::vector<Slot> slots_;
  std::vector<std::thread> threads_;
  std::vector<Index> order_;
  std::uint64_t epoch_ = 0;
  int shard_rank_ = 0, shard_count_ = 1;

  std::mutex mutex_;
  std::condition_variable work_ready_, batch_ready_, idle_;
  bool stop_ = false, started_ = false, holding_ = false;
  Index next_task_ = 0, end_task_ = 0, released_ = 0, next_out_ = 0, in_flight_ = 0;
  std::atomic<Index> skipped_{0};
  mutable std::mutex skip_mutex_;
  std::string first_skip_reason_;
};

/// A batch's pictures as T: the loader's own float tensor, or `converted` (double gradient checks
/// and tests train in double). The one place a batch changes type: the training step, evaluation
/// and embeddings all take their input through it.
template <class T>
const Tensor<T>& batch_images(const Batch& batch, Tensor<T>& converted) {
  if constexpr (std::is_same<T, float>::value) {
    return batch.images;
  } else {
    converted = batch.images.template cast<T>();
    return converted;
  }
}

}  // namespace convnet
