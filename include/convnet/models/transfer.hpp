// Fine-tuning: a network started from another's weights, layer by layer.
//
//   TransferReport r = init_from(net, Checkpoint::load("imagenet_alexnet.ckpt"));
//   std::cout << r.str();            // loaded, left at their initialisation, refused (and why)
//   net.freeze(layers_up_to(net, "fc7"));   // then an optimizer over net.trainable_parameters()
//
// A layer takes the checkpoint's tensors when the checkpoint holds every parameter it has, under
// its name ("<layer>.<parameter>") and in its shape (BatchNorm's running statistics too, where
// they are there); otherwise it keeps its initialisation. So a network whose class count differs
// from the checkpoint's keeps a fresh classifier head (fc8 refused for its shape) and everything
// else is transferred. Any checkpoint of a network: convnet's own, or one converted from a
// torchvision state_dict by tools/export_pytorch.py (its names are mapped to conv1 ... fc8).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../errors.hpp"
#include "network_state.hpp"
#include "sequential.hpp"

namespace convnet {

/// What init_from did to each layer with parameters.
struct TransferReport {
  std::vector<std::string> loaded;       ///< layer names that took the checkpoint's tensors
  std::vector<std::string> initialised;  ///< not in the checkpoint: left at their initialisation
  std::vector<std::string> refused;      ///< "fc8: weight is [1000, 4096] there, [10, 4096] here"

  /// Three lines: "loaded: conv1, conv2, ...", "left at their initialisation: ...", "refused: ...".
  std::string str() const {
    auto list = [](const std::vector<std::string>& v) {
      std::string out;
      for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
      return out.empty() ? std::string("none") : out;
    };
    std::string out = "loaded from the checkpoint: " + list(loaded) + "\nleft at their initialisation: " + list(initialised) + "\n";
    out += "refused (kept at their initialisation): " + list(refused) + "\n";
    return out;
  }
};

/// Starts `net` from the tensors of `c` (under `prefix`), layer by layer (see the top of this file).
template <class T>
TransferReport init_from(Sequential<T>& net, const Checkpoint& c, const std::string& prefix = "") {
  TransferReport report;
  for (std::size_t i = 0; i < net.size(); ++i) {
    Layer<T>& layer = net[i];
    const auto params = layer.parameters();
    if (params.empty()) continue;
    std::string refusal;
    std::size_t present = 0;
    for (const auto& p : params) {
      const std::string key = prefix + "param/" + layer.name() + "." + p.name;
      if (!c.contains(key)) continue;
      ++present;
      const Checkpoint::Entry& e = c.entry(key);
      if (e.kind != Checkpoint::Kind::F32Tensor && e.kind != Checkpoint::Kind::F64Tensor) {
        refusal = p.name + " is not a tensor there";
      } else if (e.shape != p.shape) {
        refusal = p.name + " is " + detail::shape_text(e.shape) + " there, " + detail::shape_text(p.shape) + " here";
      }
      if (!refusal.empty()) break;
    }
    if (present == 0) {
      report.initialised.push_back(layer.name());
      continue;
    }
    if (refusal.empty() && present < params.size()) refusal = "the checkpoint holds only some of its parameters";
    if (!refusal.empty()) {
      report.refused.push_back(layer.name() + ": " + refusal);
      continue;
    }
    for (const auto& p : params) {
      const std::vector<T> v = c.tensor<T>(prefix + "param/" + layer.name() + "." + p.name);
      std::copy(v.begin(), v.end(), p.value);
    }
    for (const auto& b : layer.buffers()) {  // running statistics, where they are there in the same shape
      const std::string key = prefix + "buffer/" + layer.name() + "." + b.name;
      if (!c.contains(key) || c.entry(key).shape != b.shape) continue;
      const std::vector<T> v = c.tensor<T>(key);
      std::copy(v.begin(), v.end(), b.value);
    }
    report.loaded.push_back(layer.name());
  }
  return report;
}

/// The names of the layers of `net` from the first up to and including `last` (LookupError if
/// there is none): what --freeze ..fc7 freezes.
template <class T>
std::vector<std::string> layers_up_to(const Sequential<T>& net, const std::string& last) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < net.size(); ++i) {
    names.push_back(net[i].name());
    if (net[i].name() == last) return names;
  }
  throw LookupError("no layer named '" + last + "'");
}

/// The layers a --freeze list names: "conv1,conv2", or "..fc7" for every layer up to fc7, or both.
template <class T>
std::vector<std::string> layers_named(const Sequential<T>& net, const std::string& list) {
  std::vector<std::string> names;
  std::string item;
  for (std::size_t start = 0; start <= list.size();) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    item = list.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    if (item.rfind("..", 0) == 0) {
      for (auto& n : layers_up_to(net, item.substr(2))) names.push_back(n);
      continue;
    }
    bool found = false;
    for (std::size_t i = 0; i < net.size(); ++i) found = found || net[i].name() == item;
    if (!found) throw LookupError("no layer named '" + item + "'");
    names.push_back(item);
  }
  return names;
}

}  // namespace convnet
