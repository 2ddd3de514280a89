// DocumentReader: streams (document, summary) pairs from JSON-lines files, one record per line.
//
// Two record formats (docs/data.md):
//   arxiv  the arXiv/PubMed release format of Cohan et al. 2018 (arXiv 1804.05685):
//            {"article_id": "1234.5678", "article_text": ["sentence", ...],
//             "abstract_text": ["<S> sentence . </S>", ...], ...other keys ignored}
//          document = the article sentences, trimmed, empty ones dropped, one per line ("\n"
//          between them; a line break inside a sentence becomes a space, so that a line is
//          always a sentence); summary = the abstract sentences with their <S> </S> markers
//          stripped, trimmed, empty ones dropped, joined with "\n".
//   plain  {"id": "x" or 17, "document": "...", "summary": "...", ...other keys ignored}
//          document and summary as given.
// DataFormat::automatic ("auto") decides per record: "article_text" present -> arxiv, else
// "document" present -> plain.
//
// Files are read line by line (a multi-GB file is never held in memory); blank lines are ignored;
// CRLF line endings are accepted. A malformed record (invalid UTF-8, invalid JSON, a missing key
// or a value of the wrong type, an empty document, an empty or missing summary when one is
// required) is an error whose message starts with "<path>:<line>: ", or, with skip_bad, is
// skipped and counted.
//
// This header needs no JSON library and of LibTorch only torch/arg.h (the options macro): it
// compiles as C++17.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pyramidion {

/// One example: a document to summarise and its reference summary.
struct Document {
  /// article_id (arxiv) or id (plain); an integer id is written in decimal.
  std::string id;
  /// The text to summarise; in the arxiv format, one sentence per line.
  std::string document;
  /// The reference summary; in the arxiv format, one sentence per line. Empty only when it was
  /// absent (or null) and ReaderOptions::require_summary is false.
  std::string summary;
  /// Where it came from: the path given to the reader ("-" for standard input) and the 1-based
  /// line number of its record.
  std::string path;
  int64_t line = 0;
};

/// The record format of a JSON-lines file (see the top of this file); its names are "auto",
/// "arxiv" and "plain".
enum class DataFormat { automatic, arxiv, plain };

/// "auto" / "arxiv" / "plain"; throws std::invalid_argument for a value outside the enum.
std::string to_string(DataFormat format);
/// The inverse of to_string; throws std::invalid_argument naming the value and the allowed ones.
DataFormat data_format_from_string(const std::string& name);

struct ReaderOptions {
  /// The record format; automatic decides per record by its keys.
  TORCH_ARG(DataFormat, format) = DataFormat::automatic;
  /// Skip malformed records (counted in DocumentReader::skipped()) instead of throwing.
  TORCH_ARG(bool, skip_bad) = false;
  /// A record without a summary (key absent or null, or no non-empty abstract sentence) is
  /// malformed. False for inference inputs: the summary is then left empty.
  TORCH_ARG(bool, require_summary) = true;
};

/// Streams the records of one JSON-lines file. Not copyable; movable.
///
///   pyramidion::DocumentReader reader("data/aclsum/train.jsonl");
///   for (pyramidion::Document doc; reader.next(doc);) use(doc.document, doc.summary);
class DocumentReader {
 public:
  /// At most this many skip reasons are kept (skipped() counts them all).
  static constexpr size_t kMaxSkipReasons = 10;

  /// Where the reader is, to resume reading later (e.g. from a training checkpoint).
  struct Position {
    /// Offset in the file of the next line to read; always the start of a line.
    int64_t byte_offset = 0;
    /// Lines read so far (blank ones included): the next record is on line `line + 1`.
    int64_t line = 0;
    /// Records returned so far (records()).
    int64_t records = 0;
    /// Records skipped so far (skipped()).
    int64_t skipped = 0;
  };

  /// Opens `path` ("-" = standard input). Throws std::runtime_error naming the path and the
  /// system's reason when it cannot be opened.
  explicit DocumentReader(std::string path, ReaderOptions options = {});
  ~DocumentReader();
  DocumentReader(DocumentReader&&) noexcept;
  DocumentReader& operator=(DocumentReader&&) noexcept;
  DocumentReader(const DocumentReader&) = delete;
  DocumentReader& operator=(const DocumentReader&) = delete;

  /// Reads the next record into `out`; false at the end of the file (at once for an empty file).
  /// Throws std::invalid_argument "<path>:<line>: <what is wrong>" for a malformed record (unless
  /// skip_bad: bad input, status 2 in every tool) and std::runtime_error "<path>: read error:
  /// <reason>" when reading fails.
  bool next(Document& out);

  /// The next non-blank line, unparsed (CRLF's '\r' removed), for a caller that parses records
  /// elsewhere (several threads) with parse_record(); its number is position().line. False at the
  /// end of the file. Throws std::runtime_error "<path>: read error: <reason>" when reading fails.
  bool next_line(std::string& line);

  /// Records returned by next() so far.
  int64_t records() const { return records_; }
  /// Malformed records skipped so far (only with skip_bad).
  int64_t skipped() const { return skipped_; }
  /// The messages of the first kMaxSkipReasons skipped records, each "<path>:<line>: <what>".
  const std::vector<std::string>& skip_reasons() const { return skip_reasons_; }
  /// The messages of the records skipped since the last call (all of them, not only the first
  /// kMaxSkipReasons): for a caller that reports every bad record as it goes.
  std::vector<std::string> take_new_skip_reasons() { return std::exchange(new_skip_reasons_, {}); }

  const std::string& path() const { return path_; }
  const ReaderOptions& options() const { return options_; }

  /// The current position, for seek().
  Position position() const;
  /// Continues reading from `position`, a value that position() returned for the same file
  /// (records() and skipped() are restored from it). Throws std::runtime_error for standard
  /// input, which cannot seek, and std::invalid_argument for a position that is negative, past
  /// the end of the file or not at the start of a line.
  void seek(const Position& position);

 private:
  bool read_line(std::string& line);

  std::string path_;
  ReaderOptions options_;
  std::unique_ptr<std::istream> file_;  // null when reading standard input
  std::istream* in_ = nullptr;          // file_ or std::cin
  int64_t byte_offset_ = 0;
  int64_t line_ = 0;
  int64_t records_ = 0;
  int64_t skipped_ = 0;
  std::vector<std::string> skip_reasons_;
  std::vector<std::string> new_skip_reasons_;
};

/// The record of one line of a JSON-lines file, as DocumentReader::next() reads it (path and line
/// left empty). Throws std::invalid_argument with what is wrong (no path or line number in it)
/// for a malformed record.
Document parse_record(const std::string& line, const ReaderOptions& options = {});

/// Every record of a (small) file, in order; errors as DocumentReader::next().
std::vector<Document> read_all(const std::string& path, const ReaderOptions& options = {});

}  // namespace pyramidion
