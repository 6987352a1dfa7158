// Every layer's backward against central differences, in double, through the
// one checker in gradient_check.hpp, driven by one list of layer types. Shapes are small but cover the options
// AlexNet uses: stride > 1, padding, groups = 2, overlapping pooling, LRN
// windows clipped at the first and last channels, and batches of more than one.
#include <gtest/gtest.h>

#include <convnet/convnet.hpp>
#include <convnet/models/layer_registry.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gradient_check.hpp"

namespace {

using namespace convnet;
using convnet::testing::check_layer_gradients;

constexpr double kTolerance = 1e-6;

// Every layer type joins the list below with one line, and says here which shapes and options its
// check covers. A test holds the list to the layer registry by content, so a new layer cannot be
// left out.
struct Case {
  std::string what;
  std::function<std::unique_ptr<Layer<double>>()> make;
  Shape input;
  std::function<void(Layer<double>&)> before_forward;  // e.g. replay dropout's mask
};

/// A factory of layer L built from `args` (layers cannot be copied, so each check builds its own).
template <class L, class... Args>
std::function<std::unique_ptr<Layer<double>>()> make(Args... args) {
  return [=] { return std::unique_ptr<Layer<double>>(std::make_unique<L>(args...)); };
}

template <class L>
struct GradientCases;

template <>
struct GradientCases<Conv2d<double>> {
  static std::vector<Case> get() {
    using C = Conv2d<double>;
    return {{"plain", make<C>(Conv2dOptions(3, 4, 3)), {2, 3, 6, 5}, {}},
            {"stride 2, padding 1", make<C>(Conv2dOptions(2, 3, 3).stride(2).padding(1)),
             {2, 2, 7, 8}, {}},
            {"kernel > stride, like conv1", make<C>(Conv2dOptions(3, 2, 5).stride(4)),
             {2, 3, 13, 13}, {}},
            {"two groups", make<C>(Conv2dOptions(4, 6, 3).padding(1).groups(2)), {3, 4, 5, 5}, {}},
            {"four groups, no bias", make<C>(Conv2dOptions(4, 4, 2).groups(4).bias(false)),
             {2, 4, 4, 4}, {}},
            {"Winograd F(4x4, 3x3), odd planes", make<C>(Conv2dOptions(3, 4, 3).padding(1).algorithm(ConvAlgorithm::Winograd)),
             {2, 3, 7, 5}, {}},
            {"Winograd F(4x4, 5x5), two groups, no padding",
             make<C>(Conv2dOptions(4, 2, 5).groups(2).algorithm(ConvAlgorithm::Winograd)), {2, 4, 9, 6}, {}}};
  }
};

template <>
struct GradientCases<ReLU<double>> {
  static std::vector<Case> get() { return {{"plain", make<ReLU<double>>(), {2, 3, 4, 5}, {}}}; }
};

template <>
struct GradientCases<GELU<double>> {
  static std::vector<Case> get() {
    return {{"exact (erf)", make<GELU<double>>(false), {2, 3, 4, 5}, {}},
            {"tanh approximation", make<GELU<double>>(true), {2, 3, 4, 5}, {}}};
  }
};

template <>
struct GradientCases<Multiply<double>> {
  static std::vector<Case> get() { return {{"factor 1/9", make<Multiply<double>>(1.0 / 9), {3, 10, 1, 1}, {}}}; }
};

template <>
struct GradientCases<LocalResponseNorm<double>> {
  static std::vector<Case> get() {
    using L = LocalResponseNorm<double>;
    // alpha large enough that the normalisation term matters in the gradient; 7 channels clip windows at both ends.
    return {{"paper convention", make<L>(LocalResponseNormOptions(5).alpha(0.5).beta(0.75).k(2)),
             {2, 7, 3, 3}, {}},
            {"alpha / n",
             make<L>(LocalResponseNormOptions(3).alpha(0.9).beta(0.6).k(1).convention(LrnConvention::AlphaOverN)),
             {2, 5, 2, 3}, {}},
            {"window wider than the channels", make<L>(LocalResponseNormOptions(5).alpha(0.7)),
             {1, 3, 2, 2}, {}}};
  }
};

template <>
struct GradientCases<MaxPool2d<double>> {
  static std::vector<Case> get() {
    using P = MaxPool2d<double>;
    return {{"overlapping", make<P>(MaxPool2dOptions(3).stride(2)), {2, 3, 9, 7}, {}},
            {"disjoint", make<P>(MaxPool2dOptions(2)), {2, 2, 6, 6}, {}}};
  }
};

template <>
struct GradientCases<Dropout<double>> {
  static std::vector<Case> get() {
    using D = Dropout<double>;
    // Every forward of the check draws the same mask: same seed, same step.
    return {{"training, mask replayed", make<D>(DropoutOptions(0.4).seed(3)), {2, 3, 4, 4},
             [](Layer<double>& l) { static_cast<D&>(l).set_random_state(3, 0); }},
            {"evaluation", make<D>(DropoutOptions(0.5)), {2, 3, 2, 2},
             [](Layer<double>& l) { l.set_training(false); }}};
  }
};

template <>
struct GradientCases<Dense<double>> {
  static std::vector<Case> get() {
    return {{"plain", make<Dense<double>>(DenseOptions(12, 5)), {3, 12, 1, 1}, {}},
            {"no bias", make<Dense<double>>(DenseOptions(4, 3).bias(false)),
             {2, 4, 1, 1}, {}}};
  }
};

template <>
struct GradientCases<Flatten<double>> {
  static std::vector<Case> get() {
    return {{"plain", make<Flatten<double>>(), {2, 3, 2, 4}, {}}};
  }
};

template <>
struct GradientCases<Softmax<double>> {
  static std::vector<Case> get() {
    return {{"per sample", make<Softmax<double>>(), {3, 6, 1, 1}, {}},
            {"across channels at every pixel", make<Softmax<double>>(),
             {2, 4, 2, 3}, {}}};
  }
};

template <>
struct GradientCases<AdaptiveAvgPool2d<double>> {
  static std::vector<Case> get() {
    using A = AdaptiveAvgPool2d<double>;
    return {{"7 -> 3, overlapping windows", make<A>(3, 3), {2, 3, 7, 7}, {}},
            {"5 x 6 -> 2 x 4", make<A>(2, 4), {1, 2, 5, 6}, {}},
            {"upsampling 2 -> 3", make<A>(3, 3), {2, 2, 2, 2}, {}}};
  }
};

// Batch normalisation through its batch statistics (training) and through fixed running ones
// (evaluation: set once, away from 0 and 1, so a wrong use of them shows).
template <class L>
std::vector<Case> batch_norm_cases(Shape training, Shape evaluation) {
  const Index c = training.c;
  auto evaluate = [](Layer<double>& l) {
    auto& bn = static_cast<L&>(l);
    if (!bn.training()) return;
    bn.set_training(false);
    for (Index k = 0; k < bn.running_mean().size(); ++k) {
      bn.running_mean()[k] = 0.3 * static_cast<double>(k) - 0.2;
      bn.running_var()[k] = 0.5 + 0.25 * static_cast<double>(k);
    }
  };
  return {{"training, affine", make<L>(BatchNormOptions(c)), training, {}},
          {"training, no affine, eps 0.1", make<L>(BatchNormOptions(c).affine(false).eps(0.1)), training, {}},
          {"training, bias only (weight held at 1)", make<L>(BatchNormOptions(c).weight(false)), training, {}},
          {"evaluation, running statistics", make<L>(BatchNormOptions(evaluation.c)), evaluation, evaluate}};
}
template <>
struct GradientCases<BatchNorm2d<double>> {
  static std::vector<Case> get() { return batch_norm_cases<BatchNorm2d<double>>({3, 4, 3, 2}, {2, 3, 2, 2}); }
};
template <>
struct GradientCases<BatchNorm1d<double>> {
  static std::vector<Case> get() { return batch_norm_cases<BatchNorm1d<double>>({5, 6, 1, 1}, {2, 4, 1, 1}); }
};

// The list: one line per layer type.
using EveryLayer = ::testing::Types<Conv2d<double>,             // layers/conv2d.hpp
                                    ReLU<double>,               // layers/relu.hpp
                                    LocalResponseNorm<double>,  // layers/local_response_norm.hpp
                                    MaxPool2d<double>,          // layers/max_pool2d.hpp
                                    Dropout<double>,            // layers/dropout.hpp
                                    Dense<double>,              // layers/dense.hpp
                                    Flatten<double>,            // layers/flatten.hpp
                                    Softmax<double>,            // layers/softmax.hpp
                                    AdaptiveAvgPool2d<double>,  // layers/adaptive_avg_pool2d.hpp
                                    BatchNorm2d<double>,        // layers/batch_norm.hpp
                                    BatchNorm1d<double>,        // layers/batch_norm.hpp
                                    GELU<double>,               // layers/gelu.hpp
                                    Multiply<double>>;          // layers/multiply.hpp

template <class L>
class LayerGradients : public ::testing::Test {};
TYPED_TEST_SUITE(LayerGradients, EveryLayer);

TYPED_TEST(LayerGradients, MatchCentralDifferencesInDouble) {
  const std::vector<Case> cases = GradientCases<TypeParam>::get();
  ASSERT_FALSE(cases.empty());
  for (const Case& c : cases) {
    const auto layer = c.make();
    std::function<void()> before;
    if (c.before_forward) before = [&] { c.before_forward(*layer); };
    const auto errors = check_layer_gradients(*layer, c.input, 7, before);
    ASSERT_FALSE(errors.empty()) << c.what;
    for (const auto& e : errors) {
      EXPECT_LT(e.relative_error, kTolerance) << layer->describe() << " (" << c.what << "), gradient of " << e.tensor
                                              << " for input " << c.input.str();
    }
  }
}

// By content: the layer types checked above are exactly the registry's (models/layer_registry.hpp),
// which a test in test_registry.cpp holds to the classes in include/convnet/layers/.
template <class... Layers>
std::set<std::string> checked_types(::testing::Types<Layers...>*) {
  std::set<std::string> names;
  (names.insert(GradientCases<Layers>::get().at(0).make()->type_name()), ...);
  return names;
}

TEST(Gradients, EveryRegisteredLayerIsChecked) {
  std::set<std::string> registered;
  for (const auto& t : layer_types<double>()) {
    if (t.built_in) registered.insert(t.name);  // a program's own types are its to check
  }
  EXPECT_EQ(checked_types(static_cast<EveryLayer*>(nullptr)), registered)
      << "a layer of the registry is missing from EveryLayer, or EveryLayer holds one the registry lacks";
}

TEST(Gradients, SoftmaxCrossEntropy) {
  Rng rng(11);
  Tensor<double> logits(4, 6, 1, 1);
  convnet::testing::fill_uniform(logits, rng, -3, 3);
  const std::vector<int> labels{0, 5, 2, 2};
  SoftmaxCrossEntropy<double> loss;
  loss.forward(logits, labels);
  const Tensor<double> grad = loss.backward();
  const auto errors = convnet::testing::compare_with_finite_differences(
      [&] { return static_cast<double>(loss.forward(logits, labels)); }, {{"logits", logits.data()}},
      {{grad.data(), grad.data() + grad.size()}}, {logits.size()});
  EXPECT_LT(errors.at(0).relative_error, kTolerance);
}

// The checker itself must fail on a wrong gradient; otherwise every test above could pass vacuously.
template <class T>
class BrokenReLU : public ReLU<T> {
 protected:
  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    ReLU<T>::backward_impl(input, grad_output, grad_input);
    grad_input.data()[0] += T(0.5);
  }
};

TEST(Gradients, CheckerDetectsAWrongGradient) {
  BrokenReLU<double> broken;
  const auto errors = check_layer_gradients(broken, {1, 2, 2, 2}, 7);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_GT(errors[0].relative_error, 1e-2);
}

}  // namespace
