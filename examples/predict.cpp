// Classifies pictures with a trained AlexNet checkpoint.
//
//   predict --checkpoint FILE [--ten-crop] IMAGE...
//       the top-5 classes of each picture (any size, any format stb reads)
//   predict --checkpoint FILE --cifar-test DIR [--ten-crop]
//       top-1 and top-5 accuracy over the CIFAR-10 test set
//   predict --checkpoint FILE --cifar-test DIR --random K --out mosaic.png [--seed S]
//       K random test pictures with their true label, the top prediction (green
//       when right, red when wrong) and the top-5 probabilities as bars
#include <convnet/convnet.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"

namespace {

using namespace convnet;

void usage(std::ostream& out) {
  out << R"(usage: predict --checkpoint FILE [--ten-crop] IMAGE...
       predict --checkpoint FILE --cifar-test DIR [--ten-crop]
       predict --checkpoint FILE --cifar-test DIR --random K --out mosaic.png [--seed S]

  --checkpoint FILE  a checkpoint written by cifar10_train (best.ckpt, last.ckpt)
  --ten-crop         average the softmax of ten crops (four corners, centre, mirrors)
  --cifar-test DIR   a CIFAR-10 folder: score the whole test set, or draw --random K pictures
  --random K         draw K random test pictures into --out (a PNG mosaic)
  --seed S           which random pictures (default 1)
  --threads N        compute threads (default: all cores)
)";
}

// A trained network with what it needs to read a picture: normalisation and class names.
struct Model {
  AlexNetConfig config;
  Sequential<float> net;
  ChannelStats stats;
  std::vector<std::string> classes;

  explicit Model(const std::string& path) {
    const Checkpoint c = Checkpoint::load(path);
    if (!c.contains("config")) {
      throw CheckpointError("checkpoint " + path + " does not say which network it holds (no 'config' entry)");
    }
    config = AlexNetConfig::parse(c.text("config"));
    net = make_alexnet<float>(config);
    restore_training_state(c, net);
    net.eval();
    if (c.contains("data/mean")) {
      stats.mean = c.f64s("data/mean");
      stats.stddev = c.f64s("data/std");
    } else {  // no statistics stored: pictures scaled to [0, 1]
      stats.mean = {0, 0, 0};
      stats.stddev = {255, 255, 255};
    }
    std::istringstream names(c.contains("data/classes") ? c.text("data/classes") : "");
    for (std::string line; std::getline(names, line);) {
      if (!line.empty()) classes.push_back(line);
    }
    for (Index i = static_cast<Index>(classes.size()); i < config.classes; ++i) classes.push_back("class " + std::to_string(i));
  }

  Index side() const { return config.input_size; }

  // The views of a picture the network sees: one centred view, or the paper's ten crops.
  std::vector<Image> views(Image image, bool ten_crop) const {
    Rng rng(0);
    const Normalize normalize(stats);
    std::vector<Image> out;
    if (ten_crop) {
      // Crops of `side` from a picture whose shorter side is side * 256 / 227 (the paper's ratio).
      Resize::shorter_side(static_cast<Index>(std::lround(static_cast<double>(side()) * 256.0 / 227.0)))
          .apply(image, rng);
      out = ten_crops(image, side(), side());
    } else {
      Resize::shorter_side(side()).apply(image, rng);
      CenterCrop(side(), side()).apply(image, rng);
      out.push_back(image);
    }
    for (auto& v : out) normalize.apply(v, rng);
    return out;
  }

  // Mean softmax over the views of each picture: [pictures x classes].
  std::vector<std::vector<double>> probabilities(const std::vector<Image>& pictures, bool ten_crop) {
    std::vector<std::vector<double>> result;
    Softmax<float> softmax;
    const Index chunk = 64;
    for (std::size_t start = 0; start < pictures.size(); start += chunk) {
      const std::size_t end = std::min(pictures.size(), start + chunk);
      std::vector<Image> all;
      for (std::size_t i = start; i < end; ++i) {
        auto v = views(pictures[i], ten_crop);
        all.insert(all.end(), v.begin(), v.end());
      }
      Tensor<float> batch(static_cast<Index>(all.size()), 3, side(), side());
      for (std::size_t k = 0; k < all.size(); ++k) {
        std::copy(all[k].pixels.begin(), all[k].pixels.end(), batch.data() + static_cast<Index>(k) * 3 * side() * side());
      }
      const Tensor<float>& p = softmax.forward(net.forward(batch));
      const std::size_t per = ten_crop ? 10 : 1;
      for (std::size_t i = 0; i < end - start; ++i) {
        std::vector<double> mean(static_cast<std::size_t>(config.classes), 0.0);
        for (std::size_t v = 0; v < per; ++v)
          for (Index c = 0; c < config.classes; ++c) mean[static_cast<std::size_t>(c)] += p(static_cast<Index>(i * per + v), c, 0, 0) / per;
        result.push_back(mean);
      }
    }
    return result;
  }
};

std::vector<std::size_t> top_k(const std::vector<double>& p, std::size_t k) {
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  k = std::min(k, p.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<long>(k), order.end(),
                    [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });
  order.resize(k);
  return order;
}

std::string percent(double p) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * p);
  return buf;
}

