// convnet predict: classifies pictures with any network trained through the Trainer (an AlexNet by its
// configuration, any other by its structure), through the library's Classifier.
//
//   convnet predict --checkpoint FILE [--eval centre|flip|ten-crop] IMAGE...
//       the top-5 classes of each picture (any size, any format stb reads)
//   convnet predict --checkpoint FILE --cifar-test DIR [--eval centre|flip|ten-crop]
//       top-1 and top-5 accuracy over the CIFAR-10 test set
//   convnet predict --checkpoint FILE --cifar-test DIR --random K --out mosaic.png [--seed S]
//       K random test pictures with their true label, the top prediction (green
//       when right, red when wrong) and the top-5 probabilities as bars
#include <convnet/convnet.hpp>

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include <convnet/cli/option_table.hpp>

#include "commands.hpp"

namespace {

using namespace convnet;

struct PredictSettings {
  std::string checkpoint, cifar_test, out, eval = "centre", precision = "auto";
  long random = 0, seed = 1, threads = 0;
  bool ten_crop = false, help = false;
};

cli::OptionTable options_of(PredictSettings& s) {
  return cli::OptionTable(
      "usage: convnet predict --checkpoint FILE [--eval centre|flip|ten-crop] IMAGE...\n"
      "       convnet predict --checkpoint FILE --cifar-test DIR [--eval centre|flip|ten-crop]\n"
      "       convnet predict --checkpoint FILE --cifar-test DIR --random K --out mosaic.png [--seed S]\n",
      {{"options",
        {{"--checkpoint", "FILE", "a checkpoint written through the Trainer (convnet train, train_your_own: best.ckpt, last.ckpt)", &s.checkpoint},
         {"--eval", "VIEWS", "centre, flip (centre and mirror), ten-crop or flip-translate (both, each also moved a pixel two ways): the views whose softmax is averaged, of the kind training drew", &s.eval},
         {"--ten-crop", "", "the same as --eval ten-crop", &s.ten_crop},
         {"--cifar-test", "DIR", "a CIFAR-10 folder: score the test set, or draw --random K pictures", &s.cifar_test},
         {"--random", "K", "draw K random test pictures into --out (a PNG mosaic)", &s.random, cli::PerProcess, cli::Range::closed(0, 1000)},
         {"--out", "FILE", "the mosaic", &s.out},
         {"--seed", "S", "which random pictures", &s.seed, cli::PerProcess, cli::Range::closed(0, 1e15)},
         {"--threads", "N", "compute threads (0: all cores)", &s.threads, cli::PerProcess, cli::Range::closed(0, 1024)},
         {"--precision", "auto|fp32|bf16", "the products' arithmetic; auto (the default): bf16 where the host has AMX, else fp32", &s.precision},
         {"--help", "", "this text", &s.help}}}});
}

std::string percent(double p) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * p);
  return buf;
}

// The study's Figures 15 and 16: each picture with its true label, the top prediction and the top-5 bars.
void draw_mosaic(const std::string& path, const std::vector<Image>& pictures, const std::vector<int>& labels,
                 const std::vector<std::vector<ClassScore>>& tops, const std::vector<std::string>& names) {
  const Index tile_w = 330, tile_h = 170, columns = std::min<Index>(5, static_cast<Index>(pictures.size()));
  const Index rows = (static_cast<Index>(pictures.size()) + columns - 1) / columns;
  Canvas canvas(columns * tile_w, rows * tile_h);
  const Color black{0, 0, 0}, green{0, 150, 0}, red{210, 0, 0}, bar{120, 150, 200}, light{235, 235, 235};
  for (std::size_t i = 0; i < pictures.size(); ++i) {
    const Index x = static_cast<Index>(i) % columns * tile_w + 10, y = static_cast<Index>(i) / columns * tile_h + 10;
    canvas.draw_image(pictures[i], x, y, 128, 128);
    const auto& top = tops[i];
    const bool right = top[0].label == labels[i];
    canvas.text(x, y + 134, "true: " + names[static_cast<std::size_t>(labels[i])], black);
    canvas.text(x, y + 146, "pred: " + top[0].name + " " + percent(top[0].probability), right ? green : red);
    for (std::size_t k = 0; k < top.size(); ++k) {
      const Index by = y + 4 + static_cast<Index>(k) * 24;
      canvas.text(x + 140, by, top[k].name, black);
      canvas.fill_rect(x + 140, by + 10, 150, 8, light);
      canvas.fill_rect(x + 140, by + 10, static_cast<Index>(std::lround(150 * top[k].probability)), 8,
                       top[k].label == labels[i] ? green : (k == 0 ? red : bar));
      canvas.text(x + 294, by + 10, percent(top[k].probability), black);
    }
  }
  canvas.save_png(path);
}

