// convnet export: a trained network as an ONNX file, for ONNX Runtime, OpenCV's dnn, TensorRT.
//   convnet export --checkpoint FILE --onnx OUT.onnx
// Any checkpoint written through the Trainer (or converted by tools/export_pytorch.py); the picture
// preparation and class names go into the model's metadata (interop/onnx_export.hpp).
#include <convnet/cli/option_table.hpp>
#include <convnet/inference/classifier.hpp>
#include <convnet/interop/onnx_export.hpp>

#include <filesystem>
#include <iostream>
#include <string>

#include "commands.hpp"

int export_command(int argc, char** argv) {
  using namespace convnet;
  std::string checkpoint, onnx;
  bool help = false;
  cli::OptionTable table("usage: convnet export --checkpoint FILE --onnx OUT.onnx\n",
                         {{"options",
                           {{"--checkpoint", "FILE", "a checkpoint written through the Trainer (best.ckpt, last.ckpt)", &checkpoint},
                            {"--onnx", "FILE", "the ONNX model to write (opset 13)", &onnx},
                            {"--help", "", "this text", &help}}}});
  try {
    if (!table.parse(argc, argv).empty()) throw ArgumentError("unexpected argument (see --help)");
    if (help) {
      table.print_usage(std::cout);
      return 0;
    }
    if (checkpoint.empty()) throw ArgumentError("--checkpoint FILE is required");
    if (onnx.empty()) throw ArgumentError("--onnx FILE is required");
    Classifier model = Classifier::load(checkpoint);
    export_onnx(model, onnx);
    std::cout << "wrote " << onnx << " (" << std::filesystem::file_size(onnx) << " bytes, opset " << onnx::kOpset
              << "): input [N, " << model.preparation().channels() << ", " << model.input_size() << ", "
              << model.input_size() << "], " << model.classes() << " classes; pictures: " << model.preparation().eval_pipeline().describe() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convnet export: " << e.what() << "\n";
    return 1;
  }
}
