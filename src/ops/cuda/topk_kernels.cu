// CUDA kernels of the successive-halving top-k (see topk_kernels.h). No LibTorch here: nvcc builds
// this file quickly, and the binding owns every framework concern. The per-element math is shared
// with the CPU kernels through topk_math.h.
//
// Legend: b batch, n inputs, k outputs, L leaves per output tree, d representation size, N count.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "ops/cuda/topk_kernels.h"
#include "ops/topk_math.h"

namespace pyramidion {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

int64_t blocks_for(int64_t count, int threads) { return (count + threads - 1) / threads; }

// Loads and stores of the storage type T in the accumulation type A.
template <typename A>
__device__ __forceinline__ A load(A v) {
  return v;
}
__device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float load(__half v) { return __half2float(v); }
template <typename T, typename A>
__device__ __forceinline__ T store(A v) {  // float -> float, double -> double
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16, float>(float v) {
  return __float2bfloat16(v);
}
template <>
__device__ __forceinline__ __half store<__half, float>(float v) {
  return __float2half(v);
}

// The device type of a storage type of the header.
template <typename T>
struct Device {
  using type = T;
};
template <>
struct Device<BFloat16Bits> {
  using type = __nv_bfloat16;
};
template <>
struct Device<HalfBits> {
  using type = __half;
};
template <typename T>
const typename Device<T>::type* device(const T* p) {
  return reinterpret_cast<const typename Device<T>::type*>(p);
}
template <typename T>
typename Device<T>::type* device(T* p) {
  return reinterpret_cast<typename Device<T>::type*>(p);
}

// One block per output row (b*k), threads stride over d: each thread sums its column over the
// row's leaves. Reads of x rows are coalesced.
template <typename T, typename A>
__global__ void combine_kernel(const T* __restrict__ x, const int64_t* __restrict__ index,
                               const A* __restrict__ coef, T* __restrict__ y, int64_t n, int64_t k,
                               int64_t L, int64_t d) {
  const int64_t row = blockIdx.x;  // in [0, b*k)
  const int64_t batch = row / k;
  const int64_t* idx = index + row * L;
  const A* c = coef + row * L;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    A acc = 0;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t src = idx[l];
      if (src >= 0) acc += c[l] * load(x[(batch * n + src) * d + j]);
    }
    y[row * d + j] = store<T>(acc);
  }
}

template <typename T>
__device__ T warp_sum(T v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// One warp per leaf (b*k*L warps): a dot product of d elements reduced with shuffles.
template <typename T, typename A>
__global__ void leaf_dot_kernel(const T* __restrict__ grad_y, const T* __restrict__ x,
                                const int64_t* __restrict__ index, A* __restrict__ q, int64_t n, int64_t k,
                                int64_t L, int64_t d, int64_t leaves) {
  const int64_t leaf = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (leaf >= leaves) return;  // whole warps exit together: leaf is uniform across a warp
  const int64_t row = leaf / L;
  const int64_t batch = row / k;
  const int64_t src = index[leaf];
  A acc = 0;
  if (src >= 0) {
    const T* g = grad_y + row * d;
    const T* in = x + (batch * n + src) * d;
    for (int64_t j = lane; j < d; j += kWarp) acc += load(g[j]) * load(in[j]);
  }
  acc = warp_sum(acc);
  if (lane == 0) q[leaf] = acc;
}

// One block per input row (b*n): every input belongs to exactly one output, so no atomics.
template <typename T, typename A>
__global__ void expand_kernel(const T* __restrict__ grad_y, const int64_t* __restrict__ row,
                              const A* __restrict__ coef, T* __restrict__ grad_x, int64_t n, int64_t k,
                              int64_t d) {
  const int64_t p = blockIdx.x;  // in [0, b*n)
  const int64_t batch = p / n;
  const A c = coef[p];
  const T* g = grad_y + (batch * k + row[p]) * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) grad_x[p * d + j] = store<T>(c * load(g[j]));
}

template <typename T>
__global__ void pair_blend_kernel(const T* __restrict__ s, const bool* __restrict__ valid, T log_base,
                                  T* __restrict__ w, T* __restrict__ score, bool* __restrict__ valid_out,
                                  int64_t N) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= N) return;
  kernels::pair_blend(s[2 * i], s[2 * i + 1], valid[2 * i], valid[2 * i + 1], log_base, w + i, score + i,
                      valid_out + i);
}

