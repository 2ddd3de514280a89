// `pyramidion-bench model`: the paper's speed claims side by side (issue 3). Several model variants
// (config presets) run in one process on the same seeded random inputs: a training step (teacher
// forcing + cross-entropy, backward, Adam), greedy and beam-4 generation, the training step's peak
// memory, and the sizes that explain them (encoder rows per layer, cross-attention memory length).
// Every variant is compared with the first (the blockwise baseline).
//
// Legend: b batch, n source tokens, t target tokens, k cross-attention memory rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {
namespace bench {

/// Settings of one `model` run.
struct ModelBenchOptions {
  /// Config presets (JSON paths); the first is the baseline of every ratio.
  std::vector<std::string> configs{"configs/blockwise.json", "configs/deep-pyramidion.json"};
  int64_t source_length = 8192;  // n
  int64_t target_length = 256;   // t: teacher-forced target length and generated tokens
  int64_t batch = 1;             // b
  int warmup = 1;                // untimed runs of each measurement before the repetitions
  int reps = 3;                  // timed runs; the table shows medians
  uint64_t seed = 0;             // inputs and initial weights are drawn from it (same for every variant)
  bool train = true;             // time the training step
  bool generate = true;          // time greedy and beam-4 generation
  /// Precisions compared ("fp32", "bf16"); with two or more, each variant's training step (fp32
  /// weights, forward under autocast) and greedy and beam-4 generation (weights converted) also
  /// run once per precision, interleaved (p1 p2 p1 p2 ...), and the report gives each precision's
  /// median and the median of the per-repetition ratios to the first precision.
  std::vector<std::string> precisions{"fp32"};
  std::string device = "cpu";    // "cpu", "cuda" or "cuda:N" (pyramidion::parse_device); on CUDA
                                 // the clock is read after a device synchronize, memory not counted
  std::string json_path;         // also write the results as JSON here (empty: no)
  std::string markdown_path;     // also write the markdown report here (empty: no)
};

/// Runs the benchmark: prints the markdown report to stdout and progress to stderr, writes the
/// optional files. `command` is the command line, recorded in the report. Throws
/// std::invalid_argument on bad settings or configs, std::runtime_error when a file cannot be
/// written or a generation does not produce the expected number of tokens.
void run_model_bench(const ModelBenchOptions& options, const std::string& command);

}  // namespace bench
}  // namespace pyramidion
