// A network's training state in a checkpoint, and back.
//
// Keys written by save_training_state():
//   structure               text, one line per layer: its name, its type, its
//                           settings and its parameters' shapes, e.g.
//                           "conv1 Conv2d in_channels=3 ... groups=1 bias=true weight=96x3x11x11 bias=96"
//   param/<layer>.<name>    tensor, in the parameter's shape (PyTorch layout)
//   buffer/<layer>.<name>   tensor, a buffer (BatchNorm's running statistics)
//   layer_state/<layer>     u64s, a layer's random state (Dropout: seed, step)
//   optimizer/type          text;  optimizer/steps  u64s;  optimizer/<buffer>  tensor
//   schedule/type           text;  schedule/state   f64s
// Callers add their own (the trainer: its position and history; the example
// programs: the configuration, the data statistics and the class names).
//
// The network is recognised by its structure (types, settings, shapes), never
// by describe()'s text, which is for people and free to change. Checkpoints
// of convnet 0.1 hold an "architecture" entry of describe() lines instead: they
// are recognised by their layer names and parameter shapes. A checkpoint with
// neither (converted from PyTorch by tools/export_pytorch.py) must hold exactly
// the network's parameters, by name and shape.
//
// restore_training_state() checks everything against the network before it
// changes anything: a mismatch leaves the network, optimizer and schedule as
// they were.
#pragma once

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../optim/optimizer.hpp"
#include "../optim/schedules.hpp"
#include "../parameter.hpp"
#include "../models/sequential.hpp"
#include "format.hpp"

namespace convnet {

/// One layer as checkpoints record it.
struct LayerRecord {
  std::string name, type;
  LayerSettings settings;  ///< the layer's settings(), then "<parameter>" = "<d0>x<d1>..." for each parameter

