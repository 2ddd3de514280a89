// summarize_file() (see include/pyramidion/summarize_file.h): read in chunks, summarize, write
// JSON lines in input order, retry a failing chunk document by document, collect the highlight
// page.
#include <pyramidion/summarize_file.h>

#include <pyramidion/data.h>
#include <pyramidion/highlight.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/output_file.h"
#include "util/enum_names.h"
#include "util/paths.h"
#include "util/text.h"

namespace pyramidion {
namespace {

namespace fs = std::filesystem;

const detail::EnumNames<InputFormat>& input_format_names() {
  static const detail::EnumNames<InputFormat> names = {{InputFormat::automatic, "auto"},
                                                       {InputFormat::arxiv, "arxiv"},
                                                       {InputFormat::plain, "plain"},
                                                       {InputFormat::text, "text"}};
  return names;
}

struct Input {
  std::string id;
  std::string text;
  std::string reference;
  std::string where;  // "<file>:<line>" (or the file, for a plain-text document), for messages
};

// The documents: JSON lines (arXiv or plain) through DocumentReader, or one plain-text document
// (a file or stdin). Bad records are reported to the log and skipped.
class InputStream {
 public:
  InputStream(const std::string& path, InputFormat format, const SummarizeFileOptions::Log& log)
      : path_(path), log_(log) {
    const auto extension = fs::path(path).extension();
    const bool jsonl =
        format == InputFormat::arxiv || format == InputFormat::plain ||
        (format == InputFormat::automatic && (path == "-" || extension == ".jsonl" || extension == ".json"));
    if (!jsonl) {
      if (path == "-") {
        std::ostringstream text;
        text << std::cin.rdbuf();
        text_ = text.str();
      } else {
        text_ = detail::read_file("summarize_file", path);
      }
      if (text_.find_first_not_of(" \t\r\n\f\v") == std::string::npos)
        throw std::invalid_argument("summarize_file: " + std::string(path == "-" ? "standard input" : "'" + path + "'") +
                                    " has no text (" + std::to_string(text_.size()) + " bytes of whitespace)");
      return;
    }
    const auto data_format = format == InputFormat::arxiv   ? DataFormat::arxiv
                             : format == InputFormat::plain ? DataFormat::plain
                                                            : DataFormat::automatic;
    reader_ = std::make_unique<DocumentReader>(
        path, ReaderOptions().format(data_format).skip_bad(true).require_summary(false));
  }

  bool next(Input& out) {
    if (!reader_) {
      if (done_) return false;
      done_ = true;
      out = {path_ == "-" ? "stdin" : fs::path(path_).stem().string(), text_, "", detail::display_path(path_)};
      return true;
    }
    Document doc;
    const bool got = reader_->next(doc);
    for (const auto& reason : reader_->take_new_skip_reasons())
      if (log_) log_("skipped a bad record: " + reason);
    if (!got) return false;
    out = {doc.id, doc.document, doc.summary, detail::display_path(path_) + ":" + std::to_string(doc.line)};
    return true;
  }
  int64_t skipped() const { return reader_ ? reader_->skipped() : 0; }

 private:
  std::string path_;
  const SummarizeFileOptions::Log& log_;
  std::unique_ptr<DocumentReader> reader_;
  std::string text_;
  bool done_ = false;
};

// Where the JSON lines go: the output file (util/output_file.h: replaced atomically at the end
// when it is a regular file, written through when it is standard output, a pipe or a device).
class Output {
 public:
  explicit Output(const std::string& path) : file_("summarize_file", path) {}
  void write(const std::string& lines) {
    file_.write(lines);
    file_.flush();
  }
  void commit() { file_.commit(); }
  // After a failure: where the summaries written so far are (" (the N summaries ... are in
  // '<path>')"), or "" when there are none (the temporary is then removed).
  std::string keep(int64_t documents) {
    if (documents == 0) return "";
    if (file_.through())
      return " (the " + std::to_string(documents) + " summaries written before the failure went to " + file_.shown() +
             ")";
    try {
      const std::string partial = file_.keep_as_partial();
      if (partial.empty()) return "";
      return " (the " + std::to_string(documents) + " summaries written before the failure are in '" + partial + "')";
    } catch (const std::exception& e) {
      return std::string(" (") + e.what() + ")";
    }
  }

