// The selection task's evaluation (include/pyramidion/selection.h): the marked span, span recall
// against a naive per-position count, token F1 by hand, and evaluate_selection on a tiny model
// (every window's recall recomputed from the kept positions it reports, a passage cut off by
// truncation, markers that are not pieces).
#include <pyramidion/data.h>
#include <pyramidion/selection.h>
#include <pyramidion/summarizer.h>
#include <pyramidion/tokenizer.h>

#include "support/model_fixtures.h"
#include "support/test_support.h"
#include "support/train_fixtures.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace {

using pyramidion::MarkedSpan;
using pyramidion_test::error_of;

const std::string kOpen = "\u27e6", kClose = "\u27e7";
constexpr int64_t kMaxSource = 512;  // the tiny model's sources (its preset's 64 hold too few sentences)

TEST(SelectionSpan, PositionsStrictlyBetweenTheFirstOpenAndTheNextClose) {
  const int64_t o = 5, c = 6;
  auto span = pyramidion::find_marked_span({9, o, 10, 11, c, 12}, o, c);
  EXPECT_EQ(span.begin, 2);
  EXPECT_EQ(span.end, 4);
  EXPECT_EQ(span.length(), 2);
  // A close before the open is not the passage's; the first open counts.
  span = pyramidion::find_marked_span({c, 9, o, 10, o, 11, c}, o, c);
  EXPECT_EQ(span.begin, 3);
  EXPECT_EQ(span.end, 6);
  // Adjacent markers: found, empty.
  span = pyramidion::find_marked_span({o, c}, o, c);
  EXPECT_TRUE(span.found());
  EXPECT_EQ(span.length(), 0);
  // Cut off (no close after the open), or no open at all.
  EXPECT_FALSE(pyramidion::find_marked_span({9, o, 10, 11}, o, c).found());
  EXPECT_FALSE(pyramidion::find_marked_span({9, c, 10}, o, c).found());
  EXPECT_FALSE(pyramidion::find_marked_span({}, o, c).found());
  EXPECT_NE(error_of([&] { pyramidion::find_marked_span({1}, 5, 5); }).find("must be distinct ids >= 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { pyramidion::find_marked_span({1}, -1, 5); }).find("open_id = -1"), std::string::npos);
}

// Naive: for each position of the span, is it anywhere in `kept`?
double naive_recall(const std::vector<int64_t>& kept, int64_t begin, int64_t end) {
  int64_t found = 0;
  for (int64_t p = begin; p < end; ++p) {
    bool in = false;
    for (const int64_t k : kept) in = in || k == p;
    found += in ? 1 : 0;
  }
  return static_cast<double>(found) / static_cast<double>(end - begin);
}

TEST(SelectionSpan, RecallEqualsANaivePerPositionCount) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 200);
    const int64_t begin = static_cast<int64_t>(rng() % n);
    const int64_t end = begin + 1 + static_cast<int64_t>(rng() % (n - begin));
    std::vector<int64_t> kept;
    const size_t k = rng() % 80;
    for (size_t i = 0; i < k; ++i)
      kept.push_back(rng() % 10 == 0 ? -1 : static_cast<int64_t>(rng() % n));  // padding and duplicates
    const double recall = pyramidion::span_recall(kept, MarkedSpan{begin, end});
    EXPECT_DOUBLE_EQ(recall, naive_recall(kept, begin, end)) << "trial " << trial;
  }
  EXPECT_DOUBLE_EQ(pyramidion::span_recall({3, 3, 3, 4}, MarkedSpan{3, 7}), 0.5);  // duplicates once
  EXPECT_NE(error_of([] { pyramidion::span_recall({1}, MarkedSpan{4, 4}); }).find("holds no position"),
            std::string::npos);
  EXPECT_NE(error_of([] { pyramidion::span_recall({1}, MarkedSpan{}); }).find("holds no position"), std::string::npos);
}

TEST(SelectionMetrics, TokenF1ByHand) {
  EXPECT_DOUBLE_EQ(pyramidion::token_f1("the cat sat", "the cat sat"), 1.0);
  EXPECT_DOUBLE_EQ(pyramidion::token_f1("the cat sat", "the dog sat"), 2.0 / 3.0);
  // "a a b" vs "a b b": common a, b (each once) -> P = R = 2/3.
  EXPECT_DOUBLE_EQ(pyramidion::token_f1("a a b", "a b b"), 2.0 / 3.0);
  // P = 1/1, R = 1/4 -> 2 * 0.25 / 1.25 = 0.4.
  EXPECT_DOUBLE_EQ(pyramidion::token_f1("x", "x y z w"), 0.4);
  EXPECT_DOUBLE_EQ(pyramidion::token_f1("  x\n", "x"), 1.0);  // whitespace splits only
  EXPECT_DOUBLE_EQ(pyramidion::token_f1("Cat.", "cat"), 0.0);  // no normalization
  EXPECT_DOUBLE_EQ(pyramidion::token_f1("", ""), 1.0);
  EXPECT_DOUBLE_EQ(pyramidion::token_f1("", "x"), 0.0);
  EXPECT_DOUBLE_EQ(pyramidion::token_f1("x", " "), 0.0);
}

TEST(SelectionMetrics, ReportMeansAndLayerCountCheck) {
  pyramidion::SelectionWindow a, b, c;
  a.passage_read = true;
  a.span_recall = {1.0, 0.5};
  a.exact_match = true;
  a.token_f1 = 1.0;
  a.summary.seconds = 0.25;
  b.passage_read = true;
  b.span_recall = {0.5, 0.0};
  b.token_f1 = 0.5;
  b.summary.seconds = 0.5;
  c.passage_read = false;  // cut off: in the exact match and F1 means, not in the recall means
  const auto r = pyramidion::summarize_selection({a, b, c});
  EXPECT_EQ(r.windows, 3);
  EXPECT_EQ(r.passages_read, 2);
  ASSERT_EQ(r.span_recall.size(), 2u);
  EXPECT_DOUBLE_EQ(r.span_recall[0], 0.75);
  EXPECT_DOUBLE_EQ(r.span_recall[1], 0.25);
  EXPECT_DOUBLE_EQ(r.exact_match, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.token_f1, 0.5);
  EXPECT_DOUBLE_EQ(r.seconds, 0.75);
  b.span_recall = {0.5};
  EXPECT_NE(error_of([&] { pyramidion::summarize_selection({a, b}); }).find("span recalls of 1 pooling layers"),
            std::string::npos);
  EXPECT_EQ(pyramidion::summarize_selection({}).windows, 0);
}

// A tokenizer with the markers reserved, trained on the first bundled training papers.
const pyramidion::Tokenizer& marker_tokenizer() {
  static const pyramidion::Tokenizer t = [] {
    const auto dir = pyramidion_test::fresh_dir("selection_tokenizer");
    return pyramidion::train_tokenizer_on_file(
        pyramidion_test::data_slice(dir, "train", 6),
        pyramidion::TokenizerTrainOptions().vocab_size(300).reserved_symbols({kOpen, kClose}));
  }();
  return t;
}

// Windows of bundled test papers: `sentences` consecutive sentences with sentence `marked` wrapped
// in the markers, as scripts/make_selection.py writes them.
std::vector<pyramidion::Document> windows(int count, int sentences, int marked) {
  const auto papers = pyramidion::read_all(pyramidion_test::kSource + "/data/aclsum/test.jsonl");
  std::vector<pyramidion::Document> out;
  for (int i = 0; i < count; ++i) {
    const auto& paper = papers[static_cast<size_t>(i)];
    std::vector<std::string> lines;
    std::string line;
    for (const char ch : paper.document) {
      if (ch == '\n') {
        lines.push_back(line);
        line.clear();
      } else {
        line += ch;
      }
    }
    lines.push_back(line);
    pyramidion::Document w;
    w.id = "w" + std::to_string(i);
    for (int s = 0; s < sentences; ++s) {
      const std::string& sentence = lines[static_cast<size_t>(s + 2)];
      if (!w.document.empty()) w.document += "\n";
      w.document += s == marked ? kOpen + " " + sentence + " " + kClose : sentence;
      if (s == marked) w.summary = sentence;
    }
    out.push_back(w);
  }
  return out;
}

