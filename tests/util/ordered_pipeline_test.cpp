// Tests of run_ordered (src/util/ordered_pipeline.h): results consumed in input order whatever
// the workers' timing, bounded work in flight, and every exception reaching the caller with all
// threads joined.
#include "util/ordered_pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using pyramidion::detail::run_ordered;

// Items 0..n-1; each worker sleeps a pseudo-random time so that results finish out of order.
std::vector<int> run(int n, int workers, int max_in_flight, std::atomic<int>* most_in_flight = nullptr) {
  std::vector<int> out;
  int next = 0;
  std::atomic<int> in_flight{0};
  run_ordered<int, int>(
      workers, max_in_flight,
      [&](int& item) {
        if (next == n) return false;
        item = next++;
        const int now = ++in_flight;
        if (most_in_flight && now > *most_in_flight) *most_in_flight = now;
        return true;
      },
      [](const int& item) {
        std::this_thread::sleep_for(std::chrono::microseconds((item * 7919) % 500));
        return item * item;
      },
      [&](int& result) {
        --in_flight;
        out.push_back(result);
      });
  return out;
}

TEST(OrderedPipeline, ConsumesInInputOrderForAnyNumberOfWorkers) {
  std::vector<int> expected;
  for (int i = 0; i < 300; ++i) expected.push_back(i * i);
  for (int workers : {1, 2, 3, 8}) {
    std::atomic<int> most{0};
    EXPECT_EQ(run(300, workers, 2 * workers, &most), expected) << workers << " workers";
    EXPECT_LE(most.load(), 2 * workers) << "at most max_in_flight items between production and consumption";
  }
  EXPECT_TRUE(run(0, 2, 4).empty());
}

TEST(OrderedPipeline, AnExceptionAnywhereReachesTheCallerAfterTheThreadsStop) {
  const auto throwing = [](int where) {
    int next = 0;
    run_ordered<int, int>(
        3, 6,
        [&](int& item) {
          if (where == 0 && next == 50) throw std::runtime_error("produce failed");
          if (next == 200) return false;
          item = next++;
          return true;
        },
        [&](const int& item) {
          if (where == 1 && item == 77) throw std::runtime_error("work failed");
          return item;
        },
        [&](int& result) {
          if (where == 2 && result == 120) throw std::runtime_error("consume failed");
        });
  };
  for (int where = 0; where < 3; ++where) {
    try {
      throwing(where);
      ADD_FAILURE() << "no exception from stage " << where;
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), where == 0 ? "produce failed" : where == 1 ? "work failed" : "consume failed");
    }
  }
  EXPECT_THROW((run_ordered<int, int>(
                   0, 1, [](int&) { return false; }, [](const int& i) { return i; }, [](int&) {})),
               std::invalid_argument);
}

}  // namespace
