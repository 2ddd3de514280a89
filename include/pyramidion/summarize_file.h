// summarize_file(): the batch summarization job of pyramidion-summarize, as a library call. Reads
// documents from a file (JSON lines in the arXiv/PubMed or plain format, or one plain-text
// document; "-" = standard input), summarizes them in chunks with a checkpoint, writes one JSON
// object per document in input order, and optionally the highlight page (highlight.h).
//
//   auto options = pyramidion::SummarizeFileOptions("runs/small/latest", "test.jsonl", "out.jsonl");
//   options.summarize(pyramidion::SummarizeOptions::from_checkpoint("runs/small/latest"));
//   const auto result = pyramidion::summarize_file(options);   // result.documents, result.bad()
//
// Output lines: {"id", "summary", "score", "source_tokens", "document_tokens", "summary_tokens",
// "seconds"} (Summary's fields). The output file is written under a temporary name and renamed
// over `output` at the end, so a failed run never replaces a previous output; when a run fails
// after writing some summaries, they are kept in ".<output name>.partial" next to it (complete
// lines only) and the error message says so.
#pragma once

#include <pyramidion/device.h>
#include <pyramidion/precision.h>
#include <pyramidion/summarizer.h>

#include <torch/arg.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace pyramidion {

/// The input of summarize_file(). JSON: "auto" (JSON lines when the path is "-" or ends in .jsonl
/// or .json, a plain-text document otherwise) | "arxiv" | "plain" | "text" (the whole file is one
/// document).
enum class InputFormat { automatic, arxiv, plain, text };

/// "auto" / "arxiv" / "plain" / "text"; throws std::invalid_argument for a value outside the enum.
std::string to_string(InputFormat format);
/// The inverse of to_string; throws std::invalid_argument naming the value and the allowed ones.
InputFormat input_format_from_string(const std::string& name);

struct SummarizeFileOptions {
  using Log = std::function<void(const std::string&)>;
  using StopFlag = const std::atomic<bool>*;
  SummarizeFileOptions(std::string checkpoint, std::string input, std::string output)
      : checkpoint_(std::move(checkpoint)), input_(std::move(input)), output_(std::move(output)) {}
  /// A pyramidion-train checkpoint directory (config.json, weights.pt, tokenizer.model).
  TORCH_ARG(std::string, checkpoint);
  /// The documents: a file, or "-" for standard input.
  TORCH_ARG(std::string, input);
  /// The summaries (JSON lines), or "-" for standard output.
  TORCH_ARG(std::string, output);
  TORCH_ARG(InputFormat, format) = InputFormat::automatic;
  /// Search and batching (SummarizeOptions::from_checkpoint gives the checkpoint's own settings).
  TORCH_ARG(SummarizeOptions, summarize) = {};
  /// Documents read, summarized and written per round (bounds memory); >= 1.
  TORCH_ARG(int64_t, chunk) = 64;
  /// Also write the highlight page here (what each pooling layer kept); "" = none.
  TORCH_ARG(std::string, highlight) = "";
  /// Documents shown on the highlight page (the first ones); >= 1.
  TORCH_ARG(int64_t, highlight_max_docs) = 100;
  /// Where the model runs ("cuda" = cuda:0).
  TORCH_ARG(DeviceSpec, device) = {};
  /// The weights' precision (Summarizer::to); fp16 on CUDA only.
  TORCH_ARG(Precision, precision) = Precision::fp32;
  /// The linear layers' weights: none (the precision's), or int8 (fp32 on the CPU only).
  TORCH_ARG(Quantization, quantization) = Quantization::none;
  /// Progress lines, bad records and bad documents as they happen; unset = silent.
  TORCH_ARG(Log, log) = nullptr;
  /// Checked after each chunk: when it is set (e.g. by a SIGINT/SIGTERM handler), the job stops
  /// as after a failure, keeping the summaries written so far in the .partial file it names.
  TORCH_ARG(StopFlag, stop) = nullptr;
};

struct SummarizeFileResult {
  int64_t documents = 0;        // summaries written
  int64_t bad_records = 0;      // malformed input records, skipped (each reported to log)
  int64_t bad_documents = 0;    // documents that could not be summarized (e.g. no tokens), skipped
  int64_t source_tokens = 0;    // tokens the model read, all documents
  int64_t summary_tokens = 0;   // tokens generated, all documents
  double seconds = 0;           // wall time
  int64_t highlight_documents = 0;  // documents on the highlight page
  /// Records or documents were skipped (pyramidion-summarize exits with status 3).
  bool bad() const { return bad_records + bad_documents > 0; }
};

/// Runs the job. Every option is checked before any input is read: std::invalid_argument naming
/// the option for invalid ones (including generation options the checkpoint's model cannot take);
/// std::invalid_argument also for a missing checkpoint or input, an output that is an input or in a
/// missing directory, and input of which no record could be read; std::runtime_error naming the
/// file for I/O failures, a damaged checkpoint, an absent device, a stop() request, and when no
/// document could be summarized at all. After a failure --output is left as it was and the
/// summaries written before it are kept in ".<output>.partial", which the message names.
SummarizeFileResult summarize_file(const SummarizeFileOptions& options);

}  // namespace pyramidion
