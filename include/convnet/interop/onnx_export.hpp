// A network written as ONNX (opset 13), the format deployment runtimes read (ONNX Runtime, OpenCV's
// dnn, TensorRT):
//
//   export_onnx(net, "model.onnx", OnnxExportOptions().input(3, 32).metadata("convnet.classes", "cat\ndog"));
//
// Each layer becomes ONNX nodes through the writer registered for its type (onnx_layer_writers():
// Conv with its groups, Relu, LRN, MaxPool, AveragePool or GlobalAveragePool where that is exact,
// BatchNormalization, Flatten, Gemm, Softmax, Mul, and GELU as Erf or Tanh with Mul/Add/Div; Dropout is
// left out, as at inference), its parameters
// and buffers initialisers named as in checkpoints ("conv1.weight"). A program's own layer type
// exports once it registers a writer (register_onnx_writer). The graph reads "input", [N, C, H, W]
// with N free, and the picture preparation travels as metadata (export_onnx(Classifier&, ...)).
#pragma once

#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../inference/classifier.hpp"
#include "../key_values.hpp"
#include "../layer.hpp"
#include "../models/sequential.hpp"
#include "../version.hpp"
#include "protobuf.hpp"

namespace convnet {

/// The ONNX numbers this writer uses (onnx.proto).
namespace onnx {
inline constexpr int kOpset = 13;
inline constexpr int kIrVersion = 7;  // the IR of opset 13 (ONNX 1.8)
enum DataType : int { Float = 1, Int64 = 7 };
enum AttributeType : int { AttrFloat = 1, AttrInt = 2, AttrString = 3, AttrFloats = 6, AttrInts = 7 };
}  // namespace onnx

struct OnnxExportOptions {
  /// The pictures the network reads: channels and a square side (default 3 x 32 x 32).
  OnnxExportOptions& input(Index channels, Index size) {
    channels_ = channels;
    size_ = size;
    return *this;
  }
  /// A metadata entry (metadata_props) of the model.
  OnnxExportOptions& metadata(std::string key, std::string value) {
    metadata_.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  OnnxExportOptions& graph_name(std::string v) {
    graph_name_ = std::move(v);
    return *this;
  }
  Index channels() const { return channels_; }
  Index size() const { return size_; }
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  const std::string& graph_name() const { return graph_name_; }

 private:
  Index channels_ = 3, size_ = 32;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::string graph_name_ = "convnet";
};

/// The graph under construction: nodes, initialisers, and the tensor flowing between layers
/// (its name, its ONNX rank and our shape of it).
class OnnxGraph {
 public:
  std::string tensor = "input";  ///< the current tensor's name
  int rank = 4;
  Shape shape;

  /// An attribute of a node.
  static protobuf::Writer attribute(const std::string& name, Index v) {
    protobuf::Writer a;
    a.bytes(1, name).int64(3, v).varint(20, onnx::AttrInt);
    return a;
  }
  static protobuf::Writer attribute(const std::string& name, double v) {
    protobuf::Writer a;
    a.bytes(1, name).float32(2, static_cast<float>(v)).varint(20, onnx::AttrFloat);
    return a;
  }
  static protobuf::Writer attribute(const std::string& name, const std::vector<Index>& v) {
    protobuf::Writer a;
    a.bytes(1, name);
    for (Index x : v) a.int64(8, x);
    a.varint(20, onnx::AttrInts);
    return a;
  }

  /// A node reading `inputs` (the current tensor first, as a rule) and writing `output`, which
  /// becomes the current tensor.
  /// `doc` goes into the node's doc_string (for people, and for our importer: see LRN).
  void node(const std::string& op, const std::vector<std::string>& inputs, const std::string& output,
            const std::vector<protobuf::Writer>& attributes = {}, const std::string& doc = "") {
    protobuf::Writer n;
    for (const auto& i : inputs) n.bytes(1, i);
    n.bytes(2, output).bytes(3, output).bytes(4, op);
    for (const auto& a : attributes) n.message(5, a);
    if (!doc.empty()) n.bytes(6, doc);
    graph_.message(1, n);
    tensor = output;
  }

  /// A float initialiser; returns its name.
  std::string initializer(const std::string& name, const std::vector<Index>& dims, const float* data) {
    protobuf::Writer t;
    Index count = 1;
    for (Index d : dims) {
      t.int64(1, d);
      count *= d;
    }
    t.varint(2, onnx::Float).bytes(8, name);
    t.bytes(9, std::string_view(reinterpret_cast<const char*>(data), static_cast<std::size_t>(count) * sizeof(float)));
    initializers_.message(5, t);
    return name;
  }

  const protobuf::Writer& nodes() const { return graph_; }
  const protobuf::Writer& initializers() const { return initializers_; }

