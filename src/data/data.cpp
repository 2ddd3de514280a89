// DocumentReader (see include/pyramidion/data.h): line-by-line JSON-lines reading, record checks
// and resumable positions.
#include <pyramidion/data.h>

#include <nlohmann/json.hpp>

#include "data/data_format.h"
#include "util/text.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace pyramidion {
namespace {

using nlohmann::json;

// A malformed record; next() prefixes "<path>:<line>: " and throws or skips it.
struct BadRecord : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string hex_byte(unsigned char c) {
  static const char digits[] = "0123456789abcdef";
  return std::string("0x") + digits[c >> 4] + digits[c & 15];
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

std::string trim(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end && is_space(s[begin])) ++begin;
  while (end > begin && is_space(s[end - 1])) --end;
  return s.substr(begin, end - begin);
}


// "key \"x\"" or "key \"x\"[3]"
std::string key_name(const char* key, int64_t index = -1) {
  std::string s = "key \"";
  s += key;
  s += '"';
  if (index >= 0) {
    s += '[';
    s += std::to_string(index);
    s += ']';
  }
  return s;
}

[[noreturn]] void wrong_type(const std::string& what, const char* expected, const json& v) {
  throw BadRecord(what + " must be " + expected + ", got " + v.type_name());
}

const json* find(const json& record, const char* key) {
  const auto it = record.find(key);
  return it == record.end() ? nullptr : &*it;
}

const json& require(const json& record, const char* key) {
  const json* v = find(record, key);
  if (!v) throw BadRecord(key_name(key) + " is missing");
  return *v;
}

// A string id as is, an integer id in decimal.
std::string read_id(const json& record, const char* key) {
  const json& v = require(record, key);
  std::string id;
  if (v.is_string()) {
    id = v.get<std::string>();
  } else if (v.is_number_unsigned()) {
    id = std::to_string(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    id = std::to_string(v.get<int64_t>());
  } else {
    wrong_type(key_name(key), "a string or an integer", v);
  }
  if (detail::is_blank(id)) throw BadRecord(key_name(key) + " is empty");
  return id;
}

// The non-empty sentences of a list of strings, trimmed and with line breaks replaced by spaces
// (a sentence per line), joined with "\n"; `strip_markers` removes the abstract's <S> ... </S>.
std::string read_sentences(const json& v, const char* key, bool strip_markers) {
  if (!v.is_array()) wrong_type(key_name(key), "a list of strings", v);
  std::string text;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& item = v[i];
    if (!item.is_string()) wrong_type(key_name(key, static_cast<int64_t>(i)), "a string", item);
    std::string sentence = trim(item.get_ref<const std::string&>());
    if (strip_markers) {
      if (sentence.compare(0, 3, "<S>") == 0) sentence.erase(0, 3);
      if (sentence.size() >= 4 && sentence.compare(sentence.size() - 4, 4, "</S>") == 0)
        sentence.erase(sentence.size() - 4);
      sentence = trim(sentence);
    }
    if (sentence.empty()) continue;
    for (char& c : sentence)
      if (c == '\n' || c == '\r') c = ' ';
    if (!text.empty()) text += '\n';
    text += sentence;
  }
  return text;
}

Document parse_arxiv(const json& record, const ReaderOptions& options) {
  Document doc;
  doc.id = read_id(record, "article_id");
  doc.document = read_sentences(require(record, "article_text"), "article_text", false);
  if (doc.document.empty())
    throw BadRecord("empty document: " + key_name("article_text") + " has no non-empty sentence");
  const json* abstract = find(record, "abstract_text");
  if (abstract && !abstract->is_null()) doc.summary = read_sentences(*abstract, "abstract_text", true);
  if (options.require_summary() && doc.summary.empty()) {
    throw BadRecord(abstract && !abstract->is_null()
                        ? "empty summary: " + key_name("abstract_text") + " has no non-empty sentence"
                        : key_name("abstract_text") + " is missing (a summary is required: require_summary)");
  }
  return doc;
}

Document parse_plain(const json& record, const ReaderOptions& options) {
  Document doc;
  doc.id = read_id(record, "id");
  const json& document = require(record, "document");
  if (!document.is_string()) wrong_type(key_name("document"), "a string", document);
  doc.document = document.get<std::string>();
  if (detail::is_blank(doc.document)) throw BadRecord("empty document: " + key_name("document") + " is blank");
  const json* summary = find(record, "summary");
  if (summary && !summary->is_null()) {
    if (!summary->is_string()) wrong_type(key_name("summary"), "a string", *summary);
    doc.summary = summary->get<std::string>();
  }
  if (options.require_summary() && detail::is_blank(doc.summary)) {
    throw BadRecord(summary && !summary->is_null()
                        ? "empty summary: " + key_name("summary") + " is blank"
                        : key_name("summary") + " is missing (a summary is required: require_summary)");
  }
  return doc;
}

// nlohmann's message without its "[json.exception.out_of_range.406] " prefix.
std::string json_error_text(const json::exception& e) {
  const std::string what = e.what();
  const size_t end = what.rfind("] ", what.find(' '));
  return what.rfind("[json.exception.", 0) == 0 && end != std::string::npos ? what.substr(end + 2) : what;
}

// nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 7: syntax error ..."
// without the prefix (the line is ours to report), keeping the column.
std::string parse_error_text(const json::parse_error& e) {
  std::string what = e.what();
  const size_t at = what.find("column ");
  if (at != std::string::npos) {
    const size_t colon = what.find(": ", at);
    if (colon != std::string::npos) return what.substr(colon + 2) + " (column " + std::to_string(e.byte) + ")";
  }
  return what;
}

Document parse_line(const std::string& line, const ReaderOptions& options) {
  // Checked on the raw line before parsing, so that the error says "invalid UTF-8" and where,
  // whatever the JSON parser would report.
  const size_t bad = detail::invalid_utf8_offset(line);
  if (bad != std::string::npos) {
    throw BadRecord("invalid UTF-8: byte " + hex_byte(static_cast<unsigned char>(line[bad])) + " at column " +
                    std::to_string(bad + 1));
  }
  json record;
  try {
    record = json::parse(line);
  } catch (const json::parse_error& e) {
    throw BadRecord("invalid JSON: " + parse_error_text(e));
  } catch (const json::exception& e) {  // out_of_range: a number no double holds (21e308)
    throw BadRecord("invalid JSON: " + json_error_text(e));
  }
  if (!record.is_object()) throw BadRecord(std::string("a record must be a JSON object, got ") + record.type_name());
  DataFormat format = options.format();
  if (format == DataFormat::automatic) {
    if (record.contains("article_text")) {
      format = DataFormat::arxiv;
    } else if (record.contains("document")) {
      format = DataFormat::plain;
    } else {
      throw BadRecord(
          "unknown record format: neither key \"article_text\" (arxiv format) nor key \"document\" (plain format)");
    }
  }
  return format == DataFormat::arxiv ? parse_arxiv(record, options) : parse_plain(record, options);
}

}  // namespace

