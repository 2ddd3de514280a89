// The batch summarization job (include/pyramidion/summarize_file.h) through the library and
// through pyramidion-summarize: JSON lines in input order with the documented schema, equal to
// Summarizer's summaries; the highlight page of the whole tokenization; bad records and bad
// documents reported and skipped; a failure keeps the complete lines written before it; options
// checked before any input is read.
#include <pyramidion/highlight.h>
#include <pyramidion/summarize_file.h>

#include "support/summarize_fixtures.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using pyramidion_test::error_of;
using pyramidion_test::read_text;
using pyramidion_test::test_documents;
using pyramidion_test::tiny_checkpoint;

// The hidden entries of `dir` (temporaries and partial outputs), sorted.
std::vector<std::string> hidden_files(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string()[0] == '.') names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The documents as plain JSON lines ({id, document}) in dir/in.jsonl.
std::string write_input(const fs::path& dir, const std::vector<pyramidion::Document>& docs) {
  const auto path = dir / "in.jsonl";
  std::ofstream in(path);
  for (const auto& d : docs) in << nlohmann::json{{"id", d.id}, {"document", d.document}}.dump() << "\n";
  return path.string();
}

// The JSON lines of a file, keys in the file's order.
std::vector<nlohmann::ordered_json> read_lines(const fs::path& path) {
  std::vector<nlohmann::ordered_json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::ordered_json::parse(line));
  return out;
}

TEST(SummarizeFile, LinesInInputOrderEqualTheSummarizers) {
  const auto dir = pyramidion_test::fresh_dir("summarize_file");
  const auto docs = test_documents();
  pyramidion::SummarizeOptions search;
  search.search().beam_size(2).max_length(10);
  std::vector<std::string> progress;
  const auto result = pyramidion::summarize_file(
      pyramidion::SummarizeFileOptions(tiny_checkpoint(), write_input(dir, docs), (dir / "out.jsonl").string())
          .summarize(search)
          .chunk(4)
          .log([&](const std::string& line) { progress.push_back(line); }));
  EXPECT_EQ(result.documents, static_cast<int64_t>(docs.size()));
  EXPECT_FALSE(result.bad());
  EXPECT_EQ(progress.size(), 2u) << "a progress line per chunk of 4";
  auto summarizer = pyramidion::Summarizer::load(tiny_checkpoint());
  std::vector<std::string> texts;
  for (const auto& d : docs) texts.push_back(d.document);
  const auto expected = summarizer.summarize(texts, search);
  const auto lines = read_lines(dir / "out.jsonl");
  ASSERT_EQ(lines.size(), docs.size());
  int64_t summary_tokens = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    std::vector<std::string> keys;
    for (const auto& item : lines[i].items()) keys.push_back(item.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"id", "summary", "score", "source_tokens", "document_tokens",
                                              "summary_tokens", "seconds"}));
    EXPECT_EQ(lines[i].at("id"), docs[i].id);
    EXPECT_EQ(lines[i].at("summary"), expected[i].summary);
    EXPECT_EQ(lines[i].at("summary_tokens"), expected[i].tokens.size());
    EXPECT_EQ(lines[i].at("source_tokens"), expected[i].source_tokens);
    EXPECT_EQ(lines[i].at("document_tokens"), expected[i].document_tokens);
    summary_tokens += static_cast<int64_t>(expected[i].tokens.size());
  }
  EXPECT_EQ(result.summary_tokens, summary_tokens);
  EXPECT_EQ(hidden_files(dir), std::vector<std::string>{}) << "the temporary output was renamed";
}

