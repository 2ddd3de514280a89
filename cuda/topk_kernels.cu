// CUDA kernels of the successive-halving top-k (see topk_kernels.h). No LibTorch here: nvcc builds
// this file quickly, and the binding owns every framework concern. The per-element math is shared
// with the CPU kernels through topk_math.h, the tournament and the tree backward through the team
// programs of tournament_program.h (compiled with --fmad=false: the same bits as the CPU).
//
// Legend: b batch, n inputs, k outputs, L leaves per output tree, d representation size, N count.
#ifdef PYR_CUDA_EMULATION
#include "cuda/emulation/device.h"  // the tests' CPU emulation: CUDA threads on OS threads
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
/// kernel<<<grid, block, shared_bytes, stream>>>, written so that the emulation can launch it too.
#define PYR_LAUNCH(grid, block, shared_bytes, stream, ...) __VA_ARGS__<<<grid, block, shared_bytes, stream>>>
#define PYR_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

#include <algorithm>

#include "cuda/topk_kernels.h"
#include "ops/topk_math.h"

// Device code: the GPU's, or the emulation's (where the host code paths of BlockTeam are not taken).
#if defined(__CUDA_ARCH__) || defined(PYR_CUDA_EMULATION)
#define PYR_DEVICE_CODE 1
#endif

