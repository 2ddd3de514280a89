// Tokenizer: a sentencepiece model trained on the training split, stored with the checkpoint and
// used by every tool.
//
// Special ids are fixed by training: pad 0, bos 1, eos 2, unk 3 (ModelConfig's defaults). Every
// normal piece has an id >= 4.
//
// Normalization (sentencepiece's "nmt_nfkc", the default of its trainer and of most published
// models): NFKC (e.g. the ligature "\uFB01" becomes "fi"); tabs and other whitespace become a space;
// control characters are dropped; spaces at the start and end of a line and repeated spaces are
// removed. Newlines are kept: a text is encoded line by line, as sentencepiece saw it in training,
// and lines are joined by the piece "\n" (a user-defined symbol), so paragraphs survive.
// Hence decode(encode(s)) == s exactly when s is already normalized: NFKC text whose lines have
// single spaces, no space at either end and no tab or other control character, and whose
// characters are all in the vocabulary (one outside it becomes unk, decoded as " \u2047 ").
//
// Windows. A line longer than 64 KiB is encoded window by window: each window is the next 64 KiB
// of the line at most, cut back to its last word boundary (a space after a character that the
// normalizer keeps: not whitespace, a control or a zero-width character). Sentencepiece's working
// memory (about 200 bytes per byte encoded at once) is then bounded by the window, not the line,
// and encode(text, max_tokens) encodes only the lines and windows that hold the tokens it keeps.
// Cutting at a word boundary gives the ids of the whole line: no piece of a model trained with
// sentencepiece's defaults (split_by_whitespace) has a "\u2581" other than a leading one, so a word
// start is a boundary of every segmentation (and the window's leading space becomes the dummy
// "\u2581" that the word has inside the line). Two exceptions. Where two segmentations of a word
// score exactly the same (unigram; e.g. "00" "0" and "0" "00"), the one chosen may differ:
// sentencepiece breaks such ties by the float rounding of the line's running score (rounding that
// makes whole-line encoding of a huge line worse: encoded whole, a 10 MB line of a 300-piece
// unigram model got 1.3% more pieces, of a lower total score). And a window without a word
// boundary (a "word" of 64 KiB: text without spaces) is cut at its last UTF-8 character boundary,
// where the pieces near the cut differ from the whole word's: the rest is encoded as a new word
// (decoded with a space there). Lines of up to 64 KiB, the paragraphs of normal text, are encoded
// whole, as sentencepiece encodes them. A model with a piece holding an inner "\u2581" (trained
// with split_by_whitespace = false, or treat_whitespace_as_suffix) encodes every line whole.
//
// Special tokens in text. A vocabulary imported from transformers (import.h; one without a bos
// piece) reads the text of its control and unknown pieces ("</s>", "<mask_1>", "<unk>", ...) as
// those tokens, as transformers' tokenizers read their special tokens: the text is split at each
// occurrence (the longest match first) and every part is encoded on its own. A trained vocabulary
// (with bos) reads such text as text.
//
// The sentencepiece headers are not part of this header: applications need only the library.
// This header needs of LibTorch only torch/arg.h (the options macro): it compiles as C++17.
#pragma once

#include <pyramidion/config.h>

#include <torch/arg.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pyramidion {

namespace detail {
struct TokenizerWindows;  // private (src/data/tokenizer_windows.h): the window as a parameter, for tests
}  // namespace detail

/// The sentencepiece model kind: unigram (Kudo 2018, sentencepiece's default) or BPE.
enum class TokenizerModel { unigram, bpe };

/// "unigram" / "bpe"; throws std::invalid_argument for a value outside the enum.
std::string to_string(TokenizerModel model);

/// Options of Tokenizer::train().
///
/// Training is deterministic: the same texts and options (num_threads included) give the same
/// model. A unigram model depends on num_threads (its EM sums per-thread counts, a floating-point
/// order); a BPE model's pieces do not.
struct TokenizerTrainOptions {
  /// Pieces in the vocabulary, the 4 special ids and "\n" included; >= 8. Training throws
  /// std::invalid_argument when it is smaller than the corpus' characters (after
  /// character_coverage) need, or larger than the corpus can fill.
  TORCH_ARG(int64_t, vocab_size) = 8000;
  /// The model kind.
  TORCH_ARG(TokenizerModel, model_type) = TokenizerModel::unigram;
  /// Fraction of the corpus' characters the vocabulary covers; the rarest rest become unk;
  /// in [0.98, 1] (sentencepiece's range).
  TORCH_ARG(double, character_coverage) = 0.9995;
  /// Lines used for training (sentencepiece's input_sentence_size): from a corpus with more lines,
  /// this many are sampled (reservoir sampling with sentencepiece's fixed seed: the same sample
  /// every time; sentencepiece 0.1.97 offers no way to choose the seed); > 100 (its minimum).
  TORCH_ARG(int64_t, max_sentences) = 2000000;
  /// Threads of sentencepiece's trainer; in [1, 128].
  TORCH_ARG(int64_t, num_threads) = 1;
  /// Symbols that get a piece of their own (sentencepiece's user_defined_symbols, after "\n"):
  /// wherever one occurs in a text it is that one id, never split or merged with its neighbours
  /// (e.g. the selection task's passage markers, docs/selection.md). Each is a non-empty UTF-8
  /// string of at most 64 bytes without whitespace, control characters or commas, distinct from
  /// the others and from the special pieces (<pad> <s> </s> <unk>). Their ids follow "\n" (5, 6, ...).
  TORCH_ARG(std::vector<std::string>, reserved_symbols) = {};
};

