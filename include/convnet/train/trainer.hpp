// Trainer: the training loop every program shares. It fits a Sequential with an
// Objective (a single loss is a one-term one), an optimizer and an optional schedule over a training
// DataLoader, validates after each epoch, keeps last.ckpt and best.ckpt, resumes
// mid-epoch bit for bit, and stops cleanly when asked.
//
//   Trainer<float> trainer(net, objective, sgd, &schedule,
//                          TrainerOptions().epochs(16).checkpoint_dir("runs/a"));
//   ProgressPrinter progress(std::cout, std::cerr);     // train/callbacks.hpp
//   trainer.add_callback(progress);
//   if (resuming) trainer.load(Checkpoint::load("runs/a/last.ckpt"));
//   FitResult r = trainer.fit(train_loader, &val_loader);
//
// What a program shows or writes about the run - progress, metrics.csv,
// curves.png - is a TrainerCallback (train/run.hpp; train/callbacks.hpp has the usual ones);
// a callback's on_checkpoint adds the program's own entries (configuration,
// data statistics, class names) to every checkpoint the trainer writes.
//
// Checkpoints (Trainer::save / Trainer::load, the one pair) hold save_training_state() plus:
//   trainer/position  u64s  {epoch, batch}: the next batch to train (0-based)
//   trainer/partial   f64s  {loss sum, correct, count, seconds} of the epoch so far
//   trainer/history/<field>  f64s  a value per finished epoch for each EpochRecord field
//                     (train/history.hpp; older checkpoints' positional trainer/history loads too)
//   with average_weights(decay): the WeightAverage (optim/weight_average.hpp,
//   average/...) and trainer/average_history (validation loss and accuracy of
//   the averaged weights, per epoch). The averaged weights are validated beside
//   the training ones after every epoch; best_average.ckpt holds them (as its
//   parameters, for a Classifier) from the epoch where they validated best.
//   with lookahead(options): the slow weights (lookahead/...), which the network
//   takes at each averaging and after each epoch's last step.
// Best and early-stopping state are derived from the history, so they cannot
// disagree with it. The data order needs no entry: the loader draws it from
// (seed, epoch), so the position alone resumes it.
//
// Stop requests: request_stop() only sets an atomic flag (safe from a signal
// handler; the library installs none). The trainer finishes the batch under
// way, writes last.ckpt at the position after it and returns StopRequested.
// A non-finite loss throws NonFiniteLossError from the step (train/step.hpp);
// the last checkpoint on disk is the one before it.
//
// Data-parallel training: trainer.distribute(group) (a ProcessGroup; under
// mpirun, distributed/mpi.hpp's Communicator) makes every process train the
// same model on its slice of each batch. fit() first checks that every process
// has the same set-up (network, optimizer, data, position, build: a hash
// compared across them) and copies rank 0's parameters, optimizer state and
// random streams to the others; every batch is split between the processes
// (DataLoader::set_shard: the slices together are the batch one process would
// train); gradients are summed in buckets while backward runs
// (GradientReducer); every process then takes the same step. Losses, counts,
// validation figures and stop requests are summed over the processes, so every
// process holds the same run; only rank 0 writes checkpoints. A checkpoint
// written by N processes resumes on any number. BatchNorm's running statistics
// (buffers) follow each process's slice and are averaged over the processes at
// the end of every epoch. Callbacks run on every
// process: a program adds its printing and writing ones on rank 0 only.
// In training, a last batch smaller than the number of processes (twice that
// with BatchNorm, whose batch statistics need two examples) is left out.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <type_traits>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../checkpoint/state.hpp"
#include "../data/loader.hpp"
#include "../errors.hpp"
#include "../inference/embedding_classifier.hpp"
#include "../losses/loss.hpp"
#include "../losses/objective.hpp"
#include "../metrics.hpp"
#include "../models/sequential.hpp"
#include "../optim/optimizer.hpp"
#include "../optim/schedules.hpp"
#include "../optim/weight_average.hpp"
#include "../version.hpp"
#include "data_parallel.hpp"
#include "history.hpp"
#include "output_folder.hpp"
#include "run.hpp"
#include "step.hpp"
#include "training_state.hpp"

