// The checks of GenerateOptions (include/pyramidion/generate_options.h).
#include <pyramidion/generate_options.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace pyramidion {

void check_generate_options(const GenerateOptions& o, const ModelConfig& config) {
  const int64_t max_length = o.max_length() > 0 ? o.max_length() : config.max_target_length;
  if (o.beam_size() < 1 || o.beam_size() > kMaxBeamSize)
    throw std::invalid_argument("generate: GenerateOptions.beam_size = " + std::to_string(o.beam_size()) +
                                " must be in [1, " + std::to_string(kMaxBeamSize) + "] (1 = greedy)");
  if (o.max_length() < 0)
    throw std::invalid_argument("generate: GenerateOptions.max_length = " + std::to_string(o.max_length()) +
                                " must be >= 0 (0 = config.max_target_length)");
  if (o.max_length() > config.max_target_length)
    throw std::invalid_argument("generate: GenerateOptions.max_length = " + std::to_string(o.max_length()) +
                                " exceeds the model's max_target_length = " +
                                std::to_string(config.max_target_length));
  if (o.min_length() < 0 || o.min_length() > max_length)
    throw std::invalid_argument("generate: GenerateOptions.min_length = " + std::to_string(o.min_length()) +
                                " must be in [0, max_length = " + std::to_string(max_length) + "]");
  if (!std::isfinite(o.length_penalty()))
    throw std::invalid_argument("generate: GenerateOptions.length_penalty = " +
                                std::to_string(o.length_penalty()) + " must be finite");
  // (Bounded by the model's length, not max_length: the default trigram ban must not refuse a
  // --max-length of 2; an n-gram longer than the output simply never repeats.)
  if (o.no_repeat_ngram_size() < 0 || o.no_repeat_ngram_size() > config.max_target_length)
    throw std::invalid_argument("generate: GenerateOptions.no_repeat_ngram_size = " +
                                std::to_string(o.no_repeat_ngram_size()) + " must be in [0, max_target_length = " +
                                std::to_string(config.max_target_length) + "] (0 = off)");
  if (o.beam_size() == 1 && !o.early_stopping())
    throw std::invalid_argument(
        "generate: GenerateOptions.early_stopping = false needs beam_size > 1 (greedy stops at eos)");
}

}  // namespace pyramidion