template <typename T>
__global__ void node_backward_kernel(const T* __restrict__ rho, const T* __restrict__ sigma,
                                     const T* __restrict__ w, const T* __restrict__ s_child,
                                     const T* __restrict__ q_child, T log_base, T* __restrict__ sigma_child,
                                     int64_t N) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= N) return;
  kernels::node_backward(rho[i], sigma[i], w[i], s_child[2 * i], s_child[2 * i + 1], q_child[2 * i],
                         q_child[2 * i + 1], log_base, sigma_child + 2 * i, sigma_child + 2 * i + 1);
}

// Threads per block for a row of d elements: a multiple of the warp size, at most kThreads.
int row_threads(int64_t d) {
  return static_cast<int>(std::min<int64_t>(kThreads, std::max<int64_t>(kWarp, (d + kWarp - 1) / kWarp * kWarp)));
}

}  // namespace

template <typename T, typename A>
cudaError_t combine(const T* x, const int64_t* index, const A* coef, T* y, int64_t b, int64_t n, int64_t k,
                    int64_t L, int64_t d, cudaStream_t stream) {
  if (b * k == 0 || d == 0) return cudaSuccess;
  combine_kernel<<<static_cast<unsigned>(b * k), row_threads(d), 0, stream>>>(device(x), index, coef, device(y), n,
                                                                              k, L, d);
  return cudaGetLastError();
}

template <typename T, typename A>
cudaError_t leaf_dot(const T* grad_y, const T* x, const int64_t* index, A* q, int64_t b, int64_t n, int64_t k,
                     int64_t L, int64_t d, cudaStream_t stream) {
  const int64_t leaves = b * k * L;
  if (leaves == 0) return cudaSuccess;
  const int64_t blocks = blocks_for(leaves * kWarp, kThreads);
  leaf_dot_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(device(grad_y), device(x), index, q, n, k,
                                                                         L, d, leaves);
  return cudaGetLastError();
}

template <typename T, typename A>
cudaError_t expand(const T* grad_y, const int64_t* row, const A* coef, T* grad_x, int64_t b, int64_t n, int64_t k,
                   int64_t d, cudaStream_t stream) {
  if (b * n == 0 || d == 0) return cudaSuccess;
  expand_kernel<<<static_cast<unsigned>(b * n), row_threads(d), 0, stream>>>(device(grad_y), row, coef,
                                                                            device(grad_x), n, k, d);
  return cudaGetLastError();
}

template <typename T>
cudaError_t pair_blend(const T* s, const bool* valid, T log_base, T* w, T* score, bool* valid_out, int64_t N,
                       cudaStream_t stream) {
  if (N == 0) return cudaSuccess;
  pair_blend_kernel<T><<<static_cast<unsigned>(blocks_for(N, kThreads)), kThreads, 0, stream>>>(
      s, valid, log_base, w, score, valid_out, N);
  return cudaGetLastError();
}

template <typename T>
cudaError_t node_backward(const T* rho, const T* sigma, const T* w, const T* s_child, const T* q_child, T log_base,
                          T* sigma_child, int64_t N, cudaStream_t stream) {
  if (N == 0) return cudaSuccess;
  node_backward_kernel<T><<<static_cast<unsigned>(blocks_for(N, kThreads)), kThreads, 0, stream>>>(
      rho, sigma, w, s_child, q_child, log_base, sigma_child, N);
  return cudaGetLastError();
}

#define PYR_INSTANTIATE_GATHERS(T, A)                                                                           \
  template cudaError_t combine<T, A>(const T*, const int64_t*, const A*, T*, int64_t, int64_t, int64_t, int64_t, \
                                     int64_t, cudaStream_t);                                                      \
  template cudaError_t leaf_dot<T, A>(const T*, const T*, const int64_t*, A*, int64_t, int64_t, int64_t, int64_t, \
                                      int64_t, cudaStream_t);                                                     \
  template cudaError_t expand<T, A>(const T*, const int64_t*, const A*, T*, int64_t, int64_t, int64_t, int64_t,  \
                                    cudaStream_t);
#define PYR_INSTANTIATE_SCORES(T)                                                                          \
  template cudaError_t pair_blend<T>(const T*, const bool*, T, T*, T*, bool*, int64_t, cudaStream_t);     \
  template cudaError_t node_backward<T>(const T*, const T*, const T*, const T*, const T*, T, T*, int64_t, \
                                        cudaStream_t);
PYR_INSTANTIATE_GATHERS(float, float)
PYR_INSTANTIATE_GATHERS(double, double)
PYR_INSTANTIATE_GATHERS(BFloat16Bits, float)
PYR_INSTANTIATE_GATHERS(HalfBits, float)
PYR_INSTANTIATE_SCORES(float)
PYR_INSTANTIATE_SCORES(double)
#undef PYR_INSTANTIATE_GATHERS
#undef PYR_INSTANTIATE_SCORES

}  // namespace cuda
}  // namespace pyramidion
