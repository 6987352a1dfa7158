// The models of models/: Sequential and the AlexNet composition: the paper's counts and shapes, the
// CIFAR configurations and their text, initialisation, modes, the model summary, and networks
// rebuilt from their checkpoints alone (saved_network.hpp), a program's own layer type among them.
#include <gtest/gtest.h>

#include <convnet/layers/batch_norm.hpp>
#include <convnet/layers/conv2d.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/layers/dropout.hpp>
#include <convnet/layers/flatten.hpp>
#include <convnet/layers/gelu.hpp>
#include <convnet/layers/multiply.hpp>
#include <convnet/layers/local_response_norm.hpp>
#include <convnet/layers/max_pool2d.hpp>
#include <convnet/layers/relu.hpp>
#include <convnet/losses/softmax_cross_entropy.hpp>
#include <convnet/models/alexnet.hpp>
#include <convnet/models/fast_cifar.hpp>
#include <convnet/models/patch_whitening.hpp>
#include <convnet/inference/classifier.hpp>
#include <convnet/layers/adaptive_avg_pool2d.hpp>
#include <convnet/layers/softmax.hpp>
#include <convnet/models/saved_network.hpp>
#include <convnet/models/sequential.hpp>
#include <convnet/models/transfer.hpp>
#include <convnet/models/summary.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/random.hpp>
#include <convnet/tensor.hpp>
#include <convnet/train/step.hpp>

#include "helpers.hpp"

#include <cmath>
#include <locale>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace convnet;

Index params_of(Sequential<float>& net, const std::string& layer) { return net.layer(layer).parameter_count(); }

TEST(AlexNet, PaperCountsAndShapesMatchTheStudysTable) {
  auto net = make_alexnet<float>(AlexNetConfig::named("paper"));
  EXPECT_EQ(net.parameter_count(), 62378344);
  EXPECT_EQ(params_of(net, "conv1"), 34944);
  EXPECT_EQ(params_of(net, "conv2"), 614656);
  EXPECT_EQ(params_of(net, "conv3"), 885120);
  EXPECT_EQ(params_of(net, "conv4"), 1327488);
  EXPECT_EQ(params_of(net, "conv5"), 884992);
  EXPECT_EQ(params_of(net, "fc6"), 37752832);
  EXPECT_EQ(params_of(net, "fc7"), 16781312);
  EXPECT_EQ(params_of(net, "fc8"), 4097000);

  const auto rows = net.summary({1, 3, 227, 227});
  auto shape_of_layer = [&](const std::string& name) {
    for (const auto& r : rows)
      if (r.name == name) return paper_shape(r.output);
    return std::string("missing");
  };
  EXPECT_EQ(shape_of_layer("conv1"), "55x55x96");
  EXPECT_EQ(shape_of_layer("pool1"), "27x27x96");
  EXPECT_EQ(shape_of_layer("conv2"), "27x27x256");
  EXPECT_EQ(shape_of_layer("pool2"), "13x13x256");
  EXPECT_EQ(shape_of_layer("conv3"), "13x13x384");
  EXPECT_EQ(shape_of_layer("conv4"), "13x13x384");
  EXPECT_EQ(shape_of_layer("conv5"), "13x13x256");
  EXPECT_EQ(shape_of_layer("pool5"), "6x6x256");
  EXPECT_EQ(shape_of_layer("fc8"), "1x1x1000");

  const SummaryTotals t = summary_totals(rows, {1, 3, 227, 227});
  EXPECT_EQ(t.conv_parameters, 3747200);
  EXPECT_EQ(t.conv_neurons, 650080);
  EXPECT_EQ(t.parameters, 62378344);
  EXPECT_EQ(t.macs, 1135256096);  // "about 1.1 billion" multiply-adds
  EXPECT_NEAR(static_cast<double>(t.study_activations) * 4 / 1048576.0, 3.57, 0.005);  // the study's 3.57 MB
}

TEST(AlexNet, PaperLayerOrder) {
  auto net = make_alexnet<float>(AlexNetConfig::named("paper"));
  std::string order;
  for (std::size_t i = 0; i < net.size(); ++i) order += net[i].name() + " ";
  EXPECT_EQ(order,
            "conv1 relu1 lrn1 pool1 conv2 relu2 lrn2 pool2 conv3 relu3 conv4 relu4 conv5 relu5 pool5 flatten "
            "fc6 relu6 drop6 fc7 relu7 drop7 fc8 ");
  // The paper's LRN, in the paper's convention.
  const auto& lrn = dynamic_cast<LocalResponseNorm<float>&>(net.layer("lrn1"));
  EXPECT_EQ(lrn.options().convention(), LrnConvention::AlphaOnSum);
  EXPECT_DOUBLE_EQ(lrn.options().k(), 2.0);
  EXPECT_DOUBLE_EQ(dynamic_cast<Dropout<float>&>(net.layer("drop6")).options().p(), 0.5);
}

TEST(AlexNet, TwoTowersGroupConv2Conv4Conv5) {
  auto net = make_alexnet<float>(AlexNetConfig::named("paper").groups(2));
  EXPECT_EQ(net.parameter_count(), 60965224);
  EXPECT_EQ(params_of(net, "conv1"), 34944);
  EXPECT_EQ(params_of(net, "conv2"), 307456);
  EXPECT_EQ(params_of(net, "conv3"), 885120);
  EXPECT_EQ(params_of(net, "conv4"), 663936);
  EXPECT_EQ(params_of(net, "conv5"), 442624);
  const auto t = summary_totals(net.summary({1, 3, 227, 227}), {1, 3, 227, 227});
  EXPECT_NEAR(static_cast<double>(t.macs) / 1e6, 724, 1);  // ≈ 724 M grouped
}

