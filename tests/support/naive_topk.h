// Test-only references for the top-k operators of include/pyramidion/topk.h, written independently
// of the library (no code from src/ or cuda/):
//   - naive_*: one example and one round at a time on std::vector<double>, std::stable_sort and
//     the pair weight written out with std::exp/std::pow. No autograd.
//   - torch_reference_successive_halving: the same tournament from plain LibTorch ops (sort,
//     index_select, blend), one example and one round at a time, so autograd gives reference
//     gradients.
//
// Legend: b batch, n inputs, k outputs, d representation size.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pyramidion_test {

/// What the references return: values (b, k, d) float64, scores (b, k) float64, mask (b, k)
/// bool, indices (b, k) int64 (same meaning as pyramidion::TopKResult).
struct NaiveResult {
  at::Tensor values;
  at::Tensor scores;
  at::Tensor mask;
  at::Tensor indices;
};

/// The successive-halving tournament exactly as the header's file comment defines it, computed in
/// double whatever the input dtype. `mask` may be undefined (every token real). Padding scores and
/// representations are never read (they may be NaN).
NaiveResult naive_successive_halving(const at::Tensor& x, const at::Tensor& scores, const at::Tensor& mask,
                                     int64_t k, double base, bool keep_order);

/// The operator paper's plain definition, valid only when n / k is a power of two: sort, pair the
/// i-th best with the i-th worst, blend, repeat. No byes, no padding. Throws std::logic_error when
/// n / k is not a power of two.
NaiveResult naive_plain_halving(const at::Tensor& x, const at::Tensor& scores, int64_t k, double base);

/// Exact top-k: the k best real tokens by a stable descending sort (padding last), values =
/// x[indices], zero where the output is padding; keep_order orders by position, padding last.
NaiveResult naive_hard_topk(const at::Tensor& x, const at::Tensor& scores, const at::Tensor& mask, int64_t k,
                            bool keep_order);

/// Iterative softmax (Goyal et al. 2017): k steps, p = softmax(-(s - max s)^2 / temperature) over
/// the real tokens not chosen yet, output p @ x and p @ s, then remove the argmax. Outputs after
/// the real tokens ran out are zero with mask false (their indices are unspecified: -1 here).
NaiveResult naive_iterative_softmax(const at::Tensor& x, const at::Tensor& scores, const at::Tensor& mask,
                                    int64_t k, double temperature);

/// nCCS: for each row of `exact` (b, k, d), the best cosine similarity to any row of `approx`
/// (b, k', d) of the same example, averaged over rows and examples.
double naive_nccs(const at::Tensor& exact, const at::Tensor& approx);

/// The tournament from LibTorch ops, differentiable with autograd with respect to x and scores
/// (float64 recommended). Returns values (b, k, d), scores (b, k) in the input dtype, mask, indices.
NaiveResult torch_reference_successive_halving(const at::Tensor& x, const at::Tensor& scores,
                                               const at::Tensor& mask, int64_t k, double base, bool keep_order);

}  // namespace pyramidion_test
