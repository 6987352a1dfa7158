// convnet summary: AlexNet's per-layer table (output shape, parameters, multiply-adds, activation
// memory) and totals, for any of the named configurations.
//   convnet summary [--config NAME] [--groups G] [--classes N] [--width W]
#include <convnet/cli/option_table.hpp>
#include <convnet/models/alexnet.hpp>
#include <convnet/models/summary.hpp>

#include <iostream>
#include <string>

#include "commands.hpp"

int summary_command(int argc, char** argv) {
  using namespace convnet;
  std::string config = "paper";
  long groups = 1, classes = 0;
  double width = 0;
  bool help = false;
  cli::OptionTable table(
      "usage: convnet summary [--config NAME] [--groups G] [--classes N] [--width W]\n",
      {{"options",
        {{"--config", "NAME", "which AlexNet: " + alexnet_config_list() + " (default paper: 3x227x227 -> 1000)", &config},
         {"--groups", "G", "towers for conv2, conv4, conv5 (2: the paper's two GPUs)", &groups, cli::PerProcess, cli::Range::closed(1, 2)},
         {"--classes", "N", "output classes (0: the configuration's)", &classes, cli::PerProcess, cli::Range::closed(0, 100000)},
         {"--width", "W", "multiplier on every conv and dense width (0: the configuration's)", &width, cli::PerProcess, cli::Range::closed(0, 16)},
         {"--help", "", "this text", &help}}}});
  try {
    if (!table.parse(argc, argv).empty()) throw ArgumentError("unexpected argument (see --help)");
    if (help) {
      table.print_usage(std::cout);
      return 0;
    }
    AlexNetConfig c = AlexNetConfig::named(config);
    c.groups(groups);
    if (classes > 0) c.classes(classes);
    if (width > 0) c.width(width);
    auto net = make_alexnet<float>(c);
    std::cout << "AlexNet '" << c.name() << "' (" << c.str() << ")\n\n";
    print_summary(std::cout, net, Shape{1, c.input_channels(), c.input_size(), c.input_size()});
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convnet summary: " << e.what() << "\n";
    return 1;
  }
}
