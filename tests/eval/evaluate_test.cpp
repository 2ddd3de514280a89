// Tests of the evaluation job (src/eval/evaluate.cpp): reading prediction and reference files in
// every shape and every error path, matching by id (duplicates, unmatched ids, --allow-missing),
// and the report files; the scores themselves are rouge_test.cpp's.
#include <pyramidion/evaluate.h>

#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using pyramidion::EvaluateOptions;
using pyramidion_test::error_of;
using pyramidion_test::read_text;

// A fresh file under GoogleTest's temporary directory holding `content`.
std::string write_file(const std::string& content) {
  std::string pattern = ::testing::TempDir() + "pyramidion_rouge_XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  const std::string path = pattern + "/data.jsonl";
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
  return path;
}

TEST(RougeReadSummaries, SummaryAndPlainShapes) {
  const std::string path = write_file(
      "{\"id\": \"a\", \"summary\": \"One.\\nTwo.\", \"score\": -1.5}\r\n"
      "\n"
      "{\"id\": 17, \"summary\": \"\"}\n"
      "{\"id\": \"c\", \"document\": \"text\", \"summary\": \"ref\"}\n");
  const auto records = pyramidion::read_summaries(path);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].id, "a");
  EXPECT_EQ(records[0].summary, "One.\nTwo.");
  EXPECT_EQ(records[1].id, "17");
  EXPECT_EQ(records[1].summary, "");
  EXPECT_EQ(records[1].line, 3);
  EXPECT_EQ(records[2].summary, "ref");
}

TEST(RougeReadSummaries, ArxivFormatGivesTheAbstractOneSentencePerLine) {
  const std::string path = write_file(
      "{\"article_id\": \"1234.5678\", \"article_text\": [\"Body one.\", \"Body two.\"], "
      "\"abstract_text\": [\"<S> first sentence . </S>\", \"<S> second . </S>\"]}\n");
  const auto records = pyramidion::read_summaries(path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].id, "1234.5678");
  EXPECT_EQ(records[0].summary, "first sentence .\nsecond .");
}

TEST(RougeReadSummaries, MalformedRecordsNameFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"summary\": \"x\"}\n", ":1: key \"id\" is missing"},
      {"\n{\"id\": \"a\"}\n", ":2: key \"summary\" is missing"},
      {"{\"id\": [1], \"summary\": \"x\"}\n", ":1: key \"id\" must be a string or an integer"},
      {"{\"id\": \" \", \"summary\": \"x\"}\n", ":1: key \"id\" is empty"},
      {"{\"id\": \"a\", \"summary\": null}\n", ":1: key \"summary\" must be a string, got null"},
      {"{\"id\": \"a\", \"summary\": \"x\"\n", ":1: invalid JSON"},
      {"{\"id\": \"a\", \"id\": \"b\", \"summary\": \"x\"}\n", ":1: duplicate key 'id'"},
      {"{\"id\": \"a\", \"summary\": \"\xFF\"}\n", ":1: invalid JSON"},
      {"[1, 2]\n", ":1: expected a JSON object, got array"},
      {"{\"id\": \"a\", \"summary\": \"x\"}\n{\"article_id\": \"b\", \"article_text\": [\"t\"]}\n",
       ":2: an arXiv-format record"},
      {"{\"article_id\": \"b\", \"article_text\": [\"t\"], \"abstract_text\": 3}\n", ":1: "},
  };
  for (const auto& [content, expected] : cases) {
    const std::string path = write_file(content);
    const std::string message = error_of<std::invalid_argument>([&] { pyramidion::read_summaries(path); });
    EXPECT_EQ(message.rfind(path + expected, 0), 0u) << message << "\nexpected: " << path + expected;
  }
}

TEST(RougeReadSummaries, MissingFileIsAnEnvironmentError) {
  const std::string message = error_of<std::runtime_error>([] { pyramidion::read_summaries("/nonexistent/p.jsonl"); });
  EXPECT_NE(message.find("cannot open '/nonexistent/p.jsonl'"), std::string::npos) << message;
}

