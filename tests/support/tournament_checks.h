// Test-only: the comparison of two tournaments (src/ops/tournament.h) field by field, bit for bit,
// shared by the tournament tests of the CPU kernel and of the team programs.
#pragma once

#include <gtest/gtest.h>

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

}  // namespace pyramidion_test
