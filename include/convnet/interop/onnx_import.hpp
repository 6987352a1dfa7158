// ONNX models read into a Sequential: the way in for networks trained elsewhere (torchvision's
// AlexNet exported by torch.onnx.export), and the way back for ours.
//
//   OnnxModel m = import_onnx("alexnet.onnx");
//   m.network.forward(images);             // [N, 3, 224, 224] -> [N, 1000]
//   m.metadata                             // metadata_props, e.g. "convnet.classes"
//
// The graph must be a chain: every node reads the tensor the node before it wrote (the graph's
// input for the first), and everything else it reads is an initialiser. The operators are those
// the exporter writes (interop/onnx_export.hpp): Conv, Relu, LRN, MaxPool, AveragePool and
// GlobalAveragePool, BatchNormalization, Flatten, Gemm, Softmax, with Dropout and Identity passed
// over. Anything else is refused naming the node. A file is never trusted: its size, the number of
// nodes and initialisers, every tensor's dimensions and element count are bounded (OnnxLimits), an
// initialiser's data must be exactly as long as its dimensions say before a value is copied, and
// the network built must read the graph's input, so nothing is allocated beyond what the file holds.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../data/file_bytes.hpp"
#include "../errors.hpp"
#include "../layers/adaptive_avg_pool2d.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/dense.hpp"
#include "../layers/flatten.hpp"
#include "../layers/local_response_norm.hpp"
#include "../layers/max_pool2d.hpp"
#include "../layers/relu.hpp"
#include "../layers/softmax.hpp"
#include "../models/network_state.hpp"
#include "../models/sequential.hpp"
#include "protobuf.hpp"

namespace convnet {

struct OnnxLimits {
  OnnxLimits& file_bytes(Index v) { file_bytes_ = v; return *this; }
  OnnxLimits& nodes(Index v) { nodes_ = v; return *this; }
  OnnxLimits& tensor_values(Index v) { tensor_values_ = v; return *this; }
  Index file_bytes() const { return file_bytes_; }
  Index nodes() const { return nodes_; }
  Index tensor_values() const { return tensor_values_; }

 private:
  Index file_bytes_ = Index{4} << 30;      ///< the whole file (the paper network is 250 MB)
  Index nodes_ = 10000;                    ///< nodes, and initialisers
  Index tensor_values_ = Index{1} << 31;   ///< values in any one initialiser
};

/// What an ONNX file holds, as convnet objects.
struct OnnxModel {
  Sequential<float> network;  ///< in evaluation mode
  Index channels = 0;         ///< of the graph's input [N, C, H, W] (H and W 0 when the file leaves them free)
  Index height = 0, width = 0;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::string producer;  ///< producer_name and producer_version
  Index opset = 0;

  /// The metadata entry `key`, or "".
  std::string meta(const std::string& key) const {
    for (const auto& [k, v] : metadata) {
      if (k == key) return v;
    }
    return "";
  }
};

namespace detail {

/// An initialiser as read: its dimensions and where its values lie in the file.
struct OnnxTensor {
  std::vector<Index> dims;
  Index count = 0;
  std::string_view raw;    ///< raw_data, little-endian float32
  std::string_view proto;  ///< the whole TensorProto, when the values are float_data fields
  int data_type = 0;
};

struct OnnxAttribute {
  std::optional<Index> i;
  std::optional<float> f;
  std::vector<Index> ints;
  std::string s;
};

struct OnnxNode {
  std::string name, op, doc;
  std::vector<std::string> inputs, outputs;
  std::map<std::string, OnnxAttribute> attributes;
};

class OnnxReader {
 public:
  OnnxReader(std::string_view bytes, std::string source, const OnnxLimits& limits)
      : bytes_(bytes), source_(std::move(source)), limits_(limits) {}

  OnnxModel read() {
    OnnxModel model;
    std::string_view graph;
    protobuf::Reader r(bytes_, source_ + " (ModelProto)");
    for (protobuf::Field f; r.next(f);) {
      if (f.number == 7 && f.type == protobuf::Bytes) graph = f.bytes;
      else if (f.number == 2 && f.type == protobuf::Bytes) model.producer = std::string(f.bytes) + model.producer;
      else if (f.number == 3 && f.type == protobuf::Bytes) model.producer += " " + std::string(f.bytes);
      else if (f.number == 8 && f.type == protobuf::Bytes) read_opset(f.bytes, model);
      else if (f.number == 14 && f.type == protobuf::Bytes) model.metadata.push_back(read_entry(f.bytes));
    }
    if (graph.empty()) fail("holds no graph");
    if (model.opset == 0) fail("does not import the default ONNX operator set");
    if (model.opset < 7 || model.opset > 18) fail(concat("uses opset ", model.opset, "; opsets 7 to 18 are read"));
    read_graph(graph, model);
    return model;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw DataError("ONNX file " + source_ + ": " + what); }

