// Tests of src/ops/topk_math.h, the per-element math of the successive-halving kernels, run on the
// CPU (the same functions are compiled for the device). Expected values come from the formulas
// written out here with std::exp/std::pow, or from finite differences.
#include "ops/topk_math.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <random>
#include <utility>
#include <vector>

namespace {

namespace kernels = pyramidion::kernels;

const double kLogBase = std::log(20.0);

// softmax([base^s_a, base^s_b])_0, as the header defines the pair weight.
double reference_weight(double s_a, double s_b, double base = 20.0) {
  return 1.0 / (1.0 + std::exp(-(std::pow(base, s_a) - std::pow(base, s_b))));
}

TEST(TopKMath, PairWeightIsSigmoidOfDoubleExponentials) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> score(-1.0, 1.6);
  for (double base : {1.5, 2.0, 20.0, 100.0}) {
    for (int i = 0; i < 2000; ++i) {
      const double a = score(rng), b = score(rng);
      const double w = kernels::pair_weight(a, b, true, true, std::log(base));
      EXPECT_NEAR(w, reference_weight(a, b, base), 1e-12) << "s_a " << a << " s_b " << b << " base " << base;
      // softmax: the two weights sum to 1 and the better score gets the larger weight.
      EXPECT_NEAR(kernels::pair_weight(b, a, true, true, std::log(base)), 1 - w, 1e-12);
      if (a > b) EXPECT_GE(w, 0.5);
    }
  }
  EXPECT_EQ(kernels::pair_weight(0.3, 0.3, true, true, kLogBase), 0.5);
  // float agrees with double to float precision.
  for (int i = 0; i < 200; ++i) {
    const double a = score(rng), b = score(rng);
    EXPECT_NEAR(kernels::pair_weight(static_cast<float>(a), static_cast<float>(b), true, true,
                                     static_cast<float>(kLogBase)),
                reference_weight(a, b), 1e-5);
  }
}

TEST(TopKMath, PaddingPairs) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Real side a, padding side b: weight 1 whatever the padding score holds.
  EXPECT_EQ(kernels::pair_weight(0.2, 0.9, true, false, kLogBase), 1.0);
  EXPECT_EQ(kernels::pair_weight(0.2, nan, true, false, kLogBase), 1.0);
  // Padding side a, real side b: all the weight to b.
  EXPECT_EQ(kernels::pair_weight(nan, 0.2, false, true, kLogBase), 0.0);
  // Padding only: weight 1 (unused), the blend stays padding with score 0.
  EXPECT_EQ(kernels::pair_weight(nan, nan, false, false, kLogBase), 1.0);

  double w = -1, s = -1;
  bool valid = true;
  kernels::pair_blend(nan, nan, false, false, kLogBase, &w, &s, &valid);
  EXPECT_FALSE(valid);
  EXPECT_EQ(s, 0.0);
  kernels::pair_blend(0.7, nan, true, false, kLogBase, &w, &s, &valid);
  EXPECT_TRUE(valid);
  EXPECT_EQ(w, 1.0);
  EXPECT_EQ(s, 0.7);
  kernels::pair_blend(nan, 0.4, false, true, kLogBase, &w, &s, &valid);
  EXPECT_TRUE(valid);
  EXPECT_EQ(w, 0.0);
  EXPECT_EQ(s, 0.4);
  // Real pair: score w s_a + (1 - w) s_b.
  kernels::pair_blend(0.8, 0.1, true, true, kLogBase, &w, &s, &valid);
  const double rw = reference_weight(0.8, 0.1);
  EXPECT_TRUE(valid);
  EXPECT_NEAR(w, rw, 1e-14);
  EXPECT_NEAR(s, rw * 0.8 + (1 - rw) * 0.1, 1e-14);
}

// 20^40 and 20^50 overflow float (max 3.4e38): the weight takes its limit, never NaN.
TEST(TopKMath, OverflowGivesLimitsNotNaN) {
  const float lb = static_cast<float>(kLogBase);
  ASSERT_TRUE(std::isinf(std::exp(40.0f * lb)));
  EXPECT_EQ(kernels::pair_weight(50.0f, 40.0f, true, true, lb), 1.0f);
  EXPECT_EQ(kernels::pair_weight(40.0f, 50.0f, true, true, lb), 0.0f);
  EXPECT_EQ(kernels::pair_weight(40.0f, 40.0f, true, true, lb), 0.5f);
  // Only one side overflows.
  EXPECT_EQ(kernels::pair_weight(40.0f, 1.0f, true, true, lb), 1.0f);
  EXPECT_EQ(kernels::pair_weight(1.0f, 40.0f, true, true, lb), 0.0f);
  // The same in double, where 20^300 overflows.
  EXPECT_EQ(kernels::pair_weight(300.0, 260.0, true, true, kLogBase), 1.0);
  EXPECT_EQ(kernels::pair_weight(260.0, 300.0, true, true, kLogBase), 0.0);
  EXPECT_EQ(kernels::pair_weight(300.0, 300.0, true, true, kLogBase), 0.5);

  float w, s;
  bool valid;
  kernels::pair_blend(50.0f, 40.0f, true, true, lb, &w, &s, &valid);
  EXPECT_EQ(s, 50.0f);
  kernels::pair_blend(40.0f, 40.0f, true, true, lb, &w, &s, &valid);
  EXPECT_EQ(s, 40.0f);
  kernels::pair_blend(40.0f, 50.0f, true, true, lb, &w, &s, &valid);
  EXPECT_EQ(s, 50.0f);
}