 private:
  detail::OutputFile file_;
};

// One output line (the schema of the file's top comment).
std::string output_line(const Input& doc, const Summary& s) {
  nlohmann::ordered_json line;
  line["id"] = doc.id;
  line["summary"] = s.summary;
  line["score"] = s.score;
  line["source_tokens"] = s.source_tokens;
  line["document_tokens"] = s.document_tokens;
  line["summary_tokens"] = s.tokens.size();
  line["seconds"] = s.seconds;
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// The summaries of one chunk, in order; a document that cannot be summarized (std::invalid_argument,
// e.g. no tokens) is reported and left empty (nullopt), and the others are summarized one by one.
std::vector<std::optional<Summary>> summarize_chunk(Summarizer& summarizer, const std::vector<Input>& chunk,
                                                    const SummarizeOptions& options,
                                                    const SummarizeFileOptions::Log& log) {
  std::vector<std::string> texts;
  for (const auto& d : chunk) texts.push_back(d.text);
  std::vector<std::optional<Summary>> out;
  try {
    for (auto& s : summarizer.summarize(texts, options)) out.emplace_back(std::move(s));
    return out;
  } catch (const std::invalid_argument&) {
    out.clear();  // one bad document must not stop the others: retry one by one
  }
  for (size_t i = 0; i < chunk.size(); ++i) {
    try {
      out.emplace_back(summarizer.summarize({texts[i]}, options).front());
    } catch (const std::invalid_argument& e) {
      if (log) log(chunk[i].where + ": document '" + chunk[i].id + "' skipped: " + e.what());
      out.emplace_back();
    }
  }
  return out;
}

void check(const SummarizeFileOptions& o) {
  if (o.chunk() < 1)
    throw std::invalid_argument("SummarizeFileOptions.chunk = " + std::to_string(o.chunk()) + " must be >= 1");
  if (o.highlight_max_docs() < 1)
    throw std::invalid_argument("SummarizeFileOptions.highlight_max_docs = " + std::to_string(o.highlight_max_docs()) +
                                " must be >= 1");
  detail::check_output_file("SummarizeFileOptions.output", o.output());
  detail::check_not_an_input("SummarizeFileOptions.output", o.output(), {{"SummarizeFileOptions.input", o.input()}});
  if (!o.highlight().empty()) {
    detail::check_output_file("SummarizeFileOptions.highlight", o.highlight());
    detail::check_not_an_input("SummarizeFileOptions.highlight", o.highlight(),
                               {{"SummarizeFileOptions.input", o.input()}, {"SummarizeFileOptions.output", o.output()}});
    if (o.highlight() == o.output())
      throw std::invalid_argument("SummarizeFileOptions.highlight = '" + o.highlight() +
                                  "' is also the output; give the page another name");
  }
}

}  // namespace

std::string to_string(InputFormat format) { return detail::name_of(input_format_names(), format, "InputFormat"); }

InputFormat input_format_from_string(const std::string& name) {
  return detail::value_of(input_format_names(), name, "input format");
}

SummarizeFileResult summarize_file(const SummarizeFileOptions& options) {
  check(options);
  const auto& log = options.log();
  const auto device = options.device().resolve();
  check_precision(options.precision(), device);  // before the checkpoint is read
  check_quantization(options.quantization(), options.precision(), device);
  auto summarizer = Summarizer::load(options.checkpoint());
  summarizer.to(device, options.precision(), options.quantization());
  auto summarize = options.summarize();
  summarize.keep_positions(!options.highlight().empty());
  summarize.check(summarizer.model()->config());  // before any input is read
  if (options.input() != "-") detail::check_input_file("SummarizeFileOptions.input", options.input());
  InputStream in(options.input(), options.format(), log);
  if (!detail::writes_through(options.output())) detail::remove_temporaries_of(options.output());  // of a killed run
  Output out(options.output());

  SummarizeFileResult result;
  std::vector<HighlightDocument> pages;
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  try {
    std::vector<Input> chunk;
    for (bool more = true; more;) {
      chunk.clear();
      Input doc;
      if (options.stop() && options.stop()->load())
        throw std::runtime_error("stopped by request after " + std::to_string(result.documents) + " documents");
      while (static_cast<int64_t>(chunk.size()) < options.chunk() && (more = in.next(doc))) chunk.push_back(doc);
      if (chunk.empty()) break;
      const auto summaries = summarize_chunk(summarizer, chunk, summarize, log);
      std::string lines;
      SummarizeFileResult written;  // what this chunk adds, counted once it is on disk
      for (size_t i = 0; i < chunk.size(); ++i) {
        if (!summaries[i]) {
          ++written.bad_documents;
          continue;
        }
        const Summary& s = *summaries[i];
        lines += output_line(chunk[i], s);
        ++written.documents;
        written.source_tokens += s.source_tokens;
        written.summary_tokens += static_cast<int64_t>(s.tokens.size());
        if (!options.highlight().empty() && static_cast<int64_t>(pages.size()) < options.highlight_max_docs())
          pages.push_back(highlight_document(chunk[i].id, chunk[i].text, chunk[i].reference, s,
                                                summarizer.model()->config()));
      }
      out.write(lines);
      result.documents += written.documents;
      result.bad_documents += written.bad_documents;
      result.source_tokens += written.source_tokens;
      result.summary_tokens += written.summary_tokens;
      const double seconds = elapsed();
      if (log)
        log(std::to_string(result.documents) + " documents, " +
            std::to_string(static_cast<int64_t>(result.documents / seconds)) + " docs/s, " +
            std::to_string(static_cast<int64_t>(result.source_tokens / seconds)) + " source tokens/s, " +
            std::to_string(static_cast<int64_t>(result.summary_tokens / seconds)) + " summary tokens/s");
    }
    if (result.documents == 0 && result.bad_documents == 0 && in.skipped() > 0)
      throw std::invalid_argument(
          "none of the " + std::to_string(in.skipped()) + " records of " +
          (options.input() == "-" ? std::string("standard input") : "'" + options.input() + "'") +
          " could be read (reasons above)" +
          (options.format() == InputFormat::automatic
               ? "; it was read as JSON lines: if it is plain text, pass --format text (InputFormat::text)"
               : "") +
          "; '" + options.output() + "' left as it was");
    if (result.documents == 0 && result.bad_documents > 0)
      throw std::runtime_error("no document could be summarized (reasons above); '" + options.output() +
                               "' left as it was");
    out.commit();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(e.what() + out.keep(result.documents));
  } catch (const std::exception& e) {
    throw std::runtime_error(e.what() + out.keep(result.documents));
  }
  result.bad_records = in.skipped();
  if (!options.highlight().empty()) {
    write_highlight_html(options.highlight(), pages);
    result.highlight_documents = static_cast<int64_t>(pages.size());
  }
  result.seconds = elapsed();
  return result;
}

}  // namespace pyramidion
