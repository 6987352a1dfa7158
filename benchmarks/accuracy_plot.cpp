// Validation accuracy against wall-clock minutes, several runs on one plot (PNG), with the points
// it drew as CSV beside it: issue 42's accuracy-against-minutes plot of convnet and its PyTorch
// peer. Each run is NAME=FOLDER:
//   --ours NAME=FOLDER      a `convnet train` output folder: metrics.csv (val_accuracy per epoch)
//                           and timing.csv (seconds per epoch); minutes are their running sum, so
//                           they leave out what comes before the first epoch (reading, whitening)
//   --pytorch NAME=FOLDER   benchmarks/pytorch_fast_cifar.py's: curve.csv (minutes since its start)
//
//   convnet_accuracy_plot --out plot.png --title "fast recipe, fp32, Zen 5"
//       --ours convnet=benchmarks/results/fast_recipe/fp32/seed1
//       --pytorch PyTorch=benchmarks/results/fast_recipe/fp32/pytorch_seed1   (one command line)
//
// Writes plot.png and plot.csv (run, epoch, minutes, validation accuracy).
#include <convnet/errors.hpp>
#include <convnet/inference/plot.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using convnet::Canvas;
using convnet::Color;
using convnet::Index;

struct Run {
  std::string name;
  std::vector<double> minutes, accuracy;  // per epoch; accuracy in percent
};

// Column `name` of a CSV file with a header line, as numbers.
std::vector<double> column(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  if (!in) throw convnet::ArgumentError("cannot read " + path);
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  for (std::stringstream s(line); std::getline(s, line, ',');) header.push_back(line);
  const auto at = std::find(header.begin(), header.end(), name);
  if (at == header.end()) throw convnet::ArgumentError(path + " has no column '" + name + "'");
  const std::size_t index = static_cast<std::size_t>(at - header.begin());
  std::vector<double> values;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> cells;
    for (std::stringstream s(line); std::getline(s, line, ',');) cells.push_back(line);
    if (cells.size() <= index) throw convnet::ArgumentError(path + ": a row without column '" + name + "'");
    try {
      values.push_back(std::stod(cells[index]));
    } catch (const std::exception&) {
      throw convnet::ArgumentError(path + ": '" + cells[index] + "' in column '" + name + "' is not a number");
    }
  }
  if (values.empty()) throw convnet::ArgumentError(path + " has no rows");
  return values;
}

Run read_run(const std::string& spec, bool ours) {
  const std::size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) throw convnet::ArgumentError("a run is NAME=FOLDER, got '" + spec + "'");
  Run r{spec.substr(0, eq), {}, {}};
  const std::string folder = spec.substr(eq + 1);
  if (ours) {
    const std::vector<double> seconds = column(folder + "/timing.csv", "seconds");
    r.accuracy = column(folder + "/metrics.csv", "val_accuracy");
    if (seconds.size() != r.accuracy.size()) throw convnet::ArgumentError(folder + ": timing.csv and metrics.csv differ in epochs");
    double sum = 0;
    for (double s : seconds) r.minutes.push_back((sum += s) / 60);
  } else {
    r.minutes = column(folder + "/curve.csv", "minutes");
    r.accuracy = column(folder + "/curve.csv", "val_accuracy");
  }
  for (double& a : r.accuracy) a *= 100;
  return r;
}

