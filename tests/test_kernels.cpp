// kernels/: the bf16 conversion and the bf16 matrix product on every path this host has (the
// others are reported as skipped, by name), against exact and bounded references in double; what
// the host has (cpu_features.hpp); Winograd against the direct convolution; the fp32 GEMM against
// Eigen's product.
#include <gtest/gtest.h>

#include <convnet/cpu_features.hpp>
#include <convnet/kernels/bf16.hpp>
#include <convnet/kernels/gemm.hpp>
#include <convnet/kernels/gemm_bf16.hpp>
#include <convnet/kernels/winograd.hpp>
#include <convnet/layers/conv2d.hpp>
#include <convnet/models/alexnet.hpp>  // Winograd's choice on the paper's network
#include <convnet/threading.hpp>
#include <convnet/random.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "on_threads.hpp"

namespace {

using namespace convnet;

float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

TEST(Bf16, RoundsToNearestTiesToEven) {
  EXPECT_EQ(to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(to_bf16(float_of(0x3F808000u)), 0x3F80);  // 1 + 2^-8, halfway: down to the even 0x3F80
  EXPECT_EQ(to_bf16(float_of(0x3F818000u)), 0x3F82);  // halfway above an odd one: up to the even 0x3F82
  EXPECT_EQ(to_bf16(float_of(0x3F808001u)), 0x3F81);  // just past halfway: up
  EXPECT_EQ(to_bf16(float_of(0x3F807FFFu)), 0x3F80);  // just below: down
  EXPECT_EQ(to_bf16(-2.5f), 0xC020);
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds past the largest bf16
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(std::nanf("")))));
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(float_of(0x7F800001u)))));  // a NaN whose payload rounds away stays NaN
  const float subnormal = float_of(0x00012345u);
  EXPECT_EQ(to_bf16(subnormal), 0x0001);  // kept, not flushed
  for (float v : {0.0f, -0.0f, 1.0f, 0.15625f, -3.0f, 65536.0f}) EXPECT_EQ(from_bf16(to_bf16(v)), v);
}

// The bound every test below derives from: one rounding moves a value by at most 2^-8 of itself.
TEST(Bf16, OneRoundingIsWithinTwoToTheMinusEightRelative) {
  Rng rng(3);
  for (int i = 0; i < 100000; ++i) {
    const float v = static_cast<float>(rng.uniform(-1000, 1000));
    EXPECT_LE(std::fabs(round_to_bf16(v) - v), std::ldexp(std::fabs(v), -8)) << v;
  }
}

TEST(Bf16, TheVectorConversionEqualsTheScalarOne) {
#ifdef CONVNET_X86
  if (!cpu_features().avx512bw || !cpu_features().avx512vl) GTEST_SKIP() << "host lacks avx512bw/vl: vector conversion not run";
  Rng rng(5);
  std::vector<float> in(1000);
  for (auto& v : in) v = float_of(static_cast<std::uint32_t>(rng()));  // every bit pattern: NaNs, subnormals
  in[3] = std::numeric_limits<float>::infinity();
  in[4] = float_of(0x3F808000u);
  std::vector<Bf16> out(in.size() + 1, 0xFFFF);
  detail::to_bf16_avx512(in.data(), out.data(), static_cast<Index>(in.size()) - 3);  // a masked tail
  for (std::size_t i = 0; i + 3 < in.size(); ++i) {
    if (std::isnan(in[i])) {
      EXPECT_TRUE(std::isnan(from_bf16(out[i]))) << i;
    } else {
      EXPECT_EQ(out[i], to_bf16(in[i])) << i;
    }
  }
  EXPECT_EQ(out[in.size() - 3], 0xFFFF);  // nothing written past the count
#else
  GTEST_SKIP() << "not an x86 host";
#endif
}

TEST(CpuFeatures, ForcingAPathIsBoundedByTheHost) {
  EXPECT_EQ(choose_matrix_path(nullptr, MatrixPath::Amx, "x"), MatrixPath::Amx);
  EXPECT_EQ(choose_matrix_path("fp32", MatrixPath::Amx, "x"), MatrixPath::Fp32);
  EXPECT_EQ(choose_matrix_path("avx512bf16", MatrixPath::Avx512Bf16, "x"), MatrixPath::Avx512Bf16);
  try {
    choose_matrix_path("amx", MatrixPath::Fp32, "avx2 fma");
    FAIL();
  } catch (const ArgumentError& e) {
    EXPECT_STREQ(e.what(), "CONVNET_ISA=amx: this host has avx2 fma (at most fp32)");
  }
  EXPECT_THROW(choose_matrix_path("sse", MatrixPath::Amx, "x"), ArgumentError);
  const CpuFeatures& f = cpu_features();
  std::cout << "[ host ] " << f.describe() << "; bf16 products on " << to_string(best_matrix_path()) << "\n";
  if (f.amx_bf16) {
    EXPECT_TRUE(f.avx512f) << "AMX without AVX-512: the packing kernels would be missing";
  }
}

