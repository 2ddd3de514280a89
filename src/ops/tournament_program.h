// Private: the successive-halving tournament of one example and the score gradient through one
// output's tree, written once for a *team* of threads: the CUDA kernels run them with a thread
// block as the team (cuda/topk_kernels.cu, one block per example / per tree, every round in one
// launch), and the CPU tests run the very same code with a team of one thread
// (tests/ops/tournament_program_test.cpp), against the CPU kernels, bit for bit.
//
// A team has rank() and size(), sync() (a barrier that also makes the team's writes visible to
// all of it), and sum(v) (the team-wide sum of every member's v, a barrier too). Work is split by
// striding loops (i = rank; i < N; i += size) between barriers, so the result does not depend on
// the team's size. A barrier stands exactly where a member reads what another wrote (or writes
// what another still reads): where element i is written and then read by member i % size alone,
// there is none. tests/ops/team_programs_main.cpp removes each barrier in turn and checks that
// the removal is caught (a mismatch, or a race under ThreadSanitizer). The rules are those of the
// CPU kernels (tournament_cpu.cpp, tree_backward_cpu.cpp), step by step and with the same floating-point operations in the same order (ops/topk_math.h):
// rankings by a bitonic sort on (descending_image(key), position), which orders exactly as the
// CPU's stable radix sort.
//
// Real scores that are not finite (the CUDA front does not stop to check them: that would be a
// host sync per call) poison their example: every coefficient, weight and score of its trees is
// NaN, so its outputs and gradients are NaN rather than silently wrong.
//
// Legend: n inputs, k outputs, R rounds, L = 2^R leaves per output tree, M / M2 the padded list
// sizes before and after a round, P a sort's power-of-two capacity, S the rounds' records.
#pragma once

#include <stdint.h>

#include "ops/topk_math.h"

