// Tests of MultiHeadAttention (src/layers/attention.cpp), against a naive float64 attention written here:
// explicit projections, softmax(Q K^T / sqrt(dh)) over an explicit (b, t, s) mask of allowed keys.
//
// Legend: b batch, n tokens, t queries, s keys, d model size, h heads, dh = d / h.
#include <pyramidion/attention.h>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using pyramidion::KV;
using pyramidion::KVCache;
using pyramidion::MultiHeadAttention;
using pyramidion::MultiHeadAttentionOptions;

// (b, n) bool: position < length.
at::Tensor lengths_mask(std::vector<int64_t> lengths, int64_t n) {
  return at::arange(n).unsqueeze(0) < at::tensor(lengths).unsqueeze(1);
}

// A module in float64 with non-zero biases (the default zero output bias would hide bias bugs).
MultiHeadAttention make_mha(MultiHeadAttentionOptions options, bool float64 = true) {
  MultiHeadAttention mha(options);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : mha->named_parameters())
      if (p.key().find("bias") != std::string::npos) p.value().uniform_(-0.5, 0.5);
  }
  if (float64) mha->to(at::kDouble);
  mha->eval();
  return mha;
}

void copy_weights(MultiHeadAttention& dst, const MultiHeadAttention& src) {
  torch::NoGradGuard no_grad;
  const auto from = src->named_parameters();
  for (auto& p : dst->named_parameters()) p.value().copy_(from[p.key()]);
}

// The independent reference. xq (b, t, d), xkv (b, s, d), allowed (b, t, s) bool. A query with no
// allowed key, or whose query_real entry (b, t) is false, outputs zeros.
at::Tensor naive_attention(MultiHeadAttention& mha, const at::Tensor& xq, const at::Tensor& xkv,
                           const at::Tensor& allowed, const at::Tensor& query_real) {
  const auto lin = [](const pyramidion::Linear& l, const at::Tensor& x) {
    return at::matmul(x, l->weight.to(at::kDouble).t()) + l->bias.to(at::kDouble);
  };
  const int64_t b = xq.size(0), t = xq.size(1), s = xkv.size(1), d = xq.size(2), h = mha->options.heads();
  const int64_t dh = d / h;
  const auto q = lin(mha->q_proj, xq.to(at::kDouble)).view({b, t, h, dh}).permute({0, 2, 1, 3});   // (b, h, t, dh)
  const auto k = lin(mha->k_proj, xkv.to(at::kDouble)).view({b, s, h, dh}).permute({0, 2, 1, 3});  // (b, h, s, dh)
  const auto v = lin(mha->v_proj, xkv.to(at::kDouble)).view({b, s, h, dh}).permute({0, 2, 1, 3});  // (b, h, s, dh)
  const auto ok = allowed.unsqueeze(1);                                                             // (b, 1, t, s)
  const auto logits = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(dh));      // (b, h, t, s)
  // Shifted by the row maximum over allowed keys (softmax is invariant to it, hence detached);
  // masked logits are zeroed before exp so that neither the value nor its gradient overflows.
  const auto row_max = std::get<0>(logits.masked_fill(ok.logical_not(), -1e300).max(-1, true)).detach();
  const auto shifted = (logits - row_max).masked_fill(ok.logical_not(), 0.0);  // (b, h, t, s)
  const auto e = at::exp(shifted) * ok.to(at::kDouble);                       // (b, h, t, s), 0 where masked
  const auto denom = e.sum(-1, true);                                         // (b, h, t, 1)
  const auto w = e / at::where(denom > 0, denom, at::ones_like(denom));       // rows with no key: all 0
  const auto ctx = at::matmul(w, v).permute({0, 2, 1, 3}).reshape({b, t, d}); // (b, t, d)
  const auto out = lin(mha->out_proj, ctx);                                   // (b, t, d)
  const auto keep = allowed.any(-1).logical_and(query_real).unsqueeze(-1);    // (b, t, 1)
  return out * keep.to(at::kDouble);
}

