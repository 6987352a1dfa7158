// interop/: the protocol-buffer wire format, ONNX export (checked by ONNX's own checker and run by
// OpenCV's dnn, tests/onnx/check_consumers.py) and import (our own files back, bit for bit; and
// torchvision's AlexNet as torch.onnx.export writes it, against PyTorch's logits), and hostile files.
#include <gtest/gtest.h>

#include <convnet/interop/onnx_export.hpp>
#include <convnet/interop/onnx_import.hpp>
#include <convnet/layers/adaptive_avg_pool2d.hpp>
#include <convnet/layers/dropout.hpp>
#include <convnet/layers/gelu.hpp>
#include <convnet/layers/multiply.hpp>
#include <convnet/models/alexnet.hpp>
#include <convnet/models/fast_cifar.hpp>
#include <convnet/random.hpp>

#include <cmath>
#include <fstream>
#include <iostream>
#include <functional>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "processes.hpp"

namespace {

using namespace convnet;
using convnet::testing::TempDir;

Tensor<float> random_input(Index n, Index c, Index size, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<float> x(n, c, size, size);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.uniform(-1, 1));
  return x;
}

// A layer type of the test's own, with no ONNX writer until the test registers one.
template <class T>
class Negate : public Layer<T> {
 public:
  std::string type_name() const override { return "Negate"; }
  std::string describe() const override { return "Negate"; }
  Shape output_shape(const Shape& in) const override { return in; }

 protected:
  void forward_impl(const Tensor<T>& x, Tensor<T>& y) override { flat(y) = -flat(x); }
  void backward_impl(const Tensor<T>&, const Tensor<T>& g, Tensor<T>& dx) override { flat(dx) = -flat(g); }
};

// Every built-in layer type with an ONNX form, both LRN conventions, batch statistics that moved.
Sequential<float> every_exportable_layer() {
  Sequential<float> net;
  net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 8, 3).padding(1));
  net.add<BatchNorm2d<float>>("bn1", BatchNormOptions(8));
  net.add<ReLU<float>>("relu1");
  net.add<LocalResponseNorm<float>>("norm1", LocalResponseNormOptions());
  net.add<MaxPool2d<float>>("pool1", MaxPool2dOptions(3).stride(2));
  net.add<Conv2d<float>>("conv2", Conv2dOptions(8, 6, 3).stride(2).padding(1).groups(2).bias(false));
  net.add<LocalResponseNorm<float>>("norm2", LocalResponseNormOptions(3).alpha(3e-4).convention(LrnConvention::AlphaOverN));
  net.add<AdaptiveAvgPool2d<float>>("avg", 2, 2);
  net.add<Flatten<float>>("flatten");
  net.add<Dropout<float>>("drop", DropoutOptions(0.5));
  net.add<Dense<float>>("fc1", DenseOptions(24, 10));
  net.add<BatchNorm1d<float>>("bn2", BatchNormOptions(10));
  net.add<ReLU<float>>("relu2");
  net.add<Dense<float>>("fc2", DenseOptions(10, 4).bias(false));
  net.add<Softmax<float>>("prob");
  net.forward(random_input(8, 3, 16, 1));  // training mode: the running statistics move
  net.eval();
  return net;
}

void expect_same_outputs(Sequential<float>& a, Sequential<float>& b, const Tensor<float>& x) {
  const Tensor<float> ya = a.forward(x);
  const Tensor<float>& yb = b.forward(x);
  ASSERT_EQ(shape_of(ya), shape_of(yb));
  for (Index i = 0; i < ya.size(); ++i) ASSERT_EQ(ya.data()[i], yb.data()[i]) << "output " << i;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not a DataError: ") + e.what();
  }
  return "(no error)";
}

// ---- the wire format ----

