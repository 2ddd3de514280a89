// `pyramidion-bench selection`: the selection task's evaluation (issue 14, docs/selection.md) of
// trained checkpoints side by side. For every model: span recall per pooling layer, exact match and
// token F1 of the greedy outputs on the test windows (pyramidion::evaluate_selection), and the
// inference time, measured interleaved: the windows are cut into chunks, every chunk runs every
// model once (in an order rotated from chunk to chunk), and a model's speed-up over the first one
// is the median of the per-chunk ratios. Optionally the highlight page of the first windows, one per
// model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {
namespace bench {

struct SelectionBenchOptions {
  /// "NAME=DIR": a checkpoint directory of pyramidion-train under a name for the report;
  /// "NAME=DIR@hard" loads it with the exact top-k at inference (Seq2Seq::set_hard_at_inference).
  /// The first is the baseline of the time ratios.
  std::vector<std::string> models;
  /// Test windows: JSON lines (scripts/make_selection.py's output).
  std::string input;
  int64_t max_documents = 0;  // windows used; 0 = all
  int64_t chunk = 25;         // windows per timed chunk
  int64_t max_tokens = 65536; // batch budget of the greedy decoding
  /// Directory for one highlight page per model (<dir>/<name>.html); "" = none.
  std::string highlight_dir;
  int64_t highlight_documents = 6;  // windows on each page
  std::string json_path;      // also write the results (and every window's) as JSON here
  std::string markdown_path;  // also write the markdown report here
};

/// Runs the evaluation: markdown to stdout, progress to stderr, the optional files. Throws
/// std::invalid_argument for bad settings (before any model runs), std::runtime_error when a
/// checkpoint or the input cannot be read.
void run_selection_bench(const SelectionBenchOptions& options, const std::string& command);

}  // namespace bench
}  // namespace pyramidion
