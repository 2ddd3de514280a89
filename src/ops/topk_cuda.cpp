// LibTorch binding of the CUDA kernels (topk_kernels.cu): checks shapes with named macros, takes
// the device guard, launches on the current stream, turns a launch error into an exception, and
// registers each kernel as the CUDA implementation of the operator declared in src/ops/ops.cpp.
// Nothing here waits for the device: no .item(), no copy to the host (CUDA-graph capturable).
//
// Legend: b batch, n inputs, k outputs, L leaves per output tree, d representation size, N count.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "ops/kernel_checks.h"
#include "cuda/topk_kernels.h"
#include "ops/tournament.h"

#define PYR_CHECK_CUDA(x) TORCH_CHECK((x).is_cuda(), #x " must be a CUDA tensor, got one on ", (x).device())
#define PYR_CUDA_OK(call)                                                                   \
  do {                                                                                      \
    const cudaError_t err_ = (call);                                                        \
    TORCH_CHECK(err_ == cudaSuccess, "pyramidion CUDA kernel failed: ", cudaGetErrorString(err_)); \
  } while (0)

namespace pyramidion {
namespace detail {
namespace {

// The kernels' storage type of a LibTorch scalar type (topk_kernels.h): the 16-bit types by layout.
template <typename T>
struct Storage {
  using type = T;
};
template <>
struct Storage<c10::BFloat16> {
  using type = cuda::BFloat16Bits;
};
template <>
struct Storage<c10::Half> {
  using type = cuda::HalfBits;
};
template <typename T>
const typename Storage<T>::type* storage(const at::Tensor& t) {
  return reinterpret_cast<const typename Storage<T>::type*>(t.data_ptr<T>());
}
template <typename T>
typename Storage<T>::type* mutable_storage(at::Tensor& t) {
  return reinterpret_cast<typename Storage<T>::type*>(t.data_ptr<T>());
}

// A launch's grid, checked before it is made: a grid above CUDA's limits fails with CUDA's terse
// message, and one of 2^32 blocks or more would wrap when cast and leave outputs unwritten.
// `blocks` = ceil(count / per_block) blocks for `what` = count.
void check_grid(const char* op, const char* what, int64_t count, int64_t per_block = 1,
                int64_t limit = cuda::kMaxGridX) {
  const int64_t blocks = (count + per_block - 1) / per_block;
  TORCH_CHECK(blocks <= limit, "pyramidion::", op, ": ", what, " = ", count, " needs ", blocks,
              " CUDA blocks, above the grid limit of ", limit, "; split the batch");
}

// The tournament: one launch, one block per example (cuda::tournament).
std::vector<at::Tensor> tournament_cuda(const at::Tensor& scores_in, const at::Tensor& mask_in, int64_t k,
                                        double log_base, bool keep_order) {
  PYR_CHECK_CUDA(scores_in);
  PYR_CHECK_SAME_DEVICE(mask_in, scores_in);
  const c10::cuda::CUDAGuard guard(scores_in.device());
  const auto scores = scores_in.contiguous();  // (b, n)
  const auto mask = mask_in.contiguous();      // (b, n)
  TORCH_CHECK(scores.dim() == 2, "scores must have shape (b, n), got ", scores.sizes());
  const int64_t b = scores.size(0), n = scores.size(1);
  PYR_CHECK_SHAPE(mask, b, n);
  PYR_CHECK_DTYPE(mask, at::kBool);
  TORCH_CHECK(k >= 1 && k <= n, "k must satisfy 1 <= k <= n = ", n, ", got ", k);
  TORCH_CHECK(n <= std::numeric_limits<int32_t>::max(), "the CUDA tournament takes n < 2^31 inputs, got n = ", n);
  check_grid("sh_tournament", "b", b);
  Tournament t = empty_tournament(b, n, k, scores.options());
  if (b == 0) return pack_tournament(t);
  const auto shape = kernels::tournament_shape(n, k);
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "sh_tournament_cuda", [&] {
    const int64_t stride = cuda::tournament_workspace_bytes<scalar_t>(shape);
    TORCH_CHECK(stride >= 0, "pyramidion CUDA kernel failed: ",
                cudaGetErrorString(static_cast<cudaError_t>(-stride)));
    auto workspace = at::empty({b * stride}, scores.options().dtype(at::kByte));  // 16-byte aligned rows
    PYR_CUDA_OK(cuda::tournament(scores.data_ptr<scalar_t>(), mask.data_ptr<bool>(), shape,
                                 static_cast<scalar_t>(log_base), keep_order, b, workspace.data_ptr<uint8_t>(),
                                 program_outputs<scalar_t>(t), at::cuda::getCurrentCUDAStream()));
  });
  return pack_tournament(t);
}

// The score gradient through the trees: one launch, one block per tree, then one gather.
at::Tensor tree_backward_cuda(at::TensorList tree, const at::Tensor& leaf_dots_in, const at::Tensor& grad_scores_in,
                              double log_base) {
  const Tournament t = unpack_tournament(tree.vec());
  PYR_CHECK_CUDA(leaf_dots_in);
  PYR_CHECK_SAME_DEVICE(grad_scores_in, leaf_dots_in);
  PYR_CHECK_SAME_DEVICE(t.input_leaf, leaf_dots_in);
  const c10::cuda::CUDAGuard guard(leaf_dots_in.device());
  const auto dots = leaf_dots_in.contiguous();        // (b, k, L)
  const auto gs = grad_scores_in.contiguous();        // (b, k)
  const auto input_leaf = t.input_leaf.contiguous();  // (b, n)
  TORCH_CHECK(dots.dim() == 3 && input_leaf.dim() == 2, "leaf_dots must have shape (b, k, L), got ", dots.sizes());
  const int64_t b = dots.size(0), k = dots.size(1), L = dots.size(2), n = input_leaf.size(1), R = t.rounds;
  TORCH_CHECK(R >= 1 && R <= kernels::kMaxRounds && L == (int64_t{1} << R), "leaf_dots has ", L,
              " leaves per tree, the tree ", R, " rounds");
  PYR_CHECK_SHAPE(gs, b, k);
  PYR_CHECK_SHAPE(input_leaf, b, n);
  PYR_CHECK_DTYPE(gs, dots.scalar_type());
  check_grid("sh_tree_backward", "b*k", b * k);
  check_grid("sh_tree_backward", "b*n", b * n, cuda::kBlockThreads);
  std::vector<at::Tensor> weight, score;  // contiguous, (b, k, L >> h)
  for (int64_t h = 1; h <= R; ++h) {
    weight.push_back(t.weight[h - 1].contiguous());
    PYR_CHECK_SHAPE(weight.back(), b, k, L >> h);
    PYR_CHECK_DTYPE(weight.back(), dots.scalar_type());
  }
  for (int64_t h = 0; h <= R; ++h) {
    score.push_back(t.score[h].contiguous());
    PYR_CHECK_SHAPE(score.back(), b, k, L >> h);
    PYR_CHECK_DTYPE(score.back(), dots.scalar_type());
  }
  auto grad = at::empty({b, n}, dots.options());  // (b, n)
  AT_DISPATCH_FLOATING_TYPES(dots.scalar_type(), "sh_tree_backward_cuda", [&] {
    cuda::TreeLevels<scalar_t> levels;
    for (int64_t h = 1; h <= R; ++h) levels.weight[h - 1] = weight[h - 1].data_ptr<scalar_t>();
    for (int64_t h = 0; h <= R; ++h) levels.score[h] = score[h].data_ptr<scalar_t>();
    auto scratch = at::empty({b * k * 6 * L}, dots.options());  // q, rho, sigma of every tree
    auto leaf_sigma = at::empty({b, k * L}, dots.options());    // (b, k*L)
    PYR_CUDA_OK(cuda::tree_backward<scalar_t>(levels, R, dots.data_ptr<scalar_t>(), gs.data_ptr<scalar_t>(),
                                              input_leaf.data_ptr<int64_t>(), static_cast<scalar_t>(log_base), b, n,
                                              k, scratch.data_ptr<scalar_t>(), leaf_sigma.data_ptr<scalar_t>(),
                                              grad.data_ptr<scalar_t>(), at::cuda::getCurrentCUDAStream()));
  });
  return grad;
}

// LibTorch's CUDA sort is a radix sort already: the stable descending argsort is all we need.
at::Tensor rank_cuda(const at::Tensor& key) {
  PYR_CHECK_CUDA(key);
  TORCH_CHECK(key.dim() == 2, "key must have shape (b, m), got ", key.sizes());
  const c10::cuda::CUDAGuard guard(key.device());
  return std::get<1>(key.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
}

at::Tensor combine_cuda(const at::Tensor& x_in, const at::Tensor& index_in, const at::Tensor& coef_in) {
  PYR_CHECK_CUDA(x_in);
  PYR_CHECK_SAME_DEVICE(index_in, x_in);
  PYR_CHECK_SAME_DEVICE(coef_in, x_in);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto x = x_in.contiguous(), index = index_in.contiguous(), coef = coef_in.contiguous();
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2), k = index.size(1), L = index.size(2);
  PYR_CHECK_SHAPE(index, b, k, L);
  PYR_CHECK_SHAPE(coef, b, k, L);
  PYR_CHECK_DTYPE(index, at::kLong);
  PYR_CHECK_DTYPE(coef, at::toOpMathType(x.scalar_type()));
  check_grid("sh_combine", "b*k", b * k);
  check_grid("sh_combine", "d", d, 32, cuda::kMaxGridY);
  auto y = at::empty({b, k, d}, x.options());  // (b, k, d)
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "sh_combine_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    PYR_CUDA_OK(cuda::combine(storage<scalar_t>(x), index.data_ptr<int64_t>(), coef.data_ptr<acc_t>(),
                              mutable_storage<scalar_t>(y), b, n, k, L, d, at::cuda::getCurrentCUDAStream()));
  });
  return y;
}

