// evaluate_files(): the job of pyramidion-evaluate as a library call. Reads predicted and reference
// summaries from JSON-lines files, matches them by id, scores them with ROUGE (rouge.h) and
// optionally writes the report as JSON and the per-document scores as JSON lines.
//
//   const auto e = pyramidion::evaluate_files(pyramidion::EvaluateOptions("out.jsonl", "test.jsonl"));
//   std::cout << pyramidion::rouge_report_to_markdown(e.report);
//
// This header needs no JSON library and of LibTorch only torch/arg.h (the options macro): it
// compiles as C++17.
#pragma once

#include <pyramidion/rouge.h>

#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pyramidion {

/// A summary read by read_summaries: a prediction or a reference.
struct SummaryRecord {
  std::string id;
  /// Sentences separated by "\n" (ROUGE-Lsum's sentence boundaries); may be empty.
  std::string summary;
  /// Where it came from ("-" = standard input) and its 1-based line.
  std::string path;
  int64_t line = 0;
};

/// Reads summaries from a JSON-lines file ("-" = standard input), one record per non-blank line,
/// in one of three shapes (a file whose first record is in the arXiv format is read as a whole
/// with DocumentReader, and must be a file, not "-"):
///   summaries  {"id": "x" or 17, "summary": "...", ...other keys ignored}, e.g. the output of
///              summarization; the summary may be empty.
///   arxiv      {"article_id", "article_text", "abstract_text", ...} and
///   plain      {"id", "document", "summary", ...}: datasets, read with DocumentReader
///              (include/pyramidion/data.h); the summary is the reference abstract.
/// Throws std::invalid_argument "<path>:<line>: <what is wrong>" for a malformed record
/// (invalid JSON or UTF-8, a missing id or summary, a value of the wrong type) and
/// std::runtime_error when the file cannot be opened or read. Ids are not checked here.
std::vector<SummaryRecord> read_summaries(const std::string& path);

struct EvaluateOptions {
  using Log = std::function<void(const std::string&)>;
  EvaluateOptions(std::string predictions, std::string references)
      : predictions_(std::move(predictions)), references_(std::move(references)) {}
  /// Predicted summaries ({id, summary} JSON lines); "-" = standard input.
  TORCH_ARG(std::string, predictions);
  /// Reference summaries (read_summaries' shapes); "-" = standard input (not both).
  TORCH_ARG(std::string, references);
  /// How to score. Stemming on, as summarization papers report (rouge-score's own default is off).
  TORCH_ARG(RougeCorpusOptions, rouge) = RougeCorpusOptions().rouge(RougeOptions().use_stemmer(true));
  /// Score only the ids present in both files (a warning to `log` names the others); false: an id
  /// on one side only is an error.
  TORCH_ARG(bool, allow_missing) = false;
  /// Also write the report (rouge_report_to_json, with the two paths added) here; "" = no.
  TORCH_ARG(std::string, json) = "";
  /// Also write each document's scores (rouge_per_document_to_jsonl) here; "" = no.
  TORCH_ARG(std::string, per_document) = "";
  /// Warnings; unset = silent.
  TORCH_ARG(Log, log) = nullptr;
};

struct Evaluation {
  RougeReport report;            // scores of the matched pairs
  std::vector<std::string> ids;  // their ids, in the order of the predictions
};

/// Runs the job. Throws std::invalid_argument for bad input: invalid options, a file that cannot
/// be opened, malformed records ("<path>:<line>: ..."), duplicate ids, unmatched ids (unless
/// allow_missing) or no id in both; std::runtime_error for other I/O failures (naming the path).
Evaluation evaluate_files(const EvaluateOptions& options);

}  // namespace pyramidion
