// Tests of the private ranking operator sh_rank (src/ops/rank_cpu.cpp): a stable descending argsort.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include "ops/topk_ops.h"

namespace {

// Independent reference: std::stable_sort of positions by key, descending (-0 and +0 tie).
at::Tensor reference_rank(const at::Tensor& key) {
  const auto k = key.to(at::kDouble).contiguous();
  const int64_t b = k.size(0), m = k.size(1);
  auto out = at::empty({b, m}, at::kLong);
  for (int64_t row = 0; row < b; ++row) {
    const double* kp = k.data_ptr<double>() + row * m;
    std::vector<int64_t> idx(m);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t i, int64_t j) { return kp[i] > kp[j]; });
    std::copy(idx.begin(), idx.end(), out.data_ptr<int64_t>() + row * m);
  }
  return out;
}

TEST(Rank, MatchesStableDescendingSortWithTiesInfinitiesAndSignedZeros) {
  at::manual_seed(5);
  const double inf = std::numeric_limits<double>::infinity();
  for (const auto dtype : {at::kFloat, at::kDouble}) {
    for (int64_t m : {1, 2, 3, 17, 256, 1000, 8192}) {
      // Coarse values force ties; sprinkle -inf (padding), +inf, negatives, -0.0 and tiny values.
      auto key = at::floor(at::rand({5, m}, at::kDouble) * 7) / 7 - 0.3;
      key = at::where(at::rand({5, m}) < 0.1, at::full({}, -inf, at::kDouble), key);
      key = at::where(at::rand({5, m}) < 0.02, at::full({}, inf, at::kDouble), key);
      key = at::where(at::rand({5, m}) < 0.05, at::full({}, -0.0, at::kDouble), key);
      key = at::where(at::rand({5, m}) < 0.05, at::full({}, 1e-30, at::kDouble), key);
      key = key.to(dtype);
      SCOPED_TRACE(std::string(c10::toString(dtype)) + " m=" + std::to_string(m));
      EXPECT_TRUE(pyramidion::detail::sh_rank(key).equal(reference_rank(key)));
    }
  }
}

TEST(Rank, RandomKeysMatchLibTorchStableSort) {
  at::manual_seed(6);
  const auto key = at::randn({16, 4096});
  EXPECT_TRUE(pyramidion::detail::sh_rank(key).equal(std::get<1>(key.sort(true, 1, true))));
  const auto empty = at::empty({0, 7});
  EXPECT_EQ(pyramidion::detail::sh_rank(empty).sizes(), empty.sizes());
}

}  // namespace
