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

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace pyramidion {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Bans, in lprobs (r, v), every token that would complete an n-gram already present in the rows'
// hypotheses hyp (r, i). Vectorised: compares the last n-1 tokens with every (n-1)-prefix.
void ban_repeated_ngrams(at::Tensor& lprobs, const at::Tensor& hyp, int64_t n) {
  const int64_t i = hyp.size(1);
  if (i < n) return;                                        // no complete n-gram yet
  const auto windows = hyp.unfold(1, n, 1);                 // (r, i - n + 1, n)
  const auto prefixes = windows.narrow(2, 0, n - 1);        // (r, w, n - 1)
  const auto next = windows.select(2, n - 1);               // (r, w)
  const auto suffix = hyp.narrow(1, i - n + 1, n - 1);      // (r, n - 1)
  const auto match = (prefixes == suffix.unsqueeze(1)).all(2);  // (r, w); n = 1: every window
  const auto hits = at::zeros_like(lprobs).scatter_add_(1, next, match.to(lprobs.scalar_type()));  // (r, v)
  lprobs.masked_fill_(hits > 0, kNegInf);
}

// Merges candidates (b, c) into the finished pool (b, K): keeps the K best by score.
void merge_into_pool(at::Tensor& pool_scores, at::Tensor& pool_tokens, at::Tensor& pool_lengths,
                     const at::Tensor& scores, const at::Tensor& tokens, const at::Tensor& lengths) {
  const int64_t K = pool_scores.size(1);
  const auto all_scores = at::cat({pool_scores, scores}, 1);    // (b, K + c)
  const auto all_tokens = at::cat({pool_tokens, tokens}, 1);    // (b, K + c, L)
  const auto all_lengths = at::cat({pool_lengths, lengths}, 1); // (b, K + c)
  auto [best, index] = all_scores.topk(K, 1);                   // (b, K) each, best first
  pool_scores = best;
  pool_lengths = all_lengths.gather(1, index);                                         // (b, K)
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

Generation generate(Seq2Seq& model, const EncoderOutput& encoded, const GenerateOptions& options) {
  const auto& config = model->config();
  const int64_t L = options.max_length() > 0 ? options.max_length() : config.max_target_length;
  check_generate_options(options, config);
  torch::NoGradGuard no_grad;

  const int64_t K = options.beam_size();
  const double penalty = options.length_penalty();
  if (!encoded.memory.defined() || encoded.memory.dim() != 3)
    throw std::invalid_argument("generate: the encoder output's memory must be (b, k, d_model); use Seq2Seq::encode");
  const int64_t b = encoded.memory.size(0);
  const int64_t v = config.vocab_size;
  const auto device = encoded.memory.device();
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  const auto float_opts = at::TensorOptions().dtype(at::kFloat).device(device);

  // Every example's state repeated per beam: rows e*K .. e*K + K-1 belong to example e. An
  // example leaves the batch (its rows are dropped from every active tensor and the state) as
  // soon as it is done; `alive` maps the a remaining examples to their index in the batch.
  auto state = model->start_decoding(encoded);
  state.expand(K);  // b sources -> b*K decoder rows (the memory is not copied)
  auto alive = at::arange(b, long_opts);                          // (a)
  int64_t a = b;

  auto tokens = at::full({b * K, L}, config.pad_id, long_opts);  // (a*K, L) active hypotheses
  // Cumulative log-probabilities of the active hypotheses; at the start the K beams are the same
  // hypothesis, so only beam 0 is expanded.
  auto cum = at::full({b, K}, kNegInf, float_opts);  // (a, K)
  cum.select(1, 0).zero_();
  auto input = at::full({b * K, 1}, config.bos_id, long_opts);  // (a*K, 1)

  // The finished pool of the alive examples: their K best eos-terminated hypotheses, best first.
  auto pool_scores = at::full({b, K}, kNegInf, float_opts);          // (a, K) normalized
  auto pool_tokens = at::full({b, K, L}, config.pad_id, long_opts);  // (a, K, L)
  auto pool_lengths = at::zeros({b, K}, long_opts);                  // (a, K)
  // The best hypothesis of every example, written when it leaves the batch.
  auto best_scores = at::full({b}, kNegInf, float_opts);          // (b)
  auto best_tokens = at::full({b, L}, config.pad_id, long_opts);  // (b, L)
  auto best_lengths = at::zeros({b}, long_opts);                  // (b)
  const auto retire = [&](const at::Tensor& local) {  // local: (r) indices among the alive
    const auto where = alive.index_select(0, local);  // (r) indices in the batch
    best_scores.index_copy_(0, where, pool_scores.select(1, 0).index_select(0, local));
    best_tokens.index_copy_(0, where, pool_tokens.select(1, 0).index_select(0, local));
    best_lengths.index_copy_(0, where, pool_lengths.select(1, 0).index_select(0, local));
  };

  const auto candidate_position = at::arange(2 * K, long_opts).unsqueeze(0);  // (1, 2K)
  int64_t steps = 0;
  for (int64_t i = 0; i < L; ++i) {
    auto lprobs = at::log_softmax(model->decode_step(input, state).to(at::kFloat), -1);  // (a*K, v)
    lprobs.select(1, config.pad_id).fill_(kNegInf);
    if (i < options.min_length()) lprobs.select(1, config.eos_id).fill_(kNegInf);
    if (options.no_repeat_ngram_size() > 0)
      ban_repeated_ngrams(lprobs, tokens.narrow(1, 0, i), options.no_repeat_ngram_size());

    // The 2K best continuations over K*v per example, best first.
    const auto row_base = (at::arange(a, long_opts) * K).unsqueeze(1);      // (a, 1)
    const auto scores = cum.unsqueeze(2) + lprobs.view({a, K, v});          // (a, K, v)
    auto [cand_scores, cand_index] = scores.view({a, K * v}).topk(2 * K, 1);  // (a, 2K) each
    const auto cand_beam = at::div(cand_index, v, "floor");                  // (a, 2K)
    const auto cand_token = cand_index.remainder(v);                         // (a, 2K)
    const auto cand_row = row_base + cand_beam;                              // (a, 2K) rows of a*K
    const auto is_eos = cand_token == config.eos_id;                         // (a, 2K)

    // Finalize the eos candidates among the first K (fairseq): their tokens plus eos at i.
    {
      const auto first = is_eos.narrow(1, 0, K) & cand_scores.narrow(1, 0, K).isfinite();    // (a, K)
      const auto normalized = cand_scores.narrow(1, 0, K) / std::pow(double(i + 1), penalty);  // (a, K)
      const auto new_scores = normalized.masked_fill(first.logical_not(), kNegInf);           // (a, K)
      auto new_tokens = tokens.index_select(0, cand_row.narrow(1, 0, K).reshape(-1)).view({a, K, L});  // (a, K, L)
      new_tokens.select(2, i).fill_(config.eos_id);
      merge_into_pool(pool_scores, pool_tokens, pool_lengths, new_scores, new_tokens,
                      at::full({a, K}, i + 1, long_opts));
    }
    steps = i + 1;

    // Continue with the K best candidates that do not end in eos (there are >= K: each beam
    // contributes one eos candidate at most).
    const auto order = is_eos.to(at::kLong) * (2 * K) + candidate_position;  // (a, 2K): non-eos first
    const auto keep = std::get<1>(order.topk(K, 1, /*largest=*/false, /*sorted=*/true));  // (a, K)
    cum = cand_scores.gather(1, keep);                                   // (a, K)
    const auto rows = cand_row.gather(1, keep).reshape(-1);               // (a*K)
    const auto next_token = cand_token.gather(1, keep).reshape({-1, 1});  // (a*K, 1)
    tokens = tokens.index_select(0, rows);                               // (a*K, L)
    tokens.select(1, i).copy_(next_token.squeeze(1));
    input = next_token;

    // An example is done when its pool is full and (early stopping) or (no active hypothesis can
    // beat the pool's best: log-probs only fall, so its score is bounded by cum / length^penalty at
    // the longest length when penalty > 0, the next length otherwise).
    auto done = pool_scores.select(1, K - 1).isfinite();  // (a)
    if (!options.early_stopping()) {
      const double bound_length = penalty > 0 ? double(L) : double(i + 2);
      const auto bound = std::get<0>(cum.max(1)) / std::pow(bound_length, penalty);  // (a)
      done = done & (pool_scores.select(1, 0) >= bound);
    }
    const int64_t open = a - done.sum().item<int64_t>();  // the step's one host sync
    if (open < a) {
      retire(done.nonzero().squeeze(1));
      if (open == 0) {
        a = 0;
        break;
      }
      const auto remaining = done.logical_not().nonzero().squeeze(1);  // (a')
      const auto remaining_rows =
          (remaining.unsqueeze(1) * K + at::arange(K, long_opts).unsqueeze(0)).reshape(-1);  // (a'*K)
      alive = alive.index_select(0, remaining);
      cum = cum.index_select(0, remaining);                  // (a', K)
      pool_scores = pool_scores.index_select(0, remaining);  // (a', K)
      pool_tokens = pool_tokens.index_select(0, remaining);  // (a', K, L)
      pool_lengths = pool_lengths.index_select(0, remaining);
      tokens = tokens.index_select(0, remaining_rows);  // (a'*K, L)
      input = input.index_select(0, remaining_rows);    // (a'*K, 1)
      state.reorder(rows.index_select(0, remaining_rows), remaining);
      a = open;
    } else if (K > 1) {  // greedy: rows is the identity, nothing moves
      state.reorder(rows);
    }
  }

  // Examples that reached max_length: their active hypotheses compete as they are (no eos).
  if (a > 0) {
    const auto normalized = cum / std::pow(double(steps), penalty);  // (a, K)
    merge_into_pool(pool_scores, pool_tokens, pool_lengths, normalized.masked_fill(cum.isinf(), kNegInf),
                    tokens.view({a, K, L}), at::full({a, K}, steps, long_opts));
    retire(at::arange(a, long_opts));
  }

  Generation out;
  out.lengths = best_lengths;  // (b)
  out.scores = best_scores;    // (b)
  const int64_t t = std::max<int64_t>(best_lengths.max().item<int64_t>(), 1);
  out.tokens = best_tokens.narrow(1, 0, t).contiguous();  // (b, L) -> (b, t)
  return out;
}

}  // namespace pyramidion
