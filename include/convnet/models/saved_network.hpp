// A saved network rebuilt from its checkpoint alone, without the code that built it:
//
//   Sequential<float> net = load_network<float>(Checkpoint::load("runs/mine/best.ckpt"));
//
// The checkpoint's `structure` entry (models/network_state.hpp) lists every layer with its type,
// settings and parameter shapes; each type is looked up in the layer registry (a program's own
// types too, once registered with CONVNET_REGISTER_LAYER) and built from its settings. A file is
// never trusted: before a layer is built, the shapes its line declares must be the shapes of the
// tensors the file holds (bounded when the file was read) and, for a type that can say so, the
// shapes its settings give; after, the layer's own parameters must agree. So the network never
// allocates more than the file holds, and a mismatch is a CheckpointError naming the layer.
#pragma once

#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../errors.hpp"
#include "../key_values.hpp"
#include "layer_registry.hpp"
#include "network_state.hpp"
#include "sequential.hpp"

namespace convnet {

namespace detail {

/// The layer lines of `prefix`structure, each checked for a name, a unique one.
inline std::vector<LayerRecord> saved_structure(const Checkpoint& c, const std::string& prefix) {
  const std::string key = prefix + "structure";
  if (!c.contains(key)) {
    throw CheckpointError(c.source() + " does not describe its network (no '" + key +
                          "' entry): it can only be loaded into a network built by its program");
  }
  std::vector<LayerRecord> records = structure_records(c, key);
  std::set<std::string> names;
  for (const LayerRecord& r : records) {
    if (r.name.empty() || r.type.empty()) {
      throw CheckpointError(c.source() + ": structure line '" + (r.type.empty() ? r.name : r.line()) + "' names no layer");
    }
    if (!names.insert(r.name).second) throw CheckpointError(c.source() + ": structure lists layer " + r.name + " twice");
  }
  if (records.empty()) throw CheckpointError(c.source() + ": its structure lists no layer");
  return records;
}

/// One structure line split into the layer's settings and its parameters (name, stored shape). A
/// line is the settings, then a "<parameter>=<d0>x<d1>..." for each parameter (network_structure):
/// its parameters are the trailing keys with a shape for a value and a tensor in the file under their
/// name (a setting may share a parameter's name: Conv2d's bias=true and bias=96), and the shape the
/// line declares must be that tensor's.
inline std::pair<LayerSettings, std::vector<std::pair<std::string, std::vector<Index>>>> split_record(
    const Checkpoint& c, const LayerRecord& r, const std::string& prefix, const std::string& where) {
  auto shape_like = [](const std::string& v) {
    if (v.empty() || v.front() == 'x' || v.back() == 'x') return false;
    return v.find_first_not_of("0123456789x") == std::string::npos && v.find("xx") == std::string::npos;
  };
  std::size_t first_param = r.settings.size();
  while (first_param > 0) {
    const auto& [key, value] = r.settings[first_param - 1];
    if (!shape_like(value) || !c.contains(prefix + "param/" + r.name + "." + key)) break;
    --first_param;
  }
  LayerSettings settings(r.settings.begin(), r.settings.begin() + static_cast<long>(first_param));
  std::vector<std::pair<std::string, std::vector<Index>>> params;
  for (std::size_t i = first_param; i < r.settings.size(); ++i) {
    const auto& [key, value] = r.settings[i];
    const std::string tensor = prefix + "param/" + r.name + "." + key;
    const Checkpoint::Entry& e = c.entry(tensor);
    if (e.kind != Checkpoint::Kind::F32Tensor && e.kind != Checkpoint::Kind::F64Tensor) {
      throw CheckpointError(where + ": entry " + tensor + " is not a tensor");
    }
    if (shape_token(e.shape) != value) {
      throw CheckpointError(where + ": its structure says " + key + "=" + value + " but the file holds " + key + " " +
                            shape_text(e.shape));
    }
    params.emplace_back(key, e.shape);
  }
  return {std::move(settings), std::move(params)};
}

/// One layer built from its line, checked before (the shapes its settings give) and after (the
/// parameters it has) against what the file holds.
template <class T>
std::unique_ptr<Layer<T>> rebuild_layer(const Checkpoint& c, const LayerRecord& r, const std::string& prefix) {
  const std::string where = c.source() + ": layer " + r.name + " (" + r.type + ")";
  const LayerType<T>* type = find_layer_type<T>(r.type);
  if (type == nullptr) {
    throw CheckpointError(where + ": unknown layer type '" + r.type + "' (known: " + layer_type_list<T>() +
                          "; a program registers its own with CONVNET_REGISTER_LAYER)");
  }
  auto split = split_record(c, r, prefix, where);  // (not a structured binding: the lambda below captures it)
  const LayerSettings settings = std::move(split.first);
  const std::vector<std::pair<std::string, std::vector<Index>>> stored = std::move(split.second);
  auto differs = [&](const std::vector<std::pair<std::string, std::vector<Index>>>& have) {
    if (have.size() != stored.size()) {
      return concat(where, ": it has ", have.size(), " parameters but the file holds ", stored.size());
    }
    for (std::size_t i = 0; i < have.size(); ++i) {
      if (have[i] != stored[i]) {
        return concat(where, ": its settings give ", have[i].first, " ", shape_text(have[i].second), " but the file holds ",
                      stored[i].first, " ", shape_text(stored[i].second));
      }
    }
    return std::string();
  };
  try {
    if (type->parameter_shapes != nullptr) {
      KeyValues values(settings, "layer " + r.name + " (" + r.type + ")");
      const auto shapes = type->parameter_shapes(values);
      std::vector<std::pair<std::string, std::vector<Index>>> named;
      for (std::size_t i = 0; i < shapes.size(); ++i) {
        named.emplace_back(i < stored.size() ? stored[i].first : "parameter " + std::to_string(i + 1), shapes[i]);
      }
      if (const std::string d = differs(named); !d.empty()) throw CheckpointError(d);
    }
    std::unique_ptr<Layer<T>> layer = make_layer<T>(r.type, settings, "layer " + r.name);
    std::vector<std::pair<std::string, std::vector<Index>>> built;
    for (const auto& p : layer->parameters()) built.emplace_back(p.name, p.shape);
    if (const std::string d = differs(built); !d.empty()) throw CheckpointError(d);
    if (layer->type_name() != r.type) {
      throw CheckpointError(where + ": the type registered as '" + r.type + "' calls itself '" + layer->type_name() + "'");
    }
    return layer;
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {  // a setting missing, unreadable or out of the layer's bounds
    throw CheckpointError(c.source() + ": " + e.what());
  }
}

}  // namespace detail

/// The network a checkpoint holds under `prefix`, built from its structure and loaded (parameters,
/// buffers, random states), in evaluation mode. CheckpointError naming the layer when a type is not
/// registered or the structure does not match the tensors.
template <class T>
Sequential<T> load_network(const Checkpoint& c, const std::string& prefix = "") {
  Sequential<T> net;
  for (const LayerRecord& r : detail::saved_structure(c, prefix)) net.add(detail::rebuild_layer<T>(c, r, prefix), r.name);
  net.load(c, prefix);
  net.eval();
  return net;
}

/// The same, read from the file at `path` (CheckpointLimits bound what it may hold).
template <class T>
Sequential<T> load_network(const std::string& path, const std::string& prefix = "") {
  return load_network<T>(Checkpoint::load(path), prefix);
}

}  // namespace convnet
