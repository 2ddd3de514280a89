// `pyramidion-bench logits` (see logits_bench.h). One document at a time (no padding), the source
// cut to max_source_length and the reference to max_target_length - 1 tokens plus eos.
//
// Legend: n source tokens, t target positions, v vocabulary.
#include "logits_bench.h"

#include <pyramidion/data.h>
#include <pyramidion/precision.h>
#include <pyramidion/summarizer.h>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "machine.h"
#include "measure.h"

namespace pyramidion {
namespace bench {

void run_logits_bench(const LogitsBenchOptions& o, const std::string& command) {
  if (o.checkpoint.empty() || o.input.empty())
    throw std::invalid_argument("logits: --checkpoint and --input are required");
  if (o.documents < 1) throw std::invalid_argument("logits: --documents must be >= 1, got " + std::to_string(o.documents));
  check_writable(o.json_path);
  check_writable(o.markdown_path);
  auto summarizer = Summarizer::load(o.checkpoint);
  const auto& config = summarizer.model()->config();
  const auto& tokenizer = summarizer.tokenizer();

  // (src (1, n), tgt_in (1, t), tgt (1, t)) per document.
  struct Example {
    at::Tensor src, tgt_in;
  };
  std::vector<Example> examples;
  DocumentReader reader(o.input);
  Document d;
  while (static_cast<int64_t>(examples.size()) < o.documents && reader.next(d)) {
    auto src = tokenizer.encode(d.document);
    auto tgt = tokenizer.encode(d.summary);
    if (src.empty() || tgt.empty()) continue;
    src.resize(std::min<size_t>(src.size(), static_cast<size_t>(config.max_source_length)));
    tgt.resize(std::min<size_t>(tgt.size(), static_cast<size_t>(config.max_target_length - 1)));
    std::vector<int64_t> in = {config.bos_id};
    in.insert(in.end(), tgt.begin(), tgt.end());
    examples.push_back({at::tensor(src).unsqueeze(0), at::tensor(in).unsqueeze(0)});
  }
  if (examples.empty()) throw std::invalid_argument("logits: no document with a summary in " + o.input);

  torch::NoGradGuard no_grad;
  const auto logits_of = [&]() {  // (t, v) float32 per example
    std::vector<at::Tensor> out;
    for (const auto& e : examples)
      out.push_back(summarizer.model()->forward(e.src, at::Tensor(), e.tgt_in)[0].to(at::kFloat));
    return out;
  };
  summarizer.to(at::kCPU, Precision::fp32);
  const auto exact = logits_of();
  double largest = 0;
  for (const auto& l : exact) largest = std::max(largest, l.abs().max().item<double>());

  std::ostringstream md;
  md << "## Logits of lower-precision weights against fp32 (pyramidion-bench logits)\n\nCommand: `" << command
     << "`\n\n" << to_markdown(describe_machine()) << "- Checkpoint " << o.checkpoint << "; teacher forcing on the "
     << examples.size() << " first documents of " << o.input << " with their reference summaries; largest |fp32 "
     << "logit| " << format_fixed(largest, 2) << "\n\n| weights | largest logit difference | relative to the largest "
     << "logit | mean difference | top-1 next token as fp32 |\n|:---|---:|---:|---:|---:|\n";
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& [name, precision, quantization] :
       std::vector<std::tuple<std::string, Precision, Quantization>>{{"bf16", Precision::bf16, Quantization::none},
                                                                     {"int8", Precision::fp32, Quantization::int8}}) {
    summarizer.to(at::kCPU, precision, quantization);
    const auto low = logits_of();
    double max_diff = 0, sum_diff = 0, count = 0, agree = 0, positions = 0;
    for (size_t i = 0; i < low.size(); ++i) {
      const auto diff = (low[i] - exact[i]).abs();  // (t, v)
      max_diff = std::max(max_diff, diff.max().item<double>());
      sum_diff += diff.sum().item<double>();
      count += static_cast<double>(diff.numel());
      agree += (low[i].argmax(-1) == exact[i].argmax(-1)).sum().item<double>();
      positions += static_cast<double>(low[i].size(0));
    }
    md << "| " << name << " | " << format_fixed(max_diff, 3) << " | " << format_fixed(100 * max_diff / largest, 2)
       << "% | " << format_fixed(sum_diff / count, 4) << " | " << format_fixed(100 * agree / positions, 1) << "% of "
       << static_cast<int64_t>(positions) << " |\n";
    rows.push_back({{"weights", name}, {"max_abs_diff", max_diff}, {"relative", max_diff / largest},
                    {"mean_abs_diff", sum_diff / count}, {"top1_agreement", agree / positions},
                    {"positions", positions}});
  }
  summarizer.to(at::kCPU, Precision::fp32);
  const nlohmann::json json = {{"benchmark", "logits"}, {"command", command}, {"checkpoint", o.checkpoint},
                               {"documents", examples.size()}, {"largest_fp32_logit", largest}, {"weights", rows}};
  emit_report(md.str(), json.dump(2) + "\n", o.markdown_path, o.json_path);
}

}  // namespace bench
}  // namespace pyramidion
