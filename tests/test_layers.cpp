// The layers (layers/, layer.hpp, init.hpp) and the kernels/ they run on: forward values pinned by
// hand, float/double agreement, initialisation, the errors every public call gives on bad shapes and
// bad options, and Winograd and gemm against the direct path and Eigen's product.
#include <gtest/gtest.h>

#include <convnet/init.hpp>
#include <convnet/kernels/bf16.hpp>
#include <convnet/layer.hpp>
#include <convnet/layers/batch_norm.hpp>
#include <convnet/layers/conv2d.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/layers/dropout.hpp>
#include <convnet/layers/flatten.hpp>
#include <convnet/layers/gelu.hpp>
#include <convnet/layers/local_response_norm.hpp>
#include <convnet/layers/max_pool2d.hpp>
#include <convnet/layers/multiply.hpp>
#include <convnet/layers/relu.hpp>
#include <convnet/layers/softmax.hpp>
#include <convnet/losses/softmax_cross_entropy.hpp>  // ShapeErrors.LossChecksLogitsAndLabels
#include <convnet/models/sequential.hpp>
#include <convnet/parameter.hpp>
#include <convnet/random.hpp>
#include <convnet/tensor.hpp>
#include <convnet/threading.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "on_threads.hpp"

namespace {

using namespace convnet;
using convnet::testing::forward_on_threads;

// x[r][c] = 4r + c + 1 on a 4 x 4 image: a ramp of slope 1 along x.
Tensor<double> ramp4x4() {
  Tensor<double> x(1, 1, 4, 4);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) x(0, 0, r, c) = 4 * r + c + 1;
  return x;
}

void set_sobel_x(Conv2d<double>& conv, double bias) {
  // [[1, 0, -1], [2, 0, -2], [1, 0, -1]], applied as cross-correlation.
  const double k[9] = {1, 0, -1, 2, 0, -2, 1, 0, -1};
  for (int i = 0; i < 9; ++i) conv.weight()(0, i) = k[i];
  conv.bias()(0) = bias;
}

TEST(Conv2dForward, SobelOnARampByHand) {
  // Valid 3x3: each window gives (1 + 2 + 1) * (x[c] - x[c+2]) = 4 * (-2) = -8; plus bias 0.5.
  Conv2d<double> conv(Conv2dOptions(1, 1, 3));
  set_sobel_x(conv, 0.5);
  const Tensor<double> x = ramp4x4();
  const Tensor<double>& y = conv.forward(x);
  ASSERT_EQ(shape_of(y), (Shape{1, 1, 2, 2}));
  for (int i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(y.data()[i], -7.5);
}

TEST(Conv2dForward, PaddingAndStrideByHand) {
  // Padding 1, stride 2: outputs at (0,0), (0,2), (2,0), (2,2) of the 'same' result.
  // (0,0): row -1 is padding; row 0: 2*(0 - x[0][1]=2) = -4; row 1: 1*(0 - x[1][1]=6) = -6  -> -10.
  // (0,2): row 0: 2*(x[0][1]=2 - x[0][3]=4) = -4; row 1: (6 - 8) = -2                     -> -6.
  // (2,0): rows 1..3 at columns -1 and 1: -(6 + 2*10 + 14) = -40.
  // (2,2): rows 1..3, each x[c] - x[c+2] = -2: -2 * (1 + 2 + 1) = -8.
  Conv2d<double> conv(Conv2dOptions(1, 1, 3).padding(1).stride(2));
  set_sobel_x(conv, 0.0);
  const Tensor<double> x = ramp4x4();
  const Tensor<double>& y = conv.forward(x);
  ASSERT_EQ(shape_of(y), (Shape{1, 1, 2, 2}));
  EXPECT_DOUBLE_EQ(y(0, 0, 0, 0), -10);
  EXPECT_DOUBLE_EQ(y(0, 0, 0, 1), -6);
  EXPECT_DOUBLE_EQ(y(0, 0, 1, 0), -40);
  EXPECT_DOUBLE_EQ(y(0, 0, 1, 1), -8);
}

// The direct path against the definition, summed in double, for strides and paddings whose
// windows start or end outside the picture in every way: a kernel that passes the right edge from
// its first position (kernel 4, stride 2, padding 1 on a 2 x 2 picture), strides larger than the
// kernel, padding larger than the stride.
TEST(Conv2dForward, EveryStrideAndPaddingMatchesTheDefinition) {
  struct Case {
    Index k, stride, pad, h, w;
  };
  for (const Case& c : {Case{4, 2, 1, 2, 2}, Case{3, 2, 2, 3, 5}, Case{5, 3, 1, 7, 4}, Case{2, 3, 0, 8, 7},
                        Case{11, 4, 0, 15, 19}, Case{3, 1, 1, 1, 6}}) {
    Conv2d<double> conv(Conv2dOptions(2, 3, c.k).stride(c.stride).padding(c.pad).seed(4).algorithm(ConvAlgorithm::Direct));
    Tensor<double> x(2, 2, c.h, c.w);
    Rng rng(8);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = rng.uniform(-1, 1);
    const Tensor<double> y = conv.forward(x);
    const auto w = conv.weight();
    for (Index n = 0; n < 2; ++n) {
      for (Index o = 0; o < 3; ++o) {
        for (Index oy = 0; oy < y.dimension(2); ++oy) {
          for (Index ox = 0; ox < y.dimension(3); ++ox) {
            double sum = conv.bias()(o);
            for (Index ch = 0; ch < 2; ++ch) {
              for (Index i = 0; i < c.k; ++i) {
                for (Index j = 0; j < c.k; ++j) {
                  const Index yy = oy * c.stride - c.pad + i, xx = ox * c.stride - c.pad + j;
                  if (yy >= 0 && yy < c.h && xx >= 0 && xx < c.w) sum += w(o, (ch * c.k + i) * c.k + j) * x(n, ch, yy, xx);
                }
              }
            }
            ASSERT_NEAR(y(n, o, oy, ox), sum, 1e-12) << "kernel " << c.k << " stride " << c.stride << " padding "
                                                     << c.pad << " at (" << oy << ", " << ox << ")";
          }
        }
      }
    }
  }
}

TEST(Conv2dForward, GroupsSeeOnlyTheirHalfOfTheChannels) {
  // 1x1 kernels, 2 groups: output 0 may only read channels 0-1, output 1 channels 2-3.
  Conv2d<double> conv(Conv2dOptions(4, 2, 1).groups(2).bias(false));
  conv.weight() << 1, 10, 100, 1000;  // row g: weights on the two channels of group g
  Tensor<double> x(1, 4, 1, 1);
  x.setValues({{{{1}}, {{2}}, {{3}}, {{4}}}});
  const Tensor<double>& y = conv.forward(x);
  EXPECT_DOUBLE_EQ(y(0, 0, 0, 0), 1 * 1 + 10 * 2);
  EXPECT_DOUBLE_EQ(y(0, 1, 0, 0), 100 * 3 + 1000 * 4);
  EXPECT_EQ(conv.parameter_count(), 4 + 0);
}

TEST(Conv2dForward, BatchSplitAcrossThreadsMatchesOneThread) {
  Conv2d<float> conv(Conv2dOptions(3, 4, 3).padding(1));
  Rng rng(5);
  for (auto& p : conv.parameters())
    for (Index i = 0; i < p.size; ++i) p.value[i] = static_cast<float>(rng.uniform(-1, 1));
  Tensor<float> x(5, 3, 6, 6);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.uniform(-1, 1));
  const Tensor<float> one = forward_on_threads(conv, x, 1), two = forward_on_threads(conv, x, 2);
  for (Index i = 0; i < one.size(); ++i) ASSERT_NEAR(one.data()[i], two.data()[i], 1e-5f) << i;
}

