// The successive-halving tournament on the scores (see tournament.h). Everything is batched:
// one sort and a few gathers per round, then one gather per tree level; no loop over examples.
//
// Legend: b batch, n inputs, m candidates this round, m2 next round, k outputs, c byes, p pairs,
// t nodes per output tree at a level.
#include "ops/tournament.h"

#include <ATen/ATen.h>

#include <limits>

#include "ops/topk_ops.h"

namespace pyramidion {
namespace detail {
namespace {

// One round's record: for each new candidate, where its two sides stood in the previous list.
struct Round {
  at::Tensor side_a;  // (b, m2) int64 better-ranked side (or the bye itself)
  at::Tensor side_b;  // (b, m2) int64 worse-ranked side; -1 for a bye
  at::Tensor weight;  // (b, m2) w_a
  at::Tensor score;   // (b, m2) blended score; 0 where no real input
  at::Tensor valid;   // (b, m2) bool
  at::Tensor real;    // (b, 1) int64 real candidates of each example in the new list
};

// Gathers src (b, m) at pos (b, k, t), -1 in pos giving `fill`.
at::Tensor gather_nodes(const at::Tensor& src, const at::Tensor& pos, const at::Scalar& fill) {
  const auto b = pos.size(0);
  const auto flat = pos.reshape({b, pos.size(1) * pos.size(2)});  // (b, k*t); no -1: b may be 0
  auto out = src.gather(1, flat.clamp_min(0)).view_as(pos);  // (b, k, t)
  return out.masked_fill(pos < 0, fill);
}

// Interleaves the a and b children of each node: (b, k, t) x 2 -> (b, k, 2t).
at::Tensor interleave(const at::Tensor& a, const at::Tensor& b) {
  return at::stack({a, b}, -1).flatten(-2);
}

// One round for the whole batch. Each example plays only while it has more than k real
// candidates, so its result does not depend on how far the batch was padded: examples with
// `real` <= k candidates pass them through as byes in their current order, real before padding.
// Slots of the new list after an example's real candidates take its first padding candidates.
Round play_round(const at::Tensor& score, const at::Tensor& valid, const at::Tensor& real, int64_t k, int64_t m2,
                 double log_base) {
  const int64_t b = score.size(0);
  const auto plays = real > k;                                                     // (b, 1)
  // Players rank by score; the others only move real candidates ahead of padding. Stable: equal
  // keys (and all padding) keep their current order, so the result is deterministic.
  const auto key = at::where(plays, score, at::zeros_like(score))
                       .masked_fill(valid.logical_not(), -std::numeric_limits<double>::infinity());  // (b, m)
  const auto perm = sh_rank(key);                                                                   // (b, m)
  Round r;
  r.real = at::where(plays, at::floor_divide(real + 1, 2).clamp_min(k), real);    // (b, 1) m2 of each example
  const auto byes = 2 * r.real - real;                                             // (b, 1) c
  const auto slot = at::arange(m2, real.options()).unsqueeze(0);                   // (1, m2)
  const auto paired = (slot >= byes).logical_and(slot < r.real);                   // (b, m2)
  const auto padding = slot >= r.real;                                             // (b, m2)
  // Sorted positions: byes and pair heads stand where they are (slot i), the pair of head c+j
  // is the (real-1-j)-th, padding slots take the padding that follows the real candidates.
  const auto a_sorted = at::where(padding, real + slot - r.real, slot);            // (b, m2)
  const auto b_sorted = at::where(paired, real - 1 - slot + byes, 0);              // (b, m2)
  r.side_a = perm.gather(1, a_sorted);                                             // (b, m2)
  r.side_b = perm.gather(1, b_sorted).masked_fill(paired.logical_not(), -1);       // (b, m2), -1: no pair
  const auto b_idx = r.side_b.clamp_min(0);
  const auto s_pair = at::stack({score.gather(1, r.side_a), score.gather(1, b_idx)}, -1);  // (b, m2, 2)
  const auto v_pair = at::stack({valid.gather(1, r.side_a), valid.gather(1, b_idx).logical_and(paired)},
                                -1);                                                        // (b, m2, 2)
  auto [w, s, v] = sh_pair_blend(s_pair.view({-1, 2}), v_pair.view({-1, 2}), log_base);
  r.weight = w.view({b, m2});
  r.score = s.view({b, m2});
  r.valid = v.view({b, m2});
  return r;
}

}  // namespace

at::Tensor keep_order_permutation(const at::Tensor& position, const at::Tensor& mask, int64_t n) {
  const auto key = position + mask.logical_not().to(at::kLong) * n;  // (b, k) invalid after valid
  return std::get<1>(key.sort(/*stable=*/true, /*dim=*/1, /*descending=*/false));
}

std::vector<int64_t> round_sizes(int64_t n, int64_t k) {
  std::vector<int64_t> sizes{n};
  do sizes.push_back(std::max(k, (sizes.back() + 1) / 2));
  while (sizes.back() > k);
  return sizes;
}

std::vector<at::Tensor> pack_tournament(const Tournament& t) {
  std::vector<at::Tensor> packed{t.leaf_index, t.leaf_coef, t.out_mask, t.winner, t.input_leaf, t.input_row};
  packed.insert(packed.end(), t.weight.begin(), t.weight.end());
  packed.insert(packed.end(), t.score.begin(), t.score.end());
  return packed;
}

Tournament unpack_tournament(const std::vector<at::Tensor>& packed) {
  Tournament t;
  t.rounds = (static_cast<int64_t>(packed.size()) - 7) / 2;
  t.leaf_index = packed[0];
  t.leaf_coef = packed[1];
  t.out_mask = packed[2];
  t.winner = packed[3];
  t.input_leaf = packed[4];
  t.input_row = packed[5];
  t.weight.assign(packed.begin() + 6, packed.begin() + 6 + t.rounds);
  t.score.assign(packed.begin() + 6 + t.rounds, packed.end());
  return t;
}

Tournament empty_tournament(int64_t b, int64_t n, int64_t k, const at::TensorOptions& score_options) {
  const auto sizes = round_sizes(n, k);
  const int64_t R = static_cast<int64_t>(sizes.size()) - 1, L = int64_t{1} << R;
  const auto long_opts = score_options.dtype(at::kLong);
  Tournament t;
  t.rounds = R;
  t.leaf_index = at::empty({b, k, L}, long_opts);
  t.leaf_coef = at::empty({b, k, L}, score_options);
  for (int64_t h = 1; h <= R; ++h) t.weight.push_back(at::empty({b, k, L >> h}, score_options));
  for (int64_t h = 0; h <= R; ++h) t.score.push_back(at::empty({b, k, L >> h}, score_options));
  t.out_mask = at::empty({b, k}, score_options.dtype(at::kBool));
  t.winner = at::empty({b, k}, long_opts);
  t.input_leaf = at::empty({b, n}, long_opts);
  t.input_row = at::empty({b, n}, long_opts);
  return t;
}

Tournament run_tournament(const at::Tensor& scores, const at::Tensor& mask, int64_t k, double log_base,
                          bool keep_order) {
  return unpack_tournament(sh_tournament(scores, mask, k, log_base, keep_order));
}

Tournament run_tournament_composite(const at::Tensor& scores, const at::Tensor& mask, int64_t k,
                                    double log_base, bool keep_order) {
  const int64_t b = scores.size(0), n = scores.size(1);
  std::vector<Round> rounds;
  at::Tensor score = scores, valid = mask;         // (b, m)
  at::Tensor real = mask.sum(1, /*keepdim=*/true);  // (b, 1) int64
  const auto sizes = round_sizes(n, k);
  for (size_t r = 1; r < sizes.size(); ++r) {
    rounds.push_back(play_round(score, valid, real, k, sizes[r], log_base));
    score = rounds.back().score;
    valid = rounds.back().valid;
    real = rounds.back().real;
  }
  const auto R = static_cast<int64_t>(rounds.size());
  const auto long_opts = scores.options().dtype(at::kLong);

  Tournament t;
  t.rounds = R;
  // The winner follows side a, the better-ranked side, down every round.
  auto winner = at::arange(k, long_opts).expand({b, k});  // (b, k)
  for (int64_t h = R; h >= 1; --h) winner = rounds[h - 1].side_a.gather(1, winner);
  const auto order = keep_order ? keep_order_permutation(winner, valid, n)
                                : at::arange(k, long_opts).expand({b, k}).contiguous();  // (b, k)
  t.winner = winner.gather(1, order);
  t.out_mask = valid.gather(1, order);

  // Top-down: expand each output into its tree, level by level.
  t.weight.resize(R);
  t.score.resize(R + 1);
  auto pos = order.unsqueeze(-1);                          // (b, k, 1) positions in round R's list
  auto coef = at::ones({b, k, 1}, scores.options());       // (b, k, 1) path products
  for (int64_t h = R; h >= 1; --h) {
    const Round& r = rounds[h - 1];
    const auto w = gather_nodes(r.weight, pos, 1);          // (b, k, t)
    t.weight[h - 1] = w;
    t.score[h] = gather_nodes(r.score, pos, 0);             // (b, k, t)
    pos = interleave(gather_nodes(r.side_a, pos, -1), gather_nodes(r.side_b, pos, -1));  // (b, k, 2t)
    coef = interleave(coef * w, coef * (1 - w));            // (b, k, 2t)
  }
  const auto leaf_valid = gather_nodes(mask, pos, false);   // (b, k, L)
  t.score[0] = gather_nodes(scores, pos, 0).masked_fill(leaf_valid.logical_not(), 0);  // (b, k, L)
  t.leaf_index = pos.masked_fill(leaf_valid.logical_not(), -1);                        // (b, k, L)
  t.leaf_coef = coef.masked_fill(leaf_valid.logical_not(), 0);                         // (b, k, L)

  // Inverse map: every real input sits in exactly one leaf. Empty leaves scatter to a spare
  // column n that is dropped.
  const int64_t L = pos.size(2);
  const auto flat_index = t.leaf_index.view({b, k * L});                               // (b, k*L)
  const auto target = flat_index.masked_fill(flat_index < 0, n);
  const auto leaf_ids = at::arange(k * L, long_opts).expand({b, k * L});
  t.input_leaf = at::full({b, n + 1}, -1, long_opts).scatter_(1, target, leaf_ids).narrow(1, 0, n);  // (b, n)
  t.input_row = at::floor_divide(t.input_leaf.clamp_min(0), L);                        // (b, n)
  return t;
}

}  // namespace detail
}  // namespace pyramidion

