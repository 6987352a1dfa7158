// convnet to-folder: writes CIFAR-10's binary files out as a folder of PNG pictures in the ImageNet
// layout, so the folder path (convnet train --dataset folder:OUT) can be measured against the binary
// one on the same pictures:
//   convnet to-folder --data DIR --out OUT      OUT/train/<class>/00000.png ..., OUT/test/<class>/...
// PNG is lossless: every picture decodes to the bytes of its record. The number in a file's name is
// the record's index within its part.
#include <convnet/data/image_io.hpp>  // first: it compiles stb
#include <convnet/data/cifar10.hpp>
#include <convnet/threading.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <convnet/cli/option_table.hpp>

#include "commands.hpp"

namespace {

using namespace convnet;
namespace fs = std::filesystem;

void write_part(const Cifar10Dataset& part, const fs::path& root) {
  for (const auto& name : part.class_names()) fs::create_directories(root / name);
  std::mutex mutex;
  std::string error;  // an exception must not leave an OpenMP region: the first is kept and thrown after
  detail::parallel_for(part.size(), true, [&](Index i, int) {
    try {
    const std::uint8_t* chw = part.raw(i);
    std::vector<std::uint8_t> rgb(3 * 32 * 32);
    for (Index p = 0; p < 32 * 32; ++p) {
      for (Index c = 0; c < 3; ++c) rgb[static_cast<std::size_t>(p * 3 + c)] = chw[c * 32 * 32 + p];
    }
    char file[32];
    std::snprintf(file, sizeof file, "%05ld.png", static_cast<long>(i));
    write_png((root / part.class_names()[static_cast<std::size_t>(part.label(i))] / file).string(), 32, 32, rgb);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex);
      if (error.empty()) error = e.what();
    }
  });
  if (!error.empty()) throw DataError(error);
}

}  // namespace

int to_folder_command(int argc, char** argv) {
  std::string data = std::getenv("CIFAR10_DIR") ? std::getenv("CIFAR10_DIR") : "data/cifar-10-batches-bin";
  std::string out = "data/cifar-10-png";
  bool help = false;
  cli::OptionTable table("usage: convnet to-folder [--data DIR] [--out DIR]\n\nWrites CIFAR-10 as PNG pictures in "
                         "train/<class>/ and test/<class>/ folders.\n",
                         {{"options",
                           {{"--data", "DIR", "CIFAR-10 binary folder (default $CIFAR10_DIR)", &data},
                            {"--out", "DIR", "the folder to write", &out},
                            {"--help", "", "this text", &help}}}});
  try {
    if (!table.parse(argc, argv).empty()) throw ArgumentError("unexpected argument");
    if (help) {
      table.print_usage(std::cout);
      return 0;
    }
    for (const auto& [part, name] : {std::pair{Cifar10Part::Train, "train"}, std::pair{Cifar10Part::Test, "test"}}) {
      const Cifar10Dataset d(data, part);
      write_part(d, fs::path(out) / name);
      std::cout << "wrote " << d.size() << " pictures to " << (fs::path(out) / name).string() << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convnet to-folder: " << e.what() << "\n";
    return 1;
  }
}
