// How fast the data loader prepares pictures, to set beside how fast training consumes them: the
// loader must never be what a training step waits for. Runs a folder through the paper pipeline
// (decode, shorter side to 256, centre 256 x 256, random 227 crop, flip, PCA colour, normalise) with
// 1, 2, ... workers and prints images/s for each, the median of --repeats passes.
//
//   loader_throughput --folder DIR [--make N] [--side 256] [--workers 1,2] [--pictures 2000] [--pipeline paper|small]
//
// --make N first writes N random JPEG pictures of side x side into DIR/<class>/ (ten classes), the
// generated folder the peak-memory measurement of train uses.
#include <convnet/data/image_io.hpp>  // first: it compiles stb
#include <convnet/data/image_folder.hpp>
#include <convnet/data/loader.hpp>
#include <convnet/data/preparation.hpp>
#include <convnet/random.hpp>
#include <convnet/threading.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <convnet/cli/option_table.hpp>

namespace {

using namespace convnet;
namespace fs = std::filesystem;

// Smooth random pictures (a few colour gradients and noise), so JPEG sizes are those of photographs
// rather than of flat colour or of pure noise.
void make_folder(const std::string& dir, long count, long side) {
  for (int c = 0; c < 10; ++c) fs::create_directories(fs::path(dir) / ("class" + std::to_string(c)));
  detail::parallel_for(count, true, [&](Index i, int) {
    Rng rng(static_cast<std::uint64_t>(i) * 7919 + 1);
    std::vector<std::uint8_t> rgb(static_cast<std::size_t>(side * side * 3));
    double base[3], dx[3], dy[3];
    for (int k = 0; k < 3; ++k) base[k] = rng.uniform() * 255, dx[k] = rng.normal(0, 1), dy[k] = rng.normal(0, 1);
    for (long y = 0; y < side; ++y)
      for (long x = 0; x < side; ++x)
        for (int k = 0; k < 3; ++k) {
          const double v = base[k] + dx[k] * static_cast<double>(x) + dy[k] * static_cast<double>(y) + rng.normal(0, 12);
          rgb[static_cast<std::size_t>((y * side + x) * 3 + k)] = static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
        }
    char name[64];
    std::snprintf(name, sizeof name, "class%ld/%06ld.jpg", static_cast<long>(i % 10), static_cast<long>(i));
    stbi_write_jpg((fs::path(dir) / name).c_str(), static_cast<int>(side), static_cast<int>(side), 3, rgb.data(), 90);
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::string folder, workers_list = "1,2", pipeline = "paper";
  long make = 0, side = 256, pictures = 2000, repeats = 3, batch = 32;
  bool help = false;
  cli::OptionTable table(
      "usage: loader_throughput --folder DIR [options]\n",
      {{"options",
        {{"--folder", "DIR", "a picture folder (<class>/<picture>)", &folder},
         {"--make", "N", "first write N random JPEG pictures into the folder", &make, cli::PerProcess, cli::Range::closed(0, 1e7)},
         {"--side", "N", "their side", &side, cli::PerProcess, cli::Range::closed(8, 4096)},
         {"--workers", "LIST", "worker counts to measure, comma-separated", &workers_list},
         {"--pictures", "N", "pictures a pass", &pictures, cli::PerProcess, cli::Range::closed(1, 1e9)},
         {"--repeats", "N", "passes for each worker count (the median is printed)", &repeats, cli::PerProcess, cli::Range::closed(1, 100)},
         {"--batch", "N", "batch size", &batch, cli::PerProcess, cli::Range::closed(1, 65536)},
         {"--pipeline", "paper|small", "paper: 256 / 227 with PCA; small: 32 x 32 padded crops", &pipeline},
         {"--help", "", "this text", &help}}}});
  try {
    table.parse(argc, argv);
    if (help || folder.empty()) {
      table.print_usage(std::cout);
      return help ? 0 : 2;
    }
    if (make > 0) {
      const auto t0 = std::chrono::steady_clock::now();
      make_folder(folder, make, side);
      std::cout << "wrote " << make << " pictures of " << side << "x" << side << " in "
                << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
    }
    const ImageFolderDataset data(folder, ImageFolderOptions().verify(false));
    const bool paper = pipeline == "paper";
    const auto options = PreparationOptions()
                             .kind(paper ? PreparationKind::ResizeAndCrop : PreparationKind::Small)
                             .input_size(paper ? 227 : 32)
                             .augment(paper ? "crop,flip,pca" : "crop,flip")
                             .statistics_sample(200);
    const Preparation prep = Preparation::compute(data, options);
    std::cout << data.summary() << "\npipeline: " << prep.describe() << "\n";
    std::istringstream list(workers_list);
    for (std::string w; std::getline(list, w, ',');) {
      const int workers = std::stoi(w);
      std::vector<double> rates;
      for (long r = 0; r < repeats; ++r) {
        DataLoader loader(data, prep.train_pipeline(), LoaderOptions().batch_size(batch).workers(workers).seed(r).skip_unreadable(true));
        loader.start_epoch(static_cast<std::uint64_t>(r));
        const auto t0 = std::chrono::steady_clock::now();
        long seen = 0;
        while (seen < pictures) {
          const Batch* b = loader.next();
          if (!b) break;
          seen += b->count();
        }
        rates.push_back(static_cast<double>(seen) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(rates.begin(), rates.end());
      std::printf("workers=%d images_per_s=%.1f (median of %ld; per worker %.1f)\n", workers, rates[rates.size() / 2],
                  repeats, rates[rates.size() / 2] / std::max(workers, 1));
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "loader_throughput: " << e.what() << "\n";
    return 1;
  }
}
