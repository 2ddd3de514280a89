// Greedy decoding and beam search (include/pyramidion/generate.h).
//
// Every step runs one decode_step for all a*K rows of the a examples still searching; the search
// itself is tensor operations over (a, K) and (a, 2K), with no per-example loop. An example that
// is done leaves the batch at once (its rows are dropped from the decoder state), so a long
// example does not make the finished ones cost steps. Host syncs: one per step (how many examples
// are done?) and the option checks.
//
// Shape legend: b batch, a examples still searching, K beam size, v vocabulary size, L maximum
// length, i the current step.
#include <pyramidion/generate.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "decoding/generation_memory.h"
#include "util/text.h"

namespace pyramidion {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Bans, in lprobs (r, v), every token that would complete an n-gram already present in the rows'
// hypotheses hyp (r, i). Vectorised: compares the last n-1 tokens with every (n-1)-prefix.
void ban_repeated_ngrams(at::Tensor& lprobs, const at::Tensor& hyp, int64_t n) {
  const int64_t i = hyp.size(1);
  if (i < n) return;                                            // no complete n-gram yet
  const auto windows = hyp.unfold(1, n, 1);                     // (r, i - n + 1, n)
  const auto prefixes = windows.narrow(2, 0, n - 1);            // (r, w, n - 1)
  const auto next = windows.select(2, n - 1);                   // (r, w)
  const auto suffix = hyp.narrow(1, i - n + 1, n - 1);          // (r, n - 1)
  const auto match = (prefixes == suffix.unsqueeze(1)).all(2);  // (r, w); n = 1: every window
  const auto hits = at::zeros_like(lprobs).scatter_add_(1, next, match.to(lprobs.scalar_type()));  // (r, v)
  lprobs.masked_fill_(hits > 0, kNegInf);
}

// Merges candidates (b, c) into the finished pool (b, K): keeps the K best by score.
void merge_into_pool(at::Tensor& pool_scores, at::Tensor& pool_tokens, at::Tensor& pool_lengths,
                     const at::Tensor& scores, const at::Tensor& tokens, const at::Tensor& lengths) {
  const int64_t K = pool_scores.size(1);
  const auto all_scores = at::cat({pool_scores, scores}, 1);     // (b, K + c)
  const auto all_tokens = at::cat({pool_tokens, tokens}, 1);     // (b, K + c, L)
  const auto all_lengths = at::cat({pool_lengths, lengths}, 1);  // (b, K + c)
  auto [best, index] = all_scores.topk(K, 1);                    // (b, K) each, best first
  pool_scores = best;
  pool_lengths = all_lengths.gather(1, index);                                                  // (b, K)
  pool_tokens = all_tokens.gather(1, index.unsqueeze(2).expand({-1, -1, all_tokens.size(2)}));  // (b, K, L)
}

}  // namespace

Generation generate(Seq2Seq& model, const at::Tensor& src_ids, const at::Tensor& src_mask,
                    const GenerateOptions& options) {
  const auto& config = model->config();
  check_generate_options(options, config);
  torch::NoGradGuard no_grad;
  return generate(model, model->encode(src_ids, src_mask), options);  // encode checks the source
}

Generation Seq2SeqImpl::generate(const at::Tensor& src_ids, const at::Tensor& src_mask,
                                 const GenerateOptions& options) {
  Seq2Seq holder(std::static_pointer_cast<Seq2SeqImpl>(shared_from_this()));
  return pyramidion::generate(holder, src_ids, src_mask, options);
}

namespace {

// The 2K best continuations of every alive example, best first.
struct Candidates {
  at::Tensor scores;  // (a, 2K) cumulative log-probabilities
  at::Tensor token;   // (a, 2K)
  at::Tensor row;     // (a, 2K) decoder rows (of a*K) they continue
  at::Tensor is_eos;  // (a, 2K)
};

}  // namespace

