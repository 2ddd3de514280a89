// Summarization (include/pyramidion/summarizer.h and tools/summarize): batched summaries equal
// one-by-one ones, truncation, kept positions, errors, and the command line end to end on a tiny
// checkpoint trained from the bundled data.
#include <pyramidion/data.h>
#include <pyramidion/summarizer.h>
#include <pyramidion/train.h>

#include "model_fixtures.h"
#include "train_fixtures.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

namespace {

namespace fs = std::filesystem;
using pyramidion_test::error_of;
using pyramidion_test::read_text;

// A tiny checkpoint trained once for the whole suite (8 updates on 12 papers).
const std::string& tiny_checkpoint() {
  static const std::string dir = [] {
    const auto scratch = pyramidion_test::fresh_dir("summarize_ckpt");
    auto c = pyramidion_test::tiny_config(scratch);
    c.validate_every = 0;
    return pyramidion::train(c).checkpoint;
  }();
  return dir;
}

// Real test documents cut to different lengths (words), so that batches mix short and long ones
// and some are shorter than the model's 64-token window.
std::vector<pyramidion::Document> test_documents() {
  auto docs = pyramidion::read_all(pyramidion_test::kSource + "/data/aclsum/test.jsonl");
  docs.resize(6);
  const size_t words[] = {5, 12, 30, 400, 8, 2000};
  for (size_t i = 0; i < docs.size(); ++i) {
    std::string cut;
    size_t n = 0, at = 0;
    const auto& text = docs[i].document;
    while (n < words[i] && at < text.size()) {
      const auto next = text.find(' ', at);
      cut += text.substr(at, next == std::string::npos ? std::string::npos : next + 1 - at);
      at = next == std::string::npos ? text.size() : next + 1;
      ++n;
    }
    docs[i].document = cut;
  }
  return docs;
}

TEST(SummarizerLibrary, BatchedSummariesEqualOneByOne) {
  auto summarizer = pyramidion::Summarizer::load(tiny_checkpoint());
  std::vector<std::string> texts;
  for (const auto& d : test_documents()) texts.push_back(d.document);
  // A budget of 200 = documents x (longest + 2 beams x 12): batches of 2, 3 and 1 documents, the
  // second of mixed lengths (padded).
  const auto options = pyramidion::SummarizeOptions().beam_size(2).max_length(12).max_tokens(200).keep_positions(true);
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

TEST(SummarizerLibrary, ErrorsNameTheProblem) {
  auto summarizer = pyramidion::Summarizer::load(tiny_checkpoint());
  EXPECT_NE(error_of<std::invalid_argument>([&] { summarizer.summarize({"A real sentence.", ""}); })
                .find("document 1 has no tokens"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              summarizer.summarize({"text"}, pyramidion::SummarizeOptions().beam_size(0));
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

TEST(SummarizeTool, JsonLinesInOrderBadRecordsReportedAndHighlightWritten) {
  const auto dir = pyramidion_test::fresh_dir("summarize_tool");
  const auto docs = test_documents();
  {
    std::ofstream in(dir / "in.jsonl");
    for (size_t i = 0; i < docs.size(); ++i) {
      if (i == 2) in << "{\"id\": \"broken\", \"document\": \n";  // line 3: malformed
      in << nlohmann::json{{"id", docs[i].id}, {"document", docs[i].document}}.dump() << "\n";
    }
  }
  const int status = pyramidion_test::run_process(
      PYRAMIDION_SUMMARIZE_BIN,
      {"--checkpoint", tiny_checkpoint(), "--input", (dir / "in.jsonl").string(), "--output",
       (dir / "out.jsonl").string(), "--beam", "2", "--max-length", "10", "--chunk", "4", "--highlight",
       (dir / "page.html").string()},
      {}, dir / "log.txt");
  const auto log = read_text(dir / "log.txt");
  EXPECT_EQ(status, 3) << "finished, with a bad record reported: " << log;
  EXPECT_NE(log.find("in.jsonl:3:"), std::string::npos) << log;
  EXPECT_NE(log.find("docs/s"), std::string::npos) << log;
  std::ifstream out(dir / "out.jsonl");
  std::string line;
  std::vector<std::string> ids;
  while (std::getline(out, line)) {
    const auto j = nlohmann::json::parse(line);
    ids.push_back(j.at("id").get<std::string>());
    EXPECT_TRUE(j.at("summary").is_string());
    EXPECT_TRUE(j.at("score").is_number());
    EXPECT_TRUE(j.at("seconds").is_number());
  }
  std::vector<std::string> expected;
  for (const auto& d : docs) expected.push_back(d.id);
  EXPECT_EQ(ids, expected) << "every good record, in input order";
  const auto page = read_text(dir / "page.html");
  EXPECT_NE(page.find("<!DOCTYPE html>"), std::string::npos);
  for (const auto& id : expected) EXPECT_NE(page.find(id), std::string::npos) << id;
}

TEST(SummarizeTool, PlainTextFromStdinToStdout) {
  const auto dir = pyramidion_test::fresh_dir("summarize_stdin");
  std::ofstream(dir / "paper.txt") << test_documents()[3].document;
  const int status = pyramidion_test::run_process(
      PYRAMIDION_SUMMARIZE_BIN,
      {"--checkpoint", tiny_checkpoint(), "--input", "-", "--format", "text", "--output", "-", "--beam", "1"}, {},
      dir / "out.txt", dir / "paper.txt");
  const auto out = read_text(dir / "out.txt");
  EXPECT_EQ(status, 0) << out;
  const auto at = out.find("{\"id\":\"stdin\"");
  ASSERT_NE(at, std::string::npos) << out;
  const auto j = nlohmann::json::parse(out.substr(at, out.find('\n', at) - at));
  EXPECT_EQ(j.at("source_tokens").get<int64_t>(), 64);

  // A missing checkpoint is an error naming it, with nothing written.
  EXPECT_EQ(pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                         {"--checkpoint", (dir / "none").string(), "--input",
                                          (dir / "paper.txt").string(), "--output", (dir / "o.jsonl").string()},
                                         {}, dir / "err.txt"),
            1);
  EXPECT_NE(read_text(dir / "err.txt").find("none/tokenizer.model"), std::string::npos) << read_text(dir / "err.txt");
  EXPECT_FALSE(fs::exists(dir / "o.jsonl"));

  // Invalid generation options are rejected before any input is read: status 2, and an existing
  // output file is left as it was (no temporary file either).
  std::ofstream(dir / "keep.jsonl") << "previous results\n";
  EXPECT_EQ(pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                         {"--checkpoint", tiny_checkpoint(), "--input", (dir / "paper.txt").string(),
                                          "--output", (dir / "keep.jsonl").string(), "--beam", "0"},
                                         {}, dir / "beam.txt"),
            2);
  EXPECT_NE(read_text(dir / "beam.txt").find("beam_size = 0"), std::string::npos) << read_text(dir / "beam.txt");
  EXPECT_EQ(read_text(dir / "keep.jsonl"), "previous results\n");
  EXPECT_FALSE(fs::exists(dir / ".keep.jsonl.partial"));
}

}  // namespace
