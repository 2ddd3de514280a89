// pyramidion-evaluate: ROUGE-1/2/L/Lsum F1 of predicted summaries against references, with
// bootstrap confidence intervals (a thin shell over pyramidion::evaluate_files,
// include/pyramidion/evaluate.h).
//
//   pyramidion-evaluate --predictions out/test.jsonl --references data/aclsum/test.jsonl
//   pyramidion-summarize ... | pyramidion-evaluate --predictions - --references test.jsonl --json r.json
//
// Exit status (tools/common/exit_status.h): 0 scored, 2 bad input (unreadable or malformed files,
// duplicate or unmatched ids, invalid flags, an output that is an input), 1 any other error.
#include <pyramidion/evaluate.h>
#include <pyramidion/rouge.h>

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

#include "common/exit_status.h"
#include "common/standard_streams.h"

namespace {

// --tokenize: the ROUGE tokens of each line of a text file, space-separated, one line per line.
void print_tokens(const std::string& path, bool use_stemmer) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw std::invalid_argument("cannot open '" + path + "'");
    in = &file;
  }
  std::string line, text, out;
  while (std::getline(*in, line)) {
    text.clear();
    for (const auto& token : pyramidion::rouge_tokenize(line, use_stemmer)) text += (text.empty() ? "" : " ") + token;
    out += text + '\n';
    if (out.size() >= (1 << 16)) {
      pyramidion::tools::print("the tokens", out);
      out.clear();
    }
  }
  pyramidion::tools::print("the tokens", out);
}

}  // namespace

int main(int argc, char** argv) {
  const auto streams = pyramidion::tools::StandardStreams::secure();  // first: before any file is opened
  CLI::App app{
      "Score predicted summaries against references with ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum (F1, "
      "precision, recall; mean over documents with a bootstrap confidence interval), as the rouge-score "
      "package computes them (docs/rouge.md).\n\n"
      "Both files are JSON lines matched by id. Predictions: {\"id\", \"summary\", ...}. References: the "
      "same shape, {\"id\", \"document\", \"summary\"}, or the arXiv/PubMed format (article_id, "
      "abstract_text). ROUGE-Lsum splits summaries into sentences at line breaks.\n\n"
      "Exit codes: 0 scored, 2 bad input, 1 other errors."};
  pyramidion::EvaluateOptions options("", "");
  auto& rouge = options.rouge();
  std::string tokenize_path;
  app.add_option("--predictions", options.predictions(), "predicted summaries, JSON lines ({id, summary}); - = stdin");
  app.add_option("--references", options.references(), "reference summaries, JSON lines (see above); - = stdin");
  app.add_flag("--stemmer,!--no-stemmer", rouge.rouge().use_stemmer(),
               "Porter-stem tokens longer than 3 characters (default: on, as summarization papers report; "
               "rouge-score's default is off)");
  app.add_option("--bootstrap", rouge.bootstrap_samples(), "bootstrap resamples for the intervals; 0 = none")
      ->check(pyramidion::tools::int64_text())
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--confidence", rouge.confidence(), "confidence level of the intervals, in (0, 1)")
      ->check(CLI::Validator(
          [](std::string& v) {
            double x = 0;
            return CLI::detail::lexical_cast(v, x) && x > 0 && x < 1 ? std::string()
                                                                     : "must be in (0, 1), e.g. 0.95, got " + v;
          },
          "(0, 1)"))
      ->capture_default_str();
  app.add_option("--seed", rouge.seed(), "seed of the resampling, in [0, 2^64)")
      ->check(CLI::Validator(
          [](std::string& v) {
            // CLI11 would read "-1" into the unsigned seed as 18446744073709551615 (and a number past
            // 2^64 as 2^64 - 1): only the digits of a uint64.
            uint64_t seed = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seed);
            return !v.empty() && v[0] != '-' && ec == std::errc() && end == v.data() + v.size()
                       ? std::string()
                       : "must be an integer in [0, 2^64), got " + v;
          },
          "UINT"))
      ->capture_default_str();
  app.add_option("--json", options.json(), "also write the report as JSON to this file");
  app.add_option("--per-document", options.per_document(),
                 "write each document's scores as JSON lines ({id, rouge1: {precision, recall, f1}, ...})");
  app.add_flag("--allow-missing", options.allow_missing(),
               "score only the ids present in both files (default: an id on one side only is an error)");
  app.add_option("--tokenize", tokenize_path,
                 "print the ROUGE tokens of each line of a text file (- = stdin) and exit; with --stemmer "
                 "as set")
      ->excludes("--predictions", "--references");
  if (const auto status = pyramidion::tools::parse(app, argc, argv)) return *status;

  return pyramidion::tools::run("pyramidion-evaluate", [&] {
    streams.require_input("--tokenize", tokenize_path);
    streams.require_input("--predictions", options.predictions());
    streams.require_input("--references", options.references());
    streams.require_output("--json", options.json());
    streams.require_output("--per-document", options.per_document());
    if (!tokenize_path.empty()) {
      print_tokens(tokenize_path, rouge.rouge().use_stemmer());
      return pyramidion::tools::kDone;
    }
    if (options.predictions().empty() || options.references().empty())
      throw std::invalid_argument("--predictions and --references are both required (see --help)");
    options.log([](const std::string& line) { std::cerr << "pyramidion-evaluate: " << line << "\n"; });
    const auto evaluation = pyramidion::evaluate_files(options);
    pyramidion::tools::print("the report", pyramidion::rouge_report_to_markdown(evaluation.report));
    return pyramidion::tools::kDone;
  });
}
