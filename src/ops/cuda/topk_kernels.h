// Framework-free CUDA launchers of the successive-halving top-k kernels: raw pointers, sizes and a
// stream; no LibTorch. The LibTorch binding (topk_binding.cpp) checks shapes, takes the device
// guard, passes the current stream and turns a returned error into an exception.
//
// Legend: b batch, n inputs, k outputs, L leaves per output tree, d representation size, N count.
// All arrays are contiguous, row-major. Index -1 marks an empty leaf (coefficient 0).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pyramidion {
namespace cuda {

/// y (b, k, d) = sum_l coef (b, k, L) * x (b, n, d)[index (b, k, L)]
template <typename T>
cudaError_t combine(const T* x, const int64_t* index, const T* coef, T* y, int64_t b, int64_t n, int64_t k,
                    int64_t L, int64_t d, cudaStream_t stream);

/// q (b, k, L) = <grad_y (b, k, d), x (b, n, d)[index (b, k, L)]>, 0 for empty leaves
template <typename T>
cudaError_t leaf_dot(const T* grad_y, const T* x, const int64_t* index, T* q, int64_t b, int64_t n, int64_t k,
                     int64_t L, int64_t d, cudaStream_t stream);

/// grad_x (b, n, d) = coef (b, n) * grad_y (b, k, d)[row (b, n)]
template <typename T>
cudaError_t expand(const T* grad_y, const int64_t* row, const T* coef, T* grad_x, int64_t b, int64_t n, int64_t k,
                   int64_t d, cudaStream_t stream);

/// kernels::pair_blend over N pairs: s (N, 2), valid (N, 2) -> w, score, valid (N)
template <typename T>
cudaError_t pair_blend(const T* s, const bool* valid, T log_base, T* w, T* score, bool* valid_out, int64_t N,
                       cudaStream_t stream);

/// kernels::node_backward over N nodes: rho, sigma, w (N); s_child, q_child (N, 2) -> sigma_child (N, 2)
template <typename T>
cudaError_t node_backward(const T* rho, const T* sigma, const T* w, const T* s_child, const T* q_child, T log_base,
                          T* sigma_child, int64_t N, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyramidion
