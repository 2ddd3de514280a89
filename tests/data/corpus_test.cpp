// Tests of TokenizedCorpus and tokenize_file (src/data/corpus.cpp) on slices of the bundled data:
// the ids are the tokenizer's, limits cut or reject (counted), a huge document is tokenized only as
// far as the limits, bad and empty records are skipped only when asked, and the document limit
// holds.
#include <pyramidion/corpus.h>

#include "data/tokenizer_windows.h"
#include "support/train_fixtures.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using pyramidion::CorpusOptions;
using pyramidion::CorpusStats;
using pyramidion::Tokenizer;
using pyramidion_test::error_of;

const Tokenizer& tokenizer() { return pyramidion_test::small_tokenizer(); }

TEST(TokenizeFile, IdsAreTheTokenizersAndLimitsCutAndCount) {
  const auto dir = pyramidion_test::fresh_dir("corpus");
  const auto path = pyramidion_test::data_slice(dir, "valid", 5);
  const auto docs = pyramidion::read_all(path);
  CorpusStats stats;
  const auto whole = pyramidion::tokenize_file(path, tokenizer(), {}, &stats);
  ASSERT_EQ(whole.size(), 5);
  EXPECT_EQ(stats.documents, 5);
  EXPECT_EQ(stats.truncated_sources + stats.truncated_targets + stats.skipped, 0);
  for (int64_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(whole.id(i), docs[static_cast<size_t>(i)].id);
    EXPECT_EQ(whole.source(i), tokenizer().encode(docs[static_cast<size_t>(i)].document));
    EXPECT_EQ(whole.target(i), tokenizer().encode(docs[static_cast<size_t>(i)].summary));
  }
  const auto cut =
      pyramidion::tokenize_file(path, tokenizer(), CorpusOptions().max_source_length(64).max_target_length(31), &stats);
  EXPECT_EQ(stats.truncated_sources, 5);
  EXPECT_EQ(stats.truncated_targets, 5);
  for (int64_t i = 0; i < cut.size(); ++i) {
    const auto full = whole.source(i);
    EXPECT_EQ(cut.source(i), std::vector<int64_t>(full.begin(), full.begin() + 64));
    EXPECT_EQ(cut.target_length(i), 31);
  }
  const auto message = error_of<std::invalid_argument>(
      [&] { pyramidion::tokenize_file(path, tokenizer(), CorpusOptions().max_source_length(64).truncate(false)); });
  // Tokenized only as far as the limit: a longer side is "more than" it.
  EXPECT_NE(message.find(path + ":1: record '" + docs[0].id + "' has more than 64 source and " +
                         std::to_string(whole.target_length(0)) + " summary tokens; the model takes at most 64 and 0"),
            std::string::npos)
      << message;
  EXPECT_EQ(pyramidion::tokenize_file(path, tokenizer(), CorpusOptions().max_documents(2)).size(), 2);
}

TEST(TokenizeFile, BadAndEmptyRecordsFailOrAreSkippedAndCounted) {
  const auto dir = pyramidion_test::fresh_dir("corpus_bad");
  const auto path = (dir / "mixed.jsonl").string();
  std::ofstream(path) << R"({"id": "a", "document": "Pooling keeps the best tokens.", "summary": "Pooling."})"
                         "\n"
                      << R"({"id": "b", "document": "\u0007", "summary": "Nothing to read."})"
                         "\n"
                      << R"({"id": "c", "document": )"
                         "\n"
                      << R"({"id": "d", "document": "The decoder reads less.", "summary": "Faster."})"
                         "\n";
  EXPECT_EQ(error_of<std::invalid_argument>([&] { pyramidion::tokenize_file(path, tokenizer()); }),
            path + ":2: record 'b' has an empty document after tokenization");
  CorpusStats stats;
  const auto corpus = pyramidion::tokenize_file(
      path, tokenizer(), CorpusOptions().reader(pyramidion::ReaderOptions().skip_bad(true)), &stats);
  EXPECT_EQ(corpus.size(), 2);
  EXPECT_EQ(corpus.id(1), "d");
  EXPECT_EQ(stats.skipped, 2) << "the empty document and the malformed record";
}

// A 4 MB document on one line is tokenized only as far as the limit (sentencepiece sees the window
// that holds its first tokens, not the document), into what tokenizing it whole and cutting gives;
// a side exactly at its limit is not counted as truncated.
TEST(TokenizeFile, AHugeDocumentIsTokenizedOnlyAsFarAsTheLimit) {
  using Windows = pyramidion::detail::TokenizerWindows;
  const auto dir = pyramidion_test::fresh_dir("corpus_huge");
  const auto docs = pyramidion::read_all(pyramidion_test::data_slice(dir, "valid", 3));
  std::string huge;
  while (huge.size() < (size_t{4} << 20))
    for (const auto& d : docs) {
      std::string flat = d.document;
      std::replace(flat.begin(), flat.end(), '\n', ' ');
      huge += flat + " ";
    }
  const auto path = (dir / "huge.jsonl").string();
  {
    std::ofstream out(path);
    out << nlohmann::json{{"id", "small"}, {"document", docs[0].document}, {"summary", docs[0].summary}}.dump() << "\n"
        << nlohmann::json{{"id", "huge"}, {"document", huge}, {"summary", docs[1].summary}}.dump() << "\n";
  }
  const auto full = tokenizer().encode(huge);
  const auto summary = tokenizer().encode(docs[1].summary);
  ASSERT_GT(summary.size(), 31u);
  auto& calls = Windows::calls();
  calls = {};
  CorpusStats stats;
  const auto cut =
      pyramidion::tokenize_file(path, tokenizer(), CorpusOptions().max_source_length(64).max_target_length(31), &stats);
  EXPECT_LT(calls.bytes, static_cast<int64_t>(Windows::kWindowBytes + 20000))
      << "of a " << huge.size() << "-byte document";
  ASSERT_EQ(cut.size(), 2);
  EXPECT_EQ(stats.truncated_sources, 2);
  EXPECT_EQ(stats.truncated_targets, 2);
  EXPECT_EQ(cut.source(1), std::vector<int64_t>(full.begin(), full.begin() + 64));
  EXPECT_EQ(cut.target(1), std::vector<int64_t>(summary.begin(), summary.begin() + 31));
  // Without limits: all of it, window by window.
  calls = {};
  const auto whole = pyramidion::tokenize_file(path, tokenizer());
  EXPECT_EQ(whole.source(1), full);
  EXPECT_LE(calls.largest, static_cast<int64_t>(Windows::kWindowBytes));
  // Limits equal to the lengths cut nothing; one less cuts.
  const auto source_length = static_cast<int64_t>(tokenizer().encode(docs[0].document).size());
  const auto target_length = static_cast<int64_t>(tokenizer().encode(docs[0].summary).size());
  const auto exact = CorpusOptions().max_documents(1).max_source_length(source_length).max_target_length(target_length);
  pyramidion::tokenize_file(path, tokenizer(), exact, &stats);
  EXPECT_EQ(stats.truncated_sources + stats.truncated_targets, 0);
  EXPECT_EQ(pyramidion::tokenize_file(path, tokenizer(), CorpusOptions(exact).truncate(false)).source_length(0),
            source_length);
  pyramidion::tokenize_file(
      path, tokenizer(), CorpusOptions(exact).max_source_length(source_length - 1).max_target_length(target_length - 1),
      &stats);
  EXPECT_EQ(stats.truncated_sources, 1);
  EXPECT_EQ(stats.truncated_targets, 1);
}

}  // namespace
