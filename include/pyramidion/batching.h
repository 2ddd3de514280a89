// Batches of a TokenizedCorpus (corpus.h): token-budget batching with length bucketing, and
// collation into the tensors Seq2Seq takes. The one batching path of the library: training,
// validation and summarization all batch through make_batches and collate.
//
//   auto batches = make_batches(corpus, BatchingOptions().max_tokens(16384), /*epoch=*/0);
//   Batch batch = collate(corpus, batches[0], config);   // src_ids, src_mask, tgt_in, tgt_out
//
// Training shuffles (the default): an epoch's batches depend on (seed, epoch) only, so a resumed
// run sees the same batches in the same order as an uninterrupted one. Summarization does not
// (shuffle(false)): examples longest first, each batch as large as the budget allows.
//
// Shape legend: b examples in a batch, n longest source in it, t longest target in it (+1 for
// bos/eos).
#pragma once

#include <pyramidion/config.h>
#include <pyramidion/corpus.h>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {

/// One padded batch for teacher forcing.
struct Batch {
  at::Tensor src_ids;   // (b, n) int64: the source (then eos_id when config.source_eos), pad_id ...
  at::Tensor src_mask;  // (b, n) bool, true at real tokens
  at::Tensor tgt_in;    // (b, t) int64: bos, y_1 .. y_m, pad_id ...
  at::Tensor tgt_out;   // (b, t) int64: y_1 .. y_m, eos, pad_id ... (pad_id = ignored by the loss)
  int64_t source_tokens = 0;  // real source tokens (eos included)
  int64_t target_tokens = 0;  // real target positions (summary tokens + eos each)
  std::vector<int64_t> examples;  // corpus indices, in row order

  /// The same batch with its tensors on `device`.
  Batch to(at::Device device) const;
};

/// Pads the examples `indices` of `corpus` into a Batch with config's pad/bos/eos ids, appending
/// eos to each source when config.source_eos. Throws std::invalid_argument when an example is
/// empty, its source (plus eos) is longer than config.max_source_length or its target plus eos
/// longer than config.max_target_length (the caller truncates first), or an index is out of range.
Batch collate(const TokenizedCorpus& corpus, const std::vector<int64_t>& indices, const ModelConfig& config);

struct BatchingOptions {
  /// Budget per batch: b * (n + t) padded tokens, at most this, where n is the batch's longest
  /// source and t its target positions (see target_positions); >= 1. An example larger than the
  /// budget alone forms a batch of one.
  TORCH_ARG(int64_t, max_tokens) = 16384;
  /// Examples sorted by length together, so that a batch pads little; >= 0. Batches never span two
  /// buckets: 1 = batches of one example; 0 = one bucket of every example.
  TORCH_ARG(int64_t, bucket_size) = 1024;
  /// Shuffle the examples before bucketing and the batches after, seeded by (seed, epoch)
  /// (training). false: the examples' own order, then longest first, batches in that order
  /// (inference: the largest batches first).
  TORCH_ARG(bool, shuffle) = true;
  /// Seed of the shuffles.
  TORCH_ARG(uint64_t, seed) = 1;
  /// Target positions t counted per example: 0 = its target length + 1 (teacher forcing: bos or
  /// eos added); > 0 = this many for every example (generation: beam_size x max_length cached
  /// decoder positions); >= 0.
  TORCH_ARG(int64_t, target_positions) = 0;
};

/// The batches of epoch `epoch` (>= 0): every example exactly once, as BatchingOptions says.
/// Throws std::invalid_argument for invalid options.
std::vector<std::vector<int64_t>> make_batches(const TokenizedCorpus& corpus, const BatchingOptions& options,
                                               int64_t epoch);

}  // namespace pyramidion
