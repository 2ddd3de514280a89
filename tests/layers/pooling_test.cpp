// Tests of TopKPooler (src/layers/pooling.cpp).
#include <pyramidion/pooling.h>
#include <pyramidion/topk.h>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/optim/sgd.h>
#include <c10/core/InferenceMode.h>

#include <stdexcept>
#include <tuple>

namespace {

using pyramidion::PoolerConfig;
using pyramidion::TopKPooler;
using pyramidion::TopKPoolerOptions;

TEST(TopKPooler, ShapesMaskAndIndices) {
  at::manual_seed(1);
  TopKPooler pool(TopKPoolerOptions(16, 8));
  const auto x = at::randn({3, 40, 16});
  const auto mask = at::arange(40).unsqueeze(0) < at::tensor({40, 20, 5}).unsqueeze(1);  // (3, 40)
  const auto out = pool->forward(x, mask);
  EXPECT_EQ(out.values.sizes(), at::IntArrayRef({3, 8, 16}));
  EXPECT_EQ(out.mask.sizes(), at::IntArrayRef({3, 8}));
  EXPECT_EQ(out.indices.sizes(), at::IntArrayRef({3, 8}));
  // The third example has 5 real tokens: 5 real outputs, the rest padding with zero values.
  EXPECT_TRUE(out.mask.sum(1).equal(at::tensor({8, 8, 5}, at::kLong)));
  EXPECT_TRUE(out.values[2].narrow(0, 5, 3).eq(0).all().item<bool>());
  // Winners are real tokens, and keep_order (the default) sorts them by position.
  EXPECT_TRUE((out.indices < at::tensor({40, 20, 5}).unsqueeze(1)).logical_or(out.mask.logical_not()).all().item<bool>());
  const auto real_idx = out.indices[0];
  EXPECT_TRUE(real_idx.equal(std::get<0>(real_idx.sort())));
}

TEST(TopKPooler, TrainingModeIsTheSoftOperatorOnTheScorersScores) {
  at::manual_seed(2);
  PoolerConfig unordered;
  unordered.keep_order = false;
  TopKPooler pool(TopKPoolerOptions(8, 4, unordered));
  const auto x = at::randn({2, 16, 8});
  const auto out = pool->forward(x);
  const auto s = at::sigmoid(at::matmul(x, pool->scorer->weight.t()).squeeze(-1) + pool->scorer->bias) + 1e-5;
  const auto ref = pyramidion::successive_halving_topk(x, s, 4);
  EXPECT_TRUE(at::allclose(out.values, ref.values, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(out.scores, ref.scores, 1e-5, 1e-6));
  EXPECT_TRUE(out.indices.equal(ref.indices));
}

// A pooler converted to bfloat16 or float16 pools 16-bit inputs into 16-bit outputs: the soft
// top-k of its own 16-bit scores, and gradients that reach the scorer.
TEST(TopKPooler, SixteenBitPoolerPoolsInItsDtype) {
  for (const auto dtype : {at::kBFloat16, at::kHalf}) {
    at::manual_seed(4);
    TopKPooler pool(TopKPoolerOptions(8, 4));
    pool->to(dtype);
    const auto x = at::randn({2, 16, 8}).to(dtype).requires_grad_();
    const auto mask = at::arange(16).unsqueeze(0) < at::tensor({16, 9}).unsqueeze(1);  // (2, 16)
    const auto out = pool->forward(x, mask);
    EXPECT_EQ(out.values.scalar_type(), dtype);
    EXPECT_EQ(out.scores.scalar_type(), dtype);
    const auto ref = pyramidion::successive_halving_topk(x, pool->score(x), 4, pyramidion::TopKOptions().mask(mask).keep_order(true));
    EXPECT_TRUE(at::equal(out.values, ref.values));
    EXPECT_TRUE(out.indices.equal(ref.indices));
    (out.values.to(at::kFloat).sum() + out.scores.to(at::kFloat).sum()).backward();
    ASSERT_TRUE(pool->scorer->weight.grad().defined());
    EXPECT_EQ(pool->scorer->weight.grad().scalar_type(), dtype);
    EXPECT_TRUE(pool->scorer->weight.grad().isfinite().all().item<bool>());
    EXPECT_GT(pool->scorer->weight.grad().abs().sum().item<double>(), 0.0);
  }
}

TEST(TopKPooler, HardAtInferenceSelectsExactTopKInEvalOnly) {
  at::manual_seed(3);
  PoolerConfig hard;
  hard.hard_at_inference = true;
  TopKPooler pool(TopKPoolerOptions(8, 5, hard));
  const auto x = at::randn({2, 23, 8});
  pool->eval();
  const auto out = pool->forward(x);
  const auto s = pool->score(x);
  const auto expected = std::get<1>(s.topk(5, 1)).sort(1);  // exact top-5 positions, in order
  EXPECT_TRUE(out.indices.equal(std::get<0>(expected)));
  EXPECT_TRUE(out.values.equal(x.gather(1, out.indices.unsqueeze(-1).expand({2, 5, 8}))));
  pool->train();
  const auto soft = pool->forward(x);
  EXPECT_FALSE(soft.values.equal(out.values));  // blended, not selected
}

TEST(TopKPooler, ShortInputPassesThrough) {
  TopKPooler pool(TopKPoolerOptions(4, 10));
  const auto x = at::randn({2, 7, 4});
  const auto out = pool->forward(x);
  EXPECT_TRUE(out.values.equal(x));
  EXPECT_TRUE(out.mask.all().item<bool>());
  EXPECT_TRUE(out.indices[1].equal(at::arange(7)));
}

// The paper's claim that the scorer learns through the pair weights alone (the pooled values are
// not multiplied by the scores): reward the first feature of what is kept, and the scorer learns
// to keep the tokens where that feature is large.
TEST(TopKPooler, ScorerLearnsWhatToKeepThroughThePairWeights) {
  at::manual_seed(4);
  TopKPooler pool(TopKPoolerOptions(6, 4));
  torch::optim::SGD opt(pool->parameters(), torch::optim::SGDOptions(0.5));
  for (int step = 0; step < 150; ++step) {
    const auto x = at::randn({8, 32, 6});
    const auto loss = -pool->forward(x).values.select(-1, 0).mean();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  const auto x = at::randn({16, 32, 6});
  const auto chosen = std::get<1>(pool->score(x).topk(4, 1));                  // (16, 4)
  const auto best = std::get<1>(x.select(-1, 0).topk(4, 1));                   // (16, 4)
  const auto overlap = at::isin(chosen, best).to(at::kFloat).mean().item<double>();
  EXPECT_GT(overlap, 0.9) << "the scorer should learn to rank by feature 0";
}

// detach_scorer_input: the same forward, and the selection's gradient reaches the scorer's
// weights but not x; without it, x gets the scores' gradient too.
TEST(TopKPooler, DetachedScorerInputStopsTheSelectionsGradientAtTheScorer) {
  at::manual_seed(5);
  TopKPooler pool(TopKPoolerOptions(6, 4));
  const auto x0 = at::randn({2, 16, 6});
  // Only the pooled scores in the loss: every gradient to x then comes through the scorer.
  auto grads = [&](bool detach) {
    pool->detach_scorer_input = detach;
    pool->zero_grad();
    const auto x = x0.clone().requires_grad_();
    const auto out = pool->forward(x);
    out.scores.pow(2).sum().backward();
    return std::make_tuple(out.values.detach(), x.grad(), pool->scorer->weight.grad().clone());
  };
  const auto [values_on, x_grad_on, w_grad_on] = grads(false);
  const auto [values_off, x_grad_off, w_grad_off] = grads(true);
  EXPECT_TRUE(values_on.equal(values_off));
  EXPECT_GT(x_grad_on.abs().max().item<double>(), 0.0);
  EXPECT_FALSE(x_grad_off.defined() && x_grad_off.abs().max().item<double>() > 0.0)
      << "a detached scorer input must pass no gradient to x";
  EXPECT_TRUE(at::allclose(w_grad_on, w_grad_off)) << "the scorer's own gradient is the same";
  EXPECT_GT(w_grad_off.abs().max().item<double>(), 0.0);
}

TEST(TopKPooler, RejectsBadOptionsAndInputs) {
  EXPECT_THROW(TopKPooler(TopKPoolerOptions(0, 4)), std::invalid_argument);
  EXPECT_THROW(TopKPooler(TopKPoolerOptions(8, 0)), std::invalid_argument);
  PoolerConfig flat;
  flat.base = 1.0;
  EXPECT_THROW(TopKPooler(TopKPoolerOptions(8, 4, flat)), std::invalid_argument);
  TopKPooler pool(TopKPoolerOptions(8, 4));
  try {
    pool->forward(at::randn({2, 10, 7}));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("d_model = 8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 10, 7]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pool->forward(at::randn({2, 10, 8}), at::ones({2, 9}, at::kBool)), std::invalid_argument);
}

}  // namespace

namespace {

// Inference code runs under InferenceMode or NoGradGuard: the autograd function must still work
// and give the same result as with gradients.
TEST(TopKPooler, WorksUnderInferenceModeAndNoGrad) {
  at::manual_seed(9);
  TopKPooler pool(TopKPoolerOptions(8, 5));
  const auto x = at::randn({2, 30, 8});
  const auto mask = at::arange(30).unsqueeze(0) < at::tensor(std::vector<int64_t>{30, 12}).unsqueeze(1);
  const auto with_grad = pool->forward(x, mask);
  {
    c10::InferenceMode guard;
    const auto out = pool->forward(x, mask);
    EXPECT_TRUE(out.values.equal(with_grad.values.detach()));
    EXPECT_TRUE(out.indices.equal(with_grad.indices));
  }
  {
    at::NoGradGuard guard;
    const auto out = pool->forward(x, mask);
    EXPECT_TRUE(out.values.equal(with_grad.values.detach()));
    EXPECT_FALSE(out.values.requires_grad());
  }
}

}  // namespace
