// Parity with PyTorch: tests/golden/pytorch_parity.ckpt holds what PyTorch
// 1.13 computed in double (tools/make_golden.py wrote it; no PyTorch is needed
// here) for each layer type with the tricky options, the losses, and the
// whole paper, cifar and torchvision AlexNets. Inputs, weights and upstream
// gradients come from the same integer formula on both sides, so only
// results are stored. Outputs and gradients must agree within 1e-4 relative.
#include <gtest/gtest.h>

#include <convnet/convnet.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace {

using namespace convnet;

const std::string kGolden = CONVNET_GOLDEN_DIR;

// v(i, salt) of tools/make_golden.py, exactly.
double v(Index i, Index salt) {
  return static_cast<double>((i * 7919 + salt * 104729) % 2001 - 1000) / 1000.0;
}

template <class T>
void fill_formula(T* data, Index size, Index salt, double scale) {
  for (Index i = 0; i < size; ++i) data[i] = static_cast<T>(v(i, salt) * scale);
}

// Parameters in PyTorch's state_dict order (layer by layer, weight then bias).
template <class T>
void fill_parameters(std::vector<Parameter<T>> params) {
  Index t = 0;
  for (auto& p : params) {
    Index fan_in = 1;
    for (std::size_t d = 1; d < p.shape.size(); ++d) fan_in *= p.shape[d];
    fill_formula(p.value, p.size, t + 1, p.shape.size() > 1 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.1);
    ++t;
  }
}

// BatchNorm's running statistics j = 0, 1, ... (mean, variance, layer by layer), as make_golden.py's fill().
template <class T>
void fill_buffers(std::vector<Buffer<T>> buffers) {
  Index j = 0;
  for (auto& b : buffers) {
    const bool mean = b.name.size() >= 12 && b.name.compare(b.name.size() - 12, 12, "running_mean") == 0;
    for (Index i = 0; i < b.size; ++i) b.value[i] = static_cast<T>(mean ? 0.1 * v(i, 700 + j) : 1 + 0.5 * v(i, 700 + j));
    ++j;
  }
}

const Checkpoint& golden() {
  static const Checkpoint c = Checkpoint::load(kGolden + "/pytorch_parity.ckpt");
  return c;
}
// GELU and the fast CIFAR network (make_golden.py's fast_cifar_cases).
const Checkpoint& golden_fast() {
  static const Checkpoint c = Checkpoint::load(kGolden + "/pytorch_parity_fast.ckpt");
  return c;
}

