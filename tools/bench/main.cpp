// pyramidion-bench: the project's benchmarks, one subcommand each (`topk`, ...). This file parses
// the command line into each benchmark's options struct, sets the thread count once and dispatches;
// the benchmarks themselves live in <name>_bench.cpp.
//
// Exit status: tools/common/exit_status.h (0 done, 1 an error while running, 2 bad flags or values).
#include <pyramidion/threads.h>

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <limits>
#include <string>

#include "common/exit_status.h"
#include "common/standard_streams.h"
#include "machine.h"
#include "logits_bench.h"
#include "model_bench.h"
#include "selection_bench.h"
#include "summarize_bench.h"
#include "topk_bench.h"

namespace {

using pyramidion::bench::LogitsBenchOptions;
using pyramidion::bench::ModelBenchOptions;
using pyramidion::bench::SelectionBenchOptions;
using pyramidion::bench::SummarizeBenchOptions;
using pyramidion::bench::TopKBenchOptions;

const CLI::Range kPositive(int64_t{1}, std::numeric_limits<int64_t>::max());

// Options every benchmark takes, applied once before it runs.
struct CommonOptions {
  int64_t threads = 0;  // intra-op threads; 0 keeps LibTorch's default
};

void add_common_options(CLI::App* cmd, CommonOptions& c) {
  cmd->add_option("--threads", c.threads,
                  "intra-op threads (at::set_num_threads); 0 keeps LibTorch's default, at most " +
                      std::to_string(pyramidion::max_threads()))
      ->capture_default_str();
}

// --json and --markdown: where a benchmark also writes its report.
void add_report_options(CLI::App* cmd, std::string& json_path, std::string& markdown_path) {
  cmd->add_option("--json", json_path, "also write the results as JSON to this file");
  cmd->add_option("--markdown", markdown_path, "also write the markdown report to this file");
}

CLI::App* add_topk_command(CLI::App& app, TopKBenchOptions& o) {
  auto* cmd = app.add_subcommand(
      "topk",
      "Time forward + backward of the successive-halving top-k (soft) on the CPU in fp32, side by side with "
      "the authors' per-example formulation (naive), a copy of x (the memory floor), exact hard top-k and "
      "iterative softmax. Each of -b/-n/-k/-d takes a comma list; every combination with k <= n runs.");
  auto add_sweep = [&](const char* flags, std::vector<int64_t>& values, const char* help) {
    cmd->add_option(flags, values, help)->delimiter(',')->check(kPositive)->capture_default_str();
  };
  add_sweep("-b,--batch", o.batch, "batch size b (comma list to sweep)");
  add_sweep("-n,--tokens", o.tokens, "input tokens n (comma list to sweep)");
  add_sweep("-k,--keep", o.keep, "kept tokens k (comma list to sweep)");
  add_sweep("-d,--dim", o.dim, "representation size d (comma list to sweep)");
  cmd->add_option("--base", o.base, "base of the pair weights softmax([base^s_a, base^s_b])")
      ->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "untimed runs per method before the repetitions")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--reps", o.reps, "timed runs per method (medians are reported)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed of the random inputs (drawn anew for every configuration)")
      ->capture_default_str();
  cmd->add_option(
         "--methods", o.methods,
         "methods to run, comma list of soft, naive, copy, hard, iterative. By default all run, but "
         "iterative softmax (O(b k n d)) runs once without warm-up where b*k*n*d exceeds "
         "--iterative-full-limit and is skipped above --iterative-once-limit; naming it here gives it "
         "the full --warmup/--reps everywhere")
      ->delimiter(',')
      ->check(CLI::IsMember(pyramidion::bench::topk_methods()))
      ->capture_default_str();
  cmd->add_option("--iterative-full-limit", o.iterative_full_limit,
                  "b*k*n*d up to which iterative softmax gets --warmup/--reps by default")
      ->capture_default_str();
  cmd->add_option("--iterative-once-limit", o.iterative_once_limit,
                  "b*k*n*d up to which iterative softmax runs at all by default (once)")
      ->capture_default_str();
  cmd->add_option(
         "--memory", o.memory,
         "cold: every run pays for first touching the memory it allocates (page faults), as with "
         "LibTorch's non-caching CPU allocator; warm: freed blocks are reused, as with a caching allocator")
      ->check(CLI::IsMember({"cold", "warm"}))
      ->capture_default_str();
  cmd->add_option("--device", o.device, "cpu, cuda or cuda:N (the clock is read after a device synchronize)")
      ->capture_default_str();
  add_report_options(cmd, o.json_path, o.markdown_path);
  return cmd;
}

