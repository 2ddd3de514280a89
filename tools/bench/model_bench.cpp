// `pyramidion-bench model` (see model_bench.h). Variants run one after another, each with a model
// built fresh from the same seed; all see the same source and target ids. Per variant:
//   training step: zero_grad, forward (teacher forcing, dropout as configured), cross-entropy over
//                  the vocabulary, backward, Adam step; fwd+loss / bwd / Adam are timed separately
//   encoder fwd:   encode() alone in training mode with autograd on (the encoder's share of fwd)
//   encode (eval): encode() + start_decoding() under eval/no-grad, the part of generation before
//                  the first token
//   greedy, beam 4: pyramidion::generate with max_length = min_length = t, so eos is masked out and
//                  every variant generates exactly t tokens per example
// Peak memory is LibTorch's CPU allocations (AllocationTracker) during the training step, counted
// from zero: weights, Adam state, gradients and activations; freed memory goes back to the system
// before every run ("cold", as LibTorch's non-caching CPU allocator behaves).
//
// Legend: b batch, n source tokens, t target tokens, k cross-attention memory rows, v vocabulary.
#include "model_bench.h"

#include <pyramidion/config.h>
#include <pyramidion/device.h>
#include <pyramidion/generate.h>
#include <pyramidion/model.h>
#include <pyramidion/precision.h>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/optim/adam.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <tuple>
#include <stdexcept>

#include "machine.h"
#include "measure.h"
#include "training/autocast.h"

