// Tests of generate() (src/decoding/generate.cpp): greedy against a naive argmax over forward() on the
// growing prefix, an overfit model reproducing its targets (greedy and beam 4), batched against
// per-example generation, the length limits, no-repeat n-grams, beam scores recomputed with
// forward(), and every option error.
//
// Legend: b batch, n source tokens, t target positions, v vocabulary size.
#include <pyramidion/generate.h>
#include <pyramidion/model.h>

#include "decoding/generation_memory.h"
#include "support/model_fixtures.h"
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using pyramidion::GenerateOptions;
using pyramidion::Generation;
using pyramidion::ModelConfig;
using pyramidion::Seq2Seq;

using pyramidion_test::error_of;
using pyramidion_test::lengths_mask;
using pyramidion_test::make_model;
using pyramidion_test::preset;
using pyramidion_test::random_ids;

std::vector<int64_t> to_vector(const at::Tensor& t) {
  const auto c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Example e of a batch, cut to its source length: (1, n_e).
std::pair<at::Tensor, at::Tensor> example(const at::Tensor& src, const at::Tensor& mask, int64_t e) {
  const int64_t n = mask[e].sum().item<int64_t>();
  return {src.narrow(0, e, 1).narrow(1, 0, n), mask.narrow(0, e, 1).narrow(1, 0, n)};
}

// Output row e, cut to its length.
std::vector<int64_t> row(const Generation& g, int64_t e) {
  return to_vector(g.tokens[e].narrow(0, 0, g.lengths[e].item<int64_t>()));
}

// sum(log p(token)) / length^penalty of `tokens` after bos, recomputed with teacher forcing.
double model_score(Seq2Seq& model, const at::Tensor& src, const at::Tensor& mask, const std::vector<int64_t>& tokens,
                   double penalty) {
  const auto& config = model->config();
  std::vector<int64_t> in = {config.bos_id};
  in.insert(in.end(), tokens.begin(), tokens.end() - 1);
  const auto logits = model->forward(src, mask, at::tensor(in).unsqueeze(0));  // (1, t, v)
  const auto lprobs = at::log_softmax(logits[0], -1);                          // (t, v)
  const auto picked = lprobs.gather(1, at::tensor(tokens).unsqueeze(1));         // (t, 1)
  return picked.sum().item<double>() / std::pow(double(tokens.size()), penalty);
}

// The reference: argmax of forward() over the growing prefix (pad never chosen), one example.
std::vector<int64_t> naive_greedy(Seq2Seq& model, const at::Tensor& src, const at::Tensor& mask, int64_t max_length) {
  const auto& config = model->config();
  std::vector<int64_t> prefix = {config.bos_id}, out;
  while (static_cast<int64_t>(out.size()) < max_length) {
    const auto logits = model->forward(src, mask, at::tensor(prefix).unsqueeze(0));  // (1, t, v)
    auto last = at::log_softmax(logits[0][-1], -1);                                 // (v)
    last[config.pad_id] = -std::numeric_limits<float>::infinity();
    const int64_t token = last.argmax().item<int64_t>();
    out.push_back(token);
    prefix.push_back(token);
    if (token == config.eos_id) break;
  }
  return out;
}

// The reference beam search: fairseq's procedure (the 2K best continuations over K * v, eos among
// the first K finalized, the K best others continue) written out per example over forward() on
// whole prefixes: no cache, no fused projections, no batching, doubles for the scores. Runs every
// step (early_stopping false) or stops once K hypotheses are finished (true); at max_length the
// active hypotheses among the last step's K best candidates compete (transformers' rule: the K
// best candidates of the last step finish, eos or not). Returns the best hypothesis' tokens.
std::vector<int64_t> naive_beam(Seq2Seq& model, const at::Tensor& src, const at::Tensor& mask, int64_t K,
                                int64_t max_length, double penalty, bool early_stopping) {
  const auto& config = model->config();
  struct Hyp {
    std::vector<int64_t> tokens;
    double score;
  };
  std::vector<Hyp> active = {{{}, 0.0}}, finished;
  const auto normalized = [&](double cum, size_t length) { return cum / std::pow(double(length), penalty); };
  for (int64_t i = 0; i < max_length; ++i) {
    std::vector<std::vector<int64_t>> prefixes;
    for (const auto& h : active) {
      prefixes.push_back({config.bos_id});
      prefixes.back().insert(prefixes.back().end(), h.tokens.begin(), h.tokens.end());
    }
    const int64_t r = static_cast<int64_t>(active.size());
    auto in = at::empty({r, i + 1}, at::kLong);  // (r, i + 1)
    for (int64_t j = 0; j < r; ++j) in[j].copy_(at::tensor(prefixes[j]));
    const auto logits = model->forward(src.expand({r, -1}), mask.expand({r, -1}), in);  // (r, i + 1, v)
    const auto lprobs = at::log_softmax(logits.select(1, i), -1).to(at::kDouble);        // (r, v)
    struct Cand {
      double score;
      int64_t hyp, token;
    };
    std::vector<Cand> cands;
    for (int64_t j = 0; j < r; ++j)
      for (int64_t w = 0; w < config.vocab_size; ++w)
        if (w != config.pad_id) cands.push_back({active[j].score + lprobs[j][w].item<double>(), j, w});
    std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.score > b.score; });
    cands.resize(std::min<size_t>(cands.size(), 2 * K));
    std::vector<Hyp> next;
    for (size_t c = 0; c < cands.size(); ++c) {
      auto tokens = active[cands[c].hyp].tokens;
      tokens.push_back(cands[c].token);
      if (cands[c].token == config.eos_id) {
        if (c < static_cast<size_t>(K)) finished.push_back({tokens, normalized(cands[c].score, tokens.size())});
      } else if (static_cast<int64_t>(next.size()) < K && (i < max_length - 1 || c < static_cast<size_t>(K))) {
        next.push_back({tokens, cands[c].score});
      }
    }
    active = next;
    if (early_stopping && static_cast<int64_t>(finished.size()) >= K && i < max_length - 1) {
      active.clear();
      break;
    }
  }
  for (const auto& h : active) finished.push_back({h.tokens, normalized(h.score, h.tokens.size())});
  const auto best = std::max_element(finished.begin(), finished.end(),
                                     [](const Hyp& a, const Hyp& b) { return a.score < b.score; });
  return best->tokens;
}

