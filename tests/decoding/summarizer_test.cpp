// Summarization (include/pyramidion/summarizer.h): batched summaries equal one-by-one ones,
// truncation, kept positions and errors, on a tiny checkpoint trained from the bundled data.
#include <pyramidion/data.h>
#include <pyramidion/summarizer.h>
#include <pyramidion/train.h>

#include "support/model_fixtures.h"
#include "support/summarize_fixtures.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

namespace {

namespace fs = std::filesystem;
using pyramidion_test::error_of;
using pyramidion_test::test_documents;
using pyramidion_test::tiny_checkpoint;

TEST(SummarizerLibrary, BatchedSummariesEqualOneByOne) {
  auto summarizer = pyramidion::Summarizer::load(tiny_checkpoint());
  std::vector<std::string> texts;
  for (const auto& d : test_documents()) texts.push_back(d.document);
  // A budget of 200 = documents x (longest + 2 beams x 12): batches of 2, 3 and 1 documents, the
  // second of mixed lengths (padded).
  auto options = pyramidion::SummarizeOptions().max_tokens(200).keep_positions(true);
  options.search().beam_size(2).max_length(12);
  const auto batched = summarizer.summarize(texts, options);
  ASSERT_EQ(batched.size(), texts.size());
  const auto& config = summarizer.model()->config();
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto alone = summarizer.summarize({texts[i]}, options).front();
    EXPECT_EQ(batched[i].tokens, alone.tokens) << "document " << i;
    EXPECT_NEAR(batched[i].score, alone.score, 1e-5) << "document " << i;
    EXPECT_EQ(batched[i].summary, summarizer.tokenizer().decode(batched[i].tokens));
    EXPECT_LE(static_cast<int64_t>(batched[i].tokens.size()), 12);
    // Every document token comes with its byte span, as the tokenizer gives them.
    const auto pieces = summarizer.tokenizer().encode_with_offsets(texts[i]);
    ASSERT_EQ(batched[i].pieces.size(), pieces.size());
    EXPECT_EQ(static_cast<int64_t>(pieces.size()), batched[i].document_tokens);
    for (size_t j = 0; j < pieces.size(); ++j)
      EXPECT_TRUE(batched[i].pieces[j].id == pieces[j].id && batched[i].pieces[j].begin == pieces[j].begin &&
                  batched[i].pieces[j].end == pieces[j].end);
    // Kept positions: one list per pooling layer, each within what the model read, no repeats,
    // as many as the schedule keeps (or all tokens when the document is shorter).
    ASSERT_EQ(batched[i].kept.size(), 2u);
    int64_t expected = batched[i].source_tokens;
    for (size_t layer = 0; layer < 2; ++layer) {
      expected = std::min(expected, config.pooled_lengths[layer]);
      const auto& kept = batched[i].kept[layer];
      EXPECT_EQ(static_cast<int64_t>(kept.size()), expected) << "document " << i << " layer " << layer;
      EXPECT_EQ(std::set<int64_t>(kept.begin(), kept.end()).size(), kept.size());
      for (const int64_t p : kept) EXPECT_TRUE(p >= 0 && p < batched[i].source_tokens);
    }
  }
  // Documents longer than the model's window are truncated, and say so.
  EXPECT_EQ(batched[5].source_tokens, config.max_source_length);
  EXPECT_GT(batched[5].document_tokens, config.max_source_length);
  EXPECT_EQ(batched[0].source_tokens, batched[0].document_tokens);
}

// bfloat16 weights: the model converted, summaries of every document, batched as one by one (the
// computation is deterministic in any dtype); float16 is refused on a CPU.
TEST(SummarizerLibrary, BFloat16WeightsSummarizeAndFloat16NeedsCuda) {
  auto summarizer = pyramidion::Summarizer::load(tiny_checkpoint());
  EXPECT_NE(error_of<std::invalid_argument>([&] { summarizer.to(at::kCPU, pyramidion::Precision::fp16); })
                .find("runs on CUDA only"),
            std::string::npos);
  summarizer.to(at::kCPU, pyramidion::Precision::bf16);
  for (const auto& p : summarizer.model()->parameters()) ASSERT_EQ(p.scalar_type(), at::kBFloat16);
  std::vector<std::string> texts;
  for (const auto& d : test_documents()) texts.push_back(d.document);
  auto options = pyramidion::SummarizeOptions().max_tokens(200);
  options.search().beam_size(2).max_length(12);
  const auto batched = summarizer.summarize(texts, options);
  ASSERT_EQ(batched.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto alone = summarizer.summarize({texts[i]}, options).front();
    EXPECT_EQ(batched[i].tokens, alone.tokens) << "document " << i;
    EXPECT_TRUE(std::isfinite(batched[i].score));
    EXPECT_LE(static_cast<int64_t>(batched[i].tokens.size()), 12);
  }
}

TEST(SummarizerLibrary, ErrorsNameTheProblem) {
  auto summarizer = pyramidion::Summarizer::load(tiny_checkpoint());
  EXPECT_NE(error_of<std::invalid_argument>([&] { summarizer.summarize({"A real sentence.", ""}); })
                .find("document 1 has no tokens"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              summarizer.summarize({"text"}, pyramidion::SummarizeOptions().search(pyramidion::GenerateOptions().beam_size(0)));
            }).find("beam_size = 0"),
            std::string::npos);
  const auto dir = pyramidion_test::fresh_dir("summarize_errors");
  pyramidion::Seq2Seq::load(tiny_checkpoint())->save((dir / "no_tokenizer").string());
  EXPECT_NE(error_of<std::runtime_error>([&] { pyramidion::Summarizer::load((dir / "no_tokenizer").string()); })
                .find("no_tokenizer/tokenizer.model"),
            std::string::npos);
  std::ofstream(dir / "no_tokenizer" / "generation.json") << R"({"beam": 3})";
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::SummarizeOptions::from_checkpoint((dir / "no_tokenizer").string()); })
                .find("unknown key 'beam'"),
            std::string::npos);
}

}  // namespace