TEST(Conv2dBackward, WithoutInputGradientTheWeightGradientIsUnchanged) {
  Conv2d<double> a(Conv2dOptions(2, 3, 3).padding(1)), b(Conv2dOptions(2, 3, 3).padding(1));
  Rng rng(2);
  for (auto* conv : {&a, &b})
    for (auto& p : conv->parameters())
      for (Index i = 0; i < p.size; ++i) p.value[i] = static_cast<double>(i % 7) - 3;
  Tensor<double> x(3, 2, 5, 5), g(3, 3, 5, 5);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = rng.uniform(-1, 1);
  for (Index i = 0; i < g.size(); ++i) g.data()[i] = rng.uniform(-1, 1);
  b.set_input_gradient(false);
  a.forward(x);
  a.backward(g);
  b.forward(x);
  b.backward(g);
  EXPECT_TRUE(a.weight_grad() == b.weight_grad());
  EXPECT_TRUE(a.bias_grad() == b.bias_grad());
}

TEST(LocalResponseNormForward, BothConventionsFromTheFormula) {
  // One pixel, channels a = (1, 2, 3, 4, 5, 6, 7), size 5, alpha 0.1, beta 0.75, k 2.
  // Channel 0's window is {0, 1, 2} (clipped); channel 3's is {1, ..., 5}.
  Tensor<double> x(1, 7, 1, 1);
  for (int c = 0; c < 7; ++c) x(0, c, 0, 0) = c + 1;
  const double sum0 = 1 + 4 + 9, sum3 = 4 + 9 + 16 + 25 + 36;

  LocalResponseNorm<double> paper(LocalResponseNormOptions(5).alpha(0.1).beta(0.75).k(2));
  const Tensor<double>& y = paper.forward(x);
  EXPECT_NEAR(y(0, 0, 0, 0), 1 / std::pow(2 + 0.1 * sum0, 0.75), 1e-15);
  EXPECT_NEAR(y(0, 3, 0, 0), 4 / std::pow(2 + 0.1 * sum3, 0.75), 1e-15);

  LocalResponseNorm<double> caffe(
      LocalResponseNormOptions(5).alpha(0.1).beta(0.75).k(2).convention(LrnConvention::AlphaOverN));
  const Tensor<double>& z = caffe.forward(x);
  EXPECT_NEAR(z(0, 0, 0, 0), 1 / std::pow(2 + 0.1 / 5 * sum0, 0.75), 1e-15);
  EXPECT_NEAR(z(0, 3, 0, 0), 4 / std::pow(2 + 0.1 / 5 * sum3, 0.75), 1e-15);

  // beta other than 0.75 takes the general pow path.
  LocalResponseNorm<double> general(LocalResponseNormOptions(3).alpha(0.2).beta(0.5).k(1));
  EXPECT_NEAR(general.forward(x)(0, 6, 0, 0), 7 / std::sqrt(1 + 0.2 * (36 + 49)), 1e-15);
}

TEST(LocalResponseNormForward, PaperConstantsAreTheDefaults) {
  const LocalResponseNormOptions o;
  EXPECT_EQ(o.size(), 5);
  EXPECT_DOUBLE_EQ(o.alpha(), 1e-4);
  EXPECT_DOUBLE_EQ(o.beta(), 0.75);
  EXPECT_DOUBLE_EQ(o.k(), 2.0);
  EXPECT_EQ(o.convention(), LrnConvention::AlphaOnSum);
  // In PyTorch's units (alpha divided by n) the paper's formula is alpha 5e-4.
  EXPECT_DOUBLE_EQ(LocalResponseNormOptions().alpha(5e-4).convention(LrnConvention::AlphaOverN).effective_alpha(),
                   o.effective_alpha());
}

