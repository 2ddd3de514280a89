// `pyramidion-bench summarize` (see summarize_bench.h).
//
// Every variant's model is built once, from the same seed (variants of one config share their
// initial weights) or loaded from its directory, converted (bf16) or quantized (int8), and kept for
// the whole run. A peer runs in its own Python process per measurement (its start-up and model
// loading excluded from its own timing). A measurement
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
#include <pyramidion/tokenizer.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "machine.h"
#include "measure.h"
#include "op_profile.h"
#include "util/text.h"

namespace pyramidion {
namespace bench {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

struct Variant {
  std::string name;     // "deep-pyramidion fp32", or "LED (peer)"
  std::string config;   // the preset's or directory's stem ("" for a peer)
  std::string weights;  // fp32, fp32-plain, bf16, int8
  std::string peer_kind;      // "led", "hf", "ct2"; "" for pyramidion
  std::string compute_type;   // ct2: "float32", "int8"
  Seq2Seq model{nullptr};
  int64_t params = 0;
  bool peer() const { return !peer_kind.empty(); }
};

// The documents of one setting: ours (without the eos that collate appends for a source_eos
// model) and, for the PEGASUS peers, a JSON-lines file of the same ids as they read them.
struct Documents {
  TokenizedCorpus ours;
  std::string ids_path;  // "" when no PEGASUS peer runs
  int64_t count = 0;
  int64_t source_length = 0;  // S, eos included
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
  if (o.configs.empty() && o.checkpoints.empty())
    throw std::invalid_argument("summarize: --configs or --checkpoints needs at least one model");
  if (o.weights.empty()) throw std::invalid_argument("summarize: --weights needs at least one of fp32, fp32-plain, bf16, int8");
  for (const auto& w : o.weights)
    if (w != "fp32" && w != "fp32-plain" && w != "bf16" && w != "int8")
      throw std::invalid_argument("summarize: --weights = \"" + w +
                                  "\" must be one of \"fp32\", \"fp32-plain\", \"bf16\", \"int8\"");
  for (const auto& m : o.modes)
    if (!m.empty() && m != "one" && m != "budget")
      throw std::invalid_argument("summarize: --modes = \"" + m + "\" must be one of \"one\", \"budget\"");
  if (std::all_of(o.modes.begin(), o.modes.end(), [](const std::string& m) { return m.empty(); }) && o.sweep.empty()) throw std::invalid_argument("summarize: no --modes and no --sweep: nothing to run");
  for (const int64_t s : o.sweep) positive("--sweep (each length)", s);
  for (const auto& peer : o.peers) {
    if (peer != "led" && peer != "hf" && peer != "ct2")
      throw std::invalid_argument("summarize: --peer = \"" + peer + "\" must be \"led\", \"hf\" or \"ct2\"");
    if (o.peer_python.empty())
      throw std::invalid_argument("summarize: --peer " + peer + " needs --peer-python (scripts/setup_peer.sh prints it)");
    const auto& script = peer == "led" ? o.peer_script : o.pegasus_script;
    if (!std::ifstream(script)) throw std::invalid_argument("summarize: no peer script at " + script);
    if (peer == "led" && !o.checkpoints.empty())
      throw std::invalid_argument("summarize: --peer led runs at a preset's random sizes, not with --checkpoints");
    if (peer != "led" && (o.peer_model.empty() || o.checkpoints.empty()))
      throw std::invalid_argument("summarize: --peer " + peer + " needs --peer-model (scripts/pegasus_peer.py make) and "
                                  "--checkpoints (the same weights imported: pyramidion-import hf)");
  }
  if (o.peer_batch < 0)
    throw std::invalid_argument("summarize: --peer-batch must be >= 0, got " + std::to_string(o.peer_batch));
}

// A temporary file, removed with its owner.
struct TempFile {
  std::string path;
  TempFile() = default;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (!path.empty()) std::remove(path.c_str());
  }
};

// N random documents of S ids in [first_id, vocab) (below first_id: the special ids), no targets.
// A source_eos model reads S - 1 of them and eos (collate appends it); the PEGASUS peers read the
// same S ids from ids_file (JSON lines) when it is given.
Documents make_documents(int64_t n, int64_t S, const ModelConfig& config, int64_t first_id, uint64_t seed,
                         TempFile* ids_file) {
  const int64_t text = S - (config.source_eos ? 1 : 0);
  at::manual_seed(seed);
  const auto ids = at::randint(first_id, config.vocab_size, {n, text}, at::kLong).contiguous();  // (N, S')
  Documents d;
  d.count = n;
  d.source_length = S;
  const int64_t* p = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) d.ours.add(std::to_string(i), std::vector<int64_t>(p + i * text, p + (i + 1) * text), {});
  if (ids_file) {
    char name[] = "/tmp/pyramidion-bench-ids-XXXXXX";
    const int fd = ::mkstemp(name);
    if (fd < 0) throw std::runtime_error("summarize: cannot make a temporary file in /tmp");
    ::close(fd);
    ids_file->path = name;
    std::ofstream out(name);
    for (int64_t i = 0; i < n; ++i) {
      nlohmann::json row(std::vector<int64_t>(p + i * text, p + (i + 1) * text));
      if (config.source_eos) row.push_back(config.eos_id);
      out << row.dump() << "\n";
    }
    if (!out.flush()) throw std::runtime_error(std::string("summarize: cannot write ") + name);
    d.ids_path = name;
  }
  return d;
}

