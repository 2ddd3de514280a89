// Schemas of the top-k operators, the public one and its private pieces, and the pieces' typed C++
// entry points (see topk_ops.h). Kernels register per backend: CPU in topk_cpu.cpp (and beside it),
// CUDA in src/ops/topk_cuda.cpp, Meta (shapes only, for torch.compile) in topk_meta.cpp.
#include "ops/topk_ops.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

TORCH_LIBRARY(pyramidion, m) {
  // The public operator (include/pyramidion/topk.h; from Python: torch.ops.pyramidion.
  // successive_halving_topk). Kernels: Autograd and CPU/CUDA in topk.cpp, Meta in topk_meta.cpp.
  m.def(
      "successive_halving_topk(Tensor x, Tensor scores, int k, Tensor? mask=None, float base=20.0, "
      "bool keep_order=False, bool hard=False) -> (Tensor values, Tensor scores, Tensor mask, Tensor indices)");
  // The private pieces it is made of.
  m.def("sh_checked_scores(Tensor scores, Tensor mask, str fn) -> Tensor");
  m.def("sh_tournament(Tensor scores, Tensor mask, int k, float log_base, bool keep_order) -> Tensor[]");
  m.def("sh_tree_backward(Tensor[] tree, Tensor leaf_dots, Tensor grad_scores, float log_base) -> Tensor");
  m.def("sh_rank(Tensor key) -> Tensor");
  m.def("sh_combine(Tensor x, Tensor index, Tensor coef) -> Tensor");
  m.def("sh_leaf_dot(Tensor grad_y, Tensor x, Tensor index) -> Tensor");
  m.def("sh_expand(Tensor grad_y, Tensor row, Tensor coef) -> Tensor");
  m.def("sh_pair_blend(Tensor s, Tensor valid, float log_base) -> (Tensor, Tensor, Tensor)");
  m.def(
      "sh_node_backward(Tensor rho, Tensor sigma, Tensor w, Tensor s_child, Tensor q_child, "
      "float log_base) -> Tensor");
}

namespace pyramidion {
namespace detail {
namespace {
template <typename Signature>
c10::TypedOperatorHandle<Signature> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}
}  // namespace

std::vector<at::Tensor> sh_tournament(const at::Tensor& scores, const at::Tensor& mask, int64_t k,
                                      double log_base, bool keep_order) {
  static const auto handle =
      op<std::vector<at::Tensor>(const at::Tensor&, const at::Tensor&, int64_t, double, bool)>(
          "pyramidion::sh_tournament");
  return handle.call(scores, mask, k, log_base, keep_order);
}

at::Tensor sh_tree_backward(const std::vector<at::Tensor>& tree, const at::Tensor& leaf_dots,
                            const at::Tensor& grad_scores, double log_base) {
  static const auto handle =
      op<at::Tensor(at::TensorList, const at::Tensor&, const at::Tensor&, double)>("pyramidion::sh_tree_backward");
  return handle.call(tree, leaf_dots, grad_scores, log_base);
}

at::Tensor sh_checked_scores(const at::Tensor& scores, const at::Tensor& mask, c10::string_view fn) {
  static const auto handle =
      op<at::Tensor(const at::Tensor&, const at::Tensor&, c10::string_view)>("pyramidion::sh_checked_scores");
  return handle.call(scores, mask, fn);
}

at::Tensor sh_rank(const at::Tensor& key) {
  static const auto handle = op<at::Tensor(const at::Tensor&)>("pyramidion::sh_rank");
  return handle.call(key);
}

at::Tensor sh_combine(const at::Tensor& x, const at::Tensor& index, const at::Tensor& coef) {
  static const auto handle = op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>(
      "pyramidion::sh_combine");
  return handle.call(x, index, coef);
}

at::Tensor sh_leaf_dot(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& index) {
  static const auto handle = op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>(
      "pyramidion::sh_leaf_dot");
  return handle.call(grad_y, x, index);
}

at::Tensor sh_expand(const at::Tensor& grad_y, const at::Tensor& row, const at::Tensor& coef) {
  static const auto handle = op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>(
      "pyramidion::sh_expand");
  return handle.call(grad_y, row, coef);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sh_pair_blend(const at::Tensor& s,
                                                             const at::Tensor& valid,
                                                             double log_base) {
  static const auto handle =
      op<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double)>(
          "pyramidion::sh_pair_blend");
  return handle.call(s, valid, log_base);
}

at::Tensor sh_node_backward(const at::Tensor& rho, const at::Tensor& sigma, const at::Tensor& w,
                            const at::Tensor& s_child, const at::Tensor& q_child, double log_base) {
  static const auto handle =
      op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                    const at::Tensor&, double)>("pyramidion::sh_node_backward");
  return handle.call(rho, sigma, w, s_child, q_child, log_base);
}

}  // namespace detail
}  // namespace pyramidion
