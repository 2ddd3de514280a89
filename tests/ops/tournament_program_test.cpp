// Tests of src/ops/tournament_program.h, the team programs that the CUDA kernels run with a thread
// block as the team: here a team of one thread runs the same code on the CPU, and its results
// must equal the CPU kernels' (tournament_cpu.cpp, tree_backward_cpu.cpp) bit for bit, over
// shapes, k, masks (none, lengths, scattered, an all-padding example), keep_order, ties, scores
// whose powers 20^s overflow, and signed zeros. Teams of real threads (tests/support/thread_team.h:
// 3, 32, 33, 128 and 256) must give the team of one's results bit for bit. The bitonic sort is
// checked against std::stable_sort.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ops/topk_ops.h"
#include "ops/tournament.h"
#include "support/tournament_checks.h"
#include "ops/tournament_program.h"
#include "support/thread_team.h"

namespace {

namespace kernels = pyramidion::kernels;
using pyramidion::detail::Tournament;
using pyramidion_test::expect_identical;
using pyramidion_test::make_mask;

// Runs body(team) with a team of `team_size`: SerialTeam for 1, else that many threads.
template <class Body>
void with_team(int64_t team_size, Body body) {
  if (team_size == 1) {
    kernels::SerialTeam team;
    body(team);
  } else {
    pyramidion_test::ThreadTeam::run(team_size, [&](pyramidion_test::ThreadTeam::Member& team) { body(team); });
  }
}

// The tournament of every example by the team program, with a team of `team_size` (each example
// with its own scratch, as each CUDA block has), every output's bytes set to `pattern` first (an
// element that nobody writes then differs between two patterns). sort_apart: the sort's pairs in a
// buffer of their own, as the CUDA kernel places them in shared memory; else in the scratch.
Tournament program_tournament(const at::Tensor& scores, const at::Tensor& mask, int64_t k, double log_base,
                              bool keep_order, int64_t team_size = 1, unsigned char pattern = 0,
                              bool sort_apart = false) {
  const int64_t b = scores.size(0), n = scores.size(1);
  Tournament t = pyramidion::detail::empty_tournament(b, n, k, scores.options());
  pyramidion_test::fill_tournament(t, pattern);
  const auto shape = kernels::tournament_shape(n, k);
  EXPECT_EQ(shape.rounds, t.rounds);
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "program_tournament", [&] {
    const int64_t bytes = kernels::tournament_scratch_bytes<scalar_t>(shape, !sort_apart);
    auto scratch = at::empty({b, bytes}, at::kByte);  // each row 16-byte aligned: bytes is a multiple of 16
    EXPECT_EQ(bytes % 16, 0);
    const int64_t P = kernels::pow2_at_least(n);
    std::vector<kernels::UnsignedOf<scalar_t>> key(sort_apart ? P : 0);
    std::vector<int32_t> pos(sort_apart ? P : 0);
    const auto out = pyramidion::detail::program_outputs<scalar_t>(t);
    with_team(team_size, [&](auto& team) {
      for (int64_t e = 0; e < b; ++e) {
        auto ws = kernels::tournament_scratch_at<scalar_t>(scratch.data_ptr<uint8_t>() + e * bytes, shape, !sort_apart);
        if (sort_apart) {
          ws.key = key.data();
          ws.pos = pos.data();
        }
        kernels::tournament_example(team, e, scores.data_ptr<scalar_t>(), mask.data_ptr<bool>(), shape,
                                    static_cast<scalar_t>(log_base), keep_order, ws, out);
      }
    });
  });
  return t;
}

// The score gradient by the tree program (one tree at a time, the team's q, rho and sigma reused
// from tree to tree, which needs no barrier between trees: the next tree's first writes are of q
// at the leaves, which the previous tree's last step does not read), then leaves to inputs.
at::Tensor program_scores_grad(const Tournament& t, const at::Tensor& dots, const at::Tensor& grad_scores,
                               double log_base, int64_t team_size = 1) {
  const int64_t b = dots.size(0), k = dots.size(1), L = dots.size(2), n = t.input_leaf.size(1);
  auto leaf_sigma = at::empty({b, k * L}, dots.options());
  AT_DISPATCH_FLOATING_TYPES(dots.scalar_type(), "program_scores_grad", [&] {
    std::vector<const scalar_t*> weight, score;
    for (const auto& w : t.weight) weight.push_back(w.data_ptr<scalar_t>());
    for (const auto& s : t.score) score.push_back(s.data_ptr<scalar_t>());
    std::vector<scalar_t> q(2 * L), rho(2 * L), sigma(2 * L);
    with_team(team_size, [&](auto& team) {
      for (int64_t tree = 0; tree < b * k; ++tree) {
        kernels::tree_backward_tree(team, tree, t.rounds, weight.data(), score.data(), dots.data_ptr<scalar_t>(),
                                    grad_scores.data_ptr<scalar_t>(), static_cast<scalar_t>(log_base), q.data(),
                                    rho.data(), sigma.data(), leaf_sigma.data_ptr<scalar_t>());
      }
    });
  });
  const auto g = leaf_sigma.gather(1, t.input_leaf.clamp_min(0));  // (b, n)
  return g.masked_fill(t.input_leaf < 0, 0).view({b, n});
}