TEST(AlexNet, CifarConfigurations) {
  auto cifar = make_alexnet<float>(AlexNetConfig::named("cifar"));
  EXPECT_EQ(cifar.parameter_count(), 5871434);
  EXPECT_EQ(cifar.output_shape({7, 3, 32, 32}), (Shape{7, 10, 1, 1}));
  const auto rows = cifar.summary({1, 3, 32, 32});
  EXPECT_EQ(paper_shape(rows[3].output), "15x15x64");    // pool1
  EXPECT_EQ(paper_shape(rows[7].output), "7x7x192");     // pool2
  EXPECT_EQ(paper_shape(rows[14].output), "3x3x256");    // pool5
  EXPECT_EQ(params_of(cifar, "fc6"), 2304 * 1024 + 1024);

  auto half = make_alexnet<float>(AlexNetConfig::named("cifar-half"));
  EXPECT_EQ(half.parameter_count(), 1472426);
  EXPECT_EQ(make_alexnet<float>(AlexNetConfig::named("cifar").width(0.5)).parameter_count(), 1472426);

  auto hundred = make_alexnet<float>(AlexNetConfig::named("cifar").classes(100));
  EXPECT_EQ(hundred.parameter_count(), 5871434 - 10250 + 1024 * 100 + 100);
}

// cifar-bn: conv -> BatchNorm2d -> ReLU for each of the five, no LRN, no conv biases (1152 of them
// in cifar) and a gamma and beta per channel instead (2304).
TEST(AlexNet, BatchNormConfigurations) {
  auto bn = make_alexnet<float>(AlexNetConfig::named("cifar-bn"));
  EXPECT_EQ(bn.parameter_count(), 5871434 - 1152 + 2304);
  EXPECT_EQ(make_alexnet<float>(AlexNetConfig::named("cifar-half-bn")).parameter_count(), 1472426 - 576 + 1152);
  std::string order;
  for (std::size_t i = 0; i < 8; ++i) order += bn[i].name() + " ";
  EXPECT_EQ(order, "conv1 bn1 relu1 pool1 conv2 bn2 relu2 pool2 ");
  EXPECT_EQ(bn.buffers().size(), 10u);  // running mean and variance of bn1..bn5
  EXPECT_EQ(bn.buffers()[2].name, "bn2.running_mean");
  EXPECT_EQ(bn.buffers()[2].shape, std::vector<Index>{192});
  auto* bn1 = dynamic_cast<BatchNorm2d<float>*>(&bn[1]);
  ASSERT_NE(bn1, nullptr);
  EXPECT_TRUE(bn1->weight().isOnes());  // the identity at the start, whatever the initialisation
  EXPECT_TRUE(bn1->bias().isZero());
  EXPECT_EQ(bn.output_shape({2, 3, 32, 32}), (Shape{2, 10, 1, 1}));
  const std::string text = AlexNetConfig::named("cifar-half-bn").str();
  EXPECT_NE(text.find(" lrn=none"), std::string::npos) << text;  // no LRN constants for a network without LRN
  const AlexNetConfig back = AlexNetConfig::parse(text);
  EXPECT_TRUE(back.batch_norm());
  EXPECT_FALSE(back.use_lrn());
  // The form written before "lrn=none" (the unused constants) still reads as no LRN.
  const AlexNetConfig older = AlexNetConfig::parse(
      "name=cifar-half-bn input=32 classes=10 groups=1 width=0.5 dropout=0.5 init=he lrn=5,0.0001,0.75,2,paper");
  EXPECT_FALSE(older.use_lrn());
  EXPECT_EQ(make_alexnet<float>(older).architecture(), make_alexnet<float>(AlexNetConfig::named("cifar-half-bn")).architecture());
  // An LRN network with its LRN switched off keeps it off through the text.
  const AlexNetConfig off = AlexNetConfig::named("cifar-half").use_lrn(false);
  EXPECT_FALSE(AlexNetConfig::parse(off.str()).use_lrn());
  EXPECT_EQ(make_alexnet<float>(AlexNetConfig::parse(off.str())).architecture(), make_alexnet<float>(off).architecture());
}

TEST(AlexNet, ConfigurationTextRoundTrips) {
  AlexNetConfig c = AlexNetConfig::named("cifar").classes(100).width(0.75).groups(2).init(
      AlexNetInit::He);
  c.lrn(LocalResponseNormOptions(c.lrn()).convention(LrnConvention::AlphaOverN).alpha(5e-4));
  const AlexNetConfig back = AlexNetConfig::parse(c.str());
  EXPECT_EQ(back.str(), c.str());
  EXPECT_EQ(make_alexnet<float>(back).architecture(), make_alexnet<float>(c).architecture());
  EXPECT_THROW(AlexNetConfig::parse("name=cifar input=32"), std::invalid_argument);
  EXPECT_THROW(AlexNetConfig::parse(c.str() + " junk"), std::invalid_argument);
}

// A host program with a comma as its decimal point must still write and read configurations.
TEST(AlexNet, ConfigurationTextIgnoresTheProgramsLocale) {
  struct Comma : std::numpunct<char> {
    char do_decimal_point() const override { return ','; }
  };
  const std::locale before = std::locale::global(std::locale(std::locale::classic(), new Comma));
  const AlexNetConfig c = AlexNetConfig::named("cifar").width(0.75);
  const std::string text = c.str();
  const AlexNetConfig back = AlexNetConfig::parse(text);
  std::locale::global(before);
  EXPECT_NE(text.find("width=0.75"), std::string::npos) << text;
  EXPECT_EQ(back.width(), 0.75);
  EXPECT_THROW(AlexNetConfig::parse("name=cifar input=32 classes=10 groups=1 width=0,75 dropout=0.5 init=he "
                                    "lrn=5,0.0001,0.75,2,paper"),
               std::invalid_argument);
}

// The shapes worked out without building anything are the shapes of the network built.
TEST(AlexNet, ParameterShapesWithoutBuildingMatchTheNetwork) {
  const std::vector<AlexNetConfig> configs = {
      AlexNetConfig::named("paper").width(0.25),
      AlexNetConfig::named("paper").width(0.25).groups(2).input_size(195),
      AlexNetConfig::named("cifar").classes(7).groups(2).width(0.75),
      AlexNetConfig::named("cifar-half").input_size(40),
      AlexNetConfig::named("cifar-bn").groups(2).width(0.25),
      AlexNetConfig::named("torchvision").width(0.25).input_size(100).classes(3)};
  for (const AlexNetConfig& config : configs) {
    SCOPED_TRACE(config.str());
    auto net = make_alexnet<float>(config, 1);
    const auto params = net.parameters();
    const std::vector<ParameterShape> shapes = alexnet_parameter_shapes(config);
    ASSERT_EQ(shapes.size(), params.size());
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      EXPECT_EQ(shapes[i].name, params[i].name);
      EXPECT_EQ(shapes[i].shape, params[i].shape) << params[i].name;
    }
  }
}

