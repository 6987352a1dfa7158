// convnet import: an ONNX model (ours, or PyTorch's torch.onnx.export of a chain of layers) as a
// convnet checkpoint that predict, export and train --init-from take.
//   convnet import --onnx FILE --out CKPT [--preparation TEXT] [--mean R,G,B --std R,G,B] [--classes FILE]
// How pictures are prepared comes from the model's metadata when convnet wrote it; otherwise from
// --preparation (a checkpoint's one-line form, e.g. torchvision's "kind=paper input=224 resize=256")
// and --mean/--std on the 0-255 scale; without them, the small pipeline at the model's input size
// with pixels scaled to [0, 1].
#include <convnet/checkpoint/format.hpp>
#include <convnet/cli/option_table.hpp>
#include <convnet/data/preparation.hpp>
#include <convnet/interop/onnx_import.hpp>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"

namespace {

std::vector<double> numbers(const std::string& text, const std::string& flag) {
  std::vector<double> out;
  std::string item;
  for (std::istringstream in(text); std::getline(in, item, text.find(',') != std::string::npos ? ',' : ' ');) {
    if (item.empty()) continue;
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || !(v > -1e6 && v < 1e6)) throw convnet::ArgumentError(flag + ": '" + item + "' is not a number");
    out.push_back(v);
  }
  return out;
}

/// `given` ("kind=paper input=224 resize=256") with the keys it leaves out taken from `defaults`.
std::string completed(const std::string& defaults, const std::string& given) {
  std::vector<std::pair<std::string, std::string>> fields;
  auto set = [&](const std::string& token) {
    const auto eq = token.find('=');
    if (eq == std::string::npos) throw convnet::ArgumentError("--preparation: '" + token + "' is not key=value");
    for (auto& [k, v] : fields) {
      if (k == token.substr(0, eq)) return void(v = token.substr(eq + 1));
    }
    fields.emplace_back(token.substr(0, eq), token.substr(eq + 1));
  };
  std::string token;
  for (std::istringstream in(defaults); in >> token;) set(token);
  for (std::istringstream in(given); in >> token;) set(token);
  std::string out;
  for (const auto& [k, v] : fields) out += (out.empty() ? "" : " ") + k + "=" + v;
  return out;
}

}  // namespace

int import_command(int argc, char** argv) {
  using namespace convnet;
  std::string onnx, out, preparation, mean, stddev, classes;
  bool help = false;
  cli::OptionTable table(
      "usage: convnet import --onnx FILE --out CKPT [--preparation TEXT] [--mean R,G,B --std R,G,B] [--classes FILE]\n",
      {{"options",
        {{"--onnx", "FILE", "the ONNX model (opset 7-18; a chain of Conv, Relu, LRN, pooling, BatchNormalization, Flatten, Gemm, Softmax)", &onnx},
         {"--out", "CKPT", "the checkpoint to write", &out},
         {"--preparation", "TEXT", "how pictures are prepared, as a checkpoint says it (\"kind=paper input=224 resize=256\")", &preparation},
         {"--mean", "R,G,B", "per-channel mean on the 0-255 scale (with --std)", &mean},
         {"--std", "R,G,B", "per-channel deviation on the 0-255 scale", &stddev},
         {"--classes", "FILE", "class names, one a line", &classes},
         {"--help", "", "this text", &help}}}});
  try {
    if (!table.parse(argc, argv).empty()) throw ArgumentError("unexpected argument (see --help)");
    if (help) {
      table.print_usage(std::cout);
      return 0;
    }
    if (onnx.empty() || out.empty()) throw ArgumentError("--onnx FILE and --out CKPT are required");
    OnnxModel m = import_onnx(onnx);
    Checkpoint c;
    m.network.save(c);
    // The preparation: flags first, then the model's metadata, then the small pipeline at its input size.
    const Index side = m.height > 0 ? m.height : 32;
    std::string prep_text = !preparation.empty() ? preparation : m.meta("convnet.preparation");
    const ChannelStats unit{std::vector<double>(static_cast<std::size_t>(m.channels), 0.0), std::vector<double>(static_cast<std::size_t>(m.channels), 255.0)};
    prep_text = completed(Preparation::with_statistics(PreparationOptions().input_size(side).channels(m.channels), unit).str(), prep_text);
    c.set_text("data/preparation", prep_text);
    const std::vector<double> mu = numbers(!mean.empty() ? mean : m.meta("convnet.mean"), "--mean");
    const std::vector<double> sigma = numbers(!stddev.empty() ? stddev : m.meta("convnet.std"), "--std");
    if (mu.size() != sigma.size()) throw ArgumentError("--mean and --std need the same number of values");
    if (!mu.empty()) {
      c.set_f64s("data/mean", mu);
      c.set_f64s("data/std", sigma);
    }
    std::string names = m.meta("convnet.classes");
    if (!classes.empty()) {
      std::ifstream in(classes);
      if (!in) throw ArgumentError("--classes: cannot read " + classes);
      names.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (!names.empty()) c.set_text("data/classes", names);
    Preparation::loaded(c, m.height > 0 ? m.height : 32, m.channels);  // a bad --preparation is refused before writing
    c.save(out);
    std::cout << "wrote " << out << ": " << m.network.size() << " layers, " << m.network.parameter_count()
              << " parameters from " << onnx << " (" << (m.producer.empty() ? "unknown producer" : m.producer) << ", opset "
              << m.opset << "); pictures: " << prep_text << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convnet import: " << e.what() << "\n";
    return 1;
  }
}
