// Tokenizer (see include/pyramidion/tokenizer.h): sentencepiece training in memory, loading,
// atomic saving, encoding (long lines window by window, see tokenizer.h) and decoding.
#include <pyramidion/tokenizer.h>

#include "data/tokenizer_windows.h"
#include "util/output_file.h"
#include "util/enum_names.h"
#include "util/json_fields.h"
#include "util/text.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pyramidion {

namespace {
// An imported vocabulary's special tokens (tokenizer.h, "Special tokens in text").
struct SpecialTokens {
  std::vector<std::pair<std::string, int>> tokens;  // text, id; longest first
  std::string starts;                               // the first bytes of their texts
  int space_id = -1;  // the piece "\u2581", emitted for whitespace that ends a part
};
}  // namespace

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor processor;
  int64_t vocab_size = 0;
  // The id of the piece "\n", or -1 for a model without one (its normalizer then turns newlines
  // into spaces).
  int newline_id = -1;
  // No piece holds a "\u2581" other than a leading one: a word start is a boundary of every
  // segmentation, and long lines can be encoded window by window (tokenizer.h, "Windows").
  bool word_pieces = true;
  // Empty but for an imported vocabulary.
  SpecialTokens specials;
};

namespace {

namespace spm = sentencepiece;

// Sentencepiece skips longer lines (its max_sentence_length, 4192 bytes); we split them instead so
// that long paragraphs still count.
constexpr size_t kMaxLineBytes = 4096;

// The ids that ModelConfig's defaults (pad_id, bos_id, eos_id) and the model expect.
constexpr int kPadId = 0;
constexpr int kBosId = 1;
constexpr int kEosId = 2;
constexpr int kUnkId = 3;

// "TokenizerTrainOptions.<field> = <value> <requirement>"
[[noreturn]] void fail(const std::string& field, const std::string& value, const std::string& requirement) {
  detail::fail_field("TokenizerTrainOptions", field, value, requirement);
}

const detail::EnumNames<TokenizerModel>& model_names() {
  static const detail::EnumNames<TokenizerModel> names = {{TokenizerModel::unigram, "unigram"},
                                                          {TokenizerModel::bpe, "bpe"}};
  return names;
}

}  // namespace

void validate(const TokenizerTrainOptions& o) {
  if (o.vocab_size() < 8) fail("vocab_size", std::to_string(o.vocab_size()), "must be >= 8");
  if (o.vocab_size() > std::numeric_limits<int32_t>::max())
    fail("vocab_size", std::to_string(o.vocab_size()), "must be < 2^31 (sentencepiece ids are int32)");
  if (!detail::is_named(model_names(), o.model_type()))
    fail("model_type", std::to_string(static_cast<int>(o.model_type())),
         "must be one of " + detail::joined_names(model_names()));
  // Sentencepiece's own range.
  if (!(o.character_coverage() >= 0.98 && o.character_coverage() <= 1.0))
    fail("character_coverage", detail::format_double(o.character_coverage()), "must be in [0.98, 1]");
  // Sentencepiece's own minimum.
  if (o.max_sentences() <= 100) fail("max_sentences", std::to_string(o.max_sentences()), "must be > 100");
  if (o.num_threads() < 1 || o.num_threads() > 128)
    fail("num_threads", std::to_string(o.num_threads()), "must be in [1, 128]");
  const auto& symbols = o.reserved_symbols();
  for (size_t i = 0; i < symbols.size(); ++i) {
    const std::string field = "reserved_symbols[" + std::to_string(i) + "]";
    const std::string& symbol = symbols[i];
    const std::string shown = "\"" + symbol + "\"";
    if (symbol.empty() || symbol.size() > 64) fail(field.c_str(), shown, "must hold 1 to 64 bytes");
    for (const char c : symbol) {
      const auto u = static_cast<unsigned char>(c);
      // Commas separate sentencepiece's user_defined_symbols; whitespace would never reach it whole.
      if (u <= 0x20 || u == 0x7F || c == ',')
        fail(field.c_str(), shown, "must not hold whitespace, control characters or commas");
    }
    if (detail::invalid_utf8_offset(symbol) != std::string::npos) fail(field.c_str(), shown, "must be valid UTF-8");
    for (const char* special : {"<pad>", "<s>", "</s>", "<unk>"})
      if (symbol == special) fail(field.c_str(), shown, "is a special piece");
    for (size_t j = 0; j < i; ++j)
      if (symbols[j] == symbol) fail(field.c_str(), shown, "repeats reserved_symbols[" + std::to_string(j) + "]");
  }
}

