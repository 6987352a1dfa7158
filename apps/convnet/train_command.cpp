// convnet train: the command line over the library's TrainingData, Preparation, Trainer and
// Classifier (the settings and their table are cli/train_settings.hpp, the final report
// train/report.hpp). Built with MPI and started by mpirun (mpirun -np 2 convnet train --threads 1
// ...), it trains data-parallel: every rank reads the data, rank 0 prints, writes and reports.
// Writes to the output folder: metrics.csv, timing.csv, curves.png, last.ckpt (to resume), best.ckpt
// (best validation accuracy), report.txt (best.ckpt on the test set) and confusion.png (its confusion
// matrix, inference/confusion_picture.hpp). Ctrl-C stops after the
// current batch, saves last.ckpt and says how to resume.
#include <convnet/convnet.hpp>
#include <convnet/cli/train_settings.hpp>
#include <convnet/train/report.hpp>
#include <convnet/train/resume.hpp>
#ifdef CONVNET_WITH_MPI
#include <convnet/distributed/mpi.hpp>
#endif

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <unistd.h>

#include "commands.hpp"

namespace {

using namespace convnet;
using cli::TrainSettings;

const char* const kProgram = "convnet train";

// The processes training together under mpirun, or nullptr (set by main).
ProcessGroup* process_group = nullptr;
bool is_root() { return process_group == nullptr || process_group->rank() == 0; }

// Trains, then writes the test report; 130 (143) when interrupted by SIGINT (SIGTERM).
int fit(const TrainSettings& s, const cli::OptionTable& table, const Checkpoint* resume) {
  std::cout << "loading " << s.dataset << "\n";
  const auto seed = static_cast<std::uint64_t>(s.seed);
  const auto data = TrainingData::open(DatasetSpec::parse(s.dataset), cli::data_options_of(s));
  // The input's size, channels and classes; the AlexNet itself unless --recipe fast.
  const AlexNetConfig config = cli::config_for_data(s, *data);
  const bool fast = s.recipe == "fast";
  if (fast && config.input_size() != FastCifarOptions::kInputSize) {
    throw ArgumentError(detail::concat("--recipe fast trains 32 x 32 pictures; ", data->spec().str(), " gives ",
                                       config.input_size(), " x ", config.input_size()));
  }
  if (resume && !fast) require_stored_parameters(*resume, alexnet_parameter_shapes(config));
  Objective<float> objective = cli::objective_of(s);
  // Statistics once: computed on the first run, read back from the checkpoint on a resumed one.
  const Preparation prep = resume && resume->contains("data/preparation")
                               ? Preparation::loaded(*resume)
                               : Preparation::compute(data->train(), cli::preparation_of(s, config, data->spec().in_memory()));
  LoaderOptions train_options = LoaderOptions().batch_size(s.batch_size).workers(static_cast<int>(s.workers)).seed(seed);
  DataLoader train_loader(data->train(), prep.train_pipeline(), train_options.skip_unreadable(true));
  // Validation batches of 256 at 32 x 32, fewer for larger inputs (256 of the paper network's 227 x 227
  // inputs held 2 GB of activations and unfolded patches), never fewer than a training batch.
  const Index side = config.input_size(), val_batch = std::max<Index>(s.batch_size, std::min<Index>(256, 256 * 32 * 32 / (side * side)));
  DataLoader val_loader(data->validation(), prep.eval_pipeline(),
                        LoaderOptions().batch_size(val_batch).shuffle(false).workers(1).skip_unreadable(true));
  auto net = fast ? make_fast_cifar<float>(FastCifarOptions().classes(config.classes()).input_channels(config.input_channels()), seed)
                  : make_alexnet<float>(config, seed);
  const FastRecipe fast_recipe = cli::fast_recipe_of(s);
  if (fast && fast_recipe.whitening_pictures() == 0) {
    net.freeze({"whiten"}, false);  // --whiten 0: a first layer like any other, trained from its random start
  } else if (fast && !resume) {  // the whitening layer from the training pictures as the network reads them
    init_whitening_from(net, data->train(), prep.eval_pipeline(), fast_recipe.whitening_pictures());
  }
  std::string transfer;  // what --init-from and --freeze did, for the banner
  if (!s.init_from.empty() && !resume) {  // a resumed run holds every weight already
    const TransferReport r = init_from(net, Checkpoint::load(s.init_from));
    if (r.loaded.empty()) throw ArgumentError("--init-from " + s.init_from + ": no layer of this network is in it\n" + r.str());
    transfer += "initialised from " + s.init_from + "\n" + r.str();
  }
  if (!s.freeze.empty()) {
    const std::vector<std::string> frozen = layers_named(net, s.freeze);
    net.freeze(frozen);
    transfer += detail::concat("frozen: ", frozen.size(), " layers (", s.freeze, "); ", net.trainable_parameters().size(),
                               " parameter tensors train\n");
  }
  prepare_output_folder(s.out, checkpoint_bytes(net));
  net.set_input_gradient(false);  // the pictures need no gradient
  TrainerOptions options = TrainerOptions().epochs(s.epochs).checkpoint_dir(s.out);
  if (s.save_every > 0) options.save_every(s.save_every);
  if (s.patience > 0) options.patience(s.patience);
  if (s.max_batches > 0) options.max_batches(s.max_batches);
  if (s.average_weights > 0) options.average_weights(s.average_weights);
  options.precision(parse_precision(s.precision, "--precision"));
  if (!objective.reads_logits()) {  // fc8 stays untrained: validate by what the embedding classifies
    options.validate_embedding(objective.embedding_layer(), embedding_metric_of(objective));
  }
  const auto recipe = TrainingRecipe().optimizer(s.optimizer).schedule(s.schedule).lr(s.lr).momentum(s.momentum)
      .nesterov(!s.no_nesterov).weight_decay(s.weight_decay).epochs(s.epochs)
      .steps_per_epoch(std::min<Index>(options.max_batches().value_or(1L << 40), train_loader.batches_per_epoch()));
  auto optimizer = make_optimizer(recipe, net.trainable_parameters());  // frozen layers are not its to change
  std::unique_ptr<LrSchedule> schedule;
  if (fast) {  // the recipe's own triangle and bias rates, and its lookahead
    const std::int64_t steps = recipe.epochs() * recipe.steps_per_epoch();
    schedule = std::make_unique<LinearLR>(fast_recipe.schedule(steps));
    scale_batch_norm_biases(*optimizer, net, fast_recipe);
    if (fast_recipe.lookahead()) options.lookahead(fast_recipe.lookahead_options(steps));
  } else {
    schedule = make_schedule(recipe);
  }
  Trainer<float> trainer(net, objective, *optimizer, schedule.get(), options);
  CheckpointNotes notes;  // what the predictor and a resumed run need
  // An AlexNet is rebuilt from its configuration line, any other network from its structure.
  if (!fast) notes.text("config", config.str());
  notes.text("trainer/options", table.record()).text("trainer/loss", objective.describe())
      .writer([&prep](Checkpoint& c) { prep.save(c); })
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
  if (process_group) trainer.distribute(*process_group);
  if (resume) trainer.load(*resume);
  const std::string parallel =
      process_group ? detail::concat(process_group->size(), " processes (data-parallel, MPI) x ") : "";
  const std::string network = fast ? std::string("the fast CIFAR network (docs/fast.md)") : "AlexNet '" + config.name() + "'";
  std::cout << network << ": " << net.parameter_count() << " parameters, input "
            << config.input_channels() << "x" << config.input_size() << "x" << config.input_size() << "; "
            << data->describe() << "; " << parallel << num_threads() << " threads\nkernels: " << cpu_features().describe()
            << "; products " << describe_precision(net.precision()) << "\nrecipe: " << optimizer->describe() << ", "
            << schedule->describe() << ", batch " << s.batch_size << ", weight decay " << s.weight_decay
            << "\npictures: " << prep.describe() << "\nloss: " << objective.describe() << "\n" << transfer;
  StopSignals signals;
  trainer.stop_on(signals.flag());
  if (process_group) {  // a rank that stops answering, or a signal the others cannot answer, ends the job
    process_group->set_watch(CollectiveWatch().timeout_seconds(s.collective_timeout).stop_flag(&signals.flag())
                                 .exit_status(&StopSignals::last_exit_status));
  }
  const FitResult result = trainer.fit(train_loader, &val_loader);
  if (const Index skipped = train_loader.skipped() + val_loader.skipped()) {
    std::cout << "skipped " << skipped << " unreadable pictures during training (the first: "
              << (train_loader.skipped() ? train_loader : val_loader).first_skip_reason() << ")\n";
  }
  auto interrupted = [&](const char* what) {
    std::cout << "\n" << what << "; resume with: " << kProgram << " --resume " << trainer.last_path()
              << (s.out == std::filesystem::path(trainer.last_path()).parent_path().string() ? "" : " --out " + s.out)
              << "\n";
    return signals.exit_status();
  };
  if (result.outcome == FitOutcome::StopRequested) return interrupted("stopped");
  if (!is_root()) return 0;  // the report is rank 0's
  // The report reads best.ckpt into a network of its own: the training batch's activations and
  // their gradients (1.2 GB for the fast recipe at batch 512) go back first, or the two would add up.
  net.release_buffers();
  std::ostringstream report;
  const auto full = write_test_report(report, trainer, fast ? network : network + " (" + config.str() + ")",
                                      cli::eval_views_of(s), objective, *data, options.max_batches(), signals.flag(),
                                      !fast);  // the fast recipe's report is its test views alone
  if (signals.received()) return interrupted("stopped during the test report (training is complete)");
  if (const auto error = write_file_atomically((std::filesystem::path(s.out) / "report.txt").string(), report.str())) {
    throw DataError("cannot write " + error->file + ": " + error->reason);
  }
  if (full) draw_confusion(full->confusion, full->class_names).canvas.save_png((std::filesystem::path(s.out) / "confusion.png").string());
  std::cout << "\n" << report.str() << "\nwrote " << s.out
            << "/{metrics.csv, timing.csv, curves.png, last.ckpt, best.ckpt, report.txt" << (full ? ", confusion.png" : "") << "}\n";
  if (const auto peak = peak_memory_bytes()) std::cout << "peak memory: " << (*peak + (1 << 19)) / (1 << 20) << " MiB\n";
  return 0;
}

int train(TrainSettings& s, cli::OptionTable& table) {
  Checkpoint resume;
  if (!s.resume.empty()) {
    resume = Checkpoint::load(s.resume);
    // The data may have moved since: a --dataset (or --data) given now names where it is, of the kind recorded.
    const std::string given = table.given("--dataset") ? s.dataset : table.given("--data") ? "cifar10:" + s.data : "";
    table.restore(resume.text("trainer/options"));
    if (!given.empty() && !s.dataset.empty()) {
      const std::string recorded = DatasetSpec::parse(s.dataset).kind, now = DatasetSpec::parse(given).kind;
      if (recorded != now) throw ArgumentError("cannot resume a run on " + recorded + " data with " + given);
    }
    if (!given.empty()) s.dataset = given;
    if (!table.given("--out")) s.out = std::filesystem::path(s.resume).parent_path().string();
    if (s.out.empty()) s.out = ".";
  }
  if (s.threads > 0) set_num_threads(static_cast<int>(s.threads));
  if (s.resume.empty()) cli::apply_recipe(s, table);
  cli::resolve_kind_defaults(s);
  if (!table.given("--lr") && s.resume.empty()) {
    if (s.optimizer == "adam") s.lr = 1e-3;  // adam's usual rate
    // The 227 x 227 networks diverge at the small networks' 0.05 (the paper network's loss passed 1e12
    // by step 5 of a one-cycle run): the paper's rate.
    else if (s.config == "paper" || s.config == "torchvision") s.lr = 0.01;
  }
  const DatasetSpec spec = DatasetSpec::parse(s.dataset);
  if (!table.given("--out") && s.resume.empty()) s.out = "runs/" + spec.kind;
  if (spec.kind == "cifar10" && !cifar10_present(spec.dir) && !s.download) {
    std::cerr << kProgram << ": " << cifar10_missing_message(spec.dir) << "\n";
    return 2;
  }
  // The flags' bounds and, resuming, the stored parameters against the configuration, before any data
  // is read (for a folder, whose pictures are not known yet, checked again once it is open).
  const AlexNetConfig config = cli::config_before_data(s);
  cli::objective_of(s);
  // One run per output folder (rank 0 writes it): taken before anything is written there, held to the end.
  std::optional<OutputFolderLock> lock;
  if (is_root()) {
    lock.emplace(s.out);
    if (const int removed = remove_stale_temporaries(s.out)) {
      std::cout << "removed " << removed << " temporary files an interrupted run left in " << s.out << "\n";
    }
  }
  if (!s.resume.empty()) {
    if (spec.info().shape_known() && s.recipe != "fast") require_stored_parameters(resume, alexnet_parameter_shapes(config));
    if (is_root()) {
      const BestCheckpointCheck best = ensure_best_checkpoint(s.out, s.resume, resume);
      if (!best.note.empty()) std::cout << best.note << "\n";
    }
  }
  // Downloads and copies are rank 0's; the others wait for them at a barrier.
  if (is_root() && spec.kind == "cifar10" && !cifar10_present(spec.dir)) download_cifar10(spec.dir);
  if (process_group) {
    process_group->set_watch(CollectiveWatch().timeout_seconds(s.collective_timeout));
    process_group->all_equal(0);
  }
  prepare_output_folder(s.out);
  return fit(s, table, s.resume.empty() ? nullptr : &resume);
}

}  // namespace