namespace pyramidion {
namespace cuda {
#ifdef PYR_CUDA_EMULATION
inline namespace emulated {
#endif
namespace {

constexpr int kThreads = static_cast<int>(kBlockThreads);
constexpr int kWarp = 32;

int64_t blocks_for(int64_t count, int threads) { return (count + threads - 1) / threads; }
// A grid that the GPU can launch (a larger one fails, or above 2^32 - 1 wraps when cast): the
// binding checks the sizes before, so this only keeps a direct caller from a wrapped launch.
bool grid_fits(int64_t x, int64_t y = 1) { return x >= 1 && x <= kMaxGridX && y >= 1 && y <= kMaxGridY; }

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

// A thread block as the team of the programs of ops/tournament_program.h. blockDim.x is a
// multiple of the warp size. (Host versions exist only to satisfy the __host__ __device__ templates.)
struct BlockTeam {
  __host__ __device__ int64_t rank() const {
#ifdef PYR_DEVICE_CODE
    return threadIdx.x;
#else
    return 0;
#endif
  }
  __host__ __device__ int64_t size() const {
#ifdef PYR_DEVICE_CODE
    return blockDim.x;
#else
    return 1;
#endif
  }
  __host__ __device__ void sync() const {
#ifdef PYR_DEVICE_CODE
    __syncthreads();
#endif
  }
  // The block's sum: warp sums by shuffles, then every thread adds the warps' partials in warp
  // order (the same total everywhere). A barrier, as the programs require.
  __host__ __device__ int64_t sum(int64_t v) const {
#ifdef PYR_DEVICE_CODE
    __shared__ long long partial[32];
    long long x = v;
    for (int offset = kWarp / 2; offset > 0; offset /= 2) x += __shfl_down_sync(0xffffffffu, x, offset);
    __syncthreads();  // the previous sum's readers are done with partial
    if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = x;
    __syncthreads();
    long long total = 0;
    for (unsigned w = 0; w < blockDim.x / kWarp; ++w) total += partial[w];
    __syncthreads();
    return total;
#else
    return v;
#endif
  }
};

int warp_multiple(int64_t threads, int64_t at_most) {
  return static_cast<int>(std::min<int64_t>(at_most, std::max<int64_t>(kWarp, (threads + kWarp - 1) / kWarp * kWarp)));
}

// Shared memory of the tournament's sort: the (key, position) pairs of P = pow2_at_least(n).
template <typename T>
int64_t sort_shared_bytes(const kernels::TournamentShape& shape) {
  const int64_t P = kernels::pow2_at_least(shape.n);
  return kernels::align_up(P * int64_t(sizeof(kernels::UnsignedOf<T>))) + kernels::align_up(P * 4);
}

// The current device's dynamic shared memory per block: without opting in (48 KiB on every GPU
// so far) and the opt-in limit (227 KiB on an H100).
struct SharedLimits {
  int standard = 0, optin = 0;
};
cudaError_t shared_limits(SharedLimits* limits) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&limits->standard, cudaDevAttrMaxSharedMemoryPerBlock, device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&limits->optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  return err;
}

// Whether the sort fits the opt-in shared memory per block (with room for the team's static
// shared memory).
template <typename T>
bool sort_fits_in_shared(const kernels::TournamentShape& shape, const SharedLimits& limits) {
  return sort_shared_bytes<T>(shape) + 1024 <= limits.optin;
}

// One block per example: the whole tournament (ops/tournament_program.h, tournament_example).
template <typename T>
__global__ void __launch_bounds__(1024) tournament_kernel(const T* __restrict__ scores, const bool* __restrict__ mask,
                                  kernels::TournamentShape shape, T log_base, bool keep_order,
                                  unsigned char* __restrict__ workspace, int64_t stride, bool sort_in_shared,
                                  kernels::TournamentOutputs<T> out) {
  PYR_DYNAMIC_SHARED(shared);
  const int64_t e = blockIdx.x;
  auto scratch = kernels::tournament_scratch_at<T>(workspace + e * stride, shape, !sort_in_shared);
  if (sort_in_shared) {
    const int64_t P = kernels::pow2_at_least(shape.n);
    scratch.key = reinterpret_cast<kernels::UnsignedOf<T>*>(shared);
    scratch.pos = reinterpret_cast<int32_t*>(shared + kernels::align_up(P * int64_t(sizeof(kernels::UnsignedOf<T>))));
  }
  BlockTeam team;
  kernels::tournament_example(team, e, scores, mask, shape, log_base, keep_order, scratch, out);
}

// One block per tree: the score gradient through it (tree_backward_tree), 6L numbers of scratch.
template <typename T>
__global__ void tree_backward_kernel(TreeLevels<T> levels, int64_t R, const T* __restrict__ dots,
                                     const T* __restrict__ grad_scores, T log_base, T* __restrict__ scratch,
                                     T* __restrict__ leaf_sigma) {
  const int64_t tree = blockIdx.x, L = int64_t{1} << R;
  T* q = scratch + tree * 6 * L;
  BlockTeam team;
  kernels::tree_backward_tree(team, tree, R, levels.weight, levels.score, dots, grad_scores, log_base, q, q + 2 * L,
                              q + 4 * L, leaf_sigma);
}

// grad (b, n) = leaf_sigma (b, k*L) at each input's leaf; padding inputs 0.
template <typename T>
__global__ void leaves_to_inputs_kernel(const T* __restrict__ leaf_sigma, const int64_t* __restrict__ input_leaf,
                                        T* __restrict__ grad, int64_t n, int64_t leaves_per_example, int64_t N) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= N) return;
  const int64_t leaf = input_leaf[p];
  grad[p] = leaf >= 0 && leaf < leaves_per_example ? leaf_sigma[p / n * leaves_per_example + leaf]
                                                   : (leaf == -1 ? T(0) : kernels::quiet_nan_<T>());
}

constexpr int kCombineWarps = 8;

// grid (b*k rows, ceil(d / 32) column tiles), block (32, W <= 8 warps): warp w sums the leaves
// w, w + W, ... of the row for its 32 columns (coalesced reads of 32 consecutive elements of a
// leaf's x row), then the W partial sums are added in warp order (deterministic).
template <typename T, typename A>
__global__ void combine_kernel(const T* __restrict__ x, const int64_t* __restrict__ index,
                               const A* __restrict__ coef, T* __restrict__ y, int64_t n, int64_t k,
                               int64_t L, int64_t d) {
  __shared__ A partial[kCombineWarps][kWarp];
  const int64_t row = blockIdx.x;  // in [0, b*k)
  const int64_t batch = row / k;
  const int64_t j = static_cast<int64_t>(blockIdx.y) * kWarp + threadIdx.x;
  const int64_t* idx = index + row * L;
  const A* c = coef + row * L;
  A acc = 0;
  bool bad = false;
  if (j < d) {
    for (int64_t l = threadIdx.y; l < L; l += blockDim.y) {
      const int64_t src = idx[l];
      if (src < -1 || src >= n) bad = true;
      else if (src >= 0) acc += c[l] * load(x[(batch * n + src) * d + j]);
    }
  }
  partial[threadIdx.y][threadIdx.x] = bad ? kernels::quiet_nan_<A>() : acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < d) {
    A total = 0;
    for (unsigned w = 0; w < blockDim.y; ++w) total += partial[w][threadIdx.x];
    y[row * d + j] = store<T>(total);
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
  if (src >= 0 && src < n) {
    const T* g = grad_y + row * d;
    const T* in = x + (batch * n + src) * d;
    for (int64_t j = lane; j < d; j += kWarp) acc += load(g[j]) * load(in[j]);
  }
  acc = warp_sum(acc);
  if (lane == 0) q[leaf] = src < -1 || src >= n ? kernels::quiet_nan_<A>() : acc;
}

// One block per input row (b*n): every input belongs to exactly one output, so no atomics.
template <typename T, typename A>
__global__ void expand_kernel(const T* __restrict__ grad_y, const int64_t* __restrict__ row,
                              const A* __restrict__ coef, T* __restrict__ grad_x, int64_t n, int64_t k,
                              int64_t d) {
  const int64_t p = blockIdx.x;  // in [0, b*n)
  const int64_t batch = p / n;
  const A c = coef[p];
  const int64_t r = row[p];
  if (r < 0 || r >= k) {
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) grad_x[p * d + j] = store<T>(kernels::quiet_nan_<A>());
    return;
  }
  const T* g = grad_y + (batch * k + r) * d;
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
  if (!grid_fits(b * k, (d + kWarp - 1) / kWarp)) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>(b * k), static_cast<unsigned>((d + kWarp - 1) / kWarp));
  const dim3 block(kWarp, static_cast<unsigned>(std::min<int64_t>(kCombineWarps, L)));
  PYR_LAUNCH(grid, block, 0, stream, combine_kernel<typename Device<T>::type, A>)(device(x), index, coef, device(y), n,
                                                                                  k, L, d);
  return cudaGetLastError();
}