namespace {

// Sentencepiece's user_defined_symbols: "\n" (newlines survive as a piece of their own: the
// normalizer matches user-defined symbols before its character map, which would turn "\n" into a
// space), then the reserved symbols, comma-separated.
std::string user_defined_symbols(const TokenizerTrainOptions& o) {
  std::string list = "\n";
  for (const auto& symbol : o.reserved_symbols()) list += "," + symbol;
  return list;
}

// The largest end <= limit (< s.size()) that does not split a UTF-8 character; `limit` itself
// for text that is not UTF-8.
size_t utf8_boundary(std::string_view s, size_t limit) {
  size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return end > 0 ? end : limit;
}

// The training lines of `texts`: split at newlines, blank lines skipped, lines over kMaxLineBytes
// split at their last space before the limit (or at a character boundary).
std::vector<std::string> training_lines(const std::vector<std::string>& texts) {
  std::vector<std::string> lines;
  auto add = [&lines](std::string_view line) {
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) lines.emplace_back(line);
  };
  for (const std::string& text : texts) {
    // Views into the text: a long line is cut from the front without copying its rest (erasing the
    // front of a string copies the rest: quadratic in the line's length).
    for (size_t begin = 0; begin <= text.size();) {
      size_t newline = text.find('\n', begin);
      if (newline == std::string::npos) newline = text.size();
      std::string_view line(text.data() + begin, newline - begin);
      while (line.size() > kMaxLineBytes) {
        size_t cut = line.rfind(' ', kMaxLineBytes);
        if (cut == std::string_view::npos || cut == 0) cut = utf8_boundary(line, kMaxLineBytes);
        add(line.substr(0, cut));
        line.remove_prefix(cut);
      }
      add(line);
      begin = newline + 1;
    }
  }
  return lines;
}

class LineIterator : public spm::SentenceIterator {
 public:
  explicit LineIterator(const std::vector<std::string>& lines) : lines_(lines) {}
  bool done() const override { return index_ >= lines_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return lines_[index_]; }
  spm::util::Status status() const override { return spm::util::Status(); }

 private:
  const std::vector<std::string>& lines_;
  size_t index_ = 0;
};

void check_special_ids(const spm::SentencePieceProcessor& p, const std::string& context) {
  // bos is optional: PEGASUS's vocabulary has none (its decoder starts from pad).
  const std::pair<const char*, int> ids[] = {{"pad", p.pad_id()}, {"eos", p.eos_id()}, {"unk", p.unk_id()}};
  for (const auto& [name, id] : ids)
    if (id < 0)
      throw std::invalid_argument(context + " has no " + name +
                                  " piece; pyramidion needs pad, eos and unk (train it with Tokenizer::train)");
}

bool continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The code point of the UTF-8 character that ends at `end` (> 0) in `s`, or -1 when the bytes
// before `end` are not a well-formed character.
int32_t character_before(std::string_view s, size_t end) {
  size_t begin = end - 1;
  while (begin > 0 && end - begin < 4 && continuation_byte(s[begin])) --begin;
  const auto lead = static_cast<unsigned char>(s[begin]);
  const size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (length != end - begin) return -1;
  if (length == 1) return lead;
  int32_t cp = lead & (0x3F >> (length - 1));
  for (size_t i = begin + 1; i < end; ++i) cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3F);
  return cp;
}