TEST(Protobuf, FieldsComeBackAsWritten) {
  protobuf::Writer inner, outer;
  inner.int64(1, -3).bytes(2, "abc");
  outer.varint(1, 300).message(2, inner).float32(3, 1.5f).int64(4, std::int64_t{1} << 40);
  protobuf::Reader r(outer.str(), "test");
  protobuf::Field f;
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(f.number, 1);
  EXPECT_EQ(f.value, 300u);
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(f.type, protobuf::Bytes);
  protobuf::Reader in(f.bytes, "inner");
  protobuf::Field g;
  ASSERT_TRUE(in.next(g));
  EXPECT_EQ(g.int64(), -3);
  ASSERT_TRUE(in.next(g));
  EXPECT_EQ(g.bytes, "abc");
  EXPECT_FALSE(in.next(g));
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(f.float32(), 1.5f);
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(f.int64(), std::int64_t{1} << 40);
  EXPECT_FALSE(r.next(f));
}

TEST(Protobuf, LengthsPastTheEndAndEndlessNumbersAreErrors) {
  protobuf::Writer w;
  w.bytes(1, "hello");
  const std::string cut = w.str().substr(0, w.str().size() - 1);
  protobuf::Field f;
  EXPECT_EQ(error_of([&] { protobuf::Reader(cut, "m").next(f); }), "m: a length of 5 bytes past the end at byte 2 of a 6-byte message");
  EXPECT_NE(error_of([&] { protobuf::Reader(std::string(12, '\xff'), "m").next(f); }).find("longer than ten bytes"), std::string::npos);
  EXPECT_NE(error_of([&] { protobuf::Reader(std::string("\x0b", 1), "m").next(f); }).find("wire type 3"), std::string::npos);
}

// ---- export, then import: the same network ----

TEST(Onnx, OurFilesComeBackAsTheSameNetworkBitForBit) {
  Sequential<float> net = every_exportable_layer();
  const std::string bytes = to_onnx(net, OnnxExportOptions().input(3, 16).metadata("convnet.classes", "a\nb\nc\nd\n"));
  OnnxModel back = parse_onnx(bytes, "round trip");
  EXPECT_EQ(back.opset, 13);
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(back.height, 16);
  EXPECT_EQ(back.meta("convnet.classes"), "a\nb\nc\nd\n");
  EXPECT_EQ(back.producer, std::string("convnet ") + version);
  // Dropout has no ONNX node; every other layer comes back under its name, type and settings.
  ASSERT_EQ(back.network.size(), net.size() - 1);
  for (std::size_t i = 0, k = 0; i < net.size(); ++i) {
    if (net[i].type_name() == "Dropout") continue;
    EXPECT_EQ(back.network[k].name(), net[i].name());
    EXPECT_EQ(back.network[k].type_name(), net[i].type_name());
    if (net[i].type_name() != "BatchNorm2d" && net[i].type_name() != "BatchNorm1d") {  // eps, momentum: float32 in ONNX
      EXPECT_EQ(back.network[k].settings(), net[i].settings()) << net[i].name();
    }
    ++k;
  }
  expect_same_outputs(net, back.network, random_input(3, 3, 16, 2));
}

TEST(Onnx, ExportRefusesWhatOnnxCannotSayExactly) {
  Sequential<float> avg;
  avg.add<AdaptiveAvgPool2d<float>>("avg", 3, 3);
  EXPECT_EQ(error_of([&] { to_onnx(avg, OnnxExportOptions().input(3, 8)); }),
            "not a DataError: ONNX export: layer avg averages 8x8 to 3x3, which no AveragePool does exactly (export at an "
            "input size where it divides)");
  Sequential<float> negate;
  negate.add<Negate<float>>("neg");
  EXPECT_EQ(error_of([&] { to_onnx(negate); }),
            "not a DataError: ONNX export: layer neg is a Negate, which has no ONNX writer (register_onnx_writer)");
  // A program's own type exports once it says how (and our importer, which does not read Neg, says so).
  register_onnx_writer("Negate", [](OnnxGraph& g, Layer<float>& l) { g.node("Neg", {g.tensor}, l.name()); });
  const std::string bytes = to_onnx(negate);
  EXPECT_NE(bytes.find("Neg"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_onnx(bytes, "neg.onnx"); }).find("node neg (Neg): operator Neg is not one convnet reads"),
            std::string::npos);
  Sequential<float> small;
  small.add<Conv2d<float>>("conv", Conv2dOptions(3, 4, 5));
  EXPECT_NE(error_of([&] { to_onnx(small, OnnxExportOptions().input(3, 4)); }).find("conv"), std::string::npos);
}

