// The iterative-softmax top-k (Goyal et al. 2017), the relaxation the operator paper compares the
// successive-halving operator with. Plain LibTorch ops; autograd differentiates it.
//
// Legend: b batch, n inputs, k outputs, d representation size.
#include <pyramidion/topk.h>

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "ops/topk_checks.h"

namespace pyramidion {

TopKResult iterative_softmax_topk(const at::Tensor& x, const at::Tensor& scores, int64_t k,
                                  const IterativeSoftmaxOptions& options) {
  constexpr const char* fn = "pyramidion::iterative_softmax_topk";
  const auto mask = detail::check_topk_args(fn, x, scores, k, options.mask());
  if (!x.is_cuda()) detail::check_finite_scores(fn, scores, mask);
  const double temperature = options.temperature();
  if (!std::isfinite(temperature) || temperature <= 0)
    throw std::invalid_argument(std::string(fn) + ": temperature must be finite and > 0, got " +
                                std::to_string(temperature));
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const auto s = scores.masked_fill(mask.logical_not(), 0);  // (b, n) padding scores never read
  // Padding rows never read either: p is 0 there, but 0 * NaN would still be NaN.
  const auto xs = x.masked_fill(mask.logical_not().unsqueeze(-1), 0);  // (b, n, d)
  auto available = mask.clone();                              // (b, n)
  std::vector<at::Tensor> values, out_scores, valid, indices;
  for (int64_t i = 0; i < k; ++i) {
    const auto key = s.detach().masked_fill(available.logical_not(), neg_inf);  // (b, n)
    const auto arg = std::get<1>(key.max(1, /*keepdim=*/true));                 // (b, 1)
    // The maximum itself is differentiable (only the argmax is discrete).
    const auto top = s.gather(1, arg);                                          // (b, 1)
    const auto any = available.any(1, /*keepdim=*/true);                        // (b, 1)
    // A peaked softmax around the current maximum, over the scores not chosen yet.
    const auto logits = (-(s - top.masked_fill(any.logical_not(), 0)).pow(2) / temperature)
                            .masked_fill(available.logical_not(), neg_inf);     // (b, n)
    const auto p = at::softmax(logits, 1).masked_fill(any.logical_not(), 0);    // (b, n)
    values.push_back(at::bmm(p.unsqueeze(1), xs));                              // (b, 1, d)
    out_scores.push_back((p * s).sum(1, /*keepdim=*/true));                     // (b, 1)
    valid.push_back(any);
    indices.push_back(arg);
    available = available.scatter(1, arg, false);
  }
  return {at::cat(values, 1), at::cat(out_scores, 1), at::cat(valid, 1), at::cat(indices, 1)};
}

}  // namespace pyramidion
