// The command line of `convnet train`: every setting with its default and its range, declared
// once (parsing, --help, the record a checkpoint keeps), and how the settings resolve against the
// dataset (network configuration, input size, pipeline, loss). In the library so that a program of
// one's own can offer the same options, and so that the command-line fuzz target parses the real table.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <ostream>
#include <cstdint>
#include <string>
#include <vector>

#include "../data/preparation.hpp"
#include "../data/training_data.hpp"
#include "../errors.hpp"
#include "../inference/classifier.hpp"
#include "../losses/objective.hpp"
#include "../models/alexnet.hpp"
#include "../optim/by_name.hpp"
#include "../train/fast_recipe.hpp"
#include "option_table.hpp"

namespace convnet::cli {

// Every setting with its default; options_of() declares each as an option once (parsing, --help, the record).
// Empty strings and zeros marked "auto" are resolved against the dataset by resolve().
struct TrainSettings {
  std::string data = std::getenv("CIFAR10_DIR") ? std::getenv("CIFAR10_DIR") : "data/cifar-10-batches-bin";
  std::string dataset, labels = "fine", pipeline, mean = "channel", eval = "centre,flip,ten-crop";
  std::string out = "runs/cifar10", resume, config, init = "he", optimizer = "sgd";
  std::string schedule = "onecycle", augment, loss = "cross-entropy", loss_weights, precision = "auto";
  std::string init_from, freeze, recipe = "alexnet";
  double width = 1, lr = 0.05, weight_decay = 5e-4, momentum = 0.9, val_fraction = 0.1, hinge_margin = 1;
  double triplet_margin = 1, label_smoothing = 0.1, average_weights = 0, dropout = 0.5, collective_timeout = 600;
  long classes = 0, channels = 0, input_size = 0, resize = 256, statistics_sample = 0, padding = 0;
  long epochs = 28, batch_size = 128, patience = 0, threads = 0, workers = 1, seed = 1;
  long max_batches = 0, save_every = 0, progress_every = 0, whiten = 5000;
  bool no_lookahead = false, no_nesterov = false, download = false, verify = false, help = false, list = false;
};

inline OptionTable train_options_of(TrainSettings& s, const std::string& program = "convnet train") {
  const auto R = Recorded;
  const std::string about =
      "usage: " + program + " [--data DIR | --dataset KIND:DIR] [options]\n\n"
      "Trains AlexNet on CIFAR-10 (--data DIR, the binary version) or on any of the study's datasets and a\n"
      "folder of your own pictures (--dataset). The defaults are the recipe of docs/cifar10.md: 85% test\n"
      "accuracy on CIFAR-10 in under 45 minutes on two CPU cores.\n";
  return OptionTable(
      about,
      {{"data and output",
        {{"--dataset", "KIND:DIR", "KIND is " + dataset_kind_list() + " (default cifar10:--data)", &s.dataset, R},
         {"--data", "DIR", "CIFAR-10 folder when --dataset is not given (default $CIFAR10_DIR, else data/cifar-10-batches-bin)", &s.data},
         {"--download", "", "fetch CIFAR-10 into --data (curl, MD5 checked) if it is missing", &s.download},
         {"--labels", "fine|coarse", "cifar100: 100 fine classes or 20 coarse ones", &s.labels, R},
         {"--verify", "", "folder: decode every picture at the scan (default: headers only; bad pictures are skipped when met)", &s.verify},
         {"--out", "DIR", "output folder", &s.out},
         {"--resume", "CKPT", "continue a run (its settings come from the checkpoint)", &s.resume}}},
       {"network",
        {{"--recipe", "NAME", "alexnet: the study's AlexNet and the recipe of docs/cifar10.md (the default); fast: the fast CIFAR network and its recipe (docs/fast.md): whitening, GELU, lookahead, 10 epochs of 512, flip-translate test views; the flags given beside it still apply", &s.recipe, R},
         {"--config", "NAME", alexnet_config_list() + " (default cifar-half-bn; paper for folders; convnet summary --config NAME shows one)", &s.config, R},
         {"--width", "W", "width multiplier on the configuration", &s.width, R, Range::above(0, 16)},
         {"--classes", "N", "output classes (0: the dataset's)", &s.classes, R, Range::closed(0, 100000)},
         {"--input-size", "N", "input side (0: the pictures' for 32x32 configurations, else the configuration's)", &s.input_size, R, Range::closed(0, 1024)},
         {"--channels", "N", "1 (grey) or 3 (RGB; grey pictures replicated); 0: the dataset's", &s.channels, R, Range::closed(0, 3)},
         {"--init", "he|paper", "He initialisation or the paper's N(0, 0.01)", &s.init, R},
         {"--dropout", "P", "dropout probability at the configuration's two dropout layers (the paper's 0.5; 0: none)", &s.dropout, R, Range::closed(0, 0.99)},
         {"--init-from", "CKPT", "fine-tune: start from another network's weights (a run's checkpoint, or a torchvision AlexNet converted by tools/export_pytorch.py), layer by layer: layers of the same name and shape are loaded, the others (fc8 for another class count) keep their initialisation", &s.init_from, R},
         {"--freeze", "LAYERS", "layers that keep their weights and compute no weight gradient: conv1,conv2 or ..fc7 (every layer up to fc7)", &s.freeze, R}}},
       {"pictures",
        {{"--pipeline", "small|paper", "small: fit, padded crops (CIFAR); paper: 256 shorter side, 227 crops, PCA colour (default for folders)", &s.pipeline, R},
         {"--augment", "LIST", "comma-separated: crop, flip, alternating-flip, pca; or none (default crop,flip; crop for mnist; crop,flip,pca for paper)", &s.augment, R},
         {"--resize", "N", "paper: the shorter side pictures are resized to", &s.resize, R, Range::closed(1, 4096)},
         {"--whiten", "N", "--recipe fast: training pictures the first layer's whitening is computed from (default 5000; 0: none, the layer trains from its random start like any other)", &s.whiten, R, Range::closed(0, 1000000)},
         {"--no-lookahead", "", "--recipe fast: train without the lookahead of the weights (the slow weights every 5 steps)", &s.no_lookahead, R},
         {"--padding", "N", "small: the zero padding random crops are drawn from, the largest translation (0: 1/8 of the input side; 2 for --recipe fast)", &s.padding, R, Range::closed(0, 1024)},
         {"--mean", "channel|image", "paper: subtract the per-channel mean or the mean picture (the paper's)", &s.mean, R},
         {"--statistics-sample", "N", "pictures the mean, deviation and PCA are computed on (0: all in memory, 2000 of a folder)", &s.statistics_sample, R, Range::closed(0, 1e9)},
         {"--eval", "LIST", "test views: centre, flip, ten-crop, flip-translate, comma-separated (the first gives the full report)", &s.eval, R}}},
       {"training",
        {{"--epochs", "N", "epochs to train", &s.epochs, R, Range::closed(1, 100000)},
         {"--batch-size", "N", "pictures per step", &s.batch_size, R, Range::closed(1, 65536)},
         {"--optimizer", "NAME", detail::name_list(optimizer_types<float>()) + " (convnet train --list shows each)", &s.optimizer, R},
         {"--lr", "LR", "peak learning rate (default 0.05; 0.01 for paper and torchvision, 1e-3 for adam; about 0.01 for the hinge losses)", &s.lr, R, Range::above(0, 100)},
         {"--schedule", "NAME", detail::name_list(schedule_types()) + " (convnet train --list shows each)", &s.schedule, R},
         {"--weight-decay", "WD", "L2 on weights (biases are not decayed)", &s.weight_decay, R, Range::closed(0, 1)},
         {"--momentum", "M", "one-cycle swings it 0.05 either side, as PyTorch does", &s.momentum, R, Range::closed(0, 0.999)},
         {"--no-nesterov", "", "plain momentum", &s.no_nesterov, R},
         {"--loss", "NAME", detail::name_list(loss_types<float>()) + ", or sums: cross-entropy+triplet; settings in brackets: contrastive(margin=0.5,normalize=1) (convnet train --list shows each)", &s.loss, R},
         {"--loss-weights", "LIST", "a weight per term of --loss, comma-separated (default all 1)", &s.loss_weights, R},
         {"--hinge-margin", "M", "margin of hinge and squared-hinge", &s.hinge_margin, R, Range::above(0, 1000)},
         {"--triplet-margin", "M", "margin of the triplet loss (batch-hard, on fc7)", &s.triplet_margin, R, Range::above(0, 1000)},
         {"--label-smoothing", "E", "cross-entropy terms train against (1 - E) one-hot + E / classes", &s.label_smoothing, R, Range::closed(0, 0.99)},
         {"--average-weights", "D", "also keep an exponential moving average of the weights with decay D (e.g. 0.999), validated each epoch and saved as best_average.ckpt (0: none)", &s.average_weights, R, Range::closed(0, 0.999999)},
         {"--val-fraction", "F", "training pictures held out for validation (without a val/ folder)", &s.val_fraction, R, Range::above(0, 0.5)},
         {"--patience", "N", "stop after N epochs without a lower validation loss (0: never)", &s.patience, R, Range::closed(0, 100000)},
         {"--seed", "N", "weights, data order, augmentation and dropout", &s.seed, R, Range::closed(0, 1e15)},
         {"--max-batches", "N", "stop each epoch and each evaluation after N batches (0: all)", &s.max_batches, R, Range::closed(0, 1e9)}}},
       {"running",
        {{"--threads", "N", "compute threads (0: all cores)", &s.threads, PerProcess, Range::closed(0, 1024)},
         {"--precision", "auto|fp32|bf16", "the products of Conv2d and Dense: bf16 inputs with fp32 sums, fp32 weights; auto (the default): bf16 where the host has AMX, else fp32 (docs/performance.md)", &s.precision, PerProcess},
         {"--workers", "N", "data-loading threads", &s.workers, PerProcess, Range::closed(0, 64)},
         {"--save-every", "N", "also write last.ckpt every N batches (0: at epoch ends only)", &s.save_every, PerProcess, Range::closed(0, 1e9)},
         {"--progress-every", "N", "without a terminal, progress every N batches (0: each 30 s)", &s.progress_every, PerProcess, Range::closed(0, 1e9)},
         {"--collective-timeout", "S", "under mpirun: end the job, naming the late rank, when a sum or broadcast has waited S seconds for the others (0: never)", &s.collective_timeout, PerProcess, Range::closed(0, 1e6)},
         {"--list", "", "every dataset kind, network, optimizer, schedule and loss, a line each", &s.list},
         {"--help", "", "this text", &s.help}}}});
}

/// What --list prints: each registry's names with their one line of help, as the code defines them.
inline void print_train_choices(std::ostream& out) {
  auto section = [&out](const char* title, const auto& entries) {
    out << title << "\n";
    for (const auto& e : entries) {
      std::string name = "  " + e.name;
      name.resize(std::max<std::size_t>(name.size() + 2, 20), ' ');
      out << name << e.help << "\n";
    }
  };
  section("dataset kinds (--dataset KIND:DIR)", dataset_kinds());
  section("networks (--config)", alexnet_config_names());
  section("optimizers (--optimizer)", optimizer_types<float>());
  section("schedules (--schedule)", schedule_types());
  section("losses (--loss; join with + to sum them)", loss_types<float>());
}

/// The test views --eval lists, in its order (the first gives the full report).
inline std::vector<EvalViews> eval_views_of(const TrainSettings& s) {
  std::vector<EvalViews> views;
  std::string rest = s.eval;
  for (std::size_t at; !rest.empty(); rest = at == std::string::npos ? "" : rest.substr(at + 1)) {
    at = rest.find(',');
    views.push_back(parse_eval_views(rest.substr(0, at)));
  }
  return views;
}

/// --recipe fast: the FastRecipe's settings (train/fast_recipe.hpp) for every flag not given on the
/// command line; with --batch-size given, the rate is the recipe's per example at that batch. A fresh
/// run only: a resumed run's recorded settings are already the ones it trained with.
inline void apply_recipe(TrainSettings& s, const OptionTable& table) {
  for (const char* flag : {"--whiten", "--no-lookahead"}) {  // the fast recipe's ingredients, nothing to the AlexNet's
    if (s.recipe != "fast" && table.given(flag)) throw ArgumentError(std::string(flag) + " belongs to --recipe fast");
  }
  if (s.recipe == "alexnet") return;
  if (s.recipe != "fast") throw ArgumentError("--recipe must be alexnet or fast, got " + s.recipe);
  if (table.given("--config")) {
    throw ArgumentError("--config names an AlexNet configuration; --recipe fast trains the fast CIFAR network");
  }
  for (const char* flag : {"--width", "--dropout", "--init"}) {  // the AlexNet's; silently ignored otherwise
    if (table.given(flag)) {
      throw ArgumentError(std::string(flag) + " sets the AlexNet configurations; the fast CIFAR network has its own (docs/fast.md)");
    }
  }
  const auto unless_given = [&table](const char* flag, auto& setting, auto value) {
    if (!table.given(flag)) setting = value;
  };
  FastRecipe recipe;
  unless_given("--batch-size", s.batch_size, recipe.batch_size());
  recipe.batch_size(s.batch_size);
  unless_given("--epochs", s.epochs, recipe.epochs());
  unless_given("--lr", s.lr, recipe.lr());
  unless_given("--momentum", s.momentum, recipe.momentum());
  unless_given("--weight-decay", s.weight_decay, recipe.weight_decay());
  unless_given("--label-smoothing", s.label_smoothing, recipe.label_smoothing());
  unless_given("--augment", s.augment, recipe.augment());
  unless_given("--padding", s.padding, static_cast<long>(recipe.translate()));
  unless_given("--eval", s.eval, std::string("flip-translate,flip,centre"));
  // 1,000 validation pictures pick best.ckpt; the other 49,000 train (the records train on all 50,000).
  unless_given("--val-fraction", s.val_fraction, 0.02);
  s.schedule = "linear";  // the recipe's triangle (fast_recipe.hpp), whatever --schedule says
  s.optimizer = "sgd";
}

/// The FastRecipe the settings describe (--recipe fast, after apply_recipe): their batch, epochs,
/// momentum and smoothing, and the per-1,024 rates that give their --lr and --weight-decay.
inline FastRecipe fast_recipe_of(const TrainSettings& s) {
  FastRecipe r;
  r.batch_size(s.batch_size).epochs(s.epochs).momentum(s.momentum).label_smoothing(s.label_smoothing);
  r.whitening_pictures(s.whiten).lookahead(!s.no_lookahead);
  const double per_1024 = 1024 * r.momentum_gain() / static_cast<double>(s.batch_size);
  return r.lr_per_1024(s.lr * per_1024).weight_decay_per_1024(s.weight_decay * s.lr * per_1024);
}

/// Fills the settings left to the dataset: its kind's network, pipeline and augmentation. Needs only
/// the dataset's name, so a run can be checked before any data is read.
inline void resolve_kind_defaults(TrainSettings& s) {
  if (s.dataset.empty()) s.dataset = "cifar10:" + s.data;
  const std::string kind = DatasetSpec::parse(s.dataset).kind;
  const bool folder = kind == "folder", mnist = kind == "mnist";
  if (s.config.empty()) s.config = folder ? "paper" : "cifar-half-bn";
  if (s.pipeline.empty()) s.pipeline = folder ? "paper" : "small";
  if (s.augment.empty()) s.augment = s.pipeline == "paper" ? "crop,flip,pca" : mnist ? "crop" : "crop,flip";
  if (s.pipeline != "small" && s.pipeline != "paper") throw ArgumentError("--pipeline must be small or paper, got " + s.pipeline);
  if (s.labels != "fine" && s.labels != "coarse") throw ArgumentError("--labels must be fine or coarse, got " + s.labels);
  if (s.mean != "channel" && s.mean != "image") throw ArgumentError("--mean must be channel or image, got " + s.mean);
  if (s.mean == "image" && s.pipeline != "paper") throw ArgumentError("--mean image belongs to --pipeline paper");
  if (s.channels == 2) throw ArgumentError("--channels must be 1 or 3 (or 0: the dataset's), got 2");
  eval_views_of(s);
}

/// The network the settings name for pictures of `picture_size` (0: they vary) and `channels`, with
/// `classes` classes, checked against AlexNet's bounds (throws ArgumentError).
inline AlexNetConfig config_of(const TrainSettings& s, Index picture_size = 32, Index channels = 3, Index classes = 10) {
  if (s.init != "he" && s.init != "paper") throw ArgumentError("--init must be he or paper, got " + s.init);
  AlexNetConfig config = AlexNetConfig::named(s.config.empty() ? "cifar-half-bn" : s.config);
  config.classes(s.classes > 0 ? s.classes : classes);
  config.width(config.width() * s.width);  // a multiplier on the configuration's own (cifar-half: 0.5)
  config.init(s.init == "he" ? AlexNetInit::He : AlexNetInit::Gaussian);
  config.dropout(s.dropout);
  if (s.input_size > 0) {
    config.input_size(s.input_size);
  } else if (config.input_size() == 32 && picture_size > 0 && s.pipeline != "paper") {
    config.input_size(picture_size);  // MNIST's 28 x 28 into the CIFAR networks
  }
  config.input_channels(s.channels > 0 ? s.channels : channels);
  alexnet_parameter_shapes(config);  // every bound, before anything is built
  return config;
}

/// How the settings prepare pictures for `config`.
inline PreparationOptions preparation_of(const TrainSettings& s, const AlexNetConfig& config, bool in_memory) {
  return PreparationOptions()
      .kind(s.pipeline == "paper" ? PreparationKind::ResizeAndCrop : PreparationKind::Small)
      .input_size(config.input_size())
      .channels(config.input_channels())
      .augment(s.augment)
      .resize(s.resize)
      .mean(s.mean == "image" ? MeanKind::Image : MeanKind::Channel)
      .statistics_sample(s.statistics_sample > 0 ? s.statistics_sample : in_memory ? 0 : 2000)
      .padding(s.padding > 0 ? s.padding : -1)
      .seed(static_cast<std::uint64_t>(s.seed));
}

/// The loss the settings name. A loss on the embedding alone leaves fc8 untrained: the report then
/// reads classes from the embedding (nearest centroid, k nearest neighbours), and validation accuracy,
/// which picks best.ckpt, is the embedding's split-half nearest centroid.
inline Objective<float> objective_of(const TrainSettings& s) {
  const auto options = ObjectiveOptions().hinge_margin(s.hinge_margin).triplet_margin(s.triplet_margin).label_smoothing(s.label_smoothing)
      .embedding_layer(s.recipe == "fast" ? "flatten" : "relu7");  // the fast network's 256 pooled features
  return make_objective<float>(s.loss, parse_loss_weights(s.loss_weights), options);
}

inline TrainingDataOptions data_options_of(const TrainSettings& s) {
  return TrainingDataOptions()
      .validation_fraction(s.val_fraction)
      .seed(static_cast<std::uint64_t>(s.seed))
      .cifar100_labels(s.labels == "coarse" ? Cifar100Labels::Coarse : Cifar100Labels::Fine)
      .folder(ImageFolderOptions().verify(s.verify));
}

/// The network for the data as opened: its classes and channels, checked against what the settings ask for.
inline AlexNetConfig config_for_data(const TrainSettings& s, const TrainingData& data) {
  const Index classes = static_cast<Index>(data.class_names().size());
  if (s.classes > 0 && s.classes != classes) {
    throw ArgumentError(detail::concat("--classes ", s.classes, " but ", data.spec().str(), " has ", classes,
                                       " classes", data.spec().kind == "cifar10" && s.classes == 100
                                                       ? "; CIFAR-100 is --dataset cifar100:DIR" : ""));
  }
  return config_of(s, data.picture_size(), data.picture_channels(), classes);
}

/// The network the settings name, checked before any data is read: with the kind's own picture shape
/// and classes where the kind knows them (a folder's are checked again by config_for_data once open).
inline AlexNetConfig config_before_data(const TrainSettings& s) {
  const DatasetKind& kind = DatasetSpec::parse(s.dataset).info();
  const Cifar100Labels labels = s.labels == "coarse" ? Cifar100Labels::Coarse : Cifar100Labels::Fine;
  return kind.shape_known() ? config_of(s, kind.picture_size, kind.channels, kind.classes_for(labels))
                            : config_of(s, 0, kind.channels, 1);
}

}  // namespace convnet::cli