TEST(MaxPoolForward, OverlappingWindowsByHand) {
  // 5 x 5 with values 0..24 except a peak of 100 at (2, 2): every 3x3/2 window contains it.
  Tensor<double> x(1, 1, 5, 5);
  for (int i = 0; i < 25; ++i) x.data()[i] = i;
  x(0, 0, 2, 2) = 100;
  MaxPool2d<double> pool(MaxPool2dOptions(3).stride(2));
  const Tensor<double>& y = pool.forward(x);
  ASSERT_EQ(shape_of(y), (Shape{1, 1, 2, 2}));
  for (int i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(y.data()[i], 100);
  // All four windows route their gradient to the shared peak.
  Tensor<double> g(1, 1, 2, 2);
  g.setValues({{{{1, 2}, {3, 4}}}});
  const Tensor<double>& dx = pool.backward(g);
  EXPECT_DOUBLE_EQ(dx(0, 0, 2, 2), 10);
  EXPECT_DOUBLE_EQ(flat(dx).sum(), 10);
}

TEST(MaxPoolForward, TiesSendTheGradientToOneElement) {
  Tensor<double> x(1, 1, 2, 2);
  x.setConstant(3.0);
  MaxPool2d<double> pool(MaxPool2dOptions(2));
  pool.forward(x);
  Tensor<double> g(1, 1, 1, 1);
  g.setConstant(1.0);
  const Tensor<double>& dx = pool.backward(g);
  EXPECT_DOUBLE_EQ(dx(0, 0, 0, 0), 1.0);  // the first in window order
  EXPECT_DOUBLE_EQ(flat(dx).sum(), 1.0);
}

TEST(MaxPoolForward, PaperSizes) {
  MaxPool2d<float> pool(MaxPool2dOptions(3).stride(2));
  EXPECT_EQ(pool.output_shape({1, 96, 55, 55}), (Shape{1, 96, 27, 27}));
  EXPECT_EQ(pool.output_shape({1, 256, 27, 27}), (Shape{1, 256, 13, 13}));
  EXPECT_EQ(pool.output_shape({1, 256, 13, 13}), (Shape{1, 256, 6, 6}));
  EXPECT_EQ(pool.output_shape({1, 64, 32, 32}), (Shape{1, 64, 15, 15}));
}

TEST(DropoutForward, KeepsAboutOneMinusPAndScalesInverted) {
  Dropout<float> dropout(DropoutOptions(0.3).seed(9));
  Tensor<float> x(4, 10, 50, 50);
  x.setConstant(1.0f);
  const Tensor<float>& y = dropout.forward(x);
  Index kept = 0;
  for (Index i = 0; i < y.size(); ++i) {
    if (y.data()[i] != 0.0f) {
      ++kept;
      ASSERT_NEAR(y.data()[i], 1.0f / 0.7f, 1e-6f);
    }
  }
  const double rate = static_cast<double>(kept) / static_cast<double>(y.size());
  EXPECT_NEAR(rate, 0.7, 0.005);  // 100,000 draws: 5 standard deviations is 0.0072
}

TEST(DropoutForward, MasksDifferEachStepAndDoNotDependOnThreads) {
  Dropout<float> dropout(DropoutOptions(0.5).seed(1));
  Tensor<float> x(2, 3, 40, 40);
  x.setConstant(1.0f);
  const int threads = num_threads();
  set_num_threads(1);
  const Tensor<float> first = dropout.forward(x);
  const Tensor<float> second = dropout.forward(x);
  dropout.set_random_state(1, 0);
  set_num_threads(2);
  const Tensor<float> replay = dropout.forward(x);
  set_num_threads(threads);
  EXPECT_TRUE(flat(first) == flat(replay));
  EXPECT_FALSE(flat(first) == flat(second));
}

TEST(DropoutForward, EvaluationIsTheIdentity) {
  Dropout<float> dropout(DropoutOptions(0.5));
  dropout.set_training(false);
  Tensor<float> x(2, 3, 4, 4);
  x.setRandom();
  EXPECT_TRUE(flat(dropout.forward(x)) == flat(x));
}

TEST(BatchNormForward, BatchStatisticsRunningStatisticsAndEvaluationByHand) {
  // Channel 0 holds 1, 2, 3, 4 (two pictures of 1 x 2): mean 2.5, biased variance 1.25,
  // unbiased 5/3; channel 1 holds 0, 0, 2, 2: mean 1, variance 1, unbiased 4/3.
  BatchNorm2d<double> bn(BatchNormOptions(2).eps(1e-300));  // eps vanishing, to keep the numbers round
  Tensor<double> x(2, 2, 1, 2);
  x.setValues({{{{1, 2}}, {{0, 0}}}, {{{3, 4}}, {{2, 2}}}});
  bn.weight() << 2, 1;
  bn.bias() << 0.5, -1;
  const Tensor<double>& y = bn.forward(x);
  EXPECT_NEAR(y(0, 0, 0, 0), 2 * (1 - 2.5) / std::sqrt(1.25) + 0.5, 1e-12);
  EXPECT_NEAR(y(1, 0, 0, 1), 2 * (4 - 2.5) / std::sqrt(1.25) + 0.5, 1e-12);
  EXPECT_NEAR(y(0, 1, 0, 1), -1 - 1, 1e-12);
  EXPECT_NEAR(y(1, 1, 0, 0), 1 - 1, 1e-12);
  // Running statistics moved a tenth of the way from (0, 1) towards the batch's (unbiased variance).
  EXPECT_NEAR(bn.running_mean()[0], 0.25, 1e-12);
  EXPECT_NEAR(bn.running_var()[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-12);
  EXPECT_NEAR(bn.running_mean()[1], 0.1, 1e-12);
  EXPECT_NEAR(bn.running_var()[1], 0.9 + 0.1 * 4.0 / 3.0, 1e-12);
  // Evaluation normalises with the running statistics and leaves them alone.
  bn.set_training(false);
  const Tensor<double>& z = bn.forward(x);
  EXPECT_NEAR(z(0, 0, 0, 0), 2 * (1 - 0.25) / std::sqrt(0.9 + 0.5 / 3) + 0.5, 1e-12);
  EXPECT_NEAR(bn.running_mean()[0], 0.25, 1e-12);
  // momentum 1 keeps only the last batch; momentum 0 never moves.
  BatchNorm1d<double> last(BatchNormOptions(1).momentum(1)), frozen(BatchNormOptions(1).momentum(0));
  Tensor<double> v(3, 1, 1, 1);
  v.setValues({{{{1}}}, {{{2}}}, {{{6}}}});
  last.forward(v);
  frozen.forward(v);
  EXPECT_NEAR(last.running_mean()[0], 3, 1e-12);
  EXPECT_NEAR(last.running_var()[0], 7, 1e-12);  // (4 + 1 + 9) / 2
  EXPECT_EQ(frozen.running_mean()[0], 0);
  EXPECT_EQ(frozen.running_var()[0], 1);
}

TEST(BatchNormForward, ShapesOptionsAndTheBatchOfOne) {
  BatchNorm2d<float> bn2(BatchNormOptions(3));
  BatchNorm1d<float> bn1(BatchNormOptions(3));
  EXPECT_THROW(bn2.forward(Tensor<float>(2, 4, 2, 2)), ShapeError);
  EXPECT_THROW(bn1.forward(Tensor<float>(2, 3, 2, 2)), ShapeError);  // 1d takes [N, C, 1, 1]
  Tensor<float> one(1, 3, 1, 1);
  one.setZero();
  try {
    bn1.forward(one);
    FAIL() << "a batch of one trained through BatchNorm1d";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("more than one value per channel"), std::string::npos) << e.what();
  }
  bn1.set_training(false);
  EXPECT_NO_THROW(bn1.forward(one));  // evaluation of one picture is fine
  EXPECT_THROW(BatchNorm2d<float>(BatchNormOptions(0)), std::invalid_argument);
  EXPECT_THROW(BatchNorm2d<float>(BatchNormOptions(3).eps(0)), std::invalid_argument);
  EXPECT_THROW(BatchNorm2d<float>(BatchNormOptions(3).momentum(1.5)), std::invalid_argument);
  EXPECT_EQ(BatchNorm2d<float>(BatchNormOptions(4).affine(false)).parameters().size(), 0u);
  EXPECT_EQ(bn2.buffers().size(), 2u);
}

TEST(BatchNormForward, BiasOnlyHoldsGammaAtOneAndLearnsBeta) {
  BatchNorm2d<double> bn(BatchNormOptions(2).weight(false).eps(1e-300));
  const auto params = bn.parameters();
  ASSERT_EQ(params.size(), 1u);  // beta alone
  EXPECT_EQ(params[0].name, "bias");
  EXPECT_EQ(bn.describe(), "BatchNorm2d(2, bias only)");
  Tensor<double> x(2, 2, 1, 2);
  x.setValues({{{{1, 2}}, {{0, 0}}}, {{{3, 4}}, {{2, 2}}}});
  bn.bias() << 0.5, -1;
  const Tensor<double>& y = bn.forward(x);
  EXPECT_NEAR(y(0, 0, 0, 0), (1 - 2.5) / std::sqrt(1.25) + 0.5, 1e-12);  // gamma 1
  EXPECT_NEAR(y(1, 1, 0, 0), 1 - 1, 1e-12);
  Tensor<double> dy(2, 2, 1, 2);
  dy.setConstant(1);
  bn.zero_grad();
  bn.backward(dy);
  EXPECT_NEAR(bn.parameters()[0].grads()(0), 4, 1e-12);  // d loss / d beta = sum of dy over the channel
  // Settings: "weight false" is recorded and read back; a record without the key is a learned gamma.
  LayerSettings recorded = bn.settings();
  ASSERT_EQ(recorded.back(), (std::pair<std::string, std::string>{"weight", "false"}));
  KeyValues back(recorded, "test");
  EXPECT_FALSE(detail::batch_norm_options_from(back).weight());
  recorded.pop_back();
  KeyValues older(recorded, "test");
  EXPECT_TRUE(detail::batch_norm_options_from(older).learns_weight());
  EXPECT_EQ(BatchNorm2d<double>(BatchNormOptions(2)).settings().size(), 4u);  // unchanged for saved networks
}

TEST(GeluForward, ExactAndTanhFormsAgainstTheFormulaInDoubleAndFloat) {
  GELU<double> exact;
  GELU<double> tanh_form(true);
  GELU<float> exact_f;
  Tensor<double> x(1, 1, 1, 41);
  for (int i = 0; i < 41; ++i) x(0, 0, 0, i) = -8 + 0.4 * i;
  const Tensor<float> xf = x.cast<float>();
  const Tensor<double>& y = exact.forward(x);
  const Tensor<double>& yt = tanh_form.forward(x);
  const Tensor<float>& yf = exact_f.forward(xf);
  for (int i = 0; i < 41; ++i) {
    const double v = x(0, 0, 0, i);
    const double want = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    const double want_tanh = 0.5 * v * (1 + std::tanh(std::sqrt(2 / 3.141592653589793) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(y(0, 0, 0, i), want, 1e-14) << v;
    EXPECT_NEAR(yt(0, 0, 0, i), want_tanh, 1e-14) << v;
    EXPECT_NEAR(yf(0, 0, 0, i), want, 2e-6 * std::max(1.0, std::fabs(want))) << "float (Eigen's vectorised erf) at " << v;
  }
  EXPECT_NEAR(y(0, 0, 0, 20), 0, 1e-15);  // x = 0
  EXPECT_NEAR(y(0, 0, 0, 0), 0, 1e-14);   // x = -8: Phi is ~6e-16
  EXPECT_EQ(exact.settings(), (LayerSettings{{"approximate", "false"}}));
  EXPECT_EQ(tanh_form.describe(), "GELU(tanh)");
}

TEST(MultiplyForward, ScalesBothWaysAndRefusesNonFiniteFactors) {
  Multiply<double> third(1.0 / 3);
  Tensor<double> x(2, 3, 1, 1);
  x.setValues({{{{3}}, {{-6}}, {{9}}}, {{{0}}, {{1.5}}, {{-3}}}});
  const Tensor<double>& y = third.forward(x);
  EXPECT_NEAR(y(0, 1, 0, 0), -2, 1e-15);
  EXPECT_NEAR(y(1, 2, 0, 0), -1, 1e-15);
  Tensor<double> dy(2, 3, 1, 1);
  dy.setConstant(6);
  EXPECT_NEAR(third.backward(dy)(1, 0, 0, 0), 2, 1e-15);
  EXPECT_TRUE(third.parameters().empty());  // a constant, never trained
  EXPECT_THROW(Multiply<float>(std::nan("")), std::invalid_argument);
  EXPECT_THROW(Multiply<float>(1e300), std::invalid_argument);
}

TEST(DenseForward, ByHand) {
  Dense<double> dense(DenseOptions(3, 2));
  dense.weight() << 1, 2, 3, -1, 0, 1;
  dense.bias() << 0.5, -0.5;
  Tensor<double> x(1, 3, 1, 1);
  x.setValues({{{{1}}, {{2}}, {{3}}}});
  const Tensor<double>& y = dense.forward(x);
  EXPECT_DOUBLE_EQ(y(0, 0, 0, 0), 1 + 4 + 9 + 0.5);
  EXPECT_DOUBLE_EQ(y(0, 1, 0, 0), -1 + 0 + 3 - 0.5);
}

TEST(FlattenForward, KeepsNchwOrder) {
  Tensor<double> x(2, 2, 2, 3);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<double>(i);
  Flatten<double> flatten;
  const Tensor<double>& y = flatten.forward(x);
  ASSERT_EQ(shape_of(y), (Shape{2, 12, 1, 1}));
  EXPECT_DOUBLE_EQ(y(1, 7, 0, 0), x(1, 1, 0, 1));
}

TEST(SoftmaxForward, RowsSumToOne) {
  Softmax<float> softmax;
  Tensor<float> x(3, 5, 1, 1);
  x.setRandom();
  x = x * 50.0f;
  const Tensor<float>& y = softmax.forward(x);
  for (Index n = 0; n < 3; ++n) {
    float sum = 0;
    for (Index c = 0; c < 5; ++c) sum += y(n, c, 0, 0);
    EXPECT_NEAR(sum, 1.0f, 1e-6f);
  }
}

// A small AlexNet-shaped stack in float and double from the same values.
template <class T>
struct MiniStack {
  Conv2d<T> conv{Conv2dOptions(3, 8, 3).stride(2).padding(1).groups(1)};
  ReLU<T> relu;
  LocalResponseNorm<T> lrn{LocalResponseNormOptions(5).alpha(1e-2)};
  MaxPool2d<T> pool{MaxPool2dOptions(3).stride(2)};
  Conv2d<T> conv2{Conv2dOptions(8, 4, 3).padding(1).groups(2)};
  Flatten<T> flatten;
  Dense<T> dense{DenseOptions(4 * 3 * 3, 5)};

  void init(std::uint64_t seed) {
    Rng rng(seed);
    for (Layer<T>* layer : std::initializer_list<Layer<T>*>{&conv, &conv2, &dense})
      for (auto& p : layer->parameters())
        for (Index i = 0; i < p.size; ++i) p.value[i] = static_cast<T>(rng.uniform(-0.5, 0.5));
  }
  const Tensor<T>& forward(const Tensor<T>& x) {
    return dense.forward(flatten.forward(conv2.forward(pool.forward(lrn.forward(relu.forward(conv.forward(x)))))));
  }
};

TEST(Precision, FloatAndDoubleAgree) {
  MiniStack<double> d;
  MiniStack<float> f;
  d.init(3);
  f.init(3);
  Tensor<double> x(2, 3, 16, 16);
  Rng rng(4);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = rng.uniform(-1, 1);
  const Tensor<float> xf = tensor_cast<float>(x);
  const Tensor<double>& yd = d.forward(x);
  const Tensor<float>& yf = f.forward(xf);
  ASSERT_EQ(shape_of(yd), (Shape{2, 5, 1, 1}));
  for (Index i = 0; i < yd.size(); ++i) {
    EXPECT_NEAR(yf.data()[i], yd.data()[i], 1e-4 * std::max(1.0, std::abs(yd.data()[i])));
  }
}

// ---- initialisation (init.hpp) ---------------------------------------------------

TEST(Init, LayersStartFromTheirSeedAsPyTorchDoes) {
  Conv2d<float> a(Conv2dOptions(16, 8, 3).seed(3));
  Conv2d<float> b(Conv2dOptions(16, 8, 3).seed(3));
  Conv2d<float> c(Conv2dOptions(16, 8, 3).seed(4));
  EXPECT_TRUE(a.parameters()[0].values() == b.parameters()[0].values());
  EXPECT_TRUE(a.parameters()[1].values() == b.parameters()[1].values());
  EXPECT_FALSE(a.parameters()[0].values() == c.parameters()[0].values());
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, fan_in = 16 * 3 * 3.
  const double bound = 1.0 / std::sqrt(144.0);
  const auto w = a.parameters()[0].values();
  EXPECT_LE(w.cwiseAbs().maxCoeff(), bound);
  EXPECT_GT(w.cwiseAbs().maxCoeff(), 0.9 * bound);
  EXPECT_NEAR(w.mean(), 0.0, 0.1 * bound);
  EXPECT_NEAR(std::sqrt(w.squaredNorm() / static_cast<double>(w.size())), bound / std::sqrt(3.0), 0.1 * bound);
  EXPECT_LE(a.parameters()[1].values().cwiseAbs().maxCoeff(), bound);

  Dense<double> d(DenseOptions(100, 7).seed(9)), e(DenseOptions(100, 7).seed(9)), f(DenseOptions(100, 7).seed(10));
  EXPECT_TRUE(d.weight() == e.weight());
  EXPECT_FALSE(d.weight() == f.weight());
  EXPECT_LE(d.weight().cwiseAbs().maxCoeff(), 0.1);
  EXPECT_GT(d.bias().cwiseAbs().maxCoeff(), 0.0);

  // Without a seed: two layers differ, and manual_seed makes a program's network repeatable.
  manual_seed(42);
  Dense<float> g(DenseOptions(10, 10)), h(DenseOptions(10, 10));
  EXPECT_FALSE(g.weight() == h.weight());
  manual_seed(42);
  Dense<float> g2(DenseOptions(10, 10));
  EXPECT_TRUE(g.weight() == g2.weight());
}

TEST(Init, HelpersDrawTheirDistributionsOnAnyParameter) {
  Conv2d<double> conv(Conv2dOptions(32, 64, 5).seed(1));
  const Parameter<double> w = conv.parameters()[0];  // [64, 32, 5, 5]: fan_in 800, fan_out 1600
  EXPECT_EQ(init::fan_in(w.shape), 800);
  EXPECT_EQ(init::fan_out(w.shape), 1600);
  auto rms = [&] { return std::sqrt(w.values().squaredNorm() / static_cast<double>(w.size)); };
  Rng rng(5);
  init::he_normal(w, rng);
  EXPECT_NEAR(rms(), std::sqrt(2.0 / 800), 0.02 * std::sqrt(2.0 / 800));
  init::xavier_uniform(w, rng);
  const double bound = std::sqrt(6.0 / 2400);
  EXPECT_LE(w.values().cwiseAbs().maxCoeff(), bound);
  EXPECT_NEAR(rms(), bound / std::sqrt(3.0), 0.02 * bound);
  init::normal(w, 0.01, rng);
  EXPECT_NEAR(rms(), 0.01, 0.0005);
  init::constant(w, 0.25);
  EXPECT_EQ(w.values().minCoeff(), 0.25);
  EXPECT_EQ(w.values().maxCoeff(), 0.25);
  EXPECT_THROW(init::normal(w, -1.0, rng), std::invalid_argument);
  EXPECT_THROW(init::uniform(w, 1.0, 0.0, rng), std::invalid_argument);
}

// ---- errors ----------------------------------------------------------------

// Expects a ShapeError whose message names the layer and both shapes.
template <class F>
void expect_shape_error(F&& call, const std::string& layer, const std::string& expected, const std::string& actual) {
  try {
    call();
    FAIL() << "no ShapeError for " << layer;
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(layer), std::string::npos) << what;
    EXPECT_NE(what.find(expected), std::string::npos) << what;
    EXPECT_NE(what.find(actual), std::string::npos) << what;
  }
}

TEST(ShapeErrors, EveryLayerNamesItselfAndBothShapes) {
  Tensor<float> wrong_channels(2, 4, 8, 8);
  Conv2d<float> conv(Conv2dOptions(3, 8, 3));
  conv.set_name("conv1");
  expect_shape_error([&] { conv.forward(wrong_channels); }, "conv1", "[N >= 1, 3, H >= 3, W >= 3]",
                     "[2, 4, 8, 8]");

  Tensor<float> too_small(1, 3, 2, 2);
  expect_shape_error([&] { conv.forward(too_small); }, "conv1", "H >= 3", "[1, 3, 2, 2]");

  MaxPool2d<float> pool(MaxPool2dOptions(3).stride(2));
  expect_shape_error([&] { pool.forward(too_small); }, "MaxPool2d", "H >= 3", "[1, 3, 2, 2]");

  Dense<float> dense(DenseOptions(10, 2));
  Tensor<float> unflattened(2, 10, 2, 1);
  expect_shape_error([&] { dense.forward(unflattened); }, "Dense", "[N >= 1, 10, 1, 1]", "[2, 10, 2, 1]");

  Tensor<float> empty;
  ReLU<float> relu;
  expect_shape_error([&] { relu.forward(empty); }, "ReLU", "[N >= 1", "[0, 0, 0, 0]");
  LocalResponseNorm<float> lrn;
  expect_shape_error([&] { lrn.forward(empty); }, "LocalResponseNorm", "[N >= 1", "[0, 0, 0, 0]");
  Dropout<float> dropout;
  expect_shape_error([&] { dropout.forward(empty); }, "Dropout", "[N >= 1", "[0, 0, 0, 0]");
  Flatten<float> flatten;
  expect_shape_error([&] { flatten.forward(empty); }, "Flatten", "[N >= 1", "[0, 0, 0, 0]");
  Softmax<float> softmax;
  expect_shape_error([&] { softmax.forward(empty); }, "Softmax", "[N >= 1", "[0, 0, 0, 0]");
}

TEST(ShapeErrors, BackwardChecksTheGradientShape) {
  Conv2d<float> conv(Conv2dOptions(3, 8, 3));
  Tensor<float> x(2, 3, 8, 8);
  x.setZero();
  conv.forward(x);
  Tensor<float> wrong(2, 8, 5, 5);
  expect_shape_error([&] { conv.backward(wrong); }, "Conv2d backward", "[2, 8, 6, 6]", "[2, 8, 5, 5]");

  ReLU<float> relu;
  EXPECT_THROW(relu.backward(wrong), std::logic_error);  // no forward yet
}

TEST(ShapeErrors, LossChecksLogitsAndLabels) {
  SoftmaxCrossEntropy<float> loss;
  Tensor<float> logits(2, 10, 1, 1);
  logits.setZero();
  expect_shape_error([&] { loss.forward(logits, {1, 2, 3}); }, "labels", "[2]", "[3]");
  Tensor<float> spatial(2, 10, 2, 2);
  expect_shape_error([&] { loss.forward(spatial, {1, 2}); }, "logits", "[N >= 1, classes >= 1, 1, 1]",
                     "[2, 10, 2, 2]");
  try {
    loss.forward(logits, {1, 10});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("label 10 of sample 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SoftmaxCrossEntropy<float>().backward(), std::logic_error);
}

template <class F>
void expect_option_error(F&& make, const std::string& option, const std::string& value) {
  try {
    make();
    FAIL() << "no error for " << option;
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(option), std::string::npos) << what;
    EXPECT_NE(what.find("got " + value), std::string::npos) << what;
  }
}

TEST(OptionErrors, InvalidOptionsNameTheOptionAndValue) {
  expect_option_error([] { Conv2d<float>(Conv2dOptions(3, 8, 3).stride(0)); }, "stride", "0");
  expect_option_error([] { Conv2d<float>(Conv2dOptions(3, 8, 0)); }, "kernel_size", "0");
  expect_option_error([] { Conv2d<float>(Conv2dOptions(3, 8, 3).padding(-1)); }, "padding", "-1");
  expect_option_error([] { Conv2d<float>(Conv2dOptions(3, 8, 3).groups(2)); }, "divisor of in_channels (3)", "2");
  expect_option_error([] { Conv2d<float>(Conv2dOptions(4, 6, 3).groups(4)); }, "divisor of out_channels (6)", "4");
  expect_option_error([] { Conv2d<float>(Conv2dOptions(4, 4, 3).groups(0)); }, "groups", "0");
  expect_option_error([] { MaxPool2d<float>(MaxPool2dOptions(3).stride(0)); }, "stride", "0");
  expect_option_error([] { MaxPool2d<float>(MaxPool2dOptions(0)); }, "kernel_size", "0");
  expect_option_error([] { Dropout<float>(DropoutOptions(1.0)); }, "p must be in [0, 1)", "1");
  expect_option_error([] { Dropout<float>(DropoutOptions(-0.1)); }, "p must be in [0, 1)", "-0.1");
  expect_option_error([] { Dense<float>(DenseOptions(0, 3)); }, "in_features", "0");
  expect_option_error([] { LocalResponseNorm<float>(LocalResponseNormOptions(4)); }, "size", "4");
  expect_option_error([] { LocalResponseNorm<float>(LocalResponseNormOptions(5).k(0)); }, "k", "0");
  expect_option_error([] { set_num_threads(0); }, "thread count", "0");
}

// Absurd sizes are refused at construction, before a product overflows or an allocation is tried.
TEST(LayerOptions, SizesThatCannotBeHeldAreRefusedUpFront) {
  expect_option_error([] { Conv2d<float>(Conv2dOptions(100000, 100000, 11)); },
                      "out_channels x in_channels / groups x kernel_size^2", "1.21e+12");
  expect_option_error([] { Dense<float>(DenseOptions(Index{1} << 20, Index{1} << 20)); }, "out_features x in_features",
                      "1.09951e+12");
  MaxPool2d<float> pool(MaxPool2dOptions(2));
  EXPECT_THROW(pool.output_shape(Shape{1, 1, Index{1} << 16, Index{1} << 16}), ShapeError);  // a 2^32 plane
  EXPECT_EQ(pool.output_shape(Shape{1, 1, 4, 4}), (Shape{1, 1, 2, 2}));
}

}  // namespace

// ---- bf16 products (precision.hpp) -------------------------------------------------------------

namespace {

using namespace convnet;

std::vector<float> rounded_copy(const float* x, Index n) {
  std::vector<float> out(x, x + n);
  for (auto& v : out) v = round_to_bf16(v);
  return out;
}

// At bf16 a layer computes exactly what fp32 computes on its operands rounded to bf16, to fp32
// accumulation order: forward (weights and input rounded), weight gradient (input and output
// gradient rounded) and input gradient (weights and output gradient rounded). `make` builds the
// layer under test with a given seed; the comparison runs on whatever path this host takes.
template <class Make>
void expect_bf16_is_fp32_on_rounded_operands(const Make& make, const Shape& in_shape, const char* what) {
  std::cout << "[ path ] " << what << " at bf16 on " << to_string(matrix_path()) << "\n";
  auto bf16 = make(), fp32 = make();
  bf16->set_precision(Precision::Bf16);
  EXPECT_EQ(bf16->precision(), Precision::Bf16);
  Tensor<float> x(in_shape.n, in_shape.c, in_shape.h, in_shape.w);
  Rng rng(23);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.uniform(-1, 1));
  const Shape out_shape = bf16->output_shape(in_shape);
  Tensor<float> dy(out_shape.n, out_shape.c, out_shape.h, out_shape.w);
  for (Index i = 0; i < dy.size(); ++i) dy.data()[i] = static_cast<float>(rng.uniform(-1, 1));

  // Each reference pass: fp32 with the operands of that product rounded.
  const auto weights = fp32->parameters()[0];
  const std::vector<float> exact_weights(weights.value, weights.value + weights.size);
  const auto set_weights = [&](bool rounded) {
    const std::vector<float> w = rounded ? rounded_copy(exact_weights.data(), weights.size) : exact_weights;
    std::copy(w.begin(), w.end(), weights.value);
  };
  Tensor<float> x_rounded = x, dy_rounded = dy;
  for (Index i = 0; i < x.size(); ++i) x_rounded.data()[i] = round_to_bf16(x.data()[i]);
  for (Index i = 0; i < dy.size(); ++i) dy_rounded.data()[i] = round_to_bf16(dy.data()[i]);

  const Tensor<float> y = bf16->forward(x);
  bf16->zero_grad();
  const Tensor<float> dx = bf16->backward(dy);
  const auto bf16_params = bf16->parameters();
  const std::vector<float> dw(bf16_params[0].grad, bf16_params[0].grad + bf16_params[0].size);

  set_weights(true);
  const Tensor<float> y_ref = fp32->forward(x_rounded);
  fp32->zero_grad();
  const Tensor<float> dx_ref = fp32->backward(dy_rounded);  // rounded weights and output gradient
  set_weights(false);
  fp32->forward(x_rounded);
  fp32->zero_grad();
  fp32->backward(dy_rounded);  // the weight gradient: rounded input and output gradient
  const auto ref_params = fp32->parameters();
  const std::vector<float> dw_ref(ref_params[0].grad, ref_params[0].grad + ref_params[0].size);

  const auto expect_close = [&](const float* got, const float* want, Index n, const char* pass) {
    double worst = 0, scale = 0;
    for (Index i = 0; i < n; ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(got[i] - want[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(want[i])));
    }
    EXPECT_LE(worst, 2e-5 * scale) << what << " " << pass << ": differs from fp32 on rounded operands";
  };
  expect_close(y.data(), y_ref.data(), y.size(), "forward");
  expect_close(dx.data(), dx_ref.data(), dx.size(), "input gradient");
  expect_close(dw.data(), dw_ref.data(), static_cast<Index>(dw.size()), "weight gradient");
  // And it did round: plain fp32 on the exact operands differs by far more than fp32's own error.
  fp32->forward(x);
  double moved = 0;
  for (Index i = 0; i < y.size(); ++i) moved = std::max(moved, static_cast<double>(std::fabs(y.data()[i] - fp32->output().data()[i])));
  EXPECT_GT(moved, 1e-4) << what << ": the bf16 forward equals fp32's";
}

TEST(Bf16Layers, ConvolutionsComputeFp32ArithmeticOnRoundedOperands) {
  // The direct path at each stride and padding the AlexNets use, with groups, a tail of every
  // tile dimension, and a batch split across threads or not.
  struct ConvCase {
    Index cin, cout, k, stride, pad, groups, n, side;
  };
  // The last: 1600-long columns on a 21 x 21 plane, packed in two windows of columns that split
  // an output row.
  for (const ConvCase& c : {ConvCase{3, 20, 11, 4, 0, 1, 2, 35}, ConvCase{6, 34, 5, 1, 2, 2, 3, 9},
                            ConvCase{16, 48, 3, 1, 1, 1, 1, 7}, ConvCase{40, 33, 3, 1, 1, 1, 4, 6},
                            ConvCase{64, 20, 5, 1, 2, 1, 1, 21}}) {
    const auto make = [&] {
      return std::make_unique<Conv2d<float>>(Conv2dOptions(c.cin, c.cout, c.k).stride(c.stride).padding(c.pad)
                                                 .groups(c.groups).seed(7).algorithm(ConvAlgorithm::Direct));
    };
    expect_bf16_is_fp32_on_rounded_operands(make, Shape{c.n, c.cin, c.side, c.side},
                                            ("Conv2d " + std::to_string(c.k) + "x" + std::to_string(c.k)).c_str());
  }
}

// The tile path (kernels/conv_tiles.hpp) on an AMX host, the direct path elsewhere: every pass is
// fp32 arithmetic on rounded operands either way. Channels that fill part of a 32-step (24, 40, 6
// a group) and part of an output block (33, 17), groups, paddings 0 to kernel - 1, 1 x 1 to 5 x 5,
// odd and even plane widths (the odd-offset pairs of the weight gradient), and a batch of 40 that
// the weight gradient takes in chunks on both threads.
TEST(Bf16Layers, TheTilePathComputesFp32ArithmeticOnRoundedOperands) {
  struct ConvCase {
    Index cin, cout, k, pad, groups, n, side;
  };
  for (const ConvCase& c : {ConvCase{24, 64, 3, 1, 1, 3, 9}, ConvCase{40, 33, 3, 1, 1, 5, 6}, ConvCase{12, 34, 5, 2, 2, 3, 9},
                            ConvCase{32, 17, 3, 0, 1, 2, 8}, ConvCase{48, 32, 1, 0, 1, 2, 5}, ConvCase{16, 16, 3, 2, 1, 2, 4},
                            ConvCase{64, 64, 3, 1, 1, 40, 7}}) {
    const auto make = [&] {
      return std::make_unique<Conv2d<float>>(
          Conv2dOptions(c.cin, c.cout, c.k).padding(c.pad).groups(c.groups).seed(11).algorithm(ConvAlgorithm::Tiles));
    };
    Conv2d<float> probe(Conv2dOptions(c.cin, c.cout, c.k).padding(c.pad).groups(c.groups).algorithm(ConvAlgorithm::Tiles));
    probe.set_precision(Precision::Bf16);
    const Shape in{c.n, c.cin, c.side, c.side};
    const std::string what = "Conv2d " + std::to_string(c.k) + "x" + std::to_string(c.k) + " padding " + std::to_string(c.pad) +
                             (probe.uses_tiles(in) ? " on the tile path" : " (no AMX here: the direct path)");
    expect_bf16_is_fp32_on_rounded_operands(make, in, what.c_str());
  }
  EXPECT_THROW(Conv2d<float>(Conv2dOptions(8, 8, 3).stride(2).algorithm(ConvAlgorithm::Tiles)), ArgumentError);
  EXPECT_THROW(Conv2d<float>(Conv2dOptions(8, 8, 3).padding(3).algorithm(ConvAlgorithm::Tiles)), ArgumentError);
}

// Winograd at bf16 rounds in the transformed domain, so it is not fp32 on rounded operands; its
// error against the layer in double must stay near the direct path's at bf16. F(4x4, 3x3) and
// F(4x4, 5x5) with bf16 products measured 5-7% of the largest output (their transforms, with points
// +-2 and +-1/2, spread each rounding), so at bf16 a 3 x 3 layer takes F(2x2, 3x3) and a 5 x 5 one
// keeps fp32 products when asked for Winograd. Measured (worst of the three passes, relative to
// the largest value): direct 0.2%; 3 x 3 Winograd 0.4%; 5 x 5 Winograd (fp32 products) 0.0%.
// Bound: 1% and at most 4 times direct's.
TEST(Bf16Layers, WinogradAtBf16StaysNearTheDirectPathsError) {
  for (const Index k : {Index{3}, Index{5}}) {
    std::cout << "[ path ] Conv2d " << k << "x" << k << " Winograd at bf16 on " << to_string(matrix_path()) << "\n";
    const Index cin = 24, cout_ = 40, n = 3, side = 12;
    Conv2d<double> exact(Conv2dOptions(cin, cout_, k).padding(k / 2).seed(5).algorithm(ConvAlgorithm::Direct));
    Tensor<double> xd(n, cin, side, side), dyd(n, cout_, side, side);
    Rng rng(31);
    for (Index i = 0; i < xd.size(); ++i) xd.data()[i] = rng.uniform(-1, 1);
    for (Index i = 0; i < dyd.size(); ++i) dyd.data()[i] = rng.uniform(-1, 1);
    const Tensor<double> y = exact.forward(xd);
    exact.zero_grad();
    const Tensor<double> dx = exact.backward(dyd);
    const auto dw = exact.parameters()[0];
    double worst[2] = {0, 0};
    for (int w = 0; w < 2; ++w) {
      Conv2d<float> layer(Conv2dOptions(cin, cout_, k).padding(k / 2).seed(5)
                              .algorithm(w == 0 ? ConvAlgorithm::Direct : ConvAlgorithm::Winograd));
      layer.set_precision(Precision::Bf16);
      Tensor<float> x = xd.cast<float>(), dy = dyd.cast<float>();
      const Tensor<float> yf = layer.forward(x);
      layer.zero_grad();
      const Tensor<float> dxf = layer.backward(dy);
      const auto dwf = layer.parameters()[0];
      const auto relative = [](const auto* got, const double* want, Index size) {
        double e = 0, scale = 0;
        for (Index i = 0; i < size; ++i) {
          e = std::max(e, std::fabs(static_cast<double>(got[i]) - want[i]));
          scale = std::max(scale, std::fabs(want[i]));
        }
        return e / scale;
      };
      worst[w] = std::max({relative(yf.data(), y.data(), y.size()), relative(dxf.data(), dx.data(), dx.size()),
                           relative(dwf.grad, dw.grad, dw.size)});
    }
    std::cout << "[ bf16 ] " << k << "x" << k << " worst relative error: direct " << worst[0] << ", Winograd " << worst[1] << "\n";
    EXPECT_GT(worst[0], 1e-4) << "the direct path did not round";
    EXPECT_LT(worst[1], 0.01);
    EXPECT_LT(worst[1], 4 * worst[0]);
  }
}

TEST(Bf16Layers, DenseComputesFp32ArithmeticOnRoundedOperands) {
  const auto make = [] { return std::make_unique<Dense<float>>(DenseOptions(70, 45).seed(9)); };
  expect_bf16_is_fp32_on_rounded_operands(make, Shape{Dense<float>::kMinBf16Batch + 3, 70, 1, 1}, "Dense");
}

// A Dense layer in T asked for bf16, fed `rows` rows, gives exactly what the same layer in T gives.
template <class T>
void expect_bf16_changes_nothing(Index rows) {
  Dense<T> asked(DenseOptions(30, 20).seed(3)), reference(DenseOptions(30, 20).seed(3));
  asked.set_precision(Precision::Bf16);
  Tensor<T> x(rows, 30, 1, 1);
  x.setRandom();
  const Tensor<T> y = asked.forward(x);
  const Tensor<T> y_ref = reference.forward(x);
  for (Index i = 0; i < y.size(); ++i) EXPECT_EQ(y.data()[i], y_ref.data()[i]);
}

TEST(Bf16Layers, ThinDenseBatchesAndDoubleNetworksStayExact) {
  // Below kMinBf16Batch rows Dense multiplies in fp32, and a network in double ignores bf16: its
  // gradient checks are unaffected.
  expect_bf16_changes_nothing<float>(1);
  expect_bf16_changes_nothing<double>(20);
}

TEST(Bf16Layers, ANetworkSetsEveryLayerNowAndLater) {
  Sequential<float> net;
  net.add<Dense<float>>("fc1", DenseOptions(4, 3));
  net.set_precision(Precision::Bf16);
  net.add<Dense<float>>("fc2", DenseOptions(3, 2));
  EXPECT_EQ(net.precision(), Precision::Bf16);
  EXPECT_EQ(net[0].precision(), Precision::Bf16);
  EXPECT_EQ(net[1].precision(), Precision::Bf16);
  net.set_precision(Precision::Auto);  // resolved on this host
  EXPECT_EQ(net[1].precision(), matrix_path() == MatrixPath::Amx ? Precision::Bf16 : Precision::Fp32);
}

TEST(Bf16Layers, PrecisionNamesParseAndBadOnesAreRefused) {
  EXPECT_EQ(parse_precision("auto"), Precision::Auto);
  EXPECT_EQ(parse_precision("fp32"), Precision::Fp32);
  EXPECT_EQ(parse_precision("bf16"), Precision::Bf16);
  for (Precision p : {Precision::Auto, Precision::Fp32, Precision::Bf16}) EXPECT_EQ(parse_precision(to_string(p)), p);
  try {
    parse_precision("fp16", "--precision");
    FAIL() << "fp16 was accepted";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("--precision must be auto, fp32 or bf16, got 'fp16'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(resolve(Precision::Auto, MatrixPath::Amx), Precision::Bf16);
  EXPECT_EQ(resolve(Precision::Auto, MatrixPath::Avx512Bf16), Precision::Fp32);
  EXPECT_EQ(resolve(Precision::Auto, MatrixPath::Fp32), Precision::Fp32);
  EXPECT_EQ(resolve(Precision::Bf16, MatrixPath::Fp32), Precision::Bf16);
}

}  // namespace
