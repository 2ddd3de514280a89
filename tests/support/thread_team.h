// ThreadTeam: the team programs of src/ops/tournament_program.h run by real threads on the CPU,
// one OS thread per rank, as a CUDA thread block runs them: sync() is a barrier and sum() a barrier
// that adds every member's value (cuda/emulation/barrier.h: a mutex and a condition variable, so
// ThreadSanitizer sees them). SerialTeam (the team of one) gives the reference; a program whose
// result depends on the team's size, or that lacks a needed sync(), differs from it (or races,
// which ThreadSanitizer reports).
//
// A fault can be injected: with drop_sync = j, every member's j-th call of sync() (counting from
// 0) returns at once, which is the program with that barrier removed (every member makes the same
// sequence of calls). tests/ops/team_programs_main.cpp uses it to show that each barrier is needed.
//
//   pyramidion_test::ThreadTeam::run(32, [&](pyramidion_test::ThreadTeam::Member& team) {
//     kernels::tournament_example(team, e, ...);
//   });
#pragma once

#include <cstdint>
#include <thread>
#include <vector>

#include "cuda/emulation/barrier.h"

namespace pyramidion_test {

class ThreadTeam {
 public:
  /// One member's view: the interface of kernels::SerialTeam.
  class Member {
   public:
    Member(ThreadTeam& team, int64_t rank) : team_(team), rank_(rank) {}
    int64_t rank() const { return rank_; }
    int64_t size() const { return team_.size_; }
    void sync() {
      if (syncs_++ == team_.drop_sync_) {  // the injected fault: this barrier is missing
        if (rank_ == 0) team_.dropped_at_ = __builtin_return_address(0);
        return;
      }
      team_.barrier_.arrive();
    }
    int64_t sum(int64_t v) { return team_.barrier_.arrive_sum(v); }
    /// The calls of sync() so far.
    int64_t syncs() const { return syncs_; }

   private:
    ThreadTeam& team_;
    int64_t rank_;
    int64_t syncs_ = 0;
  };

  /// Runs body(member) on `size` threads (ranks 0 .. size - 1) and joins them; returns the calls of
  /// sync() that rank 0 made. drop_sync >= 0: that call is no barrier, and *dropped_at is set to
  /// the code address it returns to (for addr2line). The body must not throw (the others would
  /// wait at the next barrier forever): a throw ends the process.
  template <class Body>
  static int64_t run(int64_t size, Body body, int64_t drop_sync = -1, void** dropped_at = nullptr) {
    ThreadTeam team(size, drop_sync);
    int64_t syncs = 0;
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(size));
    for (int64_t r = 0; r < size; ++r)
      threads.emplace_back([&team, &body, &syncs, r]() noexcept {
        Member member(team, r);
        body(member);
        if (r == 0) syncs = member.syncs();
      });
    for (auto& t : threads) t.join();
    if (dropped_at) *dropped_at = team.dropped_at_;
    return syncs;
  }

 private:
  ThreadTeam(int64_t size, int64_t drop_sync) : size_(size), drop_sync_(drop_sync), barrier_(size) {}

  const int64_t size_, drop_sync_;
  pyramidion::emulation::Barrier barrier_;
  void* dropped_at_ = nullptr;
};

}  // namespace pyramidion_test