// K random test pictures, printed and drawn into a mosaic.
void mosaic(Classifier& model, const Cifar10Dataset& test, const PredictSettings& s) {
  if (s.out.empty()) throw ArgumentError("--random needs --out mosaic.png");
  if (s.random < 1 || s.random > test.size()) throw ArgumentError("--random must be in [1, test set size]");
  std::vector<Index> order(static_cast<std::size_t>(test.size()));
  std::iota(order.begin(), order.end(), Index{0});
  Rng rng(static_cast<std::uint64_t>(s.seed));
  rng.shuffle(order.begin(), order.end());
  order.resize(static_cast<std::size_t>(s.random));
  std::vector<Image> pictures(order.size());
  std::vector<int> labels;
  for (std::size_t i = 0; i < order.size(); ++i) {
    test.load(order[i], pictures[i]);
    labels.push_back(test.label(order[i]));
    if (labels.back() >= model.classes()) throw ArgumentError("the model has fewer classes than CIFAR-10");
  }
  std::vector<std::vector<ClassScore>> tops;
  for (const auto& p : model.probabilities(pictures, s.ten_crop ? EvalViews::TenCrop : parse_eval_views(s.eval))) tops.push_back(model.top(p, 5));
  for (std::size_t i = 0; i < order.size(); ++i) {
    std::cout << "test image " << order[i] << ": true " << model.class_names()[static_cast<std::size_t>(labels[i])]
              << ", predicted " << tops[i][0].name << " (" << percent(tops[i][0].probability) << ")\n";
  }
  draw_mosaic(s.out, pictures, labels, tops, model.class_names());
  std::cout << "wrote " << s.out << "\n";
}

EvalViews views_of(const PredictSettings& s) { return s.ten_crop ? EvalViews::TenCrop : parse_eval_views(s.eval); }

// ", ten crops" or "" (the centre view), as the output names the views.
std::string views_note(const PredictSettings& s) {
  const EvalViews v = views_of(s);
  return v == EvalViews::TenCrop ? ", ten crops" : v == EvalViews::Flip ? ", centre and mirror" : v == EvalViews::FlipTranslate ? ", centre, mirror and one-pixel shifts" : "";
}

int run(const PredictSettings& s, const std::vector<std::string>& pictures) {
  if (s.checkpoint.empty()) throw ArgumentError("--checkpoint FILE is required");
  if (s.threads > 0) set_num_threads(static_cast<int>(s.threads));
  const Precision precision = parse_precision(s.precision, "--precision");
  Classifier model = Classifier::load(s.checkpoint);
  model.network().set_precision(precision);
  if (!s.cifar_test.empty()) {
    const Cifar10Dataset test(s.cifar_test, Cifar10Part::Test);
    if (s.random > 0) {
      mosaic(model, test, s);
      return 0;
    }
    const ClassificationReport r = model.evaluate(test, views_of(s));
    std::cout << std::fixed << std::setprecision(2) << "CIFAR-10 test (" << test.size() << " images"
              << views_note(s) << "): top-1 " << 100 * r.metrics.top1_accuracy() << "%, top-5 "
              << 100 * r.metrics.top5_accuracy() << "%\n";
    return 0;
  }
  if (pictures.empty()) throw ArgumentError("give IMAGE files, or --cifar-test DIR");
  for (const auto& path : pictures) {
    const Image picture = decode_image(path);
    std::cout << path << " (" << picture.width << "x" << picture.height << views_note(s) << ")\n";
    const auto top = model.predict(picture, 5, views_of(s));
    for (std::size_t k = 0; k < top.size(); ++k) {
      std::cout << "  " << k + 1 << ". " << std::left << std::setw(14) << top[k].name << std::right << std::setw(8)
                << percent(top[k].probability) << "\n";
    }
  }
  return 0;
}

}  // namespace

int predict_command(int argc, char** argv) {
  PredictSettings settings;
  cli::OptionTable table = options_of(settings);
  try {
    const auto pictures = table.parse(argc, argv);
    if (settings.help) {
      table.print_usage(std::cout);
      return 0;
    }
    return run(settings, pictures);
  } catch (const std::exception& e) {
    std::cerr << "convnet predict: " << e.what() << "\n";
    return 1;
  }
}
