// `pyramidion-bench logits`: what lower-precision weights cost in the logits of a trained
// checkpoint (issue 12). For the first N documents of a JSON-lines file with their reference
// summaries, teacher forcing with fp32, bf16 and int8 weights (Summarizer::to): the largest
// absolute logit difference against fp32, the same relative to the largest fp32 logit, and how
// often the top-1 next token agrees with fp32's.
//
// Legend: N documents, t target positions, v vocabulary.
#pragma once

#include <cstdint>
#include <string>

namespace pyramidion {
namespace bench {

struct LogitsBenchOptions {
  std::string checkpoint;  // a pyramidion-train checkpoint directory (config.json, weights.pt, tokenizer.model)
  std::string input;       // JSON lines with document and summary (DocumentReader)
  int64_t documents = 20;  // N: the first N records
  std::string json_path;
  std::string markdown_path;
};

void run_logits_bench(const LogitsBenchOptions& options, const std::string& command);

}  // namespace bench
}  // namespace pyramidion