// ---- independent consumers: ONNX's checker and OpenCV's dnn ----

void write_case(const std::string& dir, const std::string& name, Sequential<float>& net, Index channels, Index size) {
  export_onnx(net, dir + "/" + name + ".onnx", OnnxExportOptions().input(channels, size));
  const Tensor<float> x = random_input(2, channels, size, 7);
  const Tensor<float>& y = net.forward(x);
  std::ofstream(dir + "/" + name + ".shape") << "2 " << channels << " " << size << " " << size << "\n";
  std::ofstream(dir + "/" + name + ".input", std::ios::binary)
      .write(reinterpret_cast<const char*>(x.data()), static_cast<std::streamsize>(x.size() * 4));
  std::ofstream(dir + "/" + name + ".logits", std::ios::binary)
      .write(reinterpret_cast<const char*>(y.data()), static_cast<std::streamsize>(y.size() * 4));
}

TEST(Onnx, OnnxsCheckerPassesAndOpenCvGivesOurLogits) {
  TempDir dir;
  for (const char* name : {"paper", "cifar", "cifar-half-bn"}) {
    Sequential<float> net = make_alexnet<float>(AlexNetConfig::named(name), 3);
    net.train();
    net.forward(random_input(4, 3, AlexNetConfig::named(name).input_size(), 4));  // batch statistics move
    net.eval();
    write_case(dir.path.string(), name, net, 3, AlexNetConfig::named(name).input_size());
  }
  // examples/train_your_own.cpp's network.
  Sequential<float> own;
  own.add<Conv2d<float>>("conv1", Conv2dOptions(3, 32, 3).padding(1));
  own.add<ReLU<float>>("relu1");
  own.add<MaxPool2d<float>>("pool1", MaxPool2dOptions(2));
  own.add<Conv2d<float>>("conv2", Conv2dOptions(32, 64, 3).padding(1));
  own.add<ReLU<float>>("relu2");
  own.add<MaxPool2d<float>>("pool2", MaxPool2dOptions(2));
  own.add<Flatten<float>>("flatten");
  own.add<Dense<float>>("fc", DenseOptions(64 * 8 * 8, 10));
  own.eval();
  write_case(dir.path.string(), "train_your_own", own, 3, 32);
  Sequential<float> every = every_exportable_layer();
  write_case(dir.path.string(), "every_layer", every, 3, 16);
  // The fast CIFAR network (GELU as Erf, the logits' Multiply as Mul), and GELU's tanh form.
  Sequential<float> fast = make_fast_cifar<float>(FastCifarOptions(), 3);
  fast.forward(random_input(4, 3, 32, 5));  // batch statistics move
  fast.eval();
  write_case(dir.path.string(), "fast_cifar", fast, 3, 32);
  Sequential<float> tanh_gelu;
  tanh_gelu.add<Conv2d<float>>("conv", Conv2dOptions(3, 8, 3));
  tanh_gelu.add<GELU<float>>("gelu", true);
  tanh_gelu.add<Flatten<float>>("flatten");
  tanh_gelu.add<Dense<float>>("fc", DenseOptions(8 * 6 * 6, 5));
  tanh_gelu.add<Multiply<float>>("scale", -0.5);
  tanh_gelu.eval();
  write_case(dir.path.string(), "gelu_tanh", tanh_gelu, 3, 8);

  const convnet::testing::Result r =
      convnet::testing::run(std::string(CONVNET_PYTHON) + " " + CONVNET_TESTS_DIR + "/onnx/check_consumers.py " + dir.path.string());
  if (r.status == 77) GTEST_SKIP() << "not checked by ONNX and OpenCV on this host: " << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
  for (const char* name : {"paper", "cifar", "cifar-half-bn", "train_your_own", "every_layer", "fast_cifar", "gelu_tanh"}) {
    EXPECT_NE(r.output.find(std::string(name) + ".onnx: onnx.checker (full) passed; OpenCV"), std::string::npos) << r.output;
  }
  std::cout << r.output;
}