// Every field of a configuration is bounded before anything is built (a checkpoint or a flag can say
// anything); the error names the field and its range.
TEST(AlexNet, EveryConfigurationFieldIsBounded) {
  auto refusal = [](const AlexNetConfig& c) {
    try {
      alexnet_parameter_shapes(c);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const AlexNetConfig cifar = AlexNetConfig::named("cifar");
  EXPECT_NE(refusal(AlexNetConfig(cifar).classes(0)).find("classes must be in [1, 100000], got 0"), std::string::npos);
  EXPECT_NE(refusal(AlexNetConfig(cifar).classes(100001)).find("classes must be in [1, 100000]"), std::string::npos);
  EXPECT_NE(refusal(AlexNetConfig(cifar).groups(65)).find("groups must be in [1, 64], got 65"), std::string::npos);
  EXPECT_NE(refusal(AlexNetConfig(cifar).width(16.5)).find("width must be in (0, 16], got 16.5"), std::string::npos);
  EXPECT_NE(refusal(AlexNetConfig(cifar).width(-1)).find("width must be in (0, 16]"), std::string::npos);
  EXPECT_NE(refusal(AlexNetConfig(cifar).input_size(1025)).find("input_size must be in [1, 1024]"), std::string::npos);
  EXPECT_NE(refusal(AlexNetConfig(cifar).dropout(1)).find("dropout must be in [0, 1)"), std::string::npos);
  EXPECT_NE(refusal(AlexNetConfig(cifar).lrn(LocalResponseNormOptions(0))).find("lrn size must be odd, in [1, 255]"),
            std::string::npos);
  EXPECT_NE(refusal(AlexNetConfig::named("paper").input_size(30)).find("input_size 30 is too small: pool2 gets 2 x 2"),
            std::string::npos) << refusal(AlexNetConfig::named("paper").input_size(30));
  EXPECT_NE(refusal(AlexNetConfig::named("paper").width(8)).find("fc6 weights must be at most 2^31"),
            std::string::npos);
  EXPECT_EQ(refusal(AlexNetConfig::named("paper")), "accepted");
  // make_alexnet checks the same, before building a layer.
  EXPECT_THROW(make_alexnet<float>(AlexNetConfig(cifar).width(100)), std::invalid_argument);
  // And a configuration read from text, before it is used.
  std::string text = cifar.str();
  text.replace(text.find("input=32"), 8, "input=99999999999");
  EXPECT_THROW(alexnet_parameter_shapes(AlexNetConfig::parse(text)), std::invalid_argument);
}

TEST(AlexNet, UnknownConfigurationListsTheValidNames) {
  try {
    AlexNetConfig::named("vgg");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("paper, cifar, cifar-half"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_alexnet<float>(AlexNetConfig::named("cifar").classes(0)), std::invalid_argument);
}

TEST(AlexNet, PaperInitialisation) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar"), 42);
  for (const auto& p : net.parameters()) {
    const std::string layer = p.name.substr(0, p.name.find('.'));
    if (p.name.find(".bias") != std::string::npos) {
      const bool one = layer == "conv2" || layer == "conv4" || layer == "conv5" || layer == "fc6" || layer == "fc7";
      EXPECT_TRUE((p.values().array() == (one ? 1.0f : 0.0f)).all()) << p.name;
      continue;
    }
    const double mean = p.values().cast<double>().mean();
    const double var = (p.values().cast<double>().array() - mean).square().mean();
    EXPECT_NEAR(mean, 0.0, 5 * 0.01 / std::sqrt(static_cast<double>(p.size))) << p.name;
    EXPECT_NEAR(std::sqrt(var), 0.01, 0.01 * 6 / std::sqrt(static_cast<double>(p.size))) << p.name;
  }
}

TEST(AlexNet, HeInitialisationAndSeeding) {
  auto he = make_alexnet<float>(AlexNetConfig::named("cifar").init(AlexNetInit::He), 1);
  const auto p = he.parameters()[2];  // conv2.weight, fan-in 64 * 25
  ASSERT_EQ(p.name, "conv2.weight");
  const double std2 = std::sqrt(p.values().cast<double>().array().square().mean());
  EXPECT_NEAR(std2, std::sqrt(2.0 / (64 * 25)), 0.01 * std::sqrt(2.0 / (64 * 25)) * 10);
  EXPECT_TRUE((he.parameters()[3].values().array() == 0.0f).all());  // biases 0 under He

  auto a = make_alexnet<float>(AlexNetConfig::named("cifar-half"), 5);
  auto b = make_alexnet<float>(AlexNetConfig::named("cifar-half"), 5);
  auto c = make_alexnet<float>(AlexNetConfig::named("cifar-half"), 6);
  EXPECT_TRUE(a.parameters()[0].values() == b.parameters()[0].values());
  EXPECT_FALSE(a.parameters()[0].values() == c.parameters()[0].values());
}

TEST(AlexNetConfig, GreyInputChannelsRoundTripAndShapeConv1) {
  const AlexNetConfig grey = AlexNetConfig::named("cifar-half").input_size(28).input_channels(1);
  EXPECT_NE(grey.str().find(" channels=1 "), std::string::npos);
  EXPECT_EQ(AlexNetConfig::parse(grey.str()).input_channels(), 1);
  // Configurations stored before the field existed read as RGB, and RGB ones are written as before.
  EXPECT_EQ(AlexNetConfig::named("cifar").str().find("channels"), std::string::npos);
  EXPECT_EQ(AlexNetConfig::parse(AlexNetConfig::named("cifar").str()).input_channels(), 3);
  const auto shapes = alexnet_parameter_shapes(grey);
  EXPECT_EQ(shapes[0].shape, (std::vector<Index>{32, 1, 5, 5}));
  auto net = make_alexnet<float>(grey);
  EXPECT_EQ(net.output_shape(Shape{2, 1, 28, 28}), (Shape{2, 10, 1, 1}));
  EXPECT_THROW(alexnet_parameter_shapes(AlexNetConfig(grey).input_channels(0)), std::invalid_argument);
  EXPECT_THROW(alexnet_parameter_shapes(AlexNetConfig(grey).input_channels(65)), std::invalid_argument);
}

TEST(FastCifar, ShapesCountsAndTheStartingWeights) {
  auto net = make_fast_cifar<float>(FastCifarOptions(), 7);
  // Pooling halves 31 to 15, 7 and 3 (floor) before each block's batch normalisation.
  const auto rows = net.summary(Shape{1, 3, 32, 32});
  auto output_of = [&](const std::string& name) {
    for (const auto& r : rows) {
      if (r.name == name) return r.output;
    }
    return Shape{};
  };
  EXPECT_EQ(output_of("whiten"), (Shape{1, 24, 31, 31}));
  EXPECT_EQ(output_of("bn1"), (Shape{1, 64, 15, 15}));
  EXPECT_EQ(output_of("bn3"), (Shape{1, 256, 7, 7}));
  EXPECT_EQ(output_of("bn6"), (Shape{1, 256, 3, 3}));
  EXPECT_EQ(output_of("scale"), (Shape{1, 10, 1, 1}));
  // 24*3*2*2 (whitening) + 9 (24*64 + 64*64 + 64*256 + 3*256*256) + 64*2 + 256*4 (biases) + 256*10.
  EXPECT_EQ(net.parameter_count(), 288 + 9 * (24 * 64 + 64 * 64 + 64 * 256 + 3 * 256 * 256) + 1152 + 2560);
  EXPECT_EQ(net.parameter_count(), 1971616);
  Index trainable = 0;
  for (const auto& p : net.trainable_parameters()) trainable += p.size;
  EXPECT_EQ(trainable, 1971616 - 288);  // the whitening layer is frozen
  // Each block convolution's first in_channels filters start as the identity (a centred Dirac).
  auto& conv3 = dynamic_cast<Conv2d<float>&>(net.layer("conv3"));  // 64 -> 256
  for (Index f = 0; f < 64; ++f) {
    for (Index k = 0; k < 64 * 9; ++k) ASSERT_EQ(conv3.weight()(f, k), k == f * 9 + 4 ? 1.0f : 0.0f) << f << " " << k;
  }
  EXPECT_NE(conv3.weight().row(64).squaredNorm(), 0.0f);  // the rest: PyTorch's default
  // The same seed, the same weights; another seed, others.
  auto again = make_fast_cifar<float>(FastCifarOptions(), 7), other = make_fast_cifar<float>(FastCifarOptions(), 8);
  EXPECT_EQ(again.parameters()[5].values(), net.parameters()[5].values());
  EXPECT_NE(other.parameters()[5].values(), net.parameters()[5].values());
  EXPECT_THROW(make_fast_cifar<float>(FastCifarOptions().classes(0)), std::invalid_argument);
}

TEST(PatchWhitening, TheFiltersDecorrelateThePatchesTheyWereComputedFrom) {
  // Pictures whose neighbouring pixels and channels are strongly correlated (a smooth field, with
  // green following red): the whitened patches must be uncorrelated, filter i with variance
  // lambda_i / (lambda_i + eps), in decreasing order, and the negated half the mirror image.
  Rng rng(3);
  Tensor<double> x(20, 3, 9, 9);
  for (Index n = 0; n < 20; ++n) {
    for (Index y = 0; y < 9; ++y) {
      for (Index xx = 0; xx < 9; ++xx) {
        const double smooth = std::sin(0.3 * static_cast<double>(y + n)) + std::cos(0.2 * static_cast<double>(xx * (n + 1)));
        x(n, 0, y, xx) = smooth + 0.1 * rng.normal();
        x(n, 1, y, xx) = 0.8 * x(n, 0, y, xx) + 0.2 * rng.normal();
        x(n, 2, y, xx) = rng.normal();
      }
    }
  }
  const double eps = 1e-3;
  Conv2d<double> conv(Conv2dOptions(3, 24, 2).bias(false));
  init_patch_whitening(conv, x, PatchWhiteningOptions().eps(eps));
  const Tensor<double>& out = conv.forward(x);  // [20, 24, 8, 8]: one value per patch and filter
  const Index patches = 20 * 8 * 8;
  Eigen::MatrixXd values(24, patches);
  for (Index n = 0; n < 20; ++n) {
    for (Index f = 0; f < 24; ++f) {
      for (Index p = 0; p < 64; ++p) values(f, n * 64 + p) = out.data()[(n * 24 + f) * 64 + p];
    }
  }
  const Eigen::MatrixXd moment = values * values.transpose() / static_cast<double>(patches);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(patch_second_moment(x, 2));
  for (Index i = 0; i < 12; ++i) {
    const double lambda = solver.eigenvalues()[11 - i];
    EXPECT_NEAR(moment(i, i), lambda / (lambda + eps), 1e-9) << "filter " << i;
    for (Index j = 0; j < 12; ++j) {
      if (j != i) {
        EXPECT_NEAR(moment(i, j), 0, 1e-9) << i << ", " << j;
      }
    }
    EXPECT_NEAR(moment(i + 12, i + 12), moment(i, i), 1e-12);  // the negated half
    EXPECT_NEAR(moment(i, i + 12), -moment(i, i), 1e-12);
  }
  EXPECT_GT(moment(0, 0), 0.99);  // the strongest direction whitened to ~1
  // The second moment is the patches' own: E[x x^T] over all 2 x 2 windows, by hand for one entry.
  double by_hand = 0;
  for (Index n = 0; n < 20; ++n) {
    for (Index y = 0; y + 2 <= 9; ++y) {
      for (Index xx = 0; xx + 2 <= 9; ++xx) by_hand += x(n, 0, y, xx + 1) * x(n, 1, y + 1, xx);
    }
  }
  EXPECT_NEAR(patch_second_moment(x, 2)(1, 6), by_hand / static_cast<double>(patches), 1e-12);  // (c0,0,1) x (c1,1,0)
  // A convolution of the wrong width is refused, naming what it needs.
  Conv2d<double> narrow(Conv2dOptions(3, 16, 2));
  try {
    init_patch_whitening(narrow, x);
    FAIL() << "16 filters for 2 x 3 x 2 x 2 whitening";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("24 filters"), std::string::npos) << e.what();
  }
}

TEST(Sequential, TrainAndEvalReachEveryLayer) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar-half"));
  net.eval();
  for (std::size_t i = 0; i < net.size(); ++i) EXPECT_FALSE(net[i].training()) << net[i].name();
  // In evaluation the output is deterministic (dropout off) ...
  Tensor<float> x(2, 3, 32, 32);
  x.setRandom();
  const Tensor<float> y1 = net.forward(x);
  const Tensor<float> y2 = net.forward(x);
  EXPECT_TRUE(flat(y1) == flat(y2));
  // ... and in training it is not.
  net.train();
  for (std::size_t i = 0; i < net.size(); ++i) EXPECT_TRUE(net[i].training()) << net[i].name();
  const Tensor<float> t1 = net.forward(x);
  const Tensor<float> t2 = net.forward(x);
  EXPECT_FALSE(flat(t1) == flat(t2));
}

