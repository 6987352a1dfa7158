// What a training run is told (TrainerOptions) and what it tells (the records and reports its
// callbacks receive, FitResult), and the TrainerCallback interface: the vocabulary Trainer
// (train/trainer.hpp) and its callbacks (train/callbacks.hpp) share.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../inference/embedding_classifier.hpp"
#include "../metrics.hpp"
#include "../tensor.hpp"
#include "../optim/weight_average.hpp"
#include "../precision.hpp"
#include "history.hpp"

namespace convnet {

/// Which figure picks best.ckpt: validation's when there is a validation loader, else training's.
enum class BestBy { Accuracy, Loss };

struct TrainerOptions {
  TrainerOptions& epochs(long v) { epochs_ = v; return *this; }
  /// Folder for last.ckpt and best.ckpt; unset: no checkpoints are written.
  TrainerOptions& checkpoint_dir(std::string v) { checkpoint_dir_ = std::move(v); return *this; }
  /// Also write last.ckpt every `v` batches inside an epoch (long epochs).
  TrainerOptions& save_every(long v) { save_every_ = v; return *this; }
  /// Stop when the validation loss has not improved for `v` epochs.
  TrainerOptions& patience(long v) { patience_ = v; return *this; }
  TrainerOptions& best_by(BestBy v) { best_by_ = v; return *this; }
  /// Train at most `v` batches an epoch and evaluate at most `v` batches (smoke tests, timing).
  TrainerOptions& max_batches(Index v) { max_batches_ = v; return *this; }
  /// Keep an exponential moving average of the weights with this decay (WeightAverage), validated
  /// beside them and written to best_average.ckpt.
  TrainerOptions& average_weights(double decay) { average_decay_ = decay; return *this; }
  /// Lookahead: a WeightAverage with lookahead(true) updated after every step (its every() and
  /// ramp() say when and how hard), whose values the network also takes after each epoch's last step.
  TrainerOptions& lookahead(const WeightAverageOptions& v) {
    lookahead_ = v;
    lookahead_->lookahead(true);
    return *this;
  }
  /// Validation accuracy from the output of `layer` instead of the softmax: split-half nearest
  /// centroid over the validation pictures (split_half_centroid_correct). For a loss on an
  /// embedding alone, which leaves the head untrained; best.ckpt and a learning-rate sweep then
  /// follow what the embedding classifies, not a loss measured with dropout on in training and
  /// off in validation. Under data parallelism each process splits its own slice.
  TrainerOptions& validate_embedding(std::string layer, EmbeddingMetric metric) {
    embedding_validation_ = EmbeddingValidation{std::move(layer), metric};
    return *this;
  }
  /// The arithmetic of the network's products for this run (precision.hpp): Auto is bf16 where the
  /// host has AMX. Unset: the network's own. The weights, gradients and optimizer state stay fp32.
  TrainerOptions& precision(Precision v) { precision_ = v; return *this; }
  struct EmbeddingValidation {
    std::string layer;
    EmbeddingMetric metric;
  };

  long epochs() const { return epochs_; }
  const std::optional<std::string>& checkpoint_dir() const { return checkpoint_dir_; }
  std::optional<long> save_every() const { return save_every_; }
  std::optional<long> patience() const { return patience_; }
  BestBy best_by() const { return best_by_; }
  std::optional<Index> max_batches() const { return max_batches_; }
  std::optional<double> average_weights() const { return average_decay_; }
  const std::optional<WeightAverageOptions>& lookahead() const { return lookahead_; }
  const std::optional<EmbeddingValidation>& embedding_validation() const { return embedding_validation_; }
  std::optional<Precision> precision() const { return precision_; }

 private:
  long epochs_ = 1;
  std::optional<std::string> checkpoint_dir_;
  std::optional<long> save_every_, patience_;
  BestBy best_by_ = BestBy::Accuracy;
  std::optional<Index> max_batches_;
  std::optional<double> average_decay_;
  std::optional<WeightAverageOptions> lookahead_;
  std::optional<EmbeddingValidation> embedding_validation_;
  std::optional<Precision> precision_;
};

/// The averaged weights' validation figures of an epoch.
/// Where a run stands: the next batch to train, both 0-based.
struct TrainPosition {
  long epoch = 0;
  Index batch = 0;
};

/// What a callback hears after each batch.
struct BatchReport {
  long epoch = 0, epochs = 0;   ///< the epoch (0-based) and how many there are
  Index batch = 0, batches = 0;  ///< batches done in this epoch, and batches per epoch
  Index first_batch = 0;         ///< where this process started the epoch (after a resume, > 0)
  double seconds = 0;            ///< since this process started the epoch
  Index images = 0;              ///< images this process trained in the epoch
  double loss = 0, accuracy = 0;  ///< running means over the epoch so far
};

/// What a callback hears after each epoch.
struct EpochReport {
  const EpochRecord& record;
  const std::vector<EpochRecord>& history;  ///< every epoch so far, this one last
  long epochs;
  bool best;             ///< this epoch wrote best.ckpt (or would have, without a checkpoint folder)
  double train_seconds;  ///< of record.seconds, the part spent training (the rest: validation)
  const AverageRecord* average = nullptr;  ///< the weight average's figures, with average_weights and validation
};

enum class FitOutcome { Completed, EarlyStopped, StopRequested };

struct FitResult {
  FitOutcome outcome = FitOutcome::Completed;
  TrainPosition position;  ///< where a resumed run would continue
  long epochs_without_improvement = 0;
  std::string last_checkpoint;  ///< last.ckpt ("" without a checkpoint folder)
};

/// Hooks into a run; every method does nothing unless overridden.
class TrainerCallback {
 public:
  virtual ~TrainerCallback() = default;
  virtual void on_fit_begin(const TrainPosition& /*start*/, long /*epochs*/) {}
  virtual void on_epoch_begin(long /*epoch*/, long /*epochs*/, Index /*batches*/) {}
  virtual void on_batch_end(const BatchReport&) {}
  virtual void on_epoch_end(const EpochReport&) {}
  /// Adds the program's own entries to a checkpoint the trainer is about to write.
  virtual void on_checkpoint(Checkpoint&) {}
  virtual void on_fit_end(const FitResult&) {}
};

}  // namespace convnet