namespace detail {

// The search of generate(), one step at a time. Every example's state is repeated per beam: rows
// e*K .. e*K + K-1 belong to example e. An example leaves the batch (its rows are dropped from
// every active tensor and the decoder state) as soon as it is done; `alive_` maps the a remaining
// examples to their index in the batch.
class BeamSearch {
 public:
  BeamSearch(Seq2Seq& model, const EncoderOutput& encoded, const GenerateOptions& options)
      : model_(model),
        config_(model->config()),
        options_(options),
        L_(options.max_length() > 0 ? options.max_length() : config_.max_target_length),
        K_(options.beam_size()),
        b_(encoded.memory.size(0)),
        a_(b_),
        long_(at::TensorOptions().dtype(at::kLong).device(encoded.memory.device())),
        float_(at::TensorOptions().dtype(at::kFloat).device(encoded.memory.device())),
        state_(model->start_decoding(encoded)) {
    state_.expand(K_);               // b sources -> b*K decoder rows (the memory is not copied)
    state_.reserve(L_);              // the self-attention caches never grow nor copy on append
    alive_ = at::arange(b_, long_);  // (a)
    tokens_ = at::full({b_ * K_, L_}, config_.pad_id, long_);  // (a*K, L) active hypotheses
    // Cumulative log-probabilities of the active hypotheses; at the start the K beams are the
    // same hypothesis, so only beam 0 is expanded.
    cum_ = at::full({b_, K_}, kNegInf, float_);  // (a, K)
    cum_.select(1, 0).zero_();
    input_ = at::full({b_ * K_, 1}, config_.bos_id, long_);  // (a*K, 1)
    // The finished pool of the alive examples: their K best eos-terminated hypotheses, best first.
    pool_scores_ = at::full({b_, K_}, kNegInf, float_);            // (a, K) normalized
    pool_tokens_ = at::full({b_, K_, L_}, config_.pad_id, long_);  // (a, K, L)
    pool_lengths_ = at::zeros({b_, K_}, long_);                    // (a, K)
    // The best hypothesis of every example, written when it leaves the batch.
    best_scores_ = at::full({b_}, kNegInf, float_);            // (b)
    best_tokens_ = at::full({b_, L_}, config_.pad_id, long_);  // (b, L)
    best_lengths_ = at::zeros({b_}, long_);                    // (b)
  }

  Generation run() {
    for (int64_t i = 0; i < L_; ++i) {
      const auto candidates = top_candidates(next_log_probs(i));
      finalize_eos(candidates, i);
      steps_ = i + 1;
      const auto rows = advance(candidates, i);
      // At max_length the active hypotheses compete with the pool, this step's eos ones included
      // (finish_at_max_length), before any example is retired.
      if (i == L_ - 1) break;
      if (!drop_done(rows, i)) break;
    }
    finish_at_max_length();
    return result();
  }

 private:
  // The next token's log-probabilities (a*K, v), with pad, early eos and repeated n-grams banned.
  at::Tensor next_log_probs(int64_t i) {
    // The ids are bos or the search's own top-k picks: in range, so not re-checked (no host sync).
    auto lprobs = at::log_softmax(model_->decode(input_, state_, /*check_values=*/false).to(at::kFloat), -1);  // (a*K, v)
    lprobs.select(1, config_.pad_id).fill_(kNegInf);
    if (i < options_.min_length()) lprobs.select(1, config_.eos_id).fill_(kNegInf);
    if (options_.no_repeat_ngram_size() > 0)
      ban_repeated_ngrams(lprobs, tokens_.narrow(1, 0, i), options_.no_repeat_ngram_size());
    return lprobs;
  }

  // The 2K best continuations over K*v per example, best first.
  Candidates top_candidates(const at::Tensor& lprobs) const {
    const int64_t v = config_.vocab_size;
    const auto row_base = (at::arange(a_, long_) * K_).unsqueeze(1);             // (a, 1)
    const auto scores = cum_.unsqueeze(2) + lprobs.view({a_, K_, v});            // (a, K, v)
    auto [cand_scores, cand_index] = scores.view({a_, K_ * v}).topk(2 * K_, 1);  // (a, 2K) each
    Candidates c;
    c.scores = cand_scores;
    c.token = cand_index.remainder(v);                   // (a, 2K)
    c.row = row_base + at::div(cand_index, v, "floor");  // (a, 2K) rows of a*K
    c.is_eos = c.token == config_.eos_id;                // (a, 2K)
    return c;
  }

