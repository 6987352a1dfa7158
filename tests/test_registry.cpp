// The registries (one list of names per family: layers, losses, optimizers, schedules, AlexNet
// configurations, dataset kinds) and the one key=value reader they read settings with. Each
// registry is held to its content: every entry builds from its name, and every layer and loss it
// lists passes a gradient check in double from its name alone.
#include <gtest/gtest.h>

#include <convnet/convnet.hpp>
#include <convnet/models/layer_registry.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "gradient_check.hpp"

namespace {

using namespace convnet;

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(KeyValues, TakesTypedValuesAndRefusesWhatNobodyTook) {
  KeyValues kv = KeyValues::parse("name=cifar input=32  width=0.5 bias=true", ' ', "thing");
  EXPECT_EQ(kv.take<std::string>("name"), "cifar");
  EXPECT_EQ(kv.take<Index>("input"), 32);
  EXPECT_DOUBLE_EQ(kv.take("width", 1.0), 0.5);
  EXPECT_DOUBLE_EQ(kv.take("dropout", 0.25), 0.25);  // absent: the default
  EXPECT_EQ(message_of([&] { kv.finish(); }), "thing: unknown setting 'bias'; it takes name, input, width, dropout");
  EXPECT_TRUE(kv.take("bias", false));
  kv.finish();
}

TEST(KeyValues, ErrorsNameTheOwnerTheKeyAndTheText) {
  EXPECT_EQ(message_of([] { KeyValues::parse("a=1 b", ' ', "x"); }), "x: 'b' is not key=value");
  EXPECT_EQ(message_of([] { KeyValues::parse("a=1,a=2", ',', "x"); }), "x: a is set twice");
  KeyValues kv = KeyValues::parse("n=4x\nf=0,5\nflag=2\n", '\n', "record");
  EXPECT_EQ(message_of([&] { kv.take<Index>("n"); }), "record: n is not a number: '4x'");
  EXPECT_EQ(message_of([&] { kv.take<double>("f"); }), "record: f is not a number: '0,5'");
  EXPECT_EQ(message_of([&] { kv.take<bool>("flag"); }), "record: flag is 0 or 1, got '2'");
  EXPECT_EQ(message_of([&] { kv.take<double>("missing"); }), "record: needs missing");
}

// --- layers -----------------------------------------------------------------------------------

// One instance of every layer type, with settings away from the defaults.
std::vector<std::unique_ptr<Layer<float>>> one_of_each_layer() {
  std::vector<std::unique_ptr<Layer<float>>> layers;
  layers.push_back(std::make_unique<Conv2d<float>>(Conv2dOptions(4, 6, 3).stride(2).padding(1).groups(2).bias(false)));
  layers.push_back(std::make_unique<Dense<float>>(DenseOptions(12, 5).bias(false)));
  layers.push_back(std::make_unique<ReLU<float>>());
  layers.push_back(std::make_unique<LocalResponseNorm<float>>(
      LocalResponseNormOptions(3).alpha(0.5).beta(0.6).k(1.5).convention(LrnConvention::AlphaOverN)));
  layers.push_back(std::make_unique<MaxPool2d<float>>(MaxPool2dOptions(3).stride(2)));
  layers.push_back(std::make_unique<AdaptiveAvgPool2d<float>>(6, 5));
  layers.push_back(std::make_unique<BatchNorm2d<float>>(BatchNormOptions(7).eps(1e-3).momentum(0.2).affine(false)));
  layers.push_back(std::make_unique<BatchNorm1d<float>>(BatchNormOptions(9)));
  layers.push_back(std::make_unique<Dropout<float>>(DropoutOptions().p(0.3)));
  layers.push_back(std::make_unique<Flatten<float>>());
  layers.push_back(std::make_unique<Softmax<float>>());
  layers.push_back(std::make_unique<GELU<float>>(true));
  layers.push_back(std::make_unique<Multiply<float>>(0.25));
  layers.push_back(std::make_unique<BatchNorm2d<float>>(BatchNormOptions(5).weight(false)));
  return layers;
}

TEST(LayerRegistry, EveryTypeIsRebuiltFromTheSettingsItWrites) {
  std::set<std::string> rebuilt;
  for (const auto& layer : one_of_each_layer()) {
    const auto again = make_layer<float>(layer->type_name(), layer->settings(), "test");
    EXPECT_EQ(again->type_name(), layer->type_name());
    EXPECT_EQ(again->settings(), layer->settings()) << layer->type_name();
    EXPECT_EQ(again->describe(), layer->describe());
    rebuilt.insert(layer->type_name());
  }
  std::set<std::string> registered;
  for (const auto& t : layer_types<float>()) {
    EXPECT_FALSE(t.help.empty()) << t.name;
    if (t.built_in) registered.insert(t.name);  // not the test's own types (test_models.cpp)
  }
  EXPECT_EQ(rebuilt, registered) << "every registered layer type needs an instance in one_of_each_layer()";
}

// Read from the headers: every class in layers/ that names itself with type_name() is registered.
TEST(LayerRegistry, EveryLayerInTheHeadersIsRegistered) {
  const std::regex named(R"re(type_name\(\) const override \{ return (?:Spatial \? )?"(\w+)"(?: : "(\w+)")?;)re");
  std::set<std::string> in_headers, registered;
  for (const auto& entry : std::filesystem::directory_iterator(CONVNET_LAYERS_DIR)) {
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::sregex_iterator m(text.begin(), text.end(), named), end; m != end; ++m) {
      in_headers.insert((*m)[1]);
      if ((*m)[2].matched) in_headers.insert((*m)[2]);
    }
  }
  for (const auto& t : layer_types<float>()) {
    if (t.built_in) registered.insert(t.name);
  }
  EXPECT_GE(in_headers.size(), 10u);  // the headers were found and read
  EXPECT_EQ(in_headers, registered);
}

