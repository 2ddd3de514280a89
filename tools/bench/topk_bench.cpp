// `pyramidion-bench topk` (see topk_bench.h). Every method is timed the same way: the forward call,
// then torch::autograd::grad of its outputs with respect to x and the scores with fixed random
// upstream gradients (so no .grad accumulates), everything released before the next run. Methods
// take turns run by run (measure_interleaved), and the memory state every run starts from is fixed
// (--memory, see AllocationTracker): on a shared machine both otherwise move the ratios.
//
// Legend: b batch, n inputs, k outputs, d representation size.
#include "topk_bench.h"

#include <pyramidion/device.h>
#include <pyramidion/topk.h>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "machine.h"
#include "measure.h"
#include "naive_reference.h"

namespace pyramidion {
namespace bench {

const std::vector<std::string>& topk_methods() {
  static const std::vector<std::string> methods{"soft", "naive", "copy", "hard", "iterative"};
  return methods;
}

namespace {

struct Config {
  int64_t b, n, k, d;
};

std::string describe(const Config& c) {
  return "b=" + std::to_string(c.b) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
         " d=" + std::to_string(c.d);
}

// The tensors of one configuration, created once and shared by every method.
struct Inputs {
  at::Tensor x;            // (b, n, d) leaf, requires grad
  at::Tensor scores;       // (b, n)    leaf, requires grad; uniform in (0, 1) + 1e-5 like the paper's scorer
  at::Tensor grad_values;  // (b, k, d) upstream gradient of the pooled representations
  at::Tensor grad_scores;  // (b, k)    upstream gradient of the pooled scores
  at::Tensor grad_copy;    // (b, n, d) upstream gradient of the copy (only when copy runs)
  int64_t k = 0;
  double base = 20;
};

Inputs make_inputs(const Config& c, double base, uint64_t seed, bool with_copy, const at::Device& device) {
  at::manual_seed(seed);  // drawn on the CPU, then moved: the same numbers on every device
  Inputs in;
  in.x = at::randn({c.b, c.n, c.d}).to(device).requires_grad_(true);
  in.scores = (at::rand({c.b, c.n}) + 1e-5).to(device).requires_grad_(true);
  in.grad_values = at::randn({c.b, c.k, c.d}).to(device);
  in.grad_scores = at::randn({c.b, c.k}).to(device);
  if (with_copy) in.grad_copy = at::randn({c.b, c.n, c.d}).to(device);
  in.k = c.k;
  in.base = base;
  return in;
}

// One forward call: what to differentiate, with respect to what, with which upstream gradients.
struct Pass {
  std::vector<at::Tensor> outputs, grad_outputs, inputs;
};

Pass topk_pass(const Inputs& in, const at::Tensor& values, const at::Tensor& scores) {
  return {{values, scores}, {in.grad_values, in.grad_scores}, {in.x, in.scores}};
}

Pass forward(const std::string& method, const Inputs& in) {
  if (method == "soft") {
    const auto r = successive_halving_topk(in.x, in.scores, in.k, TopKOptions().base(in.base));
    return topk_pass(in, r.values, r.scores);
  }
  if (method == "naive") {
    const auto r = naive_successive_halving_topk(in.x, in.scores, in.k, in.base);
    return topk_pass(in, r.values, r.scores);
  }
  if (method == "copy") return {{in.x.clone()}, {in.grad_copy}, {in.x}};
  if (method == "hard") {
    const auto r = hard_topk(in.x, in.scores, in.k);
    return topk_pass(in, r.values, r.scores);
  }
  if (method == "iterative") {
    const auto r = iterative_softmax_topk(in.x, in.scores, in.k);
    return topk_pass(in, r.values, r.scores);
  }
  throw std::invalid_argument("pyramidion-bench topk: unknown method '" + method + "'");
}

std::vector<at::Tensor> backward(const Pass& pass) {
  return torch::autograd::grad(pass.outputs, pass.inputs, pass.grad_outputs, /*retain_graph=*/false,
                               /*create_graph=*/false, /*allow_unused=*/true);
}

struct Result {
  Config config;
  std::string method;
  int warmup = 0, reps = 0;
  std::vector<double> fwd_ms, bwd_ms, total_ms;  // per timed repetition
  int64_t peak_extra_bytes = -1;                 // -1: not measured
  std::string note;                              // why this method ran differently, if it did

