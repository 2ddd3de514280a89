// Training batches: a tokenized corpus held compactly in memory, token-budget batching with length
// bucketing, and collation into the tensors Seq2Seq::forward takes.
//
//   TokenizedCorpus corpus;                     // int32 token ids, one flat buffer per side
//   corpus.add("doc-1", source_ids, summary_ids);
//   auto batches = make_batches(corpus, BatchingOptions().max_tokens(16384), /*epoch=*/0);
//   Batch batch = corpus.collate(batches[0], config);   // src_ids, src_mask, tgt_in, tgt_out
//
// An epoch's batches depend on (seed, epoch) only: a resumed run sees the same batches in the
// same order as an uninterrupted one.
//
// Shape legend: b examples in a batch, n longest source in it, t longest target in it (+1 for
// bos/eos).
#pragma once

#include <pyramidion/config.h>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
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

/// One padded batch for teacher forcing.
struct Batch {
  at::Tensor src_ids;   // (b, n) int64, pad_id after each source
  at::Tensor src_mask;  // (b, n) bool, true at real tokens
  at::Tensor tgt_in;    // (b, t) int64: bos, y_1 .. y_m, pad_id ...
  at::Tensor tgt_out;   // (b, t) int64: y_1 .. y_m, eos, pad_id ... (pad_id = ignored by the loss)
  int64_t source_tokens = 0;  // real source tokens
  int64_t target_tokens = 0;  // real target positions (summary tokens + eos each)
  std::vector<int64_t> examples;  // corpus indices, in row order

  /// The same batch with its tensors on `device`.
  Batch to(at::Device device) const;
};

/// Pads the examples `indices` of `corpus` into a Batch with config's pad/bos/eos ids. Throws
/// std::invalid_argument when an example is empty, its source is longer than
/// config.max_source_length or its target plus eos longer than config.max_target_length (the
/// caller truncates first), or an index is out of range.
Batch collate(const TokenizedCorpus& corpus, const std::vector<int64_t>& indices, const ModelConfig& config);

struct BatchingOptions {
  /// Budget per batch: b * (n + t) padded tokens, at most this; >= 1. An example larger than the
  /// budget alone forms a batch of one.
  TORCH_ARG(int64_t, max_tokens) = 16384;
  /// Examples sorted by length together (after a seeded shuffle), so that a batch pads little;
  /// >= 1. Batches never span two buckets: 1 = batches of one example.
  TORCH_ARG(int64_t, bucket_size) = 1024;
  /// Seed of the example and batch shuffles.
  TORCH_ARG(uint64_t, seed) = 1;
};

/// The batches of epoch `epoch` (>= 0): every example exactly once, in a seeded random order of
/// batches. Throws std::invalid_argument for invalid options.
std::vector<std::vector<int64_t>> make_batches(const TokenizedCorpus& corpus, const BatchingOptions& options,
                                               int64_t epoch);

}  // namespace pyramidion
