// Trains AlexNet on CIFAR-10.
//
//   cifar10_train [--data DIR] [--config cifar-half] [--epochs N] ... (see --help)
//
// Writes to the output folder: metrics.csv (one row per epoch; timing.csv
// holds the wall-clock seconds), curves.png
// (loss and accuracy, train and validation, against epochs), last.ckpt (to
// resume), best.ckpt (best validation accuracy) and report.txt (test top-1,
// top-5, per-class accuracy, confusion matrix). Ctrl-C stops after the
// current batch, saves last.ckpt and prints the command that resumes.
#include <convnet/convnet.hpp>

#include <atomic>
#include <cmath>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "cli.hpp"

namespace {

using namespace convnet;
namespace fs = std::filesystem;

std::atomic<bool> interrupted{false};
extern "C" void on_sigint(int) { interrupted = true; }

const char* kCifarUrl = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
const char* kCifarMd5 = "c32a1d4ab5d03f1284b67883e8d87530";

// Every setting of a run. Saved in checkpoints as "key=value" lines so --resume continues the same run.
struct Options {
  std::string data, config = "cifar-half", optimizer = "sgd", schedule = "onecycle", init = "he", augment = "crop,flip";
  std::string out = "runs/cifar10", loss = "cross-entropy", loss_weights;
  double width = 0, lr = 0.05, weight_decay = 5e-4, momentum = 0.9, val_fraction = 0.1;
  double hinge_margin = 1, triplet_margin = 1;
  long classes = 0, epochs = 16, batch_size = 128, patience = 0, threads = 0, workers = 1, seed = 1, max_batches = 0;
  long save_every = 0, progress_every = 0;
  bool nesterov = true;

  std::string serialize() const {
    std::ostringstream o;
    o.precision(17);
    o << "config=" << config << "\noptimizer=" << optimizer << "\nschedule=" << schedule << "\ninit=" << init
      << "\naugment=" << augment << "\nwidth=" << width << "\nlr=" << lr << "\nweight_decay=" << weight_decay
      << "\nmomentum=" << momentum << "\nval_fraction=" << val_fraction << "\nclasses=" << classes
      << "\nepochs=" << epochs << "\nbatch_size=" << batch_size << "\npatience=" << patience << "\nseed=" << seed
      << "\nmax_batches=" << max_batches << "\nnesterov=" << nesterov << "\nloss=" << loss
      << "\nloss_weights=" << loss_weights << "\nhinge_margin=" << hinge_margin
      << "\ntriplet_margin=" << triplet_margin << "\n";
    return o.str();
  }
  void deserialize(const std::string& text) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      const auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
      if (k == "config") config = v;
      else if (k == "optimizer") optimizer = v;
      else if (k == "schedule") schedule = v;
      else if (k == "init") init = v;
      else if (k == "augment") augment = v;
      else if (k == "width") width = std::stod(v);
      else if (k == "lr") lr = std::stod(v);
      else if (k == "weight_decay") weight_decay = std::stod(v);
      else if (k == "momentum") momentum = std::stod(v);
      else if (k == "val_fraction") val_fraction = std::stod(v);
      else if (k == "classes") classes = std::stol(v);
      else if (k == "epochs") epochs = std::stol(v);
      else if (k == "batch_size") batch_size = std::stol(v);
      else if (k == "patience") patience = std::stol(v);
      else if (k == "seed") seed = std::stol(v);
      else if (k == "max_batches") max_batches = std::stol(v);
      else if (k == "nesterov") nesterov = v == "1";
      else if (k == "loss") loss = v;
      else if (k == "loss_weights") loss_weights = v;
      else if (k == "hinge_margin") hinge_margin = std::stod(v);
      else if (k == "triplet_margin") triplet_margin = std::stod(v);
    }
  }
  bool augments(const std::string& what) const {
    std::istringstream in(augment);
    for (std::string part; std::getline(in, part, ',');) {
      if (part == what) return true;
    }
    return false;
  }
};