// |ours - theirs| <= 1e-4 |theirs| elementwise, with a floor far below the
// tensor's scale for entries that are (nearly) zero on both sides.
template <class T>
void expect_matches(const T* ours, const std::vector<double>& theirs, const std::string& what, double tol = 1e-4) {
  double scale = 0;
  for (double x : theirs) scale = std::max(scale, std::abs(x));
  ASSERT_GT(theirs.size(), 0u) << what;
  int bad = 0;
  for (std::size_t i = 0; i < theirs.size(); ++i) {
    const double a = static_cast<double>(ours[i]), b = theirs[i];
    if (!(std::abs(a - b) <= tol * std::abs(b) + 1e-9 * scale)) {
      if (++bad <= 3) ADD_FAILURE() << what << "[" << i << "]: convnet " << a << ", PyTorch " << b;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << theirs.size() << " values differ";
}

std::vector<double> golden_values(const std::string& key, std::vector<Index>* shape = nullptr,
                                  const Checkpoint& from = golden()) {
  return from.tensor<double>(key, shape);
}

void check_layer(const std::string& name, Layer<double>& layer, const Shape& input_shape, double input_scale = 1.0,
                 const Checkpoint& from = golden()) {
  SCOPED_TRACE(name);
  fill_parameters(layer.parameters());
  Tensor<double> x = make_tensor<double>(input_shape);
  fill_formula(x.data(), x.size(), 0, input_scale);
  layer.zero_grad();
  const Tensor<double>& y = layer.forward(x);
  std::vector<Index> shape;
  expect_matches(y.data(), golden_values(name + "/output", &shape, from), name + " output");
  const Shape s = shape_of(y);
  std::vector<Index> ours{s.n, s.c, s.h, s.w};
  ours.resize(shape.size());  // dense outputs are [N, F] in PyTorch
  if (shape.size() == 2) ours = {s.n, s.c};
  EXPECT_EQ(ours, shape) << name;
  Tensor<double> g = make_tensor<double>(s);
  fill_formula(g.data(), g.size(), 999, 1.0);
  const Tensor<double>& dx = layer.backward(g);
  expect_matches(dx.data(), golden_values(name + "/grad_input", nullptr, from), name + " input gradient");
  for (auto& p : layer.parameters()) {
    expect_matches(p.grad, golden_values(name + "/grad/" + p.name, nullptr, from), name + " gradient of " + p.name);
  }
}

TEST(PytorchParity, ConvolutionsWithGroupsStridePadding) {
  Conv2d<double> grouped(Conv2dOptions(4, 6, 3).stride(2).padding(1).groups(2));
  check_layer("conv_groups2", grouped, {2, 4, 7, 7});
  Conv2d<double> strided(Conv2dOptions(3, 4, 5).stride(3).padding(2));
  check_layer("conv_stride_padding", strided, {1, 3, 11, 11});
}

TEST(PytorchParity, LocalResponseNormInBothConventions) {
  LocalResponseNorm<double> caffe(
      LocalResponseNormOptions(5).alpha(0.5).beta(0.75).k(1.0).convention(LrnConvention::AlphaOverN));
  check_layer("lrn_caffe", caffe, {2, 7, 3, 3}, 2.0);
  LocalResponseNorm<double> paper(LocalResponseNormOptions(5).alpha(0.1).beta(0.75).k(2.0));
  check_layer("lrn_paper", paper, {2, 7, 3, 3}, 2.0);
}

TEST(PytorchParity, PoolingDenseReLU) {
  MaxPool2d<double> pool(MaxPool2dOptions(3).stride(2));
  check_layer("maxpool_overlapping", pool, {2, 3, 9, 9});
  Dense<double> dense(DenseOptions(12, 5));
  check_layer("dense", dense, {3, 12, 1, 1});
  AdaptiveAvgPool2d<double> adaptive3(3, 3);
  check_layer("adaptive_avgpool_7to3", adaptive3, {2, 2, 7, 7});
  AdaptiveAvgPool2d<double> adaptive6(6, 6);
  check_layer("adaptive_avgpool_13to6", adaptive6, {1, 2, 13, 13});
  ReLU<double> relu;
  check_layer("relu", relu, {2, 3, 4, 4});
}

// Training mode from running statistics 0 and 1: output, gradients, the statistics after the step,
// then evaluation mode with them.
void check_batch_norm(const std::string& name, Layer<double>& bn, const Shape& input_shape) {
  SCOPED_TRACE(name);
  Index t = 0;
  for (auto& p : bn.parameters()) fill_formula(p.value, p.size, ++t, 0.1);
  Tensor<double> x = make_tensor<double>(input_shape);
  fill_formula(x.data(), x.size(), 0, 1.0);
  bn.zero_grad();
  const Tensor<double>& y = bn.forward(x);
  expect_matches(y.data(), golden_values(name + "/output"), name + " output");
  Tensor<double> g = make_tensor<double>(shape_of(y));
  fill_formula(g.data(), g.size(), 999, 1.0);
  expect_matches(bn.backward(g).data(), golden_values(name + "/grad_input"), name + " input gradient");
  for (auto& p : bn.parameters()) {
    expect_matches(p.grad, golden_values(name + "/grad/" + p.name), name + " gradient of " + p.name);
  }
  const auto buffers = bn.buffers();
  expect_matches(buffers[0].value, golden_values(name + "/running_mean"), name + " running mean");
  expect_matches(buffers[1].value, golden_values(name + "/running_var"), name + " running variance");
  bn.set_training(false);
  expect_matches(bn.forward(x).data(), golden_values(name + "/eval_output"), name + " evaluation output");
}

TEST(PytorchParity, BatchNormInTrainingAndEvaluation) {
  BatchNorm2d<double> bn2(BatchNormOptions(3));
  check_batch_norm("batchnorm2d", bn2, {2, 3, 4, 5});
  BatchNorm2d<double> plain(BatchNormOptions(3).affine(false).eps(0.1).momentum(0.3));
  check_batch_norm("batchnorm2d_no_affine", plain, {3, 3, 2, 2});
  BatchNorm1d<double> bn1(BatchNormOptions(6));
  check_batch_norm("batchnorm1d", bn1, {5, 6, 1, 1});
}

TEST(PytorchParity, Losses) {
  SoftmaxCrossEntropy<double> ce;
  SoftmaxCrossEntropy<double> smoothed(CrossEntropyOptions().label_smoothing(0.1));
  MultiClassHinge<double> hinge;
  MultiClassHinge<double> squared(HingeOptions().squared(true));
  CosineSimilarityLoss<double> cosine;
  const std::vector<std::pair<std::string, Loss<double>*>> cases{
      {"cross_entropy", &ce}, {"cross_entropy_smoothed", &smoothed}, {"hinge", &hinge}, {"squared_hinge", &squared}, {"cosine", &cosine}};
  for (const auto& [name, loss] : cases) {
    Tensor<double> logits(4, 6, 1, 1);
    fill_formula(logits.data(), logits.size(), 0, 3.0);
    const double value = loss->forward(logits, {0, 5, 2, 2});
    expect_matches(&value, golden_values(name + "/loss"), name + " value");
    expect_matches(loss->backward().data(), golden_values(name + "/grad_input"), name + " gradient");
  }
}

// every_fast_path: each convolution Winograd can compute is made to, in both
// passes, whatever the automatic rule would pick at this batch size.
// fast_layers: how many convolutions that is (conv2-conv5; in cifar conv1 too, 5 x 5 at stride 1).
void check_network(const std::string& name, Index batch, bool every_fast_path = false, int fast_layers = 0) {
  SCOPED_TRACE(name + (every_fast_path ? " (Winograd wherever it runs)" : ""));
  const AlexNetConfig config = AlexNetConfig::named(name);
  auto net = make_alexnet<double>(config, 1);
  int forced = 0;
  for (std::size_t i = 0; every_fast_path && i < net.size(); ++i) {
    if (auto* conv = dynamic_cast<Conv2d<double>*>(&net[i])) {
      const Conv2dOptions& o = conv->options();
      if (winograd::supports(o.kernel_size(), o.stride(), o.padding())) {
        conv->set_algorithm(ConvAlgorithm::Winograd);
        ++forced;
      }
    }
  }
  if (every_fast_path) {
    EXPECT_EQ(forced, fast_layers);
  }
  fill_parameters(net.parameters());
  fill_buffers(net.buffers());
  net.eval();
  Tensor<double> x(batch, 3, config.input_size(), config.input_size());
  fill_formula(x.data(), x.size(), 0, 1.0);
  net.zero_grad();
  const Tensor<double>& y = net.forward(x);
  expect_matches(y.data(), golden_values(name + "/output"), name + " logits");
  Tensor<double> g = make_tensor<double>(shape_of(y));
  fill_formula(g.data(), g.size(), 999, 1.0);
  net.backward(g);
  for (auto& p : net.parameters()) {
    std::vector<double> sample;
    for (Index k = 0; k < 32; ++k) {
      sample.push_back(p.grad[static_cast<Index>((static_cast<std::uint64_t>(k) * 2654435761ULL + 12345ULL) %
                                                 static_cast<std::uint64_t>(p.size))]);
    }
    expect_matches(sample.data(), golden_values(name + "/grad_sample/" + p.name), name + " gradient of " + p.name);
  }
}

TEST(PytorchParity, Gelu) {
  GELU<double> exact;
  check_layer("gelu", exact, {2, 3, 4, 4}, 3.0, golden_fast());
  GELU<double> tanh_form(true);
  check_layer("gelu_tanh", tanh_form, {2, 3, 4, 4}, 3.0, golden_fast());
}

// The fast CIFAR network against tools/convnet_torch.py's torch_fast_cifar: logits and sampled
// gradients of every parameter (the whitening layer unfrozen, as PyTorch computes its gradient),
// with running statistics (evaluation) and with the batch's (training, where the last batch
// normalisation's running statistics after the step are compared too).
void check_fast_cifar(bool training) {
  const std::string name = training ? "fast_cifar_train" : "fast_cifar_eval";
  SCOPED_TRACE(name);
  auto net = make_fast_cifar<double>(FastCifarOptions(), 1);
  net.unfreeze_all();
  fill_parameters(net.parameters());
  fill_buffers(net.buffers());
  net.set_training(training);
  Tensor<double> x(4, 3, 32, 32);
  fill_formula(x.data(), x.size(), 0, 1.0);
  net.zero_grad();
  const Tensor<double>& y = net.forward(x);
  EXPECT_EQ(shape_of(y), (Shape{4, 10, 1, 1}));
  expect_matches(y.data(), golden_values(name + "/output", nullptr, golden_fast()), name + " logits");
  Tensor<double> g = make_tensor<double>(shape_of(y));
  fill_formula(g.data(), g.size(), 999, 1.0);
  net.backward(g);
  const auto params = net.parameters();
  EXPECT_EQ(params.size(), 14u);  // whiten, six convolutions, six batch-norm biases, fc
  for (auto& p : params) {
    std::vector<double> sample;
    for (Index k = 0; k < 32; ++k) {
      sample.push_back(p.grad[static_cast<Index>((static_cast<std::uint64_t>(k) * 2654435761ULL + 12345ULL) %
                                                 static_cast<std::uint64_t>(p.size))]);
    }
    expect_matches(sample.data(), golden_values(name + "/grad_sample/" + p.name, nullptr, golden_fast()),
                   name + " gradient of " + p.name);
  }
  if (training) {
    auto& bn6 = dynamic_cast<BatchNorm2d<double>&>(net.layer("bn6"));
    expect_matches(bn6.running_mean().data(), golden_values(name + "/running_mean/bn6", nullptr, golden_fast()), "bn6 running mean");
    expect_matches(bn6.running_var().data(), golden_values(name + "/running_var/bn6", nullptr, golden_fast()), "bn6 running variance");
  }
}

TEST(PytorchParity, FastCifarNetwork) {
  check_fast_cifar(false);
  check_fast_cifar(true);
}

TEST(PytorchParity, PaperNetwork) { check_network("paper", 1); }
TEST(PytorchParity, CifarNetwork) { check_network("cifar", 2); }
TEST(PytorchParity, TorchvisionNetwork) { check_network("torchvision", 1); }
TEST(PytorchParity, CifarBatchNormNetwork) { check_network("cifar-bn", 2); }
TEST(PytorchParity, PaperNetworkThroughWinograd) { check_network("paper", 1, true, 4); }
TEST(PytorchParity, CifarNetworkThroughWinograd) { check_network("cifar", 2, true, 5); }

// A model trained in PyTorch, converted by tools/export_pytorch.py, computes here what it computed there.
TEST(PytorchParity, ExportedModelLoadsAndAgrees) {
  const Checkpoint c = Checkpoint::load(kGolden + "/exported_tiny.ckpt");
  EXPECT_FALSE(c.contains("architecture"));  // as a foreign checkpoint has none
  const AlexNetConfig config = AlexNetConfig::parse(c.text("config"));
  auto net = make_alexnet<float>(config, 7);
  restore_training_state(c, net);
  net.eval();
  Tensor<float> x(2, 3, 32, 32);
  fill_formula(x.data(), x.size(), 0, 1.0);
  const Tensor<float>& y = net.forward(x);
  expect_matches(y.data(), golden_values("exported_tiny/output"), "exported model logits", 1e-4);
  // A parameter the network does not have is refused, not ignored.
  Checkpoint extra = c;
  extra.set_f64s("param/fc9.weight", {1.0});
  try {
    restore_training_state(extra, net);
    FAIL() << "an unknown parameter was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("holds fc9.weight, which this network does not have"), std::string::npos)
        << e.what();
  }
}

TEST(TorchvisionConfig, ShapesAndParameterCount) {
  auto net = make_alexnet<float>(AlexNetConfig::named("torchvision"));
  EXPECT_EQ(net.parameter_count(), 61'100'840);
  EXPECT_EQ(net.output_shape({2, 3, 224, 224}), (Shape{2, 1000, 1, 1}));
  EXPECT_EQ(net.layer("avgpool").output_shape({1, 256, 13, 13}), (Shape{1, 256, 6, 6}));
  EXPECT_EQ(net.output_shape({1, 3, 256, 320}), (Shape{1, 1000, 1, 1}));  // adaptive pooling takes any size
  std::vector<std::string> names;
  for (std::size_t i = 0; i < net.size(); ++i) names.push_back(net[i].name());
  const std::vector<std::string> expected{"conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3",
                                          "conv4", "relu4", "conv5", "relu5", "pool5", "avgpool", "flatten", "drop6",
                                          "fc6", "relu6", "drop7", "fc7", "relu7", "fc8"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(AlexNetConfig::parse(AlexNetConfig::named("torchvision").str()).adaptive_pool().value_or(0), 6);
}

}  // namespace
