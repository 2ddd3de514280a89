// ThreadTeam: the team programs of src/ops/tournament_program.h run by real threads on the CPU,
// one OS thread per rank, as a CUDA thread block runs them: sync() is a barrier (a mutex and a
// condition variable: C++17 has no std::barrier) and sum() a barrier that adds every member's
// value. SerialTeam (the team of one) gives the reference; a program whose result depends on the
// team's size, or that lacks a needed sync(), differs from it (or races, which ThreadSanitizer
// reports).
//
//   pyramidion_test::ThreadTeam::run(32, [&](pyramidion_test::ThreadTeam::Member& team) {
//     kernels::tournament_example(team, e, ...);
//   });
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace pyramidion_test {

class ThreadTeam {
 public:
  /// One member's view: the interface of kernels::SerialTeam.
  class Member {
   public:
    Member(ThreadTeam& team, int64_t rank) : team_(team), rank_(rank) {}
    int64_t rank() const { return rank_; }
    int64_t size() const { return team_.size_; }
    void sync() const {
      std::unique_lock<std::mutex> lock(team_.mutex_);
      team_.arrive(lock, [] {});
    }
    int64_t sum(int64_t v) const {
      std::unique_lock<std::mutex> lock(team_.mutex_);
      team_.accumulator_ += v;
      // The last to arrive publishes the total and clears the accumulator; nobody can reach the
      // next sum's publication before every member has read this one (under the lock, below).
      team_.arrive(lock, [this] {
        team_.total_ = team_.accumulator_;
        team_.accumulator_ = 0;
      });
      return team_.total_;
    }

   private:
    ThreadTeam& team_;
    int64_t rank_;
  };

  /// Runs body(member) on `size` threads (ranks 0 .. size - 1) and joins them. The body must not
  /// throw (the others would wait at the next barrier forever): a throw ends the process.
  template <class Body>
  static void run(int64_t size, Body body) {
    ThreadTeam team(size);
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(size));
    for (int64_t r = 0; r < size; ++r)
      threads.emplace_back([&team, &body, r]() noexcept {
        Member member(team, r);
        body(member);
      });
    for (auto& t : threads) t.join();
  }

 private:
  explicit ThreadTeam(int64_t size) : size_(size) {}

  // Waits until every member has arrived; the last one runs `complete` first. Called with the lock.
  template <class Complete>
  void arrive(std::unique_lock<std::mutex>& lock, Complete complete) {
    const uint64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      complete();
      ++generation_;
      released_.notify_all();
      return;
    }
    released_.wait(lock, [&] { return generation_ != generation; });
  }

  const int64_t size_;
  std::mutex mutex_;
  std::condition_variable released_;
  int64_t arrived_ = 0;
  uint64_t generation_ = 0;
  int64_t accumulator_ = 0, total_ = 0;
};

}  // namespace pyramidion_test