at::Tensor leaf_dot_cuda(const at::Tensor& grad_y_in, const at::Tensor& x_in, const at::Tensor& index_in) {
  PYR_CHECK_CUDA(x_in);
  PYR_CHECK_SAME_DEVICE(grad_y_in, x_in);
  PYR_CHECK_SAME_DEVICE(index_in, x_in);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto gy = grad_y_in.contiguous(), x = x_in.contiguous(), index = index_in.contiguous();
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2), k = index.size(1), L = index.size(2);
  PYR_CHECK_SHAPE(gy, b, k, d);
  PYR_CHECK_SHAPE(index, b, k, L);
  PYR_CHECK_DTYPE(index, at::kLong);
  PYR_CHECK_DTYPE(gy, x.scalar_type());
  check_grid("sh_leaf_dot", "b*k*L", b * k * L, cuda::kBlockThreads / 32);  // a warp per leaf
  auto q = at::empty({b, k, L}, x.options().dtype(at::toOpMathType(x.scalar_type())));  // (b, k, L)
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "sh_leaf_dot_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    PYR_CUDA_OK(cuda::leaf_dot(storage<scalar_t>(gy), storage<scalar_t>(x), index.data_ptr<int64_t>(),
                               q.data_ptr<acc_t>(), b, n, k, L, d, at::cuda::getCurrentCUDAStream()));
  });
  return q;
}