  // Finalizes the eos candidates among the first K (fairseq): their tokens plus eos at i.
  void finalize_eos(const Candidates& c, int64_t i) {
    const auto scores = c.scores.narrow(1, 0, K_);                                                     // (a, K)
    const auto first = c.is_eos.narrow(1, 0, K_) & scores.isfinite();                                  // (a, K)
    const auto normalized = scores / std::pow(double(i + 1), options_.length_penalty());               // (a, K)
    const auto new_scores = normalized.masked_fill(first.logical_not(), kNegInf);                      // (a, K)
    auto new_tokens = tokens_.index_select(0, c.row.narrow(1, 0, K_).reshape(-1)).view({a_, K_, L_});  // (a, K, L)
    new_tokens.select(2, i).fill_(config_.eos_id);
    merge_into_pool(pool_scores_, pool_tokens_, pool_lengths_, new_scores, new_tokens,
                    at::full({a_, K_}, i + 1, long_));
  }

  // Continues with the K best candidates that do not end in eos (there are >= K: each beam
  // contributes one eos candidate at most). Returns the decoder rows they continue, (a*K). At the
  // last step (i = max_length - 1) only those among the first K candidates stay in the running
  // (the others get -inf), so that the hypotheses that finish at max_length are the K best
  // candidates, eos or not, as in transformers' beam search.
  at::Tensor advance(const Candidates& c, int64_t i) {
    const auto position = at::arange(2 * K_, long_).unsqueeze(0);                          // (1, 2K)
    const auto order = c.is_eos.to(at::kLong) * (2 * K_) + position;                       // (a, 2K): non-eos first
    const auto keep = std::get<1>(order.topk(K_, 1, /*largest=*/false, /*sorted=*/true));  // (a, K)
    cum_ = c.scores.gather(1, keep);                                                       // (a, K)
    if (i == L_ - 1) cum_.masked_fill_(keep >= K_, kNegInf);                              // (a, K)
    const auto rows = c.row.gather(1, keep).reshape(-1);                                   // (a*K)
    const auto next_token = c.token.gather(1, keep).reshape({-1, 1});                      // (a*K, 1)
    tokens_ = tokens_.index_select(0, rows);                                               // (a*K, L)
    tokens_.select(1, i).copy_(next_token.squeeze(1));
    input_ = next_token;
    return rows;
  }

  // Retires the examples that are done and reorders the decoder state; false when none remain.
  // An example is done when its pool is full and (early stopping) or (no active hypothesis can
  // beat the pool's best: log-probs only fall, so its score is bounded by cum / length^penalty at
  // the longest length when penalty > 0, the next length otherwise).
  bool drop_done(const at::Tensor& rows, int64_t i) {
    const double penalty = options_.length_penalty();
    auto done = pool_scores_.select(1, K_ - 1).isfinite();  // (a)
    if (!options_.early_stopping()) {
      const double bound_length = penalty > 0 ? double(L_) : double(i + 2);
      const auto bound = std::get<0>(cum_.max(1)) / std::pow(bound_length, penalty);  // (a)
      done = done & (pool_scores_.select(1, 0) >= bound);
    }
    const int64_t open = a_ - done.sum().item<int64_t>();  // the step's one host sync
    if (open == a_) {
      if (K_ > 1) state_.reorder(rows);  // greedy: rows is the identity, nothing moves
      return true;
    }
    retire(done.nonzero().squeeze(1));
    if (open == 0) {
      a_ = 0;
      return false;
    }
    const auto remaining = done.logical_not().nonzero().squeeze(1);  // (a')
    const auto remaining_rows =
        (remaining.unsqueeze(1) * K_ + at::arange(K_, long_).unsqueeze(0)).reshape(-1);  // (a'*K)
    alive_ = alive_.index_select(0, remaining);
    cum_ = cum_.index_select(0, remaining);                  // (a', K)
    pool_scores_ = pool_scores_.index_select(0, remaining);  // (a', K)
    pool_tokens_ = pool_tokens_.index_select(0, remaining);  // (a', K, L)
    pool_lengths_ = pool_lengths_.index_select(0, remaining);
    tokens_ = tokens_.index_select(0, remaining_rows);  // (a'*K, L)
    input_ = input_.index_select(0, remaining_rows);    // (a'*K, 1)
    state_.reorder(rows.index_select(0, remaining_rows), remaining);
    a_ = open;
    return true;
  }

  // Examples that reached max_length: their active hypotheses (those among the last step's K best
  // candidates) compete as they are (no eos).
  void finish_at_max_length() {
    if (a_ == 0) return;
    const auto normalized = cum_ / std::pow(double(steps_), options_.length_penalty());  // (a, K)
    merge_into_pool(pool_scores_, pool_tokens_, pool_lengths_, normalized.masked_fill(cum_.isinf(), kNegInf),
                    tokens_.view({a_, K_, L_}), at::full({a_, K_}, steps_, long_));
    retire(at::arange(a_, long_));
  }