void usage(std::ostream& out) {
  out << R"(usage: cifar10_train [options]

Trains AlexNet on CIFAR-10 (binary version). The defaults are the recipe that
reaches 80% test accuracy in under 45 minutes on two CPU cores.

data and output
  --data DIR            CIFAR-10 folder (default $CIFAR10_DIR, else data/cifar-10-batches-bin)
  --download            fetch CIFAR-10 into --data with curl and verify its MD5 if it is missing
  --out DIR             output folder (default runs/cifar10)
  --resume CHECKPOINT   continue an interrupted run (its settings come from the checkpoint)
network
  --config NAME         cifar-half (default), cifar, or paper (227x227 inputs, images upscaled)
  --width W             width multiplier on the configuration (default 1)
  --classes N           output classes (default 10)
  --init he|paper       He initialisation (default) or the paper's N(0, 0.01)
training
  --epochs N            (default 16)
  --batch-size N        (default 128)
  --optimizer sgd|adam  (default sgd: Nesterov momentum 0.9)
  --lr LR               peak learning rate (default 0.05 for sgd; use about 1e-3 for adam)
  --schedule NAME       onecycle (default), cosine, step (x0.1 every third of the run), plateau (x0.1), constant
  --weight-decay WD     (default 5e-4; biases are not decayed)
  --momentum M          (default 0.9; one-cycle swings it from M+0.05 down to M-0.05 and back, as PyTorch does)
  --loss NAME           cross-entropy (default), hinge, squared-hinge, cosine, or a sum such as
                        cross-entropy+hinge or cross-entropy+triplet (triplet: batch-hard, on fc7 after its ReLU)
                        (the hinge losses need a lower --lr: they diverge at 0.05; 0.01 works)
  --loss-weights LIST   one weight per term of --loss, comma-separated (default all 1; cross-entropy+triplet
                        collapses at 1,1 and trains at 1,0.1)
  --hinge-margin M      margin of hinge and squared-hinge (default 1)
  --triplet-margin M    margin of the triplet loss (default 1)
  --no-nesterov         plain momentum
  --augment LIST        comma-separated: crop (pad 4), flip, pca; or none (default crop,flip)
  --val-fraction F      training images held out for validation (default 0.1)
  --patience N          stop when the validation loss has not improved for N epochs (default 0 = never)
  --threads N           compute threads (default: all cores)
  --workers N           data-loading threads (default 1)
  --seed N              (default 1)
  --max-batches N       stop each epoch, and each evaluation, after N batches (smoke tests, timing)
  --save-every N        also write last.ckpt every N batches inside an epoch (long epochs; default 0 = at
                        epoch ends only)
  --progress-every N    without a terminal, print a progress line every N batches (default 0 = every 30 s)
)";
}

std::string default_data_dir() {
  if (const char* env = std::getenv("CIFAR10_DIR")) return env;
  return "data/cifar-10-batches-bin";
}

bool cifar_present(const std::string& dir) {
  return fs::exists(fs::path(dir) / "test_batch.bin") && fs::exists(fs::path(dir) / "data_batch_1.bin") &&
         fs::exists(fs::path(dir) / "batches.meta.txt");
}

// Fetches the official tarball with curl, checks its MD5 and unpacks it next to `dir`.
void download_cifar(const std::string& dir) {
  const fs::path target(dir);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  fs::create_directories(parent);
  const std::string tarball = (parent / "cifar-10-binary.tar.gz").string();
  std::cout << "downloading " << kCifarUrl << " to " << tarball << "\n";
  if (std::system(("curl -fL --retry 3 -o '" + tarball + "' '" + kCifarUrl + "'").c_str()) != 0) {
    throw std::runtime_error("download failed (curl); fetch " + std::string(kCifarUrl) + " by hand");
  }
  if (std::system(("echo '" + std::string(kCifarMd5) + "  " + tarball + "' | md5sum -c --quiet -").c_str()) != 0) {
    throw std::runtime_error(tarball + " does not have the expected MD5 " + kCifarMd5);
  }
  if (std::system(("tar -xzf '" + tarball + "' -C '" + parent.string() + "'").c_str()) != 0) {
    throw std::runtime_error("cannot unpack " + tarball);
  }
  const fs::path unpacked = parent / "cifar-10-batches-bin";
  if (fs::absolute(unpacked) != fs::absolute(target)) fs::rename(unpacked, target);
}

