// TokenizedCorpus: the token ids of many (source, target) examples, held compactly in memory
// (int32 ids, one flat buffer per side), and tokenize_file(), which makes one from a data file
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
#include <string>
#include <vector>

namespace pyramidion {

/// Source and target token ids of many examples (no bos/eos stored), in insertion order.
class TokenizedCorpus {
 public:
  /// Adds an example; ids must be in [0, 2^31). Returns its index.
  int64_t add(std::string id, const std::vector<int64_t>& source, const std::vector<int64_t>& target);

  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  const std::string& id(int64_t i) const { return ids_.at(static_cast<size_t>(i)); }
  int64_t source_length(int64_t i) const;
  int64_t target_length(int64_t i) const;
  std::vector<int64_t> source(int64_t i) const;
  std::vector<int64_t> target(int64_t i) const;
  /// Total source and target tokens.
  int64_t source_tokens() const { return static_cast<int64_t>(source_tokens_.size()); }
  int64_t target_tokens() const { return static_cast<int64_t>(target_tokens_.size()); }

 private:
  std::vector<std::string> ids_;
  std::vector<int32_t> source_tokens_, target_tokens_;
  std::vector<int64_t> source_offsets_{0}, target_offsets_{0};  // size() + 1 each
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
};

/// Reads `path` with DocumentReader and tokenizes every document and summary. `progress` (when
/// set) hears a line every 10,000 examples. Throws std::runtime_error "<path>:<line>: ..." for a
/// malformed record, an example without tokens or, with truncate false, one over the limits
/// (unless skipped), and what DocumentReader throws.
TokenizedCorpus tokenize_file(const std::string& path, const Tokenizer& tokenizer, const CorpusOptions& options = {},
                              CorpusStats* stats = nullptr,
                              const std::function<void(const std::string&)>& progress = {});

}  // namespace pyramidion
