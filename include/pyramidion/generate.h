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

#include <pyramidion/generate_options.h>
#include <pyramidion/model.h>

#include <ATen/core/Tensor.h>

namespace pyramidion {

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