void plot(const std::vector<Run>& runs, const std::string& title, const std::string& path) {
  const Color black{0, 0, 0}, grey{220, 220, 220};
  const Color colours[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}};
  double x_hi = 0, lo = 100;
  for (const Run& r : runs) {
    x_hi = std::max(x_hi, r.minutes.back());
    for (double a : r.accuracy) lo = std::min(lo, a);
  }
  x_hi = std::max(1.0, std::ceil(x_hi));
  lo = std::floor(lo / 5) * 5;
  const double hi = 100;
  Canvas canvas(800, 500);
  const Index x0 = 70, y0 = 50, pw = 700, ph = 390;
  auto px = [&](double m) { return static_cast<double>(x0) + m / x_hi * pw; };
  auto py = [&](double a) { return static_cast<double>(y0 + ph) - (a - lo) / (hi - lo) * ph; };
  canvas.text(x0 + pw / 2 - Canvas::text_width(title, 2) / 2, 12, title, black, 2);
  for (double a = lo; a <= hi; a += 5) {
    canvas.line(static_cast<double>(x0), py(a), static_cast<double>(x0 + pw), py(a), grey);
    const std::string label = convnet::detail::format_number(a);
    canvas.text(x0 - 8 - Canvas::text_width(label), static_cast<Index>(py(a)) - 3, label, black);
  }
  const int step = std::max(1, static_cast<int>(x_hi) / 10);
  for (int m = 0; m <= static_cast<int>(x_hi); m += step) {
    canvas.line(px(m), static_cast<double>(y0 + ph), px(m), static_cast<double>(y0 + ph + 4), black);
    const std::string label = std::to_string(m);
    canvas.text(static_cast<Index>(px(m)) - Canvas::text_width(label) / 2, y0 + ph + 8, label, black);
  }
  canvas.line(static_cast<double>(x0), static_cast<double>(y0), static_cast<double>(x0), static_cast<double>(y0 + ph), black);
  canvas.line(static_cast<double>(x0), static_cast<double>(y0 + ph), static_cast<double>(x0 + pw), static_cast<double>(y0 + ph), black);
  canvas.text(x0 + pw / 2 - Canvas::text_width("wall-clock minutes") / 2, y0 + ph + 24, "wall-clock minutes", black);
  canvas.text(8, y0 - 18, "validation top-1 (%)", black);
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const Color c = colours[k % 6];
    const Run& r = runs[k];
    for (std::size_t i = 0; i < r.minutes.size(); ++i) {
      const double x = px(r.minutes[i]), y = py(r.accuracy[i]);
      canvas.fill_rect(static_cast<Index>(x) - 2, static_cast<Index>(y) - 2, 5, 5, c);
      if (i > 0) canvas.line(px(r.minutes[i - 1]), py(r.accuracy[i - 1]), x, y, c, 2);
    }
    const Index ly = y0 + ph - 20 - static_cast<Index>(runs.size() - 1 - k) * 16;
    canvas.fill_rect(x0 + pw - 260, ly + 2, 14, 4, c);
    canvas.text(x0 + pw - 240, ly, r.name, black);
  }
  canvas.save_png(path);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string out, title = "validation accuracy against minutes";
    std::vector<Run> runs;
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      if (i + 1 >= argc) throw convnet::ArgumentError(flag + " needs a value");
      const std::string value = argv[++i];
      if (flag == "--out") {
        out = value;
      } else if (flag == "--title") {
        title = value;
      } else if (flag == "--ours" || flag == "--pytorch") {
        runs.push_back(read_run(value, flag == "--ours"));
      } else {
        throw convnet::ArgumentError("unknown flag " + flag + " (--out, --title, --ours, --pytorch)");
      }
    }
    if (out.size() < 5 || out.substr(out.size() - 4) != ".png") throw convnet::ArgumentError("--out must name a .png file");
    if (runs.empty()) throw convnet::ArgumentError("no runs: give --ours NAME=FOLDER and/or --pytorch NAME=FOLDER");
    plot(runs, title, out);
    std::ofstream csv(out.substr(0, out.size() - 4) + ".csv");
    csv << "run,epoch,minutes,val_accuracy\n";
    for (const Run& r : runs) {
      for (std::size_t i = 0; i < r.minutes.size(); ++i) csv << r.name << ',' << i + 1 << ',' << r.minutes[i] << ',' << r.accuracy[i] / 100 << '\n';
    }
    std::cout << "wrote " << out << " and its .csv (" << runs.size() << " runs)\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convnet_accuracy_plot: " << e.what() << "\n";
    return 1;
  }
}