// release_buffers gives back every layer's output and input gradient; the network then runs as
// before (the same output), and a backward without a forward is refused.
TEST(Sequential, ReleasedBuffersAreEmptyAndTheNextForwardRebuildsThem) {
  auto net = make_alexnet<float>(AlexNetConfig::named("cifar-half"), 3);
  net.eval();
  Tensor<float> x(2, 3, 32, 32);
  x.setRandom();
  const Tensor<float> before = net.forward(x);
  Tensor<float> dy(before.dimensions());
  dy.setConstant(1.0f);
  net.backward(dy);
  net.release_buffers();
  for (std::size_t i = 0; i < net.size(); ++i) EXPECT_EQ(net[i].output().size(), 0) << net[i].name();
  EXPECT_THROW(net[net.size() - 1].backward(before), StateError);
  const Tensor<float> after = net.forward(x);
  EXPECT_TRUE(flat(before) == flat(after));
}

TEST(Sequential, AUsersOwnNetwork) {
  Sequential<double> net;
  net.add<Flatten<double>>("flatten");
  net.add<Dense<double>>("hidden", DenseOptions(12, 8));
  net.add<ReLU<double>>("relu");
  net.add<Dense<double>>("out", DenseOptions(8, 3));
  EXPECT_EQ(net.parameter_count(), 12 * 8 + 8 + 8 * 3 + 3);
  EXPECT_EQ(net.parameters()[2].name, "out.weight");
  EXPECT_EQ(net.output_shape({5, 3, 2, 2}), (Shape{5, 3, 1, 1}));
  EXPECT_THROW(net.add<ReLU<double>>("relu"), std::invalid_argument);  // duplicate name
  EXPECT_THROW(net.layer("nope"), std::out_of_range);
  // A shape error names the layer that refused the input.
  try {
    net.output_shape({5, 3, 2, 3});
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("hidden"), std::string::npos) << e.what();
  }
  // Backward through the container equals backward layer by layer (checked via the input gradient's size).
  Tensor<double> x(5, 3, 2, 2);
  x.setRandom();
  const Tensor<double>& y = net.forward(x);
  Tensor<double> g(shape_of(y).n, 3, 1, 1);
  g.setConstant(1.0);
  EXPECT_EQ(shape_of(net.backward(g)), shape_of(x));
}

