// The CUDA runtime API that cuda/topk_kernels.{h,cu} use, emulated on the CPU for tests (defined
// PYR_CUDA_EMULATION): the types (cudaError_t, cudaStream_t, dim3), the device-attribute and
// function-attribute calls answered with an NVIDIA H100's limits, the sticky last error, and the
// launch: every block of the grid in turn, each CUDA thread of a block an OS thread, the block's
// threads meeting at __syncthreads() and their warps at shuffles (cuda/emulation/device.h).
//
// A launch is checked as the GPU checks it: at most 1024 threads per block (x, y <= 1024, z <= 64),
// grid x <= 2^31 - 1 and y, z <= 65535, no dimension 0, dynamic shared memory at most 48 KiB unless
// the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize was raised (to at most 227 KiB, the
// opt-in limit). A bad launch runs nothing and leaves its error for cudaGetLastError().
//
// What emulation cannot show: registers, occupancy, timing, races between blocks (the blocks run
// one after another), memory-model subtleties weaker than a mutex (docs/cuda.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "cuda/emulation/barrier.h"

// ---- the runtime API's types and calls (the real ones' names and error codes) --------------------
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
using uint3 = dim3;
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDeviceFunction = 98,
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace pyramidion {
namespace emulation {

/// The device's limits (an H100, sm_90); a test may lower them to reach a fallback path.
struct Limits {
  int64_t max_threads_per_block = 1024;
  int64_t max_block[3] = {1024, 1024, 64};
  int64_t max_grid[3] = {2147483647, 65535, 65535};
  int64_t shared_default = 48 * 1024;  // dynamic shared memory without opting in
  int64_t shared_optin = 227 * 1024;   // cudaDevAttrMaxSharedMemoryPerBlockOptin
};

struct Runtime {
  std::mutex mutex;
  Limits limits;
  cudaError_t last_error = cudaSuccess;
  std::map<const void*, int64_t> max_dynamic_shared;  // per kernel, once raised
  int64_t launches = 0;                               // that ran
};
inline Runtime& runtime() {
  static Runtime r;
  return r;
}

/// Sets the limits for its lifetime (and restores them after).
class ScopedLimits {
 public:
  explicit ScopedLimits(const Limits& limits) : saved_(runtime().limits) { runtime().limits = limits; }
  ~ScopedLimits() { runtime().limits = saved_; }

 private:
  Limits saved_;
};

inline int64_t launches() {
  std::lock_guard<std::mutex> lock(runtime().mutex);
  return runtime().launches;
}

inline cudaError_t fail(cudaError_t err) {
  std::lock_guard<std::mutex> lock(runtime().mutex);
  runtime().last_error = err;
  return err;
}

/// A running block: its barrier, its warps' barriers and shuffle slots, its dynamic shared memory.
struct Block {
  explicit Block(int64_t threads, int64_t shared_bytes)
      : threads(threads), barrier(threads), slots(static_cast<size_t>(threads)),
        shared(new (std::align_val_t(16)) unsigned char[static_cast<size_t>(shared_bytes > 0 ? shared_bytes : 1)]) {
    for (int64_t w = 0; w * 32 < threads; ++w)
      warps.emplace_back(new Barrier(threads - w * 32 < 32 ? threads - w * 32 : 32));
    std::memset(shared.get(), 0xA5, static_cast<size_t>(shared_bytes > 0 ? shared_bytes : 1));  // garbage
  }
  struct AlignedDelete {
    void operator()(unsigned char* p) const { ::operator delete[](p, std::align_val_t(16)); }
  };
  const int64_t threads;
  Barrier barrier;
  std::vector<std::unique_ptr<Barrier>> warps;
  std::vector<uint64_t> slots;  // one per thread, for shuffles
  std::unique_ptr<unsigned char[], AlignedDelete> shared;
};

/// The CUDA thread that this OS thread is.
struct ThreadContext {
  dim3 thread_idx, block_idx, block_dim, grid_dim;
  int64_t linear = 0;  // x + y Dx + z Dx Dy
  Block* block = nullptr;
};
inline ThreadContext& current() {
  thread_local ThreadContext context;
  return context;
}

[[noreturn]] inline void misuse(const char* what) {
  std::fprintf(stderr, "CUDA emulation: %s\n", what);
  std::abort();
}

/// The checks of a launch's configuration, as the GPU makes them.
inline cudaError_t check_launch(const void* kernel, dim3 grid, dim3 block, size_t shared_bytes) {
  std::lock_guard<std::mutex> lock(runtime().mutex);
  const Limits& lim = runtime().limits;
  const int64_t b[3] = {block.x, block.y, block.z}, g[3] = {grid.x, grid.y, grid.z};
  for (int i = 0; i < 3; ++i)
    if (b[i] < 1 || b[i] > lim.max_block[i] || g[i] < 1 || g[i] > lim.max_grid[i]) return cudaErrorInvalidConfiguration;
  if (b[0] * b[1] * b[2] > lim.max_threads_per_block) return cudaErrorInvalidConfiguration;
  const auto raised = runtime().max_dynamic_shared.find(kernel);
  const int64_t allowed = raised != runtime().max_dynamic_shared.end() ? raised->second : lim.shared_default;
  if (static_cast<int64_t>(shared_bytes) > allowed) return cudaErrorInvalidValue;
  return cudaSuccess;
}

/// kernel<<<grid, block, shared_bytes, stream>>>(args...): every block in turn, its threads on OS
/// threads. A bad configuration runs nothing and sets the last error.
template <class... P>
class Launch {
 public:
  Launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t shared_bytes)
      : kernel_(kernel), grid_(grid), block_(block), shared_bytes_(shared_bytes) {}

  template <class... A>
  void operator()(A&&... args) const {
    const cudaError_t err = check_launch(reinterpret_cast<const void*>(kernel_), grid_, block_, shared_bytes_);
    if (err != cudaSuccess) {
      fail(err);
      return;
    }
    // One OS thread per CUDA thread of a block, reused for every block of the grid in turn:
    // between two blocks they meet twice (done with the block; the next block is set up).
    const int64_t threads = int64_t{block_.x} * block_.y * block_.z;
    const int64_t blocks = int64_t{grid_.x} * grid_.y * grid_.z;
    std::unique_ptr<Block> block(new Block(threads, static_cast<int64_t>(shared_bytes_)));
    Barrier between(threads);
    std::vector<std::thread> team;
    team.reserve(static_cast<size_t>(threads));
    for (int64_t t = 0; t < threads; ++t)
      team.emplace_back([&, t]() noexcept {
        ThreadContext& c = current();
        c.thread_idx = dim3(static_cast<unsigned>(t % block_.x), static_cast<unsigned>(t / block_.x % block_.y),
                            static_cast<unsigned>(t / (int64_t{block_.x} * block_.y)));
        c.block_dim = block_;
        c.grid_dim = grid_;
        c.linear = t;
        for (int64_t i = 0; i < blocks; ++i) {
          c.block_idx = dim3(static_cast<unsigned>(i % grid_.x), static_cast<unsigned>(i / grid_.x % grid_.y),
                             static_cast<unsigned>(i / (int64_t{grid_.x} * grid_.y)));
          c.block = block.get();
          kernel_(args...);
          // A returned thread is no longer waited for, at __syncthreads() or by its warp.
          c.block->warps[static_cast<size_t>(t / 32)]->leave();
          c.block->barrier.leave();
          c.block = nullptr;
          between.arrive();  // every thread is done with block i
          if (t == 0 && i + 1 < blocks) block.reset(new Block(threads, static_cast<int64_t>(shared_bytes_)));
          between.arrive();  // block i + 1 is ready
        }
      });
    for (auto& th : team) th.join();
    std::lock_guard<std::mutex> lock(runtime().mutex);
    ++runtime().launches;
  }

 private:
  void (*kernel_)(P...);
  dim3 grid_, block_;
  size_t shared_bytes_;
};

template <class... P>
Launch<P...> launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t) {
  return Launch<P...>(kernel, grid, block, shared_bytes);
}

}  // namespace emulation
}  // namespace pyramidion

inline cudaError_t cudaGetLastError() {
  using pyramidion::emulation::runtime;
  std::lock_guard<std::mutex> lock(runtime().mutex);
  const cudaError_t err = runtime().last_error;
  runtime().last_error = cudaSuccess;
  return err;
}
inline const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
  }
  return "unknown error";
}
inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  using pyramidion::emulation::runtime;
  if (device != 0) return pyramidion::emulation::fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(runtime().mutex);
  const auto& lim = runtime().limits;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = static_cast<int>(lim.max_threads_per_block); return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(lim.shared_default); return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(lim.shared_optin); return cudaSuccess;
  }
  runtime().last_error = cudaErrorInvalidValue;
  return cudaErrorInvalidValue;
}
template <class... P>
cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  using pyramidion::emulation::runtime;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return pyramidion::emulation::fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(runtime().mutex);
  if (value < 0 || value > runtime().limits.shared_optin) {
    runtime().last_error = cudaErrorInvalidValue;
    return cudaErrorInvalidValue;
  }
  runtime().max_dynamic_shared[reinterpret_cast<const void*>(kernel)] = value;
  return cudaSuccess;
}
