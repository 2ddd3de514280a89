// pyramidion-evaluate: ROUGE-1/2/L/Lsum F1 of predicted summaries against references, with
// bootstrap confidence intervals (a thin shell over include/pyramidion/rouge.h).
//
//   pyramidion-evaluate --predictions out/test.jsonl --references data/aclsum/test.jsonl
//   pyramidion-summarize ... | pyramidion-evaluate --predictions - --references test.jsonl --json r.json
//
// Exit codes: 0 scored, 2 bad input (unreadable or malformed files, duplicate or unmatched ids,
// invalid flags), 1 any other error.
#include <pyramidion/rouge.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// Bad input: reported on one line, exit code 2.
struct BadInput : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

constexpr size_t kListed = 5;  // ids named in an error message

// id -> index; a repeated id is bad input ("<path>:<line>: duplicate id ... (first on line ...)").
std::unordered_map<std::string, size_t> index_by_id(const std::vector<pyramidion::SummaryRecord>& records) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto [it, inserted] = index.emplace(records[i].id, i);
    if (!inserted)
      throw BadInput(records[i].path + ":" + std::to_string(records[i].line) + ": duplicate id \"" + records[i].id +
                     "\" (first on line " + std::to_string(records[it->second].line) + ")");
  }
  return index;
}

// "3 ids of <path> have no match in <other>: "a", "b", "c""
std::string unmatched_message(const std::vector<std::string>& ids, const std::string& path, const std::string& other) {
  std::string list;
  for (size_t i = 0; i < ids.size() && i < kListed; ++i) list += (i ? ", \"" : "\"") + ids[i] + "\"";
  if (ids.size() > kListed) list += ", ...";
  return std::to_string(ids.size()) + (ids.size() == 1 ? " id" : " ids") + " of " + path + " not in " + other + ": " +
         list;
}

std::string percent(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%6.2f", 100 * v);
  return buffer;
}

void print_table(std::ostream& out, const pyramidion::RougeReport& report) {
  const auto& o = report.options;
  out << report.documents << " documents, Porter stemming " << (o.rouge.use_stemmer ? "on" : "off");
  if (o.bootstrap_samples > 0)
    out << ", " << 100 * o.confidence << "% bootstrap intervals (" << o.bootstrap_samples << " resamples, seed "
        << o.seed << ")";
  out << "\n\n| measure    |     F1 | F1 interval      | precision | recall |\n"
         "|------------|-------:|------------------|----------:|-------:|\n";
  const std::pair<const char*, const pyramidion::RougeMeasureReport*> rows[] = {
      {"ROUGE-1   ", &report.rouge1}, {"ROUGE-2   ", &report.rouge2},
      {"ROUGE-L   ", &report.rougeL}, {"ROUGE-Lsum", &report.rougeLsum}};
  for (const auto& [name, m] : rows)
    out << "| " << name << " | " << percent(m->f1.mid) << " | [" << percent(m->f1.low) << ", " << percent(m->f1.high)
        << "] |    " << percent(m->precision.mid) << " | " << percent(m->recall.mid) << " |\n";
}

