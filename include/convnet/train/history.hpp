// A run's history in a checkpoint: one entry per EpochRecord field, a value per finished epoch
// (trainer/history/epoch, trainer/history/train_loss, ...), and the weight average's validation
// figures beside it (trainer/average_history/val_loss, .../val_accuracy). Checkpoints written
// before the fields had names hold "trainer/history", seven values an epoch in EpochRecord's
// order, and "trainer/average_history", two: read_history reads either.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../errors.hpp"
#include "../metrics.hpp"

namespace convnet {

/// The weight average's validation figures for one epoch.
struct AverageRecord {
  double val_loss = 0, val_accuracy = 0;
};

namespace detail {

/// A count stored as a double: a whole number in [0, 1e15] (a NaN or huge value from a damaged
/// checkpoint is refused, not cast).
inline double stored_count(double v, const std::string& where, const char* what) {
  if (!(v >= 0 && v <= 1e15) || v != std::floor(v)) {
    throw CheckpointError(where + ": " + what + " is not a whole number >= 0");
  }
  return v;
}

/// Columns of equal length, by name, under `prefix`; or a flat positional entry of `width` values a
/// row (the older form); `names` in row order. Empty when neither is there and `required` is false.
inline std::vector<std::vector<double>> read_columns(const Checkpoint& c, const std::string& prefix,
                                                     const std::vector<const char*>& names, bool required) {
  const std::string where = c.source();
  std::vector<std::vector<double>> rows;
  if (c.contains(prefix + "/" + names[0])) {
    std::vector<std::vector<double>> columns;
    for (const char* name : names) {
      if (!c.contains(prefix + "/" + name)) throw CheckpointError(where + ": " + prefix + "/" + name + " is missing");
      columns.push_back(c.f64s(prefix + "/" + name));
      if (columns.back().size() != columns[0].size()) {
        throw CheckpointError(where + ": " + prefix + "/" + name + " has another length than " + prefix + "/" + names[0]);
      }
    }
    for (std::size_t r = 0; r < columns[0].size(); ++r) {
      rows.emplace_back();
      for (const auto& column : columns) rows.back().push_back(column[r]);
    }
  } else if (c.contains(prefix)) {
    const std::vector<double> v = c.f64s(prefix);
    if (v.size() % names.size() != 0) {
      throw CheckpointError(concat(where, ": ", prefix, " is not whole rows of ", names.size(), " values"));
    }
    for (std::size_t i = 0; i < v.size(); i += names.size()) rows.emplace_back(v.begin() + static_cast<std::ptrdiff_t>(i), v.begin() + static_cast<std::ptrdiff_t>(i + names.size()));
  } else if (required) {
    throw CheckpointError(where + ": " + prefix + " is missing");
  }
  return rows;
}

inline const std::vector<const char*>& history_fields() {
  static const std::vector<const char*> names{"epoch",        "train_loss",    "train_accuracy", "val_loss",
                                              "val_accuracy", "learning_rate", "seconds"};
  return names;
}
inline const std::vector<const char*>& average_fields() {
  static const std::vector<const char*> names{"val_loss", "val_accuracy"};
  return names;
}

}  // namespace detail

/// The history under `key` (e.g. "trainer/history"), a column per field.
inline void save_history(Checkpoint& c, const std::string& key, const std::vector<EpochRecord>& history) {
  std::vector<std::vector<double>> columns(detail::history_fields().size());
  for (const auto& r : history) {
    const double row[] = {static_cast<double>(r.epoch), r.train_loss, r.train_accuracy, r.val_loss,
                          r.val_accuracy, r.learning_rate, r.seconds};
    for (std::size_t i = 0; i < columns.size(); ++i) columns[i].push_back(row[i]);
  }
  for (std::size_t i = 0; i < columns.size(); ++i) c.set_f64s(key + "/" + detail::history_fields()[i], columns[i]);
}

/// What save_history wrote, or the older positional form; every epoch number checked.
inline std::vector<EpochRecord> read_history(const Checkpoint& c, const std::string& key) {
  std::vector<EpochRecord> history;
  for (const auto& row : detail::read_columns(c, key, detail::history_fields(), true)) {
    if (detail::stored_count(row[0], c.source(), "trainer/history epoch") > 1e9) {  // an int, never a wrapped one
      throw CheckpointError(c.source() + ": trainer/history epoch is over 1e9");
    }
    history.push_back({static_cast<int>(row[0]), row[1], row[2], row[3], row[4], row[5], row[6]});
  }
  return history;
}

/// Epochs a checkpoint's history holds (0 without one): what a resume must find best.ckpt for.
inline std::size_t stored_epochs(const Checkpoint& c, const std::string& key = "trainer/history") {
  if (!c.contains(key + "/epoch") && !c.contains(key)) return 0;
  return read_history(c, key).size();
}

inline void save_average_history(Checkpoint& c, const std::string& key, const std::vector<AverageRecord>& history) {
  std::vector<double> loss, accuracy;
  for (const auto& r : history) loss.push_back(r.val_loss), accuracy.push_back(r.val_accuracy);
  c.set_f64s(key + "/val_loss", loss);
  c.set_f64s(key + "/val_accuracy", accuracy);
}

/// What save_average_history wrote, or the older positional form; empty when neither is there.
inline std::vector<AverageRecord> read_average_history(const Checkpoint& c, const std::string& key) {
  std::vector<AverageRecord> history;
  for (const auto& row : detail::read_columns(c, key, detail::average_fields(), false)) history.push_back({row[0], row[1]});
  return history;
}

}  // namespace convnet
