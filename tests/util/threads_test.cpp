// Tests of the thread-count check (src/util/threads.cpp): 0 and 1..max_threads() pass; anything
// else, including values an int cannot hold, is refused naming the value and the bound.
#include <pyramidion/threads.h>

#include "support/test_support.h"

#include <gtest/gtest.h>

#include <thread>

namespace {

using pyramidion::check_threads;
using pyramidion::max_threads;
using pyramidion_test::error_of;

TEST(Threads, ZeroToTheBoundPassAndTheRestIsRefused) {
  const int64_t hw = std::max<int64_t>(1, std::thread::hardware_concurrency());
  EXPECT_EQ(max_threads(), std::max<int64_t>(4, 4 * hw));
  for (const int64_t ok : {int64_t{0}, int64_t{1}, max_threads()}) EXPECT_NO_THROW(check_threads(ok, "--threads"));
  const std::string bound = "0 (the default) or 1 to " + std::to_string(max_threads()) + " (4 x the " +
                            std::to_string(hw) + " hardware threads here)";
  for (const int64_t bad : {int64_t{-1}, max_threads() + 1, int64_t{10000}, int64_t{2147483648}, int64_t{100000000000}})
    EXPECT_EQ(error_of<std::invalid_argument>([&] { check_threads(bad, "--threads"); }),
              "--threads = " + std::to_string(bad) + " is out of range: " + bound);
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { pyramidion::set_threads(-3, "TrainConfig.threads"); }),
                  "TrainConfig.threads = -3");
}

}  // namespace
