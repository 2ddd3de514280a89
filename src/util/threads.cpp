// Thread counts (include/pyramidion/threads.h).
#include <pyramidion/threads.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace pyramidion {
namespace {

int64_t hardware_threads() { return std::max<int64_t>(1, std::thread::hardware_concurrency()); }

}  // namespace

int64_t max_threads() { return std::max<int64_t>(4, 4 * hardware_threads()); }

void check_threads(int64_t value, const std::string& what) {
  if (value >= 0 && value <= max_threads()) return;
  throw std::invalid_argument(what + " = " + std::to_string(value) + " is out of range: 0 (the default) or 1 to " +
                              std::to_string(max_threads()) + " (4 x the " + std::to_string(hardware_threads()) +
                              " hardware threads here)");
}

void set_threads(int64_t value, const std::string& what) {
  check_threads(value, what);
  if (value > 0) at::set_num_threads(static_cast<int>(value));
}

}  // namespace pyramidion