Sample run_ours(Variant& v, const TokenizedCorpus& docs, int64_t max_tokens, const SummarizeBenchOptions& o) {
  // pyramidion-summarize's search (beam, no repeated trigram), every summary exactly T tokens.
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

// A peer's process for the documents in batches of `batch`; reads its JSON line. LED builds its own
// random documents of the same sizes (n of them); the PEGASUS peers read ours.
Sample run_peer(const SummarizeBenchOptions& o, const Variant& v, const ModelConfig& led_sizes,
                const Documents& docs, int64_t n, int64_t batch, nlohmann::json& info) {
  std::ostringstream cmd;
  cmd << shell_quote(o.peer_python) << " ";
  if (v.peer_kind == "led") {
    cmd << shell_quote(o.peer_script) << " --documents " << n << " --batch " << batch << " --source-length "
        << docs.source_length << " --target-length " << o.target_length << " --beam " << o.beam << " --threads "
        << at::get_num_threads() << " --seed " << o.seed << " --d-model " << led_sizes.d_model << " --layers "
        << led_sizes.decoder_layers << " --heads " << led_sizes.heads << " --ffn " << led_sizes.ffn_size
        << " --vocab-size " << led_sizes.vocab_size << " --window " << std::max<int64_t>(led_sizes.block_size, 1);
  } else {
    const std::string model = o.peer_model + (v.peer_kind == "hf" ? "/hf" : "/ct2-" + v.compute_type);
    cmd << shell_quote(o.pegasus_script) << " run --engine " << v.peer_kind << " --model " << shell_quote(model)
        << " --ids " << shell_quote(docs.ids_path) << " --batch " << batch << " --beam " << o.beam
        << " --new-tokens " << o.target_length << " --no-repeat-ngram-size "
        << SummarizeOptions().search().no_repeat_ngram_size() << " --threads " << at::get_num_threads();
    if (v.peer_kind == "ct2") cmd << " --compute-type " << v.compute_type;
  }
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

// One run of the benchmark, in named steps: the variants, then each setting measured and reported.
class SummarizeBench {
 public:
  SummarizeBench(const SummarizeBenchOptions& o, const std::string& command) : o_(o), command_(command) {}

  void run() {
    make_variants();
    start_report();
    for (const auto& mode : o_.modes)
      if (!mode.empty() && o_.reps > 0) report_mode(mode);  // --modes "": the sweep only; --reps 0: profile only
    if (!o_.sweep.empty() && o_.reps > 0) report_sweep();
    if (o_.profile) report_profile();
    finish_report();
  }

 private:
  struct Setting {
    std::map<size_t, Series> series;
    int64_t batch = 0, peer_batch = 0;
  };

  int64_t longest() const {
    int64_t l = o_.source_length;
    for (const int64_t s : o_.sweep) l = std::max(l, s);
    return l;
  }

  void add_weights(const std::string& stem_name, const std::function<Seq2Seq()>& make) {
    for (const auto& w : o_.weights) {
      Variant v;
      v.config = stem_name;
      v.weights = w;
      v.name = v.config + " " + w;
      v.model = make();
      v.model->eval();
      // As Summarizer::to() leaves them: fp32 prepacked for oneDNN; fp32-plain is fp32 without it.
      if (w == "fp32") v.model->prepack_fp32();
      if (w == "bf16") v.model->to(at::kBFloat16);
      if (w == "int8") v.model->quantize_int8();
      for (const auto& p : v.model->parameters()) v.params += p.numel();
      variants_.push_back(std::move(v));
    }
  }

  // Every preset (or checkpoint) in every weights, then the peers.
  void make_variants() {
    if (!o_.checkpoints.empty()) {
      for (const auto& dir : o_.checkpoints) {
        // from_pretrained checks and loads the directory, once per weights.
        auto config = ModelConfig::from_json_file((std::filesystem::path(dir) / "config.json").string());
        config.max_source_length = std::max(config.max_source_length, longest());
        config.max_target_length = std::max(config.max_target_length, o_.target_length);
        add_weights(stem(dir), [&] { return Seq2Seq::from_pretrained(dir, config); });
        const auto tokenizer = std::filesystem::path(dir) / "tokenizer.model";
        if (std::filesystem::exists(tokenizer)) {  // documents of normal pieces: after every special id
          const auto t = Tokenizer::load(tokenizer.string());
          first_id_ = std::max({first_id_, t.unk_id() + 1, t.pad_id() + 1, t.eos_id() + 1, t.bos_id() + 1});
        }
      }
    } else {
      for (const auto& path : o_.configs) {
        auto config = ModelConfig::from_json_file(path);
        config.max_source_length = std::max(config.max_source_length, longest());
        config.max_target_length = std::max(config.max_target_length, o_.target_length);
        led_sizes_ = config;
        add_weights(stem(path), [&] {
          at::manual_seed(o_.seed + 1);
          return Seq2Seq(config);
        });
      }
    }
    for (const auto& peer : o_.peers) {
      const auto add = [&](const std::string& name, const std::string& compute_type) {
        Variant v;
        v.name = name;
        v.peer_kind = peer;
        v.compute_type = compute_type;
        v.weights = compute_type == "int8" ? "int8" : "fp32";
        variants_.push_back(std::move(v));
      };
      if (peer == "led") add("LED (peer)", "float32");
      if (peer == "hf") add("transformers fp32 (peer)", "float32");
      if (peer == "ct2") {
        add("CTranslate2 float32 (peer)", "float32");
        add("CTranslate2 int8 (peer)", "int8");
      }
    }
    config_ = variants_.front().model->config();
  }

  bool pegasus_peers() const {
    return std::any_of(variants_.begin(), variants_.end(),
                       [](const Variant& v) { return v.peer_kind == "hf" || v.peer_kind == "ct2"; });
  }

  // Every repetition of one setting: the variants `which` in order, warm-up first. tolerate_peer: a
  // failing peer run (e.g. out of memory at a long S) is reported and recorded as -1 s instead of
  // ending the benchmark.
  Setting run_setting(const std::string& label, int64_t S, int64_t n, int64_t max_tokens,
                      const std::vector<size_t>& which, bool tolerate_peer) {
    TempFile ids_file;
    const auto docs = make_documents(n, S, config_, first_id_, o_.seed, pegasus_peers() ? &ids_file : nullptr);
    Setting out;
    out.batch = max_tokens == 1 ? 1 : std::min(n, budget_batch(o_, S));
    // The peers: the same documents and batch, or (--peer-batch) one batch of that many documents.
    out.peer_batch = max_tokens == 1 || o_.peer_batch == 0 ? out.batch : o_.peer_batch;
    const int64_t peer_n = max_tokens == 1 || o_.peer_batch == 0 ? n : o_.peer_batch;
    for (int r = 0; r < o_.warmup + o_.reps; ++r) {
      const bool timed = r >= o_.warmup;
      for (const size_t i : which) {
        auto& v = variants_[i];
        if (v.peer() && !timed) continue;  // a peer warms up inside each of its runs
        Sample s;
        if (!v.peer()) {
          s = run_ours(v, docs.ours, max_tokens, o_);
        } else {
          try {
            s = run_peer(o_, v, led_sizes_, docs, peer_n, out.peer_batch, peer_info_[v.peer_kind]);
          } catch (const std::runtime_error& e) {
            if (!tolerate_peer) throw;
            std::fprintf(stderr, "[summarize] %s %s failed: %s\n", label.c_str(), v.name.c_str(), e.what());
            s.seconds = -1;
          }
        }
        std::fprintf(stderr, "[summarize] %s %s %s %d/%d: %.2f s, peak %s MiB\n", label.c_str(), v.name.c_str(),
                     timed ? "rep" : "warm-up", timed ? r - o_.warmup + 1 : r + 1, timed ? o_.reps : o_.warmup,
                     s.seconds, mib(s.peak_rss).c_str());
        if (timed) out.series[i].samples.push_back(s);
      }
    }
    return out;
  }

  void start_report() {
    const auto machine = describe_machine();
    json_ = {{"benchmark", "summarize"}, {"command", command_}, {"machine", to_json(machine)},
             {"source_length", o_.source_length}, {"target_length", o_.target_length}, {"beam", o_.beam},
             {"max_tokens", o_.max_tokens}, {"warmup", o_.warmup}, {"reps", o_.reps}, {"seed", o_.seed},
             {"load_average_start", load_average()}};
    md_ << "## Summarization throughput (pyramidion-bench summarize)\n\nCommand: `" << command_ << "`\n\n"
        << to_markdown(machine) << "- Load average (1 min, whole machine) at start: "
        << format_fixed(load_average(), 2) << "\n- "
        << (o_.checkpoints.empty() ? "Random weights" : "The weights of " + detail::quoted_list(o_.checkpoints))
        << " and random documents of S = " << o_.source_length << " tokens; exactly T = " << o_.target_length
        << " tokens per summary with beam " << o_.beam
        << " and no repeated trigram (pyramidion-summarize's search), through pyramidion::summarize_ids\n"
        << "- " << o_.warmup << " warm-up + " << o_.reps
        << " timed repetitions, interleaved: each repetition runs every variant once, in the order of the table; "
           "speed-ups are the median (min-max) of the per-repetition ratios\n"
        << "- Peak RSS: the process's peak resident memory during the run (VmHWM), extra: its growth over the "
           "resident memory before the run; the same measure for a peer's Python process\n";
  }

  int find(const std::string& config, const std::string& weights) const {
    for (size_t i = 0; i < variants_.size(); ++i)
      if (!variants_[i].peer() && variants_[i].config == config && variants_[i].weights == weights) return int(i);
    return -1;
  }

  std::vector<size_t> peer_indices() const {
    std::vector<size_t> out;
    for (size_t i = 0; i < variants_.size(); ++i)
      if (variants_[i].peer()) out.push_back(i);
    return out;
  }

  static bool failed(const Series& s) {
    return std::any_of(s.samples.begin(), s.samples.end(), [](const Sample& x) { return x.seconds <= 0; });
  }

  // Per document, for a peer that ran other documents than ours (--peer-batch).
  static Series per_document(const Series& x, int64_t docs) {
    Series y = x;
    for (auto& z : y.samples) z.seconds /= static_cast<double>(docs);
    return y;
  }

  void report_mode(const std::string& mode) {
    const bool budget = mode == "budget";
    const int64_t n = budget ? (o_.documents > 0 ? o_.documents : budget_batch(o_, o_.source_length)) : 1;
    std::vector<size_t> all(variants_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    const auto setting = run_setting(mode, o_.source_length, n, budget ? o_.max_tokens : 1, all, /*tolerate_peer=*/true);
    const auto& series = setting.series;
    const auto peers = peer_indices();
    const int64_t peer_docs = budget && o_.peer_batch > 0 ? o_.peer_batch : n;
    md_ << "\n### " << (budget ? "The job: " + std::to_string(n) + " documents under the budget max_tokens = " +
                                     std::to_string(o_.max_tokens) + " (batches of " + std::to_string(setting.batch) + ")"
                               : std::string("Latency: one document, batch 1"))
        << "\n\n| variant | params | batch | median s | docs/s | summary tokens/s | vs " << variants_.front().name
        << " | vs own fp32 |";
    for (const size_t p : peers) md_ << " vs " << variants_[p].name << " |";
    md_ << " peak RSS MiB | extra MiB |\n|:---|---:|---:|---:|---:|---:|---:|---:|";
    for (size_t k = 0; k < peers.size(); ++k) md_ << "---:|";
    md_ << "---:|---:|\n";
    nlohmann::json rows = nlohmann::json::array();
    for (size_t i = 0; i < variants_.size(); ++i) {
      const auto& v = variants_[i];
      const auto& s = series.at(i);
      const int64_t docs_i = v.peer() ? peer_docs : n;
      const int64_t batch_i = v.peer() ? setting.peer_batch : setting.batch;
      if (failed(s)) {
        md_ << "| " << v.name << " | - | " << batch_i << " | failed (see the log) | | | | |";
        for (size_t k = 0; k < peers.size(); ++k) md_ << " |";
        md_ << " | |\n";
        rows.push_back({{"variant", v.name}, {"failed", true}, {"batch", batch_i}});
        continue;
      }
      const double sec = s.median_seconds();
      const Series s_doc = per_document(s, docs_i);
      const Ratio vs_base = paired_ratio(per_document(series.at(0), n), s_doc);
      const int own = v.peer() ? -1 : find(v.config, "fp32");
      const Ratio vs_own = own >= 0 && own != int(i) ? paired_ratio(series.at(size_t(own)), s) : Ratio{};
      const int64_t params = v.peer() ? peer_info_[v.peer_kind].value("params", int64_t{0}) : v.params;
      md_ << "| " << v.name << " | " << (params > 0 ? format_fixed(params / 1e6, 1) + " M" : "-") << " | " << batch_i
          << " | " << format_fixed(sec, 2) << " | " << format_fixed(docs_i / sec, 3) << " | "
          << format_fixed(docs_i * o_.target_length / sec, 1) << " | " << times(vs_base) << " | " << times(vs_own) << " |";
      nlohmann::json vs_peers = nlohmann::json::object();
      for (const size_t p : peers) {
        const Ratio r = p != i && !failed(series.at(p)) ? paired_ratio(per_document(series.at(p), peer_docs), s_doc)
                                                        : Ratio{};
        md_ << " " << times(r) << " |";
        vs_peers[variants_[p].name] = {{"median", r.median}, {"min", r.min}, {"max", r.max}};
      }
      md_ << " " << mib(s.peak_rss()) << " | " << mib(s.peak_extra()) << " |\n";
      nlohmann::json seconds = nlohmann::json::array();
      for (const auto& x : s.samples) seconds.push_back(x.seconds);
      rows.push_back({{"variant", v.name}, {"config", v.config}, {"weights", v.weights}, {"peer", v.peer()},
                      {"params", params}, {"documents", docs_i}, {"batch", batch_i}, {"seconds", seconds},
                      {"median_seconds", sec}, {"docs_per_s", docs_i / sec},
                      {"tokens_per_s", docs_i * o_.target_length / sec},
                      {"vs_baseline", {{"median", vs_base.median}, {"min", vs_base.min}, {"max", vs_base.max}}},
                      {"vs_own_fp32", {{"median", vs_own.median}, {"min", vs_own.min}, {"max", vs_own.max}}},
                      {"vs_peers", vs_peers}, {"peak_rss_bytes", s.peak_rss()}, {"peak_extra_bytes", s.peak_extra()}});
    }
    if (budget && !peers.empty() && o_.peer_batch > 0)
      md_ << "\nThe peers ran one batch of " << o_.peer_batch << " documents (--peer-batch: the batch of "
          << setting.batch << " does not fit their memory here); their ratios are per document.\n";
    json_["modes"][mode] = {{"documents", n}, {"batch", setting.batch}, {"variants", rows}};
  }

  // Batch 1, one document per length, each model's first weights and the peers: documents/s and
  // memory per length, then each model against each peer at the lengths where the peer ran.
  void report_sweep() {
    std::vector<size_t> which;
    for (size_t i = 0; i < variants_.size(); ++i)
      if (variants_[i].peer() || variants_[i].weights == o_.weights.front()) which.push_back(i);
    std::map<size_t, std::vector<double>> sec, extra;
    std::vector<Setting> settings;
    nlohmann::json rows = nlohmann::json::array();
    std::vector<double> lengths;
    for (const int64_t S : o_.sweep) {
      lengths.push_back(static_cast<double>(S));
      settings.push_back(run_setting("sweep S=" + std::to_string(S), S, 1, 1, which, /*tolerate_peer=*/true));
      for (const size_t i : which) {
        const auto& s = settings.back().series.at(i);
        sec[i].push_back(failed(s) ? -1 : s.median_seconds());
        extra[i].push_back(failed(s) ? -1 : static_cast<double>(s.peak_extra()));
        if (failed(s)) {
          rows.push_back({{"variant", variants_[i].name}, {"source_length", S}, {"failed", true}});
          continue;
        }
        rows.push_back({{"variant", variants_[i].name}, {"source_length", S}, {"median_seconds", s.median_seconds()},
                        {"docs_per_s", 1.0 / s.median_seconds()}, {"peak_rss_bytes", s.peak_rss()},
                        {"peak_extra_bytes", s.peak_extra()}});
      }
    }
    const auto header = [&](const std::string& title, const std::string& last) {
      md_ << "\n### " << title << "\n\n| variant |";
      for (const int64_t S : o_.sweep) md_ << " S = " << S << " |";
      md_ << last << "\n|:---|";
      for (size_t k = 0; k < o_.sweep.size(); ++k) md_ << "---:|";
      md_ << (last.empty() ? "" : "---:|---:|") << "\n";
    };
    header("How the cost grows with the document (batch 1, one document)", " growth per doubling of S: time | memory |");
    nlohmann::json fits = nlohmann::json::object();
    for (const size_t i : which) {
      md_ << "| " << variants_[i].name << " |";
      bool all = true;
      for (size_t k = 0; k < o_.sweep.size(); ++k) {
        if (sec[i][k] <= 0) {
          md_ << " failed |";
          all = false;
          continue;
        }
        md_ << " " << format_fixed(1.0 / sec[i][k], 3) << " docs/s, " << mib(static_cast<int64_t>(extra[i][k]))
            << " MiB |";
      }
      if (!all || o_.sweep.size() < 2) {  // no fit over some of the lengths only
        md_ << " - | - |\n";
        continue;
      }
      const double t = growth_per_doubling(lengths, sec[i]), m = growth_per_doubling(lengths, extra[i]);
      md_ << " " << format_fixed(t, 2) << "x | " << format_fixed(m, 2) << "x |\n";
      fits[variants_[i].name] = {{"time_per_doubling", t}, {"memory_per_doubling", m}};
    }
    md_ << "\nCells: documents/s and the peak memory's growth over the resident memory before the run (extra). "
           "Growth per doubling: 2^slope of the least-squares line of log2(seconds) (and log2(extra memory)) "
           "against log2(S); 2x is linear, 4x quadratic; - where a length failed.\n";
    nlohmann::json against = nlohmann::json::array();
    for (const size_t p : peer_indices()) {
      header("Against " + variants_[p].name + " at the same S (speed-up: median (min-max) of the per-repetition "
             "ratios)", "");
      for (const size_t i : which) {
        if (variants_[i].peer()) continue;
        md_ << "| " << variants_[i].name << " |";
        for (size_t k = 0; k < o_.sweep.size(); ++k) {
          const auto& series = settings[k].series;
          if (failed(series.at(p)) || failed(series.at(i))) {
            md_ << " - |";
            continue;
          }
          const Ratio r = paired_ratio(series.at(p), series.at(i));
          md_ << " " << times(r) << " |";
          against.push_back({{"variant", variants_[i].name}, {"peer", variants_[p].name}, {"source_length", o_.sweep[k]},
                             {"median", r.median}, {"min", r.min}, {"max", r.max}});
        }
        md_ << "\n";
      }
      md_ << "\nCells: the peer's time over the variant's, per repetition; - where either failed at that length (see the log).\n";
    }
    json_["sweep"] = {{"lengths", o_.sweep}, {"points", rows}, {"fits", fits}, {"against_peers", against}};
  }

  // One run per mode of each model's first weights under LibTorch's profiler (untimed above).
  void report_profile() {
    for (const auto& mode : o_.modes) {
      if (mode.empty()) continue;
      const bool budget = mode == "budget";
      const int64_t n = budget ? (o_.documents > 0 ? o_.documents : budget_batch(o_, o_.source_length)) : 1;
      const auto docs = make_documents(n, o_.source_length, config_, first_id_, o_.seed, nullptr);
      for (auto& v : variants_) {
        if (v.peer() || v.weights != o_.weights.front()) continue;
        std::fprintf(stderr, "[summarize] profiling %s %s\n", mode.c_str(), v.name.c_str());
        md_ << "\n### Where the time goes: " << v.name << ", " << n << " document" << (n > 1 ? "s" : "") << " of "
            << o_.source_length << " tokens" << (budget ? " under the budget" : ", batch 1")
            << " (LibTorch's profiler, self time per operator)\n\n"
            << op_profile_markdown([&] { run_ours(v, docs.ours, budget ? o_.max_tokens : 1, o_); }, 14);
      }
    }
  }

  void finish_report() {
    for (const auto& [kind, info] : peer_info_) {
      if (!info.is_object()) continue;
      if (kind == "led")
        md_ << "\nPeer: Hugging Face transformers " << info.value("transformers", "?")
            << " (LED, random weights, fp32, " << info.value("threads", 0) << " threads, PyTorch "
            << info.value("torch", "?") << "), scripts/led_peer.py";
      if (kind == "hf") {
        const auto architecture = info.value("architecture", std::string("PegasusForConditionalGeneration"));
        const auto attention = info.value("attention_type", std::string("full"));
        md_ << "\nPeer: Hugging Face transformers " << info.value("transformers", "?") << " (" << architecture
            << (attention == "full" ? std::string() : " with " + attention + " encoder attention")
            << ", the same weights, fp32, " << info.value("threads", 0) << " threads, PyTorch "
            << info.value("torch", "?") << "), scripts/pegasus_peer.py";
      }
      if (kind == "ct2")
        md_ << "\nPeer: CTranslate2 " << info.value("ctranslate2", "?") << " (PEGASUS, the same weights converted by "
            << "its own converter, " << info.value("threads", 0) << " threads), scripts/pegasus_peer.py";
      md_ << "; its times exclude Python start-up and model loading.\n";
      json_["peers"][kind] = info;
    }
    md_ << "\n- Load average at end: " << format_fixed(load_average(), 2) << "\n";
    json_["load_average_end"] = load_average();
    emit_report(md_.str(), json_.dump(2) + "\n", o_.markdown_path, o_.json_path);
  }

  const SummarizeBenchOptions& o_;
  const std::string command_;
  std::vector<Variant> variants_;
  ModelConfig config_;      // the first model's: the documents' vocabulary and eos
  ModelConfig led_sizes_;   // the last preset's: LED's sizes
  int64_t first_id_ = 3;    // documents' ids from here (0-2: pad/bos/eos in every preset)
  std::map<std::string, nlohmann::json> peer_info_;  // by peer kind: its last result line
  std::ostringstream md_;
  nlohmann::json json_;
};

}  // namespace

void run_summarize_bench(const SummarizeBenchOptions& o, const std::string& command) {
  check_options(o);
  check_writable(o.json_path);
  check_writable(o.markdown_path);
  SummarizeBench(o, command).run();
}

}  // namespace bench
}  // namespace pyramidion
