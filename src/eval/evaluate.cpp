// evaluate_files() and read_summaries() (see include/pyramidion/evaluate.h).
#include <pyramidion/evaluate.h>

#include <pyramidion/data.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "util/output_file.h"
#include "util/json_fields.h"
#include "util/paths.h"
#include "util/text.h"

namespace pyramidion {
namespace {

using detail::json;

// "<path>:<line>: <what>" as std::invalid_argument.
[[noreturn]] void bad_record(const std::string& path, int64_t line, const std::string& what) {
  throw std::invalid_argument(path + ":" + std::to_string(line) + ": " + what);
}

bool is_dataset_arxiv(const json& record) {
  return record.is_object() && (record.contains("article_text") || record.contains("article_id"));
}

// A summaries or plain record: "id" and "summary".
SummaryRecord parse_summary_record(const json& record, const std::string& path, int64_t line) {
  if (!record.is_object()) bad_record(path, line, std::string("expected a JSON object, got ") + record.type_name());
  SummaryRecord out;
  out.path = path;
  out.line = line;
  const auto id = record.find("id");
  if (id == record.end()) bad_record(path, line, "key \"id\" is missing");
  if (id->is_string())
    out.id = id->get<std::string>();
  else if (id->is_number_unsigned())
    out.id = std::to_string(id->get<uint64_t>());
  else if (id->is_number_integer())
    out.id = std::to_string(id->get<int64_t>());
  else
    bad_record(path, line, std::string("key \"id\" must be a string or an integer, got ") + id->type_name());
  if (detail::is_blank(out.id)) bad_record(path, line, "key \"id\" is empty");
  const auto summary = record.find("summary");
  if (summary == record.end()) bad_record(path, line, "key \"summary\" is missing");
  if (!summary->is_string())
    bad_record(path, line, std::string("key \"summary\" must be a string, got ") + summary->type_name());
  out.summary = summary->get<std::string>();
  return out;
}

// An arXiv-format file, through DocumentReader, whose record errors are bad input
// (std::invalid_argument "<path>:<line>: ...").
std::vector<SummaryRecord> read_arxiv(const std::string& path) {
  DocumentReader reader(path, ReaderOptions().format(DataFormat::arxiv));
  std::vector<SummaryRecord> out;
  for (Document doc; reader.next(doc);) out.push_back({doc.id, doc.summary, doc.path, doc.line});
  return out;
}

constexpr size_t kListed = 5;  // ids named in an error message

// id -> index; a repeated id is bad input ("<path>:<line>: duplicate id ... (first on line ...)").
std::unordered_map<std::string, size_t> index_by_id(const std::vector<SummaryRecord>& records) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto [it, inserted] = index.emplace(records[i].id, i);
    if (!inserted)
      bad_record(
          records[i].path, records[i].line,
          "duplicate id \"" + records[i].id + "\" (first on line " + std::to_string(records[it->second].line) + ")");
  }
  return index;
}

// "3 ids of <path> not in <other>: "a", "b", "c""
std::string unmatched_message(const std::vector<std::string>& ids, const std::string& path, const std::string& other) {
  std::string list;
  for (size_t i = 0; i < ids.size() && i < kListed; ++i) list += (i ? ", \"" : "\"") + ids[i] + "\"";
  if (ids.size() > kListed) list += ", ...";
  return std::to_string(ids.size()) + (ids.size() == 1 ? " id" : " ids") + " of " + path + " not in " + other + ": " +
         list;
}