// For the tests that kill a run at every write of an epoch's end (tests/test_processes.cpp):
// CONVNET_TEST_WRITE_EVENTS=1 prints each stage of each atomic write to stderr ("write-event
// best.ckpt written"), CONVNET_TEST_KILL_AT=FILE:STAGE:N kills the program (SIGKILL: no clean-up) at
// the N-th such event of FILE. Unset, nothing is observed.
void observe_writes_for_tests() {
  const char* log = std::getenv("CONVNET_TEST_WRITE_EVENTS");
  const char* kill_at = std::getenv("CONVNET_TEST_KILL_AT");
  if ((log == nullptr || *log == '\0') && (kill_at == nullptr || *kill_at == '\0')) return;
  const std::string spec = kill_at ? kill_at : "";
  const auto colon = spec.find(':'), second = spec.rfind(':');
  const std::string file = spec.substr(0, colon);
  const std::string stage = colon == std::string::npos ? "" : spec.substr(colon + 1, second - colon - 1);
  const long n = second == std::string::npos || second == colon ? 0 : std::atol(spec.c_str() + second + 1);
  atomic_write_observer() = [=, seen = 0L](AtomicWriteStage s, const std::string& path) mutable {
    const std::string name = std::filesystem::path(path).filename().string();
    const char* what = s == AtomicWriteStage::Written ? "written" : "renamed";
    if (log != nullptr && *log != '\0') std::cerr << "write-event " << name << " " << what << std::endl;
    if (name == file && stage == what && ++seen == n) ::raise(SIGKILL);
  };
}

