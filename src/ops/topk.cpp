// successive_halving_topk() and hard_topk(): the checking front and the autograd function.
// The tournament runs on the scores alone (tournament.cpp); the representations are read once in
// the forward pass (sh_combine) and once in the backward pass (sh_leaf_dot), and their gradient is
// written once (sh_expand), so memory and traffic are O(b * n * d).
//
// 16-bit inputs (bfloat16, float16): the scores are converted to float32 for the tournament, and
// everything derived from them (pair weights, blended scores, coefficients, leaf dots, the score
// gradient) stays float32; x, the values and x's gradient keep the input dtype, and the kernels
// accumulate in float32 (topk_ops.h). The outputs and gradients have the inputs' dtypes.
//
// Legend: b batch, n inputs, k outputs, d representation size, R rounds, L = 2^R leaves, t nodes
// per output tree at a level.
#include <pyramidion/topk.h>

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <torch/autograd.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "ops/topk_ops.h"
#include "ops/tournament.h"
#include "ops/topk_checks.h"

namespace pyramidion {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

void check_base(const char* fn, double base) {
  if (!std::isfinite(base) || base <= 1.0)
    throw std::invalid_argument(std::string(fn) + ": base must be finite and > 1, got " + std::to_string(base));
}

class SuccessiveHalving : public torch::autograd::Function<SuccessiveHalving> {
 public:
  // Returns values (b, k, d), scores (b, k), mask (b, k), indices (b, k).
  static tensor_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& scores,
                             const at::Tensor& mask, int64_t k, double log_base, bool keep_order) {
    const auto acc = at::toOpMathType(x.scalar_type());  // the tournament's dtype
    const auto clean = scores.to(acc).masked_fill(mask.logical_not(), 0);  // (b, n) padding scores never read
    auto t = detail::run_tournament(clean, mask, k, log_base, keep_order);
    auto values = detail::sh_combine(x, t.leaf_index, t.leaf_coef);  // (b, k, d)
    auto out_scores = t.score[t.rounds].reshape({x.size(0), k}).to(scores.scalar_type(), false, true);  // (b, k)
    // Saved: x and the tree (O(b * n) numbers besides x).
    tensor_list saved{x, t.leaf_index, t.leaf_coef, t.input_leaf, t.input_row};
    for (const auto& w : t.weight) saved.push_back(w);
    for (const auto& s : t.score) saved.push_back(s);
    ctx->save_for_backward(saved);
    ctx->saved_data["rounds"] = t.rounds;
    ctx->saved_data["log_base"] = log_base;
    ctx->mark_non_differentiable({t.out_mask, t.winner});
    return {values, out_scores, t.out_mask, t.winner};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const int64_t R = ctx->saved_data["rounds"].toInt();
    const double log_base = ctx->saved_data["log_base"].toDouble();
    detail::Tournament t;
    t.rounds = R;
    const auto& x = saved[0];
    t.leaf_index = saved[1];
    t.leaf_coef = saved[2];
    t.input_leaf = saved[3];
    t.input_row = saved[4];
    t.weight.assign(saved.begin() + 5, saved.begin() + 5 + R);
    t.score.assign(saved.begin() + 5 + R, saved.begin() + 6 + 2 * R);
    const int64_t b = x.size(0), k = t.leaf_index.size(1);
    const auto acc = t.leaf_coef.scalar_type();  // the tournament's dtype
    auto grad_values = grads[0].defined() ? grads[0] : at::zeros({b, k, x.size(2)}, x.options());  // (b, k, d)
    auto grad_scores = grads[1].defined() ? grads[1].to(acc) : at::zeros({b, k}, x.options().dtype(acc));  // (b, k)

    at::Tensor grad_x, grad_s;
    if (ctx->needs_input_grad(0)) {
      const int64_t L = t.leaf_coef.size(2);
      const auto coef = t.leaf_coef.view({b, k * L}).gather(1, t.input_leaf.clamp_min(0))
                            .masked_fill(t.input_leaf < 0, 0);            // (b, n)
      grad_x = detail::sh_expand(grad_values, t.input_row, coef);        // (b, n, d)
    }
    if (ctx->needs_input_grad(1)) {
      const auto dots = detail::sh_leaf_dot(grad_values, x, t.leaf_index);               // (b, k, L), acc
      grad_s = detail::scores_grad(t, dots, grad_scores, log_base).to(x.scalar_type());  // (b, n)
    }
    return {grad_x, grad_s, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// Exact top-k on validated arguments: stable descending sort with padding last, the first k.
TopKResult select_top_k(const at::Tensor& x, const at::Tensor& scores, int64_t k, const at::Tensor& mask,
                        bool keep_order) {
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2);
  const auto key = scores.detach().masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  auto idx = std::get<1>(key.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true)).narrow(1, 0, k);  // (b, k)
  auto valid = mask.gather(1, idx);                                                                    // (b, k)
  if (keep_order) {
    const auto perm = detail::keep_order_permutation(idx, valid, n);
    idx = idx.gather(1, perm);
    valid = valid.gather(1, perm);
  }
  const auto values = x.gather(1, idx.unsqueeze(-1).expand({b, k, d}))
                          .masked_fill(valid.logical_not().unsqueeze(-1), 0);  // (b, k, d)
  const auto out_scores = scores.gather(1, idx).masked_fill(valid.logical_not(), 0);  // (b, k)
  return {values, out_scores, valid, idx.contiguous()};
}

}  // namespace

TopKResult successive_halving_topk(const at::Tensor& x, const at::Tensor& scores, int64_t k,
                                   const TopKOptions& options) {
  constexpr const char* fn = "pyramidion::successive_halving_topk";
  const auto mask = detail::check_topk_args(fn, x, scores, k, options.mask());
  check_base(fn, options.base());
  if (options.hard()) return select_top_k(x, scores, k, mask, options.keep_order());
  // Contiguous once: the forward's combine and the backward's leaf dots read the saved x as it is.
  const auto out =
      SuccessiveHalving::apply(x.contiguous(), scores, mask, k, std::log(options.base()), options.keep_order());
  return {out[0], out[1], out[2], out[3]};
}

TopKResult hard_topk(const at::Tensor& x, const at::Tensor& scores, int64_t k, const TopKOptions& options) {
  const auto mask = detail::check_topk_args("pyramidion::hard_topk", x, scores, k, options.mask());
  return select_top_k(x, scores, k, mask, options.keep_order());
}

}  // namespace pyramidion