  double fwd() const { return median(fwd_ms); }
  double bwd() const { return median(bwd_ms); }
  double total() const { return median(total_ms); }
};

// One timed (or warm-up) run of a method: forward, backward, peak memory; everything it allocated
// is released before it returns.
void run_once(Result& r, const Inputs& in, bool warm_memory, bool timed, int run, int runs) {
  if (!warm_memory) AllocationTracker::release_free_memory();
  AllocationTracker::reset_peak();
  const int64_t live_before = AllocationTracker::live_bytes();
  const auto device = in.x.device();
  double fwd_ms = 0, bwd_ms = 0;
  {
    synchronize(device);
    Stopwatch fwd_clock;
    const Pass pass = forward(r.method, in);
    synchronize(device);
    fwd_ms = fwd_clock.ms();
    Stopwatch bwd_clock;
    const auto grads = backward(pass);
    synchronize(device);
    bwd_ms = bwd_clock.ms();
  }
  if (AllocationTracker::installed())
    r.peak_extra_bytes = std::max(r.peak_extra_bytes, AllocationTracker::peak_bytes() - live_before);
  if (timed) {
    r.fwd_ms.push_back(fwd_ms);
    r.bwd_ms.push_back(bwd_ms);
    r.total_ms.push_back(fwd_ms + bwd_ms);
  }
  std::fprintf(stderr, "[topk] %s %-9s run %d/%d%s: fwd %.1f ms, bwd %.1f ms\n", describe(r.config).c_str(),
               r.method.c_str(), run, runs, timed ? "" : " (warm-up)", fwd_ms, bwd_ms);
}

// Runs the methods in rounds, each round running every method once, so that a change in the load
// of a shared machine during the benchmark affects every method alike instead of the ones that
// happened to run at that moment. A method with fewer runs takes part in the last rounds only.
void measure_interleaved(std::vector<Result>& methods, const Inputs& in, bool warm_memory) {
  int rounds = 0;
  for (const auto& r : methods) rounds = std::max(rounds, r.warmup + r.reps);
  for (int round = 0; round < rounds; ++round)
    for (auto& r : methods) {
      const int runs = r.warmup + r.reps, run = round - (rounds - runs);
      if (run >= 0) run_once(r, in, warm_memory, /*timed=*/run >= r.warmup, run + 1, runs);
    }
}

// Relative disagreement of two tensors: max |a - b| / max(1, max |b|).
double relative_diff(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a - b).abs().max().item<double>() / scale;
}

// (a) and (b) must compute the same function: values, scores and both gradients, on a small input.
double verify_soft_against_naive(double base, uint64_t seed, const at::Device& device) {
  constexpr double kTolerance = 1e-4;
  const Config small{2, 64, 8, 16};
  const Inputs in = make_inputs(small, base, seed, /*with_copy=*/false, device);
  const Pass soft = forward("soft", in), naive = forward("naive", in);
  const auto soft_grads = backward(soft), naive_grads = backward(naive);
  const std::vector<std::pair<std::string, double>> diffs{
      {"values", relative_diff(soft.outputs[0], naive.outputs[0])},
      {"scores", relative_diff(soft.outputs[1], naive.outputs[1])},
      {"grad x", relative_diff(soft_grads[0], naive_grads[0])},
      {"grad scores", relative_diff(soft_grads[1], naive_grads[1])}};
  double worst = 0;
  for (const auto& [what, diff] : diffs) {
    if (!(diff <= kTolerance)) {
      std::ostringstream msg;
      msg << "soft (pyramidion) and naive disagree on " << what << " at " << describe(small)
          << " base=" << base << ": relative difference " << diff << " > " << kTolerance
          << "; the timings would compare different things";
      throw std::runtime_error(msg.str());
    }
    worst = std::max(worst, diff);
  }
  return worst;
}


std::string format_ms(double ms) { return format_fixed(ms, ms < 10 ? 2 : 1); }

const Result* find(const std::vector<Result>& results, const Config& c, const std::string& method) {
  for (const auto& r : results)
    if (r.method == method && r.config.b == c.b && r.config.n == c.n && r.config.k == c.k &&
        r.config.d == c.d)
      return &r;
  return nullptr;
}

// Everything a report shows.
struct Report {
  const TopKBenchOptions* options = nullptr;
  std::string command;
  Machine machine;
  double load_start = -1, load_end = -1;  // 1-minute load average of the machine
  double verify_diff = 0;                 // soft vs naive at the start, max relative difference
  std::string gpu;                        // the CUDA device's name (empty on the CPU)
  std::vector<Config> configs;
  std::vector<Result> results;
  std::vector<std::string> notes;
};

std::string markdown_report(const Report& rep) {
  const TopKBenchOptions& o = *rep.options;
  std::ostringstream out;
  const bool cuda = o.device != "cpu";
  out << "## Soft top-k, forward + backward on " << (cuda ? o.device : "the CPU") << " (pyramidion-bench topk)\n\n"
      << "Command: `" << rep.command << "`\n\n"
      << to_markdown(rep.machine) << "- Load average (1 min, whole machine): " << format_fixed(rep.load_start, 2)
      << " at start, " << format_fixed(rep.load_end, 2) << " at end\n"
      << "- fp32 on " << (cuda ? o.device + " (" + rep.gpu + "; clock read after a device synchronize)" : "the CPU")
      << ", base " << o.base << ", seed " << o.seed << "; " << o.warmup << " warm-up + "
      << o.reps << (o.reps == 1 ? " timed run" : " timed runs")
      << " per method unless noted, methods interleaved round by round; medians\n"
      << "- Memory: "
      << (cuda ? std::string("LibTorch's CUDA caching allocator (not counted)")
               : o.memory + (o.memory == "warm"
                                 ? " (freed blocks are kept and reused by size: after the warm-up no run touches new "
                                   "pages, as with a caching allocator)"
                                 : " (before every run the allocator's free memory goes back to the system: every "
                                   "run pays for first touching the memory it allocates, as with LibTorch's "
                                   "non-caching CPU allocator)"))
      << "\n\n"
      << "| b | n | k | d | method | fwd ms | bwd ms | fwd+bwd ms | vs soft | peak extra MiB |\n"
      << "|---:|---:|---:|---:|:---|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rep.results) {
    const Result* soft = find(rep.results, r.config, "soft");
    const std::string ratio = soft && soft->total() > 0 ? format_fixed(r.total() / soft->total(), 2) + "x" : "-";
    const std::string peak = r.peak_extra_bytes >= 0 ? format_fixed(r.peak_extra_bytes / 1048576.0, 1) : "-";
    const std::string runs = r.note.empty() ? "" : " (" + std::to_string(r.reps) + " run)";
    out << "| " << r.config.b << " | " << r.config.n << " | " << r.config.k << " | " << r.config.d << " | "
        << r.method << runs << " | " << format_ms(r.fwd()) << " | " << format_ms(r.bwd()) << " | "
        << format_ms(r.total()) << " | " << ratio << " | " << peak << " |\n";
  }
  out << "\n";
  for (const auto& c : rep.configs) {
    const Result* soft = find(rep.results, c, "soft");
    const Result* naive = find(rep.results, c, "naive");
    const Result* copy = find(rep.results, c, "copy");
    if (!soft || (!naive && !copy)) continue;
    // The targets of the issue are stated at the paper's pooling size only.
    const bool reference = c.b == 16 && c.n == 8192 && c.k == 512 && c.d == 512;
    out << "- " << describe(c) << ":";
    if (naive)
      out << " naive / soft = " << format_fixed(naive->total() / soft->total(), 2) << (reference ? " (target >= 3)" : "");
    if (naive && copy) out << ";";
    if (copy)
      out << " soft / copy = " << format_fixed(soft->total() / copy->total(), 2) << (reference ? " (target <= 3)" : "");
    out << " (fwd+bwd medians)\n";
  }
  out << "- Checked first: soft and naive agree on values, scores and both gradients at b=2 n=64 k=8 d=16 "
         "(max relative difference "
      << std::setprecision(2) << rep.verify_diff << ", tolerance 1e-4)\n";
  for (const auto& r : rep.results)
    if (!r.note.empty()) out << "- " << r.method << " at " << describe(r.config) << ": " << r.note << "\n";
  for (const auto& note : rep.notes) out << "- " << note << "\n";
  out << "\nsoft = pyramidion::successive_halving_topk; naive = the authors' formulation (a loop over the "
         "batch; "
         "per round a sort, index_select of the best half and the reversed worst half, "
         "softmax([base^s_a, base^s_b]) and the blend; autograd backward); copy = x.clone() and its "
         "backward, the "
         "memory floor (one read and one write of x; the backward passes the gradient through); hard = "
         "pyramidion::hard_topk; iterative = pyramidion::iterative_softmax_topk (temperature 1). fwd = the "
         "forward "
         "call; bwd = torch::autograd::grad of the outputs (values and scores) with respect to x and the "
         "scores, "
         "with fixed random upstream gradients. Peak extra = the most bytes of LibTorch CPU allocations "
         "alive "
         "during one fwd+bwd beyond those alive before it (outputs, saved tensors, gradients, temporaries; "
         "not "
         "the inputs).\n";
  return out.str();
}

nlohmann::json json_report(const Report& rep) {
  const TopKBenchOptions& o = *rep.options;
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : rep.results) {
    const Result* soft = find(rep.results, r.config, "soft");
    nlohmann::json row{{"b", r.config.b},          {"n", r.config.n},
                       {"k", r.config.k},          {"d", r.config.d},
                       {"method", r.method},       {"warmup", r.warmup},
                       {"reps", r.reps},           {"fwd_ms_median", r.fwd()},
                       {"bwd_ms_median", r.bwd()}, {"total_ms_median", r.total()},
                       {"fwd_ms", r.fwd_ms},       {"bwd_ms", r.bwd_ms},
                       {"total_ms", r.total_ms},   {"peak_extra_bytes", r.peak_extra_bytes}};
    row["ratio_vs_soft"] =
        soft && soft->total() > 0 ? nlohmann::json(r.total() / soft->total()) : nlohmann::json();
    if (!r.note.empty()) row["note"] = r.note;
    rows.push_back(row);
  }
  nlohmann::json machine = to_json(rep.machine);
  machine["load_average_start"] = rep.load_start;
  machine["load_average_end"] = rep.load_end;
  return {{"benchmark", "topk"},
          {"command", rep.command},
          {"machine", machine},
          {"settings",
           {{"dtype", "float32"},
            {"device", o.device},
            {"gpu", rep.gpu},
            {"base", o.base},
            {"warmup", o.warmup},
            {"reps", o.reps},
            {"seed", o.seed},
            {"methods", o.methods},
            {"interleaved", true},
            {"memory", o.memory}}},
          {"verify_max_relative_diff", rep.verify_diff},
          {"results", rows},
          {"notes", rep.notes}};
}