// The whole command: parse, train, report; errors as "convnet train: message" and exit status 1.
int train_command(int argc, char** argv) {
  observe_writes_for_tests();
#ifdef CONVNET_WITH_MPI
  mpi::World world(argc, argv);  // MPI only when started by mpirun
  process_group = world.group();
  if (world.rank() != 0) std::cout.rdbuf(nullptr);  // one rank speaks; errors still reach stderr
  const std::string rank = world.size() > 1 ? detail::concat("rank ", world.rank(), " of ", world.size(), ": ") : "";
#else
  const std::string rank;
#endif
  TrainSettings settings;
  cli::OptionTable table = cli::train_options_of(settings, kProgram);
  try {
    const auto positional = table.parse(argc, argv);
    if (settings.help) {
      table.print_usage(std::cout);
      return 0;
    }
    if (settings.list) {
      cli::print_train_choices(std::cout);
      return 0;
    }
    if (!positional.empty()) throw ArgumentError("unexpected argument " + positional[0]);
    return train(settings, table);
  } catch (const CollectiveStopped& e) {  // a signal while the other ranks did not come
    std::cerr << kProgram << ": " << rank << e.what() << std::endl;
#ifdef CONVNET_WITH_MPI
    world.abort_job(e.exit_status());
#endif
    return e.exit_status();
  } catch (const std::exception& e) {
    std::cerr << kProgram << ": " << rank << e.what() << std::endl;
#ifdef CONVNET_WITH_MPI
    world.abort_job();  // the other ranks may be waiting for this one
#endif
    return 1;
  }
}

