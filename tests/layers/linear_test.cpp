// Tests of Linear (src/layers/linear.cpp): the parameters and random draws of torch::nn::Linear,
// int8 weights against a bound derived from the quantization steps, the fused concat, and errors.
// (The whole model in int8: tests/models/model_test.cpp.)
//
// Legend: r rows, i in_features, o out_features.
#include <pyramidion/linear.h>

#include "support/model_fixtures.h"
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/nn/modules/linear.h>

#include <stdexcept>
#include <string>

namespace {

using pyramidion::Linear;
using pyramidion::LinearImpl;

TEST(Linear, SameParametersAndRandomDrawsAsTorchLinear) {
  for (bool bias : {true, false}) {
    at::manual_seed(3);
    torch::nn::Linear theirs(torch::nn::LinearOptions(7, 5).bias(bias));
    const auto after_theirs = at::rand({1});
    at::manual_seed(3);
    Linear ours(7, 5, bias);
    const auto after_ours = at::rand({1});
    EXPECT_TRUE(ours->weight.equal(theirs->weight));
    if (bias) EXPECT_TRUE(ours->bias.equal(theirs->bias));
    EXPECT_TRUE(after_ours.equal(after_theirs)) << "the generator moved by the same draws";
    const auto names = ours->named_parameters().keys();
    EXPECT_EQ(names, theirs->named_parameters().keys());
    const auto x = at::randn({3, 7});
    EXPECT_TRUE(ours->forward(x).equal(theirs->forward(x)));
  }
}

// The int8 product is within the error the two roundings allow: the weight rounded to its row's
// step s_o = max|W_o| / 127, the input to its step s_x = (max(x, 0) - min(x, 0)) / 127 (7 bits,
// LibTorch's reduce_range; 8 bits with VNNI halve it, within the same bound). Per output: sum_i |x_i| s_o / 2 + |W_oi| s_x / 2 + s_o s_x / 4.
TEST(LinearInt8, WithinTheQuantizationBoundAndNotFloat) {
  at::manual_seed(4);
  Linear fc(64, 48);
  torch::NoGradGuard no_grad;
  // Rows of very different scales: a per-tensor step (the largest row's) would break the small rows' bound.
  fc->weight.mul_(at::linspace(0.1, 3.0, 48).unsqueeze(1));
  const auto x = at::randn({2, 5, 64});                        // (..., i)
  const auto exact = fc->forward(x);                           // (2, 5, o)
  fc->quantize_int8();
  ASSERT_TRUE(fc->quantized());
  const auto y = fc->forward(x);  // (2, 5, o)
  ASSERT_EQ(y.sizes(), exact.sizes());
  const auto s_o = fc->weight.abs().amax(1) / 127.0;                                 // (o)
  const double s_x = (x.max().clamp_min(0) - x.min().clamp_max(0)).item<double>() / 127.0;
  const auto bound = x.abs().sum(-1, true) * s_o / 2 + fc->weight.abs().sum(1) * s_x / 2 + 64 * s_o * s_x / 4;  // (2, 5, o)
  EXPECT_TRUE(((y - exact).abs() <= bound * 1.01 + 1e-5).all().item<bool>())
      << "largest error / bound " << ((y - exact).abs() / bound).max().item<double>();
  EXPECT_FALSE(y.equal(exact)) << "the int8 path ran";
  fc->dequantize();
  EXPECT_TRUE(fc->forward(x).equal(exact));
}

TEST(LinearInt8, ConcatIsThePartsSideBySide) {
  at::manual_seed(5);
  Linear a(16, 8), b(16, 12);
  torch::NoGradGuard no_grad;
  const auto x = at::randn({3, 1, 16});
  const auto fused = LinearImpl::concat({a.get(), b.get()});
  EXPECT_TRUE(at::allclose(fused->forward(x), at::cat({a->forward(x), b->forward(x)}, -1), 1e-6, 1e-6));
  a->quantize_int8();
  b->quantize_int8();
  const auto fused8 = LinearImpl::concat({a.get(), b.get()});
  EXPECT_TRUE(fused8->quantized());
  EXPECT_TRUE(at::allclose(fused8->forward(x), at::cat({a->forward(x), b->forward(x)}, -1), 1e-5, 1e-5))
      << "the same rows, steps and input quantization";
  Linear c(10, 4), no_bias(16, 4, false);
  EXPECT_THROW(LinearImpl::concat({a.get(), c.get()}), std::invalid_argument);
  EXPECT_THROW(LinearImpl::concat({a.get(), no_bias.get()}), std::invalid_argument);
  EXPECT_THROW(LinearImpl::concat({}), std::invalid_argument);
}

TEST(LinearInt8, BadInputsAndWeightsAreRefused) {
  Linear fc(8, 4);
  fc->to(at::kBFloat16);
  EXPECT_THROW(fc->quantize_int8(), std::invalid_argument);
  fc->to(at::kFloat);
  fc->quantize_int8();
  // With autograd on, an int8 layer would silently train nothing: refused.
  const auto training = pyramidion_test::error_of([&] { fc->forward(at::randn({2, 8})); });
  EXPECT_NE(training.find("no gradient"), std::string::npos) << training;
  torch::NoGradGuard no_grad;
  const auto message = pyramidion_test::error_of([&] { fc->forward(at::randn({2, 8}, at::kDouble)); });
  EXPECT_NE(message.find("float32 on the CPU"), std::string::npos) << message;
  EXPECT_THROW(fc->forward(at::randn({2, 7})), std::invalid_argument);
  EXPECT_EQ(fc->forward(at::randn({0, 8})).sizes(), at::IntArrayRef({0, 4}));
  EXPECT_THROW(Linear(0, 3), std::invalid_argument);
  EXPECT_THROW(LinearImpl(at::randn({3}), at::Tensor()), std::invalid_argument);
  EXPECT_THROW(LinearImpl(at::randn({3, 2}), at::randn({2})), std::invalid_argument);
}

}  // namespace
