// `pyramidion-bench summarize` (see summarize_bench.h).
//
// Every variant's model is built once, from the same seed (variants of one config share their
// initial weights), converted (bf16) or quantized (int8), and kept for the whole run. A measurement
// is one call of pyramidion::summarize_ids over the mode's documents, with min_length = max_length
// = T so that eos is masked out and every document gets exactly T tokens (checked). Memory is the
// process's peak resident set during the call (VmHWM after resetting it through
// /proc/self/clear_refs, after returning the C library's free pages with malloc_trim), for the
// peer's process too: the same measure on both sides.
//
// Legend: S source tokens, T generated tokens, B beam size, N documents.
#include "summarize_bench.h"

#include <pyramidion/config.h>
#include <pyramidion/corpus.h>
#include <pyramidion/model.h>
#include <pyramidion/precision.h>
#include <pyramidion/summarizer.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "machine.h"
#include "measure.h"
#include "op_profile.h"

namespace pyramidion {
namespace bench {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

struct Variant {
  std::string name;     // "deep-pyramidion fp32", or "LED (peer)"
  std::string config;   // the preset's stem ("" for the peer)
  std::string weights;  // fp32, bf16, int8
  bool peer = false;
  Seq2Seq model{nullptr};
  int64_t params = 0;
};

// One measurement.
struct Sample {
  double seconds = 0;
  int64_t peak_rss = -1;    // bytes, -1 where unknown
  int64_t rss_before = -1;  // bytes
};

// The measurements of one variant in one setting (a mode, or a sweep length).
struct Series {
  std::vector<Sample> samples;  // one per timed repetition, in order
  double median_seconds() const {
    std::vector<double> s;
    for (const auto& x : samples) s.push_back(x.seconds);
    return median(s);
  }
  int64_t peak_rss() const {
    int64_t m = -1;
    for (const auto& x : samples) m = std::max(m, x.peak_rss);
    return m;
  }
  int64_t peak_extra() const {  // the largest growth over the resident size before the run
    int64_t m = -1;
    for (const auto& x : samples)
      if (x.peak_rss >= 0 && x.rss_before >= 0) m = std::max(m, x.peak_rss - x.rss_before);
    return m;
  }
};

// Ratio reference / variant of the paired repetitions: median, min, max (0s when unpaired).
struct Ratio {
  double median = 0, min = 0, max = 0;
};
Ratio paired_ratio(const Series& reference, const Series& variant) {
  std::vector<double> r;
  for (size_t i = 0; i < std::min(reference.samples.size(), variant.samples.size()); ++i)
    r.push_back(reference.samples[i].seconds / variant.samples[i].seconds);
  if (r.empty()) return {};
  return {median(r), *std::min_element(r.begin(), r.end()), *std::max_element(r.begin(), r.end())};
}

int64_t status_bytes(const char* field) {
  std::ifstream in("/proc/self/status");
  const std::string key = std::string(field) + ":";
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + key.size()) * 1024;
  return -1;
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";  // VmHWM := VmRSS (Linux)
  return static_cast<bool>(out.flush());
}

int64_t budget_batch(const SummarizeBenchOptions& o, int64_t S) {
  // make_batches' rule for equal lengths: b * (S + B * T) <= max_tokens, b >= 1.
  return std::max<int64_t>(1, o.max_tokens / (S + o.beam * o.target_length));
}

void check_options(const SummarizeBenchOptions& o) {
  const auto positive = [](const char* flag, int64_t v) {
    if (v < 1) throw std::invalid_argument(std::string("summarize: ") + flag + " must be >= 1, got " + std::to_string(v));
  };
  positive("--source-length", o.source_length);
  positive("--target-length", o.target_length);
  positive("--beam", o.beam);
  positive("--max-tokens", o.max_tokens);
  if (o.reps < 0 || (o.reps == 0 && !o.profile))
    throw std::invalid_argument("summarize: --reps must be >= 1 (0 only with --profile: profile, no timing), got " +
                                std::to_string(o.reps));
  if (o.documents < 0) throw std::invalid_argument("summarize: --documents must be >= 0, got " + std::to_string(o.documents));
  if (o.warmup < 0) throw std::invalid_argument("summarize: --warmup must be >= 0, got " + std::to_string(o.warmup));
  if (o.configs.empty()) throw std::invalid_argument("summarize: --configs needs at least one preset");
  if (o.weights.empty()) throw std::invalid_argument("summarize: --weights needs at least one of fp32, bf16, int8");
  for (const auto& w : o.weights)
    if (w != "fp32" && w != "bf16" && w != "int8")
      throw std::invalid_argument("summarize: --weights = \"" + w + "\" must be one of \"fp32\", \"bf16\", \"int8\"");
  for (const auto& m : o.modes)
    if (!m.empty() && m != "one" && m != "budget")
      throw std::invalid_argument("summarize: --modes = \"" + m + "\" must be one of \"one\", \"budget\"");
  if (std::all_of(o.modes.begin(), o.modes.end(), [](const std::string& m) { return m.empty(); }) && o.sweep.empty()) throw std::invalid_argument("summarize: no --modes and no --sweep: nothing to run");
  for (const int64_t s : o.sweep) positive("--sweep (each length)", s);
  if (!o.peer.empty() && o.peer != "led")
    throw std::invalid_argument("summarize: --peer = \"" + o.peer + "\" must be \"led\" (or absent)");
  if (o.peer_batch < 0)
    throw std::invalid_argument("summarize: --peer-batch must be >= 0, got " + std::to_string(o.peer_batch));
  if (!o.peer.empty()) {
    if (o.peer_python.empty())
      throw std::invalid_argument("summarize: --peer led needs --peer-python (scripts/setup_peer.sh prints it)");
    if (!std::ifstream(o.peer_script)) throw std::invalid_argument("summarize: no peer script at " + o.peer_script);
  }
}

// N random documents of S ids in [3, vocab) (0-2 are pad/bos/eos in every preset), no targets.
TokenizedCorpus make_documents(int64_t n, int64_t S, int64_t vocab, uint64_t seed) {
  at::manual_seed(seed);
  const auto ids = at::randint(3, vocab, {n, S}, at::kLong).contiguous();  // (N, S)
  TokenizedCorpus corpus;
  const int64_t* p = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) corpus.add(std::to_string(i), std::vector<int64_t>(p + i * S, p + (i + 1) * S), {});
  return corpus;
}