CLI::App* add_model_command(CLI::App& app, ModelBenchOptions& o) {
  auto* cmd = app.add_subcommand(
      "model",
      "Time model variants (config presets) side by side on the CPU in fp32 on the same random inputs: a "
      "training step (teacher forcing + cross-entropy, backward, Adam), greedy and beam-4 generation of exactly "
      "--target-length tokens, peak training memory, and the encoder and cross-attention sizes; ratios against "
      "the first config.");
  cmd->add_option("--configs", o.configs, "config presets (JSON), comma list; the first is the baseline")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--source-length", o.source_length, "source tokens n")->check(kPositive)->capture_default_str();
  cmd->add_option("--target-length", o.target_length, "target tokens t (teacher forcing and generated)")
      ->check(CLI::Range(int64_t{2}, std::numeric_limits<int64_t>::max()))
      ->capture_default_str();
  cmd->add_option("-b,--batch", o.batch, "batch size b")->check(kPositive)->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "untimed runs per measurement before the repetitions")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--reps", o.reps, "timed runs per measurement (medians are reported)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed of the random inputs and initial weights")->capture_default_str();
  auto* steps_only = cmd->add_flag_callback("--steps-only", [&o] { o.generate = false; },
                                            "time the training step only");
  cmd->add_flag_callback("--generate-only", [&o] { o.train = false; }, "time generation only")
      ->excludes(steps_only);
  cmd->add_option("--precisions", o.precisions,
                  "precisions compared, comma list (fp32, bf16; the first is the baseline); two or more add an "
                  "interleaved comparison of the training step (autocast) and generation (converted weights)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--device", o.device, "cpu, cuda or cuda:N (the clock is read after a device synchronize)")
      ->capture_default_str();
  add_report_options(cmd, o.json_path, o.markdown_path);
  return cmd;
}

CLI::App* add_summarize_command(CLI::App& app, SummarizeBenchOptions& o) {
  auto* cmd = app.add_subcommand(
      "summarize",
      "Documents/s of the summarization job (pyramidion::summarize_ids: pyramidion-summarize's batching and "
      "search) for random documents of --source-length tokens generating exactly --target-length tokens with "
      "--beam: one document (latency) and the batch the --max-tokens budget allows; config presets (random "
      "weights) or model directories x weights (fp32, bf16, int8) and peers side by side with interleaved "
      "repetitions (LED at a preset's sizes; transformers' PEGASUS and CTranslate2 on an imported PEGASUS's "
      "weights: scripts/bench_pegasus.sh); optionally a sweep of source lengths.");
  cmd->add_option("--configs", o.configs, "config presets (JSON), comma list; the first is the baseline")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--checkpoints", o.checkpoints,
                  "model directories (e.g. pyramidion-import's), comma list, instead of --configs")
      ->delimiter(',');
  cmd->add_option("--weights", o.weights, "weights of every config, comma list: fp32 (prepacked for oneDNN, as pyramidion-summarize runs), "
                  "fp32-plain (the same without prepacking), bf16, int8")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--peer", o.peers,
                  "peers, comma list: led (Hugging Face's LED at the last config's sizes), hf (transformers' "
                  "PEGASUS on --peer-model), ct2 (CTranslate2 float32 and int8 on --peer-model)")
      ->delimiter(',');
  cmd->add_option("--peer-python", o.peer_python, "the peers' python (what scripts/setup_peer.sh prints)");
  cmd->add_option("--peer-script", o.peer_script, "LED's script")->capture_default_str();
  cmd->add_option("--pegasus-script", o.pegasus_script, "the PEGASUS peers' script")->capture_default_str();
  cmd->add_option("--peer-model", o.peer_model,
                  "the directory of scripts/pegasus_peer.py make (hf/, ct2-float32/, ct2-int8/): the weights of "
                  "--checkpoints");
  cmd->add_option("--peer-batch", o.peer_batch,
                  "the peer's budget batch: 0 = ours; B = one batch of B documents (ratios per document)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--source-length", o.source_length, "source tokens S")->check(kPositive)->capture_default_str();
  cmd->add_option("--target-length", o.target_length, "generated tokens T per document")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--beam", o.beam, "beam size B")->check(kPositive)->capture_default_str();
  cmd->add_option("--max-tokens", o.max_tokens, "the job's batch budget (pyramidion-summarize's --max-tokens)")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--documents", o.documents, "documents of the budget mode; 0 = one budget batch")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--modes", o.modes, "comma list: one (batch 1), budget (batches under --max-tokens)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--sweep", o.sweep, "source lengths of a batch-1 sweep, comma list (e.g. 2048,4096,8192)")
      ->delimiter(',');
  cmd->add_flag("--profile", o.profile,
                "also profile one run per mode of each config per LibTorch operator (--reps 0: profile only)");
  cmd->add_option("--warmup", o.warmup, "untimed repetitions before the timed ones")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--reps", o.reps, "timed repetitions (interleaved); 0 with --profile")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed of the documents and the weights")->capture_default_str();
  add_report_options(cmd, o.json_path, o.markdown_path);
  return cmd;
}

