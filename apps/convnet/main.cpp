// convnet: one program for what the library does end to end.
//   convnet train | predict | summary | to-folder | export | import | inspect [options]    (convnet <command> --help)
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <convnet/peak_memory.hpp>
#include <convnet/version.hpp>

#include "commands.hpp"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* help;
};

// The one list of subcommands: dispatch and --help come from it.
constexpr Command kCommands[] = {
    {"train", train_command, "train AlexNet on CIFAR-10, another of the study's datasets or a picture folder"},
    {"predict", predict_command, "classify pictures, or score a CIFAR-10 test set, with a trained checkpoint"},
    {"summary", summary_command, "print an AlexNet configuration's layers, parameters and multiply-adds"},
    {"to-folder", to_folder_command, "write CIFAR-10's binary files out as a folder of PNG pictures"},
    {"export", export_command, "write a trained network as an ONNX model (opset 13) with its preparation as metadata"},
    {"inspect", inspect_command, "draw what a trained network learned: filters, activations, neighbours, saliency, confusion"},
    {"import", import_command, "read an ONNX model (ours, or PyTorch's export of a chain of layers) into a checkpoint"},
};

void usage(std::ostream& out) {
  out << "usage: convnet <command> [options]   (convnet <command> --help for its options)\n\ncommands:\n";
  for (const Command& c : kCommands) {
    std::string name = c.name;
    name.resize(12, ' ');
    out << "  " << name << c.help << "\n";
  }
  out << "\nconvnet " << convnet::version << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  // Tensors that change shape (a run's last batch, validation) give their memory back instead of
  // growing the heap (peak_memory.hpp); CONVNET_MALLOC=default keeps glibc's own rule, to compare.
  if (const char* m = std::getenv("CONVNET_MALLOC"); m == nullptr || std::strcmp(m, "default") != 0) {
    convnet::return_large_blocks_to_the_system();
  }
  if (argc < 2) {
    usage(std::cerr);
    return 1;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return 0;
  }
  if (name == "--version") {
    std::cout << "convnet " << convnet::version << "\n";
    return 0;
  }
  for (const Command& c : kCommands) {
    if (name == c.name) return c.run(argc - 1, argv + 1);
  }
  std::cerr << "convnet: unknown command '" << name << "'\n\n";
  usage(std::cerr);
  return 1;
}