TEST(LayerRegistry, UnknownTypesAndBadSettingsAreNamed) {
  EXPECT_EQ(message_of([] { make_layer<float>("Conv3d", {}, "layer conv9"); }).rfind(
                "layer conv9: unknown layer type 'Conv3d'; known types are Conv2d, Dense, ReLU,", 0),
            0u);
  EXPECT_EQ(message_of([] { make_layer<float>("Dense", {{"in_features", "3"}}, "layer fc"); }),
            "layer fc (Dense): needs out_features");
  EXPECT_EQ(message_of([] { make_layer<float>("ReLU", {{"slope", "0.1"}}, "layer r"); }),
            "layer r (ReLU): unknown setting 'slope' (it takes none)");
  EXPECT_NE(message_of([] { make_layer<float>("Conv2d", {{"in_channels", "3"}, {"out_channels", "0"}, {"kernel_size", "3"}}); })
                .find("out_channels"),
            std::string::npos);  // the layer's own bounds still apply
}

// --- losses -----------------------------------------------------------------------------------

// Each registered loss from its name, with settings that keep its terms active on a small random
// batch: the gradient checked against central differences in double. A loss added to the registry
// without a line here fails.
TEST(LossRegistry, EveryLossPassesAGradientCheckFromItsName) {
  const std::map<std::string, std::string> spec = {
      {"cross-entropy", "cross-entropy(label_smoothing=0.2)"},
      {"hinge", "hinge"},
      {"squared-hinge", "squared-hinge(margin=0.5)"},
      {"cosine", "cosine"},
      {"triplet", "triplet(margin=5)"},
      {"contrastive", "contrastive(margin=5)"},
      {"pair-hinge", "pair-hinge(margin=1.5)"},
      {"double-margin", "double-margin(positive_margin=0.3,negative_margin=2)"},
      {"siamese-global", "siamese-global(margin=1)"},
      {"lmnn", "lmnn(margin=5)"},
      {"improved-triplet", "improved-triplet(tau2=0.5,beta=0.3)"},
      {"distance-ratio", "distance-ratio"},
      {"softpn", "softpn"},
      {"lifted", "lifted(alpha=2,normalize=1)"},
      {"triplet-global", "triplet-global(margin=5,normalize=0)"},
      {"histogram", "histogram(nodes=5)"},
  };
  Rng rng(17);
  Tensor<double> input(6, 4, 1, 1);
  convnet::testing::fill_uniform(input, rng, -1, 1);
  const std::vector<int> labels{0, 1, 2, 0, 1, 2};
  for (const auto& type : loss_types<double>()) {
    ASSERT_TRUE(spec.count(type.name)) << type.name << " has no gradient check";
    EXPECT_FALSE(type.help.empty()) << type.name;
    auto loss = make_loss<double>(spec.at(type.name));
    EXPECT_EQ(loss->type_name(), type.name);
    EXPECT_NE(loss->forward(input, labels), 0.0) << spec.at(type.name) << ": no active term, nothing checked";
    const Tensor<double> grad = loss->backward();
    const auto errors = convnet::testing::compare_with_finite_differences(
        [&] { return static_cast<double>(loss->forward(input, labels)); }, {{"input", input.data()}},
        {{grad.data(), grad.data() + grad.size()}}, {input.size()});
    EXPECT_LT(errors.at(0).relative_error, 1e-6) << spec.at(type.name);
  }
  EXPECT_EQ(spec.size(), loss_types<double>().size()) << "a line above names a loss the registry does not have";
}