// The output folder must be writable, with room for the checkpoints, before
// an hour of training, not after.
void check_output_folder(const std::string& out) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw std::runtime_error("cannot create output folder " + out + ": " + ec.message());
  const fs::path probe = fs::path(out) / ".write-test";
  {
    std::ofstream f(probe);
    f << "ok";
    if (!f.flush()) throw std::runtime_error("output folder " + out + " is not writable");
  }
  fs::remove(probe, ec);
}

// last.ckpt, its temporary copy while it is rewritten, and best.ckpt: parameters
// plus up to two optimizer buffers each (Adam), in float.
void check_free_space(const std::string& out, Index parameters) {
  const std::uintmax_t needed = static_cast<std::uintmax_t>(parameters) * 4 * 3 * 3 + (4u << 20);
  std::error_code ec;
  const fs::space_info space = fs::space(out, ec);
  if (!ec && space.available < needed) {
    throw std::runtime_error(detail::concat("output folder ", out, " has ", space.available >> 20,
                                            " MiB free; the checkpoints of this network need about ", needed >> 20,
                                            " MiB"));
  }
}

// The training objective of --loss, --loss-weights and the margins.
Objective<float> make_objective_from(const Options& o) {
  std::vector<double> weights;
  std::istringstream in(o.loss_weights);
  for (std::string part; std::getline(in, part, ',');) {
    try {
      std::size_t used = 0;
      weights.push_back(std::stod(part, &used));
      if (used != part.size()) throw std::invalid_argument(part);
    } catch (const std::exception&) {
      throw std::invalid_argument("--loss-weights takes numbers separated by commas, got '" + o.loss_weights + "'");
    }
  }
  Objective<float> objective = make_objective<float>(
      o.loss, weights, ObjectiveOptions().hinge_margin(o.hinge_margin).triplet_margin(o.triplet_margin));
  if (!objective.reads_logits()) {
    throw std::invalid_argument("--loss " + o.loss + " trains only the fc7 embedding, so fc8 (the classifier) would "
                                "never learn; combine it with a loss on the logits, such as cross-entropy+" + o.loss);
  }
  return objective;
}

std::unique_ptr<Optimizer<float>> make_optimizer(const Options& o, Sequential<float>& net) {
  if (o.optimizer == "sgd") {
    return std::make_unique<Sgd<float>>(
        net.parameters(), SgdOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay).nesterov(o.nesterov));
  }
  if (o.optimizer == "adam") {
    return std::make_unique<Adam<float>>(net.parameters(), AdamOptions(o.lr).weight_decay(o.weight_decay));
  }
  throw std::invalid_argument("--optimizer must be sgd or adam, got '" + o.optimizer + "'");
}

std::unique_ptr<LrSchedule> make_schedule(const Options& o, Index steps_per_epoch) {
  const Index total = std::max<Index>(2, o.epochs * steps_per_epoch);
  // One-cycle swings momentum 0.05 either side of --momentum (0.95 -> 0.85 -> 0.95 at the default, as PyTorch).
  if (o.schedule == "onecycle") {
    return std::make_unique<OneCycleLR>(o.lr, total, 0.25, 25, 1e4, std::max(0.0, o.momentum - 0.05),
                                        std::min(0.999, o.momentum + 0.05));
  }
  if (o.schedule == "cosine") return std::make_unique<CosineLR>(o.lr, total);
  if (o.schedule == "step") return std::make_unique<StepLR>(o.lr, std::max<long>(1, o.epochs / 3), 0.1);
  if (o.schedule == "plateau") return std::make_unique<ReduceOnPlateau>(o.lr, 0.1, 1, 1e-3, 3);
  if (o.schedule == "constant") return std::make_unique<ConstantLR>(o.lr);
  throw std::invalid_argument("--schedule must be onecycle, cosine, step, plateau or constant, got '" + o.schedule + "'");
}

