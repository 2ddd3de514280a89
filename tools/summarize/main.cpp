// pyramidion-summarize: summaries of many documents with a trained checkpoint (a thin shell over
// pyramidion::summarize_file, include/pyramidion/summarize_file.h), optionally with the highlight
// page (include/pyramidion/highlight.h).
//
//   pyramidion-summarize --checkpoint runs/small/latest --input data/aclsum/test.jsonl --output out.jsonl
//   cat paper.txt | pyramidion-summarize --checkpoint ... --input - --format text --output -
#include <pyramidion/summarize_file.h>

#include <pyramidion/threads.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>

#include "common/exit_status.h"
#include "common/standard_streams.h"

namespace {

constexpr const char* kName = "pyramidion-summarize";

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int signal) {
  // The first SIGINT/SIGTERM stops the job after the current chunk, keeping what was written; a
  // second one kills as usual.
  g_stop.store(true);
  std::signal(signal, SIG_DFL);
}

// A number as an ostream prints it ("1", "0.5").
std::string text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// The search flags: each default comes from the checkpoint's generation.json (over the library's
// defaults), and a flag given on the command line replaces it.
struct SearchFlags {
  std::optional<int64_t> beam, max_length, min_length, no_repeat, max_tokens;
  std::optional<double> length_penalty;

  void declare(CLI::App& app) {
    const pyramidion::SummarizeOptions defaults;
    const auto& search = defaults.search();
    flag(app, "--beam", beam,
         "beam size (default " + std::to_string(search.beam_size()) + ", or the checkpoint's generation.json)");
    flag(app, "--max-length", max_length, "most summary tokens (default: the model's max_target_length)");
    flag(app, "--min-length", min_length, "fewest summary tokens (default " + std::to_string(search.min_length()) + ")");
    flag(app, "--length-penalty", length_penalty,
         "score = log p / length^penalty (default " + text(search.length_penalty()) + ")");
    flag(app, "--no-repeat-ngram", no_repeat,
         "no repeated n-gram of this size (default " + std::to_string(search.no_repeat_ngram_size()) + "; 0 = off)");
    flag(app, "--max-tokens", max_tokens,
         "batch budget: documents x (longest document + beam x max length) tokens (default " +
             std::to_string(defaults.max_tokens()) + ")");
  }

  // The checkpoint's settings with the given flags over them.
  pyramidion::SummarizeOptions apply(const std::string& checkpoint) const {
    auto options = pyramidion::SummarizeOptions::from_checkpoint(checkpoint);
    if (beam) options.search().beam_size(*beam);
    if (max_length) options.search().max_length(*max_length);
    if (min_length) options.search().min_length(*min_length);
    if (length_penalty) options.search().length_penalty(*length_penalty);
    if (no_repeat) options.search().no_repeat_ngram_size(*no_repeat);
    if (max_tokens) options.max_tokens(*max_tokens);
    return options;
  }

 private:
  template <typename T>
  static void flag(CLI::App& app, const char* name, std::optional<T>& value, const std::string& help) {
    auto* option = app.add_option_function<T>(name, [&value](const T& v) { value = v; }, help);
    if constexpr (std::is_integral_v<T>) option->check(pyramidion::tools::int64_text());
  }
};

}  // namespace

int main(int argc, char** argv) {
  const auto streams = pyramidion::tools::StandardStreams::secure();  // first: before any file is opened
  CLI::App app{
      "Summarize documents with a pyramidion checkpoint: JSON lines in (arXiv/PubMed or {id, "
      "document}), JSON lines out ({id, summary, score, ...}) in input order."};
  std::string checkpoint, input, output, format = "auto", device = "cpu", precision = "fp32", quantize = "none";
  pyramidion::SummarizeFileOptions job("", "", "");
  int64_t threads = 0;
  app.add_option("--checkpoint", checkpoint, "checkpoint directory (pyramidion-train's out/latest)")->required();
  app.add_option("--input", input, "documents: .jsonl (arXiv or plain), a text file, or - for stdin")->required();
  app.add_option("--output", output, "summaries as JSON lines, or - for stdout")->required();
  app.add_option("--format", format, "input format: auto, arxiv, plain or text")->capture_default_str();
  SearchFlags search;
  search.declare(app);
  app.add_option("--chunk", job.chunk(), "documents read and written per round (memory bound)")
      ->check(pyramidion::tools::int64_text())
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--highlight", job.highlight(), "also write an HTML page marking the tokens each pooling layer kept");
  app.add_option("--highlight-max-docs", job.highlight_max_docs(), "documents shown on the highlight page")
      ->check(pyramidion::tools::int64_text())
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--threads", threads,
                 "intra-op threads (0 = LibTorch's default; at most " + std::to_string(pyramidion::max_threads()) + ")")
      ->check(pyramidion::tools::int64_text());
  app.add_option("--device", device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", precision, "weights: fp32, bf16, or fp16 (CUDA only)")->capture_default_str();
  app.add_option("--quantize", quantize,
                 "linear layers' weights: none, or int8 (dynamic quantization; CPU and --precision fp32 only)")
      ->capture_default_str();
  app.footer(
      "\nExit status (docs/reliability.md): 0 all documents summarized; 3 finished, but some records were "
      "bad (each reported on stderr with its file and line; the others were summarized); 2 bad input "
      "(invalid options, a missing checkpoint or input, an --output that is the input or in a missing "
      "directory); 1 other errors (an absent device, a damaged checkpoint, a failed write, a SIGINT/SIGTERM, "
      "which stops the job after the current chunk: --output is left "
      "as it was; summaries written before the failure are kept in a hidden .partial file next to it, "
      "named in the message).");
  if (const auto status = pyramidion::tools::parse(app, argc, argv)) return *status;

  return pyramidion::tools::run(kName, [&] {
    streams.require_input("--input", input);
    streams.require_output("--output", output);
    streams.require_output("--highlight", job.highlight());
    const auto options = search.apply(checkpoint);
    pyramidion::set_threads(threads, "--threads");
    job.checkpoint(checkpoint)
        .input(input)
        .output(output)
        .format(pyramidion::input_format_from_string(format))
        .device(pyramidion::parse_device(device, "--device"))
        .precision(pyramidion::parse_precision(precision, "--precision"))
        .quantization(pyramidion::parse_quantization(quantize, "--quantize"))
        .summarize(options)
        .log([](const std::string& line) { std::cerr << kName << ": " << line << std::endl; })
        .stop(&g_stop);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    const auto result = pyramidion::summarize_file(job);
    if (!job.highlight().empty())
      std::cerr << kName << ": highlight page " << job.highlight() << " (" << result.highlight_documents
                << " documents)\n";
    std::cerr << kName << ": done: " << result.documents << " documents in " << result.seconds << " s";
    if (result.bad()) std::cerr << "; " << result.bad_records + result.bad_documents << " bad records reported above";
    std::cerr << std::endl;
    return result.bad() ? pyramidion::tools::kBadRecords : pyramidion::tools::kDone;
  });
}