  // Writes the pool's best of the alive examples `local` (r) as their results.
  void retire(const at::Tensor& local) {
    const auto where = alive_.index_select(0, local);  // (r) indices in the batch
    best_scores_.index_copy_(0, where, pool_scores_.select(1, 0).index_select(0, local));
    best_tokens_.index_copy_(0, where, pool_tokens_.select(1, 0).index_select(0, local));
    best_lengths_.index_copy_(0, where, pool_lengths_.select(1, 0).index_select(0, local));
  }

  Generation result() const {
    Generation out;
    out.lengths = best_lengths_;  // (b)
    out.scores = best_scores_;    // (b)
    const int64_t t = std::max<int64_t>(best_lengths_.max().item<int64_t>(), 1);
    out.tokens = best_tokens_.narrow(1, 0, t).contiguous();  // (b, L) -> (b, t)
    return out;
  }

  Seq2Seq& model_;
  const ModelConfig& config_;
  const GenerateOptions& options_;
  const int64_t L_, K_, b_;
  int64_t a_;          // examples still searching
  int64_t steps_ = 0;  // steps taken
  const at::TensorOptions long_, float_;
  DecoderState state_;
  at::Tensor alive_, tokens_, cum_, input_;
  at::Tensor pool_scores_, pool_tokens_, pool_lengths_;
  at::Tensor best_scores_, best_tokens_, best_lengths_;
};

}  // namespace detail

namespace detail {

double generation_bytes(const ModelConfig& config, const GenerateOptions& options, int64_t examples,
                        int64_t memory_length, int64_t element_size) {
  const double L = static_cast<double>(options.max_length() > 0 ? options.max_length() : config.max_target_length);
  const double rows = static_cast<double>(examples) * static_cast<double>(options.beam_size());
  const double d = static_cast<double>(config.d_model), layers = static_cast<double>(config.decoder_layers);
  const double self_caches = rows * layers * 2 /* k, v */ * 2 /* the spare reorder writes into */ * L * d;
  const double cross_caches = static_cast<double>(examples) * layers * 2 * static_cast<double>(memory_length) * d;
  const double step = rows * (4 * d + 4 * static_cast<double>(config.vocab_size));  // a step's activations, scores
  const double hypotheses = 8.0 * (2 * rows * L + static_cast<double>(examples) * L);  // int64 tokens, pool, best
  return (self_caches + cross_caches) * static_cast<double>(element_size) + 4 * step + hypotheses;
}

double physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0;
}

void check_generation_memory(const ModelConfig& config, const GenerateOptions& options, int64_t examples,
                             int64_t memory_length, int64_t element_size, double available_bytes) {
  const double needed = generation_bytes(config, options, examples, memory_length, element_size);
  if (available_bytes <= 0 || needed <= available_bytes) return;
  const auto gib = [](double bytes) { return format_fixed(bytes / (1024.0 * 1024 * 1024), 1) + " GiB"; };
  throw std::invalid_argument(
      "generate: beam_size = " + std::to_string(options.beam_size()) + " x max_length = " +
      std::to_string(options.max_length() > 0 ? options.max_length() : config.max_target_length) + " for " +
      std::to_string(examples) + " example(s) needs about " + gib(needed) +
      " for the decoder's caches and the search; this machine has " + gib(available_bytes) +
      " in all: lower the beam, the maximum length or the batch (max_tokens)");
}

}  // namespace detail

Generation generate(Seq2Seq& model, const EncoderOutput& encoded, const GenerateOptions& options) {
  check_generate_options(options, model->config());
  if (!encoded.memory.defined() || encoded.memory.dim() != 3)
    throw std::invalid_argument("generate: the encoder output's memory must be (b, k, d_model); use Seq2Seq::encode");
  // An allocation that cannot succeed is refused with its estimate before any is made (on a GPU,
  // the caching allocator's own OutOfMemoryError says it).
  if (encoded.memory.is_cpu())
    detail::check_generation_memory(model->config(), options, encoded.memory.size(0), encoded.memory.size(1),
                                    static_cast<int64_t>(encoded.memory.element_size()), detail::physical_memory_bytes());
  torch::NoGradGuard no_grad;
  return detail::BeamSearch(model, encoded, options).run();
}

}  // namespace pyramidion