// --tokenize: the ROUGE tokens of each line of a text file, space-separated, one line per line.
void print_tokens(const std::string& path, bool use_stemmer) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw BadInput("cannot open '" + path + "'");
    in = &file;
  }
  std::string line, text;
  while (std::getline(*in, line)) {
    text.clear();
    for (const auto& token : pyramidion::rouge_tokenize(line, use_stemmer)) text += (text.empty() ? "" : " ") + token;
    std::cout << text << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Score predicted summaries against references with ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum (F1, "
      "precision, recall; mean over documents with a bootstrap confidence interval), as the rouge-score "
      "package computes them (docs/rouge.md).\n\n"
      "Both files are JSON lines matched by id. Predictions: {\"id\", \"summary\", ...}. References: the "
      "same shape, {\"id\", \"document\", \"summary\"}, or the arXiv/PubMed format (article_id, "
      "abstract_text). ROUGE-Lsum splits summaries into sentences at line breaks.\n\n"
      "Exit codes: 0 scored, 2 bad input, 1 other errors."};
  std::string predictions_path, references_path, json_path, per_document_path, tokenize_path;
  pyramidion::RougeCorpusOptions options;
  options.rouge.use_stemmer = true;  // as papers report; rouge-score's own default is off
  bool allow_missing = false;
  app.add_option("--predictions", predictions_path, "predicted summaries, JSON lines ({id, summary}); - = stdin");
  app.add_option("--references", references_path, "reference summaries, JSON lines (see above); - = stdin");
  app.add_flag("--stemmer,!--no-stemmer", options.rouge.use_stemmer,
               "Porter-stem tokens longer than 3 characters (default: on, as summarization papers report; "
               "rouge-score's default is off)");
  app.add_option("--bootstrap", options.bootstrap_samples, "bootstrap resamples for the intervals; 0 = none")
      ->capture_default_str();
  app.add_option("--confidence", options.confidence, "confidence level of the intervals, in (0, 1)")
      ->capture_default_str();
  app.add_option("--seed", options.seed, "seed of the resampling")->capture_default_str();
  app.add_option("--json", json_path, "also write the report as JSON to this file");
  app.add_option("--per-document", per_document_path,
                 "write each document's scores as JSON lines ({id, rouge1: {precision, recall, f1}, ...})");
  app.add_flag("--allow-missing", allow_missing,
               "score only the ids present in both files (default: an id on one side only is an error)");
  app.add_option("--tokenize", tokenize_path,
                 "print the ROUGE tokens of each line of a text file (- = stdin) and exit; with --stemmer "
                 "as set")
      ->excludes("--predictions", "--references");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the error
    return code == 0 ? 0 : 2;
  }

  try {
    if (!tokenize_path.empty()) {
      print_tokens(tokenize_path, options.rouge.use_stemmer);
      return 0;
    }
    if (options.bootstrap_samples < 0)
      throw BadInput("--bootstrap " + std::to_string(options.bootstrap_samples) + " must be >= 0 (0 = no interval)");
    if (!(options.confidence > 0 && options.confidence < 1)) {
      std::ostringstream message;
      message << "--confidence " << options.confidence << " must be in (0, 1), e.g. 0.95";
      throw BadInput(message.str());
    }
    if (predictions_path.empty() || references_path.empty())
      throw BadInput("--predictions and --references are both required (see --help)");
    if (predictions_path == "-" && references_path == "-")
      throw BadInput("--predictions and --references cannot both be standard input");

    for (const auto& path : {predictions_path, references_path})
      if (path != "-" && !std::ifstream(path)) throw BadInput("cannot open '" + path + "'");
    const auto predictions = pyramidion::read_summaries(predictions_path);
    const auto references = pyramidion::read_summaries(references_path);
    const auto prediction_index = index_by_id(predictions);
    const auto reference_index = index_by_id(references);

    // Pairs in the order of the predictions.
    std::vector<std::string> ids, prediction_texts, reference_texts;
    std::vector<std::string> no_reference, no_prediction;
    for (const auto& p : predictions) {
      const auto it = reference_index.find(p.id);
      if (it == reference_index.end()) {
        no_reference.push_back(p.id);
        continue;
      }
      ids.push_back(p.id);
      prediction_texts.push_back(p.summary);
      reference_texts.push_back(references[it->second].summary);
    }
    for (const auto& r : references)
      if (!prediction_index.count(r.id)) no_prediction.push_back(r.id);
    std::string unmatched;
    if (!no_reference.empty()) unmatched = unmatched_message(no_reference, predictions_path, references_path);
    if (!no_prediction.empty())
      unmatched += (unmatched.empty() ? "" : "; ") + unmatched_message(no_prediction, references_path, predictions_path);
    if (!unmatched.empty()) {
      if (!allow_missing) throw BadInput(unmatched + " (--allow-missing scores the common ids only)");
      std::cerr << "pyramidion-evaluate: warning: " << unmatched << "; scoring the " << ids.size()
                << " common ids\n";
    }
    if (ids.empty()) throw BadInput("no id is in both " + predictions_path + " and " + references_path);

    const auto report = pyramidion::rouge_corpus(prediction_texts, reference_texts, options);
    print_table(std::cout, report);
    if (!json_path.empty()) {
      auto json = nlohmann::json::parse(pyramidion::rouge_report_to_json(report));
      json["predictions"] = predictions_path;
      json["references"] = references_path;
      pyramidion::write_rouge_file(json_path, json.dump(2) + "\n");
    }
    if (!per_document_path.empty())
      pyramidion::write_rouge_file(per_document_path, pyramidion::rouge_per_document_to_jsonl(report, ids));
    return 0;
  } catch (const std::invalid_argument& e) {  // malformed records (file:line), ids, options
    std::cerr << "pyramidion-evaluate: bad input: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pyramidion-evaluate: error: " << e.what() << std::endl;
    return 1;
  }
}