// allowed (b, n, n) for self-attention: keys real and (block_size > 0) in the query's block.
at::Tensor self_allowed(const at::Tensor& mask, int64_t block_size) {
  const int64_t n = mask.size(1);
  auto allowed = mask.unsqueeze(1).expand({mask.size(0), n, n});  // (b, n, n)
  if (block_size > 0) {
    const auto block = at::arange(n).div(block_size, "floor");                        // (n) block of each position
    allowed = allowed.logical_and(block.unsqueeze(1) == block.unsqueeze(0));  // (b, n, n)
  }
  return allowed;
}

bool all_finite(const at::Tensor& t) { return at::isfinite(t).all().item<bool>(); }

TEST(AttentionFull, MatchesNaive) {
  at::manual_seed(1);
  auto mha = make_mha(MultiHeadAttentionOptions(16, 4));
  const auto x = at::randn({3, 11, 16}, at::kDouble);
  const auto mask = lengths_mask({11, 6, 1}, 11);
  const auto out = mha->forward(x, mask);
  EXPECT_TRUE(at::allclose(out, naive_attention(mha, x, x, self_allowed(mask, 0), mask), 1e-10, 1e-12));
  const auto all = at::ones({3, 11}, at::kBool);
  EXPECT_TRUE(at::allclose(mha->forward(x), naive_attention(mha, x, x, self_allowed(all, 0), all), 1e-10, 1e-12));
}

TEST(AttentionBlockwise, BlockAtLeastTheInputIsFullAttention) {
  at::manual_seed(2);
  auto full = make_mha(MultiHeadAttentionOptions(16, 2), /*float64=*/false);
  const auto x = at::randn({2, 11, 16});
  const auto mask = lengths_mask({11, 7}, 11);
  for (int64_t c : {11, 12, 64}) {
    auto blockwise = make_mha(MultiHeadAttentionOptions(16, 2).block_size(c), false);
    copy_weights(blockwise, full);
    EXPECT_TRUE(at::allclose(blockwise->forward(x, mask), full->forward(x, mask), 0.0, 1e-6)) << "block " << c;
    EXPECT_TRUE(at::allclose(blockwise->forward(x), full->forward(x), 0.0, 1e-6)) << "block " << c;
  }
}

// The tail (11 = 2 * 4 + 3) is its own padded block, attended within and kept in the output.
TEST(AttentionBlockwise, MatchesNaiveBlockDiagonalAttentionWithTheTailKept) {
  at::manual_seed(3);
  for (int64_t c : {1, 3, 4, 5, 10}) {
    auto mha = make_mha(MultiHeadAttentionOptions(12, 3).block_size(c));
    const auto x = at::randn({4, 11, 12}, at::kDouble);
    const auto mask = lengths_mask({11, 9, 3, 0}, 11);
    const auto out = mha->forward(x, mask);
    ASSERT_EQ(out.sizes(), at::IntArrayRef({4, 11, 12}));
    EXPECT_TRUE(at::allclose(out, naive_attention(mha, x, x, self_allowed(mask, c), mask), 1e-10, 1e-12))
        << "block " << c;
    EXPECT_TRUE(out[0][10].abs().sum().item<double>() > 0) << "the tail's last token was dropped, block " << c;
    const auto no_mask = mha->forward(x);
    const auto all = at::ones({4, 11}, at::kBool);
    EXPECT_TRUE(at::allclose(no_mask, naive_attention(mha, x, x, self_allowed(all, c), all), 1e-10, 1e-12))
        << "block " << c;
  }
}