  void read_opset(std::string_view bytes, OnnxModel& model) {
    std::string domain;
    Index version = 0;
    protobuf::Reader r(bytes, source_ + " (OperatorSetIdProto)");
    for (protobuf::Field f; r.next(f);) {
      if (f.number == 1 && f.type == protobuf::Bytes) domain = std::string(f.bytes);
      if (f.number == 2 && f.type == protobuf::Varint) version = f.int64();
    }
    if (domain.empty() || domain == "ai.onnx") model.opset = version;
  }

  std::pair<std::string, std::string> read_entry(std::string_view bytes) {
    std::pair<std::string, std::string> e;
    protobuf::Reader r(bytes, source_ + " (metadata)");
    for (protobuf::Field f; r.next(f);) {
      if (f.number == 1 && f.type == protobuf::Bytes) e.first = std::string(f.bytes);
      if (f.number == 2 && f.type == protobuf::Bytes) e.second = std::string(f.bytes);
    }
    return e;
  }

  void read_graph(std::string_view bytes, OnnxModel& model) {
    std::vector<std::string_view> nodes, inputs;
    protobuf::Reader r(bytes, source_ + " (GraphProto)");
    for (protobuf::Field f; r.next(f);) {
      if (f.type != protobuf::Bytes) continue;
      if (f.number == 1) nodes.push_back(f.bytes);
      if (f.number == 5) read_initializer(f.bytes);
      if (f.number == 11) inputs.push_back(f.bytes);
      if (static_cast<Index>(std::max(nodes.size(), initializers_.size())) > limits_.nodes()) {
        fail(concat("has more than ", limits_.nodes(), " nodes or initialisers (OnnxLimits::nodes)"));
      }
    }
    if (nodes.empty()) fail("its graph has no nodes");
    std::string input = read_input(inputs, model);
    Shape shape{1, model.channels, model.height, model.width};
    int rank = 4;
    std::set<std::string> names;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const OnnxNode node = read_node(nodes[i], i);
      const std::string where = "node " + node.name + " (" + node.op + ")";
      if (node.inputs.empty() || node.inputs[0] != input) {
        fail(where + " reads " + (node.inputs.empty() ? std::string("nothing") : "'" + node.inputs[0] + "'") +
             ", not the output of the node before it ('" + input + "'): only chains of layers are imported");
      }
      for (std::size_t k = 1; k < node.inputs.size(); ++k) {
        if (!node.inputs[k].empty() && !initializers_.count(node.inputs[k])) {
          fail(where + " reads '" + node.inputs[k] + "', which is neither the tensor before it nor an initialiser");
        }
      }
      if (node.outputs.empty() || node.outputs[0].empty()) fail(where + " writes nothing");
      std::unique_ptr<Layer<float>> layer;
      try {
        layer = make(node, where, shape, rank);
      } catch (const DataError&) {
        throw;
      } catch (const std::exception& e) {  // a layer's own bounds
        fail(where + ": " + e.what());
      }
      input = node.outputs[0];
      if (!layer) continue;  // Dropout, Identity
      std::string name = layer_name(node, names);
      try {
        if (shape.h > 0 && shape.w > 0) shape = layer->output_shape(shape);
      } catch (const std::exception& e) {
        fail(where + ": " + e.what());
      }
      model.network.add(std::move(layer), name);
    }
    if (model.network.size() == 0) fail("its graph has no layer to import");
    model.network.eval();
  }