// The highlight page shows every token, read or not, although the Summarizer tokenizes a long
// document only as far as the model reads: it is the page of the whole tokenization.
TEST(SummarizeFile, TheHighlightPageCountsTheTokensNotRead) {
  const auto dir = pyramidion_test::fresh_dir("summarize_highlight");
  const auto docs = test_documents();  // the last one is longer than the model reads
  pyramidion::SummarizeOptions search;
  search.search().beam_size(2).max_length(10);
  pyramidion::summarize_file(
      pyramidion::SummarizeFileOptions(tiny_checkpoint(), write_input(dir, docs), (dir / "out.jsonl").string())
          .summarize(search)
          .highlight((dir / "page.html").string()));
  auto summarizer = pyramidion::Summarizer::load(tiny_checkpoint());
  std::vector<std::string> texts;
  for (const auto& d : docs) texts.push_back(d.document);
  const auto summaries = summarizer.summarize(texts, pyramidion::SummarizeOptions(search).keep_positions(true));
  std::vector<pyramidion::HighlightDocument> pages;
  for (size_t i = 0; i < docs.size(); ++i) {
    pyramidion::HighlightDocument page;
    page.id = docs[i].id;
    page.text = docs[i].document;
    for (const auto& piece : summarizer.tokenizer().encode_with_offsets(page.text))
      page.tokens.push_back({piece.begin, piece.end});
    page.tokens_read = summaries[i].source_tokens;
    page.kept = summaries[i].kept;
    for (const int64_t k : summarizer.model()->config().pooled_lengths)
      if (k > 0) page.layer_lengths.push_back(k);
    page.summary = summaries[i].summary;
    pages.push_back(page);
  }
  ASSERT_LT(pages.back().tokens_read, static_cast<int64_t>(pages.back().tokens.size()));
  EXPECT_EQ(read_text(dir / "page.html"), pyramidion::render_highlight_html(pages));
}

TEST(SummarizeFile, AFailureKeepsTheCompleteLinesWrittenBeforeIt) {
  const auto dir = pyramidion_test::fresh_dir("summarize_fail");
  const auto docs = test_documents();
  std::ofstream(dir / "out.jsonl") << "previous results\n";
  // The progress line after the first chunk (written and flushed) fails: the job stops there.
  const auto options =
      pyramidion::SummarizeFileOptions(tiny_checkpoint(), write_input(dir, docs), (dir / "out.jsonl").string())
          .summarize(pyramidion::SummarizeOptions().search(pyramidion::GenerateOptions().max_length(6)))
          .chunk(4)
          .log([](const std::string&) { throw std::runtime_error("injected fault"); });
  const auto message = error_of<std::runtime_error>([&] { pyramidion::summarize_file(options); });
  EXPECT_NE(message.find("injected fault"), std::string::npos) << message;
  EXPECT_NE(message.find("the 4 summaries written before the failure are in '" + (dir / ".out.jsonl.partial").string()),
            std::string::npos)
      << message;
  EXPECT_EQ(read_text(dir / "out.jsonl"), "previous results\n") << "the output is never replaced by a failed run";
  const auto kept = read_lines(dir / ".out.jsonl.partial");
  ASSERT_EQ(kept.size(), 4u);
  for (size_t i = 0; i < kept.size(); ++i) EXPECT_EQ(kept[i].at("id"), docs[i].id);
  EXPECT_EQ(hidden_files(dir), std::vector<std::string>{".out.jsonl.partial"}) << "no temporary left";
}

// A stop request (pyramidion-summarize's SIGINT/SIGTERM handler sets it) ends the job after the
// current chunk like a failure: the output untouched, the summaries written kept in the .partial
// file. (A signal used to kill the job and the next run deleted its temporary file: all lost.)
TEST(SummarizeFile, AStopRequestKeepsTheSummariesWrittenSoFar) {
  const auto dir = pyramidion_test::fresh_dir("summarize_stop");
  const auto docs = test_documents();
  std::atomic<bool> stop{false};
  const auto options =
      pyramidion::SummarizeFileOptions(tiny_checkpoint(), write_input(dir, docs), (dir / "out.jsonl").string())
          .summarize(pyramidion::SummarizeOptions().search(pyramidion::GenerateOptions().max_length(6)))
          .chunk(4)
          .log([&](const std::string&) { stop = true; })  // asked during the first chunk's progress line
          .stop(&stop);
  const auto message = error_of<std::runtime_error>([&] { pyramidion::summarize_file(options); });
  EXPECT_NE(message.find("stopped by request after 4 documents (the 4 summaries written before the failure are in '" +
                         (dir / ".out.jsonl.partial").string()),
            std::string::npos)
      << message;
  EXPECT_FALSE(fs::exists(dir / "out.jsonl"));
  const auto kept = read_lines(dir / ".out.jsonl.partial");
  ASSERT_EQ(kept.size(), 4u);
  for (size_t i = 0; i < kept.size(); ++i) EXPECT_EQ(kept[i].at("id"), docs[i].id);
}

