// Thread counts as users give them. The one check of TrainConfig.threads, pyramidion-summarize's
// and pyramidion-bench's --threads and PreprocessOptions.workers: 0 (the default of each) or 1 to
// max_threads(), checked before any work, so that a typo cannot start ten thousand threads (which
// take minutes and gigabytes) or wrap around in a conversion to int.
//
//   pyramidion::set_threads(64, "--threads");  // std::invalid_argument on this 2-core machine
#pragma once

#include <cstdint>
#include <string>

namespace pyramidion {

/// The most threads a count may ask for: 4 x the hardware threads this machine reports
/// (std::thread::hardware_concurrency()), at least 4.
int64_t max_threads();

/// Throws std::invalid_argument "<what> = <value> is out of range: 0 (the default) or 1 to
/// <max_threads()> (4 x the <n> hardware threads here)" unless value is in [0, max_threads()].
void check_threads(int64_t value, const std::string& what);

/// check_threads(), then at::set_num_threads(value) when value > 0 (0 keeps LibTorch's default).
void set_threads(int64_t value, const std::string& what);

}  // namespace pyramidion
