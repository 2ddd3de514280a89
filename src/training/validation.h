// Private: what a training run measures on its validation split.
#pragma once

#include <pyramidion/corpus.h>
#include <pyramidion/distributed.h>
#include <pyramidion/model.h>
#include <pyramidion/rouge.h>
#include <pyramidion/tokenizer.h>
#include <pyramidion/train.h>

#include <c10/core/Device.h>

#include <functional>
#include <optional>

namespace pyramidion {
namespace detail {

/// Mean NLL per target token over `corpus` (make_batches with the config's budget and seed, epoch
/// 0), shared among the ranks by batch; -1 for an empty corpus. Leaves the model in training mode.
/// `stopped` is called by every rank before each round of batches (one batch per rank), so it may
/// be a collective (Trainer::stop_requested); when it says true, the loss is abandoned: nullopt.
std::optional<double> validation_loss(Seq2Seq& model, const TokenizedCorpus& corpus, const TrainConfig& config,
                                      ProcessGroup& group, at::Device device, const std::function<bool()>& stopped);

/// ROUGE F1 (stemmed, as summarization papers report) of greedy summaries (no repeated trigram)
/// of the first `docs` examples of `corpus` against their (truncated) reference summaries, both
/// detokenized; summarized by Summarizer in batches of the config's max_tokens. Leaves the model
/// in training mode. When `stop` is set before a batch, the scores are abandoned: nullopt.
std::optional<RougeScores> validation_rouge(Seq2Seq& model, const TokenizedCorpus& corpus, int64_t docs,
                                            const Tokenizer& tokenizer, const TrainConfig& config,
                                            const std::atomic<bool>* stop);

}  // namespace detail
}  // namespace pyramidion