TEST(SummarizeFile, OptionsAreCheckedBeforeAnyInputIsRead) {
  const auto dir = pyramidion_test::fresh_dir("summarize_options");
  const auto missing = (dir / "never-read.jsonl").string();  // bad input, found after the options
  const auto job = [&] {
    return pyramidion::SummarizeFileOptions(tiny_checkpoint(), missing, (dir / "o.jsonl").string());
  };
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::summarize_file(job().chunk(0)); }).find("chunk = 0"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              pyramidion::summarize_file(
                  job().summarize(pyramidion::SummarizeOptions().search(pyramidion::GenerateOptions().max_length(1000))));
            }).find("max_length = 1000"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::summarize_file(job()); }).find("never-read.jsonl': no such file"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "o.jsonl"));
  EXPECT_EQ(hidden_files(dir), std::vector<std::string>{});
  for (const auto* name : {"auto", "arxiv", "plain", "text"})
    EXPECT_EQ(pyramidion::to_string(pyramidion::input_format_from_string(name)), name);
  EXPECT_EQ(error_of<std::invalid_argument>([] { pyramidion::input_format_from_string("automatic"); }),
            "input format = \"automatic\" must be one of \"auto\", \"arxiv\", \"plain\", \"text\"");
}

// A document that tokenizes to no token (control characters only) is skipped and reported with its
// file and line, as a malformed record is (it used to be named by its id alone).
TEST(SummarizeFile, ADocumentWithoutTokensIsReportedWithItsFileAndLine) {
  const auto dir = pyramidion_test::fresh_dir("summarize_no_tokens");
  auto docs = test_documents();
  docs.resize(3);
  docs[1].id = "bell";
  docs[1].document = "\x07\x07";
  const auto in = write_input(dir, docs);
  std::vector<std::string> log;
  const auto result = pyramidion::summarize_file(
      pyramidion::SummarizeFileOptions(tiny_checkpoint(), in, (dir / "out.jsonl").string())
          .summarize(pyramidion::SummarizeOptions().search(pyramidion::GenerateOptions().max_length(4)))
          .log([&](const std::string& line) { log.push_back(line); }));
  EXPECT_EQ(result.documents, 2);
  EXPECT_EQ(result.bad_documents, 1);
  std::string all;
  for (const auto& line : log) all += line + "\n";
  EXPECT_NE(all.find(in + ":2: document 'bell' skipped: "), std::string::npos) << all;
  EXPECT_NE(all.find("has no tokens"), std::string::npos) << all;
}