Sample run_ours(Variant& v, const TokenizedCorpus& docs, int64_t max_tokens, const SummarizeBenchOptions& o) {
  SummarizeOptions options;
  options.search().beam_size(o.beam).min_length(o.target_length).max_length(o.target_length);
  options.max_tokens(max_tokens);
  Sample s;
  AllocationTracker::release_free_memory();  // free heap pages back to the system: RSS before = what is live
  s.rss_before = status_bytes("VmRSS");
  const bool reset = reset_peak_rss();
  Stopwatch clock;
  const auto out = summarize_ids(v.model, docs, options);
  s.seconds = clock.ms() / 1000.0;
  s.peak_rss = reset ? status_bytes("VmHWM") : -1;
  for (size_t i = 0; i < out.size(); ++i)
    if (static_cast<int64_t>(out[i].tokens.size()) != o.target_length)
      throw std::runtime_error("summarize: " + v.name + " generated " + std::to_string(out[i].tokens.size()) +
                               " tokens for document " + std::to_string(i) + ", not " +
                               std::to_string(o.target_length));
  return s;
}

// The peer's process for n documents of S tokens in batches of `batch`; reads its JSON line.
Sample run_peer(const SummarizeBenchOptions& o, const ModelConfig& sizes, int64_t n, int64_t batch, int64_t S,
                nlohmann::json& info) {
  std::ostringstream cmd;
  cmd << shell_quote(o.peer_python) << " " << shell_quote(o.peer_script) << " --documents " << n << " --batch "
      << batch << " --source-length " << S << " --target-length " << o.target_length << " --beam " << o.beam
      << " --threads " << at::get_num_threads() << " --seed " << o.seed << " --d-model " << sizes.d_model
      << " --layers " << sizes.decoder_layers << " --heads " << sizes.heads << " --ffn " << sizes.ffn_size
      << " --vocab-size " << sizes.vocab_size << " --window " << std::max<int64_t>(sizes.block_size, 1);
  FILE* pipe = ::popen(cmd.str().c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("summarize: cannot start the peer: " + cmd.str());
  std::string out;
  char buffer[4096];
  while (size_t got = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, got);
  const int status = ::pclose(pipe);
  if (status != 0)
    throw std::runtime_error("summarize: the peer failed (status " + std::to_string(status) + "): " + cmd.str() +
                             " (its messages are above)");
  const auto start = out.rfind("{\"peer\"");
  if (start == std::string::npos) throw std::runtime_error("summarize: the peer printed no result: " + out);
  info = nlohmann::json::parse(out.substr(start));
  Sample s;
  s.seconds = info.at("seconds").get<double>();
  s.peak_rss = info.at("peak_rss_bytes").get<int64_t>();
  s.rss_before = info.at("rss_before_bytes").get<int64_t>();
  return s;
}

std::string mib(int64_t bytes) { return bytes >= 0 ? format_fixed(static_cast<double>(bytes) / kMiB, 0) : "-"; }
std::string times(const Ratio& r) {
  if (r.median <= 0) return "-";
  return format_fixed(r.median, 2) + "x (" + format_fixed(r.min, 2) + "-" + format_fixed(r.max, 2) + ")";
}

// Least-squares slope of log2(y) against log2(x): the factor per doubling is 2^slope.
double growth_per_doubling(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<double> lx, ly;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i] > 0 && y[i] > 0) lx.push_back(std::log2(x[i])), ly.push_back(std::log2(y[i]));
  if (lx.size() < 2) return 0;
  double mx = 0, my = 0;
  for (size_t i = 0; i < lx.size(); ++i) mx += lx[i], my += ly[i];
  mx /= lx.size(), my /= ly.size();
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < lx.size(); ++i) sxy += (lx[i] - mx) * (ly[i] - my), sxx += (lx[i] - mx) * (lx[i] - mx);
  return sxx > 0 ? std::pow(2.0, sxy / sxx) : 0;
}

}  // namespace