  std::string read_input(const std::vector<std::string_view>& inputs, OnnxModel& model) {
    for (std::string_view bytes : inputs) {
      std::string name;
      std::vector<Index> dims;
      protobuf::Reader r(bytes, source_ + " (graph input)");
      for (protobuf::Field f; r.next(f);) {
        if (f.number == 1 && f.type == protobuf::Bytes) name = std::string(f.bytes);
        if (f.number == 2 && f.type == protobuf::Bytes) dims = read_type_dims(f.bytes);
      }
      if (initializers_.count(name)) continue;  // IR < 4 lists the initialisers as inputs too
      if (dims.size() != 4) fail(concat("its input '", name, "' has ", dims.size(), " dimensions; [N, C, H, W] is read"));
      if (dims[1] <= 0) fail("its input '" + name + "' does not fix its channels");
      model.channels = dims[1];
      model.height = std::max<Index>(0, dims[2]);
      model.width = std::max<Index>(0, dims[3]);
      return name;
    }
    fail("its graph has no input besides its initialisers");
  }

  /// The dimensions of a TypeProto's tensor shape (-1 for a free one).
  std::vector<Index> read_type_dims(std::string_view type) {
    std::vector<Index> dims;
    protobuf::Reader t(type, source_ + " (TypeProto)");
    for (protobuf::Field f; t.next(f);) {
      if (f.number != 1 || f.type != protobuf::Bytes) continue;
      protobuf::Reader tensor(f.bytes, source_ + " (TypeProto.Tensor)");
      for (protobuf::Field g; tensor.next(g);) {
        if (g.number != 2 || g.type != protobuf::Bytes) continue;
        protobuf::Reader shape(g.bytes, source_ + " (TensorShapeProto)");
        for (protobuf::Field d; shape.next(d);) {
          if (d.number != 1 || d.type != protobuf::Bytes) continue;
          if (dims.size() == 8) fail("its input has more than 8 dimensions");
          Index value = -1;
          protobuf::Reader dim(d.bytes, source_ + " (Dimension)");
          for (protobuf::Field v; dim.next(v);) {
            if (v.number == 1 && v.type == protobuf::Varint) value = v.int64();
          }
          if (value > (Index{1} << 20)) fail(concat("its input has a dimension of ", value));
          dims.push_back(value);
        }
      }
    }
    return dims;
  }

  void read_initializer(std::string_view bytes) {
    OnnxTensor t;
    std::string name;
    protobuf::Reader r(bytes, source_ + " (TensorProto)");
    Index floats = 0;
    for (protobuf::Field f; r.next(f);) {
      if (f.number == 1 && f.type == protobuf::Varint) {
        if (t.dims.size() == 8) fail("an initialiser has more than 8 dimensions");
        t.dims.push_back(f.int64());
      } else if (f.number == 1 && f.type == protobuf::Bytes) {  // packed dims
        for (std::size_t pos = 0; pos < f.bytes.size();) {
          if (t.dims.size() == 8) fail("an initialiser has more than 8 dimensions");
          t.dims.push_back(static_cast<Index>(protobuf::Reader::packed_varint(f.bytes, pos, source_ + " (dims)")));
        }
      } else if (f.number == 2 && f.type == protobuf::Varint) {
        t.data_type = static_cast<int>(f.value);
      } else if (f.number == 4 && f.type == protobuf::Bytes) {  // float_data, packed
        if (f.bytes.size() % 4 != 0) fail("initialiser '" + name + "' has float_data of " + std::to_string(f.bytes.size()) + " bytes");
        floats += static_cast<Index>(f.bytes.size() / 4);
      } else if (f.number == 4 && f.type == protobuf::Fixed32) {  // float_data, one value a field
        ++floats;
      } else if (f.number == 8 && f.type == protobuf::Bytes) {
        name = std::string(f.bytes);
      } else if (f.number == 9 && f.type == protobuf::Bytes) {
        t.raw = f.bytes;
      } else if (f.number == 14 || f.number == 13) {
        fail("initialiser '" + name + "' keeps its data outside the file, which is not read");
      }
    }
    t.count = 1;
    for (Index d : t.dims) {
      if (d < 0 || d > limits_.tensor_values() || t.count * std::max<Index>(d, 1) > limits_.tensor_values()) {
        fail("initialiser '" + name + "' has dimensions over " + std::to_string(limits_.tensor_values()) +
             " values (OnnxLimits::tensor_values)");
      }
      t.count *= d;
    }
    if (name.empty()) fail("an initialiser has no name");
    if (t.data_type == 1) {
      const Index have = t.raw.empty() ? floats : static_cast<Index>(t.raw.size() / 4);
      if ((!t.raw.empty() && t.raw.size() % 4 != 0) || have != t.count) {
        fail(concat("initialiser '", name, "' has dimensions of ", t.count, " values but holds ", have));
      }
      if (t.raw.empty()) t.proto = bytes;  // float_data: values() reads them from the TensorProto again
    }
    if (!initializers_.emplace(name, std::move(t)).second) fail("initialiser '" + name + "' is given twice");
  }

