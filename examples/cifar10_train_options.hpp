// The command line of cifar10_train: every setting with its default and its range, declared once
// (parsing, --help, the record a checkpoint keeps), and the network configuration it names. A
// header of its own so that the command-line fuzz target (tests/fuzz) parses the real table.
#pragma once

#include <convnet/alexnet.hpp>

#include <cstdlib>
#include <string>

#include "cli.hpp"

namespace cifar10_train {

using convnet::AlexNetConfig;
using convnet::AlexNetInit;

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

inline cli::OptionTable options_of(Settings& s) {
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
         {"--width", "W", "width multiplier on the configuration", &s.width, R, cli::Range::above(0, 16)},
         {"--classes", "N", "output classes", &s.classes, R, cli::Range::closed(1, 100000)},
         {"--init", "he|paper", "He initialisation or the paper's N(0, 0.01)", &s.init, R}}},
       {"training",
        {{"--epochs", "N", "epochs to train", &s.epochs, R, cli::Range::closed(1, 100000)},
         {"--batch-size", "N", "pictures per step", &s.batch_size, R, cli::Range::closed(1, 65536)},
         {"--optimizer", "sgd|adam", "sgd: Nesterov momentum", &s.optimizer, R},
         {"--lr", "LR", "peak learning rate (about 1e-3 for adam, 0.01 for the hinge losses)", &s.lr, R, cli::Range::above(0, 100)},
         {"--schedule", "NAME", "onecycle, cosine, step (x0.1 each third), plateau (x0.1), constant", &s.schedule, R},
         {"--weight-decay", "WD", "L2 on weights (biases are not decayed)", &s.weight_decay, R, cli::Range::closed(0, 1)},
         {"--momentum", "M", "one-cycle swings it 0.05 either side, as PyTorch does", &s.momentum, R, cli::Range::closed(0, 0.999)},
         {"--no-nesterov", "", "plain momentum", &s.no_nesterov, R},
         {"--loss", "NAME", "cross-entropy, hinge, squared-hinge, cosine, or sums (cross-entropy+triplet)", &s.loss, R},
         {"--loss-weights", "LIST", "a weight per term of --loss, comma-separated (default all 1)", &s.loss_weights, R},
         {"--hinge-margin", "M", "margin of hinge and squared-hinge", &s.hinge_margin, R, cli::Range::above(0, 1000)},
         {"--triplet-margin", "M", "margin of the triplet loss (batch-hard, on fc7)", &s.triplet_margin, R, cli::Range::above(0, 1000)},
         {"--augment", "LIST", "comma-separated: crop (pad 4), flip, pca; or none", &s.augment, R},
         {"--val-fraction", "F", "training pictures held out for validation", &s.val_fraction, R, cli::Range::above(0, 0.5)},
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

/// The network the settings name, checked against AlexNet's bounds (throws std::invalid_argument).
inline AlexNetConfig config_of(const Settings& s) {
  if (s.init != "he" && s.init != "paper") throw std::invalid_argument("--init must be he or paper, got " + s.init);
  AlexNetConfig config = AlexNetConfig::named(s.config).classes(s.classes);
  config.width(config.width() * s.width);  // a multiplier on the configuration's own (cifar-half: 0.5)
  config.init(s.init == "he" ? AlexNetInit::He : AlexNetInit::Paper);
  convnet::alexnet_parameter_shapes(config);  // every bound, before anything is built
  return config;
}

}  // namespace cifar10_train