// The README's own example network, built exactly as the README shows it,
// learns a small generated problem: each class is a bright 8x8 square at its
// own place on a noisy 32x32 picture. With all-zero default weights every
// hidden unit would stay identical and the loss would not move from log(10).
TEST(Sequential, TheReadmesHandBuiltNetworkLearns) {
  Sequential<float> net;
  net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 32, 3).padding(1));
  net.add<ReLU<float>>("relu1");
  net.add<MaxPool2d<float>>("pool1", MaxPool2dOptions(2));
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc", DenseOptions(32 * 16 * 16, 10));

  SoftmaxCrossEntropy<float> loss;
  Objective<float> objective(loss);
  Sgd<float> sgd(net.parameters(), SgdOptions(0.01).momentum(0.9).weight_decay(5e-4));

  const Index n = 40;
  Tensor<float> images(n, 3, 32, 32);
  std::vector<int> labels(static_cast<std::size_t>(n));
  Rng rng(7);
  for (Index i = 0; i < n; ++i) {
    const int label = static_cast<int>(i % 10);
    labels[static_cast<std::size_t>(i)] = label;
    const Index top = 8 * (label / 4), left = 8 * (label % 4);
    for (Index c = 0; c < 3; ++c)
      for (Index y = 0; y < 32; ++y)
        for (Index x = 0; x < 32; ++x) {
          const bool inside = y >= top && y < top + 8 && x >= left && x < left + 8;
          images(i, c, y, x) = static_cast<float>((inside ? 1.0 : 0.0) + rng.uniform(-0.2, 0.2));
        }
  }
  const double first = train_step(net, objective, sgd, images, labels).loss;
  double last = first;
  for (int step = 0; step < 30; ++step) last = train_step(net, objective, sgd, images, labels).loss;
  EXPECT_NEAR(first, std::log(10.0), 0.5);  // small random weights: close to chance at the start
  EXPECT_LT(last, 0.25 * first) << "first " << first << ", last " << last;
  EXPECT_EQ(evaluate(net, images, labels).top1_accuracy(), 1.0);
}

TEST(Summary, PrintsTheTableAndTotalsLine) {
  auto net = make_alexnet<float>(AlexNetConfig::named("paper"));
  std::ostringstream out;
  print_summary(out, net, {1, 3, 227, 227});
  const std::string s = out.str();
  EXPECT_NE(s.find("conv1      55x55x96"), std::string::npos) << s;
  EXPECT_NE(s.find("convolutional neurons: 650080"), std::string::npos);
  const std::string last = s.substr(s.rfind("total parameters"));
  EXPECT_EQ(last, "total parameters: 62378344\n");
}


// ---- A network rebuilt from its checkpoint alone (models/saved_network.hpp) ----

