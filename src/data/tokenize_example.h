// Private: one example's tokenization and cutting, the step that tokenize_file() (corpus.cpp)
// and preprocess() (preprocess.cpp) share, so that a preprocessed dataset holds exactly the
// tokens that tokenizing the JSON lines gives.
#pragma once

#include <pyramidion/corpus.h>
#include <pyramidion/data.h>
#include <pyramidion/tokenizer.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {
namespace detail {

struct ExampleLimits {
  int64_t max_source = 0;  // 0 = no limit
  int64_t max_target = 0;
  bool truncate = true;    // false: an example over a limit throws
};

/// Tokenizes `doc` into `source` and `target`, cut to the limits (counted in `counts`): a side with
/// a limit is tokenized only as far as the limit and one token more (Tokenizer::encode(text, n)),
/// so that memory and time are bounded by the limits, not by the document. Returns "" or, for an
/// example with a side without tokens, "<path>:<line>: record '<id>' has an empty document|summary
/// after tokenization" (the caller skips it or throws). With truncate false, an example over a
/// limit throws std::invalid_argument naming it and its lengths ("more than <limit>" for a side over
/// its limit).
std::string tokenize_example(const Document& doc, const Tokenizer& tokenizer, const ExampleLimits& limits,
                             std::vector<int64_t>& source, std::vector<int64_t>& target, CorpusStats& counts);

}  // namespace detail
}  // namespace pyramidion