TEST(SummarizeTool, JsonLinesInOrderBadRecordsReportedAndHighlightWritten) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = pyramidion_test::fresh_dir("summarize_tool");
  const auto docs = test_documents();
  {
    std::ofstream in(dir / "in.jsonl");
    for (size_t i = 0; i < docs.size(); ++i) {
      if (i == 2) in << "{\"id\": \"broken\", \"document\": \n";  // line 3: malformed
      in << nlohmann::json{{"id", docs[i].id}, {"document", docs[i].document}}.dump() << "\n";
    }
  }
  const int status =
      pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                   {"--checkpoint", tiny_checkpoint(), "--input", (dir / "in.jsonl").string(),
                                    "--output", (dir / "out.jsonl").string(), "--beam", "2", "--max-length", "10",
                                    "--chunk", "4", "--highlight", (dir / "page.html").string()},
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
  PYRAMIDION_REQUIRE_TOOLS();
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

  // A missing checkpoint is bad input naming it, with nothing written.
  EXPECT_EQ(pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                         {"--checkpoint", (dir / "none").string(), "--input",
                                          (dir / "paper.txt").string(), "--output", (dir / "o.jsonl").string()},
                                         {}, dir / "err.txt"),
            2);
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
  // bfloat16 weights work on the CPU; float16 is bad input there.
  EXPECT_EQ(pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                         {"--checkpoint", tiny_checkpoint(), "--input", (dir / "paper.txt").string(),
                                          "--output", (dir / "bf16.jsonl").string(), "--precision", "bf16"},
                                         {}, dir / "bf16.txt"),
            0)
      << read_text(dir / "bf16.txt");
  EXPECT_NE(read_text(dir / "bf16.jsonl").find("\"summary\""), std::string::npos);
  EXPECT_EQ(pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                         {"--checkpoint", tiny_checkpoint(), "--input", (dir / "paper.txt").string(),
                                          "--output", (dir / "keep.jsonl").string(), "--precision", "fp16"},
                                         {}, dir / "fp16.txt"),
            2);
  EXPECT_NE(read_text(dir / "fp16.txt").find("runs on CUDA only"), std::string::npos) << read_text(dir / "fp16.txt");
  // int8 weights work on the CPU in fp32; another scheme, or int8 over bf16, is bad input.
  EXPECT_EQ(pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                         {"--checkpoint", tiny_checkpoint(), "--input", (dir / "paper.txt").string(),
                                          "--output", (dir / "int8.jsonl").string(), "--quantize", "int8"},
                                         {}, dir / "int8.txt"),
            0)
      << read_text(dir / "int8.txt");
  EXPECT_NE(read_text(dir / "int8.jsonl").find("\"summary\""), std::string::npos);
  EXPECT_EQ(pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                         {"--checkpoint", tiny_checkpoint(), "--input", (dir / "paper.txt").string(),
                                          "--output", (dir / "keep.jsonl").string(), "--quantize", "int4"},
                                         {}, dir / "int4.txt"),
            2);
  EXPECT_NE(read_text(dir / "int4.txt").find("--quantize = \"int4\" must be one of \"none\", \"int8\""),
            std::string::npos)
      << read_text(dir / "int4.txt");
  EXPECT_EQ(pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                         {"--checkpoint", tiny_checkpoint(), "--input", (dir / "paper.txt").string(),
                                          "--output", (dir / "keep.jsonl").string(), "--quantize", "int8",
                                          "--precision", "bf16"},
                                         {}, dir / "int8bf16.txt"),
            2);
  EXPECT_NE(read_text(dir / "int8bf16.txt").find("needs precision \"fp32\""), std::string::npos)
      << read_text(dir / "int8bf16.txt");
  // A flag that is not a number, or an unknown format: bad input too, before any work.
  EXPECT_EQ(pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                         {"--checkpoint", tiny_checkpoint(), "--input", (dir / "paper.txt").string(),
                                          "--output", (dir / "keep.jsonl").string(), "--beam", "four"},
                                         {}, dir / "flag.txt"),
            2)
      << read_text(dir / "flag.txt");
  EXPECT_EQ(pyramidion_test::run_process(PYRAMIDION_SUMMARIZE_BIN,
                                         {"--checkpoint", tiny_checkpoint(), "--input", (dir / "paper.txt").string(),
                                          "--output", (dir / "keep.jsonl").string(), "--format", "automatic"},
                                         {}, dir / "format.txt"),
            2)
      << read_text(dir / "format.txt");
  EXPECT_EQ(read_text(dir / "keep.jsonl"), "previous results\n");
  EXPECT_EQ(hidden_files(dir), std::vector<std::string>{}) << "no temporary or partial file either";
}

}  // namespace