 private:
  protobuf::Writer graph_, initializers_;
};

/// Writes one layer's nodes: reads graph.tensor (of graph.rank) and leaves its output there.
using OnnxLayerWriter = std::function<void(OnnxGraph& graph, Layer<float>& layer)>;

namespace detail {

inline KeyValues onnx_settings(Layer<float>& layer) {
  return KeyValues(layer.settings(), "ONNX export of layer " + layer.name() + " (" + layer.type_name() + ")");
}

inline const Parameter<float>* parameter_named(const std::vector<Parameter<float>>& params, const std::string& name) {
  for (const auto& p : params) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

/// Gemm wants [N, F]: a 4-D tensor is flattened first.
inline void flatten_to_rank2(OnnxGraph& g, const std::string& layer) {
  if (g.rank == 2) return;
  g.node("Flatten", {g.tensor}, layer + ".flatten", {OnnxGraph::attribute("axis", Index{1})});
  g.rank = 2;
}

inline void batch_norm_node(OnnxGraph& g, Layer<float>& l);
inline void gelu_nodes(OnnxGraph& g, Layer<float>& l);

inline std::vector<std::pair<std::string, OnnxLayerWriter>>& onnx_writer_table() {
  using G = OnnxGraph;
  static std::vector<std::pair<std::string, OnnxLayerWriter>> table = {
      {"Conv2d",
       [](G& g, Layer<float>& l) {
         if (g.rank != 4) throw ArgumentError("ONNX export: layer " + l.name() + " (Conv2d) follows a flattened tensor");
         KeyValues s = onnx_settings(l);
         const Index k = s.take<Index>("kernel_size"), stride = s.take<Index>("stride", 1), pad = s.take<Index>("padding", 0);
         const Index groups = s.take<Index>("groups", 1);
         const auto params = l.parameters();
         std::vector<std::string> inputs{g.tensor};
         for (const auto& p : params) inputs.push_back(g.initializer(l.name() + "." + p.name, p.shape, p.value));
         g.node("Conv", inputs, l.name(),
                {G::attribute("kernel_shape", std::vector<Index>{k, k}), G::attribute("strides", std::vector<Index>{stride, stride}),
                 G::attribute("pads", std::vector<Index>{pad, pad, pad, pad}), G::attribute("dilations", std::vector<Index>{1, 1}),
                 G::attribute("group", groups)});
       }},
      {"Dense",
       [](G& g, Layer<float>& l) {
         flatten_to_rank2(g, l.name());
         const auto params = l.parameters();
         std::vector<std::string> inputs{g.tensor};
         for (const auto& p : params) inputs.push_back(g.initializer(l.name() + "." + p.name, p.shape, p.value));
         g.node("Gemm", inputs, l.name(), {G::attribute("transB", Index{1})});
       }},
      {"ReLU", [](G& g, Layer<float>& l) { g.node("Relu", {g.tensor}, l.name()); }},
      {"GELU", [](G& g, Layer<float>& l) { gelu_nodes(g, l); }},
      {"Multiply",
       [](G& g, Layer<float>& l) {
         KeyValues s = onnx_settings(l);
         const float factor = static_cast<float>(s.take<double>("factor"));
         g.node("Mul", {g.tensor, g.initializer(l.name() + ".factor", {}, &factor)}, l.name());
       }},
      {"LocalResponseNorm",
       [](G& g, Layer<float>& l) {
         KeyValues s = onnx_settings(l);
         const Index size = s.take<Index>("size");
         const double alpha = s.take<double>("alpha"), beta = s.take<double>("beta"), k = s.take<double>("k");
         const std::string convention = s.take<std::string>("convention", "paper");
         // Our window is [c - size/2, c + size/2], ONNX's [c - floor((size-1)/2), c + ceil((size-1)/2)]:
         // the same, as our sizes are odd.
         // ONNX divides alpha by size (Caffe's and PyTorch's convention); the paper's alpha multiplies the sum.
         const double onnx_alpha = convention == "paper" ? alpha * static_cast<double>(size) : alpha;
         // ONNX's attributes are float32, and alpha * size / size in float is not always alpha again:
         // the layer's own settings ride in the doc_string, and our importer takes them where they
         // agree with the attributes, so a round trip gives the same network to the bit.
         g.node("LRN", {g.tensor}, l.name(),
                {G::attribute("size", size), G::attribute("alpha", onnx_alpha), G::attribute("beta", beta), G::attribute("bias", k)},
                "convnet " + LayerRecord{l.name(), l.type_name(), l.settings()}.line());
       }},
      {"MaxPool2d",
       [](G& g, Layer<float>& l) {
         KeyValues s = onnx_settings(l);
         const Index k = s.take<Index>("kernel_size"), stride = s.take<Index>("stride", k);
         g.node("MaxPool", {g.tensor}, l.name(),
                {G::attribute("kernel_shape", std::vector<Index>{k, k}), G::attribute("strides", std::vector<Index>{stride, stride})});
       }},
      {"AdaptiveAvgPool2d",
       [](G& g, Layer<float>& l) {
         KeyValues s = onnx_settings(l);
         const Index oh = s.take<Index>("output_height"), ow = s.take<Index>("output_width");
         if (oh == 1 && ow == 1) return g.node("GlobalAveragePool", {g.tensor}, l.name());
         if (g.shape.h % oh != 0 || g.shape.w % ow != 0) {
           throw ArgumentError(concat("ONNX export: layer ", l.name(), " averages ", g.shape.h, "x", g.shape.w, " to ", oh, "x",
                                      ow, ", which no AveragePool does exactly (export at an input size where it divides)"));
         }
         const Index kh = g.shape.h / oh, kw = g.shape.w / ow;
         g.node("AveragePool", {g.tensor}, l.name(),
                {G::attribute("kernel_shape", std::vector<Index>{kh, kw}), G::attribute("strides", std::vector<Index>{kh, kw})});
       }},
      {"BatchNorm2d", [](G& g, Layer<float>& l) { batch_norm_node(g, l); }},
      {"BatchNorm1d", [](G& g, Layer<float>& l) { batch_norm_node(g, l); }},
      {"Dropout", [](G&, Layer<float>&) {}},  // identity at inference
      {"Flatten",
       [](G& g, Layer<float>& l) {
         g.node("Flatten", {g.tensor}, l.name(), {G::attribute("axis", Index{1})});
         g.rank = 2;
       }},
      {"Softmax", [](G& g, Layer<float>& l) { g.node("Softmax", {g.tensor}, l.name(), {G::attribute("axis", Index{1})}); }},
  };
  return table;
}

inline void batch_norm_node(OnnxGraph& g, Layer<float>& l) {
  KeyValues s = onnx_settings(l);
  const Index c = s.take<Index>("num_features");
  const double eps = s.take<double>("eps"), momentum = s.take<double>("momentum");
  s.take("weight", true);  // a gamma held at 1 is written as ones, as the missing weight below
  const auto params = l.parameters();
  std::vector<float> ones(static_cast<std::size_t>(c), 1.0f), zeros(static_cast<std::size_t>(c), 0.0f);
  const Parameter<float>* w = parameter_named(params, "weight");
  const Parameter<float>* b = parameter_named(params, "bias");
  std::vector<std::string> inputs{g.tensor};
  inputs.push_back(g.initializer(l.name() + ".weight", {c}, w ? w->value : ones.data()));
  inputs.push_back(g.initializer(l.name() + ".bias", {c}, b ? b->value : zeros.data()));
  for (const auto& buffer : l.buffers()) inputs.push_back(g.initializer(l.name() + "." + buffer.name, buffer.shape, buffer.value));
  // ONNX's momentum weighs the running value, PyTorch's (and ours) the batch's; used in training only.
  g.node("BatchNormalization", inputs, l.name(),
         {OnnxGraph::attribute("epsilon", eps), OnnxGraph::attribute("momentum", 1.0 - momentum)});
}

/// GELU has no operator in opset 13: x (1 + erf(x / sqrt 2)) / 2 as Div, Erf, Add, Mul, Mul, or the
/// tanh form x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2 from Mul, Add and Tanh.
inline void gelu_nodes(OnnxGraph& g, Layer<float>& l) {
  KeyValues s = onnx_settings(l);
  const bool approximate = s.take("approximate", false);
  const std::string x = g.tensor, n = l.name();
  const float one = 1.0f, half = 0.5f;
  if (approximate) {
    const float cubic = 0.044715f, scale = 0.7978845608028654f;  // sqrt(2 / pi)
    g.node("Mul", {x, x}, n + "/x2");
    g.node("Mul", {g.tensor, x}, n + "/x3");
    g.node("Mul", {g.tensor, g.initializer(n + ".cubic", {}, &cubic)}, n + "/cx3");
    g.node("Add", {x, g.tensor}, n + "/inner");
    g.node("Mul", {g.tensor, g.initializer(n + ".scale", {}, &scale)}, n + "/u");
    g.node("Tanh", {g.tensor}, n + "/tanh");
  } else {
    const float sqrt2 = 1.4142135623730951f;
    g.node("Div", {x, g.initializer(n + ".sqrt2", {}, &sqrt2)}, n + "/scaled");
    g.node("Erf", {g.tensor}, n + "/erf");
  }
  g.node("Add", {g.tensor, g.initializer(n + ".one", {}, &one)}, n + "/plus_one");
  g.node("Mul", {x, g.tensor}, n + "/times_x");
  g.node("Mul", {g.tensor, g.initializer(n + ".half", {}, &half)}, n);
}

}  // namespace detail

/// Registers how a program's own layer type (by its type_name()) becomes ONNX nodes.
inline void register_onnx_writer(const std::string& type, OnnxLayerWriter writer) {
  for (const auto& [name, w] : detail::onnx_writer_table()) {
    if (name == type) throw ArgumentError("register_onnx_writer: layer type '" + type + "' already has a writer");
  }
  detail::onnx_writer_table().emplace_back(type, std::move(writer));
}

/// The ONNX model of `net` (in evaluation mode), as bytes.
inline std::string to_onnx(Sequential<float>& net, const OnnxExportOptions& options = {}) {
  if (net.size() == 0) throw ArgumentError("ONNX export: the network has no layers");
  OnnxGraph g;
  g.shape = Shape{1, options.channels(), options.size(), options.size()};
  net.output_shape(g.shape);  // a ShapeError names the first layer that cannot read this input
  for (std::size_t i = 0; i < net.size(); ++i) {
    Layer<float>& layer = net[i];
    const OnnxLayerWriter* writer = nullptr;
    for (const auto& [type, w] : detail::onnx_writer_table()) {
      if (type == layer.type_name()) writer = &w;
    }
    if (writer == nullptr) {
      throw ArgumentError("ONNX export: layer " + layer.name() + " is a " + layer.type_name() +
                          ", which has no ONNX writer (register_onnx_writer)");
    }
    (*writer)(g, layer);
    g.shape = layer.output_shape(g.shape);
  }
  auto value_info = [](const std::string& name, const std::vector<Index>& dims) {
    protobuf::Writer shape;
    for (std::size_t i = 0; i < dims.size(); ++i) {
      protobuf::Writer dim;
      if (i == 0) dim.bytes(2, "N"); else dim.int64(1, dims[i]);
      shape.message(1, dim);
    }
    protobuf::Writer tensor, type, info;
    tensor.varint(1, onnx::Float).message(2, shape);
    type.message(1, tensor);
    info.bytes(1, name).message(2, type);
    return info;
  };
  const Shape out = g.shape;
  const std::vector<Index> output_dims =
      g.rank == 2 ? std::vector<Index>{1, out.c * out.h * out.w} : std::vector<Index>{1, out.c, out.h, out.w};
  // The graph in field order: nodes (1), name (2), initialisers (5), input (11), output (12).
  protobuf::Writer assembled = g.nodes();
  assembled.bytes(2, options.graph_name());
  std::string graph_bytes = assembled.str() + g.initializers().str();
  protobuf::Writer tail;
  tail.message(11, value_info("input", {1, options.channels(), options.size(), options.size()}))
      .message(12, value_info(g.tensor, output_dims));
  graph_bytes += tail.str();

  protobuf::Writer opset, model;
  opset.bytes(1, "").int64(2, onnx::kOpset);
  model.int64(1, onnx::kIrVersion).bytes(2, "convnet").bytes(3, version).bytes(7, graph_bytes).message(8, opset);
  for (const auto& [key, value] : options.metadata()) {
    protobuf::Writer entry;
    entry.bytes(1, key).bytes(2, value);
    model.message(14, entry);
  }
  return model.str();
}

/// Writes `net` as an ONNX file at `path` (DataError naming it when it cannot be written).
inline void export_onnx(Sequential<float>& net, const std::string& path, const OnnxExportOptions& options = {}) {
  const std::string bytes = to_onnx(net, options);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) throw DataError("cannot write " + path);
}

/// The metadata that lets a runtime prepare pictures as training did: "convnet.preparation" (the
/// preparation's text, as checkpoints hold it), "convnet.input_size", "convnet.channels",
/// "convnet.mean" and "convnet.std" (per channel, on the 0-255 pixel scale, space-separated) and
/// "convnet.classes" (one name a line).
inline OnnxExportOptions onnx_options_for(const Classifier& model) {
  auto numbers = [](const std::vector<double>& v) {
    std::string out;
    for (double x : v) out += (out.empty() ? "" : " ") + detail::setting_value(x);
    return out;
  };
  std::string classes;
  for (const auto& name : model.class_names()) classes += name + "\n";
  const Preparation& prep = model.preparation();
  return OnnxExportOptions()
      .input(prep.channels(), model.input_size())
      .metadata("convnet.preparation", prep.str())
      .metadata("convnet.input_size", std::to_string(model.input_size()))
      .metadata("convnet.channels", std::to_string(prep.channels()))
      .metadata("convnet.mean", numbers(prep.channel_stats().mean))
      .metadata("convnet.std", numbers(prep.channel_stats().stddev))
      .metadata("convnet.classes", classes);
}

/// A classifier (network, preparation, class names) as an ONNX file at `path`.
inline void export_onnx(Classifier& model, const std::string& path) {
  export_onnx(model.network(), path, onnx_options_for(model));
}

}  // namespace convnet
