// A preprocessed dataset: JSON-lines splits tokenized once (preprocess(), pyramidion-preprocess)
// into flat token files that training memory-maps (Dataset::open, TrainConfig::data), so that a
// start costs seconds at any corpus size, memory does not grow with the corpus and the ranks of
// one machine share the pages instead of tokenizing the corpus each.
//
//   auto result = pyramidion::preprocess({{"train", "train.jsonl"}, {"valid", "valid.jsonl"}},
//                                        tokenizer, "data/arxiv", PreprocessOptions().workers(8));
//   auto dataset = pyramidion::Dataset::open("data/arxiv");      // checks the files
//   TokenizedCorpus train = dataset.split("train").truncated(8192, 255);
//
// The directory (docs/data.md, "Preprocessed datasets"): manifest.json (format version, the
// tokenizer's checksum, each source file's size and checksum, the counts, truncation and skipped
// records), tokenizer.model, and per split <split>.source and <split>.target (the token ids,
// little-endian uint16 when the vocabulary has at most 65,536 pieces, int32 otherwise),
// <split>.index (source, target and id offsets, int64) and <split>.ids (the document ids).
#pragma once

#include <pyramidion/corpus.h>
#include <pyramidion/data.h>
#include <pyramidion/tokenizer.h>

#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pyramidion {

/// What preprocess() made of one split (also in the manifest).
struct SplitStats {
  int64_t documents = 0;          // examples stored
  int64_t skipped = 0;            // records skipped (skip_bad): malformed, or no tokens
  int64_t truncated_sources = 0;  // sources cut to max_source_length at preprocessing
  int64_t truncated_targets = 0;  // targets cut to max_target_length at preprocessing
  int64_t source_tokens = 0;      // stored
  int64_t target_tokens = 0;
  std::vector<std::string> skip_reasons;  // the first DocumentReader::kMaxSkipReasons
};

/// Where preprocess() is, for a progress line.
struct PreprocessProgress {
  std::string split;
  int64_t documents = 0;    // of this split so far
  int64_t bytes_read = 0;   // of its source file so far
  int64_t bytes_total = 0;  // the source file's size
  double seconds = 0;       // since this split began
};

struct PreprocessOptions {
  /// How the records are read (format, skip_bad). Without skip_bad, the first malformed record or
  /// example without tokens (in file order, whatever the number of workers) is an error.
  TORCH_ARG(ReaderOptions, reader) = {};
  /// Most source tokens stored per example; 0 = the full length (training cuts to its model's).
  TORCH_ARG(int64_t, max_source_length) = 0;
  /// Most target tokens stored per example (without eos); 0 = the full length.
  TORCH_ARG(int64_t, max_target_length) = 0;
  /// Tokenizing threads; 0 = the machine's hardware threads. The output does not depend on it.
  TORCH_ARG(int64_t, workers) = 0;
  /// Replace an existing dataset at the output path (only once the new one is complete).
  TORCH_ARG(bool, overwrite) = false;
  /// Called about once a second, and at the end of each split.
  TORCH_ARG(std::function<void(const PreprocessProgress&)>, progress);
};

struct PreprocessResult {
  std::map<std::string, SplitStats> splits;
  int64_t bytes_read = 0;     // of the source files
  int64_t bytes_written = 0;  // the dataset's size on disk
  double seconds = 0;
};

/// Tokenizes each (split name, JSON-lines path) into the dataset directory `out`. Atomic: the
/// directory is assembled under a temporary name and appears complete or not at all (a killed run
/// leaves a temporary that the next run at the same path removes). Split names are
/// [A-Za-z0-9_-]+, each once. Throws std::invalid_argument for invalid options, an existing `out`
/// without overwrite, and a malformed record ("<path>:<line>: ..."), std::runtime_error for I/O
/// errors (naming the path).
PreprocessResult preprocess(const std::vector<std::pair<std::string, std::string>>& splits, const Tokenizer& tokenizer,
                            const std::string& out, const PreprocessOptions& options = {});

/// A dataset directory made by preprocess(), opened read-only. Copies share the mapped files.
class Dataset {
 public:
  /// Opens and checks `dir`: the manifest's format and version, the tokenizer against its
  /// checksum, every file's size against the manifest, the index and id files against their
  /// checksums, and every offset of the index within its token file. Reads the index, not the
  /// tokens (verify() reads those). Throws std::runtime_error naming the file and what is wrong.
  static Dataset open(const std::string& dir);

  const std::string& path() const;
  /// The tokenizer the dataset was made with (its tokenizer.model).
  const Tokenizer& tokenizer() const;
  /// The checksum the manifest records for it (tokenizer_checksum()).
  const std::string& tokenizer_checksum() const;
  /// The split names, sorted.
  std::vector<std::string> splits() const;
  bool has_split(const std::string& name) const;
  /// The split's examples, memory-mapped; std::invalid_argument naming the splits there are for
  /// an unknown name.
  TokenizedCorpus split(const std::string& name) const;
  const SplitStats& stats(const std::string& name) const;
  /// The limits applied at preprocessing; 0 = full length.
  int64_t max_source_length() const;
  int64_t max_target_length() const;

  /// Reads every token file whole and compares its checksum with the manifest's (about a second
  /// per GB from the page cache). Throws std::runtime_error naming the first file that differs.
  void verify() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

/// The checksum of a tokenizer's model as a manifest records it (of its serialized() bytes).
std::string tokenizer_checksum(const Tokenizer& tokenizer);

}  // namespace pyramidion
