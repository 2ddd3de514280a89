// Tokenizer (see include/pyramidion/tokenizer.h): sentencepiece training in memory, loading,
// atomic saving, encoding and decoding.
#include <pyramidion/tokenizer.h>

#include "util/atomic_file.h"
#include "util/enum_names.h"
#include "util/json_fields.h"
#include "util/text.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <limits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pyramidion {

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor processor;
  int64_t vocab_size = 0;
  // The id of the piece "\n", or -1 for a model without one (its normalizer then turns newlines
  // into spaces).
  int newline_id = -1;
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
}

// The largest end <= limit (< s.size()) that does not split a UTF-8 character; `limit` itself
// for text that is not UTF-8.
size_t utf8_boundary(const std::string& s, size_t limit) {
  size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return end > 0 ? end : limit;
}

// The training lines of `texts`: split at newlines, blank lines skipped, lines over kMaxLineBytes
// split at their last space before the limit (or at a character boundary).
std::vector<std::string> training_lines(const std::vector<std::string>& texts) {
  std::vector<std::string> lines;
  auto add = [&lines](std::string line) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(std::move(line));
  };
  for (const std::string& text : texts) {
    std::istringstream stream(text);
    std::string line;
    while (std::getline(stream, line)) {
      while (line.size() > kMaxLineBytes) {
        size_t cut = line.rfind(' ', kMaxLineBytes);
        if (cut == std::string::npos || cut == 0) cut = utf8_boundary(line, kMaxLineBytes);
        add(line.substr(0, cut));
        line.erase(0, cut);
      }
      add(std::move(line));
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
  const std::pair<const char*, int> ids[] = {
      {"pad", p.pad_id()}, {"bos", p.bos_id()}, {"eos", p.eos_id()}, {"unk", p.unk_id()}};
  for (const auto& [name, id] : ids)
    if (id < 0)
      throw std::invalid_argument(context + " has no " + name +
                                  " piece; pyramidion needs pad, bos, eos and unk (train it with Tokenizer::train)");
}

// Calls on_line(line, byte offset of the line in text) for each line of `text` and
// on_newline(offset of the '\n') between lines; with split = false, on_line(text, 0) only.
//
// Each line is encoded on its own, as sentencepiece saw it in training (with the dummy "\u2581"
// prefix that marks a word start), and lines are joined by the newline piece; decoding splits at
// newline pieces likewise. Encoding a whole text at once would give the first word of every line
// but the first a word-internal segmentation that training never saw.
template <typename OnLine, typename OnNewline>
void for_each_line(const std::string& text, bool split, OnLine&& on_line, OnNewline&& on_newline) {
  if (!split) return on_line(std::string_view(text), size_t{0});
  size_t begin = 0;
  while (true) {
    const size_t newline = text.find('\n', begin);
    on_line(std::string_view(text).substr(begin, newline - begin), begin);
    if (newline == std::string::npos) return;
    on_newline(newline);
    begin = newline + 1;
  }
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
      // Newlines survive as a piece of their own (the normalizer matches user-defined symbols
      // before its character map, which would turn "\n" into a space).
      {"user_defined_symbols", "\n"},
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
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::load(const std::string& path) {
  return from_bytes(detail::read_file("Tokenizer::load", path), "Tokenizer::load: '" + path + "'");
}

Tokenizer Tokenizer::from_serialized(std::string proto) {
  return from_bytes(std::move(proto), "Tokenizer::from_serialized: the bytes");
}

void Tokenizer::save(const std::string& path) const {
  detail::write_file_atomically("Tokenizer::save", path, serialized());
}

std::string Tokenizer::serialized() const { return impl_->processor.serialized_model_proto(); }

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int64_t> out;
  std::vector<int> ids;
  for_each_line(
      text, impl_->newline_id >= 0,
      [&](std::string_view line, size_t) {
        const auto status = impl_->processor.Encode(line, &ids);
        if (!status.ok()) throw std::runtime_error(std::string("Tokenizer::encode: ") + status.error_message());
        out.insert(out.end(), ids.begin(), ids.end());
      },
      [&](size_t) { out.push_back(impl_->newline_id); });
  return out;
}

std::vector<Tokenizer::Piece> Tokenizer::encode_with_offsets(const std::string& text) const {
  std::vector<Piece> out;
  for_each_line(
      text, impl_->newline_id >= 0,
      [&](std::string_view line, size_t begin) {
        spm::ImmutableSentencePieceText spt;
        const auto status = impl_->processor.Encode(line, spt.mutable_proto());
        if (!status.ok())
          throw std::runtime_error(std::string("Tokenizer::encode_with_offsets: ") + status.error_message());
        for (const auto& p : spt.pieces())
          out.push_back({static_cast<int64_t>(p.id()), begin + p.begin(), begin + p.end()});
      },
      [&](size_t position) { out.push_back({impl_->newline_id, position, position + 1}); });
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= impl_->vocab_size)
      throw std::invalid_argument("Tokenizer::decode: ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                                  " is outside [0, vocab_size = " + std::to_string(impl_->vocab_size) + ")");
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

int64_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
int64_t Tokenizer::pad_id() const { return impl_->processor.pad_id(); }
int64_t Tokenizer::bos_id() const { return impl_->processor.bos_id(); }
int64_t Tokenizer::eos_id() const { return impl_->processor.eos_id(); }
int64_t Tokenizer::unk_id() const { return impl_->processor.unk_id(); }
int64_t Tokenizer::newline_id() const { return impl_->newline_id; }

}  // namespace pyramidion