pyramidion::Summarizer tiny_summarizer() {
  auto config = pyramidion_test::preset("tiny-deep-pyramidion");  // pools [32, 16]
  config.vocab_size = marker_tokenizer().vocab_size();
  config.max_source_length = kMaxSource;
  return pyramidion::Summarizer(pyramidion_test::make_model(config, 3), marker_tokenizer());
}

TEST(SelectionEvaluate, RecallAndMatchesRecomputedFromWhatItReports) {
  auto summarizer = tiny_summarizer();
  const auto input = windows(4, 3, 1);  // the second of three sentences marked: read whole
  const auto results = pyramidion::evaluate_selection(summarizer, input, pyramidion::SelectionOptions().max_tokens(300));
  ASSERT_EQ(results.size(), input.size());
  const auto& t = marker_tokenizer();
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& w = results[i];
    EXPECT_EQ(w.id, input[i].id);
    const auto ids = t.encode(input[i].document, kMaxSource);
    const auto open = std::find(ids.begin(), ids.end(), t.piece_to_id(kOpen));
    const auto close = std::find(ids.begin(), ids.end(), t.piece_to_id(kClose));
    ASSERT_TRUE(open != ids.end() && close != ids.end()) << "window " << i << " is too long for this test";
    ASSERT_TRUE(w.passage_read);
    const int64_t begin = open - ids.begin() + 1, end = close - ids.begin();
    EXPECT_EQ(w.passage_tokens, end - begin);
    ASSERT_EQ(w.span_recall.size(), 2u);  // two pooling layers
    ASSERT_EQ(w.summary.kept.size(), 2u);
    for (size_t l = 0; l < 2; ++l)
      EXPECT_DOUBLE_EQ(w.span_recall[l], naive_recall(w.summary.kept[l], begin, end)) << "window " << i;
    EXPECT_EQ(w.reference, t.decode(t.encode(input[i].summary)));
    EXPECT_EQ(w.exact_match, w.summary.tokens == t.encode(input[i].summary));
    EXPECT_DOUBLE_EQ(w.token_f1, pyramidion::token_f1(w.prediction, w.reference));
    EXPECT_EQ(w.prediction, w.summary.summary);
    EXPECT_FALSE(w.summary.pieces.empty());  // kept for the highlight page
  }
  const auto report = pyramidion::summarize_selection(results);
  EXPECT_EQ(report.passages_read, 4);
}

TEST(SelectionEvaluate, APassageCutOffByTruncationIsNotRead) {
  auto summarizer = tiny_summarizer();
  const auto input = windows(2, 40, 39);  // the last of 40 sentences: beyond 512 tokens
  const auto results = pyramidion::evaluate_selection(summarizer, input);
  for (const auto& w : results) {
    EXPECT_FALSE(w.passage_read) << w.id;
    EXPECT_TRUE(w.span_recall.empty());
    EXPECT_EQ(w.summary.source_tokens, kMaxSource);
  }
  EXPECT_EQ(pyramidion::summarize_selection(results).passages_read, 0);
}

TEST(SelectionEvaluate, MarkersThatAreNotPiecesAreRefused) {
  auto summarizer = tiny_summarizer();
  const auto input = windows(1, 3, 1);
  const std::string message = error_of([&] {
    pyramidion::evaluate_selection(summarizer, input, pyramidion::SelectionOptions().close_marker("<<end>>"));
  });
  EXPECT_NE(message.find("SelectionOptions.close_marker \"<<end>>\" is not one piece of the model's tokenizer"),
            std::string::npos)
      << message;
  EXPECT_NE(error_of([&] { pyramidion::evaluate_selection(summarizer, input, pyramidion::SelectionOptions().max_tokens(0)); })
                .find("max_tokens = 0 must be >= 1"),
            std::string::npos);
}

}  // namespace