// The study's Figures 15 and 16: each picture with its true label, the top prediction and the top-5 bars.
void draw_mosaic(const std::string& path, const std::vector<Image>& pictures, const std::vector<int>& labels,
                 const std::vector<std::vector<double>>& probs, const std::vector<std::string>& classes) {
  const Index tile_w = 330, tile_h = 170, columns = std::min<Index>(5, static_cast<Index>(pictures.size()));
  const Index rows = (static_cast<Index>(pictures.size()) + columns - 1) / columns;
  Canvas canvas(columns * tile_w, rows * tile_h);
  const Color black{0, 0, 0}, green{0, 150, 0}, red{210, 0, 0}, bar{120, 150, 200}, light{235, 235, 235};
  for (std::size_t i = 0; i < pictures.size(); ++i) {
    const Index x = static_cast<Index>(i) % columns * tile_w + 10, y = static_cast<Index>(i) / columns * tile_h + 10;
    canvas.draw_image(pictures[i], x, y, 128, 128);
    const auto best = top_k(probs[i], 5);
    const bool right = static_cast<int>(best[0]) == labels[i];
    canvas.text(x, y + 134, "true: " + classes[static_cast<std::size_t>(labels[i])], black);
    canvas.text(x, y + 146, "pred: " + classes[best[0]] + " " + percent(probs[i][best[0]]), right ? green : red);
    for (std::size_t k = 0; k < best.size(); ++k) {
      const Index by = y + 4 + static_cast<Index>(k) * 24;
      canvas.text(x + 140, by, classes[best[k]], black);
      canvas.fill_rect(x + 140, by + 10, 150, 8, light);
      canvas.fill_rect(x + 140, by + 10, static_cast<Index>(std::lround(150 * probs[i][best[k]])), 8,
                       static_cast<int>(best[k]) == labels[i] ? green : (k == 0 ? red : bar));
      canvas.text(x + 294, by + 10, percent(probs[i][best[k]]), black);
    }
  }
  canvas.save_png(path);
}

int run(const cli::Args& args) {
  if (!args.has("--checkpoint")) throw std::invalid_argument("--checkpoint FILE is required");
  if (args.has("--threads")) set_num_threads(static_cast<int>(args.integer("--threads", 1)));
  Model model(args.str("--checkpoint", ""));
  const bool ten_crop = args.has("--ten-crop");

  if (args.has("--cifar-test")) {
    const Cifar10Dataset test(args.str("--cifar-test", ""), Cifar10Part::Test);
    if (args.has("--random")) {
      if (!args.has("--out")) throw std::invalid_argument("--random needs --out mosaic.png");
      const long k = args.integer("--random", 10);
      if (k < 1 || k > test.size()) throw std::invalid_argument("--random must be in [1, test set size]");
      std::vector<Index> order(static_cast<std::size_t>(test.size()));
      std::iota(order.begin(), order.end(), 0);
      Rng rng(static_cast<std::uint64_t>(args.integer("--seed", 1)));
      rng.shuffle(order.begin(), order.end());
      std::vector<Image> pictures(static_cast<std::size_t>(k));
      std::vector<int> labels;
      for (long i = 0; i < k; ++i) {
        test.load(order[static_cast<std::size_t>(i)], pictures[static_cast<std::size_t>(i)]);
        labels.push_back(test.label(order[static_cast<std::size_t>(i)]));
      }
      const auto probs = model.probabilities(pictures, ten_crop);
      for (long i = 0; i < k; ++i) {
        const auto best = top_k(probs[static_cast<std::size_t>(i)], 1)[0];
        std::cout << "test image " << order[static_cast<std::size_t>(i)] << ": true "
                  << model.classes[static_cast<std::size_t>(labels[static_cast<std::size_t>(i)])] << ", predicted "
                  << model.classes[best] << " (" << percent(probs[static_cast<std::size_t>(i)][best]) << ")\n";
      }
      draw_mosaic(args.str("--out", ""), pictures, labels, probs, model.classes);
      std::cout << "wrote " << args.str("--out", "") << "\n";
      return 0;
    }
    Index top1 = 0, top5 = 0;
    const Index chunk = 500;
    for (Index start = 0; start < test.size(); start += chunk) {
      std::vector<Image> pictures(static_cast<std::size_t>(std::min(chunk, test.size() - start)));
      for (std::size_t i = 0; i < pictures.size(); ++i) test.load(start + static_cast<Index>(i), pictures[i]);
      const auto probs = model.probabilities(pictures, ten_crop);
      for (std::size_t i = 0; i < probs.size(); ++i) {
        const auto best = top_k(probs[i], 5);
        const auto label = static_cast<std::size_t>(test.label(start + static_cast<Index>(i)));
        top1 += best[0] == label;
        top5 += std::find(best.begin(), best.end(), label) != best.end();
      }
    }
    std::cout << std::fixed << std::setprecision(2) << "CIFAR-10 test (" << test.size() << " images"
              << (ten_crop ? ", ten crops" : "") << "): top-1 " << 100.0 * top1 / test.size() << "%, top-5 "
              << 100.0 * top5 / test.size() << "%\n";
    return 0;
  }

  if (args.positional().empty()) throw std::invalid_argument("give IMAGE files, or --cifar-test DIR");
  for (const auto& path : args.positional()) {
    const Image picture = decode_image(path);
    const auto probs = model.probabilities({picture}, ten_crop)[0];
    std::cout << path << " (" << picture.width << "x" << picture.height << (ten_crop ? ", ten crops" : "") << ")\n";
    const auto best = top_k(probs, 5);
    for (std::size_t k = 0; k < best.size(); ++k) {
      std::cout << "  " << k + 1 << ". " << std::left << std::setw(14) << model.classes[best[k]] << std::right
                << std::setw(8) << percent(probs[best[k]]) << "\n";
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const cli::Args args(argc, argv, {"--help", "-h", "--ten-crop"});
    if (args.has("--help") || args.has("-h")) {
      usage(std::cout);
      return 0;
    }
    args.check_known({"--help", "--ten-crop", "--checkpoint", "--cifar-test", "--random", "--out", "--seed", "--threads"});
    return run(args);
  } catch (const std::exception& e) {
    std::cerr << "predict: " << e.what() << "\n";
    return 1;
  }
}
