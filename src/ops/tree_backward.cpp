// The score gradient through the tournament's trees (see tournament.h): the batched ATen
// composite, the reference of the fused CPU kernel (tree_backward_cpu.cpp) and of the CUDA kernel
// (the team program of tournament_program.h).
//
// Legend: b batch, n inputs, k outputs, L leaves per output tree, t nodes per tree at a level.
#include <ATen/ATen.h>

#include "ops/topk_ops.h"
#include "ops/tournament.h"

namespace pyramidion {
namespace detail {

at::Tensor scores_grad(const Tournament& t, const at::Tensor& leaf_dots, const at::Tensor& grad_scores,
                       double log_base) {
  return sh_tree_backward(pack_tournament(t), leaf_dots, grad_scores, log_base);
}

at::Tensor scores_grad_composite(const Tournament& t, const at::Tensor& leaf_dots, const at::Tensor& grad_scores,
                                 double log_base) {
  const int64_t b = leaf_dots.size(0), k = leaf_dots.size(1);
  std::vector<at::Tensor> dots(t.rounds + 1);
  dots[0] = leaf_dots;  // (b, k, L)
  for (int64_t h = 1; h <= t.rounds; ++h) {
    const auto child = dots[h - 1].unflatten(-1, {-1, 2});  // (b, k, t, 2)
    const auto& w = t.weight[h - 1];                         // (b, k, t)
    dots[h] = w * child.select(-1, 0) + (1 - w) * child.select(-1, 1);
  }
  auto rho = at::ones({b, k, 1}, leaf_dots.options());  // (b, k, 1)
  auto sigma = grad_scores.unsqueeze(-1);               // (b, k, 1)
  for (int64_t h = t.rounds; h >= 1; --h) {
    const auto& w = t.weight[h - 1];  // (b, k, t)
    const auto sigma_child = sh_node_backward(rho.reshape(-1), sigma.reshape(-1), w.reshape(-1),
                                              t.score[h - 1].reshape({-1, 2}), dots[h - 1].reshape({-1, 2}),
                                              log_base);  // (b*k*t, 2)
    sigma = sigma_child.view({b, k, 2 * w.size(2)});      // (b, k, 2t); no -1: b may be 0
    rho = at::stack({rho * w, rho * (1 - w)}, -1).flatten(-2);
  }
  // Leaves to inputs: padding inputs get 0.
  const auto flat = sigma.reshape({b, k * sigma.size(2)});  // (b, k*L)
  const auto g = flat.gather(1, t.input_leaf.clamp_min(0));  // (b, n)
  return g.masked_fill(t.input_leaf < 0, 0);
}

}  // namespace detail
}  // namespace pyramidion