TEST(AttentionBlockwise, GradientsMatchNaiveWithPaddedBlocks) {
  at::manual_seed(4);
  auto mha = make_mha(MultiHeadAttentionOptions(8, 2).block_size(3));
  const auto x = at::randn({3, 10, 8}, at::kDouble).requires_grad_();
  const auto mask = lengths_mask({10, 4, 0}, 10);
  const auto w = at::randn({3, 10, 8}, at::kDouble);
  const auto g = torch::autograd::grad({(mha->forward(x, mask) * w).sum()}, {x})[0];
  const auto ref = naive_attention(mha, x, x, self_allowed(mask, 3), mask);
  const auto g_ref = torch::autograd::grad({(ref * w).sum()}, {x})[0];
  EXPECT_TRUE(all_finite(g));
  EXPECT_TRUE(at::allclose(g, g_ref, 1e-9, 1e-11));
}

// Appending padding (with large garbage values) to keys and queries changes no real output, and
// padding outputs are zero, in every kind of attention.
TEST(AttentionPadding, AppendingPaddingDoesNotChangeRealOutputs) {
  at::manual_seed(5);
  const auto x = at::randn({2, 7, 16});
  const auto mask = lengths_mask({7, 4}, 7);
  const auto xp = at::cat({x, 100 * at::randn({2, 5, 16})}, 1);  // (2, 12, 16)
  const auto mp = lengths_mask({7, 4}, 12);
  const auto real = mask.unsqueeze(-1);  // (2, 7, 1)
  const auto same_real = [&](const at::Tensor& a, const at::Tensor& padded) {
    return at::allclose(a.masked_fill(real.logical_not(), 0), padded.narrow(1, 0, 7), 1e-5, 1e-6) &&
           padded.masked_select(mp.logical_not().unsqueeze(-1)).eq(0).all().item<bool>();
  };
  for (int64_t c : {0, 3, 4}) {
    auto mha = make_mha(MultiHeadAttentionOptions(16, 4).block_size(c), false);
    EXPECT_TRUE(same_real(mha->forward(x, mask), mha->forward(xp, mp))) << "block " << c;
    if (c == 0) EXPECT_TRUE(same_real(mha->forward_causal(x, mask), mha->forward_causal(xp, mp)));
  }
  // Cross-attention: padding appended to the memory.
  auto mha = make_mha(MultiHeadAttentionOptions(16, 4), false);
  const auto q = at::randn({2, 5, 16});
  EXPECT_TRUE(at::allclose(mha->forward_cross(q, x, mask), mha->forward_cross(q, xp, mp), 1e-5, 1e-6));
}

TEST(AttentionMasking, NoNaNForEmptyExamplesAndPaddingBlocks) {
  at::manual_seed(6);
  auto mha = make_mha(MultiHeadAttentionOptions(8, 2).block_size(4), false);
  const auto x = at::randn({2, 12, 8}).requires_grad_();
  const auto mask = lengths_mask({0, 5}, 12);  // example 0 is empty; example 1 has a padding block
  const auto out = mha->forward(x, mask);
  EXPECT_TRUE(all_finite(out));
  EXPECT_TRUE(out.masked_select(mask.logical_not().unsqueeze(-1)).eq(0).all().item<bool>());
  out.sum().backward();
  EXPECT_TRUE(all_finite(x.grad()));
  for (const auto& p : mha->parameters()) EXPECT_TRUE(all_finite(p.grad()));

  auto full = make_mha(MultiHeadAttentionOptions(8, 2), false);
  const auto causal = full->forward_causal(x, mask);
  EXPECT_TRUE(all_finite(causal));
  EXPECT_TRUE(causal[0].eq(0).all().item<bool>());
  const auto cross = full->forward_cross(at::randn({2, 3, 8}), x, mask);  // example 0: empty memory
  EXPECT_TRUE(all_finite(cross));
  EXPECT_TRUE(cross[0].eq(0).all().item<bool>());
  EXPECT_TRUE(cross[1].abs().sum().item<float>() > 0);

  // Training with dropout goes through another kernel; the rule holds there too.
  auto dropping = make_mha(MultiHeadAttentionOptions(8, 2).block_size(4).dropout(0.2), false);
  dropping->train();
  const auto out_train = dropping->forward(x, mask);
  EXPECT_TRUE(all_finite(out_train));
  EXPECT_TRUE(out_train.masked_select(mask.logical_not().unsqueeze(-1)).eq(0).all().item<bool>());
  const auto cross_train = dropping->forward_cross(at::randn({2, 3, 8}), x, mask);
  EXPECT_TRUE(all_finite(cross_train));
  EXPECT_TRUE(cross_train[0].eq(0).all().item<bool>());
}