// --- the bf16 product, on each path -------------------------------------------------------------

struct Case {
  Index m, n, k;
  Transpose ta, tb;
};

// Tails of M, N and K, K not a multiple of 32, thin M (batch 1), both transposes.
std::vector<Case> shapes() {
  std::vector<Case> cases;
  // The last: K long enough that the AMX path takes B in two windows of columns.
  const Index sizes[][3] = {{1, 1, 1},    {1, 300, 70}, {17, 33, 31}, {32, 32, 32},
                            {64, 48, 96}, {5, 100, 70}, {40, 16, 33}, {32, 96, 8200}};
  for (const auto& s : sizes) {
    for (Transpose ta : {Transpose::No, Transpose::Yes}) {
      for (Transpose tb : {Transpose::No, Transpose::Yes}) cases.push_back({s[0], s[1], s[2], ta, tb});
    }
  }
  return cases;
}

// op(A)(i, p) and op(B)(p, j) of row-major storage.
double at(const std::vector<float>& x, Transpose t, Index rows_stored_ld, Index r, Index c) {
  return t == Transpose::No ? x[static_cast<std::size_t>(r * rows_stored_ld + c)] : x[static_cast<std::size_t>(c * rows_stored_ld + r)];
}

class GemmBf16 : public ::testing::TestWithParam<MatrixPath> {
 protected:
  void SetUp() override {
    if (static_cast<int>(GetParam()) > static_cast<int>(best_matrix_path())) {
      GTEST_SKIP() << "this host has no " << to_string(GetParam()) << " path (" << cpu_features().describe() << ")";
    }
    std::cout << "[ path ] bf16 product on " << to_string(GetParam()) << "\n";
  }
};

// Inputs that bf16 holds exactly (multiples of 1/8 in [-2, 2]) and sums fp32 holds exactly: the
// product equals the double reference bit for bit, for every shape, transpose, alpha and beta.
TEST_P(GemmBf16, EqualsAnExactReferenceOnBf16Inputs) {
  Rng rng(11);
  for (const Case& s : shapes()) {
    const Index lda = (s.ta == Transpose::No ? s.k : s.m) + 3, ldb = (s.tb == Transpose::No ? s.n : s.k) + 2;
    const Index ldc = s.n + 1;
    std::vector<float> a(static_cast<std::size_t>((s.ta == Transpose::No ? s.m : s.k) * lda));
    std::vector<float> b(static_cast<std::size_t>((s.tb == Transpose::No ? s.k : s.n) * ldb));
    for (auto& v : a) v = static_cast<float>(static_cast<int>(rng.below(33)) - 16) / 8.0f;
    for (auto& v : b) v = static_cast<float>(static_cast<int>(rng.below(33)) - 16) / 8.0f;
    // alpha 1 with beta 0 or 1 accumulates in C itself on AMX; other pairs through a scratch block.
    for (const auto& [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{1.0f, 1.0f}, std::pair{0.5f, 2.0f}}) {
      std::vector<float> c(static_cast<std::size_t>(s.m * ldc), beta == 0 ? std::nanf("") : 0.25f);  // beta 0: C unread
      gemm_bf16(s.ta, s.tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc, GetParam());
      for (Index i = 0; i < s.m; ++i) {
        for (Index j = 0; j < s.n; ++j) {
          double sum = 0;
          for (Index p = 0; p < s.k; ++p) sum += at(a, s.ta, lda, i, p) * at(b, s.tb, ldb, p, j);
          const double expected = alpha * sum + (beta == 0 ? 0.0 : beta * 0.25);
          ASSERT_EQ(c[static_cast<std::size_t>(i * ldc + j)], static_cast<float>(expected))
              << s.m << "x" << s.n << "x" << s.k << " ta " << (s.ta == Transpose::Yes) << " tb " << (s.tb == Transpose::Yes)
              << " at (" << i << ", " << j << ")";
        }
        const float past = c[static_cast<std::size_t>(i * ldc + s.n)];  // ldc is n + 1: one column past
        if (beta == 0) {
          EXPECT_TRUE(std::isnan(past)) << "wrote past column n";
        } else {
          EXPECT_EQ(past, 0.25f) << "wrote past column n";
        }
      }
    }
  }
}