namespace detail {
const EnumNames<DataFormat>& data_format_names() {
  static const EnumNames<DataFormat> names = {
      {DataFormat::automatic, "auto"}, {DataFormat::arxiv, "arxiv"}, {DataFormat::plain, "plain"}};
  return names;
}
}  // namespace detail

std::string to_string(DataFormat format) { return detail::name_of(detail::data_format_names(), format, "DataFormat"); }

DataFormat data_format_from_string(const std::string& name) {
  return detail::value_of(detail::data_format_names(), name, "data format");
}

DocumentReader::DocumentReader(std::string path, ReaderOptions options)
    : path_(std::move(path)), options_(options) {
  if (path_ == "-") {
    in_ = &std::cin;
    return;
  }
  auto file = std::make_unique<std::ifstream>(path_, std::ios::binary);
  if (!file->is_open()) {
    const int error = errno;
    throw std::runtime_error("cannot open data file " + path_ + ": " + std::strerror(error));
  }
  in_ = file.get();
  file_ = std::move(file);
}

DocumentReader::~DocumentReader() = default;
DocumentReader::DocumentReader(DocumentReader&&) noexcept = default;
DocumentReader& DocumentReader::operator=(DocumentReader&&) noexcept = default;

bool DocumentReader::read_line(std::string& line) {
  if (!std::getline(*in_, line)) {
    if (in_->bad())
      throw std::runtime_error(detail::display_path(path_) + ": read error after line " + std::to_string(line_) + ": " +
                               std::strerror(errno));
    return false;
  }
  // getline stops at '\n' (consumed, not stored) or at the end of the file (eof set).
  byte_offset_ += static_cast<int64_t>(line.size()) + (in_->eof() ? 0 : 1);
  ++line_;
  if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF
  return true;
}

