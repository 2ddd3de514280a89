// Tests of Linear (src/layers/linear.cpp): the parameters and random draws of torch::nn::Linear,
// int8 weights against a bound derived from the quantization steps, prepacked float32 weights
// against at::linear (and never stale), the fused concat, and errors.
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
  fc->unpack();
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

// Writes `value` over the weight's memory behind autograd's back: its version does not move, so
// only a layer that reads the packed copy still gives the old product.
void overwrite_unversioned(at::Tensor& weight, float value) {
  auto* data = weight.data_ptr<float>();
  const auto before = weight._version();
  for (int64_t j = 0; j < weight.numel(); ++j) data[j] = value;
  ASSERT_EQ(weight._version(), before);
}

TEST(LinearPrepacked, SameProductAsAtLinearAtEveryRowCount) {
  at::manual_seed(6);
  Linear fc(96, 200);
  torch::NoGradGuard no_grad;
  for (const int64_t rows : {int64_t(1), int64_t(4), int64_t(37), LinearImpl::kPackedMaxRows, LinearImpl::kPackedMaxRows + 1}) {
    const auto x = at::randn({rows, 96});                 // (r, i)
    const auto exact = at::linear(x.to(at::kDouble), fc->weight.to(at::kDouble), fc->bias.to(at::kDouble));  // (r, o)
    fc->unpack();
    const auto plain = fc->forward(x);
    fc->prepack_fp32();
    ASSERT_TRUE(fc->prepacked());
    ASSERT_FALSE(fc->quantized());
    const auto packed = fc->forward(x);  // (r, o)
    ASSERT_EQ(packed.sizes(), plain.sizes());
    // float32 sums of 96 products in another order: both within a few float32 steps of the exact sums.
    EXPECT_LT((packed.to(at::kDouble) - exact).abs().max().item<double>(), 1e-4) << rows << " rows";
    EXPECT_LT((plain.to(at::kDouble) - exact).abs().max().item<double>(), 1e-4) << rows << " rows";
  }
  // Leading dimensions of any shape, and no bias.
  Linear nb(96, 10, false);
  const auto x3 = at::randn({2, 3, 96});
  const auto before = nb->forward(x3);
  nb->prepack_fp32();
  EXPECT_TRUE(at::allclose(nb->forward(x3), before, 1e-5, 1e-5));
  EXPECT_EQ(nb->forward(x3).sizes(), before.sizes());
  EXPECT_EQ(nb->forward(at::randn({0, 96})).sizes(), at::IntArrayRef({0, 10}));
}

// The packed copy is what small inputs read (overwriting the weight unversioned leaves their product
// as it was), large inputs read the weight; and once the weight changes in any visible way (an
// in-place update, a conversion), every input reads the weight again.
TEST(LinearPrepacked, SmallInputsReadTheCopyAndAChangedWeightIsNeverStale) {
  at::manual_seed(7);
  Linear fc(32, 16);
  torch::NoGradGuard no_grad;
  const auto small = at::randn({4, 32}), large = at::randn({LinearImpl::kPackedMaxRows + 1, 32});
  const auto small_before = fc->forward(small);
  fc->prepack_fp32();
  overwrite_unversioned(fc->weight, 0.5f);
  EXPECT_TRUE(at::allclose(fc->forward(small), small_before, 1e-5, 1e-5)) << "the small input read the packed copy";
  EXPECT_TRUE(fc->forward(large).equal(at::linear(large, fc->weight, fc->bias))) << "the large one, the weight";

  fc->prepack_fp32();  // packs the 0.5s
  fc->weight.mul_(2);  // an optimizer's in-place step: the version moves
  EXPECT_TRUE(at::allclose(fc->forward(small), at::linear(small, fc->weight, fc->bias), 1e-6, 1e-6))
      << "an in-place update is seen";
  fc->prepack_fp32();
  fc->to(at::kDouble);
  fc->to(at::kFloat);  // new storage
  EXPECT_TRUE(at::allclose(fc->forward(small), at::linear(small, fc->weight, fc->bias), 1e-6, 1e-6))
      << "a conversion is seen";
}

TEST(LinearPrepacked, GradientsFlowThroughTheParameters) {
  at::manual_seed(8);
  Linear fc(12, 5);
  const auto x = at::randn({3, 12}).requires_grad_();
  const auto grads = [&] {
    return torch::autograd::grad({fc->forward(x).square().sum()}, {fc->weight, fc->bias, x});
  };
  const auto plain = grads();
  fc->prepack_fp32();
  const auto packed = grads();
  for (size_t j = 0; j < plain.size(); ++j) EXPECT_TRUE(packed[j].equal(plain[j])) << "gradient " << j;
}

TEST(LinearPrepacked, ConcatAndRefusals) {
  at::manual_seed(9);
  Linear a(16, 8), b(16, 12);
  torch::NoGradGuard no_grad;
  const auto x = at::randn({3, 1, 16});
  a->prepack_fp32();
  b->prepack_fp32();
  const auto fused = LinearImpl::concat({a.get(), b.get()});
  EXPECT_TRUE(fused->prepacked());
  EXPECT_TRUE(at::allclose(fused->forward(x), at::cat({a->forward(x), b->forward(x)}, -1), 1e-5, 1e-5));
  a->quantize_int8();
  EXPECT_TRUE(a->quantized());
  EXPECT_FALSE(a->prepacked()) << "one packing at a time";
  Linear h(8, 4);
  h->to(at::kBFloat16);
  const auto message = pyramidion_test::error_of([&] { h->prepack_fp32(); });
  EXPECT_NE(message.find("BFloat16"), std::string::npos) << message;
  EXPECT_FALSE(h->prepacked());
}

}  // namespace
