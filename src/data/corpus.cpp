// TokenizedCorpus and tokenize_file (see include/pyramidion/corpus.h).
#include <pyramidion/corpus.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace pyramidion {

int64_t TokenizedCorpus::add(std::string id, const std::vector<int64_t>& source, const std::vector<int64_t>& target) {
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
  const auto append = [](const std::vector<int64_t>& ids, std::vector<int32_t>& tokens, std::vector<int64_t>& offsets) {
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    offsets.push_back(static_cast<int64_t>(tokens.size()));
  };
  append(source, source_tokens_, source_offsets_);
  append(target, target_tokens_, target_offsets_);
  ids_.push_back(std::move(id));
  return size() - 1;
}

int64_t TokenizedCorpus::source_length(int64_t i) const {
  return source_offsets_.at(static_cast<size_t>(i) + 1) - source_offsets_[static_cast<size_t>(i)];
}
int64_t TokenizedCorpus::target_length(int64_t i) const {
  return target_offsets_.at(static_cast<size_t>(i) + 1) - target_offsets_[static_cast<size_t>(i)];
}
std::vector<int64_t> TokenizedCorpus::source(int64_t i) const {
  const auto b = source_tokens_.begin() + source_offsets_.at(static_cast<size_t>(i));
  return {b, b + source_length(i)};
}
std::vector<int64_t> TokenizedCorpus::target(int64_t i) const {
  const auto b = target_tokens_.begin() + target_offsets_.at(static_cast<size_t>(i));
  return {b, b + target_length(i)};
}

TokenizedCorpus tokenize_file(const std::string& path, const Tokenizer& tokenizer, const CorpusOptions& options,
                              CorpusStats* stats, const std::function<void(const std::string&)>& progress) {
  DocumentReader reader(path, options.reader());
  TokenizedCorpus corpus;
  CorpusStats counts;
  const int64_t max_source = options.max_source_length(), max_target = options.max_target_length();
  const auto too_long = [](int64_t length, int64_t limit) { return limit > 0 && length > limit; };
  Document doc;
  while ((options.max_documents() <= 0 || corpus.size() < options.max_documents()) && reader.next(doc)) {
    auto source = tokenizer.encode(doc.document);
    auto target = tokenizer.encode(doc.summary);
    const auto where = path + ":" + std::to_string(doc.line) + ": record '" + doc.id + "'";
    if (source.empty() || target.empty()) {
      const std::string what =
          where + " has an empty " + (source.empty() ? "document" : "summary") + " after tokenization";
      if (!options.reader().skip_bad()) throw std::runtime_error(what);
      ++counts.skipped;
      continue;
    }
    const int64_t ns = static_cast<int64_t>(source.size()), nt = static_cast<int64_t>(target.size());
    if (too_long(ns, max_source) || too_long(nt, max_target)) {
      if (!options.truncate())
        throw std::runtime_error(where + " has " + std::to_string(ns) + " source and " + std::to_string(nt) +
                                 " summary tokens; the model takes at most " + std::to_string(max_source) + " and " +
                                 std::to_string(max_target) + " (set truncate to true to cut them)");
      if (too_long(ns, max_source)) {
        source.resize(static_cast<size_t>(max_source));
        ++counts.truncated_sources;
      }
      if (too_long(nt, max_target)) {
        target.resize(static_cast<size_t>(max_target));
        ++counts.truncated_targets;
      }
    }
    corpus.add(doc.id, source, target);
    if (progress && corpus.size() % 10000 == 0)
      progress(path + ": " + std::to_string(corpus.size()) + " documents tokenized, " +
               std::to_string(corpus.source_tokens()) + " source tokens");
  }
  counts.documents = corpus.size();
  counts.skipped += reader.skipped();
  if (stats) *stats = counts;
  return corpus;
}

}  // namespace pyramidion
