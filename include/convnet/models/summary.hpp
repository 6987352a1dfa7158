// A printed model summary: per layer output shape, parameters, multiply-adds
// and activation memory, then totals (the last line is
// "total parameters: N").
#pragma once

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "sequential.hpp"

namespace convnet {

/// Totals over a summary.
struct SummaryTotals {
  Index parameters = 0, macs = 0, activation_bytes = 0;
  Index conv_neurons = 0;  ///< outputs of the convolutions (the paper counts 650,080)
  Index conv_parameters = 0;
  /// The study's activation count: the input plus the outputs of convolutions,
  /// pools and dense layers (ReLU, LRN and dropout counted as in place).
  Index study_activations = 0;
};

inline SummaryTotals summary_totals(const std::vector<LayerSummary>& rows, const Shape& input) {
  SummaryTotals t;
  t.study_activations = input.per_sample();
  for (const auto& r : rows) {
    t.parameters += r.parameters;
    t.macs += r.macs;
    t.activation_bytes += r.activation_bytes;
    if (r.type == "Conv2d") {
      t.conv_neurons += r.output.per_sample();
      t.conv_parameters += r.parameters;
    }
    if (r.type == "Conv2d" || r.type == "MaxPool2d" || r.type == "Dense") t.study_activations += r.output.per_sample();
  }
  return t;
}

/// "55x55x96": the paper's H x W x C order.
inline std::string paper_shape(const Shape& s) {
  return std::to_string(s.h) + "x" + std::to_string(s.w) + "x" + std::to_string(s.c);
}

/// Prints the table for `net` on inputs of `input` (one sample).
template <class T>
void print_summary(std::ostream& out, Sequential<T>& net, const Shape& input) {
  const auto rows = net.summary(input);
  char line[256];
  std::snprintf(line, sizeof line, "%-10s %-16s %14s %16s %12s  %s\n", "layer", "output (HxWxC)", "parameters",
                "multiply-adds", "activations", "description");
  out << line << std::string(110, '-') << "\n";
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "%-10s %-16s %14lld %16lld %9.1f KiB  %s\n", r.name.c_str(),
                  paper_shape(r.output).c_str(), static_cast<long long>(r.parameters), static_cast<long long>(r.macs),
                  static_cast<double>(r.activation_bytes) / 1024.0, r.description.c_str());
    out << line;
  }
  const SummaryTotals t = summary_totals(rows, input);
  out << std::string(110, '-') << "\n";
  out << "input: " << paper_shape(Shape{1, input.c, input.h, input.w}) << "\n";
  out << "convolutional parameters: " << t.conv_parameters << "\n";
  out << "convolutional neurons: " << t.conv_neurons << "\n";
  out << "multiply-adds per image (forward): " << t.macs << "\n";
  char mem[160];
  std::snprintf(mem, sizeof mem, "%.2f MiB (every layer's output, as this library keeps them)",
                static_cast<double>(t.activation_bytes) / 1048576.0);
  out << "activation memory per image (forward): " << mem << "\n";
  std::snprintf(mem, sizeof mem, "%lld values, %.2f MiB in float32 (input + conv, pool and dense outputs)",
                static_cast<long long>(t.study_activations), static_cast<double>(t.study_activations) * 4 / 1048576.0);
  out << "activations, the study's count: " << mem << "\n";
  out << "total parameters: " << t.parameters << "\n";
}

}  // namespace convnet