TEST(AttentionDecoding, CausalForwardMatchesNaive) {
  at::manual_seed(7);
  auto mha = make_mha(MultiHeadAttentionOptions(12, 3));
  const auto x = at::randn({2, 9, 12}, at::kDouble);
  const auto causal = at::ones({9, 9}, at::kBool).tril().unsqueeze(0);  // (1, t, t)
  const auto all = at::ones({2, 9}, at::kBool);
  EXPECT_TRUE(at::allclose(mha->forward_causal(x), naive_attention(mha, x, x, causal.expand({2, 9, 9}), all), 1e-10,
                           1e-12));
  const auto mask = lengths_mask({9, 5}, 9);
  const auto allowed = causal.logical_and(mask.unsqueeze(1));  // (b, t, t)
  EXPECT_TRUE(at::allclose(mha->forward_causal(x, mask), naive_attention(mha, x, x, allowed, mask), 1e-10, 1e-12));
}

TEST(AttentionDecoding, CachedStepsEqualUncachedCausalAttention) {
  at::manual_seed(8);
  for (bool float64 : {true, false}) {
    auto mha = make_mha(MultiHeadAttentionOptions(16, 4), float64);
    const auto x = at::randn({3, 9, 16}, float64 ? at::kDouble : at::kFloat);
    const auto full = mha->forward_causal(x);  // (b, t, d)
    c10::InferenceMode guard;  // generation runs without autograd
    KVCache cache;
    for (int64_t i = 0; i < 9; ++i) {
      const auto y = mha->forward_step(x.narrow(1, i, 1), cache);  // (b, 1, d)
      ASSERT_EQ(y.sizes(), at::IntArrayRef({3, 1, 16}));
      EXPECT_EQ(cache.length(), i + 1);
      EXPECT_TRUE(at::allclose(y.squeeze(1), full.select(1, i), float64 ? 1e-10 : 1e-5, float64 ? 1e-12 : 1e-6))
          << "step " << i << (float64 ? " float64" : " float32");
    }
  }
}

TEST(AttentionDecoding, ReorderedCacheFollowsTheBeams) {
  at::manual_seed(9);
  auto mha = make_mha(MultiHeadAttentionOptions(8, 2));
  const auto x = at::randn({2, 5, 8}, at::kDouble);
  KVCache cache;
  for (int64_t i = 0; i < 4; ++i) mha->forward_step(x.narrow(1, i, 1), cache);
  const auto index = at::tensor({1, 1, 0}, at::kLong);
  cache.reorder(index);
  EXPECT_EQ(cache.k.size(0), 3);
  const auto xr = x.index_select(0, index);  // (3, 5, 8)
  const auto y = mha->forward_step(xr.narrow(1, 4, 1), cache);
  EXPECT_TRUE(at::allclose(y.squeeze(1), mha->forward_causal(xr).select(1, 4), 1e-10, 1e-12));
}

