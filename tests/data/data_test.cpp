// Tests of DocumentReader (src/data/data.cpp): both record formats, every error path (each message
// names the file and the line), skip_bad, blank lines, CRLF, invalid UTF-8, and resumable
// positions.
#include <pyramidion/data.h>

#include "support/model_fixtures.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using pyramidion::DataFormat;
using pyramidion::Document;
using pyramidion::DocumentReader;
using pyramidion::ReaderOptions;
using pyramidion::read_all;
using pyramidion_test::error_of;

// A fresh directory under GoogleTest's temporary directory, one per test.
std::string temp_dir() {
  std::string pattern = ::testing::TempDir() + "pyramidion_data_XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  return pattern;
}

// Writes `content` byte for byte to a new file and returns its path.
std::string write_file(const std::string& content, const std::string& name = "data.jsonl") {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
  return path;
}

std::string arxiv_line(const std::string& id, const std::string& sentences = R"(["First sentence .", "Second one ."])",
                       const std::string& abstract = R"(["<S> an abstract . </S>", "<S> two . </S>"])") {
  return R"({"article_id": ")" + id + R"(", "article_text": )" + sentences + R"(, "abstract_text": )" + abstract +
         R"(, "labels": null, "section_names": ["intro"], "sections": [["x"]]})" + "\n";
}

std::string plain_line(const std::string& id, const std::string& document = "A document.",
                       const std::string& summary = "A summary.") {
  return R"({"id": )" + id + R"(, "document": ")" + document + R"(", "summary": ")" + summary + "\"}\n";
}

// The error of reading every record of a file whose content is `content`: bad input
// (std::invalid_argument, status 2 in every tool; it was std::runtime_error, status 1).
std::string read_error(const std::string& content, ReaderOptions options = {}) {
  const std::string path = write_file(content);
  return error_of<std::invalid_argument>([&] { read_all(path, options); });
}

// ---- well-formed files ------------------------------------------------------------------------

TEST(DataReader, ReadsArxivFormat) {
  const std::string path = write_file(arxiv_line("1001.0001") + arxiv_line("1001.0002", R"(["  Only one .  "])"));
  DocumentReader reader(path);
  Document doc;
  ASSERT_TRUE(reader.next(doc));
  EXPECT_EQ(doc.id, "1001.0001");
  EXPECT_EQ(doc.document, "First sentence .\nSecond one .");
  EXPECT_EQ(doc.summary, "an abstract .\ntwo .");
  EXPECT_EQ(doc.path, path);
  EXPECT_EQ(doc.line, 1);
  ASSERT_TRUE(reader.next(doc));
  EXPECT_EQ(doc.id, "1001.0002");
  EXPECT_EQ(doc.document, "Only one .");
  EXPECT_EQ(doc.line, 2);
  EXPECT_FALSE(reader.next(doc));
  EXPECT_FALSE(reader.next(doc));  // stays at the end
  EXPECT_EQ(reader.records(), 2);
  EXPECT_EQ(reader.skipped(), 0);
}

TEST(DataReader, ArxivKeepsOneSentencePerLine) {
  // Empty sentences are dropped; a line break inside a sentence becomes a space; markers are
  // optional.
  const auto docs = read_all(write_file(arxiv_line("a", R"(["one\ntwo", "", "   ", "three\r\nfour"])",
                                                   R"(["<S>x</S>", "no markers", "<S>  </S>"])")));
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].document, "one two\nthree  four");
  EXPECT_EQ(docs[0].summary, "x\nno markers");
}

TEST(DataReader, ReadsPlainFormat) {
  const auto docs = read_all(write_file(plain_line("\"doc-1\"") + plain_line("17", "Line one.\\nLine two.", "S.") +
                                        plain_line("-3")));
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].id, "doc-1");
  EXPECT_EQ(docs[0].document, "A document.");
  EXPECT_EQ(docs[0].summary, "A summary.");
  EXPECT_EQ(docs[1].id, "17");
  EXPECT_EQ(docs[1].document, "Line one.\nLine two.");  // as given
  EXPECT_EQ(docs[1].summary, "S.");
  EXPECT_EQ(docs[2].id, "-3");
  EXPECT_EQ(docs[2].line, 3);
}

