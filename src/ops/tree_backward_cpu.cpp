// CPU kernel of sh_tree_backward: the score gradient through one output's tree in one task
// (parallel over the b*k trees), then one gather from the leaves to the inputs, instead of the
// ~40 batched ATen ops of the composite (tree_backward.cpp). It follows the composite operation by
// operation (the same per-node math from topk_math.h, the same order of floating-point
// operations), so the two agree bit for bit; tests/ops/tournament_test.cpp checks it.
//
// Legend: b batch, n inputs, k outputs, R rounds, L = 2^R leaves per output tree, t nodes per tree
// at a level.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "ops/kernel_checks.h"
#include "ops/topk_math.h"
#include "ops/tournament.h"

namespace pyramidion {
namespace detail {
namespace {

at::Tensor tree_backward_cpu(at::TensorList tree, const at::Tensor& leaf_dots_in, const at::Tensor& grad_scores_in,
                             double log_base) {
  const Tournament t = unpack_tournament(tree.vec());
  const auto dots = leaf_dots_in.contiguous();     // (b, k, L)
  const auto gs = grad_scores_in.contiguous();     // (b, k)
  const auto input_leaf = t.input_leaf.contiguous();  // (b, n)
  const int64_t b = dots.size(0), k = dots.size(1), L = dots.size(2), n = input_leaf.size(1), R = t.rounds;
  PYR_CHECK_SHAPE(gs, b, k);
  TORCH_CHECK(L == (int64_t{1} << R), "leaf_dots has ", L, " leaves per tree, the tree ", (int64_t{1} << R));
  std::vector<at::Tensor> weight, score;  // contiguous copies (views are rare; this is cheap)
  for (const auto& w : t.weight) weight.push_back(w.contiguous());
  for (const auto& s : t.score) score.push_back(s.contiguous());
  auto leaf_sigma = at::empty({b, k * L}, dots.options());  // (b, k*L)
  auto grad = at::empty({b, n}, dots.options());            // (b, n)
  AT_DISPATCH_FLOATING_TYPES(dots.scalar_type(), "sh_tree_backward_cpu", [&] {
    using T = scalar_t;
    const auto lb = static_cast<T>(log_base);
    std::vector<const T*> wp, sp;
    for (const auto& w : weight) wp.push_back(w.data_ptr<T>());
    for (const auto& s : score) sp.push_back(s.data_ptr<T>());
    const T* dp = dots.data_ptr<T>();
    const T* gp = gs.data_ptr<T>();
    T* lp = leaf_sigma.data_ptr<T>();
    at::parallel_for(0, b * k, std::max<int64_t>(1, 4096 / L), [&](int64_t begin, int64_t end) {
      std::vector<std::vector<T>> q(R + 1);  // q[h]: (L >> h) node dots of one tree
      for (int64_t h = 0; h <= R; ++h) q[h].resize(L >> h);
      std::vector<T> rho(L), sigma(L), next_rho(L), next_sigma(L);
      for (int64_t tree_id = begin; tree_id < end; ++tree_id) {
        // Bottom-up: Q(node) = w Q(a) + (1 - w) Q(b).
        std::copy(dp + tree_id * L, dp + (tree_id + 1) * L, q[0].begin());
        for (int64_t h = 1; h <= R; ++h) {
          const int64_t t_nodes = L >> h;
          const T* w = wp[h - 1] + tree_id * t_nodes;
          for (int64_t j = 0; j < t_nodes; ++j) q[h][j] = w[j] * q[h - 1][2 * j] + (T(1) - w[j]) * q[h - 1][2 * j + 1];
        }
        // Top-down: rho and sigma from the root to the leaves.
        rho[0] = T(1);
        sigma[0] = gp[tree_id];
        for (int64_t h = R; h >= 1; --h) {
          const int64_t t_nodes = L >> h;
          const T* w = wp[h - 1] + tree_id * t_nodes;
          const T* s_child = sp[h - 1] + tree_id * 2 * t_nodes;
          for (int64_t j = 0; j < t_nodes; ++j) {
            kernels::node_backward(rho[j], sigma[j], w[j], s_child[2 * j], s_child[2 * j + 1], q[h - 1][2 * j],
                                   q[h - 1][2 * j + 1], lb, &next_sigma[2 * j], &next_sigma[2 * j + 1]);
            next_rho[2 * j] = rho[j] * w[j];
            next_rho[2 * j + 1] = rho[j] * (T(1) - w[j]);
          }
          std::swap(rho, next_rho);
          std::swap(sigma, next_sigma);
        }
        std::copy(sigma.begin(), sigma.begin() + L, lp + tree_id * L);
      }
    });
    // Leaves to inputs: padding inputs get 0.
    const int64_t* ip = input_leaf.data_ptr<int64_t>();
    T* out = grad.data_ptr<T>();
    at::parallel_for(0, b * n, 32768, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) out[p] = ip[p] >= 0 ? lp[p / n * k * L + ip[p]] : T(0);
    });
  });
  return grad;
}

}  // namespace
}  // namespace detail
}  // namespace pyramidion

TORCH_LIBRARY_IMPL(pyramidion, CPU, m) { m.impl("sh_tree_backward", &pyramidion::detail::tree_backward_cpu); }