// A program's own layer type: y = factor * x with one learned factor. One line registers it.
template <class T>
class Scale : public Layer<T> {
 public:
  explicit Scale(Index channels = 1) : channels_(channels), factor_(channels, T(1)), grad_(channels, T(0)) {
    for (Index c = 0; c < channels; ++c) factor_[static_cast<std::size_t>(c)] = T(1) + T(c) / T(8);
  }
  std::string type_name() const override { return "Scale"; }
  static std::unique_ptr<Scale> from_settings(KeyValues& s) { return std::make_unique<Scale>(s.take<Index>("channels")); }
  static std::vector<std::vector<Index>> parameter_shapes(KeyValues& s) { return {{s.take<Index>("channels")}}; }
  LayerSettings settings() const override { return {{"channels", std::to_string(channels_)}}; }
  std::string describe() const override { return "Scale(" + std::to_string(channels_) + ")"; }
  Shape output_shape(const Shape& in) const override {
    if (in.c != channels_) this->input_error("[N, " + std::to_string(channels_) + ", H, W]", in);
    return in;
  }
  std::vector<Parameter<T>> parameters() override {
    return {Parameter<T>{"factor", {channels_}, factor_.data(), grad_.data(), channels_, false}};
  }

 protected:
  void forward_impl(const Tensor<T>& x, Tensor<T>& y) override {
    const Index plane = x.dimension(2) * x.dimension(3);
    for (Index i = 0; i < x.size(); ++i) y.data()[i] = factor_[static_cast<std::size_t>((i / plane) % channels_)] * x.data()[i];
  }
  void backward_impl(const Tensor<T>& x, const Tensor<T>& g, Tensor<T>& dx) override {
    const Index plane = x.dimension(2) * x.dimension(3);
    for (Index i = 0; i < x.size(); ++i) {
      const auto c = static_cast<std::size_t>((i / plane) % channels_);
      dx.data()[i] = factor_[c] * g.data()[i];
      grad_[c] += x.data()[i] * g.data()[i];
    }
  }

 private:
  Index channels_;
  std::vector<T> factor_, grad_;
};

}  // namespace
CONVNET_REGISTER_LAYER(Scale, "multiplies each channel by a learned factor (a test's own layer)");
namespace {

// Every built-in layer type and the program's own, in one network that reads 3 x 12 x 12.
Sequential<float> every_kind_of_layer() {
  Sequential<float> net;
  net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 8, 3).padding(1));
  net.add<BatchNorm2d<float>>("bn1", BatchNormOptions(8).weight(false));  // beta alone
  net.add<Scale<float>>("scale", 8);
  net.add<ReLU<float>>("relu1");
  net.add<LocalResponseNorm<float>>("norm1", LocalResponseNormOptions());
  net.add<MaxPool2d<float>>("pool1", MaxPool2dOptions(3).stride(2));
  net.add<GELU<float>>("gelu", true);
  net.add<Conv2d<float>>("conv2", Conv2dOptions(8, 6, 3).padding(1).groups(2).bias(false));
  net.add<AdaptiveAvgPool2d<float>>("avg", 2, 2);
  net.add<Flatten<float>>("flatten");
  net.add<Dropout<float>>("drop", DropoutOptions(0.5));
  net.add<Dense<float>>("fc1", DenseOptions(24, 10));
  net.add<BatchNorm1d<float>>("bn2", BatchNormOptions(10));
  net.add<Dense<float>>("fc2", DenseOptions(10, 4));
  net.add<Multiply<float>>("times", 0.5);
  net.add<Softmax<float>>("prob");
  return net;
}

Tensor<float> pictures(Index n, Index size, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<float> x(n, 3, size, size);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.uniform(-1, 1));
  return x;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CheckpointError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not a CheckpointError: ") + e.what();
  }
  return "(no error)";
}

TEST(SavedNetwork, AnyNetworkOfRegisteredLayersLoadsWithoutItsCodeBitForBit) {
  Sequential<float> net = every_kind_of_layer();
  net.forward(pictures(6, 12, 1));  // training mode: the running statistics and the dropout state move
  net.eval();
  const Tensor<float> x = pictures(3, 12, 2);
  const Tensor<float> expected = net.forward(x);
  convnet::testing::TempDir dir;
  Checkpoint c;
  net.save(c);
  c.save(dir.file("net.ckpt"));

  Sequential<float> loaded = load_network<float>(dir.file("net.ckpt"));
  ASSERT_EQ(loaded.size(), net.size());
  for (std::size_t i = 0; i < net.size(); ++i) {
    EXPECT_EQ(loaded[i].name(), net[i].name());
    EXPECT_EQ(loaded[i].type_name(), net[i].type_name());
    EXPECT_EQ(loaded[i].settings(), net[i].settings());
  }
  EXPECT_FALSE(loaded.training());
  const Tensor<float>& got = loaded.forward(x);
  ASSERT_EQ(shape_of(got), shape_of(expected));
  for (Index i = 0; i < got.size(); ++i) ASSERT_EQ(got.data()[i], expected.data()[i]) << "output " << i;
  // In double too, from the same float file.
  Sequential<double> in_double = load_network<double>(Checkpoint::load(dir.file("net.ckpt")));
  EXPECT_EQ(in_double.parameter_count(), net.parameter_count());
}

TEST(SavedNetwork, ClassifierLoadsANetworkThatIsNotAnAlexNet) {
  Sequential<float> net;
  net.add<Conv2d<float>>("conv", Conv2dOptions(3, 4, 3).padding(1));
  net.add<ReLU<float>>("relu");
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc", DenseOptions(4 * 12 * 12, 3));
  const Preparation prep = Preparation::with_statistics(PreparationOptions().input_size(12),
                                                        ChannelStats{{100, 110, 120}, {50, 55, 60}});
  convnet::testing::TempDir dir;
  Checkpoint c;
  net.save(c);
  prep.save(c);
  c.set_text("data/classes", "cat\ndog\nfox\n");
  c.save(dir.file("mine.ckpt"));

  Image picture(3, 20, 16, 0.0f);
  for (std::size_t i = 0; i < picture.pixels.size(); ++i) picture.pixels[i] = static_cast<float>((i * 37) % 256);
  Classifier direct(std::move(net), prep, {"cat", "dog", "fox"});
  Classifier loaded = Classifier::load(dir.file("mine.ckpt"));
  EXPECT_EQ(loaded.input_size(), 12);
  EXPECT_EQ(loaded.class_names(), (std::vector<std::string>{"cat", "dog", "fox"}));
  EXPECT_EQ(loaded.probabilities({picture}), direct.probabilities({picture}));

  // Without data/preparation the small pipeline at 32 x 32 is assumed, which this network cannot read.
  Checkpoint bare;
  direct.network().save(bare);
  bare.save(dir.file("bare.ckpt"));
  const std::string e = error_of([&] { Classifier::load(dir.file("bare.ckpt")); });
  EXPECT_NE(e.find("does not read the [1, 3, 32, 32] pictures"), std::string::npos) << e;
  EXPECT_NE(e.find("no data/preparation"), std::string::npos) << e;
}

