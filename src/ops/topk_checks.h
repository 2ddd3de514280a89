// Private: validation of the public top-k arguments, shared by successive_halving_topk(),
// hard_topk() and iterative_softmax_topk(). Throws std::invalid_argument naming the values.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <string>

namespace pyramidion {
namespace detail {

/// Checks x (b, n, d), scores (b, n), 1 <= k <= n and the mask in `mask` (undefined or (b, n)
/// bool); returns the mask to use: (b, n) bool, all true when none was given.
/// Reads no values (metadata only), so it also runs on fake tensors while tracing; the values are
/// checked by check_finite_scores, through the sh_checked_scores operator (ops/topk_ops.h).
at::Tensor check_topk_args(const char* fn, const at::Tensor& x, const at::Tensor& scores, int64_t k,
                           const at::Tensor& mask);

/// check_topk_args for the operator's kernels (Autograd, CPU/CUDA, Meta), prefixed
/// "pyramidion::successive_halving_topk", plus the base: finite and > 1. Returns the mask to use.
at::Tensor check_operator_args(const at::Tensor& x, const at::Tensor& scores, int64_t k,
                               const c10::optional<at::Tensor>& mask, double base);

/// Throws std::invalid_argument "<fn>: base must be finite and > 1, got <base>".
void check_base(const char* fn, double base);

/// Throws std::invalid_argument "<fn>: scores must be finite where mask is true; scores[i, j] = v"
/// for the first non-finite real score. Reads the values: makes the host wait on CUDA.
void check_finite_scores(const char* fn, const at::Tensor& scores, const at::Tensor& mask);

}  // namespace detail
}  // namespace pyramidion