// Random inputs: each operand's rounding moves a product a_ik * b_kj by at most (2u + u^2) of its
// size (u = 2^-8), and fp32 accumulation of K terms adds at most about (K + 2) 2^-24 of sum |a||b|.
// So |C - exact| <= (2u + u^2 + (K + 2) 2^-24) sum_k |a_ik| |b_kj| element by element. The error
// must also be well above fp32's, or the operands were not rounded at all.
TEST_P(GemmBf16, StaysWithinTheBoundBf16RoundingImplies) {
  Rng rng(13);
  const double u = std::ldexp(1.0, -8);
  for (const Case& s : shapes()) {
    if (s.ta == Transpose::Yes && s.tb == Transpose::Yes) continue;  // covered by the exact test
    const Index lda = s.ta == Transpose::No ? s.k : s.m, ldb = s.tb == Transpose::No ? s.n : s.k, ldc = s.n;
    std::vector<float> a(static_cast<std::size_t>((s.ta == Transpose::No ? s.m : s.k) * lda));
    std::vector<float> b(static_cast<std::size_t>((s.tb == Transpose::No ? s.k : s.n) * ldb));
    for (auto& v : a) v = static_cast<float>(rng.uniform(-1, 1));
    for (auto& v : b) v = static_cast<float>(rng.uniform(-3, 3));
    std::vector<float> c(static_cast<std::size_t>(s.m * ldc));
    gemm_bf16(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), ldc, GetParam());
    double worst_ratio = 0;
    for (Index i = 0; i < s.m; ++i) {
      for (Index j = 0; j < s.n; ++j) {
        double exact = 0, magnitude = 0;
        for (Index p = 0; p < s.k; ++p) {
          const double x = at(a, s.ta, lda, i, p) * at(b, s.tb, ldb, p, j);
          exact += x;
          magnitude += std::fabs(x);
        }
        const double bound = (2 * u + u * u + static_cast<double>(s.k + 2) * std::ldexp(1.0, -24)) * magnitude;
        const double error = std::fabs(c[static_cast<std::size_t>(i * ldc + j)] - exact);
        ASSERT_LE(error, bound) << s.m << "x" << s.n << "x" << s.k << " at (" << i << ", " << j << ")";
        if (magnitude > 0) worst_ratio = std::max(worst_ratio, error / magnitude);
      }
    }
    if (s.m * s.n * s.k >= 1000) {
      EXPECT_GT(worst_ratio, std::ldexp(1.0, -14)) << "no sign of bf16 rounding";
    }
  }
}

// The paths agree with each other to fp32 accumulation order: the reference is the same arithmetic.
TEST_P(GemmBf16, AgreesWithTheReferencePath) {
  Rng rng(17);
  const Index m = 70, n = 45, k = 200;
  std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
  for (auto& v : a) v = static_cast<float>(rng.uniform(-1, 1));
  for (auto& v : b) v = static_cast<float>(rng.uniform(-1, 1));
  std::vector<float> here(static_cast<std::size_t>(m * n)), reference(here.size());
  gemm_bf16(Transpose::No, Transpose::No, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, here.data(), n, GetParam());
  gemm_bf16(Transpose::No, Transpose::No, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, reference.data(), n,
            MatrixPath::Fp32);
  for (std::size_t i = 0; i < here.size(); ++i) EXPECT_NEAR(here[i], reference[i], 1e-4f * (1 + std::fabs(reference[i]))) << i;
}