void check(const EvaluateOptions& o) {
  o.rouge().check();
  if (o.predictions().empty() || o.references().empty())
    throw std::invalid_argument("EvaluateOptions: predictions and references are both required");
  if (o.predictions() == "-" && o.references() == "-")
    throw std::invalid_argument("predictions and references cannot both be standard input");
  for (const auto& [what, path] : {std::pair<const char*, const std::string&>{"predictions", o.predictions()},
                                    {"references", o.references()}})
    if (path != "-") detail::check_input_file(std::string("EvaluateOptions.") + what, path);
  const std::vector<std::pair<std::string, std::string>> inputs = {{"EvaluateOptions.predictions", o.predictions()},
                                                                    {"EvaluateOptions.references", o.references()}};
  for (const auto& [what, path] : {std::pair<const char*, const std::string&>{"json", o.json()},
                                    {"per_document", o.per_document()}}) {
    detail::check_output_file(std::string("EvaluateOptions.") + what, path);
    detail::check_not_an_input(std::string("EvaluateOptions.") + what, path, inputs);
  }
  if (!o.json().empty() && o.json() == o.per_document())
    throw std::invalid_argument("EvaluateOptions.json and per_document are both '" + o.json() +
                                "'; give the two reports two files");
}

}  // namespace

std::vector<SummaryRecord> read_summaries(const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
    in = &file;
  }
  std::vector<SummaryRecord> out;
  std::string text;
  for (int64_t line = 1; std::getline(*in, text); ++line) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (detail::is_blank(text)) continue;
    const json record = detail::parse_strict(path + ":" + std::to_string(line), text);
    if (is_dataset_arxiv(record)) {
      // The arXiv format (sentence lists with <S> markers) is read by DocumentReader, from the start.
      if (!out.empty())
        bad_record(path, line, "an arXiv-format record (article_id/article_text) after {id, summary} records");
      if (path == "-")
        bad_record(path, line, "arXiv-format references must be read from a file: pass its path instead of -");
      return read_arxiv(path);
    }
    out.push_back(parse_summary_record(record, path, line));
  }
  if (in->bad()) throw std::runtime_error("'" + path + "': read error: " + std::strerror(errno));
  return out;
}

Evaluation evaluate_files(const EvaluateOptions& options) {
  check(options);
  const auto predictions = read_summaries(options.predictions());
  const auto references = read_summaries(options.references());
  const auto prediction_index = index_by_id(predictions);
  const auto reference_index = index_by_id(references);

  // Pairs in the order of the predictions.
  Evaluation out;
  std::vector<std::string> prediction_texts, reference_texts, no_reference, no_prediction;
  for (const auto& p : predictions) {
    const auto it = reference_index.find(p.id);
    if (it == reference_index.end()) {
      no_reference.push_back(p.id);
      continue;
    }
    out.ids.push_back(p.id);
    prediction_texts.push_back(p.summary);
    reference_texts.push_back(references[it->second].summary);
  }
  for (const auto& r : references)
    if (!prediction_index.count(r.id)) no_prediction.push_back(r.id);
  std::string unmatched;
  if (!no_reference.empty()) unmatched = unmatched_message(no_reference, options.predictions(), options.references());
  if (!no_prediction.empty())
    unmatched +=
        (unmatched.empty() ? "" : "; ") + unmatched_message(no_prediction, options.references(), options.predictions());
  if (!unmatched.empty()) {
    if (!options.allow_missing())
      throw std::invalid_argument(unmatched + " (--allow-missing scores the common ids only)");
    if (options.log())
      options.log()("warning: " + unmatched + "; scoring the " + std::to_string(out.ids.size()) + " common ids");
  }
  if (out.ids.empty())
    throw std::invalid_argument("no id is in both " + options.predictions() + " and " + options.references());

  out.report = rouge_corpus(prediction_texts, reference_texts, options.rouge());
  if (!options.json().empty()) {
    auto report = json::parse(rouge_report_to_json(out.report));
    report["predictions"] = options.predictions();
    report["references"] = options.references();
    detail::write_output_file("evaluate_files", options.json(), report.dump(2) + "\n");
  }
  if (!options.per_document().empty())
    detail::write_output_file("evaluate_files", options.per_document(),
                                  rouge_per_document_to_jsonl(out.report, out.ids));
  return out;
}

}  // namespace pyramidion
