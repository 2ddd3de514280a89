// GenerateOptions and Generation: what generate() (generate.h) and Seq2Seq::generate (model.h)
// take and return. Apart from generate.h so that model.h, which declares Seq2Seq::generate, can
// include it: a header that declares a member taking an options type makes that type complete.
//
// Shape legend: b batch, t generated positions.
#pragma once

#include <pyramidion/config.h>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>

namespace pyramidion {

/// The largest beam generate() takes: far beyond what summarization uses (4 to 8), and small
/// enough that beam_size x max_length stays a sane number of cached positions.
constexpr int64_t kMaxBeamSize = 1024;

/// Options of generate(). Lengths count generated tokens (bos excluded, eos included).
struct GenerateOptions {
  /// Hypotheses kept per example; in [1, kMaxBeamSize]. 1 = greedy decoding (argmax at every step).
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
  /// one is banned); in [0, config.max_target_length], 0 = off.
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

}  // namespace pyramidion
