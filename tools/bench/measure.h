// Measuring tools shared by the benchmarks: a wall clock, medians, and a count of the bytes that
// LibTorch allocates on the CPU (for the peak memory a method needs beyond its inputs).
#pragma once

#include <string>

#include <chrono>
#include <cstdint>
#include <vector>

#include <c10/core/Device.h>

#include "util/text.h"

namespace pyramidion {
namespace bench {

/// Milliseconds since construction (steady clock).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// Waits until the work queued on `device` is done (CUDA); nothing on the CPU. A timing of CUDA
/// work reads its clock after this, or it measures only the launches.
void synchronize(const c10::Device& device);

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
double median(std::vector<double> values);

/// Counts the bytes of every tensor storage allocated through LibTorch's CPU allocator, by putting a
/// counting allocator in front of the default one. Cheap (one locked map update per allocation).
/// Allocations made by libraries outside LibTorch's allocator (MKL, oneDNN scratch) are not seen.
///
/// It also pins down what a run's memory costs, which otherwise depends on what ran before: LibTorch's
/// CPU allocator does not cache, and whether glibc hands out pages the process already touched or
/// fresh ones (a page fault per 4 KiB on first write, as much as the copy itself) depends on the heap
/// left by earlier runs. Before each run, either release_free_memory() (every run pays for first
/// touching its memory) or, with set_reuse(true), freed blocks are kept and handed out again for the
/// same size (after a warm-up no run touches new pages, as with a caching allocator).
class AllocationTracker {
 public:
  /// Installs the counting allocator; call once, before the tensors to be counted are created.
  static void install();
  static bool installed();
  /// Bytes allocated and not yet freed.
  static int64_t live_bytes();
  /// Highest live_bytes() since the last reset_peak().
  static int64_t peak_bytes();
  /// Starts a new peak at the current live_bytes().
  static void reset_peak();
  /// Keeps freed blocks for reuse by allocations of the same size (true), or frees them (false).
  static void set_reuse(bool reuse);
  /// Frees the kept blocks and returns the C library's free memory to the system (glibc malloc_trim).
  static void release_free_memory();
};

/// v with `digits` digits after the point (the library's number format, util/text.h).
using detail::format_fixed;

/// Prints the markdown report to stdout and writes it, and the JSON one, to the given paths
/// (an empty path writes nothing).
void emit_report(const std::string& markdown, const std::string& json, const std::string& markdown_path,
                 const std::string& json_path);

/// A config preset's name in reports: the file name without its directory and extension
/// ("configs/blockwise.json" -> "blockwise").
std::string stem(const std::string& path);

/// Throws std::runtime_error naming `path` when a file cannot be created there (checked before a
/// long run rather than after it); an empty path passes.
void check_writable(const std::string& path);

}  // namespace bench
}  // namespace pyramidion