// A character that sentencepiece's normalizer ("nmt_nfkc") keeps as text: neither whitespace nor
// one it turns into a space or removes (ASCII and C1 controls, NFKC's spaces, the zero-width and
// direction marks, U+2581 itself, U+FEFF, U+FFFD). Erring on the side of "no" only costs a cut.
bool stays_text(int32_t cp) {
  if (cp < 0x21 || (cp >= 0x7F && cp <= 0xA0)) return false;
  if (cp < 0x7F) return true;
  return !(cp == 0xAD || cp == 0x1680 || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F) || cp == 0x2581 || cp == 0x3000 ||
           cp == 0xFEFF || cp >= 0xFFF0);
}

// Where the whitespace that ends `text` once normalized begins: the start of its trailing run of
// characters that the normalizer does not keep as text (whitespace, and the controls and
// zero-width characters it drops), when the last of them that it keeps is one it turns into a
// space (a malformed byte before any such space ends the search); npos when the text does not end
// in whitespace.
size_t trailing_space(std::string_view text) {
  size_t begin = text.size();
  bool space = false, malformed = false;
  while (begin > 0) {
    const int32_t cp = character_before(text, begin);
    if (stays_text(cp)) break;
    if (cp < 0) {
      malformed = true;
    } else if (!malformed) {
      space = space || (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
              (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
              cp == 0x3000;
    }
    --begin;
    while (begin > 0 && continuation_byte(text[begin])) --begin;
  }
  return space ? begin : std::string_view::npos;
}

// Whether `line` may be cut before `at` (0 < at < size): a space after a character that stays text.
// The space then becomes the "\u2581" that starts the next word both inside the line and as the
// leading space of the rest encoded on its own (its dummy prefix), and it is the first byte of the
// whitespace that the "\u2581" stands for, so the next piece's span starts there in both.
bool word_boundary(std::string_view line, size_t at) {
  return line[at] == ' ' && stays_text(character_before(line, at));
}

// The end of the window of `line` that starts at `begin`: the line's end when it is at most
// `window` bytes away, otherwise the last word boundary in (begin, begin + window] or, without one,
// the last character boundary there (the first after it for a window shorter than a character).
size_t window_end(std::string_view line, size_t begin, size_t window) {
  if (line.size() - begin <= window) return line.size();
  const size_t limit = begin + window;  // < line.size()
  for (size_t at = limit; at > begin; --at)
    if (word_boundary(line, at)) return at;
  size_t at = limit;
  while (at > begin && continuation_byte(line[at])) --at;
  if (at > begin) return at;
  for (at = limit; at < line.size() && continuation_byte(line[at]);) ++at;
  return at;
}

// Each line is encoded on its own, as sentencepiece saw it in training (with the dummy "\u2581"
// prefix that marks a word start), and lines are joined by the newline piece; decoding splits at
// newline pieces likewise. Encoding a whole text at once would give the first word of every line
// but the first a word-internal segmentation that training never saw.
//
// Calls on_window(window, its byte offset in text, whether it continues a line at a space) for each
// window of each line (lines split only when split_lines; window_end() cuts them), and
// on_newline(offset of the '\n') between lines, until full() returns true (asked before each).
//
// With special tokens (an imported vocabulary), the text is first split at each of their
// occurrences (the longest at a position wins), each part handled as above on its own, and
// on_special(id, begin, end) called for the token between two parts. As transformers'
// PegasusTokenizer (whose pre-tokenizer, Metaspace, keeps a part's trailing space as a word of its
// own), whitespace that ends a part is the piece "\u2581": on_special(space_id, begin, end).
template <typename OnWindow, typename OnNewline, typename OnSpecial, typename Full>
void for_each_window(const std::string& text, const SpecialTokens& specials, bool split_lines, size_t window,
                     OnWindow&& on_window, OnNewline&& on_newline, OnSpecial&& on_special, Full&& full) {
  const std::string_view all(text);
  window = std::max<size_t>(window, 1);  // a window always advances
  // The lines and windows of all[part_begin, part_end).
  const auto part = [&](size_t part_begin, size_t part_end) {
    const std::string_view text_part = all.substr(part_begin, part_end - part_begin);
    for (size_t begin = 0; !full();) {
      const size_t newline = split_lines ? text_part.find('\n', begin) : std::string_view::npos;
      const std::string_view line =
          text_part.substr(begin, newline == std::string_view::npos ? newline : newline - begin);
      for (size_t at = 0; at < line.size() && !full();) {
        const size_t end = window_end(line, at, window);
        on_window(line.substr(at, end - at), part_begin + begin + at, at > 0 && line[at] == ' ');
        at = end;
      }
      if (newline == std::string_view::npos || full()) break;
      on_newline(part_begin + newline);
      begin = newline + 1;
    }
    const size_t space = specials.space_id >= 0 && !full() ? trailing_space(text_part) : std::string_view::npos;
    if (space != std::string_view::npos) on_special(specials.space_id, part_begin + space, part_end);
  };
  for (size_t part_begin = 0; !full();) {
    size_t at = part_begin;
    const std::pair<std::string, int>* hit = nullptr;
    while (!specials.tokens.empty() && (at = all.find_first_of(specials.starts, at)) != std::string_view::npos) {
      for (const auto& special : specials.tokens)
        if (all.compare(at, special.first.size(), special.first) == 0) {
          hit = &special;
          break;
        }
      if (hit) break;
      ++at;
    }
    part(part_begin, hit ? at : all.size());
    if (!hit || full()) return;
    on_special(hit->second, at, at + hit->first.size());
    part_begin = at + hit->first.size();
  }
}

void count_call(std::string_view window) {
  auto& c = detail::TokenizerWindows::calls();
  const auto bytes = static_cast<int64_t>(window.size());
  ++c.calls;
  c.bytes += bytes;
  c.largest = std::max(c.largest, bytes);
}

void check_max_tokens(const char* who, int64_t max_tokens) {
  if (max_tokens < 0)
    throw std::invalid_argument(std::string(who) + ": max_tokens = " + std::to_string(max_tokens) + " must be >= 0");
}

}  // namespace

std::string to_string(TokenizerModel model) { return detail::name_of(model_names(), model, "TokenizerModel"); }

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::train(const std::vector<std::string>& texts, const TokenizerTrainOptions& options) {
  validate(options);
  const std::vector<std::string> lines = training_lines(texts);
  if (lines.empty())
    throw std::invalid_argument("Tokenizer::train: the " + std::to_string(texts.size()) +
                                " texts have no non-empty line to train on");

  const std::unordered_map<std::string, std::string> spec = {
      {"model_type", to_string(options.model_type())},
      {"vocab_size", std::to_string(options.vocab_size())},
      {"character_coverage", detail::format_double(options.character_coverage())},
      {"input_sentence_size", std::to_string(options.max_sentences())},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(options.num_threads())},
      {"pad_id", std::to_string(kPadId)},
      {"bos_id", std::to_string(kBosId)},
      {"eos_id", std::to_string(kEosId)},
      {"unk_id", std::to_string(kUnkId)},
      {"pad_piece", "<pad>"},
      {"bos_piece", "<s>"},
      {"eos_piece", "</s>"},
      {"unk_piece", "<unk>"},
      {"user_defined_symbols", user_defined_symbols(options)},
      {"normalization_rule_name", "nmt_nfkc"},
      // Errors only (a process-wide sentencepiece setting; 0 info, 1 warning, 2 error).
      {"minloglevel", "2"},
  };

  // Sentencepiece's log level and training pretokenizer are process-wide.
  static std::mutex training_mutex;
  std::string proto;
  spm::util::Status status;
  {
    std::lock_guard<std::mutex> lock(training_mutex);
    LineIterator iterator(lines);
    status = spm::SentencePieceTrainer::Train(spec, &iterator, &proto);
  }
  if (!status.ok()) {
    const std::string message = "Tokenizer::train: sentencepiece failed on " + std::to_string(lines.size()) +
                                " lines with vocab_size = " + std::to_string(options.vocab_size()) + ", model_type = \"" +
                                to_string(options.model_type()) + "\": " + status.error_message();
    // Sentencepiece reports options that do not fit the corpus (a vocabulary too small for its
    // characters or too large for its pieces) as failed checks, kInternal; nothing else it does in
    // memory can fail for another reason than its input.
    throw std::invalid_argument(message);
  }
  return from_bytes(std::move(proto), "the trained sentencepiece model");
}

