// Summarization (include/pyramidion/summarizer.h): batched summaries equal one-by-one ones,
// truncation (a huge document tokenized only as far as the model reads, in bounded memory), kept
// positions and errors, on a tiny checkpoint trained from the bundled data.
#include <pyramidion/data.h>
#include <pyramidion/summarizer.h>
#include <pyramidion/train.h>

#include "data/tokenizer_windows.h"
#include "support/model_fixtures.h"
#include "support/summarize_fixtures.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
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
    // The tokens read come with their byte spans, as the tokenizer gives them, and so does the
    // first token not read.
    const auto pieces = summarizer.tokenizer().encode_with_offsets(texts[i], config.max_source_length + 1);
    ASSERT_EQ(batched[i].pieces.size(), pieces.size());
    EXPECT_EQ(static_cast<int64_t>(summarizer.tokenizer().encode(texts[i]).size()), batched[i].document_tokens);
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
  EXPECT_EQ(batched[5].pieces.size(), static_cast<size_t>(config.max_source_length + 1));
  EXPECT_EQ(batched[0].source_tokens, batched[0].document_tokens);
  EXPECT_EQ(batched[0].pieces.size(), static_cast<size_t>(batched[0].document_tokens));
}

// A 2 MB document on one line is tokenized only as far as the model reads: its summary, kept
// positions and spans are those of its beginning alone, document_tokens counts all of it, and
// sentencepiece never sees more than a window of it at once.
TEST(SummarizerLibrary, AHugeDocumentIsTokenizedOnlyAsFarAsTheModelReads) {
  using Windows = pyramidion::detail::TokenizerWindows;
  auto summarizer = pyramidion::Summarizer::load(tiny_checkpoint());
  const auto& tokenizer = summarizer.tokenizer();
  const int64_t keep = summarizer.model()->config().max_source_length;
  std::string head = test_documents()[5].document;  // 2000 words
  std::replace(head.begin(), head.end(), '\n', ' ');  // one line
  std::string huge = head;
  while (huge.size() < (size_t{2} << 20)) huge += " " + head;
  auto options = pyramidion::SummarizeOptions().keep_positions(true);
  options.search().beam_size(2).max_length(12);
  auto& calls = Windows::calls();
  calls = {};
  const auto long_one = summarizer.summarize({huge}, options).front();
  EXPECT_LE(calls.largest, static_cast<int64_t>(Windows::kWindowBytes));
  const auto short_one = summarizer.summarize({head}, options).front();
  EXPECT_EQ(long_one.tokens, short_one.tokens);
  EXPECT_EQ(long_one.kept, short_one.kept);
  EXPECT_EQ(long_one.source_tokens, keep);
  EXPECT_EQ(long_one.document_tokens, static_cast<int64_t>(tokenizer.encode(huge).size()));
  const auto pieces = tokenizer.encode_with_offsets(huge, keep + 1);
  ASSERT_EQ(long_one.pieces.size(), pieces.size());
  for (size_t j = 0; j < pieces.size(); ++j)
    EXPECT_TRUE(long_one.pieces[j].id == pieces[j].id && long_one.pieces[j].begin == pieces[j].begin &&
                long_one.pieces[j].end == pieces[j].end)
        << j;
  // Without positions: the same summary and counts.
  const auto plain = summarizer.summarize({huge}, pyramidion::SummarizeOptions(options).keep_positions(false)).front();
  EXPECT_EQ(plain.tokens, long_one.tokens);
  EXPECT_EQ(plain.document_tokens, long_one.document_tokens);
  EXPECT_TRUE(plain.pieces.empty());
}

// pyramidion-summarize on an 8 MB one-line document peaks at the memory of a small file plus the
// text's copies: tokenizing the whole document (sentencepiece takes ~200 bytes per byte of a line
// encoded at once) took 1.26 GB more before the encoding was bounded by the model's window.
TEST(SummarizerTool, AHugeDocumentTakesTheMemoryOfItsTextNotOfItsTokens) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = pyramidion_test::fresh_dir("summarize_memory");
  std::string head = test_documents()[5].document;
  std::replace(head.begin(), head.end(), '\n', ' ');  // one line, as one long sentence
  std::string huge = head;
  while (huge.size() < (size_t{8} << 20)) huge += " " + head;
  std::ofstream(dir / "small.jsonl") << nlohmann::json{{"id", "small"}, {"document", head}}.dump() << "\n";
  std::ofstream(dir / "huge.jsonl") << nlohmann::json{{"id", "huge"}, {"document", huge}}.dump() << "\n";
  // The peak resident memory of the tool on `input`, in KB.
  const auto peak_kb = [&](const std::string& name) -> long {
    const auto log = dir / (name + ".log");
    const pid_t pid = pyramidion_test::spawn_process(
        PYRAMIDION_SUMMARIZE_BIN,
        {"--checkpoint", tiny_checkpoint(), "--input", (dir / (name + ".jsonl")).string(), "--output",
         (dir / (name + ".out.jsonl")).string(), "--beam", "1", "--max-length", "5"},
        pyramidion_test::environment_with({}), log);
    int status = 0;
    rusage usage{};
    EXPECT_EQ(::wait4(pid, &status, 0, &usage), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << pyramidion_test::read_text(log);
    return usage.ru_maxrss;
  };
  const long small = peak_kb("small"), large = peak_kb("huge");
  EXPECT_LT(large - small, 256 * 1024) << "peak " << large << " KB against " << small << " KB for a small file";
  const auto out = nlohmann::json::parse(pyramidion_test::read_text(dir / "huge.out.jsonl"));
  EXPECT_EQ(out.at("source_tokens"),
            pyramidion::ModelConfig::from_json_file(tiny_checkpoint() + "/config.json").max_source_length);
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
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::Summarizer::load((dir / "no_tokenizer").string()); })
                .find("no_tokenizer/tokenizer.model"),
            std::string::npos);
  std::ofstream(dir / "no_tokenizer" / "generation.json") << R"({"beam": 3})";
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::SummarizeOptions::from_checkpoint((dir / "no_tokenizer").string()); })
                .find("unknown key 'beam'"),
            std::string::npos);
}

// A checkpoint whose config.json is of a newer format is reported as config.json's (it was
// reported as an error in generation.json, which was fine).
TEST(SummarizeOptions, AConfigOfANewerFormatIsNamedNotTheGenerationSettings) {
  const auto dir = pyramidion_test::fresh_dir("summarize_newer_config");
  const auto copy = dir / "ckpt";
  fs::copy(tiny_checkpoint(), copy, fs::copy_options::recursive);
  std::ofstream(copy / "generation.json") << R"({"beam_size": 2})";
  auto config = nlohmann::json::parse(pyramidion_test::read_text(copy / "config.json"));
  config["format_version"] = 99;
  std::ofstream(copy / "config.json") << config.dump();
  const auto message =
      error_of<std::invalid_argument>([&] { pyramidion::SummarizeOptions::from_checkpoint(copy.string()); });
  EXPECT_NE(message.find("ModelConfig::from_json_file('" + (copy / "config.json").string() + "')"), std::string::npos)
      << message;
  EXPECT_NE(message.find("format_version = 99 is newer than this library reads"), std::string::npos) << message;
  EXPECT_EQ(message.find("generation.json"), std::string::npos) << message;
}

}  // namespace