void check_options(const TopKBenchOptions& o) {
  const auto positive = [](const char* what, const std::vector<int64_t>& values) {
    if (values.empty())
      throw std::invalid_argument(std::string("topk: ") + what + " needs at least one value");
    for (const auto v : values)
      if (v < 1)
        throw std::invalid_argument(std::string("topk: ") + what + " must be >= 1, got " + std::to_string(v));
  };
  positive("b", o.batch);
  positive("n", o.tokens);
  positive("k", o.keep);
  positive("d", o.dim);
  if (!(o.base > 1) || !std::isfinite(o.base))
    throw std::invalid_argument("topk: base must be finite and > 1, got " + std::to_string(o.base));
  if (o.warmup < 0) throw std::invalid_argument("topk: warmup must be >= 0, got " + std::to_string(o.warmup));
  if (o.reps < 1) throw std::invalid_argument("topk: reps must be >= 1, got " + std::to_string(o.reps));
  if (o.methods.empty()) throw std::invalid_argument("topk: choose at least one method");
  if (o.memory != "cold" && o.memory != "warm")
    throw std::invalid_argument("topk: memory must be cold or warm, got '" + o.memory + "'");
  for (const auto& m : o.methods)
    if (std::find(topk_methods().begin(), topk_methods().end(), m) == topk_methods().end())
      throw std::invalid_argument("topk: unknown method '" + m +
                                  "' (choose from soft, naive, copy, hard, iterative)");
}