// A matrix packed once multiplies several others exactly as gemm_bf16 does each product.
TEST_P(GemmBf16, APackedMatrixMultipliesManyAsOneProductEach) {
  Rng rng(19);
  const Index m = 50, k = 77, n = 40;
  std::vector<float> a(static_cast<std::size_t>(k * m)), b1(static_cast<std::size_t>(k * n)), b2(b1.size());
  for (auto* v : {&a, &b1, &b2}) {
    for (auto& x : *v) x = static_cast<float>(rng.uniform(-1, 1));
  }
  PackedBf16Matrix packed;
  packed.pack(Transpose::Yes, m, k, a.data(), m, GetParam());  // op(A) = A^T: A stored k x m
  EXPECT_EQ(packed.rows(), m);
  EXPECT_EQ(packed.depth(), k);
  for (const auto* b : {&b1, &b2}) {
    std::vector<float> once(static_cast<std::size_t>(m * n)), each(once.size());
    packed.multiply(Transpose::No, n, 1.0f, b->data(), n, 0.0f, once.data(), n);
    gemm_bf16(Transpose::Yes, Transpose::No, m, n, k, 1.0f, a.data(), m, b->data(), n, 0.0f, each.data(), n, GetParam());
    EXPECT_EQ(once, each);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryPath, GemmBf16, ::testing::Values(MatrixPath::Fp32, MatrixPath::Avx512Bf16, MatrixPath::Amx),
                         [](const ::testing::TestParamInfo<MatrixPath>& info) { return std::string(to_string(info.param)); });

}  // namespace

