// successive_halving_topk() and hard_topk(): the checking front, the public dispatcher operator
// pyramidion::successive_halving_topk (schema in ops.cpp) and its kernels: Autograd (the autograd
// function below, the analytic backward) and CPU/CUDA (the same forward with nothing saved, for
// calls below autograd: inference mode). Its Meta kernel is in topk_meta.cpp. The C++ functions
// validate and call the operator, exactly as torch.ops.pyramidion.successive_halving_topk does
// from Python.
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
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "ops/topk_ops.h"
#include "ops/tournament.h"
#include "ops/topk_checks.h"

namespace pyramidion {
namespace {

constexpr const char* kOp = "pyramidion::successive_halving_topk";

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// The soft forward pass, shared by the Autograd kernel (which saves the tree) and the CPU/CUDA
// kernel (which does not): the tournament on the checked scores, then x read once.
struct ForwardPass {
  detail::Tournament tree;
  at::Tensor values;  // (b, k, d)
  at::Tensor scores;  // (b, k), the scores' dtype
};

ForwardPass soft_forward(const at::Tensor& x, const at::Tensor& scores, const at::Tensor& mask, int64_t k,
                         double log_base, bool keep_order) {
  const auto acc = at::toOpMathType(x.scalar_type());  // the tournament's dtype
  const auto clean = detail::sh_checked_scores(scores, mask, kOp).to(acc);  // (b, n) padding scores never read
  ForwardPass f;
  f.tree = detail::run_tournament(clean, mask, k, log_base, keep_order);
  f.values = detail::sh_combine(x, f.tree.leaf_index, f.tree.leaf_coef);  // (b, k, d)
  f.scores = f.tree.score[f.tree.rounds].reshape({x.size(0), k}).to(scores.scalar_type(), false, true);  // (b, k)
  return f;
}

class SuccessiveHalving : public torch::autograd::Function<SuccessiveHalving> {
 public:
  // Returns values (b, k, d), scores (b, k), mask (b, k), indices (b, k).
  static tensor_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& scores,
                             const at::Tensor& mask, int64_t k, double log_base, bool keep_order) {
    auto f = soft_forward(x, scores, mask, k, log_base, keep_order);
    const auto& t = f.tree;
    // Saved: x and the tree (O(b * n) numbers besides x).
    // (The mask and winners too, b * k numbers: the tree backward operator takes the whole packed
    // tree, and a traced call (torch.compile) cannot pass an undefined tensor in a list.)
    tensor_list saved{x, t.leaf_index, t.leaf_coef, t.input_leaf, t.input_row, t.out_mask, t.winner};
    for (const auto& w : t.weight) saved.push_back(w);
    for (const auto& s : t.score) saved.push_back(s);
    ctx->save_for_backward(saved);
    ctx->saved_data["rounds"] = t.rounds;
    ctx->saved_data["log_base"] = log_base;
    ctx->mark_non_differentiable({t.out_mask, t.winner});
    return {f.values, f.scores, t.out_mask, t.winner};
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
    t.out_mask = saved[5];
    t.winner = saved[6];
    t.weight.assign(saved.begin() + 7, saved.begin() + 7 + R);
    t.score.assign(saved.begin() + 7 + R, saved.begin() + 8 + 2 * R);
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
TopKResult select_top_k(const char* fn, const at::Tensor& x, const at::Tensor& scores, int64_t k,
                        const at::Tensor& mask, bool keep_order) {
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2);
  const auto key = detail::sh_checked_scores(scores.detach(), mask, fn)
                       .masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());  // (b, n)
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

using OpResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;  // values, scores, mask, indices

OpResult as_tuple(const TopKResult& r) { return {r.values, r.scores, r.mask, r.indices}; }

// The Autograd kernel: validation (metadata only), then the autograd function (soft) or the exact
// selection from differentiable ATen ops (hard).
OpResult topk_autograd(const at::Tensor& x, const at::Tensor& scores, int64_t k, const c10::optional<at::Tensor>& mask_in,
                       double base, bool keep_order, bool hard) {
  const auto mask = detail::check_operator_args(x, scores, k, mask_in, base);
  if (hard) return as_tuple(select_top_k(kOp, x, scores, k, mask, keep_order));
  // Contiguous once: the forward's combine and the backward's leaf dots read the saved x as it is.
  const auto out = SuccessiveHalving::apply(x.contiguous(), scores, mask, k, std::log(base), keep_order);
  return {out[0], out[1], out[2], out[3]};
}

// The CPU and CUDA kernel, reached below autograd (inference mode, or a caller that already
// handled autograd): the same forward, nothing saved.
OpResult topk_forward(const at::Tensor& x, const at::Tensor& scores, int64_t k, const c10::optional<at::Tensor>& mask_in,
                      double base, bool keep_order, bool hard) {
  const auto mask = detail::check_operator_args(x, scores, k, mask_in, base);
  if (hard) return as_tuple(select_top_k(kOp, x, scores, k, mask, keep_order));
  const auto f = soft_forward(x.contiguous(), scores, mask, k, std::log(base), keep_order);
  return {f.values, f.scores, f.tree.out_mask, f.tree.winner};
}

OpResult call_op(const at::Tensor& x, const at::Tensor& scores, int64_t k, const TopKOptions& options) {
  static const auto handle =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("pyramidion::successive_halving_topk", "")
          .typed<OpResult(const at::Tensor&, const at::Tensor&, int64_t, const c10::optional<at::Tensor>&, double,
                          bool, bool)>();
  const auto mask = options.mask().defined() ? c10::optional<at::Tensor>(options.mask()) : c10::nullopt;
  return handle.call(x, scores, k, mask, options.base(), options.keep_order(), options.hard());
}

TopKResult as_result(const OpResult& r) { return {std::get<0>(r), std::get<1>(r), std::get<2>(r), std::get<3>(r)}; }

}  // namespace

TopKResult successive_halving_topk(const at::Tensor& x, const at::Tensor& scores, int64_t k,
                                   const TopKOptions& options) {
  // Checked here too: the dispatcher cannot route a call whose tensors are all undefined.
  detail::check_topk_args(kOp, x, scores, k, options.mask());
  return as_result(call_op(x, scores, k, options));
}

TopKResult hard_topk(const at::Tensor& x, const at::Tensor& scores, int64_t k, const TopKOptions& options) {
  constexpr const char* fn = "pyramidion::hard_topk";
  const auto mask = detail::check_topk_args(fn, x, scores, k, options.mask());
  return select_top_k(fn, x, scores, k, mask, options.keep_order());
}

}  // namespace pyramidion

TORCH_LIBRARY_IMPL(pyramidion, Autograd, m) { m.impl("successive_halving_topk", &pyramidion::topk_autograd); }
TORCH_LIBRARY_IMPL(pyramidion, CPU, m) { m.impl("successive_halving_topk", &pyramidion::topk_forward); }
TORCH_LIBRARY_IMPL(pyramidion, CUDA, m) { m.impl("successive_halving_topk", &pyramidion::topk_forward); }