template <typename T, typename A>
cudaError_t leaf_dot(const T* grad_y, const T* x, const int64_t* index, A* q, int64_t b, int64_t n, int64_t k,
                     int64_t L, int64_t d, cudaStream_t stream) {
  const int64_t leaves = b * k * L;
  if (leaves == 0) return cudaSuccess;
  const int64_t blocks = blocks_for(leaves * kWarp, kThreads);
  if (!grid_fits(blocks)) return cudaErrorInvalidConfiguration;
  PYR_LAUNCH(static_cast<unsigned>(blocks), kThreads, 0, stream, leaf_dot_kernel<typename Device<T>::type, A>)(
      device(grad_y), device(x), index, q, n, k, L, d, leaves);
  return cudaGetLastError();
}

template <typename T, typename A>
cudaError_t expand(const T* grad_y, const int64_t* row, const A* coef, T* grad_x, int64_t b, int64_t n, int64_t k,
                   int64_t d, cudaStream_t stream) {
  if (b * n == 0 || d == 0) return cudaSuccess;
  if (!grid_fits(b * n)) return cudaErrorInvalidConfiguration;
  PYR_LAUNCH(static_cast<unsigned>(b * n), row_threads(d), 0, stream, expand_kernel<typename Device<T>::type, A>)(
      device(grad_y), row, coef, device(grad_x), n, k, d);
  return cudaGetLastError();
}

template <typename T>
int64_t tournament_workspace_bytes(const kernels::TournamentShape& shape) {
  SharedLimits limits;
  const cudaError_t err = shared_limits(&limits);
  if (err != cudaSuccess) return -static_cast<int64_t>(err);
  return kernels::tournament_scratch_bytes<T>(shape, /*with_sort=*/!sort_fits_in_shared<T>(shape, limits));
}

