// The command line of train and cifar10_train: every setting with its default and its range,
// declared once (parsing, --help, the record a checkpoint keeps), and how the settings resolve
// against the dataset (network configuration, input size, pipeline). A header of its own so that
// the command-line fuzz target (tests/fuzz) parses the real table.
#pragma once

#include <convnet/alexnet.hpp>
#include <convnet/data/preparation.hpp>

#include <cstdlib>
#include <string>

#include "cli.hpp"

namespace train_program {

using convnet::AlexNetConfig;
using convnet::AlexNetInit;
using convnet::Index;

// Every setting with its default; options_of() declares each as an option once (parsing, --help, the record).
// Empty strings and zeros marked "auto" are resolved against the dataset by resolve().
struct Settings {
  std::string data = std::getenv("CIFAR10_DIR") ? std::getenv("CIFAR10_DIR") : "data/cifar-10-batches-bin";
  std::string dataset, labels = "fine", pipeline, mean = "channel", eval = "centre,flip,ten-crop";
  std::string out = "runs/cifar10", resume, config, init = "he", optimizer = "sgd";
  std::string schedule = "onecycle", augment, loss = "cross-entropy", loss_weights;
  double width = 1, lr = 0.05, weight_decay = 5e-4, momentum = 0.9, val_fraction = 0.1, hinge_margin = 1;
  double triplet_margin = 1, label_smoothing = 0.1, average_weights = 0, dropout = 0.5;
  long classes = 0, channels = 0, input_size = 0, resize = 256, statistics_sample = 0;
  long epochs = 28, batch_size = 128, patience = 0, threads = 0, workers = 1, seed = 1;
  long max_batches = 0, save_every = 0, progress_every = 0;
  bool no_nesterov = false, download = false, verify = false, help = false;
};

inline cli::OptionTable options_of(Settings& s, const std::string& program = "cifar10_train") {
  const auto R = cli::Recorded;
  const std::string about =
      program == "cifar10_train"
          ? "usage: cifar10_train [options]\n\nTrains AlexNet on CIFAR-10 (binary version). The defaults are the recipe\n"
            "measured in the README: 85% test accuracy in under 45 minutes on two CPU cores.\n"
          : "usage: train --dataset KIND:DIR [options]\n\nTrains AlexNet on any of the study's datasets or on a folder of your own\n"
            "pictures (FOLDER/train/<class>/..., with FOLDER/val and FOLDER/test when they exist).\n";
  return cli::OptionTable(
      about,
      {{"data and output",
        {{"--dataset", "KIND:DIR", "cifar10, cifar100, mnist, fashion-mnist (IDX, plain or .gz) or folder (default cifar10:--data)", &s.dataset, R},
         {"--data", "DIR", "CIFAR-10 folder when --dataset is not given (default $CIFAR10_DIR, else data/cifar-10-batches-bin)", &s.data},
         {"--download", "", "fetch CIFAR-10 into --data (curl, MD5 checked) if it is missing", &s.download},
         {"--labels", "fine|coarse", "cifar100: 100 fine classes or 20 coarse ones", &s.labels, R},
         {"--verify", "", "folder: decode every picture at the scan (default: headers only; bad pictures are skipped when met)", &s.verify},
         {"--out", "DIR", "output folder", &s.out},
         {"--resume", "CKPT", "continue a run (its settings come from the checkpoint)", &s.resume}}},
       {"network",
        {{"--config", "NAME", "cifar-half-bn, cifar-bn (batch normalisation, no LRN), cifar-half, cifar (the study's, with LRN), paper or torchvision (default cifar-half-bn; paper for folders)", &s.config, R},
         {"--width", "W", "width multiplier on the configuration", &s.width, R, cli::Range::above(0, 16)},
         {"--classes", "N", "output classes (0: the dataset's)", &s.classes, R, cli::Range::closed(0, 100000)},
         {"--input-size", "N", "input side (0: the pictures' for 32x32 configurations, else the configuration's)", &s.input_size, R, cli::Range::closed(0, 1024)},
         {"--channels", "N", "1 (grey) or 3 (RGB; grey pictures replicated); 0: the dataset's", &s.channels, R, cli::Range::closed(0, 3)},
         {"--init", "he|paper", "He initialisation or the paper's N(0, 0.01)", &s.init, R},
         {"--dropout", "P", "dropout probability at the configuration's two dropout layers (the paper's 0.5; 0: none)", &s.dropout, R, cli::Range::closed(0, 0.99)}}},
       {"pictures",
        {{"--pipeline", "small|paper", "small: fit, padded crops (CIFAR); paper: 256 shorter side, 227 crops, PCA colour (default for folders)", &s.pipeline, R},
         {"--augment", "LIST", "comma-separated: crop, flip, pca; or none (default crop,flip; crop for mnist; crop,flip,pca for paper)", &s.augment, R},
         {"--resize", "N", "paper: the shorter side pictures are resized to", &s.resize, R, cli::Range::closed(1, 4096)},
         {"--mean", "channel|image", "paper: subtract the per-channel mean or the mean picture (the paper's)", &s.mean, R},
         {"--statistics-sample", "N", "pictures the mean, deviation and PCA are computed on (0: all in memory, 2000 of a folder)", &s.statistics_sample, R, cli::Range::closed(0, 1e9)},
         {"--eval", "LIST", "test views: centre, flip, ten-crop, comma-separated (the first gives the full report)", &s.eval, R}}},
       {"training",
        {{"--epochs", "N", "epochs to train", &s.epochs, R, cli::Range::closed(1, 100000)},
         {"--batch-size", "N", "pictures per step", &s.batch_size, R, cli::Range::closed(1, 65536)},
         {"--optimizer", "sgd|adam", "sgd: Nesterov momentum", &s.optimizer, R},
         {"--lr", "LR", "peak learning rate (default 0.05; 0.01 for paper and torchvision, 1e-3 for adam; about 0.01 for the hinge losses)", &s.lr, R, cli::Range::above(0, 100)},
         {"--schedule", "NAME", "onecycle, cosine, step (x0.1 each third), plateau (x0.1), constant", &s.schedule, R},
         {"--weight-decay", "WD", "L2 on weights (biases are not decayed)", &s.weight_decay, R, cli::Range::closed(0, 1)},
         {"--momentum", "M", "one-cycle swings it 0.05 either side, as PyTorch does", &s.momentum, R, cli::Range::closed(0, 0.999)},
         {"--no-nesterov", "", "plain momentum", &s.no_nesterov, R},
         {"--loss", "NAME", "cross-entropy, hinge, squared-hinge, cosine, an embedding loss (triplet, contrastive, pair-hinge, double-margin, siamese-global, lmnn, improved-triplet, distance-ratio, softpn, lifted, triplet-global, histogram), or sums: cross-entropy+triplet; settings in brackets: contrastive(margin=0.5,normalize=1)", &s.loss, R},
         {"--loss-weights", "LIST", "a weight per term of --loss, comma-separated (default all 1)", &s.loss_weights, R},
         {"--hinge-margin", "M", "margin of hinge and squared-hinge", &s.hinge_margin, R, cli::Range::above(0, 1000)},
         {"--triplet-margin", "M", "margin of the triplet loss (batch-hard, on fc7)", &s.triplet_margin, R, cli::Range::above(0, 1000)},
         {"--label-smoothing", "E", "cross-entropy terms train against (1 - E) one-hot + E / classes", &s.label_smoothing, R, cli::Range::closed(0, 0.99)},
         {"--average-weights", "D", "also keep an exponential moving average of the weights with decay D (e.g. 0.999), validated each epoch and saved as best_average.ckpt (0: none)", &s.average_weights, R, cli::Range::closed(0, 0.999999)},
         {"--val-fraction", "F", "training pictures held out for validation (without a val/ folder)", &s.val_fraction, R, cli::Range::above(0, 0.5)},
         {"--patience", "N", "stop after N epochs without a lower validation loss (0: never)", &s.patience, R, cli::Range::closed(0, 100000)},
         {"--seed", "N", "weights, data order, augmentation and dropout", &s.seed, R, cli::Range::closed(0, 1e15)},
         {"--max-batches", "N", "stop each epoch and each evaluation after N batches (0: all)", &s.max_batches, R, cli::Range::closed(0, 1e9)}}},
       {"running",
        {{"--threads", "N", "compute threads (0: all cores)", &s.threads, cli::PerProcess, cli::Range::closed(0, 1024)},
         {"--workers", "N", "data-loading threads", &s.workers, cli::PerProcess, cli::Range::closed(0, 64)},
         {"--save-every", "N", "also write last.ckpt every N batches (0: at epoch ends only)", &s.save_every, cli::PerProcess, cli::Range::closed(0, 1e9)},
         {"--progress-every", "N", "without a terminal, progress every N batches (0: each 30 s)", &s.progress_every, cli::PerProcess, cli::Range::closed(0, 1e9)},
         {"--help", "", "this text", &s.help}}}});
}

/// Fills the settings left to the dataset: its kind's network, pipeline and augmentation. Needs only
/// the dataset's name, so a run can be checked before any data is read.
inline void resolve_kind_defaults(Settings& s) {
  if (s.dataset.empty()) s.dataset = "cifar10:" + s.data;
  const bool folder = s.dataset.rfind("folder:", 0) == 0, mnist = s.dataset.rfind("mnist:", 0) == 0;
  if (s.config.empty()) s.config = folder ? "paper" : "cifar-half-bn";
  if (s.pipeline.empty()) s.pipeline = folder ? "paper" : "small";
  if (s.augment.empty()) s.augment = s.pipeline == "paper" ? "crop,flip,pca" : mnist ? "crop" : "crop,flip";
  if (s.pipeline != "small" && s.pipeline != "paper") throw std::invalid_argument("--pipeline must be small or paper, got " + s.pipeline);
  if (s.labels != "fine" && s.labels != "coarse") throw std::invalid_argument("--labels must be fine or coarse, got " + s.labels);
  if (s.mean != "channel" && s.mean != "image") throw std::invalid_argument("--mean must be channel or image, got " + s.mean);
  if (s.mean == "image" && s.pipeline != "paper") throw std::invalid_argument("--mean image belongs to --pipeline paper");
  if (s.channels == 2) throw std::invalid_argument("--channels must be 1 or 3 (or 0: the dataset's), got 2");
  std::string rest = s.eval;
  for (std::size_t at; !rest.empty(); rest = at == std::string::npos ? "" : rest.substr(at + 1)) {
    at = rest.find(',');
    convnet::parse_eval_views(rest.substr(0, at));
  }
}

/// What the dataset kind alone says of its pictures and classes (MNIST and CIFAR as published), so a
/// resumed run's checkpoint is checked before any data is read; known is false for folders.
struct KindShape {
  bool known = false;
  Index picture_size = 0, channels = 3, classes = 0;
};
inline KindShape kind_shape(const std::string& kind, const std::string& labels) {
  if (kind == "cifar10") return {true, 32, 3, 10};
  if (kind == "cifar100") return {true, 32, 3, labels == "coarse" ? 20 : 100};
  if (kind == "mnist" || kind == "fashion-mnist") return {true, 28, 1, 10};
  return {};
}

/// The network the settings name for pictures of `picture_size` (0: they vary) and `channels`, with
/// `classes` classes, checked against AlexNet's bounds (throws std::invalid_argument).
inline AlexNetConfig config_of(const Settings& s, Index picture_size = 32, Index channels = 3, Index classes = 10) {
  if (s.init != "he" && s.init != "paper") throw std::invalid_argument("--init must be he or paper, got " + s.init);
  AlexNetConfig config = AlexNetConfig::named(s.config.empty() ? "cifar-half-bn" : s.config);
  config.classes(s.classes > 0 ? s.classes : classes);
  config.width(config.width() * s.width);  // a multiplier on the configuration's own (cifar-half: 0.5)
  config.init(s.init == "he" ? AlexNetInit::He : AlexNetInit::Paper);
  config.dropout(s.dropout);
  if (s.input_size > 0) {
    config.input_size(s.input_size);
  } else if (config.input_size() == 32 && picture_size > 0 && s.pipeline != "paper") {
    config.input_size(picture_size);  // MNIST's 28 x 28 into the CIFAR networks
  }
  config.input_channels(s.channels > 0 ? s.channels : channels);
  convnet::alexnet_parameter_shapes(config);  // every bound, before anything is built
  return config;
}

/// How the settings prepare pictures for `config`.
inline convnet::PreparationOptions preparation_of(const Settings& s, const AlexNetConfig& config, bool in_memory) {
  using namespace convnet;
  return PreparationOptions()
      .kind(s.pipeline == "paper" ? PreparationKind::Paper : PreparationKind::Small)
      .input_size(config.input_size())
      .channels(config.input_channels())
      .augment(s.augment)
      .resize(s.resize)
      .mean(s.mean == "image" ? MeanKind::Image : MeanKind::Channel)
      .statistics_sample(s.statistics_sample > 0 ? s.statistics_sample : in_memory ? 0 : 2000)
      .seed(static_cast<std::uint64_t>(s.seed));
}

}  // namespace train_program
