// Baseline (b) of the top-k benchmark: the successive-halving operator computed the way the authors'
// fairseq code computes it (arXiv 2010.15552; their TopKOperator): a loop over the batch, and for
// each example and round a handful of LibTorch ops, with autograd for the backward pass. It is the
// "obvious baseline" the library is measured against, and the independent check that the library
// computes the same thing (it is not used by the library).
//
// Legend: b batch, n inputs, k outputs, m candidates this round, d representation size.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pyramidion {
namespace bench {

struct NaiveTopKResult {
  at::Tensor values;  // (b, k, d)
  at::Tensor scores;  // (b, k)
};

/// True when n / k is a power of two, the only case the authors' code (and this baseline) handles.
bool naive_supports(int64_t n, int64_t k);

/// Per example, per round (m -> m/2): sort the scores descending; index_select the best half and
/// the reversed worst half of the scores and representations; weights softmax([base^s_a, base^s_b])
/// over each pair; blend scores and representations with them. No mask (every token is real).
/// x (b, n, d), scores (b, n); throws std::invalid_argument unless naive_supports(n, k).
NaiveTopKResult naive_successive_halving_topk(const at::Tensor& x, const at::Tensor& scores, int64_t k,
                                              double base);

}  // namespace bench
}  // namespace pyramidion