// The loss seen by one node n = w a + (1 - w) b, with the children's representations fixed:
// rho * <dY, n> + sigma * score(n) = rho (w q_a + (1 - w) q_b) + sigma (w s_a + (1 - w) s_b).
double node_loss(double rho, double sigma, double s_a, double s_b, double q_a, double q_b) {
  const double w = reference_weight(s_a, s_b);
  return rho * (w * q_a + (1 - w) * q_b) + sigma * (w * s_a + (1 - w) * s_b);
}

TEST(TopKMath, NodeBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> unit(-1.0, 1.0), score(0.0, 1.3);
  const double eps = 1e-6;
  int exercised = 0;
  for (int i = 0; i < 500; ++i) {
    const double rho = unit(rng), sigma = unit(rng), q_a = unit(rng), q_b = unit(rng);
    const double s_a = score(rng), s_b = score(rng);
    const double w = kernels::pair_weight(s_a, s_b, true, true, kLogBase);
    double ga = 0, gb = 0;
    kernels::node_backward(rho, sigma, w, s_a, s_b, q_a, q_b, kLogBase, &ga, &gb);
    const double fa = (node_loss(rho, sigma, s_a + eps, s_b, q_a, q_b) -
                       node_loss(rho, sigma, s_a - eps, s_b, q_a, q_b)) / (2 * eps);
    const double fb = (node_loss(rho, sigma, s_a, s_b + eps, q_a, q_b) -
                       node_loss(rho, sigma, s_a, s_b - eps, q_a, q_b)) / (2 * eps);
    const double scale = 1 + std::abs(fa) + std::abs(fb);
    EXPECT_NEAR(ga, fa, 1e-6 * scale) << "s_a " << s_a << " s_b " << s_b;
    EXPECT_NEAR(gb, fb, 1e-6 * scale) << "s_a " << s_a << " s_b " << s_b;
    if (std::abs(ga - w * sigma) > 1e-3) ++exercised;  // the weight's own derivative mattered
  }
  EXPECT_GT(exercised, 100);
}

TEST(TopKMath, NodeBackwardWhereTheWeightSaturates) {
  double ga = 0, gb = 0;
  // Padding on side b (weight 1): the score passes straight to side a.
  kernels::node_backward(0.7, 0.3, 1.0, 0.4, 0.0, 0.2, -0.5, kLogBase, &ga, &gb);
  EXPECT_EQ(ga, 0.3);
  EXPECT_EQ(gb, 0.0);
  // Weight rounded to exactly 1 in double (20^3 - 20^0 = 7999): the finite difference is 0 too.
  const double w = kernels::pair_weight(3.0, 0.0, true, true, kLogBase);
  ASSERT_EQ(w, 1.0);
  kernels::node_backward(0.7, 0.3, w, 3.0, 0.0, 0.2, -0.5, kLogBase, &ga, &gb);
  EXPECT_EQ(ga, 0.3);
  EXPECT_EQ(gb, 0.0);
}

TEST(TopKMath, NodeBackwardNoNaNWhenPowersOverflow) {
  const float lb = static_cast<float>(kLogBase);
  for (auto [s_a, s_b] : {std::pair<float, float>{50.0f, 40.0f}, {40.0f, 50.0f}, {40.0f, 40.0f}, {45.0f, 1.0f}}) {
    const float w = kernels::pair_weight(s_a, s_b, true, true, lb);
    float ga = 0, gb = 0;
    kernels::node_backward(0.5f, 0.25f, w, s_a, s_b, 1.0f, -1.0f, lb, &ga, &gb);
    EXPECT_TRUE(std::isfinite(ga)) << s_a << " " << s_b;
    EXPECT_TRUE(std::isfinite(gb)) << s_a << " " << s_b;
    EXPECT_FLOAT_EQ(ga + gb, 0.25f);  // the score's gradient splits as w, 1 - w
  }
  double ga = 0, gb = 0;
  kernels::node_backward(0.5, 0.25, 0.5, 400.0, 400.0, 1.0, -1.0, kLogBase, &ga, &gb);
  EXPECT_TRUE(std::isfinite(ga));
  EXPECT_TRUE(std::isfinite(gb));
}