  /// The values of a float initialiser (only after its count was checked against its data).
  std::vector<float> values(const std::string& name, const std::string& where) const {
    const OnnxTensor& t = initializers_.at(name);
    if (t.data_type != 1) fail(concat(where, ": initialiser '", name, "' is of data type ", t.data_type, "; float (1) is read"));
    std::vector<float> v(static_cast<std::size_t>(t.count));
    if (!t.raw.empty()) {
      std::memcpy(v.data(), t.raw.data(), v.size() * sizeof(float));
      return v;
    }
    std::size_t k = 0;
    protobuf::Reader r(t.proto, source_ + " (TensorProto)");
    for (protobuf::Field f; r.next(f);) {
      if (f.number != 4) continue;
      if (f.type == protobuf::Fixed32) v[k++] = f.float32();
      if (f.type == protobuf::Bytes) {
        std::memcpy(v.data() + k, f.bytes.data(), f.bytes.size() / 4 * 4);
        k += f.bytes.size() / 4;
      }
    }
    return v;
  }
  /// An initialiser's dimensions, once it is known to be float data as long as they say: only then
  /// may they size a layer.
  const std::vector<Index>& dims(const std::string& name, const std::string& where) const {
    const OnnxTensor& t = initializers_.at(name);
    if (t.data_type != 1) fail(concat(where, ": initialiser '", name, "' is of data type ", t.data_type, "; float (1) is read"));
    return t.dims;
  }

  OnnxNode read_node(std::string_view bytes, std::size_t index) {
    OnnxNode node;
    protobuf::Reader r(bytes, source_ + " (NodeProto)");
    for (protobuf::Field f; r.next(f);) {
      if (f.type != protobuf::Bytes) continue;
      if (f.number == 1) node.inputs.emplace_back(f.bytes);
      if (f.number == 2) node.outputs.emplace_back(f.bytes);
      if (f.number == 3) node.name = std::string(f.bytes);
      if (f.number == 4) node.op = std::string(f.bytes);
      if (f.number == 6) node.doc = std::string(f.bytes.substr(0, 4096));
      if (f.number == 7 && !f.bytes.empty() && f.bytes != "ai.onnx") {
        fail("node " + node.name + " is of domain '" + std::string(f.bytes) + "'; the default ONNX operators are read");
      }
      if (f.number == 5) {
        if (node.attributes.size() == 64) fail("node " + node.name + " has more than 64 attributes");
        read_attribute(f.bytes, node);
      }
      if (node.inputs.size() + node.outputs.size() > 64) fail("node " + node.name + " has more than 64 inputs and outputs");
    }
    if (node.name.empty()) node.name = "#" + std::to_string(index + 1);
    return node;
  }

  void read_attribute(std::string_view bytes, OnnxNode& node) {
    std::string name;
    OnnxAttribute a;
    protobuf::Reader r(bytes, source_ + " (AttributeProto)");
    for (protobuf::Field f; r.next(f);) {
      if (f.number == 1 && f.type == protobuf::Bytes) name = std::string(f.bytes);
      if (f.number == 2 && f.type == protobuf::Fixed32) a.f = f.float32();
      if (f.number == 3 && f.type == protobuf::Varint) a.i = f.int64();
      if (f.number == 4 && f.type == protobuf::Bytes) a.s = std::string(f.bytes.substr(0, 256));
      if (f.number == 8 && f.type == protobuf::Varint) a.ints.push_back(f.int64());
      if (f.number == 8 && f.type == protobuf::Bytes) {
        for (std::size_t pos = 0; pos < f.bytes.size() && a.ints.size() <= 64;) {
          a.ints.push_back(static_cast<Index>(protobuf::Reader::packed_varint(f.bytes, pos, source_ + " (ints)")));
        }
      }
      if (a.ints.size() > 64) fail("node " + node.name + ": attribute " + name + " has more than 64 values");
    }
    node.attributes[name] = std::move(a);
  }

  // ---- the operators ----

