// Private: the model directory format, which Seq2Seq::save writes and Seq2Seq::load reads:
//   config.json   ModelConfig::to_json_string() (validated)
//   weights.pt    a pickled dict of every named parameter and buffer (name -> CPU tensor)
// A training checkpoint (training/checkpoint.h) is such a directory with more files in it.
#pragma once

#include <pyramidion/model.h>

#include <ATen/core/ivalue.h>

#include <vector>

#include "util/output_file.h"

namespace pyramidion {
namespace detail {

/// Writes config.json and weights.pt of `model` into `dir`, a directory being assembled.
void write_model_files(const Seq2SeqImpl& model, AtomicDirectory& dir);

/// A learned position table (P, d) fitted to `rows` positions: repeated (as LED extended BART's
/// table) or cut. (rows, d)
at::Tensor fit_position_table(const at::Tensor& table, int64_t rows);

/// The value pickled in `bytes`, the content of a torch.save / torch::pickle_save file (a zip of
/// a pickle and its tensors' data), read through a bounds-checked adapter. Throws c10::Error for
/// bytes that are not such a file.
c10::IValue unpickle(const std::vector<char>& bytes);

}  // namespace detail
}  // namespace pyramidion
