// The selection task (docs/selection.md): evidence that the pooling layers learn what to read.
//
// Each input is a window of a paper in which one sentence, the marked passage, is wrapped in two
// marker symbols that occur nowhere else (reserved pieces of the tokenizer:
// TokenizerTrainOptions::reserved_symbols); the target is that sentence. A model can write it only
// if the passage's tokens survive every pooling layer, so the evaluation measures both:
//
//   span recall of layer i:  |kept_i  intersect  passage| / |passage|, where passage = the token
//                            positions strictly between the two markers in the source the model
//                            read, and kept_i = the original positions the i-th pooling layer kept
//                            (EncoderOutput::kept_positions)
//   exact match:             the greedy output's ids equal the reference passage's ids
//   token F1:                SQuAD's word-overlap F1 between the output's text and the reference's
//                            (the reference normalized as the tokenizer sees it: decode(encode(s)))
//
//   auto s = pyramidion::Summarizer::load("results/selection/trained/latest");
//   auto windows = pyramidion::evaluate_selection(s, documents);   // greedy, with kept positions
//   pyramidion::SelectionReport r = pyramidion::summarize_selection(windows);
//   r.span_recall.back(), r.exact_match

#pragma once

#include <pyramidion/data.h>
#include <pyramidion/summarizer.h>

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {

/// The marked passage of a token sequence: positions [begin, end), strictly between the first
/// open marker and the first close marker after it.
struct MarkedSpan {
  int64_t begin = -1;
  int64_t end = -1;
  /// Both markers were found (the passage may still be empty: end == begin).
  bool found() const { return begin >= 0; }
  int64_t length() const { return found() ? end - begin : 0; }
};

/// The passage of `ids` between the first `open_id` and the first `close_id` after it; not found()
/// when there is no open marker or no close marker after it (a passage cut off by truncation).
/// Throws std::invalid_argument when open_id or close_id is negative or they are equal.
MarkedSpan find_marked_span(const std::vector<int64_t>& ids, int64_t open_id, int64_t close_id);

/// The fraction of the span's positions that occur in `kept` (any order; -1, the padding of
/// EncoderOutput::kept_positions, is ignored; a position kept twice counts once). Throws
/// std::invalid_argument for a span that is not found() or is empty.
double span_recall(const std::vector<int64_t>& kept, const MarkedSpan& span);

/// SQuAD's token F1 (Rajpurkar et al. 2016) on whitespace-separated words, without its English
/// normalization: 2 P R / (P + R) over the multiset of common words; 1 when both texts have no
/// word, 0 when only one has none.
double token_f1(const std::string& prediction, const std::string& reference);

struct SelectionOptions {
  /// The marker symbols (scripts/make_selection.py's defaults); each must be one piece of the
  /// summarizer's tokenizer.
  TORCH_ARG(std::string, open_marker) = "\u27e6";
  TORCH_ARG(std::string, close_marker) = "\u27e7";
  /// Batch budget of the greedy decoding (SummarizeOptions::max_tokens); >= 1.
  TORCH_ARG(int64_t, max_tokens) = 65536;
};

/// One window's result.
struct SelectionWindow {
  std::string id;
  bool passage_read = false;        // both markers are among the tokens the model read
  int64_t passage_tokens = 0;       // tokens between the markers (0 when !passage_read)
  std::vector<double> span_recall;  // per pooling layer; empty without pooling or !passage_read
  bool exact_match = false;         // output ids == encode(reference)
  double token_f1 = 0;
  std::string prediction;           // the greedy output, detokenized
  std::string reference;            // decode(encode(document.summary))
  Summary summary;                  // the output with its kept positions and token spans (highlight)
};

/// Greedy outputs of `windows` (Document::document: the window; Document::summary: the passage)
/// with the kept positions of every pooling layer, and each window's scores, in input order.
/// Throws std::invalid_argument when a marker is not one piece of the tokenizer (naming it), for a
/// max_tokens < 1, and what Summarizer::summarize throws.
std::vector<SelectionWindow> evaluate_selection(Summarizer& summarizer, const std::vector<Document>& windows,
                                                const SelectionOptions& options = {});

/// Means over windows.
struct SelectionReport {
  int64_t windows = 0;
  int64_t passages_read = 0;        // windows whose passage the model read whole
  std::vector<double> span_recall;  // per pooling layer: mean over the windows with passage_read
  double exact_match = 0;           // fraction of all windows
  double token_f1 = 0;              // mean over all windows
  double seconds = 0;               // the outputs' wall time in total (Summary::seconds)
};

/// The means of `windows` (an empty list gives zeros). Throws std::invalid_argument when windows
/// with passage_read disagree on the number of pooling layers.
SelectionReport summarize_selection(const std::vector<SelectionWindow>& windows);

}  // namespace pyramidion