CLI::App* add_logits_command(CLI::App& app, LogitsBenchOptions& o) {
  auto* cmd = app.add_subcommand(
      "logits",
      "What bf16 and int8 weights change in a trained checkpoint's logits: teacher forcing on the first "
      "--documents records of --input with their reference summaries, against fp32 (largest and mean "
      "difference, top-1 agreement).");
  cmd->add_option("--checkpoint", o.checkpoint, "a pyramidion-train checkpoint directory")->required();
  cmd->add_option("--input", o.input, "JSON lines with document and summary")->required();
  cmd->add_option("--documents", o.documents, "records used")->check(kPositive)->capture_default_str();
  add_report_options(cmd, o.json_path, o.markdown_path);
  return cmd;
}

CLI::App* add_selection_command(CLI::App& app, SelectionBenchOptions& o) {
  auto* cmd = app.add_subcommand(
      "selection",
      "The selection task (docs/selection.md): span recall per pooling layer, exact match and token F1 of the "
      "greedy outputs of trained checkpoints on the test windows of scripts/make_selection.py, with their "
      "inference times interleaved chunk by chunk, and optionally a highlight page per model.");
  cmd->add_option("--model", o.models,
                  "NAME=DIR (a pyramidion-train checkpoint) or NAME=DIR@hard (the exact top-k at inference); "
                  "repeat for each model; the first is the baseline of the time ratios")
      ->required();
  cmd->add_option("--input", o.input, "test windows (JSON lines of scripts/make_selection.py)")->required();
  cmd->add_option("--max-docs", o.max_documents, "windows used; 0 = all")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--chunk", o.chunk, "windows per timed chunk")->check(kPositive)->capture_default_str();
  cmd->add_option("--max-tokens", o.max_tokens, "batch budget of the greedy decoding")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--highlight-dir", o.highlight_dir, "write DIR/<name>.html, the highlight page of each model");
  cmd->add_option("--highlight-docs", o.highlight_documents, "windows on each highlight page")
      ->check(kPositive)
      ->capture_default_str();
  add_report_options(cmd, o.json_path, o.markdown_path);
  return cmd;
}

}  // namespace

int main(int argc, char** argv) {
  pyramidion::tools::StandardStreams::secure();  // first: before any file is opened
  CLI::App app{"pyramidion-bench: benchmarks of the pyramidion library, with the machine recorded"};
  app.require_subcommand(1);
  CommonOptions common;
  TopKBenchOptions topk;
  CLI::App* topk_cmd = add_topk_command(app, topk);
  add_common_options(topk_cmd, common);
  ModelBenchOptions model;
  CLI::App* model_cmd = add_model_command(app, model);
  add_common_options(model_cmd, common);
  LogitsBenchOptions logits;
  CLI::App* logits_cmd = add_logits_command(app, logits);
  add_common_options(logits_cmd, common);
  SummarizeBenchOptions summarize;
  CLI::App* summarize_cmd = add_summarize_command(app, summarize);
  add_common_options(summarize_cmd, common);
  SelectionBenchOptions selection;
  CLI::App* selection_cmd = add_selection_command(app, selection);
  add_common_options(selection_cmd, common);
  if (const auto status = pyramidion::tools::parse(app, argc, argv)) return *status;
  topk.methods_explicit = topk_cmd->count("--methods") > 0;

  return pyramidion::tools::run("pyramidion-bench", [&] {
    pyramidion::set_threads(common.threads, "--threads");
    const std::string command = pyramidion::bench::command_line(argc, argv);
    if (topk_cmd->parsed()) pyramidion::bench::run_topk_bench(topk, command);
    if (model_cmd->parsed()) pyramidion::bench::run_model_bench(model, command);
    if (logits_cmd->parsed()) pyramidion::bench::run_logits_bench(logits, command);
    if (summarize_cmd->parsed()) pyramidion::bench::run_summarize_bench(summarize, command);
    if (selection_cmd->parsed()) pyramidion::bench::run_selection_bench(selection, command);
    return pyramidion::tools::kDone;
  });
}