template <typename T>
cudaError_t tournament(const T* scores, const bool* mask, const kernels::TournamentShape& shape, T log_base,
                       bool keep_order, int64_t b, unsigned char* workspace, const kernels::TournamentOutputs<T>& out,
                       cudaStream_t stream) {
  if (b == 0) return cudaSuccess;
  if (!grid_fits(b)) return cudaErrorInvalidConfiguration;
  SharedLimits limits;
  cudaError_t err = shared_limits(&limits);
  if (err != cudaSuccess) return err;
  const bool in_shared = sort_fits_in_shared<T>(shape, limits);
  const int64_t shared_bytes = in_shared ? sort_shared_bytes<T>(shape) : 0;
  if (shared_bytes > limits.standard) {
    err = cudaFuncSetAttribute(tournament_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(shared_bytes));
    if (err != cudaSuccess) return err;
  }
  const int64_t stride = kernels::tournament_scratch_bytes<T>(shape, /*with_sort=*/!in_shared);
  // Enough threads for a sort stage's P/2 compare-exchanges, at most 1024.
  const int threads = warp_multiple(kernels::pow2_at_least(shape.n) / 2, 1024);
  PYR_LAUNCH(static_cast<unsigned>(b), threads, static_cast<size_t>(shared_bytes), stream, tournament_kernel<T>)(
      scores, mask, shape, log_base, keep_order, workspace, stride, in_shared, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t tree_backward(const TreeLevels<T>& levels, int64_t R, const T* dots, const T* grad_scores,
                          const int64_t* input_leaf, T log_base, int64_t b, int64_t n, int64_t k, T* scratch,
                          T* leaf_sigma, T* grad, cudaStream_t stream) {
  const int64_t L = int64_t{1} << R, N = b * n;
  if ((b * k > 0 && !grid_fits(b * k)) || (N > 0 && !grid_fits(blocks_for(N, kThreads))))
    return cudaErrorInvalidConfiguration;
  if (b * k > 0) {
    PYR_LAUNCH(static_cast<unsigned>(b * k), warp_multiple(L / 2, 256), 0, stream, tree_backward_kernel<T>)(
        levels, R, dots, grad_scores, log_base, scratch, leaf_sigma);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  if (N == 0) return cudaSuccess;
  PYR_LAUNCH(static_cast<unsigned>(blocks_for(N, kThreads)), kThreads, 0, stream, leaves_to_inputs_kernel<T>)(
      leaf_sigma, input_leaf, grad, n, k * L, N);
  return cudaGetLastError();
}

template <typename T>
cudaError_t pair_blend(const T* s, const bool* valid, T log_base, T* w, T* score, bool* valid_out, int64_t N,
                       cudaStream_t stream) {
  if (N == 0) return cudaSuccess;
  if (!grid_fits(blocks_for(N, kThreads))) return cudaErrorInvalidConfiguration;
  PYR_LAUNCH(static_cast<unsigned>(blocks_for(N, kThreads)), kThreads, 0, stream, pair_blend_kernel<T>)(
      s, valid, log_base, w, score, valid_out, N);
  return cudaGetLastError();
}

template <typename T>
cudaError_t node_backward(const T* rho, const T* sigma, const T* w, const T* s_child, const T* q_child, T log_base,
                          T* sigma_child, int64_t N, cudaStream_t stream) {
  if (N == 0) return cudaSuccess;
  if (!grid_fits(blocks_for(N, kThreads))) return cudaErrorInvalidConfiguration;
  PYR_LAUNCH(static_cast<unsigned>(blocks_for(N, kThreads)), kThreads, 0, stream, node_backward_kernel<T>)(
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
  template int64_t tournament_workspace_bytes<T>(const kernels::TournamentShape&);                        \
  template cudaError_t tournament<T>(const T*, const bool*, const kernels::TournamentShape&, T, bool, int64_t, \
                                     unsigned char*, const kernels::TournamentOutputs<T>&, cudaStream_t);  \
  template cudaError_t tree_backward<T>(const TreeLevels<T>&, int64_t, const T*, const T*, const int64_t*, T, \
                                        int64_t, int64_t, int64_t, T*, T*, T*, cudaStream_t);              \
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

#ifdef PYR_CUDA_EMULATION
}  // namespace emulated
#endif
}  // namespace cuda
}  // namespace pyramidion
