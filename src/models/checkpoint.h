// Private: the model directory format, which Seq2Seq::save writes and Seq2Seq::load reads:
//   config.json   ModelConfig::to_json_string() (validated)
//   weights.pt    a pickled dict of every named parameter and buffer (name -> CPU tensor)
// A training checkpoint (training/checkpoint.h) is such a directory with more files in it.
#pragma once

#include <pyramidion/model.h>

#include "util/output_file.h"

namespace pyramidion {
namespace detail {

/// Writes config.json and weights.pt of `model` into `dir`, a directory being assembled.
void write_model_files(const Seq2SeqImpl& model, AtomicDirectory& dir);

}  // namespace detail
}  // namespace pyramidion