// The sweep's configurations (b, n, k, d) with k <= n; the others noted as skipped.
std::vector<Config> sweep(const TopKBenchOptions& o, std::vector<std::string>& notes) {
  std::vector<Config> configs;
  for (const auto b : o.batch)
    for (const auto n : o.tokens)
      for (const auto k : o.keep)
        for (const auto d : o.dim) {
          if (k > n) {
            notes.push_back("Skipped b=" + std::to_string(b) + " n=" + std::to_string(n) +
                            " k=" + std::to_string(k) + " d=" + std::to_string(d) + ": k > n.");
            continue;
          }
          configs.push_back({b, n, k, d});
        }
  if (configs.empty()) throw std::invalid_argument("topk: no configuration with k <= n to run");
  return configs;
}

// The methods to time at configuration c (the asked ones it supports), with their repetitions:
// iterative softmax, O(b k n d), runs once or not at all where it would take too long.
std::vector<Result> plan(const TopKBenchOptions& o, const Config& c, std::vector<std::string>& notes) {
  std::vector<Result> planned;
  for (const auto& method : topk_methods()) {
    if (std::find(o.methods.begin(), o.methods.end(), method) == o.methods.end()) continue;
    if (method == "naive" && !naive_supports(c.n, c.k)) {
      notes.push_back("naive skipped at " + describe(c) + ": the authors' formulation needs n / k a power of two.");
      continue;
    }
    Result r;
    r.config = c;
    r.method = method;
    r.warmup = o.warmup;
    r.reps = o.reps;
    const double work = static_cast<double>(c.b) * c.k * c.n * c.d;  // iterative softmax is O(b k n d)
    if (method == "iterative" && !o.methods_explicit && work > o.iterative_full_limit) {
      std::ostringstream msg;
      msg << std::setprecision(2) << "iterative softmax costs O(b k n d) = " << work << " here";
      if (work > o.iterative_once_limit) {
        msg << " > " << o.iterative_once_limit << "; name it in --methods to run it.";
        notes.push_back("iterative skipped at " + describe(c) + ": " + msg.str());
        continue;
      }
      msg << " > " << o.iterative_full_limit << ", so it ran once with no warm-up; name it in --methods to give "
          << "it --warmup/--reps";
      r.warmup = 0;
      r.reps = 1;
      r.note = msg.str();
    }
    planned.push_back(std::move(r));
  }
  return planned;
}

}  // namespace

