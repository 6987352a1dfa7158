// Sequential and the AlexNet composition: the paper's counts and shapes, the
// CIFAR configurations, initialisation, modes, and the model summary.
#include <gtest/gtest.h>

#include <convnet/alexnet.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/layers/relu.hpp>
#include <convnet/summary.hpp>

#include <cmath>
#include <sstream>
#include <string>

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
  EXPECT_EQ(lrn.options().convention(), LrnConvention::Paper);
  EXPECT_DOUBLE_EQ(lrn.options().k(), 2.0);
  EXPECT_DOUBLE_EQ(dynamic_cast<Dropout<float>&>(net.layer("drop6")).options().p(), 0.5);
}

TEST(AlexNet, TwoTowersGroupConv2Conv4Conv5) {
  auto net = make_alexnet<float>(AlexNetConfig::named("paper").with_groups(2));
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
  EXPECT_EQ(make_alexnet<float>(AlexNetConfig::named("cifar").with_width(0.5)).parameter_count(), 1472426);

  auto hundred = make_alexnet<float>(AlexNetConfig::named("cifar").with_classes(100));
  EXPECT_EQ(hundred.parameter_count(), 5871434 - 10250 + 1024 * 100 + 100);
}

TEST(AlexNet, ConfigurationTextRoundTrips) {
  AlexNetConfig c = AlexNetConfig::named("cifar").with_classes(100).with_width(0.75).with_groups(2).with_init(
      AlexNetInit::He);
  c.lrn.convention(LrnConvention::AlphaOverN).alpha(5e-4);
  const AlexNetConfig back = AlexNetConfig::parse(c.str());
  EXPECT_EQ(back.str(), c.str());
  EXPECT_EQ(make_alexnet<float>(back).architecture(), make_alexnet<float>(c).architecture());
  EXPECT_THROW(AlexNetConfig::parse("name=cifar input=32"), std::invalid_argument);
  EXPECT_THROW(AlexNetConfig::parse(c.str() + " junk"), std::invalid_argument);
}

TEST(AlexNet, UnknownConfigurationListsTheValidNames) {
  try {
    AlexNetConfig::named("vgg");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("paper, cifar, cifar-half"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_alexnet<float>(AlexNetConfig::named("cifar").with_classes(0)), std::invalid_argument);
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
  auto he = make_alexnet<float>(AlexNetConfig::named("cifar").with_init(AlexNetInit::He), 1);
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

}  // namespace