at::Tensor expand_cuda(const at::Tensor& grad_y_in, const at::Tensor& row_in, const at::Tensor& coef_in) {
  PYR_CHECK_CUDA(grad_y_in);
  PYR_CHECK_SAME_DEVICE(row_in, grad_y_in);
  PYR_CHECK_SAME_DEVICE(coef_in, grad_y_in);
  const c10::cuda::CUDAGuard guard(grad_y_in.device());
  const auto gy = grad_y_in.contiguous(), row = row_in.contiguous(), coef = coef_in.contiguous();
  const int64_t b = gy.size(0), k = gy.size(1), d = gy.size(2), n = row.size(1);
  PYR_CHECK_SHAPE(row, b, n);
  PYR_CHECK_SHAPE(coef, b, n);
  PYR_CHECK_DTYPE(row, at::kLong);
  PYR_CHECK_DTYPE(coef, at::toOpMathType(gy.scalar_type()));
  check_grid("sh_expand", "b*n", b * n);
  auto gx = at::empty({b, n, d}, gy.options());  // (b, n, d)
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, gy.scalar_type(), "sh_expand_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    PYR_CUDA_OK(cuda::expand(storage<scalar_t>(gy), row.data_ptr<int64_t>(), coef.data_ptr<acc_t>(),
                             mutable_storage<scalar_t>(gx), b, n, k, d, at::cuda::getCurrentCUDAStream()));
  });
  return gx;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> pair_blend_cuda(const at::Tensor& s_in, const at::Tensor& valid_in,
                                                               double log_base) {
  PYR_CHECK_CUDA(s_in);
  PYR_CHECK_SAME_DEVICE(valid_in, s_in);
  const c10::cuda::CUDAGuard guard(s_in.device());
  const auto s = s_in.contiguous(), valid = valid_in.contiguous();
  const int64_t N = s.size(0);
  PYR_CHECK_SHAPE(s, N, 2);
  PYR_CHECK_SHAPE(valid, N, 2);
  PYR_CHECK_DTYPE(valid, at::kBool);
  check_grid("sh_pair_blend", "N", N, cuda::kBlockThreads);
  auto w = at::empty({N}, s.options()), score = at::empty({N}, s.options());
  auto valid_out = at::empty({N}, valid.options());
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "sh_pair_blend_cuda", [&] {
    PYR_CUDA_OK(cuda::pair_blend<scalar_t>(s.data_ptr<scalar_t>(), valid.data_ptr<bool>(),
                                           static_cast<scalar_t>(log_base), w.data_ptr<scalar_t>(),
                                           score.data_ptr<scalar_t>(), valid_out.data_ptr<bool>(), N,
                                           at::cuda::getCurrentCUDAStream()));
  });
  return {w, score, valid_out};
}

