// Framework-free CUDA launchers of the successive-halving top-k kernels: raw pointers, sizes and a
// stream; no LibTorch. The LibTorch binding (topk_binding.cpp) checks shapes, takes the device
// guard, passes the current stream and turns a returned error into an exception.
//
// Legend: b batch, n inputs, k outputs, L leaves per output tree, d representation size, N count.
// All arrays are contiguous, row-major. Index -1 marks an empty leaf (coefficient 0).
//
// Precision: the representations (storage type T: float, double, BFloat16Bits or HalfBits) are
// read and written in T and accumulated in A (double for double, float otherwise); coefficients,
// leaf dots and everything of the scores are A (ops/topk_ops.h, "Precision").
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pyramidion {
namespace cuda {

/// The bit layouts of CUDA's __nv_bfloat16 and __half (and of c10::BFloat16 and c10::Half), so that
/// this header needs neither CUDA's fp16 headers nor LibTorch's.
struct BFloat16Bits {
  uint16_t bits;
};
struct HalfBits {
  uint16_t bits;
};

/// y (b, k, d) = sum_l coef (b, k, L) * x (b, n, d)[index (b, k, L)]
template <typename T, typename A>
cudaError_t combine(const T* x, const int64_t* index, const A* coef, T* y, int64_t b, int64_t n, int64_t k,
                    int64_t L, int64_t d, cudaStream_t stream);

/// q (b, k, L) = <grad_y (b, k, d), x (b, n, d)[index (b, k, L)]>, 0 for empty leaves
template <typename T, typename A>
cudaError_t leaf_dot(const T* grad_y, const T* x, const int64_t* index, A* q, int64_t b, int64_t n, int64_t k,
                     int64_t L, int64_t d, cudaStream_t stream);

/// grad_x (b, n, d) = coef (b, n) * grad_y (b, k, d)[row (b, n)]
template <typename T, typename A>
cudaError_t expand(const T* grad_y, const int64_t* row, const A* coef, T* grad_x, int64_t b, int64_t n, int64_t k,
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