/// Throws std::invalid_argument "TokenizerTrainOptions.<field> = <value> <requirement>" for the
/// first invalid field (Tokenizer::train checks the same).
void validate(const TokenizerTrainOptions& options);

/// A trained sentencepiece model. Immutable: copies share the model; every const member is safe
/// to call concurrently from several threads.
class Tokenizer {
 public:
  /// Trains on `texts` (documents and summaries) in memory through sentencepiece's C++ trainer.
  /// Each text is split into lines; empty lines are skipped and lines over 4096 bytes are split at
  /// spaces. Throws std::invalid_argument for invalid options (naming the field and value), for
  /// texts without any non-empty line, and with sentencepiece's message when it rejects the
  /// options for this corpus (a vocab_size too small for its characters or too large for it).
  /// Sentencepiece's log is silenced except for errors (a process-wide sentencepiece setting);
  /// concurrent calls run one after the other.
  static Tokenizer train(const std::vector<std::string>& texts, const TokenizerTrainOptions& options = {});

  /// Reads a model written by save() (or any sentencepiece .model with pad, eos and unk pieces;
  /// bos is optional). Throws std::runtime_error when the file cannot be read and std::invalid_argument
  /// when its content is not such a model, both naming the path.
  static Tokenizer load(const std::string& path);
  /// The model from serialized() bytes. Throws std::invalid_argument when they are not a
  /// sentencepiece model with pad, eos and unk pieces.
  static Tokenizer from_serialized(std::string proto);

  /// Writes serialized() atomically: to a temporary file in the same directory, flushed to disk,
  /// then renamed over `path`. Throws std::runtime_error naming the path when writing fails.
  void save(const std::string& path) const;
  /// The sentencepiece ModelProto, serialized (the content of a .model file).
  std::string serialized() const;

  /// Token ids of `text` (UTF-8), without bos or eos.
  std::vector<int64_t> encode(const std::string& text) const;
  /// The first `max_tokens` ids of encode(text) (all of them when there are fewer), exactly,
  /// computed from the lines and windows that hold them ("Windows" above): time and memory are
  /// bounded by the ids kept (and one window), not by the text. max_tokens >= 0
  /// (std::invalid_argument otherwise). One id more than a limit says whether the text is longer:
  /// encode(text, limit + 1).
  std::vector<int64_t> encode(const std::string& text, int64_t max_tokens) const;
  /// encode(text).size(), counted window by window without holding the ids: memory bounded by the
  /// window, time by the text.
  int64_t count_tokens(const std::string& text) const;
  /// The text of `ids`; pad, bos and eos decode to nothing. Throws std::invalid_argument naming
  /// the first id outside [0, vocab_size()) and its position.
  std::string decode(const std::vector<int64_t>& ids) const;

  /// One token of encode_with_offsets().
  struct Piece {
    int64_t id;
    size_t begin;  // byte offsets in the input text: the piece stands for text[begin, end)
    size_t end;
  };
  /// encode(text) with each token's byte span in `text` (for highlighting). Spans are in input
  /// order and do not overlap; text removed by normalization (extra spaces) is in no span; a
  /// piece's span includes the space that its leading "\u2581" stands for, and is empty for a
  /// lone "\u2581" at the start of a line (which stands for no input text).
  std::vector<Piece> encode_with_offsets(const std::string& text) const;
  /// The first `max_tokens` pieces of encode_with_offsets(text), exactly (as encode(text,
  /// max_tokens)); max_tokens >= 0.
  std::vector<Piece> encode_with_offsets(const std::string& text, int64_t max_tokens) const;

  /// The piece of `id` (sentencepiece's notation: "\u2581" for a space). Throws
  /// std::invalid_argument for an id outside [0, vocab_size()).
  std::string id_to_piece(int64_t id) const;

  /// The id of `piece` when it is one piece of the vocabulary (e.g. a reserved symbol), -1 otherwise.
  int64_t piece_to_id(const std::string& piece) const;

  /// Throws std::invalid_argument, starting with `who`, when this tokenizer cannot serve `config`:
  /// another vocabulary size, pad or eos id, or another bos id when the tokenizer has one (a
  /// tokenizer without a bos piece, as PEGASUS's, leaves the decoder's first input to the model).
  void check_fits(const ModelConfig& config, const std::string& who) const;

  int64_t vocab_size() const;
  int64_t pad_id() const;
  /// The id of the bos piece "<s>", or -1 for a model without one (an imported PEGASUS vocabulary).
  int64_t bos_id() const;
  int64_t eos_id() const;
  int64_t unk_id() const;
  /// The id of the piece "\n" (4 in a trained model), or -1 for a model without one, whose
  /// normalization turns newlines into spaces.
  int64_t newline_id() const;

 private:
  friend struct detail::TokenizerWindows;
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  // `context` names the bytes' origin in error messages ("Tokenizer::load: 'x.model'").
  static Tokenizer from_bytes(std::string proto, const std::string& context);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace pyramidion