TEST(DataReader, KeepsUnicode) {
  const auto docs = read_all(write_file(plain_line("1", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \\u00e9")));
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].document, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9");
}

TEST(DataReader, AutomaticDecidesPerRecord) {
  const auto docs = read_all(write_file(plain_line("1") + arxiv_line("2") + plain_line("3")));
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].document, "A document.");
  EXPECT_EQ(docs[1].document, "First sentence .\nSecond one .");
  EXPECT_EQ(docs[2].id, "3");
}

TEST(DataReader, ForcedFormatRejectsTheOther) {
  ReaderOptions arxiv;
  arxiv.format(DataFormat::arxiv);
  EXPECT_EQ(read_all(write_file(arxiv_line("1")), arxiv).size(), 1u);
  EXPECT_NE(read_error(plain_line("1"), arxiv).find(":1: key \"article_id\" is missing"), std::string::npos)
      << read_error(plain_line("1"), arxiv);
  ReaderOptions plain;
  plain.format(DataFormat::plain);
  EXPECT_EQ(read_all(write_file(plain_line("1")), plain).size(), 1u);
  EXPECT_NE(read_error(arxiv_line("1"), plain).find(":1: key \"id\" is missing"), std::string::npos);
}

TEST(DataReader, SummaryOptionalWhenNotRequired) {
  const std::string content = R"({"id": 1, "document": "d"})"
                              "\n"
                              R"({"id": 2, "document": "d", "summary": null})"
                              "\n"
                              R"({"article_id": "3", "article_text": ["d"]})"
                              "\n";
  ReaderOptions inference;
  inference.require_summary(false);
  const auto docs = read_all(write_file(content), inference);
  ASSERT_EQ(docs.size(), 3u);
  for (const auto& doc : docs) EXPECT_EQ(doc.summary, "");
  EXPECT_EQ(read_error(content).substr(read_error(content).find(":1:")),
            ":1: key \"summary\" is missing (a summary is required: require_summary)");
  EXPECT_NE(read_error(R"({"id": 2, "document": "d", "summary": " "})").find(":1: empty summary"), std::string::npos);
  EXPECT_NE(read_error(arxiv_line("1", R"(["d"])", "[]")).find(":1: empty summary"), std::string::npos);
}

TEST(DataReader, IgnoresBlankLinesAndCountsThem) {
  const std::string path = write_file("\n   \n" + plain_line("1") + "\n\t\n" + plain_line("2") + "\n\n");
  const auto docs = read_all(path);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].line, 3);
  EXPECT_EQ(docs[1].line, 6);
}

TEST(DataReader, AcceptsCrlfLineEndings) {
  std::string content = plain_line("1") + "\r\n" + arxiv_line("2");
  std::string crlf;
  for (const char c : content) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  const auto docs = read_all(write_file(crlf));
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].summary, "A summary.");  // no trailing '\r'
  EXPECT_EQ(docs[1].id, "2");
  EXPECT_EQ(docs[1].line, 3);
  EXPECT_EQ(docs[1].summary, "an abstract .\ntwo .");
}

TEST(DataReader, LastLineWithoutNewline) {
  std::string content = plain_line("1") + plain_line("2");
  content.pop_back();
  EXPECT_EQ(read_all(write_file(content)).size(), 2u);
}

TEST(DataReader, EmptyFileHasNoRecords) {
  DocumentReader reader(write_file(""));
  Document doc;
  EXPECT_FALSE(reader.next(doc));
  EXPECT_EQ(reader.records(), 0);
  EXPECT_TRUE(read_all(write_file("\n\n \n")).empty());
}

TEST(DataReader, LongLine) {
  const std::string big(3 << 20, 'x');  // 3 MB in one record
  const auto docs = read_all(write_file(plain_line("1", big) + plain_line("2")));
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].document.size(), big.size());
}