namespace pyramidion {
namespace bench {
namespace {

constexpr int64_t kBeam = 4;
constexpr double kMiB = 1024.0 * 1024.0;

// Medians (ms) and sizes of one variant.
struct Result {
  std::string name;  // the preset's file stem
  std::string path;
  ModelConfig config;
  std::vector<int64_t> rows;  // encoder rows entering each layer's self-attention, then what the
                              // last layer leaves: rows[i] for layer i, rows.back() = k
  int64_t k = 0;              // cross-attention memory rows (checked against encode())
  int64_t params = 0;
  double train = 0, fwd = 0, bwd = 0, adam = 0, enc_train = 0;  // training step and its parts
  double peak_bytes = 0;        // highest LibTorch CPU allocation total during a step
  double peak_extra_bytes = 0;  // the same above what was live before the step (weights, Adam state)
  double encode_eval = 0, greedy = 0, beam = 0;
  double loss = 0;  // of the last step, a sanity value (about log v for a new model)
};


// "-" for what did not run (--steps-only, --generate-only).
std::string format_ms(double ms) { return ms > 0 ? format_fixed(ms, ms < 10 ? 2 : 1) : "-"; }
std::string format_mib(double bytes) { return bytes > 0 ? format_fixed(bytes / kMiB, 0) : "-"; }

std::string ratio(double base, double x) { return x > 0 && base > 0 ? format_fixed(base / x, 2) + "x" : "-"; }

// Rows entering each encoder layer, then the memory length k; the pooling schedule of config.h.
std::vector<int64_t> encoder_rows(const ModelConfig& c, int64_t n) {
  std::vector<int64_t> rows{n};
  for (int64_t i = 0; i < c.encoder_layers; ++i) {
    const int64_t keep = c.pooled_lengths.empty() ? 0 : c.pooled_lengths[i];
    rows.push_back(keep > 0 ? std::min(rows.back(), keep) : rows.back());
  }
  return rows;
}

// Encoder self-attention per layer: "n/block" (blocks of block_size) or "n full".
std::string attention_sizes(const ModelConfig& c, const std::vector<int64_t>& rows) {
  std::string s;
  for (int64_t i = 0; i < c.encoder_layers; ++i) {
    if (i) s += ", ";
    s += std::to_string(rows[i]);
  }
  s += c.block_size > 0 ? " (blocks of " + std::to_string(c.block_size) + ")" : " (full)";
  return s;
}



void check_options(const ModelBenchOptions& o) {
  if (o.configs.empty()) throw std::invalid_argument("model: --configs needs at least one preset");
  if (o.source_length < 1)
    throw std::invalid_argument("model: source length must be >= 1, got " + std::to_string(o.source_length));
  if (o.target_length < 2)
    throw std::invalid_argument("model: target length must be >= 2, got " + std::to_string(o.target_length));
  if (o.batch < 1) throw std::invalid_argument("model: batch must be >= 1, got " + std::to_string(o.batch));
  if (o.warmup < 0) throw std::invalid_argument("model: warmup must be >= 0, got " + std::to_string(o.warmup));
  if (o.reps < 1) throw std::invalid_argument("model: reps must be >= 1, got " + std::to_string(o.reps));
  if (!o.train && !o.generate)
    throw std::invalid_argument("model: --steps-only and --generate-only exclude each other");
  if (o.precisions.empty()) throw std::invalid_argument("model: --precisions needs at least one precision");
  const at::Device device = parse_device(o.device, "--device").resolve(0);
  for (const auto& name : o.precisions) check_precision(parse_precision(name, "--precisions"), device);
}

// The same ids for every variant: sources (b, n) and targets (b, t) uniform over the ids
// [3, vocab) shared by all the presets (0-2 are pad/bos/eos in every preset).
struct Inputs {
  at::Tensor src;     // (b, n) int64
  at::Tensor mask;    // (b, n) bool, all real
  at::Tensor tgt_in;  // (b, t) int64: bos, then the target shifted right
  at::Tensor tgt;     // (b, t) int64: what the decoder is trained to predict
  at::Device device = at::kCPU;  // where the tensors and every model live
};

Inputs make_inputs(const ModelBenchOptions& o, int64_t vocab, int64_t bos, const at::Device& device) {
  at::manual_seed(o.seed);  // drawn on the CPU, then moved: the same ids on every device
  Inputs in;
  in.src = at::randint(3, vocab, {o.batch, o.source_length}, at::kLong);
  in.mask = at::ones({o.batch, o.source_length}, at::kBool);
  in.tgt = at::randint(3, vocab, {o.batch, o.target_length}, at::kLong);
  in.tgt_in = at::cat({at::full({o.batch, 1}, bos, at::kLong), in.tgt.narrow(1, 0, o.target_length - 1)}, 1);
  in.src = in.src.to(device), in.mask = in.mask.to(device), in.tgt = in.tgt.to(device), in.tgt_in = in.tgt_in.to(device);
  in.device = device;
  return in;
}

// A model of `config` with the seed's initial weights (the same for variants of the same shapes),
// on the inputs' device.
Seq2Seq make_model(const ModelBenchOptions& o, const ModelConfig& config, const Inputs& in) {
  at::manual_seed(o.seed + 1);
  Seq2Seq model(config);
  model->to(in.device);
  return model;
}

// Runs f warmup + reps times, returning the medians of what each call reports (ms per part).
template <typename F>
std::vector<double> measure(int warmup, int reps, size_t parts, F f, const std::string& what) {
  std::vector<std::vector<double>> samples(parts);
  for (int r = 0; r < warmup + reps; ++r) {
    AllocationTracker::release_free_memory();
    const std::vector<double> ms = f();
    std::fprintf(stderr, "[model] %s %s %d/%d: %.1f ms\n", what.c_str(), r < warmup ? "warm-up" : "rep",
                 r < warmup ? r + 1 : r - warmup + 1, r < warmup ? warmup : reps, ms[0]);
    if (r < warmup) continue;
    for (size_t p = 0; p < parts; ++p) samples[p].push_back(ms[p]);
  }
  std::vector<double> medians;
  for (auto& s : samples) medians.push_back(median(s));
  return medians;
}

// The training step (forward, backward, Adam) and the encoder's forward pass with autograd.
void measure_training(const ModelBenchOptions& o, Seq2Seq& model, const Inputs& in, Result& r) {
  model->train();
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-4));
  const int64_t v = r.config.vocab_size;
  auto step = [&]() -> std::vector<double> {
    const int64_t live_before = AllocationTracker::live_bytes();
    AllocationTracker::reset_peak();
    synchronize(in.device);
    Stopwatch total;
    adam.zero_grad();
    Stopwatch t_fwd;
    const at::Tensor logits = model->forward(in.src, in.mask, in.tgt_in);  // (b, t, v)
    at::Tensor loss = at::cross_entropy_loss(logits.reshape({-1, v}), in.tgt.reshape({-1}));
    synchronize(in.device);
    const double fwd = t_fwd.ms();
    Stopwatch t_bwd;
    loss.backward();
    synchronize(in.device);
    const double bwd = t_bwd.ms();
    Stopwatch t_adam;
    adam.step();
    synchronize(in.device);
    const double ms_adam = t_adam.ms();
    const double ms_total = total.ms();
    r.loss = loss.item<double>();
    r.peak_bytes = std::max(r.peak_bytes, static_cast<double>(AllocationTracker::peak_bytes()));
    r.peak_extra_bytes =
        std::max(r.peak_extra_bytes, static_cast<double>(AllocationTracker::peak_bytes() - live_before));
    return {ms_total, fwd, bwd, ms_adam};
  };
  const auto m = measure(o.warmup, o.reps, 4, step, r.name + " training step");
  r.train = m[0], r.fwd = m[1], r.bwd = m[2], r.adam = m[3];
  adam.zero_grad();
  auto encoder_forward = [&]() -> std::vector<double> {
    synchronize(in.device);
    Stopwatch t;
    const EncoderOutput out = model->encode(in.src, in.mask);  // (b, k, d), with autograd graph
    synchronize(in.device);
    return {t.ms()};
  };
  r.enc_train = measure(o.warmup, o.reps, 1, encoder_forward, r.name + " encoder fwd (train)")[0];
}

// Encoding in eval mode, and greedy and beam-4 generation of exactly target_length tokens.
void measure_generation(const ModelBenchOptions& o, Seq2Seq& model, const Inputs& in, Result& r) {
  model->eval();
  torch::NoGradGuard no_grad;
  auto encode_eval = [&]() -> std::vector<double> {
    synchronize(in.device);
    Stopwatch t;
    const EncoderOutput out = model->encode(in.src, in.mask);
    const DecoderState state = model->start_decoding(out);
    synchronize(in.device);
    return {t.ms()};
  };
  r.encode_eval = measure(o.warmup, o.reps, 1, encode_eval, r.name + " encode (eval)")[0];
  auto generation = [&](int64_t beam) {
    return [&, beam]() -> std::vector<double> {
      synchronize(in.device);
      Stopwatch t;
      const Generation g = generate(model, in.src, in.mask,
                                    GenerateOptions()
                                        .beam_size(beam)
                                        .max_length(o.target_length)
                                        .min_length(o.target_length));
      synchronize(in.device);
      const double ms = t.ms();
      if (g.tokens.size(1) != o.target_length)
        throw std::runtime_error("model: " + r.name + ": beam " + std::to_string(beam) + " generated " +
                                 std::to_string(g.tokens.size(1)) + " tokens, expected " +
                                 std::to_string(o.target_length));
      return std::vector<double>{ms};
    };
  };
  r.greedy = measure(o.warmup, o.reps, 1, generation(1), r.name + " greedy")[0];
  r.beam = measure(o.warmup, o.reps, 1, generation(kBeam), r.name + " beam 4")[0];
}

Result run_variant(const ModelBenchOptions& o, const std::string& path, const ModelConfig& config,
                   const Inputs& in) {
  Result r;
  r.path = path;
  r.name = stem(path);
  r.config = config;
  r.rows = encoder_rows(config, o.source_length);

  Seq2Seq model = make_model(o, config, in);
  for (const auto& p : model->parameters()) r.params += p.numel();
  {
    torch::NoGradGuard no_grad;
    model->eval();
    r.k = model->encode(in.src, in.mask).memory.size(1);
  }
  if (r.k != r.rows.back())
    throw std::runtime_error("model: " + r.name + ": encode() left " + std::to_string(r.k) +
                             " memory rows, the pooling schedule says " + std::to_string(r.rows.back()));

  if (o.train) measure_training(o, model, in, r);
  if (o.generate) measure_generation(o, model, in, r);
  return r;
}

// One variant at one precision, measured interleaved with the other precisions (0: not measured).
struct PrecisionResult {
  std::string variant, precision;
  double train = 0, greedy = 0, beam = 0;                    // medians (ms)
  double train_ratio = 0, greedy_ratio = 0, beam_ratio = 0;  // median over repetitions of first-precision ms / this ms
  double beam_ratio_low = 0, beam_ratio_high = 0;            // the spread of those beam ratios
};

// The median of the per-repetition ratios first / p (0 when nothing was measured).
double median_ratio(const std::vector<std::vector<double>>& ms, size_t p) {
  std::vector<double> ratios;
  for (size_t i = 0; i < ms[p].size(); ++i) ratios.push_back(ms[0][i] / ms[p][i]);
  return ratios.empty() ? 0 : median(ratios);
}

// Training steps of one variant at each precision of o.precisions, interleaved (p1 p2 p1 p2 ...),
// as the trainer runs them: float32 weights and Adam state, the forward pass and the loss under
// autocast (training/autocast.h), the loss in float32. Returns the step times (ms) per precision.
std::vector<std::vector<double>> measure_training_precisions(const ModelBenchOptions& o, const std::string& path,
                                                             const ModelConfig& config, const Inputs& in) {
  const size_t P = o.precisions.size();
  std::vector<Seq2Seq> models;
  std::vector<std::unique_ptr<torch::optim::Adam>> adams;
  for (size_t p = 0; p < P; ++p) {
    models.push_back(make_model(o, config, in));  // the weights of run_variant
    models.back()->train();
    adams.push_back(std::make_unique<torch::optim::Adam>(models.back()->parameters(), torch::optim::AdamOptions(1e-4)));
  }
  const int64_t v = config.vocab_size;
  std::vector<std::vector<double>> ms(P);
  for (int r = 0; r < o.warmup + o.reps; ++r) {
    for (size_t p = 0; p < P; ++p) {
      AllocationTracker::release_free_memory();
      synchronize(in.device);
      Stopwatch t;
      adams[p]->zero_grad();
      at::Tensor loss;
      {
        const detail::AutocastScope autocast(in.device.type(),
                                             dtype_of(parse_precision(o.precisions[p], "--precisions")));
        const at::Tensor logits = models[p]->forward(in.src, in.mask, in.tgt_in).to(at::kFloat);  // (b, t, v)
        loss = at::cross_entropy_loss(logits.reshape({-1, v}), in.tgt.reshape({-1}));
      }
      loss.backward();
      adams[p]->step();
      synchronize(in.device);
      const double step_ms = t.ms();
      if (!std::isfinite(loss.item<double>()))
        throw std::runtime_error("model: " + stem(path) + " in " + o.precisions[p] + ": the loss is not finite");
      std::fprintf(stderr, "[model] %s %s training step %s %d: %.1f ms\n", stem(path).c_str(),
                   o.precisions[p].c_str(), r < o.warmup ? "warm-up" : "rep", r + 1, step_ms);
      if (r >= o.warmup) ms[p].push_back(step_ms);
    }
  }
  return ms;
}

// Greedy and beam-4 generation of one variant at each precision of o.precisions, with the weights
// converted, interleaved: each repetition runs every precision once, in turn, so that a change of
// the machine's speed hits all of them alike. Returns the times (ms) per precision: greedy, beam 4.
std::pair<std::vector<std::vector<double>>, std::vector<std::vector<double>>> measure_generation_precisions(
    const ModelBenchOptions& o, const std::string& path, const ModelConfig& config, const Inputs& in) {
  std::vector<Seq2Seq> models;
  for (const auto& name : o.precisions) {
    Seq2Seq model = make_model(o, config, in);  // the weights of run_variant, converted
    model->to(dtype_of(parse_precision(name, "--precisions")));
    model->eval();
    models.push_back(model);
  }
  torch::NoGradGuard no_grad;
  const size_t P = models.size();
  std::vector<std::vector<double>> greedy(P), beam(P);
  for (int r = 0; r < o.warmup + o.reps; ++r) {
    for (const int64_t width : {int64_t{1}, kBeam}) {
      for (size_t p = 0; p < P; ++p) {
        synchronize(in.device);
        Stopwatch t;
        const auto g = generate(
            models[p], in.src, in.mask,
            GenerateOptions().beam_size(width).max_length(o.target_length).min_length(o.target_length));
        synchronize(in.device);
        const double ms = t.ms();
        if (g.tokens.size(1) != o.target_length)
          throw std::runtime_error("model: " + stem(path) + " in " + o.precisions[p] + " generated " +
                                   std::to_string(g.tokens.size(1)) + " tokens, expected " +
                                   std::to_string(o.target_length));
        std::fprintf(stderr, "[model] %s %s beam %lld %s %d: %.1f ms\n", stem(path).c_str(), o.precisions[p].c_str(),
                     static_cast<long long>(width), r < o.warmup ? "warm-up" : "rep", r + 1, ms);
        if (r >= o.warmup) (width == 1 ? greedy : beam)[p].push_back(ms);
      }
    }
  }
  return {greedy, beam};
}

// One variant at every precision: what o.train and o.generate ask for.
std::vector<PrecisionResult> measure_precisions(const ModelBenchOptions& o, const std::string& path,
                                                const ModelConfig& config, const Inputs& in) {
  const size_t P = o.precisions.size();
  std::vector<std::vector<double>> train(P), greedy(P), beam(P);
  if (o.train) train = measure_training_precisions(o, path, config, in);
  if (o.generate) std::tie(greedy, beam) = measure_generation_precisions(o, path, config, in);
  std::vector<PrecisionResult> out;
  for (size_t p = 0; p < P; ++p) {
    PrecisionResult row{stem(path), o.precisions[p]};
    row.train = train[p].empty() ? 0 : median(train[p]);
    row.train_ratio = median_ratio(train, p);
    row.greedy = greedy[p].empty() ? 0 : median(greedy[p]);
    row.beam = beam[p].empty() ? 0 : median(beam[p]);
    row.greedy_ratio = median_ratio(greedy, p);
    row.beam_ratio = median_ratio(beam, p);
    std::vector<double> beam_ratios;
    for (size_t i = 0; i < beam[p].size(); ++i) beam_ratios.push_back(beam[0][i] / beam[p][i]);
    if (!beam_ratios.empty()) {
      row.beam_ratio_low = *std::min_element(beam_ratios.begin(), beam_ratios.end());
      row.beam_ratio_high = *std::max_element(beam_ratios.begin(), beam_ratios.end());
    }
    out.push_back(row);
  }
  return out;
}

struct Report {
  const ModelBenchOptions* options = nullptr;
  std::string command;
  Machine machine;
  double load_start = -1, load_end = -1;
  std::vector<Result> results;
  std::vector<PrecisionResult> precisions;  // empty unless two or more precisions are compared
  std::string gpu;                          // the CUDA device's name (empty on the CPU)
};

std::string markdown_report(const Report& rep) {
  const ModelBenchOptions& o = *rep.options;
  const Result& base = rep.results.front();
  std::ostringstream out;
  out << "## Model variants side by side (pyramidion-bench model)\n\n"
      << "Command: `" << rep.command << "`\n\n"
      << to_markdown(rep.machine) << "- Load average (1 min, whole machine): " << format_fixed(rep.load_start, 2)
      << " at start, " << format_fixed(rep.load_end, 2) << " at end\n"
      << "- fp32 weights on " << (rep.gpu.empty() ? std::string("the CPU") : o.device + " (" + rep.gpu + ")")
      << (rep.precisions.empty() ? "" : " (other precisions: the last table)")
      << "; source n = " << o.source_length << ", target t = " << o.target_length
      << ", batch b = " << o.batch << ", seed " << o.seed << "; the same random ids for every variant\n"
      << "- " << o.warmup << " warm-up + " << o.reps << (o.reps == 1 ? " timed run" : " timed runs")
      << " per measurement, variants one after another; medians\n"
      << "- Training step: forward with teacher forcing (dropout as configured) + cross-entropy, backward, "
         "Adam step. Encoder fwd: encode() alone in training mode with autograd\n"
      << "- Generation: eval(), no grad; max_length = min_length = t, so eos is masked and every variant "
         "generates exactly "
      << o.target_length << " tokens per example. Encode (eval): encode() + start_decoding(), the part "
      << "before the first token\n"
      << "- Peak memory: LibTorch CPU allocations during the training step (weights, Adam state, gradients, "
         "activations), freed memory returned to the system before every run; \"extra\" = above what was "
         "live before the step. Allocations outside LibTorch's allocator (oneDNN/MKL scratch) are not "
         "counted\n\n";
  out << "### Sizes\n\n"
      << "| variant | params | encoder self-attention rows per layer | cross-attention memory k |\n"
      << "|:---|---:|:---|---:|\n";
  for (const auto& r : rep.results)
    out << "| " << r.name << " | " << format_fixed(r.params / 1e6, r.params < 1000000 ? 3 : 1) << " M | " << attention_sizes(r.config, r.rows)
        << " | " << r.k << " |\n";
  out << "\n### Times (ms, medians) and memory\n\n"
      << "| variant | train step | fwd+loss | bwd | Adam | encoder fwd | peak MiB | peak extra MiB | encode "
         "(eval) | greedy | beam 4 |\n"
      << "|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rep.results)
    out << "| " << r.name << " | " << format_ms(r.train) << " | " << format_ms(r.fwd) << " | "
        << format_ms(r.bwd) << " | " << format_ms(r.adam) << " | " << format_ms(r.enc_train) << " | "
        << format_mib(r.peak_bytes) << " | " << format_mib(r.peak_extra_bytes) << " | "
        << format_ms(r.encode_eval) << " | " << format_ms(r.greedy) << " | " << format_ms(r.beam) << " |\n";
  out << "\n### Against " << base.name << " (baseline / variant: > 1 is better)\n\n"
      << "| variant | training speed-up | greedy speed-up | beam-4 speed-up | peak training memory | peak extra "
         "memory | cross-attention size |\n"
      << "|:---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rep.results)
    out << "| " << r.name << " | " << ratio(base.train, r.train) << " | " << ratio(base.greedy, r.greedy)
        << " | " << ratio(base.beam, r.beam) << " | " << ratio(base.peak_bytes, r.peak_bytes) << " | "
        << ratio(base.peak_extra_bytes, r.peak_extra_bytes) << " | "
        << ratio(static_cast<double>(base.k), static_cast<double>(r.k)) << " |\n";
  out << "\nIssue 3 targets (vs " << base.name
      << "): training >= 2x, beam-4 generation >= 4.5x, peak training memory >= 2x lower. The paper "
         "reports 1.8x training, 4.5x inference, 13x cheaper decoder.\n";
  if (!rep.precisions.empty()) {
    const auto speedup = [](double r) { return r > 0 ? format_fixed(r, 2) + "x" : std::string("-"); };
    out << "\n### By precision (interleaved, " << o.reps << " repetitions)\n\n"
        << "Training step: float32 weights and Adam state, forward and loss under autocast in the precision "
           "(as pyramidion-train runs it). Generation: the same weights converted to the precision. Each "
           "repetition runs every precision once, in turn. Speed-up = median of the per-repetition ratios "
        << o.precisions.front() << " ms / this ms (beam 4: lowest and highest in brackets).\n\n"
        << "| variant | precision | train step ms | greedy ms | beam-4 ms | training speed-up | greedy speed-up | "
           "beam-4 speed-up |\n"
        << "|:---|:---|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& p : rep.precisions)
      out << "| " << p.variant << " | " << p.precision << " | " << format_ms(p.train) << " | " << format_ms(p.greedy)
          << " | " << format_ms(p.beam) << " | " << speedup(p.train_ratio) << " | " << speedup(p.greedy_ratio) << " | "
          << speedup(p.beam_ratio)
          << (p.beam_ratio > 0 ? " [" + format_fixed(p.beam_ratio_low, 2) + ", " + format_fixed(p.beam_ratio_high, 2) + "]"
                               : std::string())
          << " |\n";
  }
  return out.str();
}

nlohmann::json json_report(const Report& rep) {
  const ModelBenchOptions& o = *rep.options;
  nlohmann::json precision_rows = nlohmann::json::array();
  for (const auto& p : rep.precisions)
    precision_rows.push_back({{"variant", p.variant},
                              {"precision", p.precision},
                              {"train_step_ms", p.train},
                              {"training_speedup", p.train_ratio},
                              {"greedy_ms", p.greedy},
                              {"beam4_ms", p.beam},
                              {"greedy_speedup", p.greedy_ratio},
                              {"beam4_speedup", p.beam_ratio},
                              {"beam4_speedup_low", p.beam_ratio_low},
                              {"beam4_speedup_high", p.beam_ratio_high}});
  const Result& base = rep.results.front();
  const auto r_or_null = [](double b, double x) { return x > 0 && b > 0 ? nlohmann::json(b / x) : nlohmann::json(); };
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : rep.results) {
    rows.push_back({{"variant", r.name},
                    {"config", r.path},
                    {"params", r.params},
                    {"block_size", r.config.block_size},
                    {"encoder_rows", r.rows},
                    {"memory_k", r.k},
                    {"train_step_ms", r.train},
                    {"fwd_loss_ms", r.fwd},
                    {"bwd_ms", r.bwd},
                    {"adam_ms", r.adam},
                    {"encoder_fwd_train_ms", r.enc_train},
                    {"peak_train_bytes", r.peak_bytes},
                    {"peak_train_extra_bytes", r.peak_extra_bytes},
                    {"encode_eval_ms", r.encode_eval},
                    {"greedy_ms", r.greedy},
                    {"beam4_ms", r.beam},
                    {"last_loss", r.loss},
                    {"vs_baseline",
                     {{"training_speedup", r_or_null(base.train, r.train)},
                      {"greedy_speedup", r_or_null(base.greedy, r.greedy)},
                      {"beam4_speedup", r_or_null(base.beam, r.beam)},
                      {"peak_memory_ratio", r_or_null(base.peak_bytes, r.peak_bytes)},
                      {"cross_attention_ratio", r_or_null(static_cast<double>(base.k), static_cast<double>(r.k))}}}});
  }
  return {{"benchmark", "model"},
          {"command", rep.command},
          {"machine", to_json(rep.machine)},
          {"load_average", {{"start", rep.load_start}, {"end", rep.load_end}}},
          {"source_length", o.source_length},
          {"target_length", o.target_length},
          {"generated_tokens", o.target_length},
          {"batch", o.batch},
          {"device", o.device},
          {"gpu", rep.gpu},
          {"warmup", o.warmup},
          {"reps", o.reps},
          {"seed", o.seed},
          {"baseline", base.name},
          {"results", rows},
          {"precisions", precision_rows}};
}

}  // namespace

