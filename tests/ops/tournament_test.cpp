// Tests of the tournament (src/ops/tournament.cpp, src/ops/tournament_cpu.cpp): the fused CPU kernel
// against the batched ATen composite (the CUDA implementation), bit for bit. The operator built on
// them is compared with the independent naive reference in topk_test.cpp.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "ops/tournament.h"
#include "support/tournament_checks.h"

namespace {

using pyramidion::detail::Tournament;
using pyramidion_test::expect_identical;


TEST(Tournament, FusedCpuKernelEqualsBatchedCompositeBitForBit) {
  at::manual_seed(12);
  for (const auto dtype : {at::kFloat, at::kDouble}) {
    for (int64_t n : {1, 2, 5, 16, 37, 100, 257}) {
      for (int64_t k : {int64_t{1}, int64_t{2}, n / 3, n / 2, n - 1, n}) {
        if (k < 1 || k > n) continue;
        for (int mask_kind = 0; mask_kind < 3; ++mask_kind) {
          for (bool keep_order : {false, true}) {
            const int64_t b = 4;
            // Coarse scores force ties; mask: none, per-example lengths (one empty), scattered.
            auto scores = (at::floor(at::rand({b, n}, at::kDouble) * 9) / 9).to(dtype);
            at::Tensor mask = at::ones({b, n}, at::kBool);
            if (mask_kind == 1) mask = at::arange(n).unsqueeze(0) < at::tensor(std::vector<int64_t>{n, n / 2, 0, 1}).unsqueeze(1);
            if (mask_kind == 2) mask = at::rand({b, n}) < 0.7;
            scores = scores.masked_fill(mask.logical_not(), 0);
            SCOPED_TRACE(std::string(c10::toString(dtype)) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                         " mask=" + std::to_string(mask_kind) + " keep_order=" + std::to_string(keep_order));
            expect_identical(pyramidion::detail::run_tournament(scores, mask, k, std::log(20.0), keep_order),
                             pyramidion::detail::run_tournament_composite(scores, mask, k, std::log(20.0), keep_order));
          }
        }
      }
    }
  }
}

TEST(Tournament, FusedCpuScoreGradientEqualsBatchedCompositeBitForBit) {
  at::manual_seed(13);
  for (const auto dtype : {at::kFloat, at::kDouble}) {
    for (int64_t n : {1, 6, 37, 128}) {
      for (int64_t k : {int64_t{1}, n / 3, n / 2, n}) {
        if (k < 1) continue;
        for (bool masked : {false, true}) {
          const int64_t b = 3;
          const auto mask = masked ? at::rand({b, n}) < 0.7 : at::ones({b, n}, at::kBool);
          const auto scores = at::rand({b, n}, at::kDouble).to(dtype).masked_fill(mask.logical_not(), 0);
          const auto t = pyramidion::detail::run_tournament(scores, mask, k, std::log(20.0), masked);
          const auto dots = at::randn(t.leaf_index.sizes(), scores.options()) * (t.leaf_index >= 0);
          const auto grad_scores = at::randn({b, k}, scores.options());
          SCOPED_TRACE(std::string(c10::toString(dtype)) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
          EXPECT_TRUE(pyramidion::detail::scores_grad(t, dots, grad_scores, std::log(20.0))
                          .equal(pyramidion::detail::scores_grad_composite(t, dots, grad_scores, std::log(20.0))));
        }
      }
    }
  }
}

TEST(Tournament, RoundSizesHalveDownToKWithAtLeastOneRound) {
  EXPECT_EQ(pyramidion::detail::round_sizes(8192, 512), (std::vector<int64_t>{8192, 4096, 2048, 1024, 512}));
  EXPECT_EQ(pyramidion::detail::round_sizes(10, 3), (std::vector<int64_t>{10, 5, 3}));
  EXPECT_EQ(pyramidion::detail::round_sizes(7, 7), (std::vector<int64_t>{7, 7}));
  EXPECT_EQ(pyramidion::detail::round_sizes(1, 1), (std::vector<int64_t>{1, 1}));
}

}  // namespace