namespace convnet {

template <class T>
class Trainer {
 public:
  Trainer(Sequential<T>& net, Objective<T>& objective, Optimizer<T>& optimizer, LrSchedule* schedule = nullptr,
          TrainerOptions options = TrainerOptions())
      : Trainer(net, &objective, nullptr, optimizer, schedule, std::move(options)) {}
  /// A single loss: trained as the one-term Objective(loss) (the loss must outlive the trainer).
  Trainer(Sequential<T>& net, Loss<T>& loss, Optimizer<T>& optimizer, LrSchedule* schedule = nullptr,
          TrainerOptions options = TrainerOptions())
      : Trainer(net, nullptr, &loss, optimizer, schedule, std::move(options)) {}

  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Adds a callback (not owned: it must outlive fit()).
  Trainer& add_callback(TrainerCallback& callback) {
    callbacks_.push_back(&callback);
    return *this;
  }

  /// Trains data-parallel over `group` (not owned: it must outlive fit()); see
  /// the header comment. Gradients are summed in buckets of `bucket_bytes`.
  Trainer& distribute(ProcessGroup& group, Index bucket_bytes = GradientReducer<T>::kDefaultBucketBytes) {
    parallel_ = std::make_unique<DataParallel<T>>(group, net_, bucket_bytes);
    return *this;
  }
  /// The process that writes checkpoints: rank 0 of the group, or the only one.
  bool is_root() const { return parallel_ == nullptr || parallel_->rank() == 0; }
  const GradientReducer<T>* reducer() const { return parallel_ ? &parallel_->reducer() : nullptr; }

  /// The run in a checkpoint (what last.ckpt holds): its own entries under `prefix` (position,
  /// partial epoch, history by field) beside its network's, optimizer's, schedule's and weight
  /// average's, each under its own (the one save/load pair, checkpoint/state.hpp).
  void save(Checkpoint& c, const std::string& prefix = "trainer/") const { save_run(c, prefix, partial_.seconds); }

  /// Continues the run a checkpoint holds: network, optimizer, schedule, weight average, position,
  /// partial epoch and history. Everything is checked before anything changes.
  void load(const Checkpoint& c, const std::string& prefix = "trainer/") {
    const std::string where = c.source();
    if (!c.contains(prefix + "position") || !c.contains(prefix + "partial")) {
      throw CheckpointError(where + ": holds no trainer state (" + prefix + "position, " + prefix + "partial)");
    }
    const auto position = c.u64s(prefix + "position");
    const auto partial = c.f64s(prefix + "partial");
    if (position.size() != 2 || partial.size() != 4) {
      throw CheckpointError(where + ": trainer/position needs 2 values and trainer/partial 4");
    }
    if (position[0] > static_cast<std::uint64_t>(options_.epochs()) || position[1] > (std::uint64_t{1} << 40)) {
      throw CheckpointError(detail::concat(where, ": trainer/position (", position[0], ", ", position[1],
                                           ") is outside this run of ", options_.epochs(), " epochs"));
    }
    for (std::size_t i : {1, 2}) detail::stored_count(partial[i], where, "trainer/partial (correct, count)");
    for (std::size_t i : {0, 3}) {
      if (!(partial[i] >= 0 && std::isfinite(partial[i]))) {
        throw CheckpointError(where + ": trainer/partial (loss sum, seconds) must be finite and >= 0");
      }
    }
    std::vector<EpochRecord> history = read_history(c, prefix + "history");
    std::vector<AverageRecord> average_history;
    if (average_) {
      if (!c.contains("average/updates")) {
        throw CheckpointError(where + ": holds no weight average (the run was started without average_weights)");
      }
      average_history = read_average_history(c, prefix + "average_history");
      if (average_history.size() > history.size()) throw CheckpointError(where + ": trainer/average_history is malformed");
    }
    const auto best_file = stored_best_file(c, prefix, history.size());
    load_all(c, parts());  // all or nothing
    best_file_ = best_file;
    position_ = {static_cast<long>(position[0]), static_cast<Index>(position[1])};
    partial_ = {partial[0], partial[1], partial[2], partial[3]};
    history_ = std::move(history);
    average_history_ = std::move(average_history);
  }