TEST(TopKMath, IsFiniteHelper) {
  EXPECT_TRUE(kernels::is_finite_(1.0));
  EXPECT_TRUE(kernels::is_finite_(-3.0f));
  EXPECT_FALSE(kernels::is_finite_(std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(kernels::is_finite_(-std::numeric_limits<float>::infinity()));
  EXPECT_FALSE(kernels::is_finite_(std::numeric_limits<double>::quiet_NaN()));
}

// The header's own exponential against the C library's, over the whole range where e^v is
// finite and positive: float within 1 ulp of the correctly rounded value (std::exp in double,
// rounded), double within 4e-16 relative of std::exp in long double.
float ulp_distance(float a, float b) {
  if (a == b) return 0;
  return std::fabs(a - b) / (std::nextafter(std::fabs(b), std::numeric_limits<float>::infinity()) - std::fabs(b));
}

TEST(TopKMath, OwnExpIsAccurateOverItsRange) {
  std::mt19937 rng(7);
  float worst = 0;
  double worst_double = 0;
  for (const auto [lo, hi] : {std::pair<double, double>{-103.9, 88.7}, {-1, 1}, {-1e-3, 1e-3}, {-87.5, -86}}) {
    std::uniform_real_distribution<double> v(lo, hi);
    for (int i = 0; i < 200000; ++i) {
      const float x = static_cast<float>(v(rng));
      const float expected = static_cast<float>(std::exp(static_cast<double>(x)));
      if (expected < std::numeric_limits<float>::min()) continue;  // subnormal results: checked below
      worst = std::max(worst, ulp_distance(kernels::exp_(x), expected));
    }
  }
  EXPECT_LE(worst, 1.0f) << "float exp_ worst error in ulp (measured: 1)";
  std::uniform_real_distribution<double> vd(-708.0, 709.0);
  for (int i = 0; i < 200000; ++i) {
    const double x = vd(rng);
    const long double expected = std::exp(static_cast<long double>(x));
    worst_double = std::max(worst_double, static_cast<double>(std::fabs((kernels::exp_(x) - expected) / expected)));
  }
  EXPECT_LE(worst_double, 4e-16) << "double exp_ worst relative error (measured: 1.7e-16)";
  std::cout << "exp_: float worst " << worst << " ulp, double worst " << worst_double << " relative\n";
}

TEST(TopKMath, OwnExpEdges) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(kernels::exp_(0.0f), 1.0f);
  EXPECT_EQ(kernels::exp_(-0.0f), 1.0f);
  EXPECT_EQ(kernels::exp_(0.0), 1.0);
  EXPECT_EQ(kernels::exp_(inf), inf);
  EXPECT_EQ(kernels::exp_(-inf), 0.0f);
  EXPECT_EQ(kernels::exp_(89.0f), inf);
  EXPECT_EQ(kernels::exp_(-200.0f), 0.0f);
  EXPECT_EQ(kernels::exp_(710.0), std::numeric_limits<double>::infinity());
  EXPECT_EQ(kernels::exp_(-746.0), 0.0);
  EXPECT_TRUE(std::isnan(kernels::exp_(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(kernels::exp_(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_TRUE(std::isfinite(kernels::exp_(88.72f)));
  EXPECT_NEAR(kernels::exp_(88.72f) / std::exp(88.72f), 1.0f, 1e-6f);
  // Subnormal results round once: within one subnormal step of the true value.
  for (const float x : {-88.0f, -95.0f, -100.0f, -103.0f}) {
    const double expected = std::exp(static_cast<double>(x));
    EXPECT_LE(std::fabs(kernels::exp_(x) - expected), std::numeric_limits<float>::denorm_min()) << x;
  }
  for (const double x : {-709.0, -720.0, -740.0}) {
    const long double expected = std::exp(static_cast<long double>(x));
    EXPECT_LE(std::fabs(kernels::exp_(x) - expected), 2 * std::numeric_limits<double>::denorm_min() + 1e-15 * expected)
        << x;
  }
}

TEST(TopKMath, DescendingImageOrdersFloatsDescending) {
  const std::vector<float> ascending{-std::numeric_limits<float>::infinity(), -1e30f, -1.0f, -1e-40f, 0.0f,
                                     1e-40f, 0.5f, 1.0f, 3e38f, std::numeric_limits<float>::infinity()};
  for (size_t i = 0; i + 1 < ascending.size(); ++i)
    EXPECT_GT(kernels::descending_image(ascending[i]), kernels::descending_image(ascending[i + 1])) << ascending[i];
  EXPECT_EQ(kernels::descending_image(-0.0f), kernels::descending_image(0.0f));
  EXPECT_EQ(kernels::descending_image(-0.0), kernels::descending_image(0.0));
  EXPECT_GT(kernels::descending_image(-2.0), kernels::descending_image(1.0));
}

}  // namespace
