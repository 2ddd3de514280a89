// Private: the successive-halving tournament on the scores alone (the representations are read
// later, once, by the kernels). See include/pyramidion/topk.h for the rules.
//
// The result is laid out as one complete binary tree per output ("tree layout"): the output is the
// root (level R), level h holds L >> h nodes, node j of level h has children 2j (the better-ranked
// side a) and 2j+1 (side b) at level h-1, and level 0 holds the L = 2^R leaves, each one input
// position or empty (a bye's missing side, or padding).
//
// Legend: b batch, n inputs, k outputs, R rounds, L = 2^R leaves per output.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "ops/tournament_program.h"

namespace pyramidion {
namespace detail {

struct Tournament {
  int64_t rounds = 0;                // R = max(1, ceil(log2(n / k)))
  at::Tensor leaf_index;             // (b, k, L) int64 input position; -1 for empty and padding leaves
  at::Tensor leaf_coef;              // (b, k, L) product of the weights from root to leaf; 0 where empty
  std::vector<at::Tensor> weight;    // weight[h-1], h = 1..R: (b, k, L >> h) pair weight w_a of each node
  std::vector<at::Tensor> score;     // score[h], h = 0..R: (b, k, L >> h) node score; 0 where no real input
  at::Tensor out_mask;               // (b, k) bool, true where the output holds a real input
  at::Tensor winner;                 // (b, k) int64 input position of each output's winner
  at::Tensor input_row;              // (b, n) int64 output row each input went to (0 for padding)
  at::Tensor input_leaf;             // (b, n) int64 flat leaf position in [0, k*L); -1 for padding
};

/// A tournament's output tensors, allocated (not filled) for b examples of n inputs and k outputs:
/// the trees' numbers in `score_options`' dtype and on its device.
Tournament empty_tournament(int64_t b, int64_t n, int64_t k, const at::TensorOptions& score_options);

/// The pointers of a tournament's tensors for the team programs (ops/tournament_program.h).
template <typename T>
kernels::TournamentOutputs<T> program_outputs(Tournament& t) {
  kernels::TournamentOutputs<T> out;
  out.leaf_index = t.leaf_index.data_ptr<int64_t>();
  out.leaf_coef = t.leaf_coef.data_ptr<T>();
  for (int64_t h = 1; h <= t.rounds; ++h) out.weight[h - 1] = t.weight[h - 1].data_ptr<T>();
  for (int64_t h = 0; h <= t.rounds; ++h) out.score[h] = t.score[h].data_ptr<T>();
  out.out_mask = t.out_mask.data_ptr<bool>();
  out.winner = t.winner.data_ptr<int64_t>();
  out.input_leaf = t.input_leaf.data_ptr<int64_t>();
  out.input_row = t.input_row.data_ptr<int64_t>();
  return out;
}

/// Runs the tournament through the dispatcher operator sh_tournament: on the CPU the fused kernel
/// of tournament_cpu.cpp, on CUDA the team program of tournament_program.h (one block per example). scores (b, n) float/double with
/// padding scores already zeroed; mask (b, n) bool; 1 <= k <= n. Arguments are trusted (validated
/// by the public front).
Tournament run_tournament(const at::Tensor& scores, const at::Tensor& mask, int64_t k, double log_base,
                          bool keep_order);

/// The same tournament from batched ATen ops (a sort and a few gathers per round, one gather per
/// tree level), on any device: the reference of the CPU kernel and of the CUDA kernel.
Tournament run_tournament_composite(const at::Tensor& scores, const at::Tensor& mask, int64_t k,
                                    double log_base, bool keep_order);

/// The padded list sizes of the rounds: n, then max(k, ceil(m / 2)) until k, with at least one
/// round (so that with k == n, too, real outputs come first and padding last).
std::vector<int64_t> round_sizes(int64_t n, int64_t k);

/// The operator's Tensor[] form of a Tournament: leaf_index, leaf_coef, out_mask, winner,
/// input_leaf, input_row, weight[0..R), score[0..R].
std::vector<at::Tensor> pack_tournament(const Tournament& t);
Tournament unpack_tournament(const std::vector<at::Tensor>& packed);

/// The gradient with respect to the input scores (b, n) of a loss whose gradients with respect to
/// the outputs are known: leaf_dots (b, k, L) = <dL/d values[i], x[leaf]> and grad_scores (b, k) =
/// dL/d scores. Padding inputs get 0. Through the dispatcher operator sh_tree_backward: on the CPU
/// the fused kernel of tree_backward_cpu.cpp, on CUDA the team program of tournament_program.h.
at::Tensor scores_grad(const Tournament& t, const at::Tensor& leaf_dots, const at::Tensor& grad_scores,
                       double log_base);

/// The same from batched ATen ops, level by level (see src/ops/topk_math.h, node_backward, for one
/// node): bottom-up Q(node) = <dY, node representation> = w Q(a) + (1 - w) Q(b) from the leaf dots;
/// top-down rho (path product) and sigma (d loss / d node score) from the root to the leaves.
at::Tensor scores_grad_composite(const Tournament& t, const at::Tensor& leaf_dots, const at::Tensor& grad_scores,
                                 double log_base);

/// Orders the k outputs of each example by input position (b, k) int64, outputs whose mask is false
/// last: the permutation (b, k) to apply along dim 1.
at::Tensor keep_order_permutation(const at::Tensor& position, const at::Tensor& mask, int64_t n);

}  // namespace detail
}  // namespace pyramidion