  static Index attr_int(const OnnxNode& n, const std::string& key, Index fallback) {
    const auto it = n.attributes.find(key);
    return it != n.attributes.end() && it->second.i ? *it->second.i : fallback;
  }
  static double attr_float(const OnnxNode& n, const std::string& key, double fallback) {
    const auto it = n.attributes.find(key);
    return it != n.attributes.end() && it->second.f ? static_cast<double>(*it->second.f) : fallback;
  }
  static std::vector<Index> attr_ints(const OnnxNode& n, const std::string& key) {
    const auto it = n.attributes.find(key);
    return it != n.attributes.end() ? it->second.ints : std::vector<Index>{};
  }
  void require(bool ok, const std::string& where, const std::string& what) const {
    if (!ok) fail(where + ": " + what + ", which convnet's layers do not do");
  }
  /// A square window: kernel_shape (or `fallback`), strides, pads and dilations of a 2-D operator.
  struct Window {
    Index kernel = 0, stride = 1, pad = 0;
  };
  Window window(const OnnxNode& n, const std::string& where, Index fallback_kernel = 0) const {
    const auto it = n.attributes.find("auto_pad");
    require(it == n.attributes.end() || it->second.s.empty() || it->second.s == "NOTSET", where, "auto_pad " +
            (it == n.attributes.end() ? "" : it->second.s));
    std::vector<Index> k = attr_ints(n, "kernel_shape"), s = attr_ints(n, "strides"), p = attr_ints(n, "pads"),
                       d = attr_ints(n, "dilations");
    if (k.empty() && fallback_kernel > 0) k = {fallback_kernel, fallback_kernel};
    require(k.size() == 2 && k[0] == k[1] && k[0] >= 1, where, "a kernel that is not square and 2-D");
    require(s.empty() || (s.size() == 2 && s[0] == s[1] && s[0] >= 1), where, "strides that differ");
    require(p.empty() || (p.size() == 4 && std::all_of(p.begin(), p.end(), [&](Index v) { return v == p[0] && v >= 0; })),
            where, "padding that differs by side");
    require(d.empty() || std::all_of(d.begin(), d.end(), [](Index v) { return v == 1; }), where, "dilation");
    require(attr_int(n, "ceil_mode", 0) == 0, where, "ceil_mode");
    const Window w{k[0], s.empty() ? 1 : s[0], p.empty() ? 0 : p[0]};
    // Bounded so that a file cannot make an activation grow without end: padding under the kernel.
    require(w.pad < w.kernel && w.stride <= (Index{1} << 16), where, concat("padding ", w.pad, " (as wide as the kernel) or stride ", w.stride));
    return w;
  }
  std::vector<float> initializer_values(const OnnxNode& n, std::size_t input, const std::string& where,
                                        const std::vector<Index>& expect) const {
    const std::string& name = n.inputs.at(input);
    if (dims(name, where) != expect) {
      fail(where + ": initialiser '" + name + "' is " + shape_text(dims(name, where)) + ", where " + shape_text(expect) +
           " is needed");
    }
    return values(name, where);
  }
  static void copy(const std::vector<float>& from, const Parameter<float>& to) { std::copy(from.begin(), from.end(), to.value); }