bool has_repeated_ngram(const std::vector<int64_t>& tokens, size_t n) {
  std::set<std::vector<int64_t>> seen;
  for (size_t j = 0; j + n <= tokens.size(); ++j)
    if (!seen.insert(std::vector<int64_t>(tokens.begin() + j, tokens.begin() + j + n)).second) return true;
  return false;
}


// A tiny vanilla model trained by heart on three examples whose targets end at different steps
// (4, 7 and 10 tokens, eos included). Trained once for the suite.
struct Overfit {
  Seq2Seq model{nullptr};
  at::Tensor src, mask;  // (3, 20)
  at::Tensor targets;    // (3, 10): body + eos, pad_id after
  std::vector<int64_t> lengths = {4, 7, 10};
};

const Overfit& overfit() {
  static const Overfit data = [] {
    at::AutoGradMode enable_grad(true);  // the first caller may hold a NoGradGuard
    Overfit d;
    const auto config = preset("tiny-vanilla");
    at::manual_seed(11);
    d.model = Seq2Seq(config);
    d.model->train();
    d.mask = lengths_mask({20, 14, 9}, 20);
    d.src = random_ids(d.mask);
    auto tgt_in = at::full({3, 10}, config.pad_id, at::kLong);  // (b, t)
    d.targets = at::full({3, 10}, config.pad_id, at::kLong);   // (b, t)
    for (int64_t e = 0; e < 3; ++e) {
      const int64_t len = d.lengths[e];
      const auto body = at::randint(3, 64, {len - 1}, at::kLong);
      tgt_in[e][0] = config.bos_id;
      tgt_in[e].narrow(0, 1, len - 1).copy_(body);
      d.targets[e].narrow(0, 0, len - 1).copy_(body);
      d.targets[e][len - 1] = config.eos_id;
    }
    torch::optim::Adam adam(d.model->parameters(), torch::optim::AdamOptions(3e-3));
    for (int step = 0; step < 300; ++step) {
      const auto logits = d.model->forward(d.src, d.mask, tgt_in);  // (b, t, v)
      const auto loss = at::cross_entropy_loss(logits.reshape({-1, config.vocab_size}), d.targets.reshape({-1}),
                                               {}, at::Reduction::Mean, config.pad_id);
      adam.zero_grad();
      loss.backward();
      adam.step();
    }
    d.model->eval();
    return d;
  }();
  return data;
}