void run_model_bench(const ModelBenchOptions& o, const std::string& command) {
  check_options(o);
  check_writable(o.json_path);
  check_writable(o.markdown_path);
  std::vector<ModelConfig> configs;
  int64_t vocab = 0;
  for (const auto& path : o.configs) {
    configs.push_back(ModelConfig::from_json_file(path));
    const ModelConfig& c = configs.back();
    if (o.source_length > c.max_source_length)
      throw std::invalid_argument("model: source length " + std::to_string(o.source_length) + " exceeds " +
                                  path + "'s max_source_length " + std::to_string(c.max_source_length));
    if (o.target_length > c.max_target_length)
      throw std::invalid_argument("model: target length " + std::to_string(o.target_length) + " exceeds " +
                                  path + "'s max_target_length " + std::to_string(c.max_target_length));
    if (c.vocab_size <= 3 || c.pad_id > 2 || c.bos_id > 2 || c.eos_id > 2)
      throw std::invalid_argument("model: " + path +
                                  " needs vocab_size > 3 and pad/bos/eos ids among 0-2 (the random ids are 3..)");
    if (c.bos_id != configs.front().bos_id)
      throw std::invalid_argument("model: " + path + " has another bos_id than " + o.configs.front());
    vocab = vocab == 0 ? c.vocab_size : std::min(vocab, c.vocab_size);
  }

  const at::Device device = parse_device(o.device, "--device").resolve(0);
  if (device.is_cpu()) AllocationTracker::install();  // counts CPU allocations only
  AllocationTracker::set_reuse(false);
  Report rep;
  rep.options = &o;
  rep.command = command;
  rep.load_start = load_average();
  const Inputs in = make_inputs(o, vocab, configs.front().bos_id, device);
  if (device.is_cuda()) rep.gpu = cuda_device_name(device);
  for (size_t i = 0; i < configs.size(); ++i) {
    std::fprintf(stderr, "[model] variant %zu/%zu: %s\n", i + 1, configs.size(), o.configs[i].c_str());
    rep.results.push_back(run_variant(o, o.configs[i], configs[i], in));
    AllocationTracker::release_free_memory();
  }
  if (o.precisions.size() > 1) {
    for (size_t i = 0; i < configs.size(); ++i) {
      std::fprintf(stderr, "[model] precisions of %s\n", o.configs[i].c_str());
      for (auto& row : measure_precisions(o, o.configs[i], configs[i], in)) rep.precisions.push_back(std::move(row));
      AllocationTracker::release_free_memory();
    }
  }
  rep.load_end = load_average();
  rep.machine = describe_machine();
  emit_report(markdown_report(rep), json_report(rep).dump(2) + "\n", o.markdown_path, o.json_path);
}

}  // namespace bench
}  // namespace pyramidion
