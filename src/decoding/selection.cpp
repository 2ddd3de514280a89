// The selection task's evaluation (see include/pyramidion/selection.h).
#include <pyramidion/selection.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pyramidion {
namespace {

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

int64_t marker_id(const Tokenizer& tokenizer, const std::string& marker, const char* field) {
  const int64_t id = tokenizer.piece_to_id(marker);
  if (id < 0)
    throw std::invalid_argument(std::string("evaluate_selection: SelectionOptions.") + field + " \"" + marker +
                                "\" is not one piece of the model's tokenizer (it encodes to " +
                                std::to_string(tokenizer.encode(marker).size()) +
                                " ids): train the tokenizer with it in reserved_symbols");
  return id;
}

}  // namespace

MarkedSpan find_marked_span(const std::vector<int64_t>& ids, int64_t open_id, int64_t close_id) {
  if (open_id < 0 || close_id < 0 || open_id == close_id)
    throw std::invalid_argument("find_marked_span: open_id = " + std::to_string(open_id) + " and close_id = " +
                                std::to_string(close_id) + " must be distinct ids >= 0");
  const auto open = std::find(ids.begin(), ids.end(), open_id);
  if (open == ids.end()) return {};
  const auto close = std::find(open + 1, ids.end(), close_id);
  if (close == ids.end()) return {};
  return {static_cast<int64_t>(open - ids.begin()) + 1, static_cast<int64_t>(close - ids.begin())};
}

double span_recall(const std::vector<int64_t>& kept, const MarkedSpan& span) {
  if (!span.found() || span.length() == 0)
    throw std::invalid_argument("span_recall: the span [" + std::to_string(span.begin) + ", " +
                                std::to_string(span.end) + ") holds no position");
  std::unordered_set<int64_t> inside;
  for (const int64_t p : kept)
    if (p >= span.begin && p < span.end) inside.insert(p);
  return static_cast<double>(inside.size()) / static_cast<double>(span.length());
}

double token_f1(const std::string& prediction, const std::string& reference) {
  const auto p = words(prediction), r = words(reference);
  if (p.empty() || r.empty()) return p.empty() && r.empty() ? 1.0 : 0.0;
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& w : r) ++counts[w];
  int64_t common = 0;
  for (const auto& w : p) {
    auto it = counts.find(w);
    if (it != counts.end() && it->second > 0) {
      --it->second;
      ++common;
    }
  }
  if (common == 0) return 0.0;
  const double precision = static_cast<double>(common) / static_cast<double>(p.size());
  const double recall = static_cast<double>(common) / static_cast<double>(r.size());
  return 2 * precision * recall / (precision + recall);
}

std::vector<SelectionWindow> evaluate_selection(Summarizer& summarizer, const std::vector<Document>& windows,
                                                const SelectionOptions& options) {
  if (options.max_tokens() < 1)
    throw std::invalid_argument("evaluate_selection: SelectionOptions.max_tokens = " +
                                std::to_string(options.max_tokens()) + " must be >= 1");
  const Tokenizer& tokenizer = summarizer.tokenizer();
  const int64_t open_id = marker_id(tokenizer, options.open_marker(), "open_marker");
  const int64_t close_id = marker_id(tokenizer, options.close_marker(), "close_marker");

  std::vector<std::string> texts;
  for (const auto& w : windows) texts.push_back(w.document);
  const auto options_greedy = SummarizeOptions()
                                  .search(GenerateOptions().beam_size(1).no_repeat_ngram_size(0))
                                  .max_tokens(options.max_tokens())
                                  .keep_positions(true);
  std::vector<Summary> summaries = summarizer.summarize(texts, options_greedy);

  std::vector<SelectionWindow> out;
  for (size_t i = 0; i < windows.size(); ++i) {
    SelectionWindow w;
    w.id = windows[i].id;
    // The ids the model read: the first source_tokens pieces that keep_positions returns (one more
    // follows when the window is longer).
    const Summary& s = summaries[i];
    std::vector<int64_t> read;
    for (size_t p = 0; p < s.pieces.size() && static_cast<int64_t>(p) < s.source_tokens; ++p)
      read.push_back(s.pieces[p].id);
    const MarkedSpan span = find_marked_span(read, open_id, close_id);
    w.passage_read = span.found() && span.length() > 0;
    if (w.passage_read) {
      w.passage_tokens = span.length();
      for (const auto& kept : s.kept) w.span_recall.push_back(span_recall(kept, span));
    }
    const std::vector<int64_t> reference_ids = tokenizer.encode(windows[i].summary);
    w.reference = tokenizer.decode(reference_ids);
    w.prediction = s.summary;
    w.exact_match = s.tokens == reference_ids;
    w.token_f1 = token_f1(w.prediction, w.reference);
    w.summary = std::move(summaries[i]);
    out.push_back(std::move(w));
  }
  return out;
}

SelectionReport summarize_selection(const std::vector<SelectionWindow>& windows) {
  SelectionReport r;
  r.windows = static_cast<int64_t>(windows.size());
  for (const auto& w : windows) {
    r.exact_match += w.exact_match ? 1 : 0;
    r.token_f1 += w.token_f1;
    r.seconds += w.summary.seconds;
    if (!w.passage_read) continue;
    if (r.passages_read == 0) r.span_recall.assign(w.span_recall.size(), 0.0);
    if (w.span_recall.size() != r.span_recall.size())
      throw std::invalid_argument("summarize_selection: window '" + w.id + "' has span recalls of " +
                                  std::to_string(w.span_recall.size()) + " pooling layers, earlier ones of " +
                                  std::to_string(r.span_recall.size()));
    for (size_t l = 0; l < w.span_recall.size(); ++l) r.span_recall[l] += w.span_recall[l];
    ++r.passages_read;
  }
  if (r.windows > 0) {
    r.exact_match /= static_cast<double>(r.windows);
    r.token_f1 /= static_cast<double>(r.windows);
  }
  for (auto& v : r.span_recall) v /= static_cast<double>(std::max<int64_t>(r.passages_read, 1));
  return r;
}

}  // namespace pyramidion
