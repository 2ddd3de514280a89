// Meta kernels of the top-k operators: the outputs' shapes and dtypes without computing anything.
// torch.compile (through fake tensors) and anything else that runs on the `meta` device trace the
// operators with these; each mirrors the allocation of its CPU and CUDA kernels (topk_ops.h has
// the shapes). Shapes are static: a kernel reads sizes as integers, so tracing with symbolic sizes
// specializes them.
//
// Legend: b batch, n inputs, k outputs, L = 2^R leaves per output tree, d representation size,
// N any element count.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "ops/topk_checks.h"
#include "ops/tournament.h"

namespace pyramidion {
namespace detail {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> topk_meta(const at::Tensor& x, const at::Tensor& scores,
                                                                     int64_t k,
                                                                     const c10::optional<at::Tensor>& mask,
                                                                     double base, bool, bool) {
  check_operator_args(x, scores, k, mask, base);
  const int64_t b = x.size(0), d = x.size(2);
  return {at::empty({b, k, d}, x.options()),                     // values (b, k, d)
          at::empty({b, k}, scores.options()),                   // scores (b, k)
          at::empty({b, k}, x.options().dtype(at::kBool)),       // mask (b, k)
          at::empty({b, k}, x.options().dtype(at::kLong))};      // indices (b, k)
}

std::vector<at::Tensor> tournament_meta(const at::Tensor& scores, const at::Tensor&, int64_t k, double, bool) {
  return pack_tournament(empty_tournament(scores.size(0), scores.size(1), k, scores.options()));
}

at::Tensor tree_backward_meta(at::TensorList tree, const at::Tensor& leaf_dots, const at::Tensor&, double) {
  const auto& input_leaf = tree[4];  // (b, n), pack_tournament's order
  return at::empty({input_leaf.size(0), input_leaf.size(1)}, leaf_dots.options());  // (b, n)
}

at::Tensor rank_meta(const at::Tensor& key) { return at::empty(key.sizes(), key.options().dtype(at::kLong)); }

at::Tensor combine_meta(const at::Tensor& x, const at::Tensor& index, const at::Tensor&) {
  return at::empty({index.size(0), index.size(1), x.size(2)}, x.options());  // (b, k, d)
}

at::Tensor leaf_dot_meta(const at::Tensor&, const at::Tensor& x, const at::Tensor& index) {
  return at::empty(index.sizes(), x.options().dtype(at::toOpMathType(x.scalar_type())));  // (b, k, L)
}

at::Tensor expand_meta(const at::Tensor& grad_y, const at::Tensor& row, const at::Tensor&) {
  return at::empty({row.size(0), row.size(1), grad_y.size(2)}, grad_y.options());  // (b, n, d)
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> pair_blend_meta(const at::Tensor& s, const at::Tensor& valid, double) {
  const int64_t N = s.size(0);
  return {at::empty({N}, s.options()), at::empty({N}, s.options()), at::empty({N}, valid.options())};
}

at::Tensor node_backward_meta(const at::Tensor& rho, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                              const at::Tensor&, double) {
  return at::empty({rho.numel(), 2}, rho.options());  // (N, 2)
}

}  // namespace
}  // namespace detail
}  // namespace pyramidion

TORCH_LIBRARY_IMPL(pyramidion, Meta, m) {
  using namespace pyramidion::detail;
  m.impl("successive_halving_topk", &topk_meta);
  m.impl("sh_tournament", &tournament_meta);
  m.impl("sh_tree_backward", &tree_backward_meta);
  m.impl("sh_rank", &rank_meta);
  m.impl("sh_combine", &combine_meta);
  m.impl("sh_leaf_dot", &leaf_dot_meta);
  m.impl("sh_expand", &expand_meta);
  m.impl("sh_pair_blend", &pair_blend_meta);
  m.impl("sh_node_backward", &node_backward_meta);
}
