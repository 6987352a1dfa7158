// Trains AlexNet on CIFAR-10: the command line over the library's Trainer (see --help). Writes to the output
// folder: metrics.csv, timing.csv, curves.png, last.ckpt (to resume), best.ckpt (best validation accuracy) and
// report.txt (best.ckpt on the test set). Ctrl-C stops after the current batch, saves last.ckpt and says how
// to resume.
#include <convnet/convnet.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "cli.hpp"

namespace {

using namespace convnet;
Trainer<float>* running = nullptr;  // what Ctrl-C stops
extern "C" void on_sigint(int) { if (running) running->request_stop(); }

// Every setting with its default; options_of() declares each as an option once (parsing, --help, the record).
struct Settings {
  std::string data = std::getenv("CIFAR10_DIR") ? std::getenv("CIFAR10_DIR") : "data/cifar-10-batches-bin";
  std::string out = "runs/cifar10", resume, config = "cifar-half", init = "he", optimizer = "sgd";
  std::string schedule = "onecycle", augment = "crop,flip", loss = "cross-entropy", loss_weights;
  double width = 1, lr = 0.05, weight_decay = 5e-4, momentum = 0.9, val_fraction = 0.1, hinge_margin = 1;
  double triplet_margin = 1;
  long classes = 10, epochs = 16, batch_size = 128, patience = 0, threads = 0, workers = 1, seed = 1;
  long max_batches = 0, save_every = 0, progress_every = 0;
  bool no_nesterov = false, download = false, help = false;
};

cli::OptionTable options_of(Settings& s) {
  const auto R = cli::Recorded;
  return cli::OptionTable(
      "usage: cifar10_train [options]\n\nTrains AlexNet on CIFAR-10 (binary version). The defaults are the recipe\n"
      "that reaches 80% test accuracy in under 45 minutes on two CPU cores.\n",
      {{"data and output",
        {{"--data", "DIR", "CIFAR-10 folder (default $CIFAR10_DIR, else data/cifar-10-batches-bin)", &s.data},
         {"--download", "", "fetch CIFAR-10 into --data (curl, MD5 checked) if it is missing", &s.download},
         {"--out", "DIR", "output folder", &s.out},
         {"--resume", "CKPT", "continue a run (its settings come from the checkpoint)", &s.resume}}},
       {"network",
        {{"--config", "NAME", "cifar-half, cifar, or paper (227x227 inputs, pictures upscaled)", &s.config, R},
         {"--width", "W", "width multiplier on the configuration", &s.width, R},
         {"--classes", "N", "output classes", &s.classes, R},
         {"--init", "he|paper", "He initialisation or the paper's N(0, 0.01)", &s.init, R}}},
       {"training",
        {{"--epochs", "N", "epochs to train", &s.epochs, R},
         {"--batch-size", "N", "pictures per step", &s.batch_size, R},
         {"--optimizer", "sgd|adam", "sgd: Nesterov momentum", &s.optimizer, R},
         {"--lr", "LR", "peak learning rate (about 1e-3 for adam, 0.01 for the hinge losses)", &s.lr, R},
         {"--schedule", "NAME", "onecycle, cosine, step (x0.1 each third), plateau (x0.1), constant", &s.schedule, R},
         {"--weight-decay", "WD", "L2 on weights (biases are not decayed)", &s.weight_decay, R},
         {"--momentum", "M", "one-cycle swings it 0.05 either side, as PyTorch does", &s.momentum, R},
         {"--no-nesterov", "", "plain momentum", &s.no_nesterov, R},
         {"--loss", "NAME", "cross-entropy, hinge, squared-hinge, cosine, or sums (cross-entropy+triplet)", &s.loss, R},
         {"--loss-weights", "LIST", "a weight per term of --loss, comma-separated (default all 1)", &s.loss_weights, R},
         {"--hinge-margin", "M", "margin of hinge and squared-hinge", &s.hinge_margin, R},
         {"--triplet-margin", "M", "margin of the triplet loss (batch-hard, on fc7)", &s.triplet_margin, R},
         {"--augment", "LIST", "comma-separated: crop (pad 4), flip, pca; or none", &s.augment, R},
         {"--val-fraction", "F", "training pictures held out for validation", &s.val_fraction, R},
         {"--patience", "N", "stop after N epochs without a lower validation loss (0: never)", &s.patience, R},
         {"--seed", "N", "weights, data order, augmentation and dropout", &s.seed, R},
         {"--max-batches", "N", "stop each epoch and each evaluation after N batches (0: all)", &s.max_batches, R}}},
       {"running",
        {{"--threads", "N", "compute threads (0: all cores)", &s.threads},
         {"--workers", "N", "data-loading threads", &s.workers},
         {"--save-every", "N", "also write last.ckpt every N batches (0: at epoch ends only)", &s.save_every},
         {"--progress-every", "N", "without a terminal, progress every N batches (0: each 30 s)", &s.progress_every},
         {"--help", "", "this text", &s.help}}}});
}

// The best checkpoint on the test set, through the same Classifier the predictor uses.
void write_test_report(std::ostream& out, const Trainer<float>& trainer, const AlexNetConfig& config,
                       const std::string& loss, const Dataset& test, std::optional<Index> max_batches) {
  double best = 0, seconds = 0;
  for (const auto& e : trainer.history()) best = std::max(best, e.val_accuracy), seconds += e.seconds;
  out << std::fixed << std::setprecision(2) << "AlexNet '" << config.name() << "' (" << config.str()
      << ")\nbest checkpoint: " << trainer.best_path() << " (validation accuracy " << 100 * best << "%)\nepochs: "
      << trainer.history().size() << ", training time " << format_hms(seconds) << "\nloss: " << loss << "\n";
  const auto pictures = max_batches ? std::optional<Index>(*max_batches * 256) : std::nullopt;  // as validation
  print_report(out, Classifier::load(trainer.best_path()).evaluate(test, false, pictures));
}

AlexNetConfig config_of(const Settings& s) {
  if (s.init != "he" && s.init != "paper") throw std::invalid_argument("--init must be he or paper, got " + s.init);
  AlexNetConfig config = AlexNetConfig::named(s.config).classes(s.classes);
  config.width(config.width() * s.width);  // a multiplier on the configuration's own (cifar-half: 0.5)
  config.init(s.init == "he" ? AlexNetInit::He : AlexNetInit::Paper);
  return config;
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
int fit(const Settings& s, const cli::OptionTable& table, const Checkpoint* resume) {
  const AlexNetConfig config = config_of(s);
  Objective<float> objective = objective_of(s);
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
  running = &trainer;
  std::signal(SIGINT, on_sigint);
  const FitResult result = trainer.fit(train_loader, &val_loader);
  running = nullptr;
  if (result.outcome == FitOutcome::StopRequested) {
    std::cout << "resume with: cifar10_train --resume " << result.last_checkpoint << "\n";
    return 130;
  }
  std::ostringstream report;
  write_test_report(report, trainer, config, objective.describe(), data.test, options.max_batches());
  std::ofstream((std::filesystem::path(s.out) / "report.txt").string()) << report.str();
  std::cout << "\n" << report.str() << "\nwrote " << s.out
            << "/{metrics.csv, timing.csv, curves.png, last.ckpt, best.ckpt, report.txt}\n";
  return 0;
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
  if (!cifar10_present(s.data)) download_cifar10(s.data);
  prepare_output_folder(s.out);
  return fit(s, table, s.resume.empty() ? nullptr : &resume);
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
