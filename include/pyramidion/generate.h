// Generation with a Seq2Seq: greedy decoding and beam search over the KV-cached decoder
// (Seq2Seq::start_decoding / decode_step), batched, each example finishing on its own.
//
//   auto g = pyramidion::generate(model, src_ids, src_mask,
//                                 pyramidion::GenerateOptions().beam_size(4).max_length(256));
//   // g.tokens (b, t): the best hypothesis of each example, eos included, pad_id after it
//
// The search is fairseq's (SequenceGenerator): every step scores beam * vocab continuations per
// example, keeps the 2 * beam best, finalizes those ending in eos among the first beam of them and
// continues with the best beam that do not end in eos. An example that is done leaves the batch
// (its decoder rows are dropped), so the others run on alone. The caller puts the model in eval mode
// (model->eval()): generate() does not change the module's mode (no hidden state); it runs under
// a NoGradGuard.
//
// Shape legend: b batch, n source tokens, K beam size, v vocabulary size, L maximum length.
#pragma once

#include <pyramidion/model.h>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>

namespace pyramidion {

/// Options of generate(). Lengths count generated tokens (bos excluded, eos included).
struct GenerateOptions {
  /// Hypotheses kept per example; >= 1. 1 = greedy decoding (argmax at every step).
  TORCH_ARG(int64_t, beam_size) = 1;
  /// Most tokens generated per example (eos included); 0 = config.max_target_length; otherwise
  /// in [1, config.max_target_length]. A hypothesis that reaches it without eos is returned as is
  /// (no eos appended).
  TORCH_ARG(int64_t, max_length) = 0;
  /// Fewest tokens before eos may be generated (eos is masked out at steps < min_length, as in
  /// fairseq); in [0, max_length].
  TORCH_ARG(int64_t, min_length) = 0;
  /// A finished hypothesis scores sum(log p) / length^length_penalty (fairseq's --lenpen; length
  /// includes eos); finite. 0 = raw log-probability; > 0 favours longer outputs.
  TORCH_ARG(double, length_penalty) = 1.0;
  /// When > 0, no n-gram of this size occurs twice in a hypothesis (the token that would repeat
  /// one is banned); >= 0, 0 = off.
  TORCH_ARG(int64_t, no_repeat_ngram_size) = 0;
  /// End-of-sequence handling. true (fairseq): an example stops as soon as it has beam_size
  /// finished (eos-terminated) hypotheses. false: it goes on while an active hypothesis could still
  /// outscore its best finished one (bounded with the length penalty at max_length), which costs
  /// more steps and never returns a worse best. Greedy (beam_size 1) needs true.
  TORCH_ARG(bool, early_stopping) = true;
};

/// The best hypothesis of each example.
struct Generation {
  at::Tensor tokens;   // (b, t) int64: generated ids, bos excluded, eos included when generated;
                       // pad_id after the end; t = the longest of the b outputs
  at::Tensor scores;   // (b) float32: sum(log p) / length^length_penalty of each output
  at::Tensor lengths;  // (b) int64: tokens of each output, eos included
};

/// Throws std::invalid_argument naming the first invalid option and its value for a model of
/// `config` (what generate() checks first; call it to fail before any other work).
void check_generate_options(const GenerateOptions& options, const ModelConfig& config);

/// Greedy decoding (beam_size 1) or beam search. src_ids (b, n) int64 and src_mask (b, n) bool
/// (or undefined: all real) as for Seq2Seq::encode, which checks them. The pad token is never
/// generated. Throws std::invalid_argument naming the option and its value for invalid options
/// (see GenerateOptions), including a max_length above config.max_target_length.
Generation generate(Seq2Seq& model, const at::Tensor& src_ids, const at::Tensor& src_mask,
                    const GenerateOptions& options = {});

/// The same over an encoder output the caller already has (e.g. to read its kept_positions):
/// encoded = model->encode(src_ids, src_mask), made under no-grad. Checks as start_decoding().
Generation generate(Seq2Seq& model, const EncoderOutput& encoded, const GenerateOptions& options = {});

}  // namespace pyramidion
