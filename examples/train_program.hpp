// The training program behind both train (any dataset) and cifar10_train (CIFAR-10, what make train
// runs): the command line over the library's TrainingData, Preparation, Trainer and Classifier.
// Built with MPI and started by mpirun (mpirun -np 2 cifar10_train --threads 1 ...), it trains
// data-parallel: every rank reads the data, rank 0 prints, writes and reports.
// Writes to the output folder: metrics.csv, timing.csv, curves.png, last.ckpt (to resume), best.ckpt
// (best validation accuracy) and report.txt (best.ckpt on the test set). Ctrl-C stops after the
// current batch, saves last.ckpt and says how to resume.
#pragma once

#include <convnet/convnet.hpp>
#ifdef CONVNET_WITH_MPI
#include <convnet/distributed/mpi.hpp>
#endif

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <unistd.h>

#include "train_options.hpp"

namespace train_program {

using namespace convnet;

// The processes training together under mpirun, or nullptr (set by main).
inline ProcessGroup*& process_group() {
  static ProcessGroup* group = nullptr;
  return group;
}
inline bool is_root() { return process_group() == nullptr || process_group()->rank() == 0; }

inline std::vector<EvalViews> eval_views_of(const Settings& s) {
  std::vector<EvalViews> views;
  std::istringstream in(s.eval);
  for (std::string v; std::getline(in, v, ',');) views.push_back(parse_eval_views(v));
  return views;
}

// The best checkpoint on the test set (or the validation part without one), through the same
// Classifier the predictor uses: the first of --eval's views in full, the others as a top-1 line each.
// Also the embedding's own classes (embedding_classifier.hpp): the test pictures' nearest class centroid
// and k nearest neighbours (k = 1, 10) among the training pictures' embeddings, prepared as for
// evaluation. Every run gives them, with a head too (on the layer an embedding term would read), so
// that a loss on the logits and a loss on the embedding compare on the same figure.
inline void write_embedding_report(std::ostream& out, Classifier& model, const TrainingData& data,
                                   const Dataset& test, const std::string& layer, EmbeddingMetric metric,
                                   std::optional<Index> max_batches) {
  const auto options = LoaderOptions().batch_size(256).shuffle(false).workers(1).skip_unreadable(true);
  const Index limit = max_batches.value_or(Index{1} << 40);
  DataLoader test_loader(test, model.preparation().eval_pipeline(), options);
  test_loader.start_epoch(0);
  const EmbeddingSet queries = embed(model.network(), test_loader, layer, limit);
  // k nearest needs every training picture's embedding at once (twice that while embed gathers
  // them): a training set too large for that (ImageNet's 1.28M pictures x 4096 values are 20 GB)
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

inline void write_test_report(std::ostream& out, const Trainer<float>& trainer, const AlexNetConfig& config,
                              const Settings& s, const Objective<float>& objective, const TrainingData& data,
                              std::optional<Index> max_batches, const std::atomic<bool>& stop) {
  const std::string loss = objective.describe();
  double best = 0, seconds = 0;
  for (const auto& e : trainer.history()) best = std::max(best, e.val_accuracy), seconds += e.seconds;
  const Dataset& test = data.test() ? *data.test() : data.validation();
  out << std::fixed << std::setprecision(2) << "AlexNet '" << config.name() << "' (" << config.str()
      << ")\ndataset: " << data.spec().str() << (data.test() ? "" : " (no test part: the report is on validation)")
      << "\nbest checkpoint: " << trainer.best_path() << " (validation accuracy " << 100 * best
      << (objective.reads_logits() ? "%" : "%, the embedding's split-half nearest centroid") << ")\nepochs: "
      << trainer.history().size() << ", training time " << format_hms(seconds) << "\nloss: " << loss << "\n";
  const auto pictures = max_batches ? std::optional<Index>(*max_batches * 256) : std::nullopt;  // as validation
  Classifier model = Classifier::load(trainer.best_path());
  if (!stop.load()) {
    write_embedding_report(out, model, data, test, objective.embedding_layer(), embedding_metric_of(objective), max_batches);
  }
  if (!objective.reads_logits()) out << "(" << loss << " does not train fc8: its softmax figures below are untrained)\n";
  const std::vector<EvalViews> views = eval_views_of(s);
  std::vector<ClassificationReport> reports;
  for (EvalViews v : views) {
    if (stop.load()) break;
    reports.push_back(model.evaluate(test, v, pictures, &stop));
    out << "test top-1 (" << to_string(v) << ", " << view_count(v) << (view_count(v) == 1 ? " view" : " views")
        << "): " << 100 * reports.back().metrics.top1_accuracy() << "%\n";
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
  if (!reports.empty()) {
    out << "\nfull report, " << to_string(views[0]) << ":\n";
    print_report(out, reports[0]);
  }
}

inline Objective<float> objective_of(const Settings& s) {
  const auto options = ObjectiveOptions().hinge_margin(s.hinge_margin).triplet_margin(s.triplet_margin).label_smoothing(s.label_smoothing);
  // A loss on the embedding alone leaves fc8 untrained: the report then reads classes from the
  // embedding (nearest centroid, k nearest neighbours), and validation accuracy, which picks
  // best.ckpt, is the embedding's split-half nearest centroid.
  return make_objective<float>(s.loss, parse_loss_weights(s.loss_weights), options);
}

inline TrainingDataOptions data_options_of(const Settings& s) {
  return TrainingDataOptions()
      .validation_fraction(s.val_fraction)
      .seed(static_cast<std::uint64_t>(s.seed))
      .cifar100_labels(s.labels == "coarse" ? Cifar100Labels::Coarse : Cifar100Labels::Fine)
      .folder(ImageFolderOptions().verify(s.verify));
}

// The classes and channels the data gives, checked against what the settings ask for.
inline AlexNetConfig config_for_data(const Settings& s, const TrainingData& data) {
  const Index classes = static_cast<Index>(data.class_names().size());
  if (s.classes > 0 && s.classes != classes) {
    throw std::invalid_argument(detail::concat("--classes ", s.classes, " but ", data.spec().str(), " has ", classes,
                                               " classes", data.spec().kind == "cifar10" && s.classes == 100
                                                   ? "; CIFAR-100 is --dataset cifar100:DIR" : ""));
  }
  return config_of(s, data.picture_size(), data.picture_channels(), classes);
}

// Trains, then writes the test report; 130 (143) when interrupted by SIGINT (SIGTERM).
inline int fit(const std::string& program, const Settings& s, const cli::OptionTable& table, const Checkpoint* resume) {
  std::cout << "loading " << s.dataset << "\n";
  const auto seed = static_cast<std::uint64_t>(s.seed);
  const auto data = TrainingData::open(DatasetSpec::parse(s.dataset), data_options_of(s));
  const AlexNetConfig config = config_for_data(s, *data);
  if (resume) require_stored_parameters(*resume, alexnet_parameter_shapes(config));
  Objective<float> objective = objective_of(s);
  // Statistics once: computed on the first run, read back from the checkpoint on a resumed one.
  const Preparation prep = resume && resume->contains("data/preparation")
                               ? Preparation::read(*resume)
                               : Preparation::compute(data->train(), preparation_of(s, config, data->spec().in_memory()));
  LoaderOptions train_options = LoaderOptions().batch_size(s.batch_size).workers(static_cast<int>(s.workers)).seed(seed);
  DataLoader train_loader(data->train(), prep.train_pipeline(), train_options.skip_unreadable(true));
  // Validation batches of 256 at 32 x 32, fewer for larger inputs (256 of the paper network's 227 x 227
  // inputs held 2 GB of activations and unfolded patches), never fewer than a training batch.
  const Index side = config.input_size(), val_batch = std::max<Index>(s.batch_size, std::min<Index>(256, 256 * 32 * 32 / (side * side)));
  DataLoader val_loader(data->validation(), prep.eval_pipeline(),
                        LoaderOptions().batch_size(val_batch).shuffle(false).workers(1).skip_unreadable(true));
  auto net = make_alexnet<float>(config, seed);
  prepare_output_folder(s.out, checkpoint_bytes(net));
  net.set_input_gradient(false);  // the pictures need no gradient
  TrainerOptions options = TrainerOptions().epochs(s.epochs).checkpoint_dir(s.out);
  if (s.save_every > 0) options.save_every(s.save_every);
  if (s.patience > 0) options.patience(s.patience);
  if (s.max_batches > 0) options.max_batches(s.max_batches);
  if (s.average_weights > 0) options.average_weights(s.average_weights);
  if (!objective.reads_logits()) {  // fc8 stays untrained: validate by what the embedding classifies
    options.validate_embedding(objective.embedding_layer(), embedding_metric_of(objective));
  }
  const auto recipe = TrainingRecipe().optimizer(s.optimizer).schedule(s.schedule).lr(s.lr).momentum(s.momentum)
      .nesterov(!s.no_nesterov).weight_decay(s.weight_decay).epochs(s.epochs)
      .steps_per_epoch(std::min<Index>(options.max_batches().value_or(1L << 40), train_loader.batches_per_epoch()));
  auto optimizer = make_optimizer(recipe, net.parameters());
  auto schedule = make_schedule(recipe);
  Trainer<float> trainer(net, objective, *optimizer, schedule.get(), options);
  CheckpointNotes notes;  // what the predictor and a resumed run need
  notes.text("config", config.str()).text("trainer/options", table.record()).text("trainer/loss", objective.describe())
      .writer([&prep](Checkpoint& c) { prep.write(c); })
      .lines("data/classes", data->class_names());
  auto progress_options = ProgressOptions().terminal(::isatty(STDERR_FILENO));
  if (s.progress_every > 0) progress_options.every_batches(s.progress_every);
  trainer.add_callback(notes);
  // Rank 0 alone shows and writes the run (every rank holds the same figures).
  std::optional<ProgressPrinter> progress;
  std::optional<MetricsCsvWriter> csv;
  std::optional<CurvesPlotter> curves;
  if (is_root()) {
    trainer.add_callback(progress.emplace(std::cout, std::cerr, progress_options))
        .add_callback(csv.emplace(s.out))
        .add_callback(curves.emplace((std::filesystem::path(s.out) / "curves.png").string()));
  }
  if (process_group()) trainer.distribute(*process_group());
  if (resume) trainer.resume(*resume);
  const std::string parallel =
      process_group() ? detail::concat(process_group()->size(), " processes (data-parallel, MPI) x ") : "";
  std::cout << "AlexNet '" << config.name() << "': " << net.parameter_count() << " parameters, input "
            << config.input_channels() << "x" << config.input_size() << "x" << config.input_size() << "; "
            << data->describe() << "; " << parallel << num_threads() << " threads\nrecipe: " << optimizer->type_name() << ", "
            << schedule->describe() << ", batch " << s.batch_size << ", weight decay " << s.weight_decay
            << "\npictures: " << prep.describe() << "\nloss: " << objective.describe() << "\n";
  StopSignals signals;
  trainer.stop_on(signals.flag());
  const FitResult result = trainer.fit(train_loader, &val_loader);
  if (const Index skipped = train_loader.skipped() + val_loader.skipped()) {
    std::cout << "skipped " << skipped << " unreadable pictures during training (the first: "
              << (train_loader.skipped() ? train_loader : val_loader).first_skip_reason() << ")\n";
  }
  auto interrupted = [&](const char* what) {
    std::cout << "\n" << what << "; resume with: " << program << " --resume " << trainer.last_path()
              << (s.out == std::filesystem::path(trainer.last_path()).parent_path().string() ? "" : " --out " + s.out)
              << "\n";
    return signals.exit_status();
  };
  if (result.outcome == FitOutcome::StopRequested) return interrupted("stopped");
  if (!is_root()) return 0;  // the report is rank 0's
  std::ostringstream report;
  write_test_report(report, trainer, config, s, objective, *data, options.max_batches(), signals.flag());
  if (signals.received()) return interrupted("stopped during the test report (training is complete)");
  std::ofstream((std::filesystem::path(s.out) / "report.txt").string()) << report.str();
  std::cout << "\n" << report.str() << "\nwrote " << s.out
            << "/{metrics.csv, timing.csv, curves.png, last.ckpt, best.ckpt, report.txt}\n";
  return 0;
}

// Everything a resumed run will need that can be checked before any data is read: best.ckpt (the
// best epoch so far, which the final report reads) is in the output folder, or beside the
// checkpoint, from where it is copied.
inline void check_resume(const Settings& s, const Checkpoint& resume) {
  namespace fs = std::filesystem;
  const bool any_epoch_done = resume.contains("trainer/history") && !resume.f64s("trainer/history").empty();
  const fs::path best = fs::path(s.out) / "best.ckpt", beside = fs::path(s.resume).parent_path() / "best.ckpt";
  std::error_code ec;
  if (!any_epoch_done || fs::exists(best, ec)) return;
  if (!fs::exists(beside, ec)) {
    throw std::runtime_error("cannot resume " + s.resume + ": " + best.string() +
                             ", the best epoch so far (the final report reads it), is missing; copy it there or "
                             "resume in the folder of the interrupted run");
  }
  fs::create_directories(s.out);
  fs::copy_file(beside, best);
}

inline int train(const std::string& program, Settings& s, cli::OptionTable& table) {
  Checkpoint resume;
  if (!s.resume.empty()) {
    resume = Checkpoint::load(s.resume);
    // The data may have moved since: a --dataset (or --data) given now names where it is, of the kind recorded.
    const std::string given = table.given("--dataset") ? s.dataset : table.given("--data") ? "cifar10:" + s.data : "";
    table.restore(resume.text("trainer/options"));
    if (!given.empty() && !s.dataset.empty()) {
      const std::string recorded = DatasetSpec::parse(s.dataset).kind, now = DatasetSpec::parse(given).kind;
      if (recorded != now) throw std::invalid_argument("cannot resume a run on " + recorded + " data with " + given);
    }
    if (!given.empty()) s.dataset = given;
    if (!table.given("--out")) s.out = std::filesystem::path(s.resume).parent_path().string();
    if (s.out.empty()) s.out = ".";
  }
  if (s.threads > 0) set_num_threads(static_cast<int>(s.threads));
  resolve_kind_defaults(s);
  if (!table.given("--lr") && s.resume.empty()) {
    if (s.optimizer == "adam") s.lr = 1e-3;  // adam's usual rate
    // The 227 x 227 networks diverge at the small networks' 0.05 (the paper network's loss passed 1e12
    // by step 5 of a one-cycle run): the paper's rate.
    else if (s.config == "paper" || s.config == "torchvision") s.lr = 0.01;
  }
  const DatasetSpec spec = DatasetSpec::parse(s.dataset);
  if (program == "train" && !table.given("--out") && s.resume.empty()) s.out = "runs/" + spec.kind;
  if (spec.kind == "cifar10" && !cifar10_present(spec.dir) && !s.download) {
    std::cerr << program << ": " << cifar10_missing_message(spec.dir) << "\n";
    return 2;
  }
  // The flags' bounds and, resuming, the stored parameters against the configuration, before any data
  // is read (for a folder, whose pictures are not known yet, checked again once it is open).
  const KindShape shape = kind_shape(spec.kind, s.labels);
  const AlexNetConfig config = config_of(s, shape.picture_size, shape.channels, shape.known ? shape.classes : 1);
  objective_of(s);
  if (!s.resume.empty()) {
    if (shape.known) require_stored_parameters(resume, alexnet_parameter_shapes(config));
    check_resume(s, resume);
  }
  if (spec.kind == "cifar10" && !cifar10_present(spec.dir)) download_cifar10(spec.dir);
  prepare_output_folder(s.out);
  return fit(program, s, table, s.resume.empty() ? nullptr : &resume);
}

/// The whole program: parse, train, report; errors as "program: message" and exit status 1.
inline int main(const std::string& program, int argc, char** argv) {
#ifdef CONVNET_WITH_MPI
  mpi::World world(argc, argv);  // MPI only when started by mpirun
  process_group() = world.group();
  if (world.rank() != 0) std::cout.rdbuf(nullptr);  // one rank speaks; errors still reach stderr
  const std::string rank = world.size() > 1 ? detail::concat("rank ", world.rank(), " of ", world.size(), ": ") : "";
#else
  const std::string rank;
#endif
  Settings settings;
  cli::OptionTable table = options_of(settings, program);
  try {
    const auto positional = table.parse(argc, argv);
    if (settings.help) {
      table.print_usage(std::cout);
      return 0;
    }
    if (!positional.empty()) throw std::invalid_argument("unexpected argument " + positional[0]);
    return train(program, settings, table);
  } catch (const std::exception& e) {
    std::cerr << program << ": " << rank << e.what() << std::endl;
#ifdef CONVNET_WITH_MPI
    world.abort_job();  // the other ranks may be waiting for this one
#endif
    return 1;
  }
}

}  // namespace train_program