namespace {

using namespace convnet;
using convnet::testing::forward_on_threads;

// ---- kernels/: Winograd against the direct path, then gemm against Eigen's product ---------

// One-dimensional F(M, R) from the generated matrices against the correlation it stands for.
template <int M, int R>
void expect_minimal_filter_correlates() {
  constexpr auto mat = winograd::make_matrices<M, R>();
  constexpr int alpha = M + R - 1;
  Rng rng(M * 10 + R);
  double d[alpha], g[R];
  for (double& v : d) v = rng.uniform(-1, 1);
  for (double& v : g) v = rng.uniform(-1, 1);
  double product[alpha];
  for (int j = 0; j < alpha; ++j) {
    double gj = 0, dj = 0;
    for (int k = 0; k < R; ++k) gj += mat.g[j][k] * g[k];
    for (int k = 0; k < alpha; ++k) dj += mat.bt[j][k] * d[k];
    product[j] = gj * dj;
  }
  for (int i = 0; i < M; ++i) {
    double y = 0, want = 0;
    for (int j = 0; j < alpha; ++j) y += mat.at[i][j] * product[j];
    for (int k = 0; k < R; ++k) want += d[i + k] * g[k];
    EXPECT_NEAR(y, want, 1e-12) << "F(" << M << ", " << R << ") output " << i;
  }
}

TEST(Winograd, GeneratedMatricesComputeTheCorrelation) {
  expect_minimal_filter_correlates<2, 3>();
  expect_minimal_filter_correlates<4, 3>();  // 3 x 3 layers
  expect_minimal_filter_correlates<3, 4>();  // their weight gradient
  expect_minimal_filter_correlates<4, 5>();  // 5 x 5 layers
  expect_minimal_filter_correlates<5, 4>();  // their weight gradient
  expect_minimal_filter_correlates<6, 3>();
}

TEST(Winograd, TheTextbookF23Transform) {
  // Lavin & Gray's F(2, 3) up to the sign of each row: BT rows (1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1).
  constexpr auto mat = winograd::make_matrices<2, 3>();
  const double bt[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  for (int i = 0; i < 4; ++i) {
    double dot = 0, norm = 0;
    for (int j = 0; j < 4; ++j) dot += mat.bt[i][j] * bt[i][j], norm += bt[i][j] * bt[i][j];
    for (int j = 0; j < 4; ++j) EXPECT_DOUBLE_EQ(std::abs(mat.bt[i][j]), std::abs(bt[i][j])) << i << ", " << j;
    EXPECT_DOUBLE_EQ(std::abs(dot), norm) << "row " << i;
  }
}

struct ConvCase {
  const char* name;
  Index batch, in, out, kernel, padding, groups, h, w;
  bool bias;
};

// Forward, input gradient, weight and bias gradients of Winograd and direct layers with the same weights.
template <class T>
void expect_winograd_matches_direct(const ConvCase& c, double tolerance) {
  auto options = [&](ConvAlgorithm a) {
    return Conv2dOptions(c.in, c.out, c.kernel).padding(c.padding).groups(c.groups).bias(c.bias).seed(3).algorithm(a);
  };
  Conv2d<T> direct(options(ConvAlgorithm::Direct)), fast(options(ConvAlgorithm::Winograd));
  const Shape in{c.batch, c.in, c.h, c.w};
  ASSERT_TRUE(fast.uses_winograd(in)) << c.name;
  ASSERT_FALSE(direct.uses_winograd(in)) << c.name;
  Rng rng(11);
  Tensor<T> x = make_tensor<T>(in);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(rng.uniform(-1, 1));
  Tensor<T> g = make_tensor<T>(direct.output_shape(in));
  for (Index i = 0; i < g.size(); ++i) g.data()[i] = static_cast<T>(rng.uniform(-1, 1));
  auto expect_close = [&](const T* want, const T* got, Index size, const char* what) {
    double scale = 0;
    for (Index i = 0; i < size; ++i) scale = std::max(scale, std::abs(static_cast<double>(want[i])));
    for (Index i = 0; i < size; ++i) {
      ASSERT_NEAR(static_cast<double>(got[i]), static_cast<double>(want[i]), tolerance * scale)
          << c.name << ": " << what << " " << i;
    }
  };
  const Tensor<T> y_direct = direct.forward(x), y_fast = fast.forward(x);
  expect_close(y_direct.data(), y_fast.data(), y_direct.size(), "output");
  // Twice, so the gradients accumulate as they do over a batch split in two.
  for (int pass = 0; pass < 2; ++pass) {
    const Tensor<T> dx_direct = direct.backward(g), dx_fast = fast.backward(g);
    expect_close(dx_direct.data(), dx_fast.data(), dx_direct.size(), "input gradient");
  }
  expect_close(direct.weight_grad().data(), fast.weight_grad().data(), direct.weight_grad().size(), "weight gradient");
  if (c.bias) expect_close(direct.bias_grad().data(), fast.bias_grad().data(), c.out, "bias gradient");
}

const ConvCase kAwkwardConvolutions[] = {
    {"3x3, odd non-square planes", 2, 3, 4, 3, 1, 1, 7, 9, true},
    {"3x3, one channel, batch 1, no padding", 1, 1, 1, 3, 0, 1, 5, 5, true},
    {"3x3, padding 2, two groups", 2, 4, 4, 3, 2, 2, 4, 13, false},
    {"3x3, plane smaller than a tile", 3, 2, 3, 3, 1, 1, 2, 3, true},
    {"5x5, two groups", 3, 4, 6, 5, 2, 2, 11, 6, true},
    {"5x5, padding 4 on a 3 x 3 plane", 1, 2, 2, 5, 4, 1, 3, 3, true},
    {"5x5, no padding", 2, 3, 5, 5, 0, 1, 9, 8, true},
    {"3x3, more tiles than one block", 3, 5, 7, 3, 1, 1, 27, 27, true},
    {"5x5, more tiles than one block", 2, 3, 4, 5, 2, 1, 45, 33, true},
};

TEST(Winograd, MatchesTheDirectPathInDoubleOnAwkwardShapes) {
  for (const ConvCase& c : kAwkwardConvolutions) expect_winograd_matches_direct<double>(c, 1e-12);
}

TEST(Winograd, MatchesTheDirectPathInFloatOnAlexNetShapes) {
  // cifar conv3 and a paper conv2 with two groups, at a small batch.
  expect_winograd_matches_direct<float>({"cifar conv3", 2, 192, 384, 3, 1, 1, 7, 7, true}, 2e-5);
  expect_winograd_matches_direct<float>({"paper conv2, groups 2", 2, 96, 256, 5, 2, 2, 27, 27, true}, 2e-5);
}

TEST(Winograd, SameResultOnOneThreadAndOnTwo) {
  Conv2d<float> conv(Conv2dOptions(16, 24, 3).padding(1).seed(4));
  ASSERT_TRUE(conv.uses_winograd(Shape{8, 16, 9, 9}));
  Tensor<float> x(8, 16, 9, 9);
  Rng rng(6);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.uniform(-1, 1));
  const Tensor<float> one = forward_on_threads(conv, x, 1), two = forward_on_threads(conv, x, 2);
  for (Index i = 0; i < one.size(); ++i) ASSERT_EQ(one.data()[i], two.data()[i]) << i;
}

TEST(Winograd, TheAutomaticChoiceFollowsTheMeasuredRule) {
  const AlexNetConfig paper = AlexNetConfig::named("paper");
  Sequential<float> net = make_alexnet<float>(paper, 1);
  std::vector<std::string> fast;
  Shape shape{64, 3, 227, 227};
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (auto* conv = dynamic_cast<Conv2d<float>*>(&net[i])) {
      if (conv->uses_winograd(shape)) fast.push_back(net[i].name());
    }
    shape = net[i].output_shape(shape);
  }
  EXPECT_EQ(fast, (std::vector<std::string>{"conv2", "conv3", "conv4", "conv5"}));  // not conv1: 11 x 11, stride 4
  Conv2d<float> few(Conv2dOptions(3, 64, 5).padding(2));  // cifar conv1: three input channels
  EXPECT_FALSE(few.uses_winograd(Shape{128, 3, 32, 32}));
  Conv2d<float> conv3(Conv2dOptions(256, 384, 3).padding(1));
  EXPECT_FALSE(conv3.uses_winograd(Shape{1, 256, 13, 13}));  // 16 tiles: the weights' transform would dominate
  EXPECT_TRUE(conv3.uses_winograd(Shape{4, 256, 13, 13}));   // 64 tiles
  Conv2d<float> conv2(Conv2dOptions(96, 256, 5).padding(2).groups(2));
  EXPECT_TRUE(conv2.uses_winograd(Shape{1, 96, 27, 27}));   // 5 x 5 saves more: 49 tiles are enough
  EXPECT_TRUE(conv2.uses_winograd(Shape{1, 96, 16, 16}));   // 16 tiles
  EXPECT_FALSE(conv2.uses_winograd(Shape{1, 96, 12, 12}));  // 9 tiles
  Conv2d<float> direct(Conv2dOptions(256, 384, 3).padding(1).algorithm(ConvAlgorithm::Direct));
  EXPECT_FALSE(direct.uses_winograd(Shape{64, 256, 13, 13}));
}

