// Summarizer: a trained checkpoint (model + tokenizer) that turns documents into summaries, in
// length-sorted batches, with beam search. The library behind pyramidion-summarize.
//
//   auto s = pyramidion::Summarizer::load("runs/tiny/latest");
//   auto out = s.summarize({doc1, doc2}, pyramidion::SummarizeOptions().max_tokens(65536));
//   out[0].summary, out[0].score, out[0].kept   // kept: source positions per pooling layer
#pragma once

#include <pyramidion/corpus.h>
#include <pyramidion/generate.h>
#include <pyramidion/highlight.h>
#include <pyramidion/model.h>
#include <pyramidion/precision.h>
#include <pyramidion/tokenizer.h>

#include <torch/arg.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {

struct SummarizeOptions {
  /// The search (generate_options.h). The summarization defaults: beam 4 and no repeated trigram
  /// (the usual settings); max_length 0 = the model's max_target_length. Change one setting with
  /// `options.search().beam_size(2)`.
  TORCH_ARG(GenerateOptions, search) = GenerateOptions().beam_size(4).no_repeat_ngram_size(3);
  /// Batch budget: documents per batch x (longest document's tokens + beam_size x max_length),
  /// at most this, so that the encoder's rows and the decoder's cached rows are both bounded (a
  /// document over the budget forms a batch alone); in [1, 2^32]. Batches are made by make_batches
  /// (batching.h), longest documents first.
  TORCH_ARG(int64_t, max_tokens) = 262144;
  /// Also return, per pooling layer, the source positions whose representations were kept, and
  /// the byte spans of the tokens read (Summary::pieces, to show them in the text).
  TORCH_ARG(bool, keep_positions) = false;
  /// Checked before each batch: once it is set (e.g. by a SIGTERM handler), summarizing stops
  /// there and throws std::runtime_error "summarize: stopped by request after N of M documents".
  /// Not a search setting: generation.json neither holds nor sets it.
  using StopFlag = const std::atomic<bool>*;
  TORCH_ARG(StopFlag, stop) = nullptr;


 public:  // (TORCH_ARG leaves the section private)
  /// Reads the search settings a checkpoint may carry (generation.json: beam_size, max_length,
  /// min_length, length_penalty, no_repeat_ngram_size), over the defaults above.
  /// Absent file = defaults. Throws std::invalid_argument naming the key for bad content.
  static SummarizeOptions from_checkpoint(const std::string& dir);
  /// The content of generation.json for these settings (what from_checkpoint reads).
  std::string to_generation_json() const;
  /// Throws std::invalid_argument naming the first invalid option for a model of `config`
  /// (check_generate_options, and max_tokens; summarize() checks too: call it to fail before
  /// reading any input).
  void check(const ModelConfig& config) const;
};

/// One document's summary.
struct Summary {
  std::string summary;             // detokenized
  std::vector<int64_t> tokens;     // generated ids (eos excluded)
  double score = 0;                // sum(log p) / length^length_penalty
  int64_t source_tokens = 0;       // tokens the model read (after truncation)
  int64_t document_tokens = 0;     // tokens of the whole document (Tokenizer::count_tokens)
  std::vector<std::vector<int64_t>> kept;  // per pooling layer: kept source positions (keep_positions)
  // The byte spans of the tokens the model read and, when the document is longer, of the first
  // token it did not read (where its unread text begins): at most source_tokens + 1 (keep_positions).
  std::vector<Tokenizer::Piece> pieces;
  double seconds = 0;              // this document's share of its batch's wall time
};

class Summarizer {
 public:
  /// Puts the model in eval mode. The model may be on any device (model()->to(device)): inputs
  /// follow it. Throws std::invalid_argument when the tokenizer's vocabulary or
  /// special ids differ from the model's config.
  Summarizer(Seq2Seq model, Tokenizer tokenizer);
  /// A checkpoint directory of pyramidion-train (config.json, weights.pt, tokenizer.model).
  /// Throws std::runtime_error naming the missing or unreadable file.
  static Summarizer load(const std::string& dir);

  /// Moves the model to `device` and converts its weights to `precision` (bf16 halves the weights
  /// that every decoder step reads), then quantizes them (int8: a quarter, Seq2Seq::quantize_int8)
  /// or, for fp32 on the CPU, prepacks the decoder's for oneDNN (Seq2Seq::prepack_fp32).
  /// Throws std::invalid_argument for fp16 on a CPU and for int8 other than fp32 on a CPU, before
  /// anything changes.
  Summarizer& to(at::Device device, Precision precision = Precision::fp32,
                 Quantization quantization = Quantization::none);

  /// Summaries of `documents`, in input order. Documents longer than the model's
  /// max_source_length are truncated (Summary::source_tokens < document_tokens); only the tokens
  /// the model reads are held (Tokenizer::encode(text, max_tokens)), and the rest of a longer
  /// document is only counted, so that memory is bounded by max_source_length, not by the
  /// document. An empty document (no tokens) throws std::invalid_argument naming its index.
  /// Batches are formed by length.
  std::vector<Summary> summarize(const std::vector<std::string>& documents, const SummarizeOptions& options = {});

  /// Summaries of the sources of `sources` (already tokenized and no longer than the model's
  /// max_source_length), in corpus order. Summary::pieces stays empty. The targets are not read,
  /// but batches are made by collate(), which checks them too: pass empty ones (or ones that fit
  /// max_target_length). Throws std::invalid_argument for an empty or too long source or target.
  std::vector<Summary> summarize(const TokenizedCorpus& sources, const SummarizeOptions& options = {});

  Seq2Seq& model() { return model_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  Seq2Seq model_;
  Tokenizer tokenizer_;
};

/// The highlight page's entry (highlight.h) for a summary made with keep_positions by a model of
/// `config`: the document `text` (as summarized) with its tokens' spans, the tokens read, what every
/// pooling layer kept, the layers' target lengths, the summary and the `reference` ("" = none).
HighlightDocument highlight_document(const std::string& id, const std::string& text, const std::string& reference,
                                     const Summary& summary, const ModelConfig& config);

/// What Summarizer::summarize(sources) does before detokenizing, for a model without a tokenizer
/// (benchmarks, callers with their own vocabulary): the same batches under options.max_tokens,
/// encoding and search; Summary::summary stays empty. The model must be in eval mode, on the device
/// (and in the dtype) it should run in.
std::vector<Summary> summarize_ids(Seq2Seq& model, const TokenizedCorpus& sources, const SummarizeOptions& options = {});

}  // namespace pyramidion
