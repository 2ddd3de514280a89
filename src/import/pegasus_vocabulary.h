// Private: PEGASUS's token ids from its sentencepiece model.
//
// transformers' PegasusTokenizer (and its converter, convert_slow_tokenizer.PegasusConverter)
// numbers the vocabulary as: 0 "<pad>", 1 "</s>", 2 "<mask_1>", 3 "<mask_2>", 4 .. offset+1
// "<unk_2>" .. "<unk_{offset-1}>", then sentencepiece piece i >= 2 as id i + offset (offset 103
// in every published checkpoint, so "<unk>", piece 2, is id 105). The rewritten model holds
// exactly that list, the new entries as control pieces (never produced by encoding, decoded to
// nothing), so that sentencepiece itself gives PegasusTokenizer's ids: no offset arithmetic at
// run time, and the tokenizer file is an ordinary sentencepiece model. Its unk decodes to nothing,
// as PegasusTokenizer.decode(skip_special_tokens=True) drops it.
#pragma once

#include <cstdint>
#include <string>

namespace pyramidion {
namespace detail {

/// The serialized sentencepiece model `spiece` (PEGASUS's spiece.model: pieces 0 "<pad>" and
/// 1 "</s>", unk at 2) renumbered as PegasusTokenizer numbers it with `offset` (>= 2). Throws
/// std::invalid_argument, starting with `who`, for bytes that are not such a model.
std::string pegasus_vocabulary(const std::string& spiece, int64_t offset, const std::string& who);

}  // namespace detail
}  // namespace pyramidion