// A checkpoint whose structure text is `edit`ed from a small network's.
std::string load_error(const std::function<void(std::string&)>& edit, const std::string& extra_key = "") {
  Sequential<float> net;
  net.add<Conv2d<float>>("conv", Conv2dOptions(3, 4, 3));
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc", DenseOptions(4, 2));
  Checkpoint c;
  net.save(c);
  std::string structure = c.text("structure");
  edit(structure);
  c.set_text("structure", structure);
  if (!extra_key.empty()) c.set_text(extra_key, "x");
  return error_of([&] { load_network<float>(c); });
}

void replace(std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
}

TEST(SavedNetwork, AStructureThatDoesNotMatchItsTensorsIsRefusedBeforeAnythingIsBuilt) {
  EXPECT_EQ(load_error([](std::string&) {}), "(no error)");
  // A layer type nobody registered.
  std::string e = load_error([](std::string& s) { replace(s, "flatten Flatten", "flatten Flatten3d"); });
  EXPECT_EQ(e.rfind("checkpoint: layer flatten (Flatten3d): unknown layer type 'Flatten3d'", 0), 0u) << e;
  // Settings that would allocate 4e9 x 4 weights although the file holds 2 x 4: refused by the
  // shapes the settings give, before the layer is built.
  e = load_error([](std::string& s) { replace(s, "in_features=4 out_features=2", "in_features=4000000000 out_features=2"); });
  EXPECT_EQ(e, "checkpoint: layer fc (Dense): its settings give weight [2, 4000000000] but the file holds weight [2, 4]");
  // The declared shape against the stored tensor.
  e = load_error([](std::string& s) { replace(s, "weight=2x4", "weight=2x5"); });
  EXPECT_EQ(e, "checkpoint: layer fc (Dense): its structure says weight=2x5 but the file holds weight [2, 4]");
  // A setting out of the layer's own bounds, a setting that is not a number, one too many.
  e = load_error([](std::string& s) { replace(s, "stride=1", "stride=0"); });
  EXPECT_NE(e.find("stride"), std::string::npos) << e;
  EXPECT_EQ(e.rfind("checkpoint: ", 0), 0u) << e;
  e = load_error([](std::string& s) { replace(s, "kernel_size=3", "kernel_size=three"); });
  EXPECT_NE(e.find("kernel_size"), std::string::npos) << e;
  e = load_error([](std::string& s) { replace(s, "flatten Flatten", "flatten Flatten colour=red"); });
  EXPECT_NE(e.find("unknown setting 'colour'"), std::string::npos) << e;
  // Names: twice, or a line without a type; layers the file lacks, and too many lines.
  e = load_error([](std::string& s) { replace(s, "flatten Flatten", "conv Flatten"); });
  EXPECT_EQ(e, "checkpoint: structure lists layer conv twice");
  e = load_error([](std::string& s) { s += "lonely\n"; });
  EXPECT_EQ(e, "checkpoint: structure line 'lonely' names no layer");
  e = load_error([](std::string& s) { s += "fc9 Dense in_features=2 out_features=2 bias=false\n"; });
  EXPECT_NE(e.find("fc9"), std::string::npos) << e;
  e = load_error([](std::string& s) {
    for (int i = 0; i < 5000; ++i) s += "r" + std::to_string(i) + " ReLU\n";
  });
  EXPECT_EQ(e, "checkpoint: its structure lists more than 4096 layers");
  e = load_error([](std::string& s) { s.clear(); });
  EXPECT_EQ(e, "checkpoint: its structure lists no layer");
  Checkpoint none;
  EXPECT_NE(error_of([&] { load_network<float>(none); }).find("does not describe its network (no 'structure' entry)"),
            std::string::npos);
}

TEST(SavedNetwork, AProgramsOwnTypeIsRegisteredOnceAndListedAfterTheBuiltIns) {
  const LayerType<float>* t = find_layer_type<float>("Scale");
  ASSERT_NE(t, nullptr);
  EXPECT_FALSE(t->built_in);
  EXPECT_NE(t->parameter_shapes, nullptr);
  EXPECT_EQ(layer_types<float>().back().name, "Scale");
  EXPECT_NE(find_layer_type<double>("Scale"), nullptr);
  EXPECT_THROW(register_layer<Scale>("Scale", "again"), ArgumentError);
  EXPECT_THROW(register_layer<Scale>("Conv2d", "a built-in name"), ArgumentError);
}

// ---- Fine-tuning: weights from another network, frozen layers (models/transfer.hpp) ----

// A torchvision AlexNet state_dict (torchvision's own names) converted by tools/export_pytorch.py
// (tests/golden/make_torchvision_tiny.py): a 10-class network takes every layer but its head.
TEST(Transfer, AConvertedTorchvisionStateDictStartsANetworkWithANewHead) {
  auto net = make_alexnet<float>(AlexNetConfig::named("torchvision").width(0.0625).classes(10), 5);
  const std::vector<float> fc8_before(net.layer("fc8").parameters()[0].value,
                                      net.layer("fc8").parameters()[0].value + net.layer("fc8").parameters()[0].size);
  const Checkpoint c = Checkpoint::load(std::string(CONVNET_GOLDEN_DIR) + "/torchvision_tiny.ckpt");
  const TransferReport r = init_from(net, c);
  EXPECT_EQ(r.loaded, (std::vector<std::string>{"conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"}));
  EXPECT_TRUE(r.initialised.empty());
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_EQ(r.refused[0], "fc8: weight is [100, 256] there, [10, 256] here");
  const std::vector<float> conv1 = c.tensor<float>("param/conv1.weight");
  const auto p = net.layer("conv1").parameters()[0];
  EXPECT_TRUE(std::equal(conv1.begin(), conv1.end(), p.value));
  const auto head = net.layer("fc8").parameters()[0];
  EXPECT_TRUE(std::equal(fc8_before.begin(), fc8_before.end(), head.value));  // the new head keeps its initialisation
  EXPECT_NE(r.str().find("refused (kept at their initialisation): fc8: weight is [100, 256] there"), std::string::npos);
}

