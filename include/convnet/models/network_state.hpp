// A network's state in a checkpoint, and back: what Sequential::save and Sequential::load do.
//
// Keys, each under the caller's prefix ("" for the network a trainer trains):
//   structure               text, one line per layer: its name, its type, its
//                           settings and its parameters' shapes, e.g.
//                           "conv1 Conv2d in_channels=3 ... groups=1 bias=true weight=96x3x11x11 bias=96"
//   param/<layer>.<name>    tensor, in the parameter's shape (PyTorch layout)
//   buffer/<layer>.<name>   tensor, a buffer (BatchNorm's running statistics)
//   layer_state/<layer>     u64s, a layer's random state (Dropout: seed, step)
//
// The network is recognised by its structure (types, settings, shapes), never
// by describe()'s text, which is for people and free to change. Checkpoints
// of convnet 0.1 hold an "architecture" entry of describe() lines instead: they
// are recognised by their layer names and parameter shapes. A checkpoint with
// neither (converted from PyTorch by tools/export_pytorch.py) must hold exactly
// the network's parameters, by name and shape.
//
// load_network() checks everything against the network before it changes
// anything: a mismatch leaves the network as it was.
#pragma once

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../errors.hpp"
#include "../layer.hpp"
#include "../parameter.hpp"

namespace convnet {

namespace detail {
/// A shape for messages: "[96, 3, 11, 11]".
inline std::string shape_text(const std::vector<Index>& shape) {
  std::string out;
  for (Index d : shape) out += (out.empty() ? "" : ", ") + std::to_string(d);
  return "[" + out + "]";
}
/// A shape as structure lines write it: "96x3x11x11".
inline std::string shape_token(const std::vector<Index>& shape) {
  std::string out;
  for (Index d : shape) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}
}  // namespace detail

/// Most layers a structure may list (the paper network has 24).
inline constexpr std::size_t kMaxSavedLayers = 4096;
/// Most bytes and settings one structure line may have (the paper's conv1 line is 120 bytes, 11 settings).
inline constexpr std::size_t kMaxStructureLineBytes = 8192;
inline constexpr std::size_t kMaxStructureSettings = 64;

/// One layer as checkpoints record it.
struct LayerRecord {
  std::string name, type;
  LayerSettings settings;  ///< the layer's settings(), then "<parameter>" = "<d0>x<d1>..." for each parameter

  std::string line() const {
    std::string out = name + " " + type;
    for (const auto& [key, value] : settings) out += " " + key + "=" + value;
    return out;
  }
  /// A structure line split on spaces; a line over kMaxStructureLineBytes or with more than
  /// kMaxStructureSettings settings is a CheckpointError (a file is never trusted to be small).
  static LayerRecord parse(const std::string& line) {
    if (line.size() > kMaxStructureLineBytes) {
      throw CheckpointError(detail::concat("a structure line of ", line.size(), " bytes (at most ",
                                           kMaxStructureLineBytes, "): '", line.substr(0, 40), "...'"));
    }
    std::istringstream in(line);
    LayerRecord r;
    in >> r.name >> r.type;
    for (std::string token; in >> token;) {
      if (r.settings.size() == kMaxStructureSettings) {
        throw CheckpointError(detail::concat("structure line of layer ", r.name, " has more than ",
                                             kMaxStructureSettings, " settings"));
      }
      const auto eq = token.find('=');
      r.settings.emplace_back(token.substr(0, eq), eq == std::string::npos ? "" : token.substr(eq + 1));
    }
    return r;
  }
};

namespace detail {
/// The non-empty lines of a checkpoint's structure entry, parsed, at most kMaxSavedLayers of them;
/// errors name the checkpoint. Read in place: no copy of the text.
inline std::vector<LayerRecord> structure_records(const Checkpoint& c, const std::string& key) {
  const std::string& text = c.text(key);
  std::vector<LayerRecord> records;
  for (std::size_t begin = 0; begin < text.size();) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    if (end - begin > kMaxStructureLineBytes) {
      throw CheckpointError(concat(c.source(), ": its ", key, " has a line of ", end - begin, " bytes (at most ",
                                   kMaxStructureLineBytes, ")"));
    }
    if (end > begin) {
      if (records.size() == kMaxSavedLayers) {
        throw CheckpointError(concat(c.source(), ": its ", key, " lists more than ", kMaxSavedLayers, " layers"));
      }
      try {
        records.push_back(LayerRecord::parse(text.substr(begin, end - begin)));
      } catch (const CheckpointError& e) {
        throw CheckpointError(c.source() + ": " + e.what());
      }
    }
    begin = end + 1;
  }
  return records;
}
}  // namespace detail