  /// The best.ckpt a checkpoint says goes with it (trainer/best: the epochs done when it was written
  /// and its checksum), or nothing (no epoch yet, or a checkpoint of convnet 0.2 or older).
  static std::optional<std::pair<std::uint64_t, std::uint64_t>> stored_best_file(const Checkpoint& c,
                                                                                const std::string& prefix,
                                                                                std::size_t epochs_done) {
    const std::string key = prefix + "best";
    if (!c.contains(key)) return std::nullopt;
    const auto& v = c.u64s(key);
    if (v.size() != 2 || v[0] < 1 || v[0] > epochs_done) {
      throw CheckpointError(detail::concat(c.source(), ": ", key, " must be (epoch, checksum) with the epoch in [1, ",
                                           epochs_done, "]"));
    }
    return std::make_pair(v[0], v[1]);
  }

  /// Trains from the current position to the last epoch (or an early stop, or a stop request).
  FitResult fit(DataLoader& train, DataLoader* validation = nullptr) {
    stop_requested_.store(false);
    has_validation_ = validation != nullptr;
    if (options_.checkpoint_dir() && is_root()) prepare_output_folder(*options_.checkpoint_dir());
    if (parallel_) parallel_->start(net_, optimizer_, train, validation, setup_hash(train, validation));
    const typename DataParallel<T>::Scope scope(parallel_.get(), net_);
    const Index batches = batches_per_epoch(train);
    if (position_.batch > batches) {
      throw ArgumentError(detail::concat("Trainer::fit: the run stands at batch ", position_.batch,
                                                 " of epoch ", position_.epoch + 1, " but an epoch of this loader has ",
                                                 batches, " batches (a checkpoint of another dataset or batch size?)"));
    }
    for (auto* cb : callbacks_) cb->on_fit_begin(position_, options_.epochs());
    FitResult result;
    while (position_.epoch < options_.epochs()) {
      if (stop_agreed()) {  // between epochs: last.ckpt is already this position
        result.outcome = FitOutcome::StopRequested;
        break;
      }
      const std::optional<double> train_seconds = train_epoch(train, batches);
      if (!train_seconds) {
        result.outcome = FitOutcome::StopRequested;
        break;
      }
      if (!end_epoch(validation, *train_seconds)) {
        result.outcome = FitOutcome::StopRequested;
        break;
      }
      if (options_.patience() && epochs_without_improvement() >= *options_.patience()) {
        result.outcome = FitOutcome::EarlyStopped;
        break;
      }
    }
    result.position = position_;
    result.epochs_without_improvement = epochs_without_improvement();
    result.last_checkpoint = last_path();
    for (auto* cb : callbacks_) cb->on_fit_end(result);
    return result;
  }

  /// Asks fit() to stop after the batch under way, training or validating: it saves last.ckpt
  /// (a validation cut short is run again on resume) and returns StopRequested. Thread-safe and
  /// async-signal-safe.
  void request_stop() noexcept { stop_requested_.store(true); }
  /// Also stops when `flag` becomes true (StopSignals::flag(): SIGINT and SIGTERM); it must outlive fit().
  Trainer& stop_on(const std::atomic<bool>& flag) {
    external_stop_ = &flag;
    return *this;
  }
  bool stop_requested() const noexcept {
    return stop_requested_.load() || (external_stop_ && external_stop_->load());
  }

  const std::vector<EpochRecord>& history() const { return history_; }
  const TrainPosition& position() const { return position_; }
  const TrainerOptions& options() const { return options_; }
  Sequential<T>& network() { return net_; }
  /// last.ckpt and best.ckpt in the checkpoint folder ("" without one).
  std::string last_path() const { return checkpoint_path("last.ckpt"); }
  std::string best_path() const { return checkpoint_path("best.ckpt"); }
  /// The averaged weights from their best validated epoch (with average_weights; "" without a folder).
  std::string best_average_path() const { return average_ ? checkpoint_path("best_average.ckpt") : std::string(); }
  /// The weight average (null without average_weights) and its validation figures per epoch.
  const WeightAverage<T>* average() const { return average_.get(); }
  const std::vector<AverageRecord>& average_history() const { return average_history_; }