  std::unique_ptr<Layer<float>> make(const OnnxNode& n, const std::string& where, const Shape& shape, int& rank) {
    const std::string& op = n.op;
    auto has = [&](std::size_t i) { return n.inputs.size() > i && !n.inputs[i].empty(); };
    if (op == "Dropout" || op == "Identity") return nullptr;
    if (op == "Relu") return std::make_unique<ReLU<float>>();
    if (op == "Conv") {
      require(rank == 4, where, "a convolution of a flattened tensor");
      require(has(1), where, "no weight initialiser");
      const std::vector<Index>& w = dims(n.inputs[1], where);
      require(w.size() == 4 && w[2] == w[3], where, "a weight that is not [out, in/groups, k, k]");
      const Window win = window(n, where, w[2]);
      const Index groups = attr_int(n, "group", 1);
      require(groups >= 1 && w[0] % groups == 0, where, "groups that do not divide the output channels");
      require(win.kernel == w[2], where, "kernel_shape unlike the weight's");
      require(shape.c == 0 || shape.c == w[1] * groups, where, concat("input channels ", w[1] * groups, " where ", shape.c, " arrive"));
      auto conv = std::make_unique<Conv2d<float>>(
          Conv2dOptions(w[1] * groups, w[0], w[2]).stride(win.stride).padding(win.pad).groups(groups).bias(has(2)));
      const auto params = conv->parameters();
      copy(initializer_values(n, 1, where, w), params[0]);
      if (has(2)) copy(initializer_values(n, 2, where, {w[0]}), params[1]);
      return conv;
    }
    if (op == "LRN") {
      const Index size = attr_int(n, "size", 0);
      require(size >= 1 && size % 2 == 1, where, concat("LRN size ", size, " (ours: odd sizes, a centred window)"));
      const auto from_attributes = LocalResponseNormOptions(size)
                                       .alpha(attr_float(n, "alpha", 1e-4))
                                       .beta(attr_float(n, "beta", 0.75))
                                       .k(attr_float(n, "bias", 1.0))
                                       .convention(LrnConvention::AlphaOverN);
      return std::make_unique<LocalResponseNorm<float>>(exact_lrn(n, from_attributes));
    }
    if (op == "MaxPool") {
      require(rank == 4, where, "pooling of a flattened tensor");
      require(attr_int(n, "storage_order", 0) == 0, where, "storage_order");
      require(n.outputs.size() == 1, where, "indices as a second output");
      const Window win = window(n, where);
      require(win.pad == 0, where, "padding");
      return std::make_unique<MaxPool2d<float>>(MaxPool2dOptions(win.kernel).stride(win.stride));
    }
    if (op == "GlobalAveragePool") {
      require(rank == 4, where, "pooling of a flattened tensor");
      return std::make_unique<AdaptiveAvgPool2d<float>>(1, 1);
    }
    if (op == "AveragePool") {
      require(rank == 4, where, "pooling of a flattened tensor");
      const Window win = window(n, where);
      require(win.pad == 0 && win.stride == win.kernel, where, "windows that overlap, skip or pad");
      require(shape.h > 0 && shape.w > 0, where, "an input whose size the file leaves free");
      require(shape.h % win.kernel == 0 && shape.w % win.kernel == 0, where, "windows that do not tile the input");
      return std::make_unique<AdaptiveAvgPool2d<float>>(shape.h / win.kernel, shape.w / win.kernel);
    }
    if (op == "BatchNormalization") {
      require(n.inputs.size() == 5 && has(1) && has(2) && has(3) && has(4), where, "missing scale, bias, mean or variance");
      require(n.outputs.size() == 1, where, "training outputs");
      const std::vector<Index>& s = dims(n.inputs[1], where);
      require(s.size() == 1 && s[0] >= 1, where, "a scale that is not [C]");
      const Index c = s[0];
      const auto options = BatchNormOptions(c).eps(attr_float(n, "epsilon", 1e-5)).momentum(1.0 - attr_float(n, "momentum", 0.9));
      std::unique_ptr<Layer<float>> bn;
      if (rank == 4) bn = std::make_unique<BatchNorm2d<float>>(options);
      else bn = std::make_unique<BatchNorm1d<float>>(options);
      const auto params = bn->parameters();
      copy(initializer_values(n, 1, where, {c}), params[0]);
      copy(initializer_values(n, 2, where, {c}), params[1]);
      const auto buffers = bn->buffers();
      for (std::size_t k = 0; k < 2; ++k) {
        const std::vector<float> v = initializer_values(n, 3 + k, where, {c});
        std::copy(v.begin(), v.end(), buffers[k].value);
      }
      return bn;
    }
    if (op == "Flatten") {
      require(attr_int(n, "axis", 1) == 1, where, "a flattening axis other than 1");
      rank = 2;
      return std::make_unique<Flatten<float>>();
    }
    if (op == "Gemm") {
      require(rank == 2, where, "a product with a tensor that is not [N, F]");
      require(has(1), where, "no weight initialiser");
      require(attr_int(n, "transA", 0) == 0 && attr_float(n, "alpha", 1.0) == 1.0 && attr_float(n, "beta", 1.0) == 1.0,
              where, "transA, alpha or beta");
      const bool trans_b = attr_int(n, "transB", 0) != 0;
      const std::vector<Index>& w = dims(n.inputs[1], where);
      require(w.size() == 2, where, "a weight that is not 2-D");
      const Index out = trans_b ? w[0] : w[1], in = trans_b ? w[1] : w[0];
      const Index arriving = shape.h > 0 ? shape.c * shape.h * shape.w : 0;
      require(arriving == 0 || arriving == in, where, concat(in, " input features where ", arriving, " arrive"));
      auto dense = std::make_unique<Dense<float>>(DenseOptions(in, out).bias(has(2)));
      const auto params = dense->parameters();
      std::vector<float> v = initializer_values(n, 1, where, w);
      if (!trans_b) {  // [in, out] -> [out, in]
        std::vector<float> t(v.size());
        for (Index i = 0; i < in; ++i)
          for (Index o = 0; o < out; ++o) t[static_cast<std::size_t>(o * in + i)] = v[static_cast<std::size_t>(i * out + o)];
        v.swap(t);
      }
      copy(v, params[0]);
      if (has(2)) {
        const std::vector<Index>& b = dims(n.inputs[2], where);
        copy(initializer_values(n, 2, where, b.size() == 2 ? std::vector<Index>{1, out} : std::vector<Index>{out}), params[1]);
      }
      return dense;
    }
    if (op == "Softmax") {
      const Index axis = attr_int(n, "axis", -1);
      require(axis == 1 || (axis == -1 && rank == 2), where, "a softmax over an axis other than the channels");
      return std::make_unique<Softmax<float>>();
    }
    fail(where + ": operator " + op + " is not one convnet reads (Conv, Relu, LRN, MaxPool, AveragePool, "
         "GlobalAveragePool, BatchNormalization, Flatten, Gemm, Softmax, Dropout, Identity)");
  }