/// The structure of `net`, layer by layer.
template <class Net>
std::vector<LayerRecord> network_structure(Net& net) {
  std::vector<LayerRecord> records;
  for (std::size_t i = 0; i < net.size(); ++i) {
    LayerRecord r{net[i].name(), net[i].type_name(), net[i].settings()};
    for (const auto& p : net[i].parameters()) r.settings.emplace_back(p.name, detail::shape_token(p.shape));
    records.push_back(std::move(r));
  }
  return records;
}

namespace detail {

/// The first difference between the structure in a checkpoint and the network's, or "".
inline std::string structure_difference(const std::vector<LayerRecord>& saved, const std::vector<LayerRecord>& here) {
  if (saved.size() != here.size()) return concat("it has ", saved.size(), " layers, this network ", here.size());
  for (std::size_t i = 0; i < saved.size(); ++i) {
    const LayerRecord &a = saved[i], &b = here[i];
    const std::string layer = concat("layer ", i + 1, " ");
    if (a.name != b.name || a.type != b.type) {
      return concat(layer, "is ", a.name, " (", a.type, ") in the checkpoint but ", b.name, " (", b.type, ") here");
    }
    for (std::size_t k = 0; k < std::max(a.settings.size(), b.settings.size()); ++k) {
      const auto none = std::make_pair(std::string("(nothing)"), std::string());
      const auto& x = k < a.settings.size() ? a.settings[k] : none;
      const auto& y = k < b.settings.size() ? b.settings[k] : none;
      if (x != y) {
        return concat(layer, "(", a.name, ") has ", x.first, "=", x.second, " in the checkpoint but ", y.first, "=",
                      y.second, " here");
      }
    }
  }
  return "";
}

/// Step 1 of a restore: is this the network the checkpoint was saved from?
template <class Net>
void check_same_network(const Checkpoint& c, Net& net, const std::string& prefix) {
  const std::string where = c.source();
  const std::vector<LayerRecord> here = network_structure(net);
  std::string difference;
  if (c.contains(prefix + "structure")) {
    difference = structure_difference(structure_records(c, prefix + "structure"), here);
  } else if (prefix.empty() && c.contains("architecture")) {  // convnet 0.1: "name: description" lines; the names must agree
    std::vector<std::string> names;
    std::istringstream lines(c.text("architecture"));
    for (std::string line; std::getline(lines, line);) names.push_back(line.substr(0, line.find(':')));
    for (std::size_t i = 0; difference.empty() && i < std::max(names.size(), here.size()); ++i) {
      const std::string a = i < names.size() ? names[i] : "(no layer)", b = i < here.size() ? here[i].name : "(no layer)";
      if (a != b) difference = concat("layer ", i + 1, " is ", a, " in the checkpoint but ", b, " here");
    }
  } else {  // converted from another framework: no parameter the network lacks
    const auto params = net.parameters();
    const std::string param = prefix + "param/";
    for (const auto& entry : c.entries()) {
      if (entry.first.rfind(param, 0) != 0) continue;
      const bool known = std::any_of(params.begin(), params.end(), [&](const auto& p) {
        return entry.first == param + p.name;
      });
      if (!known) {
        throw CheckpointError(where + ": holds " + entry.first.substr(param.size()) + ", which this network does not have");
      }
    }
  }
  if (!difference.empty()) throw CheckpointError(where + " was saved from a different network: " + difference);
}

}  // namespace detail

/// Before a network is built from a description read from a file (a configuration's text): the
/// checkpoint stores every parameter that network will have, in the same shape. The tensors were
/// bounded by CheckpointLimits when the file was read, so a description can never make the
/// program allocate more than the file itself holds.
inline void require_stored_parameters(const Checkpoint& c, const std::vector<ParameterShape>& shapes) {
  using detail::shape_text;
  for (const auto& p : shapes) {
    const std::string key = "param/" + p.name;
    if (!c.contains(key)) {
      throw CheckpointError(c.source() + ": its configuration needs parameter " + p.name + " " + shape_text(p.shape) +
                            ", which it does not hold");
    }
    const Checkpoint::Entry& e = c.entry(key);
    if (e.kind != Checkpoint::Kind::F32Tensor && e.kind != Checkpoint::Kind::F64Tensor) {
      throw CheckpointError(c.source() + ": entry " + key + " is not a tensor");
    }
    if (e.shape != p.shape) {
      throw CheckpointError(c.source() + ": its configuration needs parameter " + p.name + " " + shape_text(p.shape) +
                            " but it holds " + shape_text(e.shape));
    }
  }
}