TEST(DataReader, FormatNames) {
  for (const DataFormat f : {DataFormat::automatic, DataFormat::arxiv, DataFormat::plain})
    EXPECT_EQ(pyramidion::data_format_from_string(pyramidion::to_string(f)), f);
  EXPECT_EQ(error_of<std::invalid_argument>([] { pyramidion::data_format_from_string("json"); }),
            "data format = \"json\" must be one of \"auto\", \"arxiv\", \"plain\"");
}

// ---- errors -----------------------------------------------------------------------------------

TEST(DataErrors, MissingFileNamesPathAndReason) {
  const std::string path = temp_dir() + "/nope.jsonl";
  EXPECT_EQ(error_of<std::runtime_error>([&] { DocumentReader reader(path); }),
            "cannot open data file " + path + ": No such file or directory");
}

// Each malformed record on line 2 (after a good one) and the message expected after "<path>:".
TEST(DataErrors, MalformedRecordsNameFileLineAndProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"id": 1, "document": "d", "summary": "s")", "2: invalid JSON: syntax error while parsing object"},
      {R"(not json)", "2: invalid JSON: syntax error while parsing value"},
      {R"({"id": 1, "document": "d", "summary": "s"} {})", "2: invalid JSON: syntax error"},
      {R"(["a list"])", "2: a record must be a JSON object, got array"},
      {R"({"title": "x"})",
       "2: unknown record format: neither key \"article_text\" (arxiv format) nor key \"document\" (plain format)"},
      {R"({"document": "d", "summary": "s"})", "2: key \"id\" is missing"},
      {R"({"id": 1.5, "document": "d", "summary": "s"})", "2: key \"id\" must be a string or an integer, got number"},
      {R"({"id": "", "document": "d", "summary": "s"})", "2: key \"id\" is empty"},
      {R"({"id": 1, "document": 3, "summary": "s"})", "2: key \"document\" must be a string, got number"},
      {R"({"id": 1, "document": " \n ", "summary": "s"})", "2: empty document: key \"document\" is blank"},
      {R"({"id": 1, "document": "d", "summary": ["s"]})", "2: key \"summary\" must be a string, got array"},
      {R"({"article_id": "a", "article_text": 7, "abstract_text": []})",
       "2: key \"article_text\" must be a list of strings, got number"},
      {R"({"article_id": "a", "article_text": ["ok", 7], "abstract_text": []})",
       "2: key \"article_text\"[1] must be a string, got number"},
      {R"({"article_id": "a", "article_text": [], "abstract_text": ["<S> s </S>"]})",
       "2: empty document: key \"article_text\" has no non-empty sentence"},
      {R"({"article_id": "a", "article_text": ["d"], "abstract_text": "s"})",
       "2: key \"abstract_text\" must be a list of strings, got string"},
      {R"({"article_id": null, "article_text": ["d"], "abstract_text": ["s"]})",
       "2: key \"article_id\" must be a string or an integer, got null"},
      {R"({"id": 1, "document": "lone \ud800 surrogate", "summary": "s"})", "2: invalid JSON:"},
      // A number no double holds (found by the documents fuzzer: it escaped as nlohmann's
      // out_of_range, which no caller expects).
      {R"({"id": 1, "document": "d", "summary": "s", "year": 21e308})",
       "2: invalid JSON: number overflow parsing '21e308'"},
  };
  for (const auto& [record, expected] : cases) {
    const std::string path = write_file(plain_line("1") + record + "\n" + plain_line("3"));
    const std::string error = error_of<std::invalid_argument>([&] { read_all(path); });
    EXPECT_EQ(error.rfind(path + ":" + expected, 0), 0u) << "record: " << record << "\nerror: " << error;
  }
}