  /// Epochs since the validation loss (training loss without validation) last improved.
  long epochs_without_improvement() const {
    if (history_.empty()) return 0;
    std::size_t best = 0;
    for (std::size_t i = 1; i < history_.size(); ++i) {
      if (watched_loss(history_[i]) < watched_loss(history_[best])) best = i;
    }
    return static_cast<long>(history_.size() - 1 - best);
  }

  /// Writes a checkpoint of the run as it stands (what last.ckpt holds) to `path`
  /// (on rank 0 only in data-parallel training).
  void save(const std::string& path) const { save_at(path, partial_.seconds); }

 private:
  struct Partial {
    double loss = 0, correct = 0, count = 0, seconds = 0;
  };

  Trainer(Sequential<T>& net, Objective<T>* objective, Loss<T>* loss, Optimizer<T>& optimizer,
          LrSchedule* schedule, TrainerOptions options)
      : net_(net),
        own_objective_(loss ? std::make_unique<Objective<T>>(*loss) : nullptr),
        objective_(loss ? own_objective_.get() : objective),
        optimizer_(optimizer), schedule_(schedule),
        options_(std::move(options)), batch_statistics_(!net.buffers().empty()) {
    detail::require_option(options_.epochs() >= 1, "Trainer", "epochs", ">= 1", options_.epochs());
    if (options_.save_every()) detail::require_option(*options_.save_every() >= 1, "Trainer", "save_every", ">= 1", *options_.save_every());
    if (options_.patience()) detail::require_option(*options_.patience() >= 1, "Trainer", "patience", ">= 1", *options_.patience());
    if (options_.max_batches()) {
      detail::require_option(*options_.max_batches() >= 1, "Trainer", "max_batches", ">= 1", *options_.max_batches());
    }
    if (loss && loss->input() != LossInput::Logits) {
      throw ArgumentError("Trainer: " + loss->type_name() + " reads an embedding, not the logits; use an Objective");
    }
    if (options_.average_weights()) {
      average_ = std::make_unique<WeightAverage<T>>(net_, WeightAverageOptions().decay(*options_.average_weights()));
    }
    if (options_.lookahead()) lookahead_ = std::make_unique<WeightAverage<T>>(net_, *options_.lookahead());
    if (options_.precision()) net_.set_precision(*options_.precision());
  }

  /// Every process needs an example of the last batch, and BatchNorm (a network with buffers) two each:
  /// BatchNorm1d refuses a batch of one (its variance is 0), and BatchNorm2d would normalise by one
  /// picture's statistics. A last batch short of that is left out of training.
  Index batches_per_epoch(const DataLoader& train) const {
    Index all = train.batches_per_epoch();
    const Index processes = parallel_ ? parallel_->size() : 1, needed = processes * (batch_statistics_ ? 2 : 1);
    if (all > 0 && train.dataset().size() - (all - 1) * train.options().batch_size() < needed) {
      if (--all == 0) {
        throw ArgumentError(detail::concat("Trainer: ", train.dataset().size(), " training examples make no batch of ",
                                                   needed, " (", processes, " process(es)",
                                                   batch_statistics_ ? ", two examples each for BatchNorm)" : ")"));
      }
    }
    return options_.max_batches() ? std::min(*options_.max_batches(), all) : all;
  }

