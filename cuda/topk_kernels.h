// Framework-free CUDA launchers of the successive-halving top-k kernels: raw pointers, sizes and a
// stream; no LibTorch. The LibTorch binding (src/ops/topk_cuda.cpp) checks shapes, takes the device
// guard, passes the current stream and turns a returned error into an exception.
//
// Legend: b batch, n inputs, k outputs, L leaves per output tree, d representation size, N count.
// All arrays are contiguous, row-major. Index -1 marks an empty leaf (coefficient 0).
//
// Bad indices never fault: a leaf index outside [-1, n) or a row outside [0, k) is not read, and
// the numbers it would have made are NaN (the binding does not stop the stream to check them).
//
// Limits: every launch checks that its grid fits (b*k, b*n, b and the block counts at most
// 2^31 - 1): the binding checks the sizes first and throws with them.
//
// The file compiles for the CPU too (defined PYR_CUDA_EMULATION: cuda/emulation/), where the tests
// run every launcher against the CPU kernels (tests/ops/topk_kernels_emulated_test.cpp).
//
// Precision: the representations (storage type T: float, double, BFloat16Bits or HalfBits) are
// read and written in T and accumulated in A (double for double, float otherwise); coefficients,
// leaf dots and everything of the scores are A (ops/topk_ops.h, "Precision").
#pragma once

#ifdef PYR_CUDA_EMULATION
#include "cuda/emulation/runtime.h"  // the tests' CPU emulation of the runtime API
#else
#include <cuda_runtime_api.h>
#endif

#include <cstdint>

#include "ops/tournament_program.h"

namespace pyramidion {
namespace cuda {
#ifdef PYR_CUDA_EMULATION
inline namespace emulated {  // other symbols than the real kernels', should both be in one process
#endif

/// Grid limits (every GPU since sm_30): x at most 2^31 - 1 blocks, y and z at most 65535.
constexpr int64_t kMaxGridX = 2147483647;
constexpr int64_t kMaxGridY = 65535;
/// Threads per block of the element-wise launches (pair_blend, node_backward, leaf_dot, the
/// leaves-to-inputs gather): their grids hold ceil(threads needed / kBlockThreads) blocks.
constexpr int64_t kBlockThreads = 256;

/// The bit layouts of CUDA's __nv_bfloat16 and __half (and of c10::BFloat16 and c10::Half), so that
/// this header needs neither CUDA's fp16 headers nor LibTorch's.
struct BFloat16Bits {
  uint16_t bits;
};
struct HalfBits {
  uint16_t bits;
};

/// The tournament of b examples (ops/tournament_program.h): one block per example runs every
/// round in one launch. scores (b, n) and mask (b, n), padding scores zeroed; `workspace` holds
/// b * tournament_workspace_bytes<T>(shape) bytes, 16-byte aligned. The sort's (key, position)
/// pairs live in shared memory when they fit the device's opt-in limit, in the workspace otherwise.
template <typename T>
cudaError_t tournament(const T* scores, const bool* mask, const kernels::TournamentShape& shape, T log_base,
                       bool keep_order, int64_t b, unsigned char* workspace, const kernels::TournamentOutputs<T>& out,
                       cudaStream_t stream);

/// Bytes of `tournament`'s workspace per example on the current device (or a CUDA error code,
/// negated, when the device cannot be queried).
template <typename T>
int64_t tournament_workspace_bytes(const kernels::TournamentShape& shape);

/// The levels of the trees of a tournament (tournament.h's tree layout), for tree_backward.
template <typename T>
struct TreeLevels {
  const T* weight[kernels::kMaxRounds] = {};    // weight[h-1]: (b*k, L >> h)
  const T* score[kernels::kMaxRounds + 1] = {};  // score[h]: (b*k, L >> h)
};

/// The score gradient (b, n) through the b*k trees of R rounds (ops/tournament_program.h,
/// tree_backward_tree: one block per tree), then from the leaves to the inputs. dots (b*k, L),
/// grad_scores (b*k), input_leaf (b, n); scratch: b*k*6L numbers; leaf_sigma (b*k, L) is written.
template <typename T>
cudaError_t tree_backward(const TreeLevels<T>& levels, int64_t R, const T* dots, const T* grad_scores,
                          const int64_t* input_leaf, T log_base, int64_t b, int64_t n, int64_t k, T* scratch,
                          T* leaf_sigma, T* grad, cudaStream_t stream);

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

#ifdef PYR_CUDA_EMULATION
}  // namespace emulated
#endif
}  // namespace cuda
}  // namespace pyramidion