TEST(LossRegistry, NormalizeIsTakenByPairAndTripletLossesOnly) {
  for (const auto& type : loss_types<float>()) {
    const std::string spec = type.name + "(normalize=1)";
    const bool global = type.name == "siamese-global" || type.name == "triplet-global";  // their own setting
    if (type.normalizable || global) {
      EXPECT_NO_THROW(make_loss<float>(spec)) << spec;
    } else {
      EXPECT_NE(message_of([&] { make_loss<float>(spec); }).find("unknown setting 'normalize'"), std::string::npos) << spec;
    }
  }
}

// --- optimizers, schedules, networks, datasets ----------------------------------------------

TEST(OptimizerAndScheduleRegistries, EveryNameBuildsAndUnknownNamesListThem) {
  Tensor<float> w(1, 4, 1, 1), g(1, 4, 1, 1);
  const std::vector<Parameter<float>> params{Parameter<float>{"w", {4}, w.data(), g.data(), 4, true}};
  for (const auto& t : optimizer_types<float>()) {
    EXPECT_FALSE(t.help.empty());
    EXPECT_EQ(make_optimizer<float>(TrainingRecipe().optimizer(t.name), params)->type_name(), t.name);
  }
  for (const auto& t : schedule_types()) {
    EXPECT_FALSE(t.help.empty());
    EXPECT_NE(make_schedule(TrainingRecipe().schedule(t.name).epochs(3).steps_per_epoch(5)), nullptr) << t.name;
  }
  EXPECT_EQ(message_of([&] { make_optimizer<float>(TrainingRecipe().optimizer("rmsprop"), params); }),
            "unknown optimizer 'rmsprop'; valid names are sgd or adam");
  EXPECT_EQ(message_of([] { make_schedule(TrainingRecipe().schedule("triangle")); }),
            "unknown schedule 'triangle'; valid names are onecycle, linear, cosine, step, plateau or constant");
}

TEST(NetworkAndDatasetRegistries, EveryNameBuildsAndIsDescribed) {
  for (const auto& c : alexnet_config_names()) {
    EXPECT_FALSE(c.help.empty());
    EXPECT_EQ(AlexNetConfig::named(c.name).name(), c.name);
    EXPECT_FALSE(alexnet_parameter_shapes(AlexNetConfig::named(c.name)).empty()) << c.name;
  }
  EXPECT_NE(message_of([] { AlexNetConfig::named("vgg"); }).find("valid names are " + alexnet_config_list()), std::string::npos);
  for (const auto& k : dataset_kinds()) {
    EXPECT_FALSE(k.help.empty());
    EXPECT_EQ(DatasetSpec::parse(k.name + ":some/dir").info().name, k.name);
  }
  EXPECT_EQ(message_of([] { DatasetSpec::parse("svhn:dir"); }),
            "dataset 'svhn:dir' must be kind:DIR with kind cifar10, cifar100, mnist, fashion-mnist or folder");
}

// What --list prints is each registry, whole.
TEST(NetworkAndDatasetRegistries, TheProgramsListShowsEveryEntry) {
  std::ostringstream out;
  cli::print_train_choices(out);
  const std::string text = out.str();
  for (const auto& t : loss_types<float>()) EXPECT_NE(text.find("  " + t.name + " "), std::string::npos) << t.name;
  for (const auto& t : optimizer_types<float>()) EXPECT_NE(text.find("  " + t.name + " "), std::string::npos) << t.name;
  for (const auto& t : schedule_types()) EXPECT_NE(text.find("  " + t.name + " "), std::string::npos) << t.name;
  for (const auto& c : alexnet_config_names()) EXPECT_NE(text.find("  " + c.name + " "), std::string::npos) << c.name;
  for (const auto& k : dataset_kinds()) EXPECT_NE(text.find("  " + k.name + " "), std::string::npos) << k.name;
}

}  // namespace