TEST(Transfer, BatchStatisticsComeWithTheirLayerAndUnknownLayersStayAsTheyWere) {
  Sequential<float> a;
  a.add<Conv2d<float>>("conv", Conv2dOptions(3, 4, 3).seed(1));
  a.add<BatchNorm2d<float>>("bn", BatchNormOptions(4));
  a.forward(pictures(4, 6, 3));  // the running statistics move
  Checkpoint c;
  a.save(c);
  Sequential<float> b;
  b.add<Conv2d<float>>("conv", Conv2dOptions(3, 4, 3).seed(2));
  b.add<BatchNorm2d<float>>("bn", BatchNormOptions(4));
  b.add<Flatten<float>>("flatten");
  b.add<Dense<float>>("extra", DenseOptions(64, 2).seed(3));
  const TransferReport r = init_from(b, c);
  EXPECT_EQ(r.loaded, (std::vector<std::string>{"conv", "bn"}));
  EXPECT_EQ(r.initialised, (std::vector<std::string>{"extra"}));
  for (std::size_t k = 0; k < a.buffers().size(); ++k) {
    const auto x = a.buffers()[k], y = b.buffers()[k];
    EXPECT_TRUE(std::equal(x.value, x.value + x.size, y.value)) << x.name;
  }
}

// conv1 - bn1 - relu1 - conv2 - bn2 - relu2 - flatten - fc1 - fc2, every weight seeded.
Sequential<float> freezable() {
  Sequential<float> net;
  net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 4, 3).padding(1).seed(1));
  net.add<BatchNorm2d<float>>("bn1", BatchNormOptions(4));
  net.add<ReLU<float>>("relu1");
  net.add<Conv2d<float>>("conv2", Conv2dOptions(4, 4, 3).padding(1).seed(2));
  net.add<BatchNorm2d<float>>("bn2", BatchNormOptions(4));
  net.add<ReLU<float>>("relu2");
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc1", DenseOptions(4 * 6 * 6, 8).seed(3));
  net.add<Dense<float>>("fc2", DenseOptions(8, 3).seed(4));
  return net;
}

std::vector<float> values_of(const Parameter<float>& p, bool grad) {
  const float* from = grad ? p.grad : p.value;
  return std::vector<float>(from, from + p.size);
}

TEST(Freeze, FrozenLayersComputeNoGradientAndBackwardStopsAtTheLowestLayerThatTrains) {
  Sequential<float> all = freezable(), some = freezable();
  all.set_input_gradient(false);
  some.set_input_gradient(false);
  EXPECT_THROW(some.freeze({"conv1", "conv9"}), LookupError);
  EXPECT_TRUE(some[0].trainable());  // nothing changed
  some.freeze(layers_named(some, "..bn1,fc1"));
  EXPECT_EQ(some.first_backward_layer(), 3u);  // conv2
  EXPECT_FALSE(some.layer("conv2").input_gradient());
  std::vector<std::string> names;
  for (const auto& p : some.trainable_parameters()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"conv2.weight", "conv2.bias", "bn2.weight", "bn2.bias", "fc2.weight", "fc2.bias"}));

  const Tensor<float> x = pictures(4, 6, 9);
  Tensor<float> dy(4, 3, 1, 1);
  for (Index i = 0; i < dy.size(); ++i) dy.data()[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  for (auto* net : {&all, &some}) {
    net->zero_grad();
    net->forward(x);
    net->backward(dy);
  }
  const auto pa = all.parameters(), ps = some.parameters();
  for (std::size_t k = 0; k < pa.size(); ++k) {
    const std::string layer = pa[k].name.substr(0, pa[k].name.find('.'));
    const bool frozen = layer == "conv1" || layer == "bn1" || layer == "fc1";
    if (frozen) {
      EXPECT_EQ(values_of(ps[k], true), std::vector<float>(static_cast<std::size_t>(ps[k].size), 0.0f)) << pa[k].name;
    } else {  // the same gradients as the network that trains everywhere
      EXPECT_EQ(values_of(ps[k], true), values_of(pa[k], true)) << pa[k].name;
    }
  }
  // An optimizer over the trainable parameters, weight decay and all, leaves the frozen ones as they were.
  const std::vector<float> conv1 = values_of(some.parameters()[0], false);
  Sgd<float> sgd(some.trainable_parameters(), SgdOptions(0.1).momentum(0.9).weight_decay(0.1));
  sgd.step();
  EXPECT_EQ(values_of(some.parameters()[0], false), conv1);
  EXPECT_NE(values_of(some.layer("conv2").parameters()[0], false), values_of(all.layer("conv2").parameters()[0], false));
}

TEST(Freeze, WithTheInputGradientWantedEveryLayerStillPassesItDown) {
  Sequential<float> all = freezable(), some = freezable();
  some.freeze({"conv1", "conv2"});
  EXPECT_EQ(some.first_backward_layer(), 0u);
  const Tensor<float> x = pictures(2, 6, 4);
  Tensor<float> dy(2, 3, 1, 1);
  dy.setConstant(0.5f);
  all.forward(x);
  const Tensor<float> want = all.backward(dy);
  some.forward(x);
  const Tensor<float>& got = some.backward(dy);
  for (Index i = 0; i < want.size(); ++i) ASSERT_EQ(got.data()[i], want.data()[i]);
  some.unfreeze_all();
  EXPECT_EQ(some.trainable_parameters().size(), some.parameters().size());
}

}  // namespace