// {id, summary} lines of (id, text) pairs.
std::string summaries(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string text;
  for (const auto& [id, summary] : records) text += nlohmann::json{{"id", id}, {"summary", summary}}.dump() + "\n";
  return text;
}

TEST(EvaluateFiles, PairsByIdInPredictionOrderAndWritesTheReports) {
  const auto predictions = write_file(summaries({{"b", "the cat sat"}, {"a", "a dog ran"}}));
  const auto references = write_file(summaries({{"a", "a dog ran far"}, {"b", "the cat sat"}}));
  const auto dir = predictions.substr(0, predictions.rfind('/'));
  const auto e = pyramidion::evaluate_files(
      EvaluateOptions(predictions, references).json(dir + "/r.json").per_document(dir + "/d.jsonl"));
  EXPECT_EQ(e.ids, (std::vector<std::string>{"b", "a"}));
  EXPECT_DOUBLE_EQ(e.report.per_document[0].rouge1.f1, 1.0);  // b against b
  EXPECT_DOUBLE_EQ(e.report.per_document[1].rouge1.recall, 0.75);
  EXPECT_TRUE(e.report.options.rouge().use_stemmer()) << "stemming on by default, as papers report";
  const auto json = nlohmann::json::parse(read_text(dir + "/r.json"));
  EXPECT_EQ(json.at("predictions"), predictions);
  EXPECT_EQ(json.at("documents"), 2);
  EXPECT_EQ(read_text(dir + "/d.jsonl"), pyramidion::rouge_per_document_to_jsonl(e.report, e.ids));
}

TEST(EvaluateFiles, DuplicateAndUnmatchedIdsAreBadInput) {
  const auto predictions = write_file(summaries({{"a", "x"}, {"b", "y"}, {"c", "z"}}));
  const auto references = write_file(summaries({{"a", "x"}, {"d", "w"}}));
  const auto unmatched =
      error_of<std::invalid_argument>([&] { pyramidion::evaluate_files(EvaluateOptions(predictions, references)); });
  EXPECT_NE(unmatched.find("2 ids of " + predictions + " not in " + references + ": \"b\", \"c\""), std::string::npos)
      << unmatched;
  EXPECT_NE(unmatched.find("1 id of " + references + " not in " + predictions + ": \"d\""), std::string::npos);
  std::vector<std::string> warnings;
  const auto common = pyramidion::evaluate_files(
      EvaluateOptions(predictions, references).allow_missing(true).log([&](const std::string& line) {
        warnings.push_back(line);
      }));
  EXPECT_EQ(common.ids, std::vector<std::string>{"a"});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("scoring the 1 common ids"), std::string::npos) << warnings[0];

  const auto twice = write_file(summaries({{"a", "x"}, {"a", "y"}}));
  EXPECT_EQ(error_of<std::invalid_argument>([&] { pyramidion::evaluate_files(EvaluateOptions(twice, references)); }),
            twice + ":2: duplicate id \"a\" (first on line 1)");
  const auto none = write_file(summaries({{"q", "x"}}));
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              pyramidion::evaluate_files(EvaluateOptions(none, references).allow_missing(true));
            }).find("no id is in both"),
            std::string::npos);
}

TEST(EvaluateFiles, InvalidOptionsAndUnreadableFilesAreBadInput) {
  const auto ok = write_file(summaries({{"a", "x"}}));
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              pyramidion::evaluate_files(EvaluateOptions("-", "-"));
            }).find("cannot both be standard input"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              pyramidion::evaluate_files(EvaluateOptions("/nonexistent/p", ok));
            }).find("EvaluateOptions.predictions = '/nonexistent/p': no such file"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              pyramidion::evaluate_files(EvaluateOptions(ok, ok).rouge(pyramidion::RougeCorpusOptions().confidence(1)));
            }).find("confidence = 1"),
            std::string::npos);
  EXPECT_NE(error_of<std::runtime_error>([&] {
              pyramidion::evaluate_files(EvaluateOptions(ok, ok).json("/nonexistent/dir/r.json"));
            }).find("/nonexistent/dir/r.json"),
            std::string::npos);
}

}  // namespace