// The cache against the naive one it replaced (at::cat per step, index_select per reorder): the
// same positions after any sequence of appends, growths and reorders, with reserve() making every
// append write into the same storage.
TEST(AttentionDecoding, PreallocatedCacheEqualsConcatenation) {
  at::manual_seed(12);
  KVCache cache;
  at::Tensor k_ref, v_ref;  // (b, h, t, dh)
  const auto step = [&](int64_t b) {
    const auto k_new = at::randn({b, 2, 1, 3}, at::kDouble), v_new = at::randn({b, 2, 1, 3}, at::kDouble);
    cache.append(k_new, v_new);
    k_ref = k_ref.defined() ? at::cat({k_ref, k_new}, 2) : k_new;
    v_ref = v_ref.defined() ? at::cat({v_ref, v_new}, 2) : v_new;
  };
  const auto reorder = [&](std::vector<int64_t> rows) {
    const auto index = at::tensor(rows);
    cache.reorder(index);
    k_ref = k_ref.index_select(0, index);
    v_ref = v_ref.index_select(0, index);
  };
  for (int i = 0; i < 20; ++i) step(3);  // past the first capacity (16): the storage doubles
  EXPECT_EQ(cache.length(), 20);
  EXPECT_EQ(cache.capacity(), 32);
  EXPECT_TRUE(cache.k.equal(k_ref) && cache.v.equal(v_ref));
  reorder({2, 0, 0});
  step(3);
  reorder({1, 2, 1});  // the second reorder writes into the first one's storage
  step(3);
  reorder({0, 2});  // a source leaves: fewer rows
  step(2);
  EXPECT_EQ(cache.length(), 23);
  EXPECT_TRUE(cache.k.equal(k_ref) && cache.v.equal(v_ref));

  KVCache reserved;
  reserved.reserve(40);
  reserved.append(at::randn({2, 2, 1, 3}), at::randn({2, 2, 1, 3}));
  const void* storage = reserved.k.data_ptr();
  for (int i = 1; i < 40; ++i) reserved.append(at::randn({2, 2, 1, 3}), at::randn({2, 2, 1, 3}));
  EXPECT_EQ(reserved.k.data_ptr(), storage) << "40 appends after reserve(40) never reallocate";
  EXPECT_EQ(reserved.capacity(), 40);

  EXPECT_THROW(reserved.append(at::randn({3, 2, 1, 3}), at::randn({3, 2, 1, 3})), std::invalid_argument);  // b
  EXPECT_THROW(reserved.append(at::randn({2, 2, 1, 3}), at::randn({2, 2, 1, 4})), std::invalid_argument);  // k != v
  EXPECT_THROW(reserved.append(at::randn({2, 2, 1, 3}, at::kDouble), at::randn({2, 2, 1, 3}, at::kDouble)),
               std::invalid_argument);  // dtype
  EXPECT_THROW(reserved.reserve(-1), std::invalid_argument);
}

// A decoding's fused q/k/v weight is made once, from the weights at its first step.
TEST(AttentionDecoding, TheFusedProjectionIsTheThreeProjections) {
  at::manual_seed(13);
  auto mha = make_mha(MultiHeadAttentionOptions(8, 2));
  torch::NoGradGuard no_grad;
  KVCache cache;
  const auto x = at::randn({2, 1, 8}, at::kDouble);
  mha->forward_step(x, cache);
  ASSERT_TRUE(cache.qkv);
  ASSERT_EQ(cache.qkv->weight.sizes(), at::IntArrayRef({24, 8}));
  EXPECT_TRUE(cache.qkv->weight.narrow(0, 8, 8).equal(mha->k_proj->weight));
  EXPECT_TRUE(cache.qkv->bias.narrow(0, 16, 8).equal(mha->v_proj->bias));
  EXPECT_TRUE(at::allclose(cache.k.squeeze(2), mha->k_proj->forward(x).view({2, 2, 4}), 1e-12, 1e-14));
  // The weights changed after the first step: this decoding keeps the ones it started with.
  mha->k_proj->weight.add_(1.0);
  mha->forward_step(x, cache);
  EXPECT_TRUE(cache.qkv->weight.narrow(0, 8, 8).equal(mha->k_proj->weight - 1.0));
}