namespace detail {

/// Step 2: every parameter, with its shape; the values, read but not yet applied.
template <class T>
std::vector<std::vector<T>> read_parameters(const Checkpoint& c, const std::vector<Parameter<T>>& params,
                                            const std::string& prefix) {
  const std::string where = c.source();
  std::vector<std::vector<T>> values;
  for (const auto& p : params) {
    std::vector<Index> shape;
    if (!c.contains(prefix + "param/" + p.name)) throw CheckpointError(where + ": parameter " + p.name + " is missing");
    values.push_back(c.tensor<T>(prefix + "param/" + p.name, &shape));
    if (shape != p.shape) {
      throw CheckpointError(where + ": parameter " + p.name + " has shape " + shape_text(shape) + " in the checkpoint but " +
                            shape_text(p.shape) + " in this network");
    }
  }
  return values;
}

/// Step 2b: every buffer, with its shape (a checkpoint converted from PyTorch without them
/// leaves the network's own: an empty vector).
template <class T>
std::vector<std::vector<T>> read_buffers(const Checkpoint& c, const std::vector<Buffer<T>>& buffers, bool converted,
                                         const std::string& prefix) {
  std::vector<std::vector<T>> values;
  for (const auto& b : buffers) {
    const std::string key = prefix + "buffer/" + b.name;
    if (!c.contains(key)) {
      if (!converted) throw CheckpointError(c.source() + ": buffer " + b.name + " is missing");
      values.emplace_back();
      continue;
    }
    std::vector<Index> shape;
    values.push_back(c.tensor<T>(key, &shape));
    if (shape != b.shape) {
      throw CheckpointError(concat(c.source(), ": buffer ", b.name, " has ", values.back().size(),
                                   " values in the checkpoint, this network's ", b.size));
    }
  }
  return values;
}

/// Step 3: the layers' random states (a converted checkpoint may have none: the layers keep theirs).
template <class Net>
std::vector<std::vector<std::uint64_t>> read_layer_states(const Checkpoint& c, Net& net, bool converted,
                                                          const std::string& prefix) {
  std::vector<std::vector<std::uint64_t>> states(net.size());
  for (std::size_t i = 0; i < net.size(); ++i) {
    const std::string key = prefix + "layer_state/" + net[i].name();
    if (net[i].random_state().empty() || (converted && !c.contains(key))) continue;
    if (!c.contains(key)) throw CheckpointError(c.source() + ": the random state of layer " + net[i].name() + " is missing");
    states[i] = c.u64s(key);
    if (states[i].size() != net[i].random_state().size()) {
      throw CheckpointError(c.source() + ": the random state of layer " + net[i].name() + " has the wrong length");
    }
  }
  return states;
}

}  // namespace detail

/// Puts `net`'s structure, parameters, buffers and random states into `c`, under `prefix`.
template <class Net>
void save_network(Checkpoint& c, Net& net, const std::string& prefix) {
  std::string structure;
  for (const auto& r : network_structure(net)) structure += r.line() + "\n";
  c.set_text(prefix + "structure", structure);
  for (const auto& p : net.parameters()) c.set_tensor(prefix + "param/" + p.name, p.shape, p.value);
  for (const auto& b : net.buffers()) c.set_tensor(prefix + "buffer/" + b.name, b.shape, b.value);
  for (std::size_t i = 0; i < net.size(); ++i) {
    const auto state = net[i].random_state();
    if (!state.empty()) c.set_u64s(prefix + "layer_state/" + net[i].name(), state);
  }
}

/// Takes back what save_network() wrote, all of it checked first.
template <class Net>
void load_network(const Checkpoint& c, Net& net, const std::string& prefix) {
  detail::check_same_network(c, net, prefix);
  const bool converted = !c.contains(prefix + "structure") && !(prefix.empty() && c.contains("architecture"));
  const auto params = net.parameters();
  const auto values = detail::read_parameters(c, params, prefix);
  const auto buffers = net.buffers();
  const auto buffer_values = detail::read_buffers(c, buffers, converted, prefix);
  const auto layer_states = detail::read_layer_states(c, net, converted, prefix);
  // Everything fits: apply.
  for (std::size_t i = 0; i < params.size(); ++i) std::copy(values[i].begin(), values[i].end(), params[i].value);
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    std::copy(buffer_values[i].begin(), buffer_values[i].end(), buffers[i].value);
  }
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (!layer_states[i].empty()) net[i].set_random_state(layer_states[i]);
  }
}

}  // namespace convnet
