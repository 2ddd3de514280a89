// TokenizedCorpus: the token ids of many (source, target) examples, held compactly in memory
// (int32 ids, one flat buffer per side) or memory-mapped from a preprocessed dataset (dataset.h),
// and tokenize_file(), which makes one from a data file
// with the model's length limits. Batches are made from it by batching.h.
//
//   auto corpus = pyramidion::tokenize_file("data/aclsum/train.jsonl", tokenizer,
//                                           pyramidion::CorpusOptions().max_source_length(2048));
//   corpus.source(0), corpus.target(0)   // ids, no bos or eos
#pragma once

#include <pyramidion/data.h>
#include <pyramidion/tokenizer.h>

#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pyramidion {

/// Source and target token ids of many examples (no bos/eos stored), in insertion order.
///
/// Held in memory (add()), or read from a preprocessed dataset's memory-mapped files
/// (dataset.h: Dataset::split), whose pages the OS reads when an example is used. Copies, and the
/// views truncated() and first(), share the tokens; add() on a shared corpus copies them first.
class TokenizedCorpus {
 public:
  TokenizedCorpus();

  /// Adds an example; ids must be in [0, 2^31). Returns its index. Throws std::logic_error on a
  /// corpus read from a dataset and on a view (truncated(), first()): those are read-only.
  int64_t add(std::string id, const std::vector<int64_t>& source, const std::vector<int64_t>& target);

  int64_t size() const { return size_; }
  /// The example's id; i in [0, size()) (std::out_of_range otherwise, as for every accessor).
  std::string id(int64_t i) const;
  int64_t source_length(int64_t i) const;
  int64_t target_length(int64_t i) const;
  std::vector<int64_t> source(int64_t i) const;
  std::vector<int64_t> target(int64_t i) const;
  /// Total source and target tokens (after the limits of truncated()).
  int64_t source_tokens() const { return source_tokens_; }
  int64_t target_tokens() const { return target_tokens_; }

  /// The same examples with each source cut to its first `max_source` tokens and each target to
  /// its first `max_target` (0 = no limit; >= 0), sharing the tokens: what tokenize_file()
  /// with these limits gives, made from a full-length corpus without reading the tokens.
  TokenizedCorpus truncated(int64_t max_source, int64_t max_target) const;
  /// The first `n` examples (all when n >= size(); n >= 0), sharing the tokens.
  TokenizedCorpus first(int64_t n) const;
  /// True when the tokens are a dataset's memory-mapped files (read-only).
  bool mapped() const;

  /// Private: the storage behind the corpus (src/data/corpus_storage.h), shared by copies.
  struct Storage;
  explicit TokenizedCorpus(std::shared_ptr<Storage> storage);

 private:
  int64_t checked(int64_t i) const;
  void count_tokens();
  std::shared_ptr<Storage> storage_;
  int64_t size_ = 0;
  int64_t max_source_ = 0, max_target_ = 0;  // 0 = no limit
  int64_t source_tokens_ = 0, target_tokens_ = 0;
};

/// How tokenize_file() reads and cuts a file.
struct CorpusOptions {
  /// How the records are read (format, skip_bad). With skip_bad, an example whose document or
  /// summary has no tokens is skipped and counted too; otherwise it is an error.
  TORCH_ARG(ReaderOptions, reader) = {};
  /// Most source tokens kept; 0 = no limit.
  TORCH_ARG(int64_t, max_source_length) = 0;
  /// Most target tokens kept (without eos); 0 = no limit.
  TORCH_ARG(int64_t, max_target_length) = 0;
  /// A longer example is cut to the limits (counted in CorpusStats); false: it is an error.
  TORCH_ARG(bool, truncate) = true;
  /// Examples read; 0 = all.
  TORCH_ARG(int64_t, max_documents) = 0;
};

/// What tokenize_file() read.
struct CorpusStats {
  int64_t documents = 0;          // examples in the corpus
  int64_t skipped = 0;            // bad records and empty examples skipped (skip_bad)
  int64_t truncated_sources = 0;  // sources cut to max_source_length
  int64_t truncated_targets = 0;  // targets cut to max_target_length
  // Why the first DocumentReader::kMaxSkipReasons were skipped, in file order
  // ("<path>:<line>: <what>"); `skipped` counts them all.
  std::vector<std::string> skip_reasons;
};

/// Reads `path` with DocumentReader and tokenizes every document and summary. `progress` (when
/// set) hears a line every 10,000 examples. Throws std::invalid_argument "<path>:<line>: ..." for
/// a malformed record, an example without tokens or, with truncate false, one over the limits
/// (unless skipped: bad input), and std::runtime_error when the file cannot be read.
TokenizedCorpus tokenize_file(const std::string& path, const Tokenizer& tokenizer, const CorpusOptions& options = {},
                              CorpusStats* stats = nullptr,
                              const std::function<void(const std::string&)>& progress = {});

/// How train_tokenizer_on_file() samples its text.
struct TokenizerSampleOptions {
  /// How the records are read; with skip_bad, malformed records are left out of the sample (from
  /// a file larger than max_text_bytes, always: the file's tokenization reports them).
  TORCH_ARG(ReaderOptions, reader) = {};
  /// Most bytes of documents and summaries read (> 0). A file with less is read whole, in order;
  /// from a larger one, an equal share is read at each of `segments` evenly spaced places, so
  /// that the sample spans the file and its cost does not grow with the file.
  TORCH_ARG(int64_t, max_text_bytes) = int64_t{256} << 20;
  /// Places of a larger file the sample is read from (>= 1).
  TORCH_ARG(int64_t, segments) = 1024;
};

/// Trains a tokenizer (Tokenizer::train with `options`) on a bounded sample of `path`'s
/// documents and summaries (see TokenizerSampleOptions). Throws what DocumentReader and
/// Tokenizer::train throw, and std::runtime_error for a file without a usable record.
Tokenizer train_tokenizer_on_file(const std::string& path, const TokenizerTrainOptions& options = {},
                                  const TokenizerSampleOptions& sample = {});

}  // namespace pyramidion
