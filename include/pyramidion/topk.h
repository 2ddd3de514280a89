// The successive-halving soft top-k operator and the two baselines it is compared with.
//
// Paper: Pietruszka, Borchmann, Garncarek, "Successive Halving Top-k Operator" (arXiv 2010.15552),
// used for representation pooling in "Sparsifying Transformer Models with Trainable
// Representation Pooling" (arXiv 2009.05169).
//
// Shape legend: b batch, n input tokens, k kept tokens, d representation size.
//
// The tournament, per example, over its real tokens only (mask == true), so that padding never
// changes a real output however far the batch is padded. One round takes the example's m real
// candidates to m' = max(k, ceil(m / 2)):
//   1. Candidates are sorted by score, descending; ties keep their current order (a stable sort).
//   2. Byes: the best c = 2m' - m candidates pass through unchanged. When n/k is a power of two
//      c is always 0; otherwise byes appear only where fewer than two candidates per output slot
//      remain, so the output has exactly k rows for any 1 <= k <= n.
//   3. The remaining 2p = 2(m - m') candidates are paired best with worst: the (c+j)-th best with
//      the (m-1-j)-th best, j = 0..p-1. A pair (a, b) becomes one candidate with weights
//      w_a = softmax([base^s_a, base^s_b])_0 = sigmoid(base^s_a - base^s_b), w_b = 1 - w_a
//      (the double exponential of the authors' code), score w_a s_a + w_b s_b and representation
//      w_a x_a + w_b x_b.
//   4. The next round's candidates are the byes (best first) followed by the pairs in order j.
// Rounds repeat while more than k real candidates remain (ceil(log2(m0 / k)) rounds for m0 real
// tokens); an example with at most k real tokens plays none and keeps its input order. The output
// rows are the example's final candidates in that order (or, with keep_order, ordered by their
// winners' input positions), followed by padding rows (mask false, zero values and scores, indices
// of the example's first padding positions).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>

namespace pyramidion {

/// Options of successive_halving_topk(). Defaults are the paper's.
struct TopKOptions {
  /// Base of the double exponential in the pair weights softmax([base^s_a, base^s_b]); > 1.
  TORCH_ARG(double, base) = 20.0;
  /// (b, n) bool, true for real tokens. Undefined: every token is real.
  TORCH_ARG(at::Tensor, mask) = at::Tensor();
  /// Order the outputs by their winners' input positions (the authors' `sort_back`); outputs with
  /// no real input come last.
  TORCH_ARG(bool, keep_order) = false;
  /// Exact top-k selection instead of the tournament, for inference: what hard_topk() returns (a
  /// stable sort of the real tokens by score, the first k; values = x[indices], best first or by
  /// position with keep_order). The soft tournament's winners are the same tokens except where
  /// blending reorders candidates of nearly equal scores.
  TORCH_ARG(bool, hard) = false;
};

/// What successive_halving_topk(), hard_topk() and iterative_softmax_topk() return.
struct TopKResult {
  at::Tensor values;   // (b, k, d) pooled representations; zero where mask is false
  at::Tensor scores;   // (b, k)    pooled scores; zero where mask is false
  at::Tensor mask;     // (b, k)    bool, true where the output holds at least one real input
  at::Tensor indices;  // (b, k)    int64, input position of each output's winner: the better-scored
                       //           side of every pair it came through, followed down to one input
};

/// Differentiable successive-halving top-k of `x` by `scores` (see the file comment).
///
/// This is the C++ face of the dispatcher operator `pyramidion::successive_halving_topk(Tensor x,
/// Tensor scores, int k, Tensor? mask=None, float base=20., bool keep_order=False, bool hard=False)
/// -> (values, scores, mask, indices)`: it validates and calls it. From Python the same operator is
/// torch.ops.pyramidion.successive_halving_topk (or pyramidion.soft_topk: docs/python.md), with
/// autograd and a Meta kernel for torch.compile.
///
/// x: (b, n, d) float32, float64, bfloat16 or float16; scores: (b, n), same dtype and device;
/// 1 <= k <= n. Outputs and gradients have the inputs' dtype. With 16-bit inputs the tournament,
/// the pair weights, the blended scores and the score gradient are computed in float32 and x is
/// combined with float32 accumulation: the result is what float32 gives on the same values,
/// rounded once to the 16-bit dtype.
/// Gradients flow to x and scores (not through the discrete ranking). Memory O(b * n * d).
/// Throws std::invalid_argument on bad shapes, dtypes, devices, k, base or (on the CPU) non-finite
/// real scores. On CUDA nothing waits for the device (no check that needs the host): a non-finite
/// real score makes its example's values, scores and gradients NaN instead of an exception.
/// CUDA and CPU make the same tournament bit for bit (indices, mask, pooled scores, weights: the
/// same IEEE operations in the same order, no fused multiply-adds, the library's own exp); values
/// and x's gradient differ only by the rounding of another summation order. (The CUDA kernels are
/// compiled and their programs tested on the CPU, but they have not yet run on a GPU.)
TopKResult successive_halving_topk(const at::Tensor& x, const at::Tensor& scores, int64_t k,
                                   const TopKOptions& options = {});

/// Exact top-k selection: the k best-scored real tokens, best first (or in input order with
/// keep_order), values = x[indices], scores = scores[indices]. Gradients flow through the gather.
/// Accepts the same arguments as successive_halving_topk(); options.base and options.hard are unused.
/// On CUDA non-finite real scores are not rejected (see above): they sort as the values they are.
TopKResult hard_topk(const at::Tensor& x, const at::Tensor& scores, int64_t k,
                     const TopKOptions& options = {});

/// Options of iterative_softmax_topk().
struct IterativeSoftmaxOptions {
  /// (b, n) bool, true for real tokens. Undefined: every token is real.
  TORCH_ARG(at::Tensor, mask) = at::Tensor();
  /// Temperature of the softmax; finite and > 0.
  TORCH_ARG(double, temperature) = 1.0;
};

/// The iterative-softmax relaxation the operator paper compares against (Goyal et al. 2017):
/// k steps, step i takes the weights p = softmax(-(s - max s)^2 / temperature) over the scores not
/// yet chosen, outputs p @ x and p @ s, and masks out the argmax. O(k * n * d). The mask excludes
/// padding. Arguments as successive_halving_topk() takes them.
TopKResult iterative_softmax_topk(const at::Tensor& x, const at::Tensor& scores, int64_t k,
                                  const IterativeSoftmaxOptions& options = {});

}  // namespace pyramidion
