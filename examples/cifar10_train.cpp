// Trains AlexNet on CIFAR-10: the command line over the library's Trainer (see --help). Writes to the output
// folder: metrics.csv, timing.csv, curves.png, last.ckpt (to resume), best.ckpt (best validation accuracy) and
// report.txt (best.ckpt on the test set). Ctrl-C stops after the current batch, saves last.ckpt and says how
// to resume.
#include <convnet/convnet.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "cifar10_train_options.hpp"

namespace {

using namespace convnet;
using cifar10_train::Settings;
using cifar10_train::options_of;
using cifar10_train::config_of;

// The best checkpoint on the test set, through the same Classifier the predictor uses.
void write_test_report(std::ostream& out, const Trainer<float>& trainer, const AlexNetConfig& config,
                       const std::string& loss, const Dataset& test, std::optional<Index> max_batches,
                       const std::atomic<bool>& stop) {
  double best = 0, seconds = 0;
  for (const auto& e : trainer.history()) best = std::max(best, e.val_accuracy), seconds += e.seconds;
  out << std::fixed << std::setprecision(2) << "AlexNet '" << config.name() << "' (" << config.str()
      << ")\nbest checkpoint: " << trainer.best_path() << " (validation accuracy " << 100 * best << "%)\nepochs: "
      << trainer.history().size() << ", training time " << format_hms(seconds) << "\nloss: " << loss << "\n";
  const auto pictures = max_batches ? std::optional<Index>(*max_batches * 256) : std::nullopt;  // as validation
  print_report(out, Classifier::load(trainer.best_path()).evaluate(test, false, pictures, &stop));
}

Objective<float> objective_of(const Settings& s) {
  const auto options = ObjectiveOptions().hinge_margin(s.hinge_margin).triplet_margin(s.triplet_margin);
  Objective<float> objective = make_objective<float>(s.loss, parse_loss_weights(s.loss_weights), options);
  if (!objective.reads_logits()) {
    throw std::invalid_argument("--loss " + s.loss + " trains only the fc7 embedding, so fc8 (the classifier) would "
                                "never learn; combine it with a loss on the logits, such as cross-entropy+" + s.loss);
  }
  return objective;
}

// Trains, then writes the test report; 130 when interrupted.
int fit(const Settings& s, const cli::OptionTable& table, const Checkpoint* resume, const AlexNetConfig& config,
        Objective<float>& objective) {
  std::cout << "loading CIFAR-10 from " << s.data << "\n";
  const auto seed = static_cast<std::uint64_t>(s.seed);
  const Cifar10Data data(s.data, seed, s.val_fraction);
  const Cifar10Pipelines pipes(data, config.input_size(), s.augment);
  DataLoader train_loader(data.train, pipes.train,
                          LoaderOptions().batch_size(s.batch_size).workers(static_cast<int>(s.workers)).seed(seed));
  DataLoader val_loader(data.validation, pipes.eval, LoaderOptions().batch_size(256).shuffle(false).workers(1));
  auto net = make_alexnet<float>(config, seed);
  prepare_output_folder(s.out, checkpoint_bytes(net));
  net.set_input_gradient(false);  // the pictures need no gradient
  TrainerOptions options = TrainerOptions().epochs(s.epochs).checkpoint_dir(s.out);
  if (s.save_every > 0) options.save_every(s.save_every);
  if (s.patience > 0) options.patience(s.patience);
  if (s.max_batches > 0) options.max_batches(s.max_batches);
  const auto recipe = TrainingRecipe().optimizer(s.optimizer).schedule(s.schedule).lr(s.lr).momentum(s.momentum)
      .nesterov(!s.no_nesterov).weight_decay(s.weight_decay).epochs(s.epochs)
      .steps_per_epoch(std::min<Index>(options.max_batches().value_or(1L << 40), train_loader.batches_per_epoch()));
  auto optimizer = make_optimizer(recipe, net.parameters());
  auto schedule = make_schedule(recipe);
  Trainer<float> trainer(net, objective, *optimizer, schedule.get(), options);
  CheckpointNotes notes;  // what the predictor and a resumed run need
  notes.text("config", config.str()).text("trainer/options", table.record()).text("trainer/loss", objective.describe())
      .numbers("data/mean", pipes.stats.mean).numbers("data/std", pipes.stats.stddev)
      .lines("data/classes", data.train_all.class_names());
  auto progress_options = ProgressOptions().terminal(::isatty(STDERR_FILENO));
  if (s.progress_every > 0) progress_options.every_batches(s.progress_every);
  ProgressPrinter progress(std::cout, std::cerr, progress_options);
  MetricsCsvWriter csv(s.out);
  CurvesPlotter curves((std::filesystem::path(s.out) / "curves.png").string());
  trainer.add_callback(notes).add_callback(progress).add_callback(csv).add_callback(curves);
  if (resume) trainer.resume(*resume);
  std::cout << "AlexNet '" << config.name() << "': " << net.parameter_count() << " parameters; " << data.train.size()
            << " training / " << data.validation.size() << " validation / " << data.test.size() << " test images; "
            << num_threads() << " threads\nrecipe: " << optimizer->type_name() << ", " << schedule->describe()
            << ", batch " << s.batch_size << ", weight decay " << s.weight_decay << ", augmentation "
            << pipes.train.describe() << "\nloss: " << objective.describe() << "\n";
  StopSignals signals;
  trainer.stop_on(signals.flag());
  const FitResult result = trainer.fit(train_loader, &val_loader);
  auto interrupted = [&](const char* what) {
    std::cout << "\n" << what << "; resume with: cifar10_train --resume " << trainer.last_path()
              << (s.out == std::filesystem::path(trainer.last_path()).parent_path().string() ? "" : " --out " + s.out)
              << "\n";
    return signals.exit_status();
  };
  if (result.outcome == FitOutcome::StopRequested) return interrupted("stopped");
  std::ostringstream report;
  write_test_report(report, trainer, config, objective.describe(), data.test, options.max_batches(), signals.flag());
  if (signals.received()) return interrupted("stopped during the test report (training is complete)");
  std::ofstream((std::filesystem::path(s.out) / "report.txt").string()) << report.str();
  std::cout << "\n" << report.str() << "\nwrote " << s.out
            << "/{metrics.csv, timing.csv, curves.png, last.ckpt, best.ckpt, report.txt}\n";
  return 0;
}

// Everything a resumed run will need, checked before any data is read or any step is taken: the
// checkpoint holds this configuration's parameters, and best.ckpt (the best epoch so far, which the
// final report reads) is in the output folder, or beside the checkpoint, from where it is copied.
void check_resume(const Settings& s, const Checkpoint& resume, const AlexNetConfig& config) {
  namespace fs = std::filesystem;
  require_stored_parameters(resume, alexnet_parameter_shapes(config));
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
int train(Settings& s, cli::OptionTable& table) {
  Checkpoint resume;
  if (!s.resume.empty()) {
    resume = Checkpoint::load(s.resume);
    table.restore(resume.text("trainer/options"));
    if (!table.given("--out")) s.out = std::filesystem::path(s.resume).parent_path().string();
    if (s.out.empty()) s.out = ".";
  }
  if (s.optimizer == "adam" && !table.given("--lr") && s.resume.empty()) s.lr = 1e-3;  // adam's usual rate
  if (s.threads > 0) set_num_threads(static_cast<int>(s.threads));
  if (!cifar10_present(s.data) && !s.download) {
    std::cerr << "cifar10_train: " << cifar10_missing_message(s.data) << "\n";
    return 2;
  }
  const AlexNetConfig config = config_of(s);  // bounded, before anything is built
  Objective<float> objective = objective_of(s);
  if (!s.resume.empty()) check_resume(s, resume, config);
  if (!cifar10_present(s.data)) download_cifar10(s.data);
  prepare_output_folder(s.out);
  return fit(s, table, s.resume.empty() ? nullptr : &resume, config, objective);
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  cli::OptionTable table = options_of(settings);
  try {
    const auto positional = table.parse(argc, argv);
    if (settings.help) {
      table.print_usage(std::cout);
      return 0;
    }
    if (!positional.empty()) throw std::invalid_argument("unexpected argument " + positional[0]);
    return train(settings, table);
  } catch (const std::exception& e) {
    std::cerr << "cifar10_train: " << e.what() << "\n";
    return 1;
  }
}