TEST(DataErrors, InvalidUtf8NamesLineAndByte) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xff\xfe", "byte 0xff at column 24"},
      {"caf\xe9", "byte 0xe9 at column 27"},                // Latin-1, not UTF-8
      {"\xc0\xaf", "byte 0xc0 at column 24"},               // overlong '/'
      {"\xed\xa0\x80", "byte 0xed at column 24"},           // surrogate U+D800
      {"\xf4\x90\x80\x80", "byte 0xf4 at column 24"},       // above U+10FFFF
      {"\xe2\x82", "byte 0xe2 at column 24"},               // truncated
      {"\x80", "byte 0x80 at column 24"},                   // continuation without a lead
  };
  for (const auto& [bytes, expected] : cases) {
    const std::string path = write_file(plain_line("1") + plain_line("2", "ok") + plain_line("3", bytes));
    const std::string error = error_of<std::invalid_argument>([&] { read_all(path); });
    EXPECT_EQ(error, path + ":3: invalid UTF-8: " + expected) << "bytes " << bytes;
  }
  // In a key or an ignored field too.
  const std::string path = write_file(R"({"id": 1, "document": "d", "summary": "s", "x)" "\xff" "\": 1}\n");
  EXPECT_EQ(error_of<std::invalid_argument>([&] { read_all(path); }), path + ":1: invalid UTF-8: byte 0xff at column 46");
}

TEST(DataErrors, SkipBadCountsAndKeepsTheFirstReasons) {
  std::string content;
  for (int i = 0; i < 15; ++i) content += plain_line(std::to_string(2 * i)) + "{bad\n";
  content += R"({"id": 99, "document": "d"})"
             "\n";  // no summary: bad too
  const std::string path = write_file(content);
  ReaderOptions options;
  options.skip_bad(true);
  DocumentReader reader(path, options);
  std::vector<int64_t> lines;
  for (Document doc; reader.next(doc);) lines.push_back(doc.line);
  ASSERT_EQ(lines.size(), 15u);
  EXPECT_EQ(lines[0], 1);
  EXPECT_EQ(lines[14], 29);
  EXPECT_EQ(reader.records(), 15);
  EXPECT_EQ(reader.skipped(), 16);
  ASSERT_EQ(reader.skip_reasons().size(), DocumentReader::kMaxSkipReasons);
  EXPECT_EQ(reader.skip_reasons()[0].rfind(path + ":2: invalid JSON: ", 0), 0u) << reader.skip_reasons()[0];
  EXPECT_EQ(reader.skip_reasons()[9].rfind(path + ":20: invalid JSON: ", 0), 0u) << reader.skip_reasons()[9];
  // Without skip_bad, the first one throws.
  const std::string error = read_error(content);
  EXPECT_NE(error.find(":2: invalid JSON: "), std::string::npos) << error;
}

// ---- positions --------------------------------------------------------------------------------

std::vector<std::string> ids_of(DocumentReader& reader, int64_t at_most = -1) {
  std::vector<std::string> ids;
  Document doc;
  while ((at_most < 0 || static_cast<int64_t>(ids.size()) < at_most) && reader.next(doc)) ids.push_back(doc.id);
  return ids;
}

TEST(DataPosition, SeekRoundTrip) {
  std::string content;
  for (int i = 0; i < 8; ++i) {
    std::string arxiv_id = "a";
    arxiv_id += std::to_string(i);
    content += i % 2 ? arxiv_line(arxiv_id) : plain_line(std::to_string(i));
    if (i == 4) content += "\n";  // a blank line
  }
  const std::string path = write_file(content);
  DocumentReader reader(path);
  EXPECT_EQ(ids_of(reader, 3), (std::vector<std::string>{"0", "a1", "2"}));
  const DocumentReader::Position saved = reader.position();
  EXPECT_EQ(saved.records, 3);
  EXPECT_EQ(saved.line, 3);
  const auto rest = ids_of(reader);
  EXPECT_EQ(rest, (std::vector<std::string>{"a3", "4", "a5", "6", "a7"}));
  EXPECT_EQ(reader.records(), 8);
  reader.seek(saved);
  EXPECT_EQ(reader.records(), 3);
  Document doc;
  ASSERT_TRUE(reader.next(doc));
  EXPECT_EQ(doc.line, 4);
  EXPECT_EQ(doc.id, "a3");
  EXPECT_EQ(ids_of(reader), (std::vector<std::string>{"4", "a5", "6", "a7"}));

  // A new reader resumes from a saved position as well (e.g. after a restart).
  DocumentReader resumed(path);
  resumed.seek(saved);
  EXPECT_EQ(ids_of(resumed), rest);
  EXPECT_EQ(resumed.records(), 8);
  EXPECT_EQ(resumed.position().byte_offset, static_cast<int64_t>(content.size()));

  // The start and the end are positions too.
  resumed.seek({});
  EXPECT_EQ(ids_of(resumed).size(), 8u);
  resumed.seek(reader.position());
  EXPECT_FALSE(resumed.next(doc));
}

