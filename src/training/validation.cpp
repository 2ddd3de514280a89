// Validation loss and ROUGE (training/validation.h).
#include "training/validation.h"

#include <pyramidion/batching.h>
#include <pyramidion/summarizer.h>

#include <torch/autograd.h>

#include <algorithm>
#include <vector>

#include "training/loss.h"

namespace pyramidion {
namespace detail {

std::optional<double> validation_loss(Seq2Seq& model, const TokenizedCorpus& corpus, const TrainConfig& config,
                                      ProcessGroup& group, at::Device device, const std::function<bool()>& stopped) {
  if (corpus.size() == 0) return -1;
  at::NoGradGuard no_grad;
  model->eval();
  const auto batches = make_batches(
      corpus, BatchingOptions().max_tokens(config.max_tokens).bucket_size(config.bucket_size).seed(config.seed), 0);
  // Round r: rank q takes batch r * world + q, when there is one. Every rank runs every round, so
  // that a collective `stopped` is called the same number of times everywhere.
  const auto world = static_cast<size_t>(group.world_size()), rank = static_cast<size_t>(group.rank());
  double nll = 0, tokens = 0;
  for (size_t first = 0; first < batches.size(); first += world) {
    if (stopped && stopped()) {
      model->train();
      return std::nullopt;
    }
    if (first + rank >= batches.size()) continue;
    const Batch batch = collate(corpus, batches[first + rank], model->config()).to(device);
    nll += batch_loss(model, batch, 0.0).second;
    tokens += static_cast<double>(batch.target_tokens);
  }
  model->train();
  nll = group.allreduce_sum(nll);
  tokens = group.allreduce_sum(tokens);
  return nll / tokens;
}

std::optional<RougeScores> validation_rouge(Seq2Seq& model, const TokenizedCorpus& corpus, int64_t docs,
                                            const Tokenizer& tokenizer, const TrainConfig& config,
                                            const std::atomic<bool>* stop) {
  TokenizedCorpus sources;
  std::vector<std::string> references;
  for (int64_t i = 0; i < std::min(docs, corpus.size()); ++i) {
    sources.add(corpus.id(i), corpus.source(i), {});
    references.push_back(tokenizer.decode(corpus.target(i)));
  }
  Summarizer summarizer(model, tokenizer);  // puts the model in eval mode
  std::vector<Summary> summaries;
  try {
    summaries = summarizer.summarize(
        sources,
        SummarizeOptions().search(GenerateOptions().no_repeat_ngram_size(3)).max_tokens(config.max_tokens).stop(stop));
  } catch (const std::runtime_error&) {
    model->train();
    if (stop && stop->load()) return std::nullopt;  // the stop request, not a failure
    throw;
  }
  model->train();
  std::vector<std::string> predictions;
  for (const auto& s : summaries) predictions.push_back(s.summary);
  const auto report = rouge_corpus(predictions, references,
                                   RougeCorpusOptions().rouge(RougeOptions().use_stemmer(true)).bootstrap_samples(0));
  RougeScores mean;
  mean.rouge1.f1 = report.rouge1.f1.mid;
  mean.rouge2.f1 = report.rouge2.f1.mid;
  mean.rougeL.f1 = report.rougeL.f1.mid;
  return mean;
}

}  // namespace detail
}  // namespace pyramidion
