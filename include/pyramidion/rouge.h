// ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum (Lin 2004, "ROUGE: A Package for Automatic Evaluation
// of Summaries"), computed as the `rouge-score` Python package (google-research) computes them, to
// within 1e-6 (scripts/check_rouge.sh checks this; docs/rouge.md lists the definitions):
//
//   tokens    lowercase, every character other than [a-z0-9] is a separator (so non-ASCII letters
//             vanish), optionally Porter-stemmed (NLTK's variant) when longer than 3 characters.
//   ROUGE-N   clipped n-gram overlap: precision = overlap / prediction n-grams, recall = overlap /
//             reference n-grams, F1 = 2PR / (P + R); 0 when either side has no n-gram.
//   ROUGE-L   longest common subsequence of the two token sequences, LCS / length.
//   ROUGE-Lsum summary-level LCS over sentences separated by "\n" (union LCS of each reference
//             sentence against every prediction sentence, each token counted at most as often as
//             it occurs on both sides).
//
// Corpus scores are means over documents with bootstrap percentile confidence intervals, like
// rouge-score's BootstrapAggregator (which reports the median of the resampled means as "mid";
// here mid is the plain mean, the number papers report).
//
// This header needs no JSON library and of LibTorch only torch/arg.h (the options macro): it
// compiles as C++17.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {

struct RougeOptions {
  /// Porter-stem tokens longer than 3 characters (rouge-score's use_stemmer). Off as in
  /// rouge-score; pyramidion-evaluate turns it on, as summarization papers report.
  TORCH_ARG(bool, use_stemmer) = false;
};

/// One measure of one document pair.
struct RougeScore {
  double precision = 0;
  double recall = 0;
  double f1 = 0;
};

/// All measures of one document pair.
struct RougeScores {
  RougeScore rouge1;
  RougeScore rouge2;
  RougeScore rougeL;
  RougeScore rougeLsum;
};

/// rouge-score's tokens of `text` (see the top of this file). Any byte string is accepted:
/// bytes that are not ASCII letters or digits separate tokens, except the UTF-8 forms of U+0130
/// and U+212A (Kelvin sign), which Python lowercases to "i" and "k".
std::vector<std::string> rouge_tokenize(const std::string& text, bool use_stemmer = false);

/// The scores of `prediction` against `reference`. Never throws for any input text; an empty
/// side (no tokens) scores 0.
RougeScores rouge(const std::string& prediction, const std::string& reference,
                  const RougeOptions& options = {});

struct RougeCorpusOptions {
  /// The most bootstrap_samples (each resample keeps 12 means: 96 MB at the most).
  static constexpr int64_t kMaxBootstrapSamples = 1000000;
  /// How each document pair is scored.
  TORCH_ARG(RougeOptions, rouge) = {};
  /// Bootstrap resamples of the documents for the confidence intervals; 0 = no interval
  /// (low = mid = high = the mean). rouge-score's default. At most kMaxBootstrapSamples.
  TORCH_ARG(int64_t, bootstrap_samples) = 1000;
  /// Two-sided confidence level of the percentile interval, in (0, 1).
  TORCH_ARG(double, confidence) = 0.95;
  /// Seed of the resampling (a fixed mt19937_64 stream: the same seed gives the same interval
  /// on every platform).
  TORCH_ARG(uint64_t, seed) = 0;

 public:  // (TORCH_ARG leaves the section private)
  /// Throws std::invalid_argument naming the first invalid option (what rouge_corpus() checks).
  void check() const;
};

/// A corpus-level value: the mean over documents and its bootstrap percentile interval.
struct RougeInterval {
  double low = 0;
  double mid = 0;  // the mean over documents
  double high = 0;
};

/// Corpus-level precision, recall and F1 of one measure (each the mean of the per-document value).
struct RougeMeasureReport {
  RougeInterval precision;
  RougeInterval recall;
  RougeInterval f1;
};

struct RougeReport {
  /// The options it was computed with.
  RougeCorpusOptions options;
  RougeMeasureReport rouge1;
  RougeMeasureReport rouge2;
  RougeMeasureReport rougeL;
  RougeMeasureReport rougeLsum;
  /// Documents scored.
  int64_t documents = 0;
  /// The scores of each document pair, in input order.
  std::vector<RougeScores> per_document;
};

/// Scores predictions[i] against references[i] and aggregates. Throws std::invalid_argument for
/// lists of different sizes, empty lists, bootstrap_samples < 0 or confidence outside (0, 1).
RougeReport rouge_corpus(const std::vector<std::string>& predictions, const std::vector<std::string>& references,
                         const RougeCorpusOptions& options = {});

/// The corpus-level part of `report` as a JSON object (fractions, not percentages):
///   {"documents": 250, "use_stemmer": true, "bootstrap_samples": 1000, "confidence": 0.95,
///    "seed": 0, "rouge1": {"precision": {"low": .., "mid": .., "high": ..}, "recall": {..},
///    "f1": {..}}, "rouge2": .., "rougeL": .., "rougeLsum": ..}
std::string rouge_report_to_json(const RougeReport& report);

/// The corpus-level part of `report` as the markdown table pyramidion-evaluate prints (x100):
///   100 documents, Porter stemming on, 95% bootstrap intervals (1000 resamples, seed 0)
///   | measure | F1 | F1 interval | precision | recall |  (one row per measure)
std::string rouge_report_to_markdown(const RougeReport& report);

/// The per-document scores as JSON lines, one per document in order:
///   {"id": "x", "rouge1": {"precision": .., "recall": .., "f1": ..}, "rouge2": .., ...}
/// Throws std::invalid_argument unless ids.size() == report.per_document.size().
std::string rouge_per_document_to_jsonl(const RougeReport& report, const std::vector<std::string>& ids);

}  // namespace pyramidion