std::string hms(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

std::vector<double> flatten_history(const std::vector<EpochRecord>& h) {
  std::vector<double> v;
  for (const auto& r : h) {
    v.insert(v.end(), {static_cast<double>(r.epoch), r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy,
                       r.learning_rate, r.seconds});
  }
  return v;
}
// A count stored as a double in a checkpoint: refused unless it is a whole number in range.
long whole(double v, const char* what) {
  if (!(v >= 0 && v <= 1e15) || v != std::floor(v)) {
    throw std::runtime_error(std::string("checkpoint: ") + what + " is not a whole number >= 0");
  }
  return static_cast<long>(v);
}

std::vector<EpochRecord> unflatten_history(const std::vector<double>& v) {
  std::vector<EpochRecord> h;
  for (std::size_t i = 0; i + 7 <= v.size(); i += 7) {
    whole(v[i], "trainer/history epoch");
    h.push_back({static_cast<int>(v[i]), v[i + 1], v[i + 2], v[i + 3], v[i + 4], v[i + 5], v[i + 6]});
  }
  return h;
}

// metrics.csv holds only what the seed and thread count decide, so two runs of
// the same settings give identical files; wall-clock times go to timing.csv.
void write_metrics_csv(const std::string& folder, const std::vector<EpochRecord>& history) {
  const std::string metrics_path = (fs::path(folder) / "metrics.csv").string();
  const std::string timing_path = (fs::path(folder) / "timing.csv").string();
  std::ofstream metrics(metrics_path), timing(timing_path);
  metrics << "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate\n" << std::setprecision(9);
  timing << "epoch,seconds\n" << std::setprecision(6);
  for (const auto& r : history) {
    metrics << r.epoch << "," << r.train_loss << "," << r.train_accuracy << "," << r.val_loss << "," << r.val_accuracy
            << "," << r.learning_rate << "\n";
    timing << r.epoch << "," << r.seconds << "\n";
  }
  if (!metrics.flush()) throw std::runtime_error("cannot write " + metrics_path);
  if (!timing.flush()) throw std::runtime_error("cannot write " + timing_path);
}

int run(const cli::Args& args) {
  Options o;
  Checkpoint resume;
  const bool resuming = args.has("--resume");
  if (resuming) {
    resume = Checkpoint::load(args.str("--resume", ""));
    o.deserialize(resume.text("trainer/options"));
    o.out = fs::path(args.str("--resume", "")).parent_path().string();
    if (o.out.empty()) o.out = ".";
  }
  // Settings (a resumed run keeps its own, except where it runs and with how many threads).
  o.data = args.str("--data", default_data_dir());
  o.out = args.str("--out", o.out);
  o.threads = args.integer("--threads", 0);
  o.workers = args.integer("--workers", 1);
  o.save_every = args.integer("--save-every", 0);
  o.progress_every = args.integer("--progress-every", 0);
  if (!resuming) {
    o.config = args.str("--config", o.config);
    o.width = args.real("--width", o.width);
    o.classes = args.integer("--classes", o.classes);
    o.init = args.str("--init", o.init);
    o.epochs = args.integer("--epochs", o.epochs);
    o.batch_size = args.integer("--batch-size", o.batch_size);
    o.optimizer = args.str("--optimizer", o.optimizer);
    o.lr = args.real("--lr", o.optimizer == "adam" && !args.has("--lr") ? 1e-3 : o.lr);
    o.schedule = args.str("--schedule", o.schedule);
    o.weight_decay = args.real("--weight-decay", o.weight_decay);
    o.momentum = args.real("--momentum", o.momentum);
    o.nesterov = !args.has("--no-nesterov");
    o.augment = args.str("--augment", o.augment);
    o.val_fraction = args.real("--val-fraction", o.val_fraction);
    o.patience = args.integer("--patience", o.patience);
    o.seed = args.integer("--seed", o.seed);
    o.max_batches = args.integer("--max-batches", o.max_batches);
    o.loss = args.str("--loss", o.loss);
    o.loss_weights = args.str("--loss-weights", o.loss_weights);
    o.hinge_margin = args.real("--hinge-margin", o.hinge_margin);
    o.triplet_margin = args.real("--triplet-margin", o.triplet_margin);
  }
  Objective<float> objective = make_objective_from(o);
  if (o.epochs < 1) throw std::invalid_argument("--epochs must be >= 1");
  if (o.batch_size < 1) throw std::invalid_argument("--batch-size must be >= 1");
  if (o.init != "he" && o.init != "paper") throw std::invalid_argument("--init must be he or paper");
  {
    std::istringstream in(o.augment);
    for (std::string part; std::getline(in, part, ',');) {
      if (part != "crop" && part != "flip" && part != "pca" && part != "none") {
        throw std::invalid_argument("--augment takes crop, flip, pca or none, got '" + part + "'");
      }
    }
  }
  if (o.threads > 0) set_num_threads(static_cast<int>(o.threads));

  // Data.
  if (!cifar_present(o.data)) {
    if (args.has("--download")) {
      download_cifar(o.data);
    } else {
      std::cerr << "cifar10_train: no CIFAR-10 in " << o.data << "\n"
                << "  Get the binary version: " << kCifarUrl << " (MD5 " << kCifarMd5 << "),\n"
                << "  unpack it and pass --data path/to/cifar-10-batches-bin (or set CIFAR10_DIR),\n"
                << "  or add --download to fetch it into " << o.data << ".\n";
      return 2;
    }
  }
  check_output_folder(o.out);

  AlexNetConfig config = AlexNetConfig::named(o.config);
  if (o.width > 0) config.width *= o.width;
  if (o.classes > 0) config.classes = o.classes;
  config.init = o.init == "he" ? AlexNetInit::He : AlexNetInit::Paper;
  const bool upscale = config.input_size != 32;

  std::cout << "loading CIFAR-10 from " << o.data << "\n";
  const Cifar10Dataset train_all(o.data, Cifar10Part::Train);
  const Cifar10Dataset test_set(o.data, Cifar10Part::Test);
  const Split split = stratified_split(train_all, o.val_fraction, static_cast<std::uint64_t>(o.seed));
  const SubsetDataset train_set(train_all, split.train);
  const SubsetDataset val_set(train_all, split.validation.empty() ? split.train : split.validation);
  const ChannelStats stats = compute_channel_stats(train_set);

  Pipeline train_pipeline, eval_pipeline;
  if (upscale) {
    train_pipeline.add<Resize>(Resize::exact(config.input_size, config.input_size));
    eval_pipeline.add<Resize>(Resize::exact(config.input_size, config.input_size));
  }
  const Index side = config.input_size;
  if (o.augments("crop")) train_pipeline.add<RandomCrop>(side, side, side / 8);
  if (o.augments("flip")) train_pipeline.add<RandomHorizontalFlip>();
  if (o.augments("pca")) train_pipeline.add<PcaColorAugmentation>(compute_rgb_pca(train_set));
  train_pipeline.add<Normalize>(stats);
  eval_pipeline.add<Normalize>(stats);

  const int threads = num_threads();
  DataLoader train_loader(train_set, train_pipeline,
                          LoaderOptions().batch_size(o.batch_size).workers(static_cast<int>(o.workers)).seed(
                              static_cast<std::uint64_t>(o.seed)));
  DataLoader val_loader(val_set, eval_pipeline, LoaderOptions().batch_size(256).shuffle(false).workers(1));
  DataLoader test_loader(test_set, eval_pipeline, LoaderOptions().batch_size(256).shuffle(false).workers(1));
  const Index batches = o.max_batches > 0 ? std::min<Index>(o.max_batches, train_loader.batches_per_epoch())
                                          : train_loader.batches_per_epoch();

  auto net = make_alexnet<float>(config, static_cast<std::uint64_t>(o.seed));
  check_free_space(o.out, net.parameter_count());
  net.set_input_gradient(false);  // the pictures need no gradient
  auto optimizer = make_optimizer(o, net);
  auto schedule = make_schedule(o, batches);

  // State of the run, saved in every checkpoint.
  long epoch = 0;
  Index first_batch = 0;
  double partial_loss = 0, partial_correct = 0, partial_count = 0, partial_seconds = 0;
  double best_accuracy = -1, best_val_loss = 1e300;
  long bad_epochs = 0;
  std::vector<EpochRecord> history;

  const std::string last_path = (fs::path(o.out) / "last.ckpt").string();
  const std::string best_path = (fs::path(o.out) / "best.ckpt").string();
  // `next_epoch` and `next_batch` say where a resumed run starts.
  auto save = [&](const std::string& path, long next_epoch, Index next_batch) {
    Checkpoint c;
    save_training_state(c, net, optimizer.get(), schedule.get());
    c.set_text("config", config.str());
    c.set_text("trainer/options", o.serialize());
    c.set_text("trainer/loss", objective.describe());
    c.set_u64s("trainer/position", {static_cast<std::uint64_t>(next_epoch), static_cast<std::uint64_t>(next_batch)});
    c.set_f64s("trainer/partial", {partial_loss, partial_correct, partial_count, partial_seconds});
    c.set_f64s("trainer/best", {best_accuracy, best_val_loss, static_cast<double>(bad_epochs)});
    c.set_f64s("trainer/history", flatten_history(history));
    c.set_f64s("data/mean", stats.mean);
    c.set_f64s("data/std", stats.stddev);
    std::string names;
    for (const auto& n : train_all.class_names()) names += n + "\n";
    c.set_text("data/classes", names);
    c.save(path);
  };

  if (resuming) {
    restore_training_state(resume, net, optimizer.get(), schedule.get());
    const auto position = resume.u64s("trainer/position");
    epoch = static_cast<long>(position.at(0));
    first_batch = static_cast<Index>(position.at(1));
    const auto partial = resume.f64s("trainer/partial");
    partial_loss = partial.at(0), partial_correct = partial.at(1), partial_count = partial.at(2);
    partial_seconds = partial.at(3);
    const auto best = resume.f64s("trainer/best");
    best_accuracy = best.at(0), best_val_loss = best.at(1), bad_epochs = whole(best.at(2), "trainer/best");
    history = unflatten_history(resume.f64s("trainer/history"));
    std::cout << "resuming from epoch " << epoch + 1 << ", batch " << first_batch + 1 << "\n";
  }

  std::cout << "AlexNet '" << config.name << "': " << net.parameter_count() << " parameters; "
            << train_set.size() << " training / " << val_set.size() << " validation / " << test_set.size()
            << " test images; " << threads << " threads\n"
            << "recipe: " << optimizer->type_name() << ", " << schedule->describe() << ", batch " << o.batch_size
            << ", weight decay " << o.weight_decay << ", augmentation " << train_pipeline.describe() << "\n"
            << "loss: " << objective.describe() << "\n";

  std::signal(SIGINT, on_sigint);
  const bool tty = ::isatty(STDERR_FILENO);
  for (; epoch < o.epochs; ++epoch) {
    std::cout << "epoch " << epoch + 1 << "/" << o.epochs << ": " << batches << " batches" << std::endl;
    train_loader.start_epoch(static_cast<std::uint64_t>(epoch), first_batch);
    auto epoch_start = std::chrono::steady_clock::now();
    auto last_print = epoch_start;
    Index images_this_session = 0;
    for (Index b = first_batch; b < batches; ++b) {
      const Batch* batch = train_loader.next();
      const StepResult step = train_step(net, objective, *optimizer, batch->images, batch->labels, schedule.get());
      partial_loss += step.loss * static_cast<double>(batch->count());
      partial_correct += static_cast<double>(step.correct);
      partial_count += static_cast<double>(batch->count());
      images_this_session += batch->count();
      const auto now = std::chrono::steady_clock::now();
      const double elapsed = std::chrono::duration<double>(now - epoch_start).count();
      const double rate = static_cast<double>(images_this_session) / std::max(elapsed, 1e-9);
      const bool last = b + 1 == batches;
      const double since_print = std::chrono::duration<double>(now - last_print).count();
      const bool due = tty ? since_print > 0.25
                           : (o.progress_every > 0 ? (b + 1) % o.progress_every == 0 : since_print > 30);
      if (due || last) {
        last_print = now;
        const double eta = static_cast<double>((batches - b - 1) * o.batch_size) / std::max(rate, 1e-9);
        const int width = 30, filled = static_cast<int>(width * (b + 1) / batches);
        char line[256];
        std::snprintf(line, sizeof line, "%s[%s%s] %ld/%ld  %.0f img/s  ETA %s  loss %.4f  acc %.2f%%",
                      tty ? "\r" : "  ", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                      std::string(static_cast<std::size_t>(width - filled), '.').c_str(), static_cast<long>(b + 1),
                      static_cast<long>(batches), rate, hms(eta).c_str(), partial_loss / partial_count,
                      100 * partial_correct / partial_count);
        std::cerr << line << (tty ? "" : "\n") << std::flush;
      }
      if (o.save_every > 0 && (b + 1) % o.save_every == 0 && !last && !interrupted) {
        const double before = partial_seconds;
        partial_seconds += elapsed;
        save(last_path, epoch, b + 1);
        partial_seconds = before;
      }
      if (interrupted) {
        first_batch = b + 1;
        partial_seconds += elapsed;
        if (tty) std::cerr << "\n";
        save(last_path, epoch, first_batch);
        std::cout << "interrupted: saved " << last_path << " (epoch " << epoch + 1 << ", after batch " << b + 1
                  << ").\nresume with: " << "cifar10_train --resume " << last_path << "\n";
        return 130;
      }
    }
    if (tty) std::cerr << "\n";
    const double train_seconds =
        partial_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();

    val_loader.start_epoch(0);
    const ClassificationMetrics val = evaluate(net, val_loader, nullptr, o.max_batches, &objective);
    EpochRecord record{static_cast<int>(epoch + 1), partial_loss / partial_count, partial_correct / partial_count,
                       val.loss(), val.top1_accuracy(), optimizer->learning_rate(), 0};
    record.seconds = partial_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    history.push_back(record);
    schedule->epoch_end(val.loss());
    char line[256];
    std::snprintf(line, sizeof line,
                  "epoch %d/%ld  train loss %.4f acc %.2f%%  val loss %.4f acc %.2f%%  lr %.3g  %.0f s (train %.0f s)",
                  record.epoch, o.epochs, record.train_loss, 100 * record.train_accuracy, record.val_loss,
                  100 * record.val_accuracy, record.learning_rate, record.seconds, train_seconds);
    std::cout << line << std::endl;

    // Bookkeeping for the next epoch, then the files.
    first_batch = 0;
    partial_loss = partial_correct = partial_count = partial_seconds = 0;
    const bool best = val.top1_accuracy() > best_accuracy;
    if (best) best_accuracy = val.top1_accuracy();
    if (val.loss() < best_val_loss) {
      best_val_loss = val.loss();
      bad_epochs = 0;
    } else {
      ++bad_epochs;
    }
    write_metrics_csv(o.out, history);
    plot_training_curves(history, (fs::path(o.out) / "curves.png").string());
    save(last_path, epoch + 1, 0);
    if (best) save(best_path, epoch + 1, 0);
    if (o.patience > 0 && bad_epochs >= o.patience) {
      std::cout << "early stopping: validation loss has not improved for " << bad_epochs << " epochs\n";
      break;
    }
  }

  // Test the best checkpoint.
  restore_training_state(Checkpoint::load(best_path), net);
  test_loader.start_epoch(0);
  ConfusionMatrix confusion(config.classes);
  const ClassificationMetrics test = evaluate(net, test_loader, &confusion, o.max_batches);
  std::ostringstream report;
  report << std::fixed << std::setprecision(2);
  report << "AlexNet '" << config.name << "' (" << config.str() << ")\n";
  report << "best checkpoint: " << best_path << " (validation accuracy " << 100 * best_accuracy << "%)\n";
  double total_seconds = 0;
  for (const auto& r : history) total_seconds += r.seconds;
  report << "epochs: " << history.size() << ", training time " << hms(total_seconds) << "\n";
  report << "loss: " << objective.describe() << "\n";
  report << "test top-1: " << 100 * test.top1_accuracy() << "%\n";
  report << "test top-5: " << 100 * test.top5_accuracy() << "%\n";
  report << "test loss: " << std::setprecision(4) << test.loss() << std::setprecision(2) << "\n\nper-class accuracy\n";
  for (Index c = 0; c < config.classes; ++c) {
    const std::string name = c < train_all.classes() ? train_all.class_names()[static_cast<std::size_t>(c)]
                                                     : "class " + std::to_string(c);
    report << "  " << std::left << std::setw(12) << name << std::right << std::setw(7)
           << 100 * confusion.class_accuracy(c) << "%\n";
  }
  report << "\nconfusion matrix (rows: true class, columns: predicted)\n" << std::setw(12) << "";
  for (Index c = 0; c < config.classes; ++c) report << std::setw(6) << c;
  report << "\n";
  for (Index t = 0; t < config.classes; ++t) {
    const std::string name = t < train_all.classes() ? train_all.class_names()[static_cast<std::size_t>(t)] : "";
    report << std::setw(3) << t << " " << std::left << std::setw(8) << name.substr(0, 8) << std::right;
    for (Index p = 0; p < config.classes; ++p) report << std::setw(6) << confusion.count(t, p);
    report << "\n";
  }
  const std::string report_path = (fs::path(o.out) / "report.txt").string();
  std::ofstream(report_path) << report.str();
  std::cout << "\n" << report.str() << "\nwrote " << o.out << "/{metrics.csv, timing.csv, curves.png, last.ckpt, best.ckpt, report.txt}\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const cli::Args args(argc, argv, {"--help", "-h", "--download", "--no-nesterov"});
    if (args.has("--help") || args.has("-h")) {
      usage(std::cout);
      return 0;
    }
    args.check_known({"--help", "--download", "--no-nesterov", "--data", "--out", "--resume", "--config", "--width",
                      "--classes", "--init", "--epochs", "--batch-size", "--optimizer", "--lr", "--schedule",
                      "--weight-decay", "--momentum", "--augment", "--val-fraction", "--patience", "--threads",
                      "--workers", "--seed", "--max-batches", "--loss", "--loss-weights", "--hinge-margin",
                      "--triplet-margin", "--save-every", "--progress-every"});
    if (!args.positional().empty()) throw std::invalid_argument("unexpected argument " + args.positional()[0]);
    return run(args);
  } catch (const std::exception& e) {
    std::cerr << "cifar10_train: " << e.what() << "\n";
    return 1;
  }
}
