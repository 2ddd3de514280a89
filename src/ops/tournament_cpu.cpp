// CPU kernel of sh_tournament: the whole tournament of one example in one task (parallel over
// examples), instead of the ~200 batched ATen ops of the composite in tournament.cpp, whose
// allocation and dispatch overhead dominated the score side on the CPU. It follows the composite
// step by step (same ranking, same slot layout, same per-element math from topk_math.h, same order
// of floating-point operations), so the two agree bit for bit; tests/ops/tournament_test.cpp checks it.
//
// Legend: b batch, n inputs, k outputs, R rounds, L = 2^R leaves per output tree, M / M2 the
// padded list sizes before and after a round, t nodes per output tree at a level.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include "ops/kernel_checks.h"
#include "ops/radix_rank.h"
#include "ops/topk_math.h"
#include "ops/tournament.h"

namespace pyramidion {
namespace detail {
namespace {

// One round of one example: for each new candidate, its two sides in the previous list.
template <typename T>
struct ExampleRound {
  std::vector<int64_t> side_a, side_b;  // (M2) side b -1 for a bye
  std::vector<T> weight, score;         // (M2)
  std::vector<char> valid;              // (M2)
};

// The output tensors of the batch, and the example they are written for.
template <typename T>
struct TreeOut {
  int64_t k, n, L, R;
  int64_t* leaf_index = nullptr;   // (b, k, L)
  T* leaf_coef = nullptr;          // (b, k, L)
  std::vector<T*> weight = {};     // weight[h-1]: (b, k, L >> h)
  std::vector<T*> score = {};      // score[h]: (b, k, L >> h)
  bool* out_mask = nullptr;        // (b, k)
  int64_t* winner = nullptr;       // (b, k)
  int64_t* input_leaf = nullptr;   // (b, n)
  int64_t* input_row = nullptr;    // (b, n)
};

// The rounds of one example (tournament.cpp, play_round): for each round, where each new
// candidate's sides stood in the previous list.
template <typename T>
std::vector<ExampleRound<T>> play_rounds(const T* score_in, const bool* mask_in, const std::vector<int64_t>& sizes,
                                         int64_t k, T log_base, RankScratch<T>& scratch) {
  const int64_t n = sizes[0], R = static_cast<int64_t>(sizes.size()) - 1;
  std::vector<ExampleRound<T>> rounds(R);
  std::vector<T> key(n);
  std::vector<int64_t> perm(n);
  const T* cur_s = score_in;
  const char* cur_v_char = nullptr;
  int64_t real = 0;
  for (int64_t i = 0; i < n; ++i) real += mask_in[i] ? 1 : 0;
  auto valid_at = [&](int64_t i) { return cur_v_char ? cur_v_char[i] != 0 : mask_in[i]; };
  for (int64_t r = 0; r < R; ++r) {
    const int64_t M = sizes[r], M2 = sizes[r + 1];
    const bool plays = real > k;
    for (int64_t i = 0; i < M; ++i)
      key[i] = valid_at(i) ? (plays ? cur_s[i] : T(0)) : -std::numeric_limits<T>::infinity();
    radix_rank_row(key.data(), M, perm.data(), scratch);
    const int64_t real2 = plays ? std::max(k, (real + 1) / 2) : real;
    const int64_t byes = 2 * real2 - real;
    ExampleRound<T>& rd = rounds[r];
    rd.side_a.resize(M2);
    rd.side_b.resize(M2);
    rd.weight.resize(M2);
    rd.score.resize(M2);
    rd.valid.resize(M2);
    for (int64_t i = 0; i < M2; ++i) {
      const bool paired = i >= byes && i < real2;
      const bool padding = i >= real2;
      const int64_t a = perm[padding ? real + i - real2 : i];
      const int64_t b = paired ? perm[real - 1 - i + byes] : -1;
      bool v;
      kernels::pair_blend(cur_s[a], cur_s[b >= 0 ? b : 0], valid_at(a), b >= 0 && valid_at(b), log_base,
                          &rd.weight[i], &rd.score[i], &v);
      rd.side_a[i] = a;
      rd.side_b[i] = b;
      rd.valid[i] = v ? 1 : 0;
    }
    cur_s = rd.score.data();
    cur_v_char = rd.valid.data();
    real = real2;
  }
  return rounds;
}

// Winners follow side a down every round; keep_order sorts by them, outputs without a real input
// last (keep_order_permutation). Writes example e's winners and output mask; returns the order of
// its outputs (output i is the final candidate order[i]).
template <typename T>
std::vector<int64_t> order_outputs(int64_t e, const std::vector<ExampleRound<T>>& rounds, bool keep_order,
                                   const TreeOut<T>& out) {
  const int64_t k = out.k, n = out.n, R = out.R;
  const ExampleRound<T>& last = rounds[R - 1];
  std::vector<int64_t> win(k), order(k);
  for (int64_t i = 0; i < k; ++i) {
    int64_t w = i;
    for (int64_t r = R - 1; r >= 0; --r) w = rounds[r].side_a[w];
    win[i] = w;
  }
  std::iota(order.begin(), order.end(), 0);
  if (keep_order) {
    auto sort_key = [&](int64_t i) { return win[i] + (last.valid[i] ? 0 : n); };
    std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return sort_key(i) < sort_key(j); });
  }
  for (int64_t i = 0; i < k; ++i) {
    out.winner[e * k + i] = win[order[i]];
    out.out_mask[e * k + i] = last.valid[order[i]] != 0;
  }
  return order;
}

// Top-down: each output's tree of example e, level by level, and its leaves; then every input's
// leaf and output row.
template <typename T>
void write_trees(int64_t e, const T* score_in, const bool* mask_in, const std::vector<ExampleRound<T>>& rounds,
                 const std::vector<int64_t>& order, const TreeOut<T>& out) {
  const int64_t n = out.n, k = out.k, R = out.R, L = out.L;
  std::fill(out.input_leaf + e * n, out.input_leaf + (e + 1) * n, int64_t{-1});
  std::vector<int64_t> pos(L), next_pos(L);
  std::vector<T> coef(L), next_coef(L);
  for (int64_t i = 0; i < k; ++i) {
    pos[0] = order[i];
    coef[0] = T(1);
    for (int64_t h = R; h >= 1; --h) {
      const ExampleRound<T>& rd = rounds[h - 1];
      const int64_t t = int64_t{1} << (R - h);
      T* w_out = out.weight[h - 1] + (e * k + i) * t;
      T* s_out = out.score[h] + (e * k + i) * t;
      for (int64_t j = 0; j < t; ++j) {
        const int64_t p = pos[j];
        const T w = p >= 0 ? rd.weight[p] : T(1);
        w_out[j] = w;
        s_out[j] = p >= 0 ? rd.score[p] : T(0);
        next_pos[2 * j] = p >= 0 ? rd.side_a[p] : -1;
        next_pos[2 * j + 1] = p >= 0 ? rd.side_b[p] : -1;
        next_coef[2 * j] = coef[j] * w;
        next_coef[2 * j + 1] = coef[j] * (T(1) - w);
      }
      std::swap(pos, next_pos);
      std::swap(coef, next_coef);
    }
    const int64_t base = (e * k + i) * L;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t p = pos[l];
      const bool leaf_valid = p >= 0 && mask_in[p];
      out.score[0][base + l] = leaf_valid ? score_in[p] : T(0);
      out.leaf_index[base + l] = leaf_valid ? p : -1;
      out.leaf_coef[base + l] = leaf_valid ? coef[l] : T(0);
      if (leaf_valid) out.input_leaf[e * n + p] = i * L + l;
    }
  }
  for (int64_t p = 0; p < n; ++p) out.input_row[e * n + p] = std::max<int64_t>(out.input_leaf[e * n + p], 0) / L;
}

