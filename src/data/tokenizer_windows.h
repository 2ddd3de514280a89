// Private: Tokenizer's windowed encoding (include/pyramidion/tokenizer.h, "Windows") with the
// window as a parameter, and a count of what was passed to sentencepiece, so that tests can check
// the windows with small ones and the bound on the text encoded at once.
#pragma once

#include <pyramidion/tokenizer.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace pyramidion {
namespace detail {

struct TokenizerWindows {
  /// The window of Tokenizer's public encoding functions, in bytes.
  static constexpr size_t kWindowBytes = size_t{64} << 10;
  /// A window that no line reaches: every line encoded whole (sentencepiece's own encoding).
  static constexpr size_t kWholeLines = std::numeric_limits<size_t>::max();

  /// What this thread passed to sentencepiece's encoder so far (the counts are thread-local; a
  /// test resets them with `calls() = {}`).
  struct Calls {
    int64_t calls = 0;    // Encode() calls
    int64_t bytes = 0;    // bytes passed, in all
    int64_t largest = 0;  // bytes passed to one call, at most
  };
  static Calls& calls();

  /// Tokenizer::encode / encode_with_offsets / count_tokens with `window` bytes instead of
  /// kWindowBytes (>= 1); max_tokens = -1: all tokens.
  static std::vector<int64_t> encode(const Tokenizer& tokenizer, const std::string& text, int64_t max_tokens,
                                     size_t window);
  static std::vector<Tokenizer::Piece> encode_with_offsets(const Tokenizer& tokenizer, const std::string& text,
                                                           int64_t max_tokens, size_t window);
  static int64_t count_tokens(const Tokenizer& tokenizer, const std::string& text, size_t window);

  /// The window the tokenizer uses for `window`: kWholeLines for a model whose pieces hold an
  /// inner "\u2581" (its word starts are not boundaries of every segmentation), `window` otherwise.
  static size_t effective_window(const Tokenizer& tokenizer, size_t window);
  /// The piece's score in the model (unigram: its log probability; bpe: minus its merge rank).
  static double score(const Tokenizer& tokenizer, int64_t id);
};

}  // namespace detail
}  // namespace pyramidion