  /// What every process must agree on before training together (FNV-1a).
  std::uint64_t setup_hash(const DataLoader& train, const DataLoader* validation) {
    std::uint64_t h = 14695981039346656037ull;
    const auto mix = [&h](const std::string& text) {
      for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ull;
      h = (h ^ 0xFF) * 1099511628211ull;  // a separator, so ("ab", "c") differs from ("a", "bc")
    };
    mix(detail::concat("convnet ", CONVNET_VERSION_MAJOR, ".", CONVNET_VERSION_MINOR, ".", CONVNET_VERSION_PATCH,
                       " ", __VERSION__, " scalar ", sizeof(T), " ", Eigen::SimdInstructionSetsInUse()));
    for (const auto& line : net_.architecture()) mix(line);
    mix(detail::concat(optimizer_.describe(), " ", optimizer_.learning_rate(), " ", optimizer_.steps(), " ",
                       schedule_ ? "schedule" : "no schedule"));
    const auto loader = [&](const DataLoader& l) {
      mix(detail::concat(l.dataset().size(), " ", l.options().batch_size(), " ", l.options().seed(), " ",
                         l.options().shuffle(), " ", l.options().drop_last()));
    };
    loader(train);
    if (validation) loader(*validation);
    mix(detail::concat(options_.epochs(), " ", options_.max_batches().value_or(0), " ", position_.epoch, " ",
                       position_.batch, " ", history_.size()));
    return h;
  }

  /// Whether a stop was requested on any process: they stop together, at the same batch.
  bool stop_agreed() {
    double stop = stop_requested() ? 1.0 : 0.0;
    sum_over_processes(&stop, 1);
    return stop > 0;
  }

  /// Sums `values` over the processes (the identity without a group).
  void sum_over_processes(double* values, Index count) {
    if (parallel_) parallel_->sum(values, count);
  }
  void average_buffers() {
    if (parallel_) parallel_->average_buffers(net_);
  }

  std::string checkpoint_path(const char* name) const {
    return options_.checkpoint_dir() ? (std::filesystem::path(*options_.checkpoint_dir()) / name).string() : std::string();
  }

  double watched_loss(const EpochRecord& r) const { return has_validation_ ? r.val_loss : r.train_loss; }
  double watched_accuracy(const EpochRecord& r) const { return has_validation_ ? r.val_accuracy : r.train_accuracy; }

  StepResult step(const Batch& batch) {
    const Tensor<T>& images = batch_images(batch, converted_);
    GradientReducer<T>* reducer = nullptr;
    if (parallel_) reducer = &parallel_->begin_batch(net_, batch);
    return train_step(net_, *objective_, optimizer_, images, batch.labels, schedule_, reducer);
  }

  /// Trains the rest of the current epoch; its training seconds, or nothing when a stop was requested.
  std::optional<double> train_epoch(DataLoader& train, Index batches) {
    for (auto* cb : callbacks_) cb->on_epoch_begin(position_.epoch, options_.epochs(), batches);
    train.start_epoch(static_cast<std::uint64_t>(position_.epoch), position_.batch);
    const auto start = std::chrono::steady_clock::now();
    BatchReport report{position_.epoch, options_.epochs(), position_.batch, batches, position_.batch, 0, 0, 0, 0};
    while (position_.batch < batches) {
      const Batch* batch = train.next();
      const StepResult result = step(*batch);
      if (lookahead_) {
        lookahead_->update();
        // An epoch's last step: the network takes the slow weights, so that validation, best.ckpt and
        // the run's end see them (the speed records' copy-back after each epoch).
        if (position_.batch + 1 == batches) lookahead_->copy_to_network();
      }
      if (average_) average_->update();
      double figures[3] = {result.loss * static_cast<double>(batch->count()), static_cast<double>(result.correct),
                           static_cast<double>(batch->count())};
      sum_over_processes(figures, 3);  // the whole batch's, on every process
      partial_.loss += figures[0];
      partial_.correct += figures[1];
      partial_.count += figures[2];
      report.batch = ++position_.batch;
      report.images += static_cast<Index>(figures[2]);
      report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      report.loss = partial_.loss / partial_.count;
      report.accuracy = partial_.correct / partial_.count;
      for (auto* cb : callbacks_) cb->on_batch_end(report);
      const bool stop = stop_agreed();
      const bool scheduled = options_.save_every() && position_.batch % *options_.save_every() == 0 && position_.batch < batches;
      if ((stop || scheduled) && options_.checkpoint_dir()) save_at(last_path(), partial_.seconds + report.seconds);
      if (stop) {
        partial_.seconds += report.seconds;
        return std::nullopt;
      }
    }
    return partial_.seconds + report.seconds;
  }