TEST(GenerateGreedy, BeamOneEqualsNaiveArgmax) {
  torch::NoGradGuard no_grad;
  auto random = make_model(preset("tiny-deep-pyramidion"), 3);
  at::manual_seed(4);
  const auto mask = lengths_mask({40, 22, 12}, 40);
  const auto src = random_ids(mask);
  auto trained = overfit().model;
  for (auto* model : {&random, &trained}) {
    const auto& s = model == &random ? src : overfit().src;
    const auto& m = model == &random ? mask : overfit().mask;
    const auto g = pyramidion::generate(*model, s, m, GenerateOptions().max_length(12));
    for (int64_t e = 0; e < s.size(0); ++e) {
      const auto [src_e, mask_e] = example(s, m, e);
      const auto expected = naive_greedy(*model, src_e, mask_e, 12);
      EXPECT_EQ(row(g, e), expected) << "example " << e;
      EXPECT_NEAR(g.scores[e].item<double>(), model_score(*model, src_e, mask_e, expected, 1.0), 1e-4);
    }
  }
}

TEST(GenerateOverfit, ReproducesTargetsGreedyAndBeam4) {
  torch::NoGradGuard no_grad;
  auto d = overfit();
  for (int64_t beam : {1, 4}) {
    const auto g = pyramidion::generate(d.model, d.src, d.mask, GenerateOptions().beam_size(beam));
    EXPECT_TRUE(at::equal(g.tokens, d.targets)) << "beam " << beam << "\n" << g.tokens;
    // The member form (the API) is the same search.
    const auto m = d.model->generate(d.src, d.mask, GenerateOptions().beam_size(beam));
    EXPECT_TRUE(at::equal(m.tokens, g.tokens));
    EXPECT_TRUE(at::equal(m.scores, g.scores));
    EXPECT_EQ(to_vector(g.lengths), d.lengths) << "beam " << beam;
    EXPECT_EQ(g.scores.sizes(), (std::vector<int64_t>{3}));
  }
}

TEST(GenerateBatch, EqualsPerExampleGeneration) {
  torch::NoGradGuard no_grad;
  auto d = overfit();
  auto random = make_model(preset("tiny-deep-pyramidion"), 5);
  at::manual_seed(6);
  const auto mask = lengths_mask({45, 30, 7}, 45);
  const auto src = random_ids(mask);
  for (int64_t beam : {1, 4}) {
    for (auto* model : {&d.model, &random}) {
      const auto& s = model == &random ? src : d.src;
      const auto& m = model == &random ? mask : d.mask;
      const auto options = GenerateOptions().beam_size(beam).max_length(14);
      const auto batched = pyramidion::generate(*model, s, m, options);
      for (int64_t e = 0; e < s.size(0); ++e) {
        const auto [src_e, mask_e] = example(s, m, e);
        const auto alone = pyramidion::generate(*model, src_e, mask_e, options);
        EXPECT_EQ(row(batched, e), row(alone, 0)) << "beam " << beam << " example " << e;
        EXPECT_NEAR(batched.scores[e].item<double>(), alone.scores[0].item<double>(), 1e-4);
      }
    }
  }
}