// ---- torchvision's AlexNet, as PyTorch's exporter writes it ----

TEST(Onnx, TorchvisionsAlexNetImportsAndGivesPyTorchsLogits) {
  TempDir dir;
  const convnet::testing::Result made = convnet::testing::run(std::string(CONVNET_PYTHON) + " " + CONVNET_TESTS_DIR +
                                                              "/onnx/torchvision_alexnet.py " + dir.path.string());
  if (made.status == 77) GTEST_SKIP() << "no PyTorch to write the file on this host: " << made.output;
  ASSERT_EQ(made.status, 0) << made.output;
  OnnxModel m = import_onnx((dir / "alexnet.onnx"));
  EXPECT_EQ(m.network.parameter_count(), 61100840);  // torchvision's alexnet()
  EXPECT_EQ(m.channels, 3);
  EXPECT_EQ(m.height, 224);
  std::vector<float> x(2 * 3 * 224 * 224), expected(2 * 1000);
  std::ifstream(dir / "alexnet.input", std::ios::binary).read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(x.size() * 4));
  std::ifstream(dir / "alexnet.logits", std::ios::binary)
      .read(reinterpret_cast<char*>(expected.data()), static_cast<std::streamsize>(expected.size() * 4));
  Tensor<float> input(2, 3, 224, 224);
  std::copy(x.begin(), x.end(), input.data());
  const Tensor<float>& y = m.network.forward(input);
  ASSERT_EQ(y.size(), 2000);
  double largest = 0, difference = 0;
  for (Index i = 0; i < y.size(); ++i) {
    largest = std::max(largest, std::abs(static_cast<double>(expected[static_cast<std::size_t>(i)])));
    difference = std::max(difference, std::abs(static_cast<double>(y.data()[i]) - expected[static_cast<std::size_t>(i)]));
  }
  EXPECT_LE(difference, 1e-4 * largest) << "largest logit " << largest;
  std::cout << "torchvision alexnet: " << m.network.size() << " layers, largest difference from PyTorch "
            << difference / largest << " of the largest logit\n";
}

// ---- hostile files ----

// A model whose graph is `graph` (nodes, initialisers, input), opset 13.
std::string model_with(const protobuf::Writer& graph) {
  protobuf::Writer opset, model;
  opset.bytes(1, "").int64(2, 13);
  model.int64(1, 7).message(7, graph).message(8, opset);
  return model.str();
}
protobuf::Writer input_4d(Index c, Index h) {
  protobuf::Writer shape, tensor, type, info;
  for (Index d : {Index{1}, c, h, h}) {
    protobuf::Writer dim;
    dim.int64(1, d);
    shape.message(1, dim);
  }
  tensor.varint(1, 1).message(2, shape);
  type.message(1, tensor);
  info.bytes(1, "x").message(2, type);
  return info;
}
protobuf::Writer node(const std::string& op, const std::vector<std::string>& in, const std::string& out) {
  protobuf::Writer n;
  for (const auto& i : in) n.bytes(1, i);
  n.bytes(2, out).bytes(3, out).bytes(4, op);
  return n;
}
protobuf::Writer tensor(const std::string& name, const std::vector<Index>& dims, std::size_t bytes, int type = 1) {
  protobuf::Writer t;
  for (Index d : dims) t.int64(1, d);
  t.varint(2, static_cast<std::uint64_t>(type)).bytes(8, name).bytes(9, std::string(bytes, '\0'));
  return t;
}