Document parse_record(const std::string& line, const ReaderOptions& options) {
  try {
    return parse_line(line, options);
  } catch (const BadRecord& e) {
    throw std::invalid_argument(e.what());
  }
}

bool DocumentReader::next_line(std::string& line) {
  while (read_line(line))
    if (!detail::is_blank(line)) return true;
  return false;
}

bool DocumentReader::next(Document& out) {
  std::string line;
  while (next_line(line)) {
    try {
      out = parse_line(line, options_);
    } catch (const BadRecord& e) {
      std::string message = detail::display_path(path_) + ":" + std::to_string(line_) + ": " + e.what();
      if (!options_.skip_bad()) throw std::invalid_argument(message);  // bad input: status 2 in every tool
      ++skipped_;
      new_skip_reasons_.push_back(message);
      if (skip_reasons_.size() < kMaxSkipReasons) skip_reasons_.push_back(std::move(message));
      continue;
    }
    out.path = path_;
    out.line = line_;
    ++records_;
    return true;
  }
  return false;
}

DocumentReader::Position DocumentReader::position() const {
  Position p;
  p.byte_offset = byte_offset_;
  p.line = line_;
  p.records = records_;
  p.skipped = skipped_;
  return p;
}

void DocumentReader::seek(const Position& position) {
  if (!file_) throw std::runtime_error("cannot seek in standard input (data file \"-\")");
  if (position.byte_offset < 0 || position.line < 0 || position.records < 0 || position.skipped < 0) {
    throw std::invalid_argument(path_ + ": invalid position (byte_offset " + std::to_string(position.byte_offset) +
                                ", line " + std::to_string(position.line) + ", records " +
                                std::to_string(position.records) + ", skipped " + std::to_string(position.skipped) +
                                "): must not be negative");
  }
  // Checking moves the stream: a rejected position puts it back where reading left off.
  auto reject = [&](const std::string& why) {
    in_->clear();
    in_->seekg(byte_offset_);
    throw std::invalid_argument(path_ + ": position byte_offset " + std::to_string(position.byte_offset) + " " + why);
  };
  in_->clear();
  in_->seekg(0, std::ios::end);
  const int64_t size = static_cast<int64_t>(in_->tellg());
  if (position.byte_offset > size) reject("is past the end of the file (" + std::to_string(size) + " bytes)");
  if (position.byte_offset > 0 && position.byte_offset < size) {
    // A position of this file starts a line: the byte before it ends one (the end of a file
    // without a final newline is a position too).
    in_->seekg(position.byte_offset - 1);
    if (in_->get() != '\n') reject("is not at the start of a line (a position of another file?)");
  } else {
    in_->seekg(position.byte_offset);
  }
  if (!*in_) throw std::runtime_error(path_ + ": cannot seek to byte " + std::to_string(position.byte_offset));
  byte_offset_ = position.byte_offset;
  line_ = position.line;
  records_ = position.records;
  skipped_ = position.skipped;
}

std::vector<Document> read_all(const std::string& path, const ReaderOptions& options) {
  DocumentReader reader(path, options);
  std::vector<Document> documents;
  for (Document doc; reader.next(doc);) documents.push_back(std::move(doc));
  return documents;
}

}  // namespace pyramidion
