// pyramidion-preprocess: tokenizes JSON-lines splits once into a dataset directory that
// pyramidion-train memory-maps (--data / TrainConfig.data); a thin shell over pyramidion::preprocess
// (include/pyramidion/dataset.h).
//
//   pyramidion-preprocess --train train.jsonl --valid valid.jsonl --vocab-size 32000 --out data/arxiv
//   pyramidion-preprocess --train train.jsonl --tokenizer runs/x/tokenizer.model --out data/x --workers 8
//   pyramidion-preprocess --verify data/arxiv          # reads every file against its checksum
#include <pyramidion/dataset.h>
#include <pyramidion/threads.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/exit_status.h"
#include "common/standard_streams.h"

namespace {

constexpr const char* kName = "pyramidion-preprocess";

std::string fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, v);
  return buffer;
}

void print_progress(const pyramidion::PreprocessProgress& p) {
  const double mb = static_cast<double>(p.bytes_read) / 1e6;
  const double rate = p.seconds > 0 ? mb / p.seconds : 0;
  const double left = rate > 0 ? (static_cast<double>(p.bytes_total - p.bytes_read) / 1e6) / rate : 0;
  std::cerr << kName << ": " << p.split << ": " << p.documents << " documents, "
            << fixed(p.seconds > 0 ? static_cast<double>(p.documents) / p.seconds : 0, 0) << " documents/s, "
            << fixed(rate, 1) << " MB/s, " << fixed(100.0 * static_cast<double>(p.bytes_read) /
                                                   static_cast<double>(std::max<int64_t>(1, p.bytes_total)), 1)
            << "%, ETA " << fixed(left, 0) << " s" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  pyramidion::tools::StandardStreams::secure();  // first: before any file is opened
  CLI::App app{"Tokenize JSON-lines summarization data (arXiv/PubMed or {id, document, summary}) once into a "
               "dataset directory that pyramidion-train memory-maps (--set data=DIR)."};
  std::string train, valid, test, tokenizer_path, tokenizer_sample, out, verify, format = "auto";
  std::vector<std::string> extra;
  int64_t vocab_size = 0, workers = 0, max_source = 0, max_target = 0, sample_mb = 256;
  bool skip_bad = false, overwrite = false;
  app.add_option("--train", train, "training split (JSON lines)")->check(CLI::ExistingFile);
  app.add_option("--valid", valid, "validation split (JSON lines)")->check(CLI::ExistingFile);
  app.add_option("--test", test, "test split (JSON lines)")->check(CLI::ExistingFile);
  app.add_option("--split", extra, "another split: NAME=FILE (repeatable)");
  app.add_option("--tokenizer", tokenizer_path, "an existing sentencepiece model")->check(CLI::ExistingFile);
  app.add_option("--vocab-size", vocab_size, "train a tokenizer of this many pieces on a sample of --train")
      ->check(pyramidion::tools::int64_text());
  app.add_option("--tokenizer-sample", tokenizer_sample, "the file --vocab-size trains on (default --train)")
      ->check(CLI::ExistingFile);
  app.add_option("--tokenizer-sample-mb", sample_mb,
                 "text that trains the tokenizer: at most this many MB, spread over --train (default 256)")
      ->check(pyramidion::tools::int64_text());
  app.add_option("--out", out, "the dataset directory to make");
  app.add_option("--workers", workers, "tokenizing threads (default: the hardware threads; the output is the same)")
      ->check(pyramidion::tools::int64_text());
  app.add_option("--format", format, "record format: auto, arxiv or plain (default auto)");
  app.add_flag("--skip-bad", skip_bad, "skip (and count) malformed records instead of stopping at the first");
  app.add_option("--max-source-length", max_source, "store at most this many source tokens (default 0: all; "
                                                    "training cuts to its model's)")
      ->check(pyramidion::tools::int64_text());
  app.add_option("--max-target-length", max_target, "store at most this many summary tokens (default 0: all)")
      ->check(pyramidion::tools::int64_text());
  app.add_flag("--overwrite", overwrite, "replace an existing dataset at --out (once the new one is complete)");
  app.add_option("--verify", verify, "check an existing dataset: every file against the manifest's checksums "
                                     "(alone: it makes nothing, so the options that make a dataset are refused with it)")
      ->excludes("--train", "--valid", "--test", "--split", "--tokenizer", "--vocab-size", "--tokenizer-sample",
                 "--tokenizer-sample-mb", "--out", "--workers", "--format", "--skip-bad", "--max-source-length",
                 "--max-target-length", "--overwrite");
  app.footer(app.get_footer() +
             "\nExit status (docs/reliability.md): 0 done; 2 bad input (invalid flags or values, missing or "
             "malformed inputs), reported before any work; 1 other errors (a failed write names the path and "
             "the reason)" + std::string("."));
  if (const auto status = pyramidion::tools::parse(app, argc, argv)) return *status;

  return pyramidion::tools::run(kName, [&] {
    if (!verify.empty()) {
      const auto started = std::chrono::steady_clock::now();
      const auto dataset = pyramidion::Dataset::open(verify);
      dataset.verify();
      std::cerr << kName << ": " << verify << ": every file matches the manifest ("
                << fixed(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 1) << " s)"
                << std::endl;
      return pyramidion::tools::kDone;
    }
    std::vector<std::pair<std::string, std::string>> splits;
    if (!train.empty()) splits.emplace_back("train", train);
    if (!valid.empty()) splits.emplace_back("valid", valid);
    if (!test.empty()) splits.emplace_back("test", test);
    for (const auto& item : extra) {
      const auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0) throw std::invalid_argument("--split: expected NAME=FILE, got '" + item + "'");
      splits.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    }
    if (out.empty()) throw std::invalid_argument("--out is required");
    if (splits.empty()) throw std::invalid_argument("give at least one split: --train, --valid, --test or --split");
    if (tokenizer_path.empty() == (vocab_size == 0))
      throw std::invalid_argument("give either --tokenizer MODEL or --vocab-size N");
    const auto reader = pyramidion::ReaderOptions().format(pyramidion::data_format_from_string(format)).skip_bad(skip_bad);
    pyramidion::check_threads(workers, "--workers");  // before the tokenizer is trained
    std::optional<pyramidion::Tokenizer> tokenizer;
    if (!tokenizer_path.empty()) {
      tokenizer = pyramidion::Tokenizer::load(tokenizer_path);
    } else {
      if (tokenizer_sample.empty()) tokenizer_sample = train;
      if (tokenizer_sample.empty())
        throw std::invalid_argument("--vocab-size trains on --train (or --tokenizer-sample), which is not given");
      const auto started = std::chrono::steady_clock::now();
      std::cerr << kName << ": training a " << vocab_size << "-piece tokenizer on at most " << sample_mb
                << " MB of " << tokenizer_sample << std::endl;
      tokenizer = pyramidion::train_tokenizer_on_file(
          tokenizer_sample, pyramidion::TokenizerTrainOptions().vocab_size(vocab_size),
          pyramidion::TokenizerSampleOptions().reader(reader).max_text_bytes(sample_mb << 20));
      std::cerr << kName << ": tokenizer trained in "
                << fixed(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 1) << " s"
                << std::endl;
    }
    const auto result = pyramidion::preprocess(splits, *tokenizer, out,
                                               pyramidion::PreprocessOptions()
                                                   .reader(reader)
                                                   .max_source_length(max_source)
                                                   .max_target_length(max_target)
                                                   .workers(workers)
                                                   .overwrite(overwrite)
                                                   .progress(print_progress));
    for (const auto& [name, s] : result.splits)
      std::cerr << kName << ": " << name << ": " << s.documents << " documents, " << s.source_tokens << " source and "
                << s.target_tokens << " summary tokens, " << s.truncated_sources << " sources and "
                << s.truncated_targets << " summaries truncated, " << s.skipped << " records skipped" << std::endl;
    std::cerr << kName << ": " << out << ": " << fixed(static_cast<double>(result.bytes_written) / 1e6, 1)
              << " MB written from " << fixed(static_cast<double>(result.bytes_read) / 1e6, 1) << " MB in "
              << fixed(result.seconds, 1) << " s (" << fixed(static_cast<double>(result.bytes_read) / 1e6 / result.seconds, 1)
              << " MB/s)" << std::endl;
    pyramidion::tools::print("the dataset's path", out + "\n");
    return pyramidion::tools::kDone;
  });
}
