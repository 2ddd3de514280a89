// `pyramidion-bench topk`: forward + backward time of the successive-halving top-k on the CPU or a
// CUDA device, side by side with the obvious baselines, in one run (warm-up, repetitions, medians,
// ratios).
//
// Legend: b batch, n inputs, k outputs, d representation size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {
namespace bench {

/// The methods `topk` can time, in table order.
///   soft:      pyramidion::successive_halving_topk (the library)
///   naive:     the authors' per-example, per-round formulation (naive_reference.h), autograd backward
///   copy:      x.clone() and its backward: the memory-traffic floor of any op that reads x
///   hard:      pyramidion::hard_topk (exact selection, a gather)
///   iterative: pyramidion::iterative_softmax_topk, O(k n d)
const std::vector<std::string>& topk_methods();

/// Settings of one `topk` run. Each of batch, tokens, keep, dim is a sweep: every combination with
/// k <= n is measured.
struct TopKBenchOptions {
  std::vector<int64_t> batch{16};     // b
  std::vector<int64_t> tokens{8192};  // n
  std::vector<int64_t> keep{512};     // k
  std::vector<int64_t> dim{512};      // d
  double base = 20.0;                 // the operator's base (the paper's 20)
  int warmup = 1;                     // untimed runs before the repetitions
  int reps = 5;                       // timed runs; the table shows medians
  uint64_t seed = 0;                  // inputs of every configuration are drawn after at::manual_seed(seed)
  // "cold": before every run the allocator's free memory goes back to the system, so each run pays
  // for first touching (page-faulting) the memory it allocates, as LibTorch's non-caching CPU
  // allocator does for large tensors. "warm": freed blocks are kept and reused by size, so after
  // the warm-up no run touches new pages, as with a caching allocator. (See AllocationTracker.)
  std::string memory = "cold";
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N" (pyramidion::parse_device); on CUDA the
                               // clock is read after a device synchronize, and memory is not counted
  std::vector<std::string> methods = topk_methods();  // which methods run (see topk_methods())
  // Iterative softmax costs O(b k n d): about 5e8 of b*k*n*d per second on the reference machine,
  // 73 s for one fwd+bwd at the defaults. Unless the user names it in `methods`, it runs
  // warmup + reps times only up to iterative_full_limit, once with no warm-up up to
  // iterative_once_limit, and not at all above; the report says which.
  double iterative_full_limit = 5.0e8;
  double iterative_once_limit = 5.0e10;
  bool methods_explicit = false;  // true when the user chose `methods`
  std::string json_path;          // also write the results as JSON here (empty: no)
  std::string markdown_path;      // also write the markdown report here (empty: no)
};

/// Runs the benchmark: checks once that soft and naive agree, times every method and configuration,
/// prints the markdown report to stdout and progress to stderr, writes the optional files.
/// `command` is the command line, recorded in the report. Throws std::invalid_argument on bad
/// settings and std::runtime_error when the check fails or a file cannot be written.
void run_topk_bench(const TopKBenchOptions& options, const std::string& command);

}  // namespace bench
}  // namespace pyramidion