  /// Validation, the epoch's record, the schedule's epoch step, checkpoints and callbacks; false
  /// when a stop request cut the validation short (the epoch stays open, trained but not validated,
  /// and last.ckpt says so: a resumed run validates it).
  bool end_epoch(DataLoader* validation, double train_seconds) {
    const auto start = std::chrono::steady_clock::now();
    average_buffers();
    ClassificationMetrics val;
    if (validation) {
      validation->start_epoch(0);
      val = detail::evaluate_with(net_, *validation, nullptr, options_.max_batches(), objective_,
                                  [this] { return stop_requested(); });
      double figures[4] = {val.loss_sum, static_cast<double>(val.top1), static_cast<double>(val.top5),
                           static_cast<double>(val.count)};
      sum_over_processes(figures, 4);
      val.loss_sum = figures[0];
      val.top1 = static_cast<Index>(figures[1]);
      val.top5 = static_cast<Index>(figures[2]);
      val.count = static_cast<Index>(figures[3]);
      // Every process, stop requested or not: embedding_correct sums over them.
      if (options_.embedding_validation()) val.top1 = embedding_correct(*validation);
      if (stop_agreed()) {
        partial_.seconds = train_seconds;
        if (options_.checkpoint_dir()) save_at(last_path(), partial_.seconds);
        return false;
      }
    }
    std::optional<AverageRecord> averaged;
    if (validation && average_) {
      averaged = validate_average(*validation);
      if (!averaged) {
        partial_.seconds = train_seconds;
        if (options_.checkpoint_dir()) save_at(last_path(), partial_.seconds);
        return false;
      }
    }
    EpochRecord record{static_cast<int>(position_.epoch + 1), partial_.loss / partial_.count,
                       partial_.correct / partial_.count, val.loss(), val.top1_accuracy(),
                       optimizer_.learning_rate(), 0};
    record.seconds = train_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool best = std::all_of(history_.begin(), history_.end(), [&](const EpochRecord& r) {
      return options_.best_by() == BestBy::Accuracy ? watched_accuracy(record) > watched_accuracy(r)
                                                : watched_loss(record) < watched_loss(r);
    });
    const bool best_average = averaged && std::all_of(average_history_.begin(), average_history_.end(),
                                                      [&](const AverageRecord& r) {
                                                        return averaged->val_accuracy > r.val_accuracy;
                                                      });
    history_.push_back(record);
    if (averaged) average_history_.push_back(*averaged);
    if (schedule_) schedule_->epoch_end(watched_loss(record));
    position_ = {position_.epoch + 1, 0};
    partial_ = Partial();
    if (options_.checkpoint_dir()) {
      // best.ckpt before last.ckpt, and last.ckpt records which best.ckpt goes with it: a run killed
      // between the two resumes from the previous last.ckpt and writes this epoch again.
      if (best) {
        const std::uint64_t checksum = save_at(best_path(), 0);
        if (is_root()) best_file_ = std::make_pair(static_cast<std::uint64_t>(position_.epoch), checksum);
      }
      if (best_average) save_at(best_average_path(), 0, true);
      save_at(last_path(), 0);
    }
    const EpochReport report{history_.back(), history_, options_.epochs(), best, train_seconds,
                             averaged ? &average_history_.back() : nullptr};
    for (auto* cb : callbacks_) cb->on_epoch_end(report);
    return true;
  }

  /// Validation pictures the embedding classifies right (validate_embedding), over every process; the
  /// same batches as the loss's validation, so that the count is the same.
  Index embedding_correct(DataLoader& validation) {
    const auto& e = *options_.embedding_validation();
    validation.start_epoch(0);
    const EmbeddingSet set = embed(net_, validation, e.layer, options_.max_batches().value_or(Index{1} << 40));
    double correct = static_cast<double>(split_half_centroid_correct(set, e.metric));
    sum_over_processes(&correct, 1);
    return static_cast<Index>(correct);
  }

