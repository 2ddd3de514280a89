// CUDA's device-side language on the CPU, for compiling cuda/topk_kernels.cu as C++ in tests
// (defined PYR_CUDA_EMULATION): the execution-space keywords, threadIdx / blockIdx / blockDim /
// gridDim of the OS thread that runs a CUDA thread (cuda/emulation/runtime.h launches them),
// __syncthreads() as the block's barrier, __shfl_down_sync as an exchange among the warp's 32
// threads, __shared__ variables (one copy, as the blocks run one at a time) and the dynamic shared
// memory of the launch (PYR_DYNAMIC_SHARED), the launch itself (PYR_LAUNCH), and __nv_bfloat16 /
// __half with round-to-nearest-even conversions (the bits of CUDA's and of c10's).
#pragma once

#include <cstdint>
#include <cstring>

#include "cuda/emulation/runtime.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __shared__ static
#define threadIdx (::pyramidion::emulation::current().thread_idx)
#define blockIdx (::pyramidion::emulation::current().block_idx)
#define blockDim (::pyramidion::emulation::current().block_dim)
#define gridDim (::pyramidion::emulation::current().grid_dim)

/// kernel<<<grid, block, shared_bytes, stream>>>: PYR_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...)
#define PYR_LAUNCH(grid, block, shared_bytes, stream, ...) \
  ::pyramidion::emulation::launch(__VA_ARGS__, grid, block, shared_bytes, stream)
/// extern __shared__ __align__(16) unsigned char name[]: the launch's dynamic shared memory.
#define PYR_DYNAMIC_SHARED(name) unsigned char* name = ::pyramidion::emulation::current().block->shared.get()

inline void __syncthreads() { ::pyramidion::emulation::current().block->barrier.arrive(); }

/// The value of the thread delta lanes above in the warp (its own at the top), with every one of the
/// warp's 32 threads taking part (the only use of the kernels: full mask, full warps).
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "shuffles move at most 8 bytes");
  auto& c = ::pyramidion::emulation::current();
  auto& block = *c.block;
  auto& warp = *block.warps[static_cast<size_t>(c.linear / 32)];
  if (mask != 0xffffffffu || width != 32 || warp.members() != 32)
    ::pyramidion::emulation::misuse("__shfl_down_sync needs the full mask and all 32 threads of the warp");
  std::memcpy(&block.slots[static_cast<size_t>(c.linear)], &v, sizeof(T));
  warp.arrive();  // every lane has written its value
  const int64_t lane = c.linear % 32;
  const int64_t from = lane + delta < 32 ? c.linear + delta : c.linear;
  T out;
  std::memcpy(&out, &block.slots[static_cast<size_t>(from)], sizeof(T));
  warp.arrive();  // every lane has read, before the next shuffle writes
  return out;
}

// ---- __nv_bfloat16 and __half: 16-bit storage, converted to and from float round-to-nearest-even --
struct __nv_bfloat16 {
  uint16_t x;
};
struct __half {
  uint16_t x;
};

inline uint32_t pyr_float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float pyr_bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline float __bfloat162float(__nv_bfloat16 v) { return pyr_bits_float(uint32_t{v.x} << 16); }
inline __nv_bfloat16 __float2bfloat16(float f) {
  const uint32_t u = pyr_float_bits(f);
  if (f != f) return {static_cast<uint16_t>((u >> 16) | 0x40)};  // a quiet NaN of the same sign
  return {static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16)};
}
inline float __half2float(__half v) {
  const uint32_t sign = uint32_t{v.x & 0x8000u} << 16, exponent = (v.x >> 10) & 0x1Fu, mantissa = v.x & 0x3FFu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float m = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return pyr_bits_float(pyr_float_bits(m) | sign);
  }
  if (exponent == 31) return pyr_bits_float(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN
  return pyr_bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}
inline __half __float2half(float f) {
  const uint32_t u = pyr_float_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return {static_cast<uint16_t>(sign | 0x7E00u)};  // NaN
  if (a >= 0x477FF000u) return {static_cast<uint16_t>(sign | 0x7C00u)};  // rounds to infinity (>= 65520)
  if (a < 0x38800000u) {  // below 2^-14: a multiple of 2^-24, rounded by the float addition itself
    const float r = pyr_bits_float(a) + 0.5f;
    return {static_cast<uint16_t>(sign | (pyr_float_bits(r) - pyr_float_bits(0.5f)))};
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even.
  const uint32_t odd = (a >> 13) & 1u;
  return {static_cast<uint16_t>(sign | ((a - 0x38000000u + 0xFFFu + odd) >> 13))};
}