void run_summarize_bench(const SummarizeBenchOptions& o, const std::string& command) {
  check_options(o);
  check_writable(o.json_path);
  check_writable(o.markdown_path);
  int64_t longest = o.source_length;
  for (const int64_t s : o.sweep) longest = std::max(longest, s);

  // The variants: every config in every weights, then the peer (sized like the last config).
  std::vector<Variant> variants;
  ModelConfig peer_sizes;
  for (const auto& path : o.configs) {
    auto config = ModelConfig::from_json_file(path);
    config.max_source_length = std::max(config.max_source_length, longest);
    config.max_target_length = std::max(config.max_target_length, o.target_length);
    peer_sizes = config;
    for (const auto& w : o.weights) {
      Variant v;
      v.config = stem(path);
      v.weights = w;
      v.name = v.config + " " + w;
      at::manual_seed(o.seed + 1);
      v.model = Seq2Seq(config);
      v.model->eval();
      if (w == "bf16") v.model->to(at::kBFloat16);
      if (w == "int8") v.model->quantize_int8();
      for (const auto& p : v.model->parameters()) v.params += p.numel();
      variants.push_back(std::move(v));
    }
  }
  if (!o.peer.empty()) {
    Variant v;
    v.name = "LED (peer)";
    v.peer = true;
    v.weights = "fp32";
    variants.push_back(std::move(v));
  }
  const int64_t vocab = variants.front().model->config().vocab_size;
  nlohmann::json peer_info = nullptr;

  // Runs every repetition of one setting: all variants (filter) in order, warm-up first.
  // tolerate_peer: a failing peer run (e.g. out of memory at a long S) is reported and recorded as
  // -1 s instead of ending the benchmark.
  const auto run_setting = [&](const std::string& label, int64_t S, int64_t n, int64_t max_tokens,
                               const std::vector<size_t>& which, bool tolerate_peer = false) {
    const auto docs = make_documents(n, S, vocab, o.seed);
    const int64_t batch = max_tokens == 1 ? 1 : std::min(n, budget_batch(o, S));
    // The peer: the same documents and batch, or (--peer-batch) one batch of that many documents.
    const int64_t peer_batch = max_tokens == 1 || o.peer_batch == 0 ? batch : o.peer_batch;
    const int64_t peer_n = max_tokens == 1 || o.peer_batch == 0 ? n : o.peer_batch;
    std::map<size_t, Series> series;
    for (int r = 0; r < o.warmup + o.reps; ++r) {
      const bool timed = r >= o.warmup;
      for (const size_t i : which) {
        auto& v = variants[i];
        if (v.peer && !timed) continue;  // the peer warms up inside each of its runs
        Sample s;
        if (!v.peer) {
          s = run_ours(v, docs, max_tokens, o);
        } else {
          try {
            s = run_peer(o, peer_sizes, peer_n, peer_batch, S, peer_info);
          } catch (const std::runtime_error& e) {
            if (!tolerate_peer) throw;
            std::fprintf(stderr, "[summarize] %s %s failed: %s\n", label.c_str(), v.name.c_str(), e.what());
            s.seconds = -1;
          }
        }
        std::fprintf(stderr, "[summarize] %s %s %s %d/%d: %.2f s, peak %s MiB\n", label.c_str(), v.name.c_str(),
                     timed ? "rep" : "warm-up", timed ? r - o.warmup + 1 : r + 1, timed ? o.reps : o.warmup,
                     s.seconds, mib(s.peak_rss).c_str());
        if (timed) series[i].samples.push_back(s);
      }
    }
    return std::make_tuple(series, batch, peer_batch);
  };

  std::vector<size_t> all(variants.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const auto machine = describe_machine();
  std::ostringstream md;
  nlohmann::json json = {{"benchmark", "summarize"}, {"command", command}, {"machine", to_json(machine)},
                         {"source_length", o.source_length}, {"target_length", o.target_length},
                         {"beam", o.beam}, {"max_tokens", o.max_tokens}, {"warmup", o.warmup},
                         {"reps", o.reps}, {"seed", o.seed}, {"load_average_start", load_average()}};
  md << "## Summarization throughput (pyramidion-bench summarize)\n\nCommand: `" << command << "`\n\n"
     << to_markdown(machine) << "- Load average (1 min, whole machine) at start: " << format_fixed(load_average(), 2)
     << "\n- Random weights and random documents of S = " << o.source_length << " tokens; exactly T = "
     << o.target_length << " tokens per summary with beam " << o.beam
     << " and no repeated trigram (pyramidion-summarize's search), through pyramidion::summarize_ids\n"
     << "- " << o.warmup << " warm-up + " << o.reps
     << " timed repetitions, interleaved: each repetition runs every variant once, in the order of the table; "
        "speed-ups are the median (min-max) of the per-repetition ratios\n"
     << "- Peak RSS: the process's peak resident memory during the run (VmHWM), extra: its growth over the "
        "resident memory before the run; the same measure for the peer's Python process\n";
  const auto find = [&](const std::string& config, const std::string& weights) -> int {
    for (size_t i = 0; i < variants.size(); ++i)
      if (!variants[i].peer && variants[i].config == config && variants[i].weights == weights) return int(i);
    return -1;
  };
  const int peer_index = o.peer.empty() ? -1 : int(variants.size() - 1);

  for (const auto& mode : o.modes) {
    if (mode.empty() || o.reps == 0) continue;  // --modes "": the sweep only; --reps 0: the profile only
    const bool budget = mode == "budget";
    const int64_t n = budget ? (o.documents > 0 ? o.documents : budget_batch(o, o.source_length)) : 1;
    const auto [series, batch, peer_batch] =
        run_setting(mode, o.source_length, n, budget ? o.max_tokens : 1, all, /*tolerate_peer=*/true);
    md << "\n### " << (budget ? "The job: " + std::to_string(n) + " documents under the budget max_tokens = " +
                                    std::to_string(o.max_tokens) + " (batches of " + std::to_string(batch) + ")"
                              : std::string("Latency: one document, batch 1"))
       << "\n\n| variant | params | batch | median s | docs/s | summary tokens/s | vs "
       << variants.front().name << " | vs own fp32 |" << (peer_index >= 0 ? " vs LED |" : "")
       << " peak RSS MiB | extra MiB |\n|:---|---:|---:|---:|---:|---:|---:|---:|" << (peer_index >= 0 ? "---:|" : "")
       << "---:|---:|\n";
    nlohmann::json rows = nlohmann::json::array();
    for (size_t i = 0; i < variants.size(); ++i) {
      const auto& v = variants[i];
      const auto& s = series.at(i);
      const double sec = s.median_seconds();
      const int64_t docs_i = v.peer ? (budget && o.peer_batch > 0 ? o.peer_batch : n) : n;
      const int64_t batch_i = v.peer ? peer_batch : batch;
      const bool failed = std::any_of(s.samples.begin(), s.samples.end(), [](const Sample& x) { return x.seconds <= 0; });
      if (failed) {
        md << "| " << v.name << " | - | " << batch_i << " | failed (see the log) | | | | |"
           << (peer_index >= 0 ? " |" : "") << " | |\n";
        rows.push_back({{"variant", v.name}, {"failed", true}, {"batch", batch_i}});
        continue;
      }
      // Per document when the peer ran other documents than ours (--peer-batch).
      const auto per_doc = [&](const Series& x, int64_t docs) {
        Series y = x;
        for (auto& z : y.samples) z.seconds /= static_cast<double>(docs);
        return y;
      };
      const Series s_doc = per_doc(s, docs_i);
      const Ratio vs_base = paired_ratio(per_doc(series.at(0), n), s_doc);
      const int own = v.peer ? -1 : find(v.config, "fp32");
      const Ratio vs_own = own >= 0 && own != int(i) ? paired_ratio(series.at(size_t(own)), s) : Ratio{};
      const int64_t peer_docs = budget && o.peer_batch > 0 ? o.peer_batch : n;
      const bool peer_ok =
          peer_index >= 0 && std::none_of(series.at(size_t(peer_index)).samples.begin(),
                                          series.at(size_t(peer_index)).samples.end(),
                                          [](const Sample& x) { return x.seconds <= 0; });
      const Ratio vs_peer = peer_ok && int(i) != peer_index
                                ? paired_ratio(per_doc(series.at(size_t(peer_index)), peer_docs), s_doc)
                                : Ratio{};
      const int64_t params = v.peer && peer_info.is_object() ? peer_info.value("params", int64_t{0}) : v.params;
      md << "| " << v.name << " | " << format_fixed(params / 1e6, 1) << " M | " << batch_i << " | "
         << format_fixed(sec, 2) << " | " << format_fixed(docs_i / sec, 3) << " | "
         << format_fixed(docs_i * o.target_length / sec, 1) << " | " << times(vs_base) << " | " << times(vs_own) << " |"
         << (peer_index >= 0 ? " " + times(vs_peer) + " |" : "") << " " << mib(s.peak_rss()) << " | "
         << mib(s.peak_extra()) << " |\n";
      nlohmann::json seconds = nlohmann::json::array();
      for (const auto& x : s.samples) seconds.push_back(x.seconds);
      rows.push_back({{"variant", v.name}, {"config", v.config}, {"weights", v.weights}, {"peer", v.peer},
                      {"params", params}, {"documents", docs_i}, {"batch", batch_i}, {"seconds", seconds},
                      {"median_seconds", sec}, {"docs_per_s", docs_i / sec},
                      {"tokens_per_s", docs_i * o.target_length / sec},
                      {"vs_baseline", {{"median", vs_base.median}, {"min", vs_base.min}, {"max", vs_base.max}}},
                      {"vs_own_fp32", {{"median", vs_own.median}, {"min", vs_own.min}, {"max", vs_own.max}}},
                      {"vs_peer", {{"median", vs_peer.median}, {"min", vs_peer.min}, {"max", vs_peer.max}}},
                      {"peak_rss_bytes", s.peak_rss()}, {"peak_extra_bytes", s.peak_extra()}});
    }
    if (budget && peer_index >= 0 && o.peer_batch > 0)
      md << "\nThe peer ran one batch of " << o.peer_batch << " documents (--peer-batch: the batch of "
         << batch << " does not fit its memory here); its ratios are per document.\n";
    json["modes"][mode] = {{"documents", n}, {"batch", batch}, {"variants", rows}};
  }

  if (!o.sweep.empty() && o.reps > 0) {
    // Batch 1, one document per length, each config's first weights and the peer.
    std::vector<size_t> which;
    for (size_t i = 0; i < variants.size(); ++i)
      if (variants[i].peer || variants[i].weights == o.weights.front()) which.push_back(i);
    std::map<size_t, std::vector<double>> sec, extra;
    nlohmann::json rows = nlohmann::json::array();
    md << "\n### How the cost grows with the document (batch 1, one document)\n\n| variant |";
    for (const int64_t S : o.sweep) md << " S = " << S << " |";
    md << " growth per doubling of S: time | memory |\n|:---|";
    for (size_t k = 0; k < o.sweep.size() + 2; ++k) md << "---:|";
    md << "\n";
    std::vector<double> lengths;
    for (const int64_t S : o.sweep) {
      lengths.push_back(static_cast<double>(S));
      const auto [series, batch, peer_batch] =
          run_setting("sweep S=" + std::to_string(S), S, 1, 1, which, /*tolerate_peer=*/true);
      for (const size_t i : which) {
        const auto& s = series.at(i);
        sec[i].push_back(s.median_seconds());
        extra[i].push_back(static_cast<double>(s.peak_extra()));
        rows.push_back({{"variant", variants[i].name}, {"source_length", S}, {"median_seconds", s.median_seconds()},
                        {"docs_per_s", 1.0 / s.median_seconds()}, {"peak_rss_bytes", s.peak_rss()},
                        {"peak_extra_bytes", s.peak_extra()}});
      }
    }
    nlohmann::json fits = nlohmann::json::object();
    for (const size_t i : which) {
      md << "| " << variants[i].name << " |";
      for (size_t k = 0; k < o.sweep.size(); ++k) {
        if (sec[i][k] <= 0) {
          md << " failed |";
          continue;
        }
        md << " " << format_fixed(1.0 / sec[i][k], 3) << " docs/s, " << mib(static_cast<int64_t>(extra[i][k]))
           << " MiB |";
      }
      const double t = growth_per_doubling(lengths, sec[i]), m = growth_per_doubling(lengths, extra[i]);
      md << " " << format_fixed(t, 2) << "x | " << format_fixed(m, 2) << "x |\n";
      fits[variants[i].name] = {{"time_per_doubling", t}, {"memory_per_doubling", m}};
    }
    md << "\nCells: documents/s and the peak memory's growth over the resident memory before the run (extra). "
          "Growth per doubling: 2^slope of the least-squares line of log2(seconds) (and log2(extra memory)) "
          "against log2(S); 2x is linear, 4x quadratic.\n";
    json["sweep"] = {{"lengths", o.sweep}, {"points", rows}, {"fits", fits}};
  }
  if (o.profile) {
    // One run per mode of each config's first weights under LibTorch's profiler (untimed above).
    for (const auto& mode : o.modes) {
      if (mode.empty()) continue;
      const bool budget = mode == "budget";
      const int64_t n = budget ? (o.documents > 0 ? o.documents : budget_batch(o, o.source_length)) : 1;
      const auto docs = make_documents(n, o.source_length, vocab, o.seed);
      for (auto& v : variants) {
        if (v.peer || v.weights != o.weights.front()) continue;
        std::fprintf(stderr, "[summarize] profiling %s %s\n", mode.c_str(), v.name.c_str());
        md << "\n### Where the time goes: " << v.name << ", " << n << " document" << (n > 1 ? "s" : "") << " of "
           << o.source_length << " tokens" << (budget ? " under the budget" : ", batch 1")
           << " (LibTorch's profiler, self time per operator)\n\n"
           << op_profile_markdown([&] { run_ours(v, docs, budget ? o.max_tokens : 1, o); }, 14);
      }
    }
  }
  if (peer_info.is_object()) {
    md << "\nPeer: Hugging Face transformers " << peer_info.value("transformers", "?") << " (LED, "
       << "random weights, fp32, " << peer_info.value("threads", 0) << " threads, PyTorch "
       << peer_info.value("torch", "?") << "), scripts/led_peer.py; its times exclude Python start-up and model "
          "construction.\n";
    json["peer"] = peer_info;
  }
  md << "\n- Load average at end: " << format_fixed(load_average(), 2) << "\n";
  json["load_average_end"] = load_average();
  emit_report(md.str(), json.dump(2) + "\n", o.markdown_path, o.json_path);
}

}  // namespace bench
}  // namespace pyramidion