TEST(Onnx, HostileFilesAreRefusedNamingTheNodeBeforeAnythingLargeIsAllocated) {
  auto parse = [](const protobuf::Writer& graph) { return error_of([&] { parse_onnx(model_with(graph), "f.onnx"); }); };
  {  // a chain that works: the reference the others break
    protobuf::Writer g;
    g.message(1, node("Relu", {"x"}, "y")).message(11, input_4d(3, 4));
    EXPECT_EQ(parse(g), "(no error)");
  }
  {  // dimensions of 2^40 values, with 16 bytes of data
    protobuf::Writer g;
    g.message(1, node("Conv", {"x", "w"}, "y")).message(5, tensor("w", {1 << 20, 1 << 20, 1, 1}, 16)).message(11, input_4d(3, 4));
    EXPECT_EQ(parse(g), "ONNX file f.onnx: initialiser 'w' has dimensions over 2147483648 values (OnnxLimits::tensor_values)");
  }
  {  // 2^30 values said, 16 bytes held
    protobuf::Writer g;
    g.message(1, node("Conv", {"x", "w"}, "y")).message(5, tensor("w", {1 << 15, 1 << 15, 1, 1}, 16)).message(11, input_4d(3, 4));
    EXPECT_EQ(parse(g), "ONNX file f.onnx: initialiser 'w' has dimensions of 1073741824 values but holds 4");
  }
  {  // the same dimensions as int64 data, which is not read: they size nothing
    protobuf::Writer g;
    g.message(1, node("Conv", {"x", "w"}, "y")).message(5, tensor("w", {1 << 15, 1 << 15, 1, 1}, 16, 7)).message(11, input_4d(3, 4));
    EXPECT_EQ(parse(g), "ONNX file f.onnx: node y (Conv): initialiser 'w' is of data type 7; float (1) is read");
  }
  {  // a missing initialiser
    protobuf::Writer g;
    g.message(1, node("Conv", {"x", "w"}, "y")).message(11, input_4d(3, 4));
    EXPECT_EQ(parse(g), "ONNX file f.onnx: node y (Conv) reads 'w', which is neither the tensor before it nor an initialiser");
  }
  {  // a cycle: the first node reads the second's output
    protobuf::Writer g;
    g.message(1, node("Relu", {"z"}, "y")).message(1, node("Relu", {"y"}, "z")).message(11, input_4d(3, 4));
    EXPECT_EQ(parse(g), "ONNX file f.onnx: node y (Relu) reads 'z', not the output of the node before it ('x'): only chains "
                        "of layers are imported");
  }
  {  // an operator we do not read
    protobuf::Writer g;
    g.message(1, node("Relu", {"x"}, "y")).message(1, node("Sigmoid", {"y"}, "z")).message(11, input_4d(3, 4));
    EXPECT_EQ(parse(g).rfind("ONNX file f.onnx: node z (Sigmoid): operator Sigmoid is not one convnet reads", 0), 0u) << parse(g);
  }
  {  // a weight that does not fit the input
    protobuf::Writer g;
    g.message(1, node("Conv", {"x", "w"}, "y")).message(5, tensor("w", {2, 5, 1, 1}, 40)).message(11, input_4d(3, 4));
    EXPECT_NE(parse(g).find("node y (Conv): input channels 5 where 3 arrive"), std::string::npos) << parse(g);
  }
  {  // an input of 2^40 pixels a side
    protobuf::Writer g;
    g.message(1, node("Relu", {"x"}, "y")).message(11, input_4d(3, Index{1} << 40));
    EXPECT_NE(parse(g).find("its input has a dimension of 1099511627776"), std::string::npos) << parse(g);
  }
  // No graph; truncated bytes; a file over the limit.
  EXPECT_EQ(error_of([] { parse_onnx(std::string("\x08\x07", 2), "f.onnx"); }), "ONNX file f.onnx: holds no graph");
  protobuf::Writer g;
  g.message(1, node("Relu", {"x"}, "y")).message(11, input_4d(3, 4));
  const std::string whole = model_with(g);
  for (std::size_t cut = 1; cut < whole.size(); ++cut) {
    const std::string e = error_of([&] { parse_onnx(whole.substr(0, cut), "f.onnx"); });
    EXPECT_EQ(e.rfind("not a DataError", 0), std::string::npos) << "cut at " << cut << ": " << e;
  }
  EXPECT_NE(error_of([&] { parse_onnx(whole, "f.onnx", OnnxLimits().file_bytes(10)); }).find("OnnxLimits::file_bytes"),
            std::string::npos);
}

}  // namespace