at::Tensor node_backward_cuda(const at::Tensor& rho_in, const at::Tensor& sigma_in, const at::Tensor& w_in,
                              const at::Tensor& s_child_in, const at::Tensor& q_child_in, double log_base) {
  PYR_CHECK_CUDA(rho_in);
  for (const auto* t : {&sigma_in, &w_in, &s_child_in, &q_child_in}) PYR_CHECK_SAME_DEVICE(*t, rho_in);
  const c10::cuda::CUDAGuard guard(rho_in.device());
  const auto rho = rho_in.contiguous(), sigma = sigma_in.contiguous(), w = w_in.contiguous();
  const auto s_child = s_child_in.contiguous(), q_child = q_child_in.contiguous();
  const int64_t N = rho.numel();
  PYR_CHECK_SHAPE(sigma, N);
  PYR_CHECK_SHAPE(w, N);
  PYR_CHECK_SHAPE(s_child, N, 2);
  PYR_CHECK_SHAPE(q_child, N, 2);
  check_grid("sh_node_backward", "N", N, cuda::kBlockThreads);
  auto out = at::empty({N, 2}, rho.options());  // (N, 2)
  AT_DISPATCH_FLOATING_TYPES(rho.scalar_type(), "sh_node_backward_cuda", [&] {
    PYR_CUDA_OK(cuda::node_backward<scalar_t>(rho.data_ptr<scalar_t>(), sigma.data_ptr<scalar_t>(),
                                              w.data_ptr<scalar_t>(), s_child.data_ptr<scalar_t>(),
                                              q_child.data_ptr<scalar_t>(), static_cast<scalar_t>(log_base),
                                              out.data_ptr<scalar_t>(), N, at::cuda::getCurrentCUDAStream()));
  });
  return out;
}

}  // namespace
}  // namespace detail
}  // namespace pyramidion

TORCH_LIBRARY_IMPL(pyramidion, CUDA, m) {
  using namespace pyramidion::detail;
  m.impl("sh_tournament", &tournament_cuda);
  m.impl("sh_tree_backward", &tree_backward_cuda);
  m.impl("sh_rank", &rank_cuda);
  m.impl("sh_combine", &combine_cuda);
  m.impl("sh_leaf_dot", &leaf_dot_cuda);
  m.impl("sh_expand", &expand_cuda);
  m.impl("sh_pair_blend", &pair_blend_cuda);
  m.impl("sh_node_backward", &node_backward_cuda);
}
