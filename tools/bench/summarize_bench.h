// `pyramidion-bench summarize`: the summarization job measured (issue 12). Documents/s and
// summary tokens/s of pyramidion::summarize_ids (the batching, encoding and search of
// pyramidion-summarize) for N random documents of S tokens, each generating exactly T tokens with
// beam B: one document at a time (latency), and in the batches the token budget allows (the job).
// Variants: config presets (random weights) or model directories (--checkpoints: e.g. an imported
// PEGASUS, docs/pretrained.md) x weights (fp32, bf16, int8), and optionally peers: Hugging Face's
// LED at the last preset's sizes (scripts/led_peer.py), or, on the same weights as an imported
// checkpoint, transformers' PEGASUS (fp32) and CTranslate2 (float32 and int8), from the directory
// scripts/pegasus_peer.py makes. All run in one process with interleaved repetitions: every
// repetition runs every variant once, in order, and a ratio is the median of the per-repetition
// ratios, with their spread. A length sweep times batch 1 at several S and fits the growth per
// doubling of S.
//
// Legend: S source tokens, T generated tokens, B beam size, N documents.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {
namespace bench {

struct SummarizeBenchOptions {
  /// Config presets (random weights); the first (with the first weights) is the baseline of the ratios.
  std::vector<std::string> configs{"configs/blockwise.json", "configs/deep-pyramidion.json"};
  /// Model directories (Seq2Seq::load), instead of the presets when not empty.
  std::vector<std::string> checkpoints;
  /// Weights each config runs with: fp32, bf16 (converted), int8 (Seq2Seq::quantize_int8).
  std::vector<std::string> weights{"fp32"};
  /// Peers: "led" (at the last preset's sizes), "hf" (transformers' PEGASUS, fp32), "ct2"
  /// (CTranslate2, float32 and int8); empty: none. hf and ct2 need peer_model.
  std::vector<std::string> peers;
  /// The peers' interpreter (scripts/setup_peer.sh prints it) and scripts.
  std::string peer_python;
  std::string peer_script = "scripts/led_peer.py";
  std::string pegasus_script = "scripts/pegasus_peer.py";
  /// The directory of `pegasus_peer.py make` (hf/, ct2-float32/, ct2-int8/): the same weights as
  /// the first checkpoint (pyramidion-import hf DIR/hf).
  std::string peer_model;
  /// The peer's budget-mode batch: 0 = the same documents in the same batches as ours; B > 0 = one
  /// batch of B documents (when ours does not fit its memory), ratios then per document.
  int64_t peer_batch = 0;
  int64_t source_length = 8192;  // S
  int64_t target_length = 256;   // T
  int64_t beam = 4;              // B
  /// The job's budget (SummarizeOptions::max_tokens, pyramidion-summarize's --max-tokens).
  int64_t max_tokens = 262144;
  /// Documents of the budget mode; 0 = as many as one batch of the budget holds.
  int64_t documents = 0;
  /// Modes: "one" (batch 1, one document), "budget" (N documents batched under max_tokens).
  std::vector<std::string> modes{"one", "budget"};
  /// Source lengths of the sweep (batch 1, one document, each variant's first weights); empty:
  /// none. The presets' max_source_length is raised to the longest.
  std::vector<int64_t> sweep;
  /// Also profile one run per mode of each config's first weights (op_profile.h), after the timed
  /// runs; with reps = 0, profile only.
  bool profile = false;
  int warmup = 1;  // untimed repetitions of every variant (the peer warms up inside its own run)
  int reps = 3;    // timed repetitions
  uint64_t seed = 0;
  std::string json_path;      // also write the results as JSON here
  std::string markdown_path;  // also write the markdown report here
};

/// Runs the benchmark: markdown to stdout, progress to stderr, the optional files. Throws
/// std::invalid_argument for bad settings (before any run), std::runtime_error when a run fails
/// (the peer's included) or does not generate N x T tokens.
void run_summarize_bench(const SummarizeBenchOptions& options, const std::string& command);

}  // namespace bench
}  // namespace pyramidion
