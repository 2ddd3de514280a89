// Test-only: the comparison of two tournaments (src/ops/tournament.h) field by field, bit for bit,
// and the masks and output patterns, shared by the tournament tests of the CPU kernel, of the team
// programs and of the emulated CUDA kernels.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "ops/tournament.h"

namespace pyramidion_test {

inline void expect_identical(const pyramidion::detail::Tournament& a, const pyramidion::detail::Tournament& b) {
  ASSERT_EQ(a.rounds, b.rounds);
  EXPECT_TRUE(a.leaf_index.equal(b.leaf_index));
  EXPECT_TRUE(a.leaf_coef.equal(b.leaf_coef));
  EXPECT_TRUE(a.out_mask.equal(b.out_mask));
  EXPECT_TRUE(a.winner.equal(b.winner));
  EXPECT_TRUE(a.input_leaf.equal(b.input_leaf));
  EXPECT_TRUE(a.input_row.equal(b.input_row));
  for (int64_t h = 0; h < a.rounds; ++h) EXPECT_TRUE(a.weight[h].equal(b.weight[h])) << "weight level " << h + 1;
  for (int64_t h = 0; h <= a.rounds; ++h) EXPECT_TRUE(a.score[h].equal(b.score[h])) << "score level " << h;
}

/// A mask (b, n) of kind 0: all real; 1: lengths n, n/2, 0 (all padding), 1, ... by example;
/// 2: scattered (each position real with probability 0.6).
inline at::Tensor make_mask(int kind, int64_t b, int64_t n) {
  if (kind == 0) return at::ones({b, n}, at::kBool);
  if (kind == 1) {
    std::vector<int64_t> lengths;
    for (int64_t e = 0; e < b; ++e) lengths.push_back(std::vector<int64_t>{n, n / 2, 0, 1}[e % 4]);
    return at::arange(n).unsqueeze(0) < at::tensor(lengths).unsqueeze(1);
  }
  return at::rand({b, n}) < 0.6;
}

/// Every byte of a tournament's tensors set to `pattern`: an element that no kernel writes then
/// differs between two patterns.
inline void fill_tournament(pyramidion::detail::Tournament& t, unsigned char pattern) {
  for (const auto& x : pyramidion::detail::pack_tournament(t)) std::memset(x.data_ptr(), pattern, x.nbytes());
}

}  // namespace pyramidion_test