TEST(AttentionCross, PrecomputedKVEqualsDirectAndNaive) {
  at::manual_seed(10);
  auto mha = make_mha(MultiHeadAttentionOptions(12, 4));
  const auto memory = at::randn({2, 6, 12}, at::kDouble);
  const auto mask = lengths_mask({6, 2}, 6);
  const KV kv = mha->project_memory(memory);
  ASSERT_EQ(kv.k.sizes(), at::IntArrayRef({2, 4, 6, 3}));
  for (int64_t t : {1, 5}) {  // the same K/V serve queries of any length (decoder steps)
    const auto q = at::randn({2, t, 12}, at::kDouble);
    const auto cached = mha->attend(q, kv, mask);
    EXPECT_TRUE(cached.equal(mha->forward_cross(q, memory, mask)));
    const auto allowed = mask.unsqueeze(1).expand({2, t, 6});
    EXPECT_TRUE(at::allclose(cached, naive_attention(mha, q, memory, allowed, at::ones({2, t}, at::kBool)), 1e-10,
                             1e-12));
  }
}

TEST(AttentionDropout, OnlyInTrainingMode) {
  at::manual_seed(11);
  MultiHeadAttention mha(MultiHeadAttentionOptions(8, 2).dropout(0.5));
  const auto x = at::randn({2, 6, 8});
  mha->eval();
  EXPECT_TRUE(mha->forward(x).equal(mha->forward(x)));
  mha->train();
  EXPECT_FALSE(mha->forward(x).equal(mha->forward(x)));
}

// Expects std::invalid_argument whose message contains `needle`.
void expect_invalid(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(AttentionErrors, BadOptionsAndShapesThrow) {
  using O = MultiHeadAttentionOptions;
  expect_invalid([] { MultiHeadAttention(O(10, 3)); }, "d_model 10 and heads 3");
  expect_invalid([] { MultiHeadAttention(O(0, 1)); }, "d_model must be >= 1");
  expect_invalid([] { MultiHeadAttention(O(8, 0)); }, "heads must be >= 1");
  expect_invalid([] { MultiHeadAttention(O(8, 2).dropout(1.0)); }, "dropout");
  expect_invalid([] { MultiHeadAttention(O(8, 2).block_size(-1)); }, "block_size");

  MultiHeadAttention mha(O(8, 2));
  const auto x = at::randn({2, 5, 8});
  expect_invalid([&] { mha->forward(at::randn({5, 8})); }, "[5, 8]");
  expect_invalid([&] { mha->forward(at::randn({2, 5, 6})); }, "d_model = 8");
  expect_invalid([&] { mha->forward(x.to(at::kLong)); }, "floating point");
  expect_invalid([&] { mha->forward(x, at::ones({2, 4}, at::kBool)); }, "[2, 5], got [2, 4]");
  expect_invalid([&] { mha->forward(x, at::ones({2, 5})); }, "must be bool");
  expect_invalid([&] { mha->forward_causal(x, at::ones({5}, at::kBool)); }, "got [5]");
  KVCache cache;
  expect_invalid([&] { mha->forward_step(at::Tensor(), cache); }, "undefined");
  expect_invalid([&] { mha->forward_step(x, cache); }, "(b, 1, d_model)");
  mha->forward_step(x.narrow(1, 0, 1), cache);
  expect_invalid([&] { mha->forward_step(at::randn({3, 1, 8}), cache); }, "[3, 2, s, 4]");
  expect_invalid([&] { cache.reorder(at::tensor({0.0})); }, "int64");

  const auto memory = at::randn({2, 7, 8});
  const KV kv = mha->project_memory(memory);
  expect_invalid([&] { mha->project_memory(at::randn({2, 7})); }, "memory");
  expect_invalid([&] { mha->attend(at::randn({3, 4, 8}), kv); }, "[3, 2, s, 4]");
  expect_invalid([&] { mha->attend(x, KV{kv.k, kv.v.narrow(2, 0, 3)}); }, "got k [2, 2, 7, 4] and v [2, 2, 3, 4]");
  expect_invalid([&] { mha->attend(x, kv, at::ones({2, 5}, at::kBool)); }, "[2, 7], got [2, 5]");
  expect_invalid([&] { mha->forward_cross(at::randn({3, 4, 8}), memory); }, "same batch size");
}

}  // namespace
