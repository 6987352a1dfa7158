// Every layer's backward against central differences, in double, through the
// one checker in gradient_check.hpp. Shapes are small but cover the options
// AlexNet uses: stride > 1, padding, groups = 2, overlapping pooling, LRN
// windows clipped at the first and last channels, and batches of more than one.
#include <gtest/gtest.h>

#include <convnet/convnet.hpp>

#include "gradient_check.hpp"

namespace {

using namespace convnet;
using convnet::testing::check_layer_gradients;

constexpr double kTolerance = 1e-6;

void expect_gradients_match(Layer<double>& layer, const Shape& shape, const std::function<void()>& before = {}) {
  const auto errors = check_layer_gradients(layer, shape, 7, before);
  ASSERT_FALSE(errors.empty());
  for (const auto& e : errors) {
    EXPECT_LT(e.relative_error, kTolerance) << layer.describe() << ", gradient of " << e.tensor << " for input "
                                            << shape.str();
  }
}

TEST(Gradients, Conv2dPlain) {
  Conv2d<double> conv(Conv2dOptions(3, 4, 3));
  expect_gradients_match(conv, {2, 3, 6, 5});
}

TEST(Gradients, Conv2dStrideAndPadding) {
  Conv2d<double> conv(Conv2dOptions(2, 3, 3).stride(2).padding(1));
  expect_gradients_match(conv, {2, 2, 7, 8});
}

TEST(Gradients, Conv2dLargeStrideLikeConv1) {
  Conv2d<double> conv(Conv2dOptions(3, 2, 5).stride(4));  // conv1's shape of step: kernel > stride
  expect_gradients_match(conv, {2, 3, 13, 13});
}

TEST(Gradients, Conv2dTwoGroups) {
  Conv2d<double> conv(Conv2dOptions(4, 6, 3).padding(1).groups(2));
  expect_gradients_match(conv, {3, 4, 5, 5});
}

TEST(Gradients, Conv2dFourGroupsWithoutBias) {
  Conv2d<double> conv(Conv2dOptions(4, 4, 2).groups(4).bias(false));
  expect_gradients_match(conv, {2, 4, 4, 4});
}

TEST(Gradients, ReLU) {
  ReLU<double> relu;
  expect_gradients_match(relu, {2, 3, 4, 5});
}

TEST(Gradients, LocalResponseNormPaperConvention) {
  // alpha large enough that the normalisation term matters in the gradient.
  LocalResponseNorm<double> lrn(LocalResponseNormOptions(5).alpha(0.5).beta(0.75).k(2));
  expect_gradients_match(lrn, {2, 7, 3, 3});  // 7 channels: windows clipped at both ends
}

TEST(Gradients, LocalResponseNormAlphaOverN) {
  LocalResponseNorm<double> lrn(
      LocalResponseNormOptions(3).alpha(0.9).beta(0.6).k(1).convention(LrnConvention::AlphaOverN));
  expect_gradients_match(lrn, {2, 5, 2, 3});
}

TEST(Gradients, LocalResponseNormWindowWiderThanChannels) {
  LocalResponseNorm<double> lrn(LocalResponseNormOptions(5).alpha(0.7));
  expect_gradients_match(lrn, {1, 3, 2, 2});
}

TEST(Gradients, MaxPoolOverlapping) {
  MaxPool2d<double> pool(MaxPool2dOptions(3).stride(2));
  expect_gradients_match(pool, {2, 3, 9, 7});
}

TEST(Gradients, MaxPoolDisjoint) {
  MaxPool2d<double> pool(MaxPool2dOptions(2));
  expect_gradients_match(pool, {2, 2, 6, 6});
}

TEST(Gradients, DropoutTrainingWithReplayedMask) {
  Dropout<double> dropout(DropoutOptions(0.4).seed(3));
  // Every forward of the check draws the same mask: same seed, same step.
  expect_gradients_match(dropout, {2, 3, 4, 4}, [&] { dropout.set_random_state(3, 0); });
}

TEST(Gradients, DropoutEvaluation) {
  Dropout<double> dropout(DropoutOptions(0.5));
  dropout.set_training(false);
  expect_gradients_match(dropout, {2, 3, 2, 2});
}

TEST(Gradients, Dense) {
  Dense<double> dense(DenseOptions(12, 5));
  expect_gradients_match(dense, {3, 12, 1, 1});
}

TEST(Gradients, DenseWithoutBias) {
  Dense<double> dense(DenseOptions(4, 3).bias(false));
  expect_gradients_match(dense, {2, 4, 1, 1});
}

TEST(Gradients, Flatten) {
  Flatten<double> flatten;
  expect_gradients_match(flatten, {2, 3, 2, 4});
}

TEST(Gradients, Softmax) {
  Softmax<double> softmax;
  expect_gradients_match(softmax, {3, 6, 1, 1});
  expect_gradients_match(softmax, {2, 4, 2, 3});  // across channels at every pixel
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