TEST(GenerateLength, MinLengthPreventsEarlyEos) {
  torch::NoGradGuard no_grad;
  auto d = overfit();
  const auto eos = d.model->config().eos_id;
  for (int64_t beam : {1, 4}) {
    const auto g = pyramidion::generate(d.model, d.src, d.mask, GenerateOptions().beam_size(beam).min_length(6));
    EXPECT_FALSE((g.tokens.narrow(1, 0, 6) == eos).any().item<bool>()) << g.tokens;
    EXPECT_GT(g.lengths[0].item<int64_t>(), 6) << "without min_length example 0 stops after 4 tokens";
    // Past the minimum the model is free to stop: example 2's target (10 tokens) is unaffected.
    EXPECT_TRUE(at::equal(g.tokens[2].narrow(0, 0, 10), d.targets[2]));
  }
}

TEST(GenerateLength, MaxLengthBoundsTheOutput) {
  torch::NoGradGuard no_grad;
  auto d = overfit();
  const auto g = pyramidion::generate(d.model, d.src, d.mask, GenerateOptions().max_length(5));
  EXPECT_EQ(g.tokens.size(1), 5);
  EXPECT_EQ(to_vector(g.lengths), (std::vector<int64_t>{4, 5, 5}));
  EXPECT_TRUE(at::equal(g.tokens, d.targets.narrow(1, 0, 5)));  // the prefixes, no eos appended

  auto random = make_model(preset("tiny-vanilla"), 8);
  at::manual_seed(9);
  const auto mask = lengths_mask({20, 13}, 20);
  const auto src = random_ids(mask);
  for (int64_t max_length : {1, 3}) {
    const auto beam = pyramidion::generate(random, src, mask, GenerateOptions().beam_size(4).max_length(max_length));
    EXPECT_LE(beam.tokens.size(1), max_length);
    EXPECT_TRUE((beam.lengths <= max_length).all().item<bool>());
    EXPECT_TRUE((beam.lengths >= 1).all().item<bool>());
  }
}

TEST(GenerateNoRepeat, NoRepeatedNgrams) {
  torch::NoGradGuard no_grad;
  auto model = make_model(preset("tiny-vanilla"), 10);
  at::manual_seed(12);
  const auto mask = lengths_mask({30, 25, 16, 9}, 30);
  const auto src = random_ids(mask);
  for (int64_t beam : {1, 4}) {
    const auto free = pyramidion::generate(model, src, mask, GenerateOptions().beam_size(beam).max_length(30));
    bool repeats = false;
    for (int64_t e = 0; e < 4; ++e) repeats = repeats || has_repeated_ngram(row(free, e), 2);
    EXPECT_TRUE(repeats) << "beam " << beam << ": the random model repeats bigrams when allowed (non-vacuous)";
    for (int64_t n : {1, 2, 3}) {
      const auto options = GenerateOptions().beam_size(beam).max_length(30).no_repeat_ngram_size(n);
      const auto g = pyramidion::generate(model, src, mask, options);
      for (int64_t e = 0; e < 4; ++e) {
        EXPECT_FALSE(has_repeated_ngram(row(g, e), n)) << "beam " << beam << " n " << n << " example " << e;
        EXPECT_EQ(g.lengths[e].item<int64_t>(), static_cast<int64_t>(row(g, e).size()));
      }
    }
  }
}

