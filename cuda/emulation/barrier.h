// A reusable barrier for a group of OS threads, as a CUDA block's __syncthreads() or a warp's
// convergence point behaves: every member that has not left waits until all of them arrived; a
// member that leaves (a CUDA thread that returned) is no longer waited for. arrive_sum() adds a
// value from every member and hands each the total (the team programs' sum()).
//
// Atomics with acquire/release order and a futex to sleep on (C++17 has no std::barrier; a mutex
// and a condition variable made every barrier of 64 threads a thundering herd on the mutex), so
// ThreadSanitizer sees every barrier as the synchronization it is: a write before it and a read
// after it never race, and a missing barrier shows as a race. Linux only, as the tests are. For tests only: cuda/emulation/cuda_on_cpu.h (the kernel file
// on the CPU) and tests/support/thread_team.h (the team programs on real threads).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>

namespace pyramidion {
namespace emulation {

class Barrier {
 public:
  explicit Barrier(int64_t members) : state_(static_cast<uint64_t>(members) << 32) {}
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  /// Waits for every member that has not left.
  void arrive() { arrive_sum(0); }

  /// Waits for every member; returns the sum of the values they passed.
  int64_t arrive_sum(int64_t v) {
    accumulator_.fetch_add(v, std::memory_order_relaxed);
    const uint32_t generation = generation_.load(std::memory_order_acquire);
    const uint64_t before = state_.fetch_add(1, std::memory_order_acq_rel);  // one more arrived
    if (arrived(before) + 1 == members(before)) {
      release(before + 1);
    } else {
      while (generation_.load(std::memory_order_acquire) == generation) wait(generation);
    }
    // Published before the release, read after it: nobody can publish the next total before every
    // member has read this one (the next barrier waits for this member).
    return total_;
  }

  /// The members that have not left.
  int64_t members() const { return members(state_.load(std::memory_order_acquire)); }

  /// This member is done: the others no longer wait for it (and are released if it was the last
  /// one they waited for).
  void leave() {
    const uint64_t after = state_.fetch_sub(uint64_t{1} << 32, std::memory_order_acq_rel) - (uint64_t{1} << 32);
    if (members(after) > 0 && arrived(after) == members(after)) release(after);
  }

 private:
  static int64_t members(uint64_t state) { return static_cast<int64_t>(state >> 32); }
  static int64_t arrived(uint64_t state) { return static_cast<int64_t>(state & 0xFFFFFFFFu); }

  // Every member that has not left is waiting: publish the total, reset the count, open the barrier.
  void release(uint64_t state) {
    total_ = accumulator_.exchange(0, std::memory_order_acq_rel);
    state_.store(state & ~uint64_t{0xFFFFFFFFu}, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&generation_), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
  }
  // Sleeps while the generation is still `generation` (or returns at once if it moved on).
  void wait(uint32_t generation) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&generation_), FUTEX_WAIT_PRIVATE, generation, nullptr, nullptr,
            0);
  }

  std::atomic<uint64_t> state_;  // members << 32 | arrived
  std::atomic<uint32_t> generation_{0};
  std::atomic<int64_t> accumulator_{0};
  int64_t total_ = 0;
};

}  // namespace emulation
}  // namespace pyramidion
