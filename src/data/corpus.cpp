// TokenizedCorpus and tokenize_file (see include/pyramidion/corpus.h).
#include <pyramidion/corpus.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "data/corpus_storage.h"
#include "data/tokenize_example.h"

namespace pyramidion {

TokenizedCorpus::TokenizedCorpus() : TokenizedCorpus(std::make_shared<Storage>()) {}

TokenizedCorpus::TokenizedCorpus(std::shared_ptr<Storage> storage) : storage_(std::move(storage)) {
  if (!storage_->mapped) storage_->point_at_buffers();
  size_ = storage_->documents;
  count_tokens();
}

void TokenizedCorpus::count_tokens() {
  const Storage& s = *storage_;
  if (max_source_ == 0 && max_target_ == 0) {  // no limits: the last offsets
    source_tokens_ = s.source_offsets[size_];
    target_tokens_ = s.target_offsets[size_];
    return;
  }
  source_tokens_ = target_tokens_ = 0;
  for (int64_t i = 0; i < size_; ++i) {
    source_tokens_ += source_length(i);
    target_tokens_ += target_length(i);
  }
}

int64_t TokenizedCorpus::add(std::string id, const std::vector<int64_t>& source, const std::vector<int64_t>& target) {
  if (storage_->mapped || max_source_ != 0 || max_target_ != 0 || size_ != storage_->documents)
    throw std::logic_error("TokenizedCorpus::add: this corpus is read-only (" +
                           std::string(storage_->mapped ? "a dataset's mapped files" : "a truncated() or first() view") +
                           ")");
  // Both sides are checked before either is stored: a rejected example leaves the corpus as it was.
  const auto check = [&](const std::vector<int64_t>& ids, const char* side) {
    for (const int64_t t : ids) {
      if (t < 0 || t > std::numeric_limits<int32_t>::max())
        throw std::invalid_argument("TokenizedCorpus::add: " + std::string(side) + " token id " + std::to_string(t) +
                                    " of example '" + id + "' is outside [0, 2^31)");
    }
  };
  check(source, "source");
  check(target, "target");
  if (storage_.use_count() > 1) storage_ = storage_->clone_buffers();  // copies share the tokens
  Storage& s = *storage_;
  const auto append = [](const std::vector<int64_t>& ids, std::vector<int32_t>& tokens, std::vector<int64_t>& offsets) {
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    offsets.push_back(static_cast<int64_t>(tokens.size()));
  };
  append(source, s.source_buffer, s.source_offset_buffer);
  append(target, s.target_buffer, s.target_offset_buffer);
  s.id_buffer += id;
  s.id_offset_buffer.push_back(static_cast<int64_t>(s.id_buffer.size()));
  s.point_at_buffers();
  source_tokens_ += static_cast<int64_t>(source.size());
  target_tokens_ += static_cast<int64_t>(target.size());
  return size_++;
}

int64_t TokenizedCorpus::checked(int64_t i) const {
  if (i < 0 || i >= size_)
    throw std::out_of_range("TokenizedCorpus: example " + std::to_string(i) + " of a corpus of " +
                            std::to_string(size_));
  return i;
}

// A mapped corpus reads files that another process could truncate under it (mapped_file.h): what
// was read is checked before it is used, so that a changed file is an error naming it, never a
// crash (SIGBUS) or zeros taken for tokens.
std::string TokenizedCorpus::id(int64_t i) const {
  const Storage& s = *storage_;
  checked(i);
  const int64_t begin = s.id_offsets[i], end = s.id_offsets[i + 1];
  if (s.mapped) s.check_faults();
  if (end < begin) s.check_files();  // an index cut short reads zeros without a fault
  std::string out(s.ids + begin, static_cast<size_t>(end - begin));
  if (s.mapped) s.check_faults();
  return out;
}

int64_t TokenizedCorpus::source_length(int64_t i) const {
  const Storage& s = *storage_;
  checked(i);
  const int64_t n = s.source_offsets[i + 1] - s.source_offsets[i];
  if (s.mapped && (n < 0 || s.source_offsets[i] < 0)) s.check_files();
  if (s.mapped) s.check_faults();
  return max_source_ > 0 ? std::min(n, max_source_) : n;
}
int64_t TokenizedCorpus::target_length(int64_t i) const {
  const Storage& s = *storage_;
  checked(i);
  const int64_t n = s.target_offsets[i + 1] - s.target_offsets[i];
  if (s.mapped && (n < 0 || s.target_offsets[i] < 0)) s.check_files();
  if (s.mapped) s.check_faults();
  return max_target_ > 0 ? std::min(n, max_target_) : n;
}
std::vector<int64_t> TokenizedCorpus::source(int64_t i) const {
  const Storage& s = *storage_;
  std::vector<int64_t> out(static_cast<size_t>(source_length(i)));
  for (size_t k = 0; k < out.size(); ++k) out[k] = s.token(s.source, s.source_offsets[i] + static_cast<int64_t>(k));
  if (s.mapped) s.check_files();
  return out;
}
std::vector<int64_t> TokenizedCorpus::target(int64_t i) const {
  const Storage& s = *storage_;
  std::vector<int64_t> out(static_cast<size_t>(target_length(i)));
  for (size_t k = 0; k < out.size(); ++k) out[k] = s.token(s.target, s.target_offsets[i] + static_cast<int64_t>(k));
  if (s.mapped) s.check_files();
  return out;
}

TokenizedCorpus TokenizedCorpus::truncated(int64_t max_source, int64_t max_target) const {
  if (max_source < 0 || max_target < 0)
    throw std::invalid_argument("TokenizedCorpus::truncated: the limits must be >= 0 (0 = none), got " +
                                std::to_string(max_source) + " and " + std::to_string(max_target));
  TokenizedCorpus view = *this;
  const auto tighter = [](int64_t old_limit, int64_t limit) {
    return old_limit == 0 ? limit : limit == 0 ? old_limit : std::min(old_limit, limit);
  };
  view.max_source_ = tighter(max_source_, max_source);
  view.max_target_ = tighter(max_target_, max_target);
  view.count_tokens();
  return view;
}

TokenizedCorpus TokenizedCorpus::first(int64_t n) const {
  if (n < 0) throw std::invalid_argument("TokenizedCorpus::first: n must be >= 0, got " + std::to_string(n));
  TokenizedCorpus view = *this;
  view.size_ = std::min(n, size_);
  view.count_tokens();
  return view;
}

bool TokenizedCorpus::mapped() const { return storage_->mapped; }

namespace detail {

std::string tokenize_example(const Document& doc, const Tokenizer& tokenizer, const ExampleLimits& limits,
                             std::vector<int64_t>& source, std::vector<int64_t>& target, CorpusStats& counts) {
  // Only what can be kept is tokenized, and one token more, which says whether the text was longer
  // (a 50 MB document costs what its first max_source tokens cost).
  const auto encode = [&](const std::string& text, int64_t limit) {
    return limit > 0 ? tokenizer.encode(text, limit + 1) : tokenizer.encode(text);
  };
  source = encode(doc.document, limits.max_source);
  target = encode(doc.summary, limits.max_target);
  const auto where = doc.path + ":" + std::to_string(doc.line) + ": record '" + doc.id + "'";
  if (source.empty() || target.empty())
    return where + " has an empty " + (source.empty() ? "document" : "summary") + " after tokenization";
  const auto too_long = [](size_t length, int64_t limit) { return limit > 0 && static_cast<int64_t>(length) > limit; };
  if (!too_long(source.size(), limits.max_source) && !too_long(target.size(), limits.max_target)) return "";
  if (!limits.truncate) {
    const auto length = [&](size_t n, int64_t limit) {
      return too_long(n, limit) ? "more than " + std::to_string(limit) : std::to_string(n);
    };
    throw std::invalid_argument(where + " has " + length(source.size(), limits.max_source) + " source and " +
                             length(target.size(), limits.max_target) + " summary tokens; the model takes at most " +
                             std::to_string(limits.max_source) + " and " + std::to_string(limits.max_target) +
                             " (set truncate to true to cut them)");
  }
  if (too_long(source.size(), limits.max_source)) {
    source.resize(static_cast<size_t>(limits.max_source));
    ++counts.truncated_sources;
  }
  if (too_long(target.size(), limits.max_target)) {
    target.resize(static_cast<size_t>(limits.max_target));
    ++counts.truncated_targets;
  }
  return "";
}

}  // namespace detail

TokenizedCorpus tokenize_file(const std::string& path, const Tokenizer& tokenizer, const CorpusOptions& options,
                              CorpusStats* stats, const std::function<void(const std::string&)>& progress) {
  DocumentReader reader(path, options.reader());
  TokenizedCorpus corpus;
  CorpusStats counts;
  const detail::ExampleLimits limits{options.max_source_length(), options.max_target_length(), options.truncate()};
  Document doc;
  std::vector<int64_t> source, target;
  const auto keep_reason = [&](std::string reason) {
    if (counts.skip_reasons.size() < DocumentReader::kMaxSkipReasons) counts.skip_reasons.push_back(std::move(reason));
  };
  while ((options.max_documents() <= 0 || corpus.size() < options.max_documents()) && reader.next(doc)) {
    for (auto& reason : reader.take_new_skip_reasons()) keep_reason(std::move(reason));
    const std::string empty = detail::tokenize_example(doc, tokenizer, limits, source, target, counts);
    if (!empty.empty()) {
      if (!options.reader().skip_bad()) throw std::invalid_argument(empty);
      ++counts.skipped;
      keep_reason(empty);
      continue;
    }
    corpus.add(doc.id, source, target);
    if (progress && corpus.size() % 10000 == 0)
      progress(path + ": " + std::to_string(corpus.size()) + " documents tokenized, " +
               std::to_string(corpus.source_tokens()) + " source tokens");
  }
  for (auto& reason : reader.take_new_skip_reasons()) keep_reason(std::move(reason));
  counts.documents = corpus.size();
  counts.skipped += reader.skipped();
  if (stats) *stats = counts;
  return corpus;
}

Tokenizer train_tokenizer_on_file(const std::string& path, const TokenizerTrainOptions& options,
                                  const TokenizerSampleOptions& sample) {
  if (sample.max_text_bytes() <= 0 || sample.segments() < 1)
    throw std::invalid_argument("train_tokenizer_on_file: max_text_bytes and segments must be >= 1, got " +
                                std::to_string(sample.max_text_bytes()) + " and " + std::to_string(sample.segments()));
  std::vector<std::string> texts;
  const auto take = [&](Document& doc) {
    const size_t bytes = doc.document.size() + doc.summary.size();
    texts.push_back(std::move(doc.document));
    texts.push_back(std::move(doc.summary));
    return static_cast<int64_t>(bytes);
  };
  std::error_code ec;
  const int64_t size = path == "-" ? -1 : static_cast<int64_t>(std::filesystem::file_size(path, ec));
  DocumentReader reader(path, sample.reader());
  Document doc;
  if (ec || size < 0 || size <= sample.max_text_bytes()) {  // the whole file, in order
    for (int64_t bytes = 0; bytes < sample.max_text_bytes() && reader.next(doc);) bytes += take(doc);
  } else {
    // Segment s starts at the first line at or after byte s * size / segments; each gives up to
    // its share of the budget (an arXiv paper is ~40 KB of JSON, the share 256 KB by default).
    // Malformed records are left out here: their line numbers are unknown (the tokenization of
    // the file reports them, with theirs).
    const int64_t share = std::max<int64_t>(1, sample.max_text_bytes() / sample.segments());
    reader = DocumentReader(path, ReaderOptions(sample.reader()).skip_bad(true));
    std::ifstream raw(path, std::ios::binary);
    std::string line;
    for (int64_t s = 0; s < sample.segments(); ++s) {
      int64_t start = s * (size / sample.segments());
      if (start > 0) {  // to the start of the next line
        raw.clear();
        raw.seekg(start - 1);
        std::getline(raw, line);
        start = raw ? static_cast<int64_t>(raw.tellg()) : size;
      }
      if (start >= size) break;
      reader.seek(DocumentReader::Position{start, 0, 0, 0});
      for (int64_t bytes = 0; bytes < share && reader.next(doc);) bytes += take(doc);
    }
  }
  if (texts.empty()) throw std::invalid_argument("train_tokenizer_on_file: " + path + " holds no usable record");
  return Tokenizer::train(texts, options);
}

}  // namespace pyramidion