TEST(GenerateBeam, ScoreAtLeastGreedyAndRecomputable) {
  torch::NoGradGuard no_grad;
  auto model = make_model(preset("tiny-deep-pyramidion"), 13);
  // A larger eos embedding (shared with the output projection) makes eos likely at some steps, so
  // that hypotheses of different lengths compete and the length penalty matters.
  model->embed_tokens->weight[model->config().eos_id].mul_(3.0);
  at::manual_seed(14);
  const auto mask = lengths_mask({50, 41, 33, 20, 8}, 50);
  const auto src = random_ids(mask);
  for (double penalty : {0.0, 1.0}) {
    const auto options = GenerateOptions().max_length(10).length_penalty(penalty);
    const auto greedy = pyramidion::generate(model, src, mask, options);
    const auto beam = pyramidion::generate(model, src, mask, GenerateOptions(options).beam_size(4));
    const auto exhaustive =
        pyramidion::generate(model, src, mask, GenerateOptions(options).beam_size(4).early_stopping(false));
    for (int64_t e = 0; e < src.size(0); ++e) {
      const auto [src_e, mask_e] = example(src, mask, e);
      const double g = model_score(model, src_e, mask_e, row(greedy, e), penalty);
      const double b = model_score(model, src_e, mask_e, row(beam, e), penalty);
      const double x = model_score(model, src_e, mask_e, row(exhaustive, e), penalty);
      EXPECT_NEAR(b, beam.scores[e].item<double>(), 1e-4) << "the returned score is the model's";
      EXPECT_NEAR(x, exhaustive.scores[e].item<double>(), 1e-4);
      EXPECT_GE(b, g - 1e-5) << "penalty " << penalty << " example " << e;
      EXPECT_GE(x, b - 1e-5) << "penalty " << penalty << " example " << e;
    }
  }
}

// The cached, fused, batched search (KV caches preallocated and reordered in place, one q/k/v
// product per step, positions from the state's table) picks the tokens of the reference that
// recomputes every prefix from scratch: greedy and beam 4, batched with padding and one by one.
TEST(GenerateBeam, EqualsTheNaiveSearchBatchedAndAlone) {
  torch::NoGradGuard no_grad;
  for (const std::string name : {"tiny-deep-pyramidion", "tiny-vanilla"}) {
    auto model = make_model(preset(name), 17);
    at::manual_seed(18);
    const auto mask = lengths_mask({48, 31, 9}, 48);
    const auto src = random_ids(mask);
    // eos made a near second to the first greedy pick: hypotheses of different lengths compete.
    auto& out = model->config().shared_embeddings ? model->embed_tokens->weight : model->output_projection->weight;
    const auto first = pyramidion::generate(model, src, mask, GenerateOptions().max_length(1)).tokens[0][0].item<int64_t>();
    out[model->config().eos_id].copy_(out[first] * 0.98);
    for (int64_t beam : {1, 4}) {
      for (bool early : {true, false}) {
        if (beam == 1 && !early) continue;  // refused: greedy stops at eos
        const auto options = GenerateOptions().beam_size(beam).max_length(9).length_penalty(1.0).early_stopping(early);
        const auto batched = pyramidion::generate(model, src, mask, options);
        int64_t finished_early = 0;
        for (int64_t e = 0; e < src.size(0); ++e) {
          const auto [src_e, mask_e] = example(src, mask, e);
          const auto expected = naive_beam(model, src_e, mask_e, beam, 9, 1.0, early);
          finished_early += expected.back() == model->config().eos_id && expected.size() < 9;
          EXPECT_EQ(row(batched, e), expected) << name << " beam " << beam << " early " << early << " example " << e;
          const auto alone = pyramidion::generate(model, src_e, mask_e, options);
          EXPECT_EQ(row(alone, 0), expected) << name << " beam " << beam << " early " << early << " example " << e;
        }
        if (beam == 4 && early) EXPECT_GT(finished_early, 0) << name << ": a summary ends before max_length (non-vacuous)";
      }
    }
  }
}