void run_topk_bench(const TopKBenchOptions& o, const std::string& command) {
  check_options(o);
  check_writable(o.json_path);
  check_writable(o.markdown_path);
  Report rep;
  rep.options = &o;
  rep.command = command;
  rep.load_start = load_average();
  rep.configs = sweep(o, rep.notes);

  const at::Device device = parse_device(o.device, "--device").resolve(0);
  if (device.is_cuda()) rep.gpu = cuda_device_name(device);
  if (!device.is_cuda()) AllocationTracker::install();  // counts CPU allocations only
  const bool warm = o.memory == "warm";
  AllocationTracker::set_reuse(warm);
  if (warm && o.warmup == 0)
    rep.notes.push_back("--memory warm with --warmup 0: the first run of each method touched new pages.");
  std::fprintf(stderr, "[topk] checking soft against naive on a small input\n");
  rep.verify_diff = verify_soft_against_naive(o.base, o.seed, device);

  const bool copy = std::find(o.methods.begin(), o.methods.end(), "copy") != o.methods.end();
  for (size_t ci = 0; ci < rep.configs.size(); ++ci) {
    const Config& c = rep.configs[ci];
    std::fprintf(stderr, "[topk] configuration %zu/%zu: %s\n", ci + 1, rep.configs.size(), describe(c).c_str());
    std::vector<Result> planned = plan(o, c, rep.notes);
    if (planned.empty()) continue;
    const Inputs in = make_inputs(c, o.base, o.seed, copy, device);
    measure_interleaved(planned, in, warm);
    for (auto& r : planned) {
      std::fprintf(stderr, "[topk] %s %-9s median fwd+bwd %.1f ms\n", describe(c).c_str(), r.method.c_str(),
                   r.total());
      rep.results.push_back(std::move(r));
    }
    AllocationTracker::release_free_memory();  // the next configuration allocates other sizes
  }

  rep.load_end = load_average();
  rep.machine = describe_machine();
  emit_report(markdown_report(rep), json_report(rep).dump(2) + "\n", o.markdown_path, o.json_path);
}

}  // namespace bench
}  // namespace pyramidion
