// `pyramidion-bench selection` (see selection_bench.h).
#include "selection_bench.h"

#include <pyramidion/data.h>
#include <pyramidion/highlight.h>
#include <pyramidion/selection.h>
#include <pyramidion/summarizer.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "machine.h"
#include "measure.h"

namespace pyramidion {
namespace bench {
namespace {

namespace fs = std::filesystem;

struct Model {
  std::string name;
  std::string dir;
  bool hard = false;
  Summarizer summarizer;
  std::vector<SelectionWindow> windows;  // every window's result, in input order
  std::vector<double> chunk_seconds;     // per chunk
};

// "NAME=DIR" or "NAME=DIR@hard" -> (name, dir, hard).
std::tuple<std::string, std::string, bool> parse_model(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    throw std::invalid_argument("--model \"" + spec + "\" must be NAME=DIR or NAME=DIR@hard");
  std::string dir = spec.substr(eq + 1);
  bool hard = false;
  const std::string suffix = "@hard";
  if (dir.size() > suffix.size() && dir.compare(dir.size() - suffix.size(), suffix.size(), suffix) == 0) {
    hard = true;
    dir.resize(dir.size() - suffix.size());
  }
  return {spec.substr(0, eq), dir, hard};
}

std::string percent(double fraction) { return format_fixed(100.0 * fraction, 1); }

std::string schedule(const ModelConfig& config) {
  std::vector<int64_t> kept;
  for (const int64_t k : config.pooled_lengths)
    if (k > 0) kept.push_back(k);
  return kept.empty() ? std::string("none") : detail::format_list(kept);
}

// The pooling layers' scorer weights of a model, in layer order: encoder_poolers.<k>.scorer.weight
// (1, d) flattened to (d) in float64, with the bias as the last element.
std::vector<at::Tensor> scorer_vectors(Summarizer& s) {
  std::vector<std::pair<int64_t, at::Tensor>> found;
  const std::string prefix = "encoder_poolers.", suffix = ".scorer.weight";
  const auto named = s.model()->named_parameters();
  for (const auto& item : named) {
    const std::string& name = item.key();
    if (name.rfind(prefix, 0) != 0 || name.size() <= prefix.size() + suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string layer = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    const auto* bias = named.find(prefix + layer + ".scorer.bias");
    at::Tensor v = item.value().detach().to(at::kDouble).flatten();  // (d)
    if (bias) v = at::cat({v, bias->detach().to(at::kDouble).flatten()});  // (d + 1)
    found.emplace_back(std::stoll(layer), v);
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<at::Tensor> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

double cosine(const at::Tensor& a, const at::Tensor& b) {
  return (a * b).sum().item<double>() / (a.norm().item<double>() * b.norm().item<double>());
}

}  // namespace

void run_selection_bench(const SelectionBenchOptions& o, const std::string& command) {
  if (o.models.empty()) throw std::invalid_argument("--model: give at least one NAME=DIR");
  if (o.input.empty()) throw std::invalid_argument("--input: the test windows are required");
  if (o.chunk < 1) throw std::invalid_argument("--chunk = " + std::to_string(o.chunk) + " must be >= 1");
  if (o.max_documents < 0)
    throw std::invalid_argument("--max-docs = " + std::to_string(o.max_documents) + " must be >= 0");
  if (o.highlight_documents < 1)
    throw std::invalid_argument("--highlight-docs = " + std::to_string(o.highlight_documents) + " must be >= 1");
  std::vector<std::tuple<std::string, std::string, bool>> specs;
  for (const auto& spec : o.models) {
    specs.push_back(parse_model(spec));
    for (size_t j = 0; j + 1 < specs.size(); ++j)
      if (std::get<0>(specs[j]) == std::get<0>(specs.back()))
        throw std::invalid_argument("--model: the name \"" + std::get<0>(specs.back()) + "\" is given twice");
  }
  check_writable(o.json_path);
  check_writable(o.markdown_path);

  std::vector<Document> windows = read_all(o.input);
  if (o.max_documents > 0 && static_cast<int64_t>(windows.size()) > o.max_documents)
    windows.resize(static_cast<size_t>(o.max_documents));
  if (windows.empty()) throw std::invalid_argument("--input " + o.input + " holds no window");

  std::vector<Model> models;
  for (const auto& [name, dir, hard] : specs) {
    Summarizer s = Summarizer::load(dir);
    if (hard) s.model()->set_hard_at_inference(true);
    models.push_back(Model{name, dir, hard, std::move(s), {}, {}});
  }
  const SelectionOptions selection = SelectionOptions().max_tokens(o.max_tokens);
  // Warm-up: one untimed window per model (first allocations, thread pools).
  for (auto& m : models) evaluate_selection(m.summarizer, {windows.front()}, selection);

  const size_t chunk = static_cast<size_t>(o.chunk);
  const size_t chunks = (windows.size() + chunk - 1) / chunk;
  for (size_t c = 0; c < chunks; ++c) {
    const std::vector<Document> part(windows.begin() + static_cast<std::ptrdiff_t>(c * chunk),
                                     windows.begin() + static_cast<std::ptrdiff_t>(std::min(windows.size(), (c + 1) * chunk)));
    for (size_t r = 0; r < models.size(); ++r) {
      Model& m = models[(c + r) % models.size()];  // rotated order: no model always runs first
      Stopwatch clock;
      auto results = evaluate_selection(m.summarizer, part, selection);
      m.chunk_seconds.push_back(clock.ms() / 1000.0);
      for (auto& w : results) m.windows.push_back(std::move(w));
    }
    std::cerr << "selection: chunk " << c + 1 << "/" << chunks << " done\n";
  }

  const auto machine = describe_machine();
  std::ostringstream md;
  nlohmann::json json = {{"benchmark", "selection"}, {"command", command}, {"machine", to_json(machine)},
                         {"input", o.input}, {"windows", windows.size()}, {"chunk", o.chunk},
                         {"load_average_start", load_average()}};
  md << "## Selection task (pyramidion-bench selection)\n\nCommand: `" << command << "`\n\n"
     << to_markdown(machine) << "- " << windows.size() << " test windows of " << o.input
     << "; greedy decoding; inference time interleaved in chunks of " << o.chunk
     << " windows (every chunk runs every model, in rotated order); speed-up: the median of the per-chunk ratios "
        "of the first model's time to the model's\n\n"
     << "| model | kept per pooling layer | span recall per layer (%) | exact match (%) | token F1 (%) | "
        "passages read | inference (s) | speed-up over " << models.front().name << " |\n"
     << "|:---|:---|:---|---:|---:|---:|---:|---:|\n";
  nlohmann::json json_models = nlohmann::json::array();
  for (auto& m : models) {
    const SelectionReport r = summarize_selection(m.windows);
    std::vector<double> ratios;
    for (size_t c = 0; c < m.chunk_seconds.size(); ++c)
      ratios.push_back(models.front().chunk_seconds[c] / m.chunk_seconds[c]);
    double seconds = 0;
    for (const double s : m.chunk_seconds) seconds += s;
    std::string recalls;
    for (const double v : r.span_recall) recalls += (recalls.empty() ? "" : " / ") + percent(v);
    const ModelConfig& config = m.summarizer.model()->config();
    md << "| " << m.name << (m.hard ? " (hard top-k)" : "") << " | " << schedule(config) << " | "
       << (recalls.empty() ? "-" : recalls) << " | " << percent(r.exact_match) << " | " << percent(r.token_f1)
       << " | " << r.passages_read << "/" << r.windows << " | " << format_fixed(seconds, 1) << " | "
       << format_fixed(median(ratios), 2) << "x |\n";
    nlohmann::json per_window = nlohmann::json::array();
    for (const auto& w : m.windows)
      per_window.push_back({{"id", w.id}, {"passage_read", w.passage_read}, {"passage_tokens", w.passage_tokens},
                            {"span_recall", w.span_recall}, {"exact_match", w.exact_match},
                            {"token_f1", w.token_f1}, {"prediction", w.prediction}, {"reference", w.reference}});
    json_models.push_back({{"name", m.name}, {"checkpoint", m.dir}, {"hard_at_inference", m.hard},
                           {"pooled_lengths", config.pooled_lengths}, {"span_recall", r.span_recall},
                           {"exact_match", r.exact_match}, {"token_f1", r.token_f1},
                           {"passages_read", r.passages_read}, {"windows_evaluated", r.windows},
                           {"inference_seconds", seconds}, {"chunk_seconds", m.chunk_seconds},
                           {"speedup_median", median(ratios)}, {"windows", per_window}});
  }
  // How the scorers moved: along a curve (the checkpoints of one run, in order), the angle between
  // consecutive checkpoints' scorers says whether the direction the encoder must align with holds.
  std::vector<std::vector<at::Tensor>> scorers;
  size_t layers = 0;
  for (auto& m : models) {
    scorers.push_back(scorer_vectors(m.summarizer));
    layers = std::max(layers, scorers.back().size());
  }
  if (layers > 0) {
    md << "\nScorers per pooling layer (weights and bias): norm; cosine to the previous model's above; cosine to "
       << models.front().name << "'s\n\n| model |";
    for (size_t l = 0; l < layers; ++l) md << " layer " << l + 1 << " |";
    md << "\n|:---|";
    for (size_t l = 0; l < layers; ++l) md << ":---|";
    md << "\n";
    for (size_t i = 0; i < models.size(); ++i) {
      md << "| " << models[i].name << " |";
      nlohmann::json per_layer = nlohmann::json::array();
      for (size_t l = 0; l < layers; ++l) {
        if (l >= scorers[i].size()) {
          md << " - |";
          per_layer.push_back(nullptr);
          continue;
        }
        const at::Tensor& v = scorers[i][l];
        const bool prev = i > 0 && l < scorers[i - 1].size(), first = i > 0 && l < scorers[0].size();
        const double norm = v.norm().item<double>();
        const double cos_prev = prev ? cosine(v, scorers[i - 1][l]) : 1.0;
        const double cos_first = first ? cosine(v, scorers[0][l]) : 1.0;
        md << " " << format_fixed(norm, 3) << "; " << (prev ? format_fixed(cos_prev, 3) : std::string("-")) << "; "
           << (first ? format_fixed(cos_first, 3) : std::string("-")) << " |";
        per_layer.push_back({{"norm", norm}, {"cosine_previous", prev ? nlohmann::json(cos_prev) : nlohmann::json()},
                             {"cosine_first", first ? nlohmann::json(cos_first) : nlohmann::json()}});
      }
      md << "\n";
      json_models[i]["scorers"] = per_layer;
    }
  }
  json["models"] = json_models;

  if (!o.highlight_dir.empty()) {
    fs::create_directories(o.highlight_dir);
    const size_t shown = std::min(windows.size(), static_cast<size_t>(o.highlight_documents));
    md << "\nHighlight pages (the first " << shown << " windows):";
    for (auto& m : models) {
      std::vector<HighlightDocument> pages;
      for (size_t i = 0; i < shown; ++i)
        pages.push_back(highlight_document(windows[i].id, windows[i].document, m.windows[i].reference,
                                           m.windows[i].summary, m.summarizer.model()->config()));
      const std::string path = (fs::path(o.highlight_dir) / (m.name + ".html")).string();
      write_highlight_html(path, pages,
                           HighlightOptions().title("pyramidion selection task: what " + m.name + " kept"));
      md << " `" << path << "`";
    }
    md << "\n";
  }
  emit_report(md.str(), json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", o.markdown_path,
              o.json_path);
}

}  // namespace bench
}  // namespace pyramidion