TEST(GenerateOptionsCheck, InvalidOptionsAreRejected) {
  auto model = make_model(preset("tiny-vanilla"));  // max_target_length 32
  const auto src = at::full({1, 6}, 5, at::kLong);
  const auto mask = at::ones({1, 6}, at::kBool);
  const auto run = [&](const GenerateOptions& o) { return error_of<std::invalid_argument>([&] { pyramidion::generate(model, src, mask, o); }); };
  const auto expect = [&](const GenerateOptions& o, const std::vector<std::string>& parts) {
    const auto message = run(o);
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  };
  expect(GenerateOptions().beam_size(0), {"beam_size = 0"});
  expect(GenerateOptions().beam_size(-2), {"beam_size = -2"});
  expect(GenerateOptions().max_length(-1), {"max_length = -1"});
  expect(GenerateOptions().max_length(33), {"max_length = 33", "max_target_length = 32"});
  expect(GenerateOptions().max_length(5).min_length(6), {"min_length = 6", "max_length = 5"});
  expect(GenerateOptions().min_length(33), {"min_length = 33", "max_length = 32"});
  expect(GenerateOptions().min_length(-1), {"min_length = -1"});
  expect(GenerateOptions().length_penalty(std::nan("")), {"length_penalty"});
  expect(GenerateOptions().length_penalty(INFINITY), {"length_penalty = inf"});
  expect(GenerateOptions().no_repeat_ngram_size(-1), {"no_repeat_ngram_size = -1"});
  expect(GenerateOptions().early_stopping(false), {"early_stopping"});
  // Bounds that keep beam x length a sane number of positions (a beam of 2^31 - 1 aborted).
  expect(GenerateOptions().beam_size(1025), {"beam_size = 1025 must be in [1, 1024]"});
  expect(GenerateOptions().beam_size(2147483647), {"beam_size = 2147483647 must be in [1, 1024]"});
  expect(GenerateOptions().no_repeat_ngram_size(33), {"no_repeat_ngram_size = 33 must be in [0, max_target_length = 32]"});
  EXPECT_EQ(run(GenerateOptions().max_length(2).no_repeat_ngram_size(3)), "(no exception)") << "the default ban, short output";
  EXPECT_EQ(run(GenerateOptions().max_length(32).min_length(32).beam_size(2)), "(no exception)");
  // Source errors come from the model's checks.
  EXPECT_THROW(pyramidion::generate(model, src.to(at::kInt), mask), std::invalid_argument);
}

// A search that no machine here can hold is refused with its estimate before anything is
// allocated (a beam of a million used to abort after 9.4 GB).
TEST(GenerateMemory, ASearchThatCannotFitIsRefusedWithItsEstimate) {
  const auto config = preset("tiny-vanilla");
  const auto options = GenerateOptions().beam_size(1024);
  const int64_t examples = 64, memory = 48, L = config.max_target_length;
  const double bytes = pyramidion::detail::generation_bytes(config, options, examples, memory, 4);
  // At least the self-attention keys and values of every beam at every position, counted by hand.
  const double caches = 4.0 * examples * 1024 * config.decoder_layers * 2 * L * config.d_model;
  EXPECT_GE(bytes, caches);
  EXPECT_LE(bytes, 4 * caches + 1e9) << "within a small factor";
  const auto refused = error_of<std::invalid_argument>(
      [&] { pyramidion::detail::check_generation_memory(config, options, examples, memory, 4, bytes / 2); });
  EXPECT_NE(refused.find("beam_size = 1024 x max_length = " + std::to_string(L) + " for 64 example(s) needs about "),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.find("lower the beam"), std::string::npos);
  EXPECT_NO_THROW(pyramidion::detail::check_generation_memory(config, options, examples, memory, 4, bytes * 2));
  // Through generate(): two million sources (an expanded view: no memory of their own) at beam
  // 1024 need far more than this machine has.
  auto model = make_model(config);
  pyramidion::EncoderOutput encoded;
  encoded.memory = at::zeros({1, 1, config.d_model}).expand({2000000, 8, config.d_model});  // (b, k, d)
  encoded.memory_mask = at::ones({1, 1}, at::kBool).expand({2000000, 8});                   // (b, k)
  const auto message = error_of<std::invalid_argument>([&] { pyramidion::generate(model, encoded, options); });
  EXPECT_NE(message.find("for 2000000 example(s) needs about"), std::string::npos) << message;
  EXPECT_NE(message.find("this machine has"), std::string::npos) << message;
}

}  // namespace
