// Private: the kernels of the successive-halving top-k, as operators of LibTorch's dispatcher
// (namespace `pyramidion`), implemented for CPU in src/ops/topk_cpu.cpp and for CUDA in
// src/ops/topk_cuda.cpp. The autograd function in src/ops/topk.cpp composes them.
//
// Legend: b batch, n inputs, k outputs, L = 2^R leaves per output tree, d representation size,
// N any element count. Leaf index -1 marks a leaf that holds no input (a bye's empty side, or
// padding); its coefficient is 0.
//
// Precision: representations x and their gradients may be float32, float64, bfloat16 or float16
// (the storage type T); everything computed from the scores (the tournament, coefficients, leaf
// dots, the tree backward) is in the accumulation type A = at::opmath_type<T> (float32 for the
// 16-bit types, T otherwise), and the kernels accumulate in A.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <tuple>
#include <vector>

namespace pyramidion {
namespace detail {

/// The tournament on the scores, packed as tournament.h's pack_tournament describes.
/// scores (b, n) with padding zeroed, mask (b, n) bool, 1 <= k <= n.
std::vector<at::Tensor> sh_tournament(const at::Tensor& scores, const at::Tensor& mask, int64_t k,
                                      double log_base, bool keep_order);

/// The gradient with respect to the input scores (tournament.h, scores_grad); tree is the packed
/// tournament, leaf_dots (b, k, L), grad_scores (b, k) -> (b, n).
at::Tensor sh_tree_backward(const std::vector<at::Tensor>& tree, const at::Tensor& leaf_dots,
                            const at::Tensor& grad_scores, double log_base);

/// The scores with padding zeroed, (b, n) -> (b, n), after (on the CPU) checking that every real
/// score is finite: std::invalid_argument "pyramidion::successive_halving_topk: scores must be
/// finite where mask is true; scores[i, j] = nan", prefixed by `fn`). On CUDA there is no check
/// (it would make the host wait for the device): the tournament kernel poisons such an example
/// instead. An operator rather than a step of the front so that tracing (torch.compile, fake
/// tensors) never reads a value.
at::Tensor sh_checked_scores(const at::Tensor& scores, const at::Tensor& mask, c10::string_view fn);

/// Per row, the positions ordered by key descending, ties in position order (a stable descending
/// argsort). key (b, m) float/double, no NaN -> perm (b, m) int64
at::Tensor sh_rank(const at::Tensor& key);

/// y[b, i, :] = sum_l coef[b, i, l] * x[b, index[b, i, l], :]
/// x (b, n, d) T, index (b, k, L) int64, coef (b, k, L) A -> y (b, k, d) T
at::Tensor sh_combine(const at::Tensor& x, const at::Tensor& index, const at::Tensor& coef);

/// q[b, i, l] = <grad_y[b, i, :], x[b, index[b, i, l], :]>  (0 where index is -1)
/// grad_y (b, k, d) T, x (b, n, d) T, index (b, k, L) int64 -> q (b, k, L) A
at::Tensor sh_leaf_dot(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& index);

/// grad_x[b, p, :] = coef[b, p] * grad_y[b, row[b, p], :]  (every input sits in exactly one tree)
/// grad_y (b, k, d) T, row (b, n) int64, coef (b, n) A -> grad_x (b, n, d) T
at::Tensor sh_expand(const at::Tensor& grad_y, const at::Tensor& row, const at::Tensor& coef);

/// kernels::pair_blend over N pairs: s (N, 2), valid (N, 2) bool -> w (N), score (N), valid (N)
std::tuple<at::Tensor, at::Tensor, at::Tensor> sh_pair_blend(const at::Tensor& s,
                                                             const at::Tensor& valid,
                                                             double log_base);

/// kernels::node_backward over N nodes: rho, sigma, w (N); s_child, q_child (N, 2)
/// -> sigma_child (N, 2)
at::Tensor sh_node_backward(const at::Tensor& rho, const at::Tensor& sigma, const at::Tensor& w,
                            const at::Tensor& s_child, const at::Tensor& q_child, double log_base);

}  // namespace detail
}  // namespace pyramidion
