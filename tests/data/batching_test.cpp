// Token-budget batching and collation (include/pyramidion/batching.h).
#include <pyramidion/batching.h>

#include "support/model_fixtures.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

namespace {

using pyramidion::BatchingOptions;
using pyramidion::TokenizedCorpus;
using pyramidion_test::error_of;

// n examples with random lengths: sources 1..max_source, targets 1..max_target, ids 3 + (i % 50).
TokenizedCorpus random_corpus(int64_t n, int64_t max_source, int64_t max_target, uint32_t seed) {
  std::mt19937 rng(seed);
  TokenizedCorpus corpus;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> s(1 + rng() % max_source), t(1 + rng() % max_target);
    for (size_t j = 0; j < s.size(); ++j) s[j] = 3 + static_cast<int64_t>((i + j) % 50);
    for (size_t j = 0; j < t.size(); ++j) t[j] = 3 + static_cast<int64_t>((i * 7 + j) % 50);
    corpus.add("ex" + std::to_string(i), s, t);
  }
  return corpus;
}

TEST(Batching, EveryExampleOncePerEpochWithinTheBudget) {
  const auto corpus = random_corpus(500, 60, 20, 1);
  for (const int64_t budget : {81, 200, 1000}) {
    for (const int64_t bucket : {1, 16, 1000}) {
      const auto batches = pyramidion::make_batches(corpus, BatchingOptions().max_tokens(budget).bucket_size(bucket), 3);
      std::vector<int> seen(500, 0);
      for (const auto& batch : batches) {
        ASSERT_FALSE(batch.empty());
        int64_t n = 0, t = 0;
        for (const int64_t i : batch) {
          ++seen[static_cast<size_t>(i)];
          n = std::max(n, corpus.source_length(i));
          t = std::max(t, corpus.target_length(i) + 1);
        }
        if (batch.size() > 1) EXPECT_LE(static_cast<int64_t>(batch.size()) * (n + t), budget);
      }
      for (const int count : seen) ASSERT_EQ(count, 1) << "budget " << budget << " bucket " << bucket;
    }
  }
}

TEST(Batching, OrderDependsOnSeedAndEpochOnly) {
  const auto corpus = random_corpus(300, 60, 20, 2);
  auto options = BatchingOptions().max_tokens(400).bucket_size(50).seed(9);
  EXPECT_EQ(pyramidion::make_batches(corpus, options, 4), pyramidion::make_batches(corpus, options, 4));
  EXPECT_NE(pyramidion::make_batches(corpus, options, 4), pyramidion::make_batches(corpus, options, 5));
  auto other_seed = options;
  other_seed.seed(10);
  EXPECT_NE(pyramidion::make_batches(corpus, options, 4), pyramidion::make_batches(corpus, other_seed, 4));
}

// Summarization's batches (shuffle off, one bucket, a fixed decoder budget per example): longest
// first, in the corpus' order among equals, each batch the largest that fits, independent of the
// seed and the epoch.
TEST(Batching, UnshuffledBatchesAreLongestFirstUnderAFixedTargetBudget) {
  const auto corpus = random_corpus(40, 60, 20, 5);
  const auto options = BatchingOptions().max_tokens(300).bucket_size(0).shuffle(false).target_positions(25);
  const auto batches = pyramidion::make_batches(corpus, options, 0);
  EXPECT_EQ(batches, pyramidion::make_batches(corpus, BatchingOptions(options).seed(99), 7));
  std::vector<int64_t> order(40);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return corpus.source_length(a) != corpus.source_length(b) ? corpus.source_length(a) > corpus.source_length(b)
                                                              : corpus.target_length(a) > corpus.target_length(b);
  });
  std::vector<int64_t> flat;
  size_t at = 0;
  for (const auto& batch : batches) {
    flat.insert(flat.end(), batch.begin(), batch.end());
    // The largest count the budget allows for the batch's longest (first) source: b * (n + 25).
    const int64_t n = corpus.source_length(batch.front());
    const auto fit = static_cast<size_t>(std::max<int64_t>(1, 300 / (n + 25)));
    EXPECT_EQ(batch.size(), std::min(fit, order.size() - at));
    at += batch.size();
  }
  EXPECT_EQ(flat, order);
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              pyramidion::make_batches(corpus, BatchingOptions().target_positions(-1), 0);
            }).find("target_positions = -1"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::make_batches(corpus, BatchingOptions().bucket_size(-1), 0); })
                .find("bucket_size = -1"),
            std::string::npos);
}