  /// The averaged weights' validation; nothing when a stop request cut it short.
  std::optional<AverageRecord> validate_average(DataLoader& validation) {
    ClassificationMetrics val;
    {
      typename WeightAverage<T>::Swapped in(*average_);
      validation.start_epoch(0);
      val = detail::evaluate_with(net_, validation, nullptr, options_.max_batches(), objective_,
                                  [this] { return stop_requested(); });
    }
    double figures[3] = {val.loss_sum, static_cast<double>(val.top1), static_cast<double>(val.count)};
    sum_over_processes(figures, 3);
    if (stop_agreed()) return std::nullopt;
    return AverageRecord{figures[0] / std::max(figures[2], 1.0), figures[1] / std::max(figures[2], 1.0)};
  }

  /// A checkpoint of the run as it stands; `averaged`: with the weight average as the network's
  /// parameters (best_average.ckpt, for a Classifier; the training weights are not in it).
  // What the trainer saves and loads through the one pair: the network, optimizer, schedule and
  // weight average, each under its own prefix.
  std::vector<StatePart> parts() const {
    auto& self = const_cast<Trainer&>(*this);  // save() only reads; load() is non-const
    std::vector<StatePart> p = detail::training_parts(self.net_, &self.optimizer_, self.schedule_);
    if (average_) p.push_back(state_part(*self.average_, "average/"));
    if (lookahead_) p.push_back(state_part(*self.lookahead_, "lookahead/"));
    return p;
  }

  // The run's own entries: where it stands and what it has done.
  void save_position(Checkpoint& c, const std::string& prefix, double partial_seconds) const {
    c.set_u64s(prefix + "position", {static_cast<std::uint64_t>(position_.epoch), static_cast<std::uint64_t>(position_.batch)});
    c.set_f64s(prefix + "partial", {partial_.loss, partial_.correct, partial_.count, partial_seconds});
    save_history(c, prefix + "history", history_);
    if (best_file_) c.set_u64s(prefix + "best", {best_file_->first, best_file_->second});
  }

  void save_run(Checkpoint& c, const std::string& prefix, double partial_seconds) const {
    save_all(c, parts());
    save_position(c, prefix, partial_seconds);
    if (average_) save_average_history(c, prefix + "average_history", average_history_);
  }

  /// Returns the checksum of the file written (0 on the processes that do not write).
  std::uint64_t save_at(const std::string& path, double partial_seconds, bool averaged = false) const {
    if (!is_root()) return 0;  // every process holds the same run; one writes it
    Checkpoint c;
    if (averaged) {
      // The averaged weights as the network's parameters (for a Classifier), the training weights
      // back before returning; no average of the average.
      typename WeightAverage<T>::Swapped in(*average_);
      save_training_state(c, net_, &optimizer_, schedule_);
      c.set_text("trainer/weights", "exponential moving average of the weights");
      save_position(c, "trainer/", partial_seconds);
    } else {
      save_run(c, "trainer/", partial_seconds);
    }
    for (auto* cb : callbacks_) cb->on_checkpoint(c);
    return c.save(path);
  }

  Sequential<T>& net_;
  std::unique_ptr<Objective<T>> own_objective_;  // a single loss's one-term objective
  Objective<T>* objective_;
  Optimizer<T>& optimizer_;
  LrSchedule* schedule_;
  TrainerOptions options_;
  std::vector<TrainerCallback*> callbacks_;
  TrainPosition position_;
  Partial partial_;
  std::vector<EpochRecord> history_;
  // The best.ckpt that goes with this run: the epochs done when it was written, and its checksum
  // (recorded in last.ckpt, checked on resume: a missing or foreign best.ckpt is caught).
  std::optional<std::pair<std::uint64_t, std::uint64_t>> best_file_;
  bool has_validation_ = false;
  const bool batch_statistics_;  // the network normalises by batch statistics (BatchNorm's running buffers)
  std::atomic<bool> stop_requested_{false};
  const std::atomic<bool>* external_stop_ = nullptr;
  Tensor<T> converted_;
  std::unique_ptr<DataParallel<T>> parallel_;
  std::unique_ptr<WeightAverage<T>> average_;
  std::unique_ptr<WeightAverage<T>> lookahead_;  // the slow weights (TrainerOptions::lookahead)
  std::vector<AverageRecord> average_history_;
};

}  // namespace convnet