TEST(DataPosition, SeekKeepsSkipCounts) {
  const std::string path = write_file(plain_line("1") + "{bad\n" + plain_line("3") + plain_line("4"));
  ReaderOptions options;
  options.skip_bad(true);
  DocumentReader reader(path, options);
  EXPECT_EQ(ids_of(reader, 2), (std::vector<std::string>{"1", "3"}));
  const auto saved = reader.position();
  EXPECT_EQ(saved.skipped, 1);
  DocumentReader resumed(path, options);
  resumed.seek(saved);
  EXPECT_EQ(ids_of(resumed), (std::vector<std::string>{"4"}));
  EXPECT_EQ(resumed.skipped(), 1);
  EXPECT_EQ(resumed.records(), 3);
}

TEST(DataPosition, SeekRejectsInvalidPositions) {
  std::string content = plain_line("1") + plain_line("2");
  const std::string path = write_file(content);
  DocumentReader reader(path);
  DocumentReader::Position p;
  p.byte_offset = 5;
  EXPECT_EQ(error_of<std::invalid_argument>([&] { reader.seek(p); }),
            path + ": position byte_offset 5 is not at the start of a line (a position of another file?)");
  p.byte_offset = static_cast<int64_t>(content.size()) + 1;
  EXPECT_EQ(error_of<std::invalid_argument>([&] { reader.seek(p); }),
            path + ": position byte_offset " + std::to_string(content.size() + 1) + " is past the end of the file (" +
                std::to_string(content.size()) + " bytes)");
  p.byte_offset = -1;
  EXPECT_NE(error_of<std::invalid_argument>([&] { reader.seek(p); }).find("must not be negative"), std::string::npos);
  // The reader still works after a rejected seek.
  EXPECT_EQ(ids_of(reader), (std::vector<std::string>{"1", "2"}));
}

TEST(DataPosition, StandardInputCannotSeek) {
  DocumentReader reader("-");
  EXPECT_EQ(reader.path(), "-");
  EXPECT_EQ(error_of<std::runtime_error>([&] { reader.seek({}); }), "cannot seek in standard input (data file \"-\")");
}

TEST(DataPosition, MovedReaderContinues) {
  DocumentReader reader(write_file(plain_line("1") + plain_line("2") + plain_line("3")));
  EXPECT_EQ(ids_of(reader, 1), (std::vector<std::string>{"1"}));
  DocumentReader moved = std::move(reader);
  EXPECT_EQ(ids_of(moved), (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(moved.records(), 3);
}

// ---- the bundled real data (scripts/get_data.sh; skipped when it has not been run) -------------

TEST(DataAclsum, BundledSplitsReadCleanly) {
  const std::string dir = std::string(PYRAMIDION_SOURCE_DIR) + "/data/aclsum/";
  ASSERT_TRUE(std::filesystem::exists(dir + "test.jsonl")) << "no " << dir << ": run scripts/get_data.sh (scripts/test.sh does)";
  ReaderOptions arxiv;
  arxiv.format(DataFormat::arxiv);
  const std::vector<std::pair<std::string, size_t>> splits = {{"train", 100}, {"valid", 50}, {"test", 100}};
  for (const auto& [split, expected] : splits) {
    const auto docs = read_all(dir + split + ".jsonl", arxiv);
    EXPECT_EQ(docs.size(), expected) << split;
    for (const auto& doc : docs) {
      EXPECT_GT(doc.document.size(), 5000u) << doc.id;  // whole papers
      EXPECT_FALSE(doc.summary.empty()) << doc.id;
      EXPECT_EQ(doc.summary.find("<S>"), std::string::npos) << doc.id;
    }
  }
}

}  // namespace
