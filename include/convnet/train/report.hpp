// The report a training run ends with: the best checkpoint on the test set (or the validation part
// without one), through the same Classifier the predictor uses (the first of the views in full, the
// others as a top-1 line each), and the embedding's own classes (inference/embedding_classifier.hpp).
// Every run gives the embedding's figures, with a head too (on the layer an embedding term would
// read), so that a loss on the logits and a loss on the embedding compare on the same figure.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "../data/loader.hpp"
#include "../data/training_data.hpp"
#include "../inference/classifier.hpp"
#include "../inference/embedding_classifier.hpp"
#include "../losses/objective.hpp"
#include "callbacks.hpp"
#include "trainer.hpp"

namespace convnet {

/// What the embedding classifies: the test pictures' nearest class centroid and k nearest neighbours
/// (k = 1, 10) among the training pictures' embeddings, prepared as for evaluation.
inline void write_embedding_report(std::ostream& out, Classifier& model, const TrainingData& data,
                                   const Dataset& test, const std::string& layer, EmbeddingMetric metric,
                                   std::optional<Index> max_batches) {
  // Batches of at most 256 pictures and no more input values than 32 of 227 x 227 (as Classifier's):
  // 256 pictures of the paper network held 1.5 GB of activations more than 32 do.
  const double side = static_cast<double>(model.input_size());
  const auto batch = static_cast<Index>(std::clamp(std::floor(32.0 * 227 * 227 / (side * side)), 1.0, 256.0));
  const auto options = LoaderOptions().batch_size(batch).shuffle(false).workers(1).skip_unreadable(true);
  // max_batches counts batches of 256 pictures (as validation's), whatever this loader's batch.
  const Index limit = max_batches ? (*max_batches * 256 + batch - 1) / batch : Index{1} << 40;
  DataLoader test_loader(test, model.preparation().eval_pipeline(), options);
  test_loader.start_epoch(0);
  const EmbeddingSet queries = embed(model.network(), test_loader, layer, limit);
  // k nearest needs every training picture's embedding at once: a training set too large for that (ImageNet's 1.28M pictures x 4096 values are 20 GB)
  // is told, not attempted.
  constexpr double kMaxReferenceGiB = 2;
  const Index references = std::min<Index>(data.train().size(), limit * options.batch_size());
  const double gib = 4.0 * static_cast<double>(references) * static_cast<double>(queries.rows.cols()) / (1 << 30);
  if (gib > kMaxReferenceGiB) {
    out << "embedding (" << layer << "): not classified: " << references << " training pictures x " << queries.rows.cols()
        << " values are " << gib << " GiB, over the " << kMaxReferenceGiB << " GiB this report holds\n";
    return;
  }
  DataLoader train_loader(data.train(), model.preparation().eval_pipeline(), options);
  train_loader.start_epoch(0);
  const EmbeddingClassifier reference(embed(model.network(), train_loader, layer, limit), metric);
  const EmbeddingAccuracy a = reference.evaluate(queries, {1, 10});
  out << "embedding (" << layer << (metric == EmbeddingMetric::Cosine ? ", cosine, " : ", Euclidean, ") << a.count << " test pictures): nearest centroid "
      << 100 * a.centroid << "%, 1-NN " << 100 * a.knn[0] << "%, 10-NN " << 100 * a.knn[1] << "%\n";
}

// The embedding read as the loss measured it: by cosine when every embedding term normalises it.
inline EmbeddingMetric embedding_metric_of(const Objective<float>& objective) {
  return objective.normalizes_embedding() ? EmbeddingMetric::Cosine : EmbeddingMetric::Euclidean;
}

/// The whole report of a finished run: best.ckpt on the test set under each of `views` (the first in
/// full), the embedding's classes and, when the run kept one, the weight average's figure. Stops early,
/// between evaluations, once `stop` is set. Returns the first view's report (its confusion matrix is
/// the run's confusion.png), or nothing when it stopped before that. `network` opens the report
/// ("AlexNet 'cifar-half-bn' (name=...)"); without `embedding`, the embedding's figures are left out.
inline std::optional<ClassificationReport> write_test_report(std::ostream& out, const Trainer<float>& trainer, const std::string& network,
                              const std::vector<EvalViews>& views, const Objective<float>& objective, const TrainingData& data,
                              std::optional<Index> max_batches, const std::atomic<bool>& stop, bool embedding = true) {
  const std::string loss = objective.describe();
  double best = 0, seconds = 0;
  for (const auto& e : trainer.history()) best = std::max(best, e.val_accuracy), seconds += e.seconds;
  const Dataset& test = data.test() ? *data.test() : data.validation();
  out << std::fixed << std::setprecision(2) << network << "\ndataset: " << data.spec().str() << (data.test() ? "" : " (no test part: the report is on validation)")
      << "\nbest checkpoint: " << trainer.best_path() << " (validation accuracy " << 100 * best
      << (objective.reads_logits() ? "%" : "%, the embedding's split-half nearest centroid") << ")\nepochs: "
      << trainer.history().size() << ", training time " << format_hms(seconds) << "\nloss: " << loss << "\n";
  const auto pictures = max_batches ? std::optional<Index>(*max_batches * 256) : std::nullopt;  // as validation
  Classifier model = Classifier::load(trainer.best_path());
  if (!stop.load() && embedding) {
    write_embedding_report(out, model, data, test, objective.embedding_layer(), embedding_metric_of(objective), max_batches);
  }
  if (!objective.reads_logits()) out << "(" << loss << " does not train fc8: its softmax figures below are untrained)\n";
  std::vector<ClassificationReport> reports;  // one pass where the views allow (centre and flip within flip-translate)
  if (!stop.load()) reports = model.evaluate(test, views, pictures, &stop);
  for (std::size_t k = 0; k < reports.size(); ++k) {
    const EvalViews v = views[k];
    out << "test top-1 (" << to_string(v) << ", " << view_count(v) << (view_count(v) == 1 ? " view" : " views")
        << "): " << 100 * reports[k].metrics.top1_accuracy() << "%\n";
  }
  if (!trainer.best_average_path().empty() && !stop.load() && objective.reads_logits() &&
      std::filesystem::exists(trainer.best_average_path())) {
    double best_average = 0;
    for (const auto& a : trainer.average_history()) best_average = std::max(best_average, a.val_accuracy);
    Classifier averaged = Classifier::load(trainer.best_average_path());
    const ClassificationReport r = averaged.evaluate(test, views[0], pictures, &stop);
    out << "weight average (" << trainer.best_average_path() << ", validation accuracy " << 100 * best_average
        << "%): test top-1 (" << to_string(views[0]) << ") " << 100 * r.metrics.top1_accuracy() << "%\n";
  }
  if (reports.empty()) return std::nullopt;
  out << "\nfull report, " << to_string(views[0]) << ":\n";
  print_report(out, reports[0]);
  return reports[0];
}

}  // namespace convnet
