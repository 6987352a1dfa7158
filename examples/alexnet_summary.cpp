// Prints AlexNet's per-layer table: output shape, parameters, multiply-adds,
// activation memory, and totals.
//
//   alexnet_summary [--config paper|cifar|cifar-half] [--groups 2] [--classes N] [--width W]
#include <convnet/alexnet.hpp>
#include <convnet/summary.hpp>

#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

namespace {

void usage(std::ostream& out) {
  out << "usage: alexnet_summary [--config paper|cifar|cifar-half] [--groups G] [--classes N] [--width W]\n"
         "  --config   which AlexNet (default paper: 3x227x227 -> 1000)\n"
         "  --groups   towers for conv2, conv4, conv5 (2 = the paper's two GPUs; default 1)\n"
         "  --classes  output classes (default: 1000 for paper, 10 for cifar)\n"
         "  --width    multiplier on every conv and dense width (default 1)\n";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string config = "paper";
    long groups = 1, classes = -1;
    double width = -1;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--help" || arg == "-h") {
        usage(std::cout);
        return 0;
      } else if (arg == "--config") {
        config = value();
      } else if (arg == "--groups") {
        groups = std::stol(value());
      } else if (arg == "--classes") {
        classes = std::stol(value());
      } else if (arg == "--width") {
        width = std::stod(value());
      } else {
        throw std::invalid_argument("unknown option " + arg);
      }
    }
    convnet::AlexNetConfig c = convnet::AlexNetConfig::named(config);
    c.groups(groups);
    if (classes > 0) c.classes(classes);
    if (width > 0) c.width(width);
    auto net = convnet::make_alexnet<float>(c);
    std::cout << "AlexNet '" << c.name() << "' (" << c.str() << ")\n\n";
    convnet::print_summary(std::cout, net, convnet::Shape{1, 3, c.input_size(), c.input_size()});
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "alexnet_summary: " << e.what() << "\n";
    usage(std::cerr);
    return 2;
  }
}