// Scores of kind: 0 uniform, 1 coarse (ties), 2 large (20^s overflows float32 and float64 for
// some), 3 signed zeros and ties around them.
at::Tensor make_scores(int kind, int64_t b, int64_t n, at::ScalarType dtype) {
  const auto u = at::rand({b, n}, at::kDouble);
  switch (kind) {
    case 1: return (at::floor(u * 5) / 5).to(dtype);
    case 2: return (u * 300 - 20).to(dtype);
    case 3: return at::where(u < 0.5, at::full_like(u, -0.0), at::floor(u * 3) / 3 - 0.5).to(dtype);
    default: return u.to(dtype);
  }
}

TEST(TournamentProgram, OneThreadTeamEqualsTheCpuKernelBitForBit) {
  at::manual_seed(21);
  const double log_base = std::log(20.0);
  int cases = 0;
  for (const auto dtype : {at::kFloat, at::kDouble}) {
    for (int64_t n : {1, 2, 3, 5, 8, 17, 64, 100, 257}) {
      for (int64_t k : {int64_t{1}, int64_t{2}, n / 3, n / 2, n - 1, n}) {
        if (k < 1 || k > n) continue;
        for (int mask_kind = 0; mask_kind < 3; ++mask_kind) {
          for (int score_kind = 0; score_kind < 4; ++score_kind) {
            for (bool keep_order : {false, true}) {
              const int64_t b = 4;
              const auto mask = make_mask(mask_kind, b, n);
              const auto scores = make_scores(score_kind, b, n, dtype).masked_fill(mask.logical_not(), 0);
              SCOPED_TRACE(std::string(c10::toString(dtype)) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                           " mask=" + std::to_string(mask_kind) + " scores=" + std::to_string(score_kind) +
                           " keep_order=" + std::to_string(keep_order));
              const auto cpu = pyramidion::detail::run_tournament(scores, mask, k, log_base, keep_order);
              const auto program = program_tournament(scores, mask, k, log_base, keep_order);
              expect_identical(program, cpu);
              const auto dots = at::randn(cpu.leaf_index.sizes(), scores.options()) * (cpu.leaf_index >= 0);
              const auto grad_scores = at::randn({b, k}, scores.options());
              EXPECT_TRUE(program_scores_grad(cpu, dots, grad_scores, log_base)
                              .equal(pyramidion::detail::scores_grad(cpu, dots, grad_scores, log_base)));
              ++cases;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 1000);
}

// Teams of real threads give the team of one's tournament and gradient bit for bit: the programs'
// barriers are where they must be and their results do not depend on the team's size. Teams of
// 3 and 33 leave ranks with unequal shares of every striding loop; 128 and 256 exceed some lists'
// lengths. A barrier of 128 threads on 2 cores costs about 3 ms, so the large teams run few shapes.
void expect_team_equals_one(int64_t team_size, at::ScalarType dtype, int64_t b, int64_t n, int64_t k, int mask_kind,
                            bool keep_order) {
  const double log_base = std::log(20.0);
  const auto mask = make_mask(mask_kind, b, n);
  const auto scores = make_scores(1, b, n, dtype).masked_fill(mask.logical_not(), 0);  // ties
  SCOPED_TRACE("team " + std::to_string(team_size) + " " + std::string(c10::toString(dtype)) + " n=" +
               std::to_string(n) + " k=" + std::to_string(k) + " mask=" + std::to_string(mask_kind) +
               " keep_order=" + std::to_string(keep_order));
  const auto one = program_tournament(scores, mask, k, log_base, keep_order);
  // The other byte pattern and the other sort placement, each in one of two runs.
  expect_identical(program_tournament(scores, mask, k, log_base, keep_order, team_size, 0xFF, false), one);
  expect_identical(program_tournament(scores, mask, k, log_base, keep_order, team_size, 0xA5, true), one);
  const auto dots = at::randn(one.leaf_index.sizes(), scores.options()) * (one.leaf_index >= 0);
  const auto grad_scores = at::randn({b, k}, scores.options());
  EXPECT_TRUE(program_scores_grad(one, dots, grad_scores, log_base, team_size)
                  .equal(program_scores_grad(one, dots, grad_scores, log_base)));
}

TEST(TournamentProgram, ThreadTeamsEqualTheTeamOfOneBitForBit) {
  at::manual_seed(24);
  int cases = 0;
  for (const int64_t team_size : {3, 32, 33}) {
    for (const auto dtype : {at::kFloat, at::kDouble}) {
      for (int64_t n : {1, 3, 17, 100}) {
        for (int64_t k : {int64_t{1}, n / 3, n - 1, n}) {
          if (k < 1 || k > n) continue;
          for (int mask_kind = 0; mask_kind < 3; ++mask_kind) {
            expect_team_equals_one(team_size, dtype, 2, n, k, mask_kind, (n + k + mask_kind) % 2 == 0);
            ++cases;
          }
        }
      }
    }
  }
  for (const int64_t team_size : {128, 256})
    for (const int64_t k : {85, 256}) {
      expect_team_equals_one(team_size, at::kFloat, 1, 257, k, 0, k == 85);
      ++cases;
    }
  EXPECT_GT(cases, 100);
}

// The paper's size, one example: n = 8192 inputs to k = 512 in 4 rounds.
TEST(TournamentProgram, PaperSizeEqualsTheCpuKernel) {
  at::manual_seed(22);
  const auto scores = at::rand({2, 8192});
  const auto mask = at::ones({2, 8192}, at::kBool);
  for (bool keep_order : {false, true}) {
    const auto cpu = pyramidion::detail::run_tournament(scores, mask, 512, std::log(20.0), keep_order);
    ASSERT_EQ(cpu.rounds, 4);
    expect_identical(program_tournament(scores, mask, 512, std::log(20.0), keep_order), cpu);
  }
}

// A real score that is not finite poisons its example (NaN coefficients, weights and scores)
// and leaves the others as the CPU kernel makes them.
TEST(TournamentProgram, ANonFiniteRealScorePoisonsOnlyItsExample) {
  at::manual_seed(23);
  for (const double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
    auto scores = at::rand({3, 40});
    const auto mask = at::ones({3, 40}, at::kBool);
    const auto clean = scores.clone();
    scores[1][7] = bad;
    const auto program = program_tournament(scores, mask, 6, std::log(20.0), true);
    EXPECT_TRUE(program.leaf_coef[1].isnan().all().item<bool>()) << bad;
    for (int64_t h = 0; h <= program.rounds; ++h) EXPECT_TRUE(program.score[h][1].isnan().all().item<bool>());
    for (int64_t h = 0; h < program.rounds; ++h) EXPECT_TRUE(program.weight[h][1].isnan().all().item<bool>());
    const auto cpu = pyramidion::detail::run_tournament(clean, mask, 6, std::log(20.0), true);
    for (const int64_t e : {0, 2}) {
      EXPECT_TRUE(program.leaf_coef[e].equal(cpu.leaf_coef[e]));
      EXPECT_TRUE(program.leaf_index[e].equal(cpu.leaf_index[e]));
      EXPECT_TRUE(program.winner[e].equal(cpu.winner[e]));
    }
  }
  // Non-finite scores of padding are never read: nothing is poisoned.
  auto scores = at::rand({1, 10});
  auto mask = at::ones({1, 10}, at::kBool);
  mask[0][3] = false;
  scores[0][3] = std::nan("");
  const auto program = program_tournament(scores, mask, 2, std::log(20.0), false);
  EXPECT_FALSE(program.leaf_coef.isnan().any().item<bool>());
}

// The sort of the team programs: ascending by (key, position), which for keys descending_image(v)
// is the stable descending order of v.
TEST(TournamentProgram, BitonicSortIsTheStableSort) {
  std::mt19937 rng(5);
  kernels::SerialTeam team;
  for (int64_t m : {1, 2, 3, 7, 16, 100, 1000}) {
    const int64_t P = kernels::pow2_at_least(m);
    std::vector<float> v(m);
    std::uniform_int_distribution<int> coarse(-3, 3);
    for (auto& x : v) x = static_cast<float>(coarse(rng)) / 2;  // many ties, with -0 and +0
    if (m > 2) v[1] = -0.0f;
    std::vector<uint32_t> key(P, ~0u);
    std::vector<int32_t> pos(P);
    for (int64_t i = 0; i < P; ++i) {
      if (i < m) key[i] = kernels::descending_image(v[i]);
      pos[i] = static_cast<int32_t>(i);
    }
    kernels::bitonic_sort(team, key.data(), pos.data(), P);
    std::vector<int32_t> expected(m);
    std::iota(expected.begin(), expected.end(), 0);
    std::stable_sort(expected.begin(), expected.end(), [&](int32_t a, int32_t b) { return v[a] > v[b]; });
    EXPECT_EQ(std::vector<int32_t>(pos.begin(), pos.begin() + m), expected) << "m = " << m;
  }
}

TEST(TournamentProgram, ShapeFollowsTheRoundSizes) {
  for (const auto [n, k] : {std::pair<int64_t, int64_t>{8192, 512}, {10, 3}, {7, 7}, {1, 1}, {1000, 1}}) {
    const auto s = kernels::tournament_shape(n, k);
    const auto sizes = pyramidion::detail::round_sizes(n, k);
    ASSERT_EQ(s.rounds + 1, static_cast<int64_t>(sizes.size()));
    int64_t records = 0;
    for (int64_t r = 0; r <= s.rounds; ++r) {
      EXPECT_EQ(s.sizes[r], sizes[r]);
      EXPECT_EQ(s.record[r], records);
      if (r < s.rounds) records += sizes[r + 1];
    }
    EXPECT_EQ(s.leaves, int64_t{1} << s.rounds);
  }
}

}  // namespace