  /// Our exporter's LRN nodes carry the layer's settings in their doc_string ("convnet <name>
  /// LocalResponseNorm size=5 alpha=0.0001 ..."): taken when they give the node's float32 attributes.
  static LocalResponseNormOptions exact_lrn(const OnnxNode& n, const LocalResponseNormOptions& attributes) {
    if (n.doc.rfind("convnet ", 0) != 0) return attributes;
    try {
      const LayerRecord r = LayerRecord::parse(n.doc.substr(8));
      if (r.type != "LocalResponseNorm") return attributes;
      KeyValues kv(r.settings, "LRN settings");
      std::unique_ptr<LocalResponseNorm<float>> layer = LocalResponseNorm<float>::from_settings(kv);
      const LocalResponseNormOptions& o = layer->options();
      auto same = [](double a, double b) { return static_cast<float>(a) == static_cast<float>(b); };
      const double onnx_alpha = o.effective_alpha() * static_cast<double>(o.size());
      if (o.size() == attributes.size() && same(onnx_alpha, attributes.alpha()) && same(o.beta(), attributes.beta()) &&
          same(o.k(), attributes.k())) {
        return o;
      }
    } catch (const std::exception&) {  // not ours after all: the attributes stand
    }
    return attributes;
  }

  /// The node's name made a layer name (no spaces: structure lines are split on them), unique.
  static std::string layer_name(const OnnxNode& node, std::set<std::string>& names) {
    std::string name;
    for (char c : node.name) name += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-') ? c : '_';
    while (!name.empty() && (name.front() == '_' || name.front() == '.')) name.erase(0, 1);
    if (name.empty()) name = node.op;
    std::string unique = name;
    for (int k = 2; !names.insert(unique).second; ++k) unique = name + "_" + std::to_string(k);
    return unique;
  }

  std::string_view bytes_;
  std::string source_;
  OnnxLimits limits_;
  std::map<std::string, OnnxTensor> initializers_;
};

}  // namespace detail

/// The network and metadata of ONNX bytes; `source` names them in errors (DataError).
inline OnnxModel parse_onnx(std::string_view bytes, const std::string& source = "(bytes)", const OnnxLimits& limits = {}) {
  if (static_cast<Index>(bytes.size()) > limits.file_bytes()) {
    throw DataError(detail::concat("ONNX file ", source, " is ", bytes.size(), " bytes, over the limit of ", limits.file_bytes(),
                           " (OnnxLimits::file_bytes)"));
  }
  return detail::OnnxReader(bytes, source, limits).read();
}

/// The ONNX file at `path`, read whole (bounded by OnnxLimits::file_bytes before it is read).
inline OnnxModel import_onnx(const std::string& path, const OnnxLimits& limits = {}) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path, limits.file_bytes(), "ONNX file", "OnnxLimits::file_bytes");
  return parse_onnx(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path, limits);
}

}  // namespace convnet