Tokenizer Tokenizer::from_bytes(std::string proto, const std::string& context) {
  auto impl = std::make_shared<Impl>();
  const auto status = impl->processor.LoadFromSerializedProto(proto);
  if (!status.ok())
    throw std::invalid_argument(context + " is not a sentencepiece model (" + std::to_string(proto.size()) +
                                " bytes): " + status.error_message());
  check_special_ids(impl->processor, context);
  impl->vocab_size = impl->processor.GetPieceSize();
  const int newline = impl->processor.PieceToId("\n");
  if (impl->processor.IdToPiece(newline) == "\n") impl->newline_id = newline;
  for (int id = 0; id < impl->vocab_size && impl->word_pieces; ++id)
    impl->word_pieces = impl->processor.IdToPiece(id).find("\u2581", 1) == std::string::npos;
  if (impl->processor.bos_id() < 0) {  // an imported vocabulary: its special tokens are read in text
    for (int id = 0; id < impl->vocab_size; ++id)
      if ((impl->processor.IsControl(id) || impl->processor.IsUnknown(id)) && !impl->processor.IdToPiece(id).empty())
        impl->specials.tokens.emplace_back(impl->processor.IdToPiece(id), id);
    auto& tokens = impl->specials.tokens;
    std::stable_sort(tokens.begin(), tokens.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    for (const auto& special : tokens)
      if (impl->specials.starts.find(special.first[0]) == std::string::npos) impl->specials.starts += special.first[0];
    const int space = impl->processor.PieceToId("\u2581");
    if (impl->processor.IdToPiece(space) == "\u2581") impl->specials.space_id = space;
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::load(const std::string& path) {
  return from_bytes(detail::read_file("Tokenizer::load", path), "Tokenizer::load: '" + path + "'");
}

Tokenizer Tokenizer::from_serialized(std::string proto) {
  return from_bytes(std::move(proto), "Tokenizer::from_serialized: the bytes");
}

void Tokenizer::save(const std::string& path) const {
  detail::write_output_file("Tokenizer::save", path, serialized());
}

std::string Tokenizer::serialized() const { return impl_->processor.serialized_model_proto(); }

namespace detail {

TokenizerWindows::Calls& TokenizerWindows::calls() {
  thread_local Calls calls;
  return calls;
}

size_t TokenizerWindows::effective_window(const Tokenizer& tokenizer, size_t window) {
  return tokenizer.impl_->word_pieces ? window : kWholeLines;
}

std::vector<int64_t> TokenizerWindows::encode(const Tokenizer& tokenizer, const std::string& text, int64_t max_tokens,
                                              size_t window) {
  const Tokenizer::Impl& impl = *tokenizer.impl_;
  const auto limit = max_tokens < 0 ? std::numeric_limits<size_t>::max() : static_cast<size_t>(max_tokens);
  std::vector<int64_t> out;
  std::vector<int> ids;
  for_each_window(
      text, impl.specials, impl.newline_id >= 0, effective_window(tokenizer, window),
      [&](std::string_view segment, size_t, bool) {
        count_call(segment);
        const auto status = impl.processor.Encode(segment, &ids);
        if (!status.ok()) throw std::runtime_error(std::string("Tokenizer::encode: ") + status.error_message());
        out.insert(out.end(), ids.begin(), ids.end());
      },
      [&](size_t) { out.push_back(impl.newline_id); }, [&](int id, size_t, size_t) { out.push_back(id); },
      [&] { return out.size() >= limit; });
  if (out.size() > limit) out.resize(limit);
  return out;
}

std::vector<Tokenizer::Piece> TokenizerWindows::encode_with_offsets(const Tokenizer& tokenizer, const std::string& text,
                                                                    int64_t max_tokens, size_t window) {
  const Tokenizer::Impl& impl = *tokenizer.impl_;
  const auto limit = max_tokens < 0 ? std::numeric_limits<size_t>::max() : static_cast<size_t>(max_tokens);
  std::vector<Tokenizer::Piece> out;
  for_each_window(
      text, impl.specials, impl.newline_id >= 0, effective_window(tokenizer, window),
      [&](std::string_view segment, size_t begin, bool after_cut) {
        count_call(segment);
        spm::ImmutableSentencePieceText spt;
        const auto status = impl.processor.Encode(segment, spt.mutable_proto());
        if (!status.ok())
          throw std::runtime_error(std::string("Tokenizer::encode_with_offsets: ") + status.error_message());
        const size_t first = out.size();
        for (const auto& p : spt.pieces())
          out.push_back({static_cast<int64_t>(p.id()), begin + p.begin(), begin + p.end()});
        // The window's leading space became its dummy prefix, which sentencepiece places after the
        // removed space; inside the line, the first piece's "\u2581" is that space.
        if (after_cut && out.size() > first) out[first].begin = begin;
      },
      [&](size_t position) { out.push_back({impl.newline_id, position, position + 1}); },
      [&](int id, size_t begin, size_t end) { out.push_back({id, begin, end}); },
      [&] { return out.size() >= limit; });
  if (out.size() > limit) out.resize(limit);
  return out;
}

int64_t TokenizerWindows::count_tokens(const Tokenizer& tokenizer, const std::string& text, size_t window) {
  const Tokenizer::Impl& impl = *tokenizer.impl_;
  int64_t count = 0;
  std::vector<int> ids;
  for_each_window(
      text, impl.specials, impl.newline_id >= 0, effective_window(tokenizer, window),
      [&](std::string_view segment, size_t, bool) {
        count_call(segment);
        const auto status = impl.processor.Encode(segment, &ids);
        if (!status.ok()) throw std::runtime_error(std::string("Tokenizer::count_tokens: ") + status.error_message());
        count += static_cast<int64_t>(ids.size());
      },
      [&](size_t) { ++count; }, [&](int, size_t, size_t) { ++count; }, [] { return false; });
  return count;
}

double TokenizerWindows::score(const Tokenizer& tokenizer, int64_t id) {
  tokenizer.id_to_piece(id);  // checks the id
  return tokenizer.impl_->processor.GetScore(static_cast<int>(id));
}

}  // namespace detail

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  return detail::TokenizerWindows::encode(*this, text, -1, detail::TokenizerWindows::kWindowBytes);
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, int64_t max_tokens) const {
  check_max_tokens("Tokenizer::encode", max_tokens);
  return detail::TokenizerWindows::encode(*this, text, max_tokens, detail::TokenizerWindows::kWindowBytes);
}

int64_t Tokenizer::count_tokens(const std::string& text) const {
  return detail::TokenizerWindows::count_tokens(*this, text, detail::TokenizerWindows::kWindowBytes);
}

std::vector<Tokenizer::Piece> Tokenizer::encode_with_offsets(const std::string& text) const {
  return detail::TokenizerWindows::encode_with_offsets(*this, text, -1, detail::TokenizerWindows::kWindowBytes);
}

std::vector<Tokenizer::Piece> Tokenizer::encode_with_offsets(const std::string& text, int64_t max_tokens) const {
  check_max_tokens("Tokenizer::encode_with_offsets", max_tokens);
  return detail::TokenizerWindows::encode_with_offsets(*this, text, max_tokens, detail::TokenizerWindows::kWindowBytes);
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= impl_->vocab_size)
      throw std::invalid_argument("Tokenizer::decode: ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                                  " is outside [0, vocab_size = " + std::to_string(impl_->vocab_size) + ")");
  if (!impl_->specials.tokens.empty()) {
    // An imported vocabulary decodes as transformers' PegasusTokenizer.decode(ids,
    // skip_special_tokens=True): special tokens dropped, the pieces joined, "\u2581" read as a
    // space, and the one space of the text's start (Metaspace's prefix) removed.
    std::string joined;
    for (const int64_t id : ids) {
      const int i = static_cast<int>(id);
      if (impl_->processor.IsControl(i) || impl_->processor.IsUnknown(i)) continue;
      joined += impl_->processor.IdToPiece(i);
    }
    std::string text;
    for (size_t at = 0; at < joined.size();) {
      if (joined.compare(at, 3, "\u2581") == 0) {
        text += ' ';
        at += 3;
      } else {
        text += joined[at++];
      }
    }
    if (!text.empty() && text[0] == ' ') text.erase(0, 1);
    return text;
  }
  std::string text;
  std::string line;
  std::vector<int> segment;
  auto flush = [&] {
    const auto status = impl_->processor.Decode(segment, &line);
    if (!status.ok()) throw std::runtime_error(std::string("Tokenizer::decode: ") + status.error_message());
    text += line;
    segment.clear();
  };
  for (const int64_t id : ids) {
    if (id == impl_->newline_id) {
      flush();
      text += '\n';
    } else {
      segment.push_back(static_cast<int>(id));
    }
  }
  flush();
  return text;
}

std::string Tokenizer::id_to_piece(int64_t id) const {
  if (id < 0 || id >= impl_->vocab_size)
    throw std::invalid_argument("Tokenizer::id_to_piece: id = " + std::to_string(id) +
                                " is outside [0, vocab_size = " + std::to_string(impl_->vocab_size) + ")");
  return impl_->processor.IdToPiece(static_cast<int>(id));
}

int64_t Tokenizer::piece_to_id(const std::string& piece) const {
  const int id = impl_->processor.PieceToId(piece);
  // PieceToId answers unk for a string that is no piece: only "<unk>" itself maps to it.
  return id == impl_->processor.unk_id() && piece != impl_->processor.IdToPiece(id) ? -1 : id;
}

void Tokenizer::check_fits(const ModelConfig& c, const std::string& who) const {
  const bool bos_fits = bos_id() < 0 || bos_id() == c.bos_id;
  if (vocab_size() == c.vocab_size && pad_id() == c.pad_id && eos_id() == c.eos_id && bos_fits) return;
  const auto ids = [](int64_t vocab, int64_t pad, int64_t bos, int64_t eos) {
    return "vocabulary " + std::to_string(vocab) + ", pad/bos/eos " + std::to_string(pad) + "/" +
           (bos < 0 ? std::string("none") : std::to_string(bos)) + "/" + std::to_string(eos);
  };
  throw std::invalid_argument(who + ": the tokenizer (" + ids(vocab_size(), pad_id(), bos_id(), eos_id()) +
                              ") does not match the model (" + ids(c.vocab_size, c.pad_id, c.bos_id, c.eos_id) + ")");
}

int64_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
int64_t Tokenizer::pad_id() const { return impl_->processor.pad_id(); }
int64_t Tokenizer::bos_id() const { return impl_->processor.bos_id(); }
int64_t Tokenizer::eos_id() const { return impl_->processor.eos_id(); }
int64_t Tokenizer::unk_id() const { return impl_->processor.unk_id(); }
int64_t Tokenizer::newline_id() const { return impl_->newline_id; }

}  // namespace pyramidion
