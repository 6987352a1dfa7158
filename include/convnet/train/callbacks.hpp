// The usual things a program shows and writes about a Trainer's run, each a
// TrainerCallback to take or leave:
//   ProgressPrinter   an epoch header, a progress bar (or progress lines when
//                     not on a terminal), one line per epoch, and how the run
//                     began (resumed where) and ended (stopped, early-stopped)
//   MetricsCsvWriter  metrics.csv (only what the seed decides, so two runs of
//                     the same settings write identical files) and timing.csv
//   CurvesPlotter     curves.png: loss and accuracy, train and validation, against epochs
//   CheckpointNotes   the program's own entries (configuration, data statistics,
//                     class names) added to every checkpoint the trainer writes
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../checkpoint/atomic_file.hpp"
#include "../errors.hpp"
#include "../metrics.hpp"
#include "../peak_memory.hpp"
#include "../inference/plot.hpp"
#include "trainer.hpp"

namespace convnet {

/// "h:mm:ss"
inline std::string format_hms(double seconds) {
  const long s = static_cast<long>(std::max(0.0, seconds) + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

struct ProgressOptions {
  /// A terminal: the bar redraws itself in place, four times a second. Otherwise progress comes as lines.
  ProgressOptions& terminal(bool v) { terminal_ = v; return *this; }
  /// Without a terminal: a progress line every `v` batches (unset: every 30 seconds).
  ProgressOptions& every_batches(long v) { every_batches_ = v; return *this; }

  bool terminal() const { return terminal_; }
  std::optional<long> every_batches() const { return every_batches_; }

 private:
  bool terminal_ = false;
  std::optional<long> every_batches_;
};

/// Epoch headers and summaries go to `out`; the progress bar to `bar` (usually std::cerr).
class ProgressPrinter : public TrainerCallback {
 public:
  ProgressPrinter(std::ostream& out, std::ostream& bar, ProgressOptions options = ProgressOptions())
      : out_(out), bar_(bar), options_(std::move(options)) {
    if (options_.every_batches()) {
      detail::require_option(*options_.every_batches() >= 1, "ProgressPrinter", "every_batches", ">= 1",
                             *options_.every_batches());
    }
  }

  void on_fit_begin(const TrainPosition& start, long /*epochs*/) override {
    if (start.epoch > 0 || start.batch > 0) {
      out_ << "resuming from epoch " << start.epoch + 1 << ", batch " << start.batch + 1 << std::endl;
    }
  }

  void on_fit_end(const FitResult& r) override {
    if (r.outcome == FitOutcome::StopRequested && !r.last_checkpoint.empty()) {
      out_ << "interrupted: saved " << r.last_checkpoint << " (epoch " << r.position.epoch + 1 << ", after batch "
           << r.position.batch << ")." << std::endl;
    } else if (r.outcome == FitOutcome::EarlyStopped) {
      out_ << "early stopping: validation loss has not improved for " << r.epochs_without_improvement << " epochs"
           << std::endl;
    }
  }

  void on_epoch_begin(long epoch, long epochs, Index batches) override {
    out_ << "epoch " << epoch + 1 << "/" << epochs << ": " << batches << " batches" << std::endl;
    last_print_ = 0;
  }

  void on_batch_end(const BatchReport& r) override {
    const bool last = r.batch == r.batches;
    const bool due = options_.terminal() ? r.seconds - last_print_ > 0.25
                                     : (options_.every_batches() ? r.batch % *options_.every_batches() == 0
                                                             : r.seconds - last_print_ > 30);
    if (!due && !last) return;
    last_print_ = r.seconds;
    const double rate = static_cast<double>(r.images) / std::max(r.seconds, 1e-9);
    const double per_batch = r.seconds / static_cast<double>(std::max<Index>(1, r.batch - r.first_batch));
    const int width = 30, filled = static_cast<int>(width * r.batch / std::max<Index>(1, r.batches));
    char line[256];
    std::snprintf(line, sizeof line, "%s[%s%s] %ld/%ld  %.0f img/s  ETA %s  loss %.4f  acc %.2f%%",
                  options_.terminal() ? "\r" : "  ", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                  std::string(static_cast<std::size_t>(width - filled), '.').c_str(), static_cast<long>(r.batch),
                  static_cast<long>(r.batches), rate,
                  format_hms(per_batch * static_cast<double>(r.batches - r.batch)).c_str(), r.loss, 100 * r.accuracy);
    bar_ << line << (options_.terminal() ? (last ? "\n" : "") : "\n") << std::flush;
  }

  void on_epoch_end(const EpochReport& e) override {
    const EpochRecord& r = e.record;
    char line[256];
    std::snprintf(line, sizeof line,
                  "epoch %d/%ld  train loss %.4f acc %.2f%%  val loss %.4f acc %.2f%%  lr %.3g  %.0f s (train %.0f s)",
                  r.epoch, e.epochs, r.train_loss, 100 * r.train_accuracy, r.val_loss, 100 * r.val_accuracy,
                  r.learning_rate, r.seconds, e.train_seconds);
    out_ << line;
    if (e.average) out_ << "  (weight average: val loss " << e.average->val_loss << " acc " << 100 * e.average->val_accuracy << "%)";
    if (const auto peak = peak_memory_bytes()) out_ << "  peak memory " << (*peak + (1 << 19)) / (1 << 20) << " MiB";
    out_ << std::endl;
  }

 private:
  std::ostream& out_;
  std::ostream& bar_;
  ProgressOptions options_;
  double last_print_ = 0;
};

/// Rewrites <folder>/metrics.csv and <folder>/timing.csv after every epoch.
class MetricsCsvWriter : public TrainerCallback {
 public:
  explicit MetricsCsvWriter(std::string folder) : folder_(std::move(folder)) {}

  void on_epoch_end(const EpochReport& e) override { write(e.history); }

  /// Each file through the atomic writer: a reader (or a run killed mid-write) sees the previous
  /// epoch's file or this one, a link planted at the name is replaced, never followed.
  void write(const std::vector<EpochRecord>& history) const {
    std::ostringstream metrics, timing;
    metrics << "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate\n" << std::setprecision(9);
    timing << "epoch,seconds\n" << std::setprecision(6);
    for (const auto& r : history) {
      metrics << r.epoch << "," << r.train_loss << "," << r.train_accuracy << "," << r.val_loss << ","
              << r.val_accuracy << "," << r.learning_rate << "\n";
      timing << r.epoch << "," << r.seconds << "\n";
    }
    for (const auto& [name, text] : {std::pair<const char*, std::string>{"metrics.csv", metrics.str()},
                                     std::pair<const char*, std::string>{"timing.csv", timing.str()}}) {
      const std::string path = (std::filesystem::path(folder_) / name).string();
      if (const auto error = write_file_atomically(path, text)) {
        throw DataError("cannot write " + error->file + ": " + error->reason);
      }
    }
  }

 private:
  std::string folder_;
};

/// Redraws `path` (a PNG) after every epoch.
class CurvesPlotter : public TrainerCallback {
 public:
  explicit CurvesPlotter(std::string path) : path_(std::move(path)) {}
  void on_epoch_end(const EpochReport& e) override { plot_training_curves(e.history, path_); }

 private:
  std::string path_;
};

/// Entries added to every checkpoint the trainer writes.
class CheckpointNotes : public TrainerCallback {
 public:
  CheckpointNotes& text(const std::string& key, std::string value) {
    texts_.emplace_back(key, std::move(value));
    return *this;
  }
  /// A text entry of one line per item (class names, say).
  CheckpointNotes& lines(const std::string& key, const std::vector<std::string>& items) {
    std::string joined;
    for (const auto& item : items) joined += item + "\n";
    return text(key, std::move(joined));
  }
  CheckpointNotes& numbers(const std::string& key, std::vector<double> values) {
    numbers_.emplace_back(key, std::move(values));
    return *this;
  }
  /// Entries written by a function of their own (Preparation::write, say).
  CheckpointNotes& writer(std::function<void(Checkpoint&)> write) {
    writers_.push_back(std::move(write));
    return *this;
  }
  void on_checkpoint(Checkpoint& c) override {
    for (const auto& [key, value] : texts_) c.set_text(key, value);
    for (const auto& [key, values] : numbers_) c.set_f64s(key, values);
    for (const auto& write : writers_) write(c);
  }

 private:
  std::vector<std::pair<std::string, std::string>> texts_;
  std::vector<std::pair<std::string, std::vector<double>>> numbers_;
  std::vector<std::function<void(Checkpoint&)>> writers_;
};

}  // namespace convnet