TEST(Batching, BucketingReducesPadding) {
  const auto corpus = random_corpus(1000, 200, 40, 3);
  // Padded source tokens / real source tokens of a list of batches.
  const auto padding = [&](const std::vector<std::vector<int64_t>>& batches) {
    int64_t total = 0;
    for (const auto& batch : batches) {
      int64_t n = 0;
      for (const int64_t i : batch) n = std::max(n, corpus.source_length(i));
      total += n * static_cast<int64_t>(batch.size());
    }
    return static_cast<double>(total) / static_cast<double>(corpus.source_tokens());
  };
  const auto bucketed = pyramidion::make_batches(corpus, BatchingOptions().max_tokens(2000).bucket_size(1000), 0);
  // The same batch sizes filled in a random order: what batching without sorting would pad.
  std::vector<int64_t> order(1000);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(4));
  std::vector<std::vector<int64_t>> unsorted;
  size_t next = 0;
  for (const auto& batch : bucketed) {
    unsorted.emplace_back(order.begin() + next, order.begin() + next + batch.size());
    next += batch.size();
  }
  EXPECT_LT(padding(bucketed), 1.1);
  EXPECT_GT(padding(unsorted), 1.3);
  // A bucket of one example: batches of one, no padding at all.
  const auto single = pyramidion::make_batches(corpus, BatchingOptions().max_tokens(2000).bucket_size(1), 0);
  EXPECT_EQ(single.size(), 1000u);
  EXPECT_DOUBLE_EQ(padding(single), 1.0);
}

TEST(Batching, CollateShiftsTargetsAndPads) {
  auto config = pyramidion_test::preset("tiny-deep-pyramidion");
  TokenizedCorpus corpus;
  corpus.add("a", {5, 6, 7}, {8, 9});
  corpus.add("b", {10}, {11, 12, 13});
  const auto batch = pyramidion::collate(corpus, {1, 0}, config);
  // Independent expectation, written out by hand: row 0 is example "b", row 1 example "a".
  const auto src = at::tensor(std::vector<int64_t>{10, 0, 0, 5, 6, 7}).view({2, 3});
  const auto mask = at::tensor(std::vector<int64_t>{1, 0, 0, 1, 1, 1}).view({2, 3}).to(at::kBool);
  const auto in = at::tensor(std::vector<int64_t>{1, 11, 12, 13, 1, 8, 9, 0}).view({2, 4});
  const auto out = at::tensor(std::vector<int64_t>{11, 12, 13, 2, 8, 9, 2, 0}).view({2, 4});
  EXPECT_TRUE(batch.src_ids.equal(src));
  EXPECT_TRUE(batch.src_mask.equal(mask));
  EXPECT_TRUE(batch.tgt_in.equal(in));
  EXPECT_TRUE(batch.tgt_out.equal(out));
  EXPECT_EQ(batch.source_tokens, 4);
  EXPECT_EQ(batch.target_tokens, 7);
  EXPECT_EQ(batch.examples, (std::vector<int64_t>{1, 0}));
}

TEST(Batching, CollateEndsEverySourceWithEosWhenTheModelAsks) {
  // PEGASUS (ModelConfig::source_eos), whose decoder also starts from pad (bos_id = pad_id = 0).
  auto config = pyramidion_test::preset("tiny-deep-pyramidion");
  config.source_eos = true;
  config.bos_id = 0;
  TokenizedCorpus corpus;
  corpus.add("a", {5, 6, 7}, {8, 9});
  corpus.add("b", {10}, {11, 12, 13});
  const auto batch = pyramidion::collate(corpus, {1, 0}, config);
  const auto src = at::tensor(std::vector<int64_t>{10, 2, 0, 0, 5, 6, 7, 2}).view({2, 4});
  const auto mask = at::tensor(std::vector<int64_t>{1, 1, 0, 0, 1, 1, 1, 1}).view({2, 4}).to(at::kBool);
  const auto in = at::tensor(std::vector<int64_t>{0, 11, 12, 13, 0, 8, 9, 0}).view({2, 4});
  EXPECT_TRUE(batch.src_ids.equal(src));
  EXPECT_TRUE(batch.src_mask.equal(mask));
  EXPECT_TRUE(batch.tgt_in.equal(in));
  EXPECT_EQ(batch.source_tokens, 6);
  // The eos counts against max_source_length (64): 63 tokens fit, 64 do not.
  corpus.add("fits", std::vector<int64_t>(63, 5), {6});
  corpus.add("over", std::vector<int64_t>(64, 5), {6});
  EXPECT_EQ(pyramidion::collate(corpus, {2}, config).src_ids.size(1), 64);
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::collate(corpus, {3}, config); })
                .find("'over' has 65 source tokens and 2 target positions (eos included)"),
            std::string::npos);
}

TEST(Batching, ErrorsNameTheProblem) {
  auto config = pyramidion_test::preset("tiny-deep-pyramidion");  // source <= 64, target <= 32
  TokenizedCorpus corpus;
  corpus.add("long", std::vector<int64_t>(65, 5), {6});
  corpus.add("ok", {5}, {6});
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::collate(corpus, {0}, config); }).find("'long' has 65 source"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::collate(corpus, {7}, config); }).find("index 7"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::collate(corpus, {}, config); }).find("no examples"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              pyramidion::make_batches(corpus, BatchingOptions().max_tokens(0), 0);
            }).find("max_tokens = 0"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] { corpus.add("neg", {-1}, {5}); }).find("-1"), std::string::npos);
}

}  // namespace