namespace pyramidion {
namespace kernels {

/// Rounds at most: n < 2^31 and k >= 1 give R <= 31.
constexpr int kMaxRounds = 32;

PYR_HD int64_t pow2_at_least(int64_t m) {
  int64_t p = 1;
  while (p < m) p <<= 1;
  return p;
}

/// The sizes of one example's tournament (the same for every example of a batch).
struct TournamentShape {
  int64_t n = 0, k = 0, rounds = 0, leaves = 0;  // n, k, R, L
  int64_t sizes[kMaxRounds + 1] = {};            // M_0 = n, ..., M_R = k (tournament.h, round_sizes)
  int64_t record[kMaxRounds + 1] = {};           // round r's records start at record[r]; record[R] = S
};

/// 1 <= k <= n < 2^31 (the caller checks).
PYR_HD TournamentShape tournament_shape(int64_t n, int64_t k) {
  TournamentShape s;
  s.n = n;
  s.k = k;
  s.sizes[0] = n;
  int64_t r = 0;
  do {
    const int64_t next = (s.sizes[r] + 1) / 2;
    s.sizes[r + 1] = next > k ? next : k;
    s.record[r + 1] = s.record[r] + s.sizes[r + 1];
    ++r;
  } while (s.sizes[r] > k);
  s.rounds = r;
  s.leaves = int64_t{1} << r;
  return s;
}

/// One example's working memory: the sort's (key, position) pairs, every round's records, and
/// the outputs' winners and order.
template <typename T>
struct TournamentScratch {
  UnsignedOf<T>* key = nullptr;  // (P), P = pow2_at_least(n)
  int32_t* pos = nullptr;        // (P)
  int32_t* side_a = nullptr;     // (S) better-ranked side of each new candidate
  int32_t* side_b = nullptr;     // (S) worse-ranked side; -1 for a bye
  T* weight = nullptr;           // (S) w_a
  T* score = nullptr;            // (S) blended score; 0 where no real input
  uint8_t* valid = nullptr;      // (S)
  int32_t* win = nullptr;        // (k) input position of each final candidate's winner
  int32_t* order = nullptr;      // (k) output i is final candidate order[i]
};

PYR_HD int64_t align_up(int64_t bytes) { return (bytes + 15) / 16 * 16; }

/// Bytes of one example's scratch; with sort_in_place false the (key, position) pairs are left
/// out (the caller puts them elsewhere, in shared memory).
template <typename T>
PYR_HD int64_t tournament_scratch_bytes(const TournamentShape& s, bool with_sort = true) {
  const int64_t P = pow2_at_least(s.n), S = s.record[s.rounds];
  int64_t bytes = 0;
  if (with_sort) bytes += align_up(P * int64_t(sizeof(UnsignedOf<T>))) + align_up(P * 4);
  bytes += 2 * align_up(S * 4) + 2 * align_up(S * int64_t(sizeof(T))) + align_up(S) + 2 * align_up(s.k * 4);
  return bytes;
}

/// Carves one example's scratch out of `base` (16-byte aligned, tournament_scratch_bytes long).
template <typename T>
PYR_HD TournamentScratch<T> tournament_scratch_at(unsigned char* base, const TournamentShape& s,
                                                  bool with_sort = true) {
  const int64_t P = pow2_at_least(s.n), S = s.record[s.rounds];
  TournamentScratch<T> w;
  auto take = [&base](int64_t bytes) {
    unsigned char* p = base;
    base += align_up(bytes);
    return p;
  };
  if (with_sort) {
    w.key = reinterpret_cast<UnsignedOf<T>*>(take(P * int64_t(sizeof(UnsignedOf<T>))));
    w.pos = reinterpret_cast<int32_t*>(take(P * 4));
  }
  w.side_a = reinterpret_cast<int32_t*>(take(S * 4));
  w.side_b = reinterpret_cast<int32_t*>(take(S * 4));
  w.weight = reinterpret_cast<T*>(take(S * int64_t(sizeof(T))));
  w.score = reinterpret_cast<T*>(take(S * int64_t(sizeof(T))));
  w.valid = reinterpret_cast<uint8_t*>(take(S));
  w.win = reinterpret_cast<int32_t*>(take(s.k * 4));
  w.order = reinterpret_cast<int32_t*>(take(s.k * 4));
  return w;
}

/// The whole batch's outputs (tournament.h's tree layout), written by each example at its offset.
template <typename T>
struct TournamentOutputs {
  int64_t* leaf_index = nullptr;       // (b, k, L)
  T* leaf_coef = nullptr;              // (b, k, L)
  T* weight[kMaxRounds] = {};          // weight[h-1]: (b, k, L >> h)
  T* score[kMaxRounds + 1] = {};       // score[h]: (b, k, L >> h)
  bool* out_mask = nullptr;            // (b, k)
  int64_t* winner = nullptr;           // (b, k)
  int64_t* input_leaf = nullptr;       // (b, n)
  int64_t* input_row = nullptr;        // (b, n)
};

/// Sorts the P (a power of two) pairs (key, pos) ascending by key, then pos: a bitonic network,
/// one barrier per stage. The pairs are distinct, so the order is unique (stable by position).
template <typename K, typename Team>
PYR_HD void bitonic_sort(Team& team, K* key, int32_t* pos, int64_t P) {
  for (int64_t size = 2; size <= P; size <<= 1) {
    for (int64_t stride = size >> 1; stride > 0; stride >>= 1) {
      for (int64_t i = team.rank(); i < P / 2; i += team.size()) {
        const int64_t lo = 2 * stride * (i / stride) + i % stride, hi = lo + stride;
        const bool up = (lo & size) == 0;
        const bool greater = key[lo] > key[hi] || (key[lo] == key[hi] && pos[lo] > pos[hi]);
        if (greater == up) {
          const K k = key[lo];
          key[lo] = key[hi];
          key[hi] = k;
          const int32_t p = pos[lo];
          pos[lo] = pos[hi];
          pos[hi] = p;
        }
      }
      team.sync();
    }
  }
}

/// Walks output i's tree from its root (final candidate `root`) down to node j of level h: the
/// node's position in round h's list (-1 for an empty node) and the product of the pair weights
/// on the way (the CPU kernel's top-down products, factor by factor).
template <typename T>
PYR_HD int64_t walk_down(const TournamentShape& s, const TournamentScratch<T>& w, int64_t root, int64_t h,
                         int64_t j, T* coef) {
  int64_t p = root;
  T c = T(1);
  for (int64_t g = s.rounds; g > h; --g) {
    const int64_t rec = s.record[g - 1];
    const T wt = p >= 0 ? w.weight[rec + p] : T(1);
    const bool side_b = ((j >> (g - 1 - h)) & 1) != 0;
    c = side_b ? c * (T(1) - wt) : c * wt;
    p = p >= 0 ? (side_b ? w.side_b[rec + p] : w.side_a[rec + p]) : -1;
  }
  *coef = c;
  return p;
}

/// The rounds of example e (tournament.cpp, play_round): players rank by score, the others only
/// move real candidates ahead of padding; byes, then pairs of the c+j-th with the (real-1-j)-th.
/// `real`: the example's real inputs. Fills w's rounds' records.
template <typename T, typename Team>
PYR_HD void play_rounds(Team& team, const T* s_in, const bool* m_in, int64_t real, const TournamentShape& s,
                        T log_base, const TournamentScratch<T>& w) {
  using K = UnsignedOf<T>;
  const T* cur_s = s_in;
  const uint8_t* cur_v = nullptr;  // nullptr: the mask
  for (int64_t r = 0; r < s.rounds; ++r) {
    const int64_t M = s.sizes[r], M2 = s.sizes[r + 1], P = pow2_at_least(M), rec = s.record[r];
    const bool plays = real > s.k;
    for (int64_t i = team.rank(); i < P; i += team.size()) {
      if (i < M) {
        const bool v = cur_v ? cur_v[i] != 0 : m_in[i];
        w.key[i] = descending_image(v ? (plays ? cur_s[i] : T(0)) : -infinity_<T>());
      } else {
        w.key[i] = K(~K(0));  // capacity beyond M: after every candidate
      }
      w.pos[i] = static_cast<int32_t>(i);
    }
    team.sync();
    bitonic_sort(team, w.key, w.pos, P);
    const int64_t real2 = plays ? ((real + 1) / 2 > s.k ? (real + 1) / 2 : s.k) : real;
    const int64_t byes = 2 * real2 - real;
    for (int64_t i = team.rank(); i < M2; i += team.size()) {
      const bool paired = i >= byes && i < real2;
      const bool padding = i >= real2;
      const int64_t a = w.pos[padding ? real + i - real2 : i];
      const int64_t b = paired ? w.pos[real - 1 - i + byes] : -1;
      const bool va = cur_v ? cur_v[a] != 0 : m_in[a];
      const bool vb = b >= 0 && (cur_v ? cur_v[b] != 0 : m_in[b]);
      T wt, sc;
      bool v;
      pair_blend(cur_s[a], cur_s[b >= 0 ? b : 0], va, vb, log_base, &wt, &sc, &v);
      w.side_a[rec + i] = static_cast<int32_t>(a);
      w.side_b[rec + i] = static_cast<int32_t>(b);
      w.weight[rec + i] = wt;
      w.score[rec + i] = sc;
      w.valid[rec + i] = v ? 1 : 0;
    }
    team.sync();
    cur_s = w.score + rec;
    cur_v = w.valid + rec;
    real = real2;
  }
}

/// Winners follow side a down every round; keep_order orders the outputs by them, outputs without
/// a real input last (keys win + n: distinct, so any sort is the stable one). Fills w.win and
/// w.order, writes example e's winners and output mask.
template <typename T, typename Team>
PYR_HD void order_outputs(Team& team, int64_t e, const TournamentShape& s, bool keep_order,
                          const TournamentScratch<T>& w, const TournamentOutputs<T>& out) {
  using K = UnsignedOf<T>;
  const int64_t k = s.k, last = s.record[s.rounds - 1];
  for (int64_t i = team.rank(); i < k; i += team.size()) {
    int64_t win = i;
    for (int64_t r = s.rounds - 1; r >= 0; --r) win = w.side_a[s.record[r] + win];
    w.win[i] = static_cast<int32_t>(win);
  }
  // No barrier: until the next one, member i % size alone reads w.win[i] (it wrote it).
  if (keep_order) {
    const int64_t P = pow2_at_least(k);
    for (int64_t i = team.rank(); i < P; i += team.size()) {
      w.key[i] = i < k ? K(w.win[i] + (w.valid[last + i] ? 0 : s.n)) : K(~K(0));
      w.pos[i] = static_cast<int32_t>(i);
    }
    team.sync();
    bitonic_sort(team, w.key, w.pos, P);
    for (int64_t i = team.rank(); i < k; i += team.size()) w.order[i] = w.pos[i];
  } else {
    for (int64_t i = team.rank(); i < k; i += team.size()) w.order[i] = static_cast<int32_t>(i);
  }
  // No barrier: member i % size alone reads w.order[i] here (it wrote it); the caller's barrier
  // comes before write_trees, where every member reads all of w.order.
  for (int64_t i = team.rank(); i < k; i += team.size()) {
    out.winner[e * k + i] = w.win[w.order[i]];
    out.out_mask[e * k + i] = w.valid[last + w.order[i]] != 0;
  }
}

/// The trees of example e, top-down: every node of every level walks from its root
/// (tournament_cpu.cpp, write_trees); then every input's leaf and output row. `poisoned`: every
/// weight, score and coefficient NaN.
template <typename T, typename Team>
PYR_HD void write_trees(Team& team, int64_t e, const T* s_in, const bool* m_in, const TournamentShape& s,
                        bool poisoned, const TournamentScratch<T>& w, const TournamentOutputs<T>& out) {
  const int64_t n = s.n, k = s.k, L = s.leaves;
  const T nan = quiet_nan_<T>();
  int64_t* input_leaf = out.input_leaf + e * n;
  for (int64_t h = s.rounds; h >= 1; --h) {
    const int64_t t = L >> h, rec = s.record[h - 1];
    for (int64_t item = team.rank(); item < k * t; item += team.size()) {
      const int64_t i = item / t, j = item % t;
      T coef;
      const int64_t p = walk_down(s, w, w.order[i], h, j, &coef);
      out.weight[h - 1][(e * k + i) * t + j] = poisoned ? nan : (p >= 0 ? w.weight[rec + p] : T(1));
      out.score[h][(e * k + i) * t + j] = poisoned ? nan : (p >= 0 ? w.score[rec + p] : T(0));
    }
  }
  for (int64_t item = team.rank(); item < k * L; item += team.size()) {
    const int64_t i = item / L, l = item % L;
    T coef;
    const int64_t p = walk_down(s, w, w.order[i], 0, l, &coef);
    const bool leaf_valid = p >= 0 && m_in[p];
    const int64_t at = (e * k + i) * L + l;
    out.score[0][at] = poisoned ? nan : (leaf_valid ? s_in[p] : T(0));
    out.leaf_index[at] = leaf_valid ? p : -1;
    out.leaf_coef[at] = poisoned ? nan : (leaf_valid ? coef : T(0));
    if (leaf_valid) input_leaf[p] = i * L + l;  // every real input sits in exactly one leaf
  }
  team.sync();
  for (int64_t p = team.rank(); p < n; p += team.size())
    out.input_row[e * n + p] = (input_leaf[p] > 0 ? input_leaf[p] : 0) / L;
}

/// The tournament of example e: scores and mask (b, n), padding scores zeroed (the front does).
template <typename T, typename Team>
PYR_HD void tournament_example(Team& team, int64_t e, const T* scores, const bool* mask, const TournamentShape& s,
                               T log_base, bool keep_order, const TournamentScratch<T>& w,
                               const TournamentOutputs<T>& out) {
  const T* s_in = scores + e * s.n;
  const bool* m_in = mask + e * s.n;
  // Real inputs, non-finite real scores; every input's leaf starts empty.
  int64_t my_real = 0, my_bad = 0;
  for (int64_t i = team.rank(); i < s.n; i += team.size()) {
    out.input_leaf[e * s.n + i] = -1;
    if (m_in[i]) {
      ++my_real;
      if (!is_finite_(s_in[i])) ++my_bad;
    }
  }
  const int64_t real = team.sum(my_real);
  const bool poisoned = team.sum(my_bad) > 0;
  play_rounds(team, s_in, m_in, real, s, log_base, w);
  order_outputs(team, e, s, keep_order, w, out);
  team.sync();
  write_trees(team, e, s_in, m_in, s, poisoned, w, out);
}

/// Offset of level h's nodes in a tree's per-level arrays (level 0: the L leaves, then L/2, ...).
PYR_HD int64_t level_offset(int64_t L, int64_t h) { return 2 * L - (2 * L >> h); }

/// The score gradient through tree `tree` (of b*k) (tree_backward_cpu.cpp, node by node): bottom-up
/// Q(node) = w Q(a) + (1 - w) Q(b) from the leaf dots, then top-down rho and sigma from the root.
/// weight[h-1] (b*k, L >> h), score[h] (b*k, L >> h), dots (b*k, L), grad_scores (b*k);
/// q, rho, sigma: 2L scratch each; writes leaf_sigma (b*k, L).
template <typename T, typename Team>
PYR_HD void tree_backward_tree(Team& team, int64_t tree, int64_t R, const T* const* weight, const T* const* score,
                               const T* dots, const T* grad_scores, T log_base, T* q, T* rho, T* sigma,
                               T* leaf_sigma) {
  const int64_t L = int64_t{1} << R;
  for (int64_t l = team.rank(); l < L; l += team.size()) q[l] = dots[tree * L + l];
  team.sync();
  for (int64_t h = 1; h <= R; ++h) {
    const int64_t t = L >> h, at = level_offset(L, h), below = level_offset(L, h - 1);
    const T* wt = weight[h - 1] + tree * t;
    for (int64_t j = team.rank(); j < t; j += team.size())
      q[at + j] = wt[j] * q[below + 2 * j] + (T(1) - wt[j]) * q[below + 2 * j + 1];
    if (h < R) team.sync();
  }
  // No barrier after the root's level, nor after setting the root: the root is member 0's alone,
  // and so is the top level's top-down step (one node), which reads the root's rho and sigma.
  if (team.rank() == 0) {
    rho[level_offset(L, R)] = T(1);
    sigma[level_offset(L, R)] = grad_scores[tree];
  }
  for (int64_t h = R; h >= 1; --h) {
    const int64_t t = L >> h, at = level_offset(L, h), below = level_offset(L, h - 1);
    const T* wt = weight[h - 1] + tree * t;
    const T* s_child = score[h - 1] + tree * 2 * t;
    for (int64_t j = team.rank(); j < t; j += team.size()) {
      node_backward(rho[at + j], sigma[at + j], wt[j], s_child[2 * j], s_child[2 * j + 1], q[below + 2 * j],
                    q[below + 2 * j + 1], log_base, &sigma[below + 2 * j], &sigma[below + 2 * j + 1]);
      rho[below + 2 * j] = rho[at + j] * wt[j];
      rho[below + 2 * j + 1] = rho[at + j] * (T(1) - wt[j]);
    }
    team.sync();
  }
  for (int64_t l = team.rank(); l < L; l += team.size()) leaf_sigma[tree * L + l] = sigma[l];
}

/// A team of one: the CPU's way of running the programs above (the tests').
struct SerialTeam {
  int64_t rank() const { return 0; }
  int64_t size() const { return 1; }
  void sync() const {}
  int64_t sum(int64_t v) const { return v; }
};

}  // namespace kernels
}  // namespace pyramidion