// The whole tournament of example e.
template <typename T>
void tournament_example(int64_t e, const T* score_in, const bool* mask_in, const std::vector<int64_t>& sizes,
                        T log_base, bool keep_order, const TreeOut<T>& out, RankScratch<T>& scratch) {
  const auto rounds = play_rounds(score_in, mask_in, sizes, out.k, log_base, scratch);
  const auto order = order_outputs(e, rounds, keep_order, out);
  write_trees(e, score_in, mask_in, rounds, order, out);
}

std::vector<at::Tensor> tournament_cpu(const at::Tensor& scores_in, const at::Tensor& mask_in, int64_t k,
                                       double log_base, bool keep_order) {
  const auto scores = scores_in.contiguous();  // (b, n)
  const auto mask = mask_in.contiguous();      // (b, n)
  const int64_t b = scores.size(0), n = scores.size(1);
  PYR_CHECK_SHAPE(mask, b, n);
  PYR_CHECK_DTYPE(mask, at::kBool);
  TORCH_CHECK(k >= 1 && k <= n, "k must satisfy 1 <= k <= n = ", n, ", got ", k);
  const auto sizes = round_sizes(n, k);  // M_0 = n, ..., M_R = k
  Tournament t = empty_tournament(b, n, k, scores.options());
  const int64_t R = t.rounds, L = int64_t{1} << R;

  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "sh_tournament_cpu", [&] {
    TreeOut<scalar_t> out{k, n, L, R};
    out.leaf_index = t.leaf_index.data_ptr<int64_t>();
    out.leaf_coef = t.leaf_coef.data_ptr<scalar_t>();
    for (auto& w : t.weight) out.weight.push_back(w.data_ptr<scalar_t>());
    for (auto& s : t.score) out.score.push_back(s.data_ptr<scalar_t>());
    out.out_mask = t.out_mask.data_ptr<bool>();
    out.winner = t.winner.data_ptr<int64_t>();
    out.input_leaf = t.input_leaf.data_ptr<int64_t>();
    out.input_row = t.input_row.data_ptr<int64_t>();
    const scalar_t* sp = scores.data_ptr<scalar_t>();
    const bool* mp = mask.data_ptr<bool>();
    const auto lb = static_cast<scalar_t>(log_base);
    at::parallel_for(0, b, 1, [&](int64_t begin, int64_t end) {
      RankScratch<scalar_t> scratch;
      for (int64_t e = begin; e < end; ++e)
        tournament_example<scalar_t>(e, sp + e * n, mp + e * n, sizes, lb, keep_order, out, scratch);
    });
  });
  return pack_tournament(t);
}

}  // namespace
}  // namespace detail
}  // namespace pyramidion

TORCH_LIBRARY_IMPL(pyramidion, CPU, m) { m.impl("sh_tournament", &pyramidion::detail::tournament_cpu); }