  std::string line() const {
    std::string out = name + " " + type;
    for (const auto& [key, value] : settings) out += " " + key + "=" + value;
    return out;
  }
  static LayerRecord parse(const std::string& line) {
    std::istringstream in(line);
    LayerRecord r;
    in >> r.name >> r.type;
    for (std::string token; in >> token;) {
      const auto eq = token.find('=');
      r.settings.emplace_back(token.substr(0, eq), eq == std::string::npos ? "" : token.substr(eq + 1));
    }
    return r;
  }
};

/// The structure of `net`, layer by layer.
template <class T>
std::vector<LayerRecord> network_structure(Sequential<T>& net) {
  std::vector<LayerRecord> records;
  for (std::size_t i = 0; i < net.size(); ++i) {
    LayerRecord r{net[i].name(), net[i].type_name(), net[i].settings()};
    for (const auto& p : net[i].parameters()) {
      std::string shape;
      for (Index d : p.shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
      r.settings.emplace_back(p.name, shape);
    }
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
template <class T>
void check_same_network(const Checkpoint& c, Sequential<T>& net) {
  const std::string where = c.source();
  const std::vector<LayerRecord> here = network_structure(net);
  std::string difference;
  if (c.contains("structure")) {
    std::vector<LayerRecord> saved;
    std::istringstream lines(c.text("structure"));
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) saved.push_back(LayerRecord::parse(line));
    }
    difference = structure_difference(saved, here);
  } else if (c.contains("architecture")) {  // convnet 0.1: "name: description" lines; the names must agree
    std::vector<std::string> names;
    std::istringstream lines(c.text("architecture"));
    for (std::string line; std::getline(lines, line);) names.push_back(line.substr(0, line.find(':')));
    for (std::size_t i = 0; difference.empty() && i < std::max(names.size(), here.size()); ++i) {
      const std::string a = i < names.size() ? names[i] : "(no layer)", b = i < here.size() ? here[i].name : "(no layer)";
      if (a != b) difference = concat("layer ", i + 1, " is ", a, " in the checkpoint but ", b, " here");
    }
  } else {  // converted from another framework: no parameter the network lacks
    const auto params = net.parameters();
    for (const auto& entry : c.entries()) {
      if (entry.first.rfind("param/", 0) != 0) continue;
      const bool known = std::any_of(params.begin(), params.end(), [&](const Parameter<T>& p) {
        return entry.first == "param/" + p.name;
      });
      if (!known) throw CheckpointError(where + ": holds " + entry.first.substr(6) + ", which this network does not have");
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
  auto text = [](const std::vector<Index>& shape) {
    std::string out;
    for (Index d : shape) out += (out.empty() ? "" : ", ") + std::to_string(d);
    return "[" + out + "]";
  };
  for (const auto& p : shapes) {
    const std::string key = "param/" + p.name;
    if (!c.contains(key)) {
      throw CheckpointError(c.source() + ": its configuration needs parameter " + p.name + " " + text(p.shape) +
                            ", which it does not hold");
    }
    const Checkpoint::Entry& e = c.entry(key);
    if (e.kind != Checkpoint::Kind::F32Tensor && e.kind != Checkpoint::Kind::F64Tensor) {
      throw CheckpointError(c.source() + ": entry " + key + " is not a tensor");
    }
    if (e.shape != p.shape) {
      throw CheckpointError(c.source() + ": its configuration needs parameter " + p.name + " " + text(p.shape) +
                            " but it holds " + text(e.shape));
    }
  }
}

namespace detail {

/// Step 2: every parameter, with its shape; the values, read but not yet applied.
template <class T>
std::vector<std::vector<T>> read_parameters(const Checkpoint& c, const std::vector<Parameter<T>>& params) {
  const std::string where = c.source();
  std::vector<std::vector<T>> values;
  for (const auto& p : params) {
    std::vector<Index> shape;
    if (!c.contains("param/" + p.name)) throw CheckpointError(where + ": parameter " + p.name + " is missing");
    values.push_back(c.tensor<T>("param/" + p.name, &shape));
    if (shape != p.shape) {
      std::string a, b;
      for (Index d : shape) a += (a.empty() ? "" : ", ") + std::to_string(d);
      for (Index d : p.shape) b += (b.empty() ? "" : ", ") + std::to_string(d);
      throw CheckpointError(where + ": parameter " + p.name + " has shape [" + a + "] in the checkpoint but [" + b +
                            "] in this network");
    }
  }
  return values;
}

/// Step 2b: every buffer, with its shape (a checkpoint converted from PyTorch without them
/// leaves the network's own: an empty vector).
template <class T>
std::vector<std::vector<T>> read_buffers(const Checkpoint& c, const std::vector<Buffer<T>>& buffers) {
  const bool converted = !c.contains("structure") && !c.contains("architecture");
  std::vector<std::vector<T>> values;
  for (const auto& b : buffers) {
    const std::string key = "buffer/" + b.name;
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
template <class T>
std::vector<std::vector<std::uint64_t>> read_layer_states(const Checkpoint& c, Sequential<T>& net) {
  const bool converted = !c.contains("structure") && !c.contains("architecture");
  std::vector<std::vector<std::uint64_t>> states(net.size());
  for (std::size_t i = 0; i < net.size(); ++i) {
    const std::string key = "layer_state/" + net[i].name();
    if (net[i].random_state().empty() || (converted && !c.contains(key))) continue;
    if (!c.contains(key)) throw CheckpointError(c.source() + ": the random state of layer " + net[i].name() + " is missing");
    states[i] = c.u64s(key);
    if (states[i].size() != net[i].random_state().size()) {
      throw CheckpointError(c.source() + ": the random state of layer " + net[i].name() + " has the wrong length");
    }
  }
  return states;
}

/// Step 4: the optimizer's buffers, checked against its type and sizes.
template <class T>
std::vector<std::vector<T>> read_optimizer(const Checkpoint& c, Optimizer<T>& optimizer) {
  const std::string where = c.source();
  if (!c.contains("optimizer/type")) throw CheckpointError(where + ": holds no optimizer state");
  if (c.text("optimizer/type") != optimizer.type_name()) {
    throw CheckpointError(where + ": optimizer state is for " + c.text("optimizer/type") + ", not " +
                          optimizer.type_name());
  }
  std::vector<std::vector<T>> values;
  for (const auto& b : optimizer.state()) {
    const std::string key = "optimizer/" + b.name;
    if (!c.contains(key)) throw CheckpointError(where + ": optimizer buffer " + b.name + " is missing");
    values.push_back(c.tensor<T>(key));
    if (static_cast<Index>(values.back().size()) != b.size) {
      throw CheckpointError(concat(where, ": optimizer buffer ", b.name, " has ", values.back().size(),
                                   " values, expected ", b.size));
    }
  }
  if (c.u64s("optimizer/steps").size() != 1) throw CheckpointError(where + ": optimizer/steps is malformed");
  return values;
}

/// Step 5: the schedule's state, tried on the schedule itself (set_state checks
/// everything before it assigns anything), which then gets its own back.
inline void check_schedule(const Checkpoint& c, LrSchedule& schedule) {
  const std::string where = c.source();
  if (!c.contains("schedule/state")) throw CheckpointError(where + ": holds no schedule state");
  if (c.text("schedule/type") != schedule.describe()) {
    throw CheckpointError(where + ": schedule state is for " + c.text("schedule/type") + ", not " + schedule.describe());
  }
  if (c.f64s("schedule/state").size() != schedule.state().size()) {
    throw CheckpointError(where + ": schedule state has the wrong length");
  }
  const std::vector<double> own = schedule.state();
  try {
    schedule.set_state(c.f64s("schedule/state"));
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(where + ": " + e.what());
  }
  schedule.set_state(own);
}

}  // namespace detail

/// Puts the network's parameters and random state (and, when given, the optimizer's and schedule's state) into `c`.
template <class T>
void save_training_state(Checkpoint& c, Sequential<T>& net, Optimizer<T>* optimizer = nullptr,
                         const LrSchedule* schedule = nullptr) {
  std::string structure;
  for (const auto& r : network_structure(net)) structure += r.line() + "\n";
  c.set_text("structure", structure);
  for (const auto& p : net.parameters()) c.set_tensor<T>("param/" + p.name, p.shape, p.value);
  for (const auto& b : net.buffers()) c.set_tensor<T>("buffer/" + b.name, b.shape, b.value);
  for (std::size_t i = 0; i < net.size(); ++i) {
    const auto state = net[i].random_state();
    if (!state.empty()) c.set_u64s("layer_state/" + net[i].name(), state);
  }
  if (optimizer) {
    c.set_text("optimizer/type", optimizer->type_name());
    c.set_u64s("optimizer/steps", {optimizer->steps()});
    for (const auto& b : optimizer->state()) c.set_tensor<T>("optimizer/" + b.name, {b.size}, b.data);
  }
  if (schedule) {
    c.set_text("schedule/type", schedule->describe());
    c.set_f64s("schedule/state", schedule->state());
  }
}

/// Restores what save_training_state() wrote. Everything is checked first; on
/// any mismatch a CheckpointError names it and nothing has been changed.
template <class T>
void restore_training_state(const Checkpoint& c, Sequential<T>& net, Optimizer<T>* optimizer = nullptr,
                            LrSchedule* schedule = nullptr) {
  detail::check_same_network(c, net);
  const auto params = net.parameters();
  const auto values = detail::read_parameters(c, params);
  const auto buffers = net.buffers();
  const auto buffer_values = detail::read_buffers(c, buffers);
  const auto layer_states = detail::read_layer_states(c, net);
  const auto optimizer_values = optimizer ? detail::read_optimizer(c, *optimizer) : std::vector<std::vector<T>>();
  if (schedule) detail::check_schedule(c, *schedule);
  // Everything fits: apply.
  for (std::size_t i = 0; i < params.size(); ++i) std::copy(values[i].begin(), values[i].end(), params[i].value);
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    std::copy(buffer_values[i].begin(), buffer_values[i].end(), buffers[i].value);
  }
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (!layer_states[i].empty()) net[i].set_random_state(layer_states[i]);
  }
  if (optimizer) {
    const auto state = optimizer->state();
    for (std::size_t i = 0; i < state.size(); ++i) {
      std::copy(optimizer_values[i].begin(), optimizer_values[i].end(), state[i].data);
    }
    optimizer->set_steps(c.u64s("optimizer/steps")[0]);
  }
  if (schedule) schedule->set_state(c.f64s("schedule/state"));
}

}  // namespace convnet
