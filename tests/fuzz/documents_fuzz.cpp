// Fuzz target: the JSON-lines document readers (include/pyramidion/data.h), both record formats.
//
// The input is a JSON-lines file. In memory, every line goes through parse_record() in each format
// (auto, arxiv, plain), with and without a required summary; from a file, DocumentReader reads it
// whole with skip_bad (each format), and again after seek() to every position it reported.
// Properties checked (data.h): a record that parses has a non-blank id and document, a non-empty
// summary when one is required, and in the arxiv format no empty sentence line; resuming from a
// position gives the same records as reading straight through.
#include <pyramidion/data.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.h"

namespace {

using pyramidion::DataFormat;
using pyramidion::Document;
using pyramidion::DocumentReader;
using pyramidion::ReaderOptions;
using pyramidion_fuzz::fail;

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n\f\v") == std::string::npos; }

void check_record(const Document& d, const ReaderOptions& options, const std::string& what) {
  if (blank(d.id)) fail(what + ": a record with a blank id");
  if (blank(d.document)) fail(what + ": a record with a blank document");
  if (options.require_summary() && d.summary.empty()) fail(what + ": an empty summary although one is required");
  if (options.format() == DataFormat::arxiv) {
    for (const std::string* text : {&d.document, &d.summary}) {
      if (text->empty()) continue;
      if (text->front() == '\n' || text->back() == '\n' || text->find("\n\n") != std::string::npos)
        fail(what + ": an arxiv record with an empty sentence line");
    }
  }
}

void parse_lines(const std::string& text) {
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    for (const DataFormat format : {DataFormat::automatic, DataFormat::arxiv, DataFormat::plain}) {
      for (const bool require_summary : {true, false}) {
        const auto options = ReaderOptions().format(format).require_summary(require_summary);
        Document d;
        if (pyramidion_fuzz::accepts([&] { d = pyramidion::parse_record(line, options); }))
          check_record(d, options, "parse_record(" + pyramidion::to_string(format) + ")");
      }
    }
    begin = end + 1;
  }
}

struct Read {
  std::vector<Document> records;
  std::vector<DocumentReader::Position> before;  // position() before each next() that returned one
};

Read read_through(DocumentReader& reader) {
  Read out;
  for (;;) {
    const auto position = reader.position();
    Document d;
    if (!reader.next(d)) break;
    out.records.push_back(std::move(d));
    out.before.push_back(position);
  }
  return out;
}

void read_file(const std::string& path, DataFormat format) {
  const auto options = ReaderOptions().format(format).skip_bad(true);
  Read all;
  {
    DocumentReader reader(path, options);
    all = read_through(reader);
    if (reader.skipped() < static_cast<int64_t>(reader.skip_reasons().size()))
      fail("more skip reasons than skipped records");
  }
  for (const auto& d : all.records) check_record(d, options, "DocumentReader(" + pyramidion::to_string(format) + ")");
  // Resuming at each position (at most 8 of them) reads the same records as straight through.
  const size_t step = all.before.size() / 8 + 1;
  for (size_t k = 0; k < all.before.size(); k += step) {
    DocumentReader reader(path, options);
    reader.seek(all.before[k]);  // a position it reported itself: must be accepted
    const Read rest = read_through(reader);
    if (rest.records.size() != all.records.size() - k) fail("seek: a different number of records after a seek");
    for (size_t i = 0; i < rest.records.size(); ++i) {
      const auto& a = all.records[k + i];
      const auto& b = rest.records[i];
      if (a.id != b.id || a.document != b.document || a.summary != b.summary || a.line != b.line)
        fail("seek: record " + std::to_string(k + i) + " differs after a seek");
    }
  }
  // Without skip_bad, reading stops at the first bad record with an exception, never a crash.
  pyramidion_fuzz::accepts([&] { pyramidion::read_all(path, ReaderOptions().format(format)); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = pyramidion_fuzz::text_of(data, size);
  parse_lines(text);
  static const std::string path = pyramidion_fuzz::scratch_dir() + "/input.jsonl";
  pyramidion_fuzz::write_file(path, text);
  for (const DataFormat format : {DataFormat::automatic, DataFormat::arxiv, DataFormat::plain})
    read_file(path, format);
  return 0;
}