TEST(Winograd, RefusedWhereItCannotRun) {
  for (const auto& options : {Conv2dOptions(4, 4, 3).stride(2).padding(1), Conv2dOptions(4, 4, 11).stride(4),
                              Conv2dOptions(4, 4, 3).padding(3), Conv2dOptions(4, 4, 2)}) {
    Conv2dOptions o = options;
    try {
      Conv2d<float> conv(o.algorithm(ConvAlgorithm::Winograd));
      ADD_FAILURE() << "accepted " << conv.describe();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("Winograd needs stride 1"), std::string::npos) << e.what();
    }
  }
}

}  // namespace

namespace {

// gemm against Eigen's own product, for every transpose combination, beta 0 and 1,
// and sizes that split across threads (rows and columns) or do not; 1 to 4 rows
// (a layer at batch 1 to 4) take the matrix-vector path, split over columns.
TEST(Gemm, MatchesEigenProduct) {
  using M = convnet::Matrix<double>;
  convnet::Rng rng(3);
  auto random = [&](convnet::Index r, convnet::Index c) {
    M m(r, c);
    for (convnet::Index i = 0; i < m.size(); ++i) m.data()[i] = rng.uniform(-1, 1);
    return m;
  };
  const convnet::Index sizes[][3] = {{3, 5, 7},   {300, 40, 70}, {40, 300, 70}, {129, 257, 65},
                                     {1, 1000, 93}, {4, 130, 17},  {2, 64, 1},    {5, 300, 20}};
  for (const auto& s : sizes) {
    const convnet::Index m = s[0], n = s[1], k = s[2];
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        const M a = ta ? random(k, m) : random(m, k);
        const M b = tb ? random(n, k) : random(k, n);
        const M opa = ta ? M(a.transpose()) : a;
        const M opb = tb ? M(b.transpose()) : b;
        for (double beta : {0.0, 1.0}) {
          M c = random(m, n);
          const M expected = 0.5 * opa * opb + beta * c;
          convnet::gemm(ta ? convnet::Transpose::Yes : convnet::Transpose::No,
                        tb ? convnet::Transpose::Yes : convnet::Transpose::No, m, n, k, 0.5, a.data(), a.cols(),
                        b.data(), b.cols(), beta, c.data(), n);
          EXPECT_LT((c - expected).cwiseAbs().maxCoeff(), 1e-12) << m << "x" << n << "x" << k << " ta " << ta
                                                                 << " tb " << tb << " beta " << beta;
        }
      }
    }
  }
  double c = 0;
  EXPECT_THROW(convnet::gemm(convnet::Transpose::No, convnet::Transpose::No, 1, 1, 1, 1.0, &c, 1, &c, 1, 2.0, &c, 1),
               std::invalid_argument);
}

}  // namespace
