// Tests of TokenizedCorpus and tokenize_file (src/data/corpus.cpp) on slices of the bundled data:
// the ids are the tokenizer's, limits cut or reject (counted), bad and empty records are skipped
// only when asked, and the document limit holds.
#include <pyramidion/corpus.h>

#include "support/train_fixtures.h"

#include <gtest/gtest.h>

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
  const auto message = error_of<std::runtime_error>(
      [&] { pyramidion::tokenize_file(path, tokenizer(), CorpusOptions().max_source_length(64).truncate(false)); });
  EXPECT_NE(message.find(path + ":1: record '" + docs[0].id + "' has " + std::to_string(whole.source_length(0)) +
                         " source and"),
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
  EXPECT_EQ(error_of<std::runtime_error>([&] { pyramidion::tokenize_file(path, tokenizer()); }),
            path + ":2: record 'b' has an empty document after tokenization");
  CorpusStats stats;
  const auto corpus = pyramidion::tokenize_file(
      path, tokenizer(), CorpusOptions().reader(pyramidion::ReaderOptions().skip_bad(true)), &stats);
  EXPECT_EQ(corpus.size(), 2);
  EXPECT_EQ(corpus.id(1), "d");
  EXPECT_EQ(stats.skipped, 2) << "the empty document and the malformed record";
}

}  // namespace
