// Tests of Seq2Seq (src/models/model.cpp) on the tiny presets in configs/: invariances (padding, block
// size, pooling that passes through), the pooling schedule, cached decoding against teacher
// forcing, checkpoints, error paths and overfitting one batch.
//
// Legend: b batch, n source tokens, k memory rows, t target positions, v vocabulary size.
#include <pyramidion/generate.h>
#include <pyramidion/model.h>

#include "support/model_fixtures.h"
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/optim/adam.h>

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>
#include "util/output_file.h"

namespace {

namespace fs = std::filesystem;
using pyramidion::ModelConfig;
using pyramidion::Seq2Seq;

using pyramidion_test::error_of;
using pyramidion_test::lengths_mask;
using pyramidion_test::make_model;
using pyramidion_test::preset;
using pyramidion_test::random_ids;

// Copies every parameter of `from` whose name `to` has too (shapes must agree).
void copy_weights(Seq2Seq& from, Seq2Seq& to) {
  torch::NoGradGuard no_grad;
  auto dst = to->named_parameters();
  for (const auto& p : from->named_parameters())
    if (auto* t = dst.find(p.key())) t->copy_(p.value());
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

fs::path scratch_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  auto dir = fs::temp_directory_path() /
             ("pyramidion_model_test_" + std::to_string(::getpid()) + "_" + tag + "_" + std::to_string(counter++));
  pyramidion::detail::remove_tree(fs::path(dir).string());
  return dir;
}


TEST(Seq2SeqModel, PaddingDoesNotChangeLogits) {
  torch::NoGradGuard no_grad;
  auto model = make_model(preset("tiny-deep-pyramidion"));
  at::manual_seed(1);
  // Lengths above the first pooled length (32), so both poolings really pool.
  const auto mask = lengths_mask({50, 37}, 50);  // (b, n)
  const auto src = random_ids(mask);             // (b, n)
  const auto tgt = at::randint(3, 64, {2, 9}, at::kLong);  // (b, t)
  const auto logits = model->forward(src, mask, tgt);      // (b, t, v)
  for (int64_t extra : {1, 10, 14}) {
    const auto padded_src = at::constant_pad_nd(src, {0, extra}, 0);    // (b, n + extra), pad_id 0
    const auto padded_mask = at::constant_pad_nd(mask, {0, extra}, 0);  // (b, n + extra)
    const auto padded = model->forward(padded_src, padded_mask, tgt);  // (b, t, v)
    EXPECT_LT(max_diff(logits, padded), 1e-5) << "extra padding " << extra;
  }
  // The same padding left unmasked does change them: the mask, not luck, makes them equal.
  const auto unmasked = model->forward(at::constant_pad_nd(src, {0, 10}, 0), at::ones({2, 60}, at::kBool), tgt);
  EXPECT_GT(max_diff(logits, unmasked), 1e-3);
  // An example alone or in a padded batch: the same logits.
  const auto alone = model->forward(src.narrow(0, 1, 1).narrow(1, 0, 37), mask.narrow(0, 1, 1).narrow(1, 0, 37),
                                    tgt.narrow(0, 1, 1));  // (1, t, v)
  EXPECT_LT(max_diff(alone, logits.narrow(0, 1, 1)), 1e-5);
}

TEST(Seq2SeqModel, BlockAtLeastAsLongAsInputEqualsFullAttention) {
  torch::NoGradGuard no_grad;
  auto vanilla = make_model(preset("tiny-vanilla"), 0);
  auto blockwise = make_model(preset("tiny-blockwise"), 1);  // block_size 16
  copy_weights(vanilla, blockwise);
  at::manual_seed(2);
  const auto tgt = at::randint(3, 64, {2, 7}, at::kLong);  // (b, t)
  for (int64_t n : {5, 16}) {
    const auto mask = lengths_mask({n, n - 2}, n);  // (b, n)
    const auto src = random_ids(mask);
    EXPECT_LT(max_diff(vanilla->forward(src, mask, tgt), blockwise->forward(src, mask, tgt)), 1e-5) << "n " << n;
  }
  // Longer than a block: the models differ (the test above is not vacuous).
  const auto mask = lengths_mask({40, 33}, 40);
  const auto src = random_ids(mask);
  EXPECT_GT(max_diff(vanilla->forward(src, mask, tgt), blockwise->forward(src, mask, tgt)), 1e-3);
}

TEST(Seq2SeqModel, PyramidionWithoutPoolingEqualsBlockwise) {
  torch::NoGradGuard no_grad;
  auto blockwise = make_model(preset("tiny-blockwise"), 0);
  at::manual_seed(3);
  const auto tgt = at::randint(3, 64, {2, 6}, at::kLong);
  {
    // The schedule switched off.
    auto config = preset("tiny-deep-pyramidion");
    config.pooled_lengths = {};
    auto unpooled = make_model(config, 1);
    copy_weights(blockwise, unpooled);
    const auto mask = lengths_mask({48, 30}, 48);
    const auto src = random_ids(mask);
    EXPECT_LT(max_diff(blockwise->forward(src, mask, tgt), unpooled->forward(src, mask, tgt)), 1e-6);
  }
  {
    // The schedule on, with inputs no longer than any pooled length (32, 16): every pooling passes
    // through.
    auto pyramidion = make_model(preset("tiny-deep-pyramidion"), 1);
    copy_weights(blockwise, pyramidion);
    const auto mask = lengths_mask({16, 11}, 16);
    const auto src = random_ids(mask);
    EXPECT_LT(max_diff(blockwise->forward(src, mask, tgt), pyramidion->forward(src, mask, tgt)), 1e-6);
  }
}

TEST(Seq2SeqModel, KeptLengthsFollowTheSchedule) {
  torch::NoGradGuard no_grad;
  auto model = make_model(preset("tiny-deep-pyramidion"));  // pooled_lengths [32, 16]
  at::manual_seed(4);
  const std::vector<int64_t> lengths = {60, 45};
  const auto mask = lengths_mask(lengths, 60);
  const auto out = model->encode(random_ids(mask), mask);
  ASSERT_EQ(out.kept_positions.size(), 2u);
  EXPECT_EQ(out.kept_positions[0].sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(out.kept_positions[1].sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_EQ(out.memory.sizes(), (std::vector<int64_t>{2, 16, 32}));
  EXPECT_EQ(out.memory_mask.sum().item<int64_t>(), 32);
  for (const auto& kept : out.kept_positions)
    for (int64_t i = 0; i < 2; ++i) {
      const auto row = kept[i];  // (k)
      EXPECT_TRUE((row >= 0).all().item<bool>());
      EXPECT_TRUE((row < lengths[i]).all().item<bool>()) << "a kept position is padding";
      // keep_order: the survivors stay in document order, each original position at most once.
      EXPECT_TRUE((row.narrow(0, 1, row.size(0) - 1) > row.narrow(0, 0, row.size(0) - 1)).all().item<bool>());
    }
  // The second layer's survivors are among the first layer's.
  for (int64_t i = 0; i < 2; ++i)
    EXPECT_TRUE(at::isin(out.kept_positions[1][i], out.kept_positions[0][i]).all().item<bool>());

  // A short input: the first pooling (32) passes through, the second pools to 16; a padded row
  // is marked -1.
  const auto short_mask = lengths_mask({20, 10}, 20);
  const auto short_out = model->encode(random_ids(short_mask), short_mask);
  ASSERT_EQ(short_out.kept_positions.size(), 2u);
  EXPECT_TRUE(at::equal(short_out.kept_positions[0][0], at::arange(20)));
  EXPECT_EQ(short_out.kept_positions[1].size(1), 16);
  EXPECT_EQ(short_out.memory_mask.sum(1)[1].item<int64_t>(), 10);
  EXPECT_EQ(short_out.kept_positions[1][1][15].item<int64_t>(), -1);

  // The pooler preset pools once, after the last layer.
  auto pooler = make_model(preset("tiny-pooler"));
  const auto pooled = pooler->encode(random_ids(mask), mask);
  ASSERT_EQ(pooled.kept_positions.size(), 1u);
  EXPECT_EQ(pooled.memory.size(1), 16);
}

// set_hard_at_inference gives the model a config with hard_at_inference built gives (same
// weights: same seed), and switching back restores the soft tournament's output exactly.
TEST(Seq2SeqModel, SetHardAtInferenceEqualsAModelBuiltHard) {
  torch::NoGradGuard no_grad;
  auto config = preset("tiny-deep-pyramidion");
  auto switched = make_model(config, 5);
  config.pooler.hard_at_inference = true;
  auto built_hard = make_model(config, 5);
  switched->eval();
  built_hard->eval();
  at::manual_seed(6);
  const auto mask = lengths_mask({60, 41}, 60);
  const auto ids = random_ids(mask);
  const auto soft = switched->encode(ids, mask);
  switched->set_hard_at_inference(true);
  EXPECT_TRUE(switched->config().pooler.hard_at_inference);
  const auto hard = switched->encode(ids, mask), expected = built_hard->encode(ids, mask);
  EXPECT_TRUE(at::equal(hard.memory, expected.memory));
  for (size_t l = 0; l < 2; ++l) EXPECT_TRUE(at::equal(hard.kept_positions[l], expected.kept_positions[l]));
  EXPECT_FALSE(at::equal(hard.memory, soft.memory));  // selected rows, not blends
  switched->set_hard_at_inference(false);
  EXPECT_FALSE(switched->config().pooler.hard_at_inference);
  EXPECT_TRUE(at::equal(switched->encode(ids, mask).memory, soft.memory));
}

TEST(Seq2SeqModel, CachedDecodingEqualsTeacherForcing) {
  torch::NoGradGuard no_grad;
  for (const std::string name : {"tiny-deep-pyramidion", "tiny-vanilla"}) {
    for (const auto norm : {pyramidion::Norm::post, pyramidion::Norm::pre}) {
      auto config = preset(name);
      config.norm = norm;
      config.shared_embeddings = norm == pyramidion::Norm::post;  // both layouts
      auto model = make_model(config);
      at::manual_seed(5);
      const auto mask = lengths_mask({44, 29}, 44);
      const auto src = random_ids(mask);
      const auto tgt = at::randint(3, 64, {2, 10}, at::kLong);  // (b, t)
      const auto logits = model->forward(src, mask, tgt);      // (b, t, v)
      auto state = model->start_decoding(model->encode(src, mask));
      for (int64_t i = 0; i < tgt.size(1); ++i) {
        const auto step = model->decode_step(tgt.narrow(1, i, 1), state);  // (b, v)
        EXPECT_LT(max_diff(step, logits.select(1, i)), 1e-5) << name << " position " << i;
      }
      EXPECT_EQ(state.length(), 10);

      // Reordering the state (beam search) reorders the batch.
      auto swapped = model->start_decoding(model->encode(src, mask));
      for (int64_t i = 0; i < 4; ++i) model->decode_step(tgt.narrow(1, i, 1), swapped);
      swapped.reorder(at::tensor(std::vector<int64_t>{1, 0, 1}));
      const auto next = model->decode_step(tgt.narrow(1, 4, 1).index_select(0, at::tensor(std::vector<int64_t>{1, 0, 1})),
                                           swapped);  // (3, v)
      EXPECT_LT(max_diff(next[0], logits[1][4]), 1e-5);
      EXPECT_LT(max_diff(next[1], logits[0][4]), 1e-5);
      EXPECT_LT(max_diff(next[2], logits[1][4]), 1e-5);
    }
  }
}

TEST(Seq2SeqModel, BeamRowsShareTheMemoryAndEqualTeacherForcing) {
  torch::NoGradGuard no_grad;
  auto model = make_model(preset("tiny-deep-pyramidion"));
  at::manual_seed(7);
  const auto mask = lengths_mask({44, 29}, 44);
  const auto src = random_ids(mask);
  // 3 beams per source, each with its own target; beam j of source e is row e*3 + j.
  const auto tgt = at::randint(3, 64, {6, 8}, at::kLong);                                 // (b*3, t)
  const auto rows_source = at::tensor(std::vector<int64_t>{0, 0, 0, 1, 1, 1});             // (b*3)
  const auto logits = model->forward(src.index_select(0, rows_source), mask.index_select(0, rows_source),
                                     tgt);                                                  // (b*3, t, v)
  auto state = model->start_decoding(model->encode(src, mask));
  state.expand(3);
  EXPECT_EQ(state.rows(), 6);
  EXPECT_EQ(state.cross_attn.front().k.size(0), 2) << "the memory is kept once per source";
  for (int64_t i = 0; i < 5; ++i) {
    const auto step = model->decode_step(tgt.narrow(1, i, 1), state);  // (b*3, v)
    EXPECT_LT(max_diff(step, logits.select(1, i)), 1e-5) << "position " << i;
  }
  // Beams reordered within their source: row r now continues the hypothesis of row perm[r].
  const auto perm = at::tensor(std::vector<int64_t>{2, 2, 0, 4, 5, 3});
  state.reorder(perm);
  auto step = model->decode_step(tgt.index_select(0, perm).narrow(1, 5, 1), state);  // (b*3, v)
  EXPECT_LT(max_diff(step, logits.index_select(0, perm).select(1, 5)), 1e-5);
  // Source 0 leaves: keep rows 3..5 (already permuted) and memory row 1.
  const auto kept = at::tensor(std::vector<int64_t>{3, 4, 5});
  state.reorder(kept, at::tensor(std::vector<int64_t>{1}));
  EXPECT_EQ(state.rows(), 3);
  EXPECT_EQ(state.cross_attn.front().k.size(0), 1);
  const auto rows = perm.index_select(0, kept);                                  // original rows
  step = model->decode_step(tgt.index_select(0, rows).narrow(1, 6, 1), state);  // (3, v)
  EXPECT_LT(max_diff(step, logits.index_select(0, rows).select(1, 6)), 1e-5);

  EXPECT_THROW(state.expand(2), std::invalid_argument);                       // already expanded
  EXPECT_THROW(state.reorder(at::tensor(std::vector<int64_t>{0, 1})), std::invalid_argument);  // 2 != 1 x 3
  EXPECT_THROW(model->decode_step(tgt.narrow(1, 7, 1), state), std::invalid_argument);         // 6 rows != 3
}

// ---- the options of imported checkpoints (PEGASUS, BigBird-PEGASUS) ---------------------------

// transformers' PegasusSinusoidalPositionalEmbedding written out: angle p / 10000^(2 * (j / 2) / d)
// for column j, the even columns' sines first, then the odd columns' cosines; in double.
std::vector<double> naive_pegasus_positions(int64_t n, int64_t d, int64_t offset) {
  std::vector<double> table;
  for (int64_t p = offset; p < offset + n; ++p) {
    std::vector<double> sines, cosines;
    for (int64_t j = 0; j < d; ++j) {
      const double angle = static_cast<double>(p) / std::pow(10000.0, 2.0 * static_cast<double>(j / 2) / static_cast<double>(d));
      (j % 2 == 0 ? sines : cosines).push_back(j % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
    table.insert(table.end(), sines.begin(), sines.end());
    table.insert(table.end(), cosines.begin(), cosines.end());
  }
  return table;
}

TEST(Seq2SeqImportOptions, PegasusPositionsFollowTheirDefinition) {
  for (const int64_t d : {16, 15, 1}) {
    for (const int64_t offset : {0, 8190}) {
      const auto got = pyramidion::pegasus_positions(5, d, offset);  // (5, d)
      const auto want = at::tensor(naive_pegasus_positions(5, d, offset), at::kDouble).view({5, d});
      EXPECT_LT(max_diff(got.to(at::kDouble), want), 1e-6) << "d " << d << " offset " << offset;
    }
  }
}

TEST(Seq2SeqImportOptions, LearnedPositionsHoldingTheSinusoidsEqualSinusoidalPositions) {
  torch::NoGradGuard no_grad;
  for (const auto positions : {pyramidion::Positions::sinusoidal, pyramidion::Positions::sinusoidal_pegasus}) {
    auto config = preset("tiny-deep-pyramidion");
    config.positions = positions;
    auto fixed = make_model(config);
    config.positions = pyramidion::Positions::learned;
    auto learned = make_model(config);
    copy_weights(fixed, learned);
    const auto table = [&](int64_t n) {
      return positions == pyramidion::Positions::sinusoidal ? pyramidion::sinusoidal_positions(n, config.d_model)
                                                            : pyramidion::pegasus_positions(n, config.d_model);
    };
    learned->encoder_positions.copy_(table(config.max_source_length));
    learned->decoder_positions.copy_(table(config.max_target_length));
    at::manual_seed(9);
    const auto mask = lengths_mask({44, 29}, 44);
    const auto src = random_ids(mask);
    const auto tgt = at::randint(3, 64, {2, 10}, at::kLong);  // (b, t)
    const auto want = fixed->forward(src, mask, tgt);          // (b, t, v)
    EXPECT_LT(max_diff(learned->forward(src, mask, tgt), want), 1e-5);
    // Step by step, through the decoding state's table.
    auto state = learned->start_decoding(learned->encode(src, mask));
    for (int64_t i = 0; i < 10; ++i)
      EXPECT_LT(max_diff(learned->decode_step(tgt.narrow(1, i, 1), state), want.select(1, i)), 1e-5) << i;
  }
}

TEST(Seq2SeqImportOptions, LearnedPositionsAreTrained) {
  auto config = preset("tiny-vanilla");
  config.positions = pyramidion::Positions::learned;
  auto model = make_model(config);
  EXPECT_EQ(model->encoder_positions.sizes(), (std::vector<int64_t>{config.max_source_length, config.d_model}));
  EXPECT_EQ(model->decoder_positions.sizes(), (std::vector<int64_t>{config.max_target_length, config.d_model}));
  at::manual_seed(3);
  const auto mask = lengths_mask({20, 9}, 20);
  const auto logits = model->forward(random_ids(mask), mask, at::randint(3, 64, {2, 6}, at::kLong));
  logits.sum().backward();
  // Only the positions in use get a gradient.
  EXPECT_GT(model->encoder_positions.grad().narrow(0, 0, 20).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(model->encoder_positions.grad().narrow(0, 20, config.max_source_length - 20).abs().sum().item<double>(), 0.0);
  EXPECT_GT(model->decoder_positions.grad().narrow(0, 0, 6).abs().sum().item<double>(), 0.0);
}

TEST(Seq2SeqImportOptions, UnscaledEmbeddingsEqualScaledOnesOfASmallerTable) {
  // scale_embeddings false with table E computes what scale_embeddings true computes with
  // E / sqrt(d) as input embeddings (and the output projection kept: unshared embeddings).
  torch::NoGradGuard no_grad;
  auto config = preset("tiny-vanilla");
  config.shared_embeddings = false;
  auto scaled = make_model(config);
  config.scale_embeddings = false;
  auto unscaled = make_model(config);
  copy_weights(scaled, unscaled);
  const double root = std::sqrt(static_cast<double>(config.d_model));
  unscaled->encoder_embed->weight.mul_(root);
  unscaled->decoder_embed->weight.mul_(root);
  at::manual_seed(4);
  const auto mask = lengths_mask({30, 12}, 30);
  const auto src = random_ids(mask);
  const auto tgt = at::randint(3, 64, {2, 7}, at::kLong);
  EXPECT_LT(max_diff(unscaled->forward(src, mask, tgt), scaled->forward(src, mask, tgt)), 1e-4);
  unscaled->encoder_embed->weight.div_(root);  // and the factor is really gone
  EXPECT_GT(max_diff(unscaled->forward(src, mask, tgt), scaled->forward(src, mask, tgt)), 1e-2);
}

TEST(Seq2SeqImportOptions, TheLogitsBiasIsAddedToEveryLogitAndSaved) {
  torch::NoGradGuard no_grad;
  auto config = preset("tiny-deep-pyramidion");
  auto plain = make_model(config);
  config.logits_bias = true;
  auto biased = make_model(config);
  copy_weights(plain, biased);
  ASSERT_TRUE(biased->logits_bias.defined());
  EXPECT_EQ(biased->logits_bias.abs().sum().item<double>(), 0.0);  // zero at first
  EXPECT_FALSE(biased->logits_bias.requires_grad());                // a buffer
  biased->logits_bias.copy_(at::randn({config.vocab_size}));
  at::manual_seed(6);
  const auto mask = lengths_mask({44, 20}, 44);
  const auto src = random_ids(mask);
  const auto tgt = at::randint(3, 64, {2, 5}, at::kLong);
  const auto difference = biased->forward(src, mask, tgt) - plain->forward(src, mask, tgt);  // (b, t, v)
  EXPECT_LT(max_diff(difference, biased->logits_bias.expand_as(difference)), 1e-5);
  auto state = biased->start_decoding(biased->encode(src, mask));
  auto plain_state = plain->start_decoding(plain->encode(src, mask));
  const auto step = biased->decode_step(tgt.narrow(1, 0, 1), state) - plain->decode_step(tgt.narrow(1, 0, 1), plain_state);
  EXPECT_LT(max_diff(step, biased->logits_bias.expand_as(step)), 1e-5);
  const auto dir = scratch_dir("logits_bias");
  biased->save(dir.string());
  EXPECT_TRUE(at::equal(Seq2Seq::load(dir.string())->logits_bias, biased->logits_bias));
  pyramidion::detail::remove_tree(dir.string());
}

TEST(Seq2SeqImportOptions, WithoutAttentionBiasTheProjectionsHaveNone) {
  auto config = preset("tiny-pooler");
  config.attention_bias = false;
  auto model = make_model(config);
  int64_t attention = 0;
  for (const auto& p : model->named_parameters()) {
    const auto& name = p.key();
    if (name.find("attn.") == std::string::npos) continue;
    ++attention;
    EXPECT_EQ(name.find(".bias"), std::string::npos) << name;
  }
  EXPECT_EQ(attention, (2 + 2 * 2) * 4);  // 2 encoder + 2 decoder layers' projections: weights only
}

TEST(Seq2SeqFromPretrained, KeepsEveryWeightAndScorerByTheLayerItFollows) {
  auto config = preset("tiny-deep-pyramidion");  // 2 encoder layers, pooling after both
  config.positions = pyramidion::Positions::learned;
  auto saved = make_model(config);
  const auto dir = scratch_dir("pretrained");
  saved->save(dir.string());
  auto changed = config;
  changed.pooled_lengths = {0, 16};   // the pooler after layer 1 stays, the one after layer 0 goes
  changed.max_source_length = 150;    // learned positions: the 64-row table repeated
  changed.max_target_length = 20;     // cut
  changed.dropout = 0.3;
  changed.block_size = 8;
  auto model = Seq2Seq::from_pretrained(dir.string(), changed);
  EXPECT_TRUE(model->config() == changed);
  const auto before = saved->named_parameters();
  for (const auto& p : model->named_parameters()) {
    const auto& name = p.key();
    if (name == "encoder_poolers.0.scorer.weight" || name == "encoder_poolers.0.scorer.bias") {
      EXPECT_TRUE(at::equal(p.value(), before["encoder_poolers.1." + name.substr(18)])) << name;
    } else if (name == "encoder_positions") {
      EXPECT_TRUE(at::equal(p.value().narrow(0, 0, 64), before[name]));
      EXPECT_TRUE(at::equal(p.value().narrow(0, 64, 64), before[name]));
      EXPECT_TRUE(at::equal(p.value().narrow(0, 128, 22), before[name].narrow(0, 0, 22)));
    } else if (name == "decoder_positions") {
      EXPECT_TRUE(at::equal(p.value(), before[name].narrow(0, 0, 20)));
    } else {
      EXPECT_TRUE(at::equal(p.value(), before[name])) << name;
    }
  }
  // A new pooling layer (after layer 0, where none was) starts as a new model's.
  changed.pooled_lengths = {32, 16};
  EXPECT_EQ(Seq2Seq::from_pretrained(dir.string(), changed)->encoder_poolers->size(), 2u);
  auto other = config;
  other.heads = 4;
  EXPECT_NE(error_of<std::invalid_argument>([&] { Seq2Seq::from_pretrained(dir.string(), other); })
                .find("ModelConfig.heads differs from " + (dir / "config.json").string()),
            std::string::npos);
  other = config;
  other.positions = pyramidion::Positions::sinusoidal;
  EXPECT_NE(error_of<std::invalid_argument>([&] { Seq2Seq::from_pretrained(dir.string(), other); })
                .find("ModelConfig.positions differs"),
            std::string::npos);
  pyramidion::detail::remove_tree(dir.string());
}

TEST(Seq2SeqCheckpoint, SaveLoadRoundTripIsExact) {
  torch::NoGradGuard no_grad;
  auto model = make_model(preset("tiny-deep-pyramidion"));
  at::manual_seed(6);
  const auto mask = lengths_mask({50, 33}, 50);
  const auto src = random_ids(mask);
  const auto tgt = at::randint(3, 64, {2, 8}, at::kLong);
  const auto logits = model->forward(src, mask, tgt);

  const auto dir = scratch_dir("roundtrip");
  model->save(dir.string() + "/");  // a trailing slash names the same directory
  EXPECT_TRUE(fs::is_regular_file(dir / "config.json"));
  EXPECT_TRUE(fs::is_regular_file(dir / "weights.pt"));
  auto loaded = Seq2Seq::load(dir.string());
  loaded->eval();
  EXPECT_EQ(loaded->config(), model->config());
  EXPECT_TRUE(at::equal(loaded->forward(src, mask, tgt), logits));

  // Saving over an existing checkpoint replaces it, and leaves no temporary directory behind.
  auto other = make_model(preset("tiny-deep-pyramidion"), 9);
  other->save(dir.string());
  auto reloaded = Seq2Seq::load(dir.string());
  reloaded->eval();
  EXPECT_TRUE(at::equal(reloaded->forward(src, mask, tgt), other->forward(src, mask, tgt)));
  for (const auto& entry : fs::directory_iterator(dir.parent_path()))
    EXPECT_EQ(entry.path().filename().string().find("." + dir.filename().string() + "."), std::string::npos)
        << "left behind: " << entry.path();
  pyramidion::detail::remove_tree(fs::path(dir).string());
}

// Finite floats written over weights.pt still unpickle (LibTorch checks no CRC): checksums.json
// refuses them by name, as it refuses an edited config.json. (They used to load silently.)
TEST(Seq2SeqCheckpoint, BitRotInAnyFileIsRefusedByName) {
  auto model = make_model(preset("tiny-vanilla"));
  const auto dir = scratch_dir("bitrot");
  model->save(dir.string());
  ASSERT_TRUE(fs::exists(dir / "checksums.json"));
  {
    std::fstream f(dir / "weights.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(dir / "weights.pt") / 2));
    const std::vector<float> floats(256, 0.5f);
    f.write(reinterpret_cast<const char*>(floats.data()), 1024);
  }
  auto message = error_of<std::runtime_error>([&] { Seq2Seq::load(dir.string()); });
  EXPECT_NE(message.find("'" + (dir / "weights.pt").string() + "' does not match checksums.json"), std::string::npos)
      << message;
  fs::remove(dir / "checksums.json");
  EXPECT_NO_THROW(Seq2Seq::load(dir.string())) << "without the list it loads, unchecked (what it used to do)";
  model->save(dir.string());
  auto config = preset("tiny-vanilla");
  config.dropout = 0.5;
  config.to_json_file((dir / "config.json").string());
  message = error_of<std::runtime_error>([&] { Seq2Seq::load(dir.string()); });
  EXPECT_NE(message.find("config.json' does not match checksums.json"), std::string::npos) << message;
  pyramidion::detail::remove_tree(fs::path(dir).string());
}

TEST(Seq2SeqCheckpoint, WeightsThatDoNotMatchTheConfigAreRejected) {
  auto model = make_model(preset("tiny-vanilla"));
  const auto dir = scratch_dir("mismatch");
  model->save(dir.string());
  // The configs below are edited by hand, as it were: without the checksums that would refuse them.
  fs::remove(dir / "checksums.json");

  // A config with another FFN size: the first mismatching tensor is named, with both shapes.
  auto wider = preset("tiny-vanilla");
  wider.ffn_size = 48;
  wider.to_json_file((dir / "config.json").string());
  const auto message = error_of([&] { Seq2Seq::load(dir.string()); });
  EXPECT_NE(message.find("'encoder_layers.0.fc1.weight'"), std::string::npos) << message;
  EXPECT_NE(message.find("[64, 32]"), std::string::npos) << message;
  EXPECT_NE(message.find("[48, 32]"), std::string::npos) << message;
  EXPECT_THROW(Seq2Seq::load(dir.string()), std::runtime_error);

  // A config with a pooler the weights lack: the missing tensor is named.
  preset("tiny-pooler").to_json_file((dir / "config.json").string());
  const auto missing = error_of([&] { Seq2Seq::load(dir.string()); });
  EXPECT_NE(missing.find("'encoder_poolers.0.scorer.weight'"), std::string::npos) << missing;
  EXPECT_NE(missing.find("missing"), std::string::npos) << missing;

  // Weights with a tensor the config does not have (separate embeddings saved, shared loaded).
  auto unshared = preset("tiny-vanilla");
  unshared.shared_embeddings = false;
  make_model(unshared)->save(dir.string());
  fs::remove(dir / "checksums.json");
  preset("tiny-vanilla").to_json_file((dir / "config.json").string());
  const auto extra = error_of([&] { Seq2Seq::load(dir.string()); });
  EXPECT_NE(extra.find("'embed_tokens.weight'"), std::string::npos) << extra;

  // Missing files name the path.
  fs::remove(dir / "weights.pt");
  const auto no_weights = error_of([&] { Seq2Seq::load(dir.string()); });
  EXPECT_NE(no_weights.find((dir / "weights.pt").string()), std::string::npos) << no_weights;
  pyramidion::detail::remove_tree(fs::path(dir).string());
  const auto no_dir = error_of([&] { Seq2Seq::load(dir.string()); });
  EXPECT_NE(no_dir.find((dir / "config.json").string()), std::string::npos) << no_dir;
  EXPECT_THROW(Seq2Seq::load(dir.string()), std::invalid_argument);
}

// A preset's model (seed 6), two sources of 40 and 23 tokens, 9 target tokens, and the float
// model's teacher-forced logits: what the int8 and prepacked models are compared with.
struct TeacherForced {
  pyramidion::Seq2Seq model;
  at::Tensor mask, src, tgt;
  at::Tensor exact;  // (b, t, v)
};
TeacherForced teacher_forced(const std::string& name) {
  auto model = make_model(preset(name), 6);
  at::manual_seed(7);
  const auto mask = lengths_mask({40, 23}, 40);
  const auto src = random_ids(mask);
  const auto tgt = at::randint(3, 64, {2, 9}, at::kLong);
  const auto exact = model->forward(src, mask, tgt);  // (b, t, v)
  return {model, mask, src, tgt, exact};
}

// The whole model in int8: logits near fp32's, generation runs, the float weights are untouched.
TEST(Seq2SeqInt8, LogitsNearFloatAndGenerationRuns) {
  torch::NoGradGuard no_grad;
  for (const std::string name : {"tiny-deep-pyramidion", "tiny-vanilla"}) {
    auto [model, mask, src, tgt, exact] = teacher_forced(name);
    const auto before = model->parameters().front().clone();
    model->quantize_int8();
    EXPECT_TRUE(model->quantized());
    const auto q = model->forward(src, mask, tgt);
    const double diff = (q - exact).abs().max().item<double>(), scale = exact.abs().max().item<double>();
    EXPECT_LT(diff, 0.1 * scale) << name;
    EXPECT_GT(diff, 0.0) << name << ": the int8 kernels ran";
    auto state = model->start_decoding(model->encode(src, mask));
    for (int64_t i = 0; i < 9; ++i) {
      const auto step = model->decode_step(tgt.narrow(1, i, 1), state);  // (b, v), int8 fused q/k/v
      EXPECT_LT((step - exact.select(1, i)).abs().max().item<double>(), 0.1 * scale) << name << " position " << i;
    }
    const auto g = pyramidion::generate(model, src, mask, pyramidion::GenerateOptions().beam_size(4).max_length(6));
    EXPECT_EQ(g.tokens.size(0), 2);
    EXPECT_TRUE(model->parameters().front().equal(before));
    model->unpack();
    EXPECT_TRUE(model->forward(src, mask, tgt).equal(exact));
  }
  auto bf16 = make_model(preset("tiny-vanilla"));
  bf16->to(at::kBFloat16);
  EXPECT_THROW(bf16->quantize_int8(), std::invalid_argument);
}

// The whole model prepacked: the same logits as the plain float32 model up to the order of the
// sums, the same generated tokens, and after a conversion it runs the converted weights.
TEST(Seq2SeqPrepacked, SameLogitsAndTokensAsPlainFloat) {
  torch::NoGradGuard no_grad;
  for (const std::string name : {"tiny-deep-pyramidion", "tiny-vanilla"}) {
    auto [model, mask, src, tgt, exact] = teacher_forced(name);
    const auto options = pyramidion::GenerateOptions().beam_size(4).max_length(8);
    const auto plain_tokens = pyramidion::generate(model, src, mask, options).tokens;
    model->prepack_fp32();
    EXPECT_TRUE(model->prepacked());
    EXPECT_FALSE(model->quantized());
    // The layers of decoder steps only: the encoder and the cross-attention's keys and values read
    // whole documents.
    const auto* first_encoder = model->encoder_layers->ptr<pyramidion::EncoderLayerImpl>(0).get();
    const auto* first_decoder = model->decoder_layers->ptr<pyramidion::DecoderLayerImpl>(0).get();
    EXPECT_FALSE(first_encoder->fc1->prepacked());
    EXPECT_FALSE(first_decoder->cross_attn->k_proj->prepacked());
    EXPECT_TRUE(first_decoder->cross_attn->q_proj->prepacked());
    EXPECT_TRUE(first_decoder->fc2->prepacked());
    const double scale = exact.abs().max().item<double>();
    EXPECT_LT((model->forward(src, mask, tgt) - exact).abs().max().item<double>(), 1e-5 * scale) << name;
    auto state = model->start_decoding(model->encode(src, mask));
    for (int64_t i = 0; i < 9; ++i) {
      const auto step = model->decode_step(tgt.narrow(1, i, 1), state);  // (b, v), prepacked fused q/k/v
      EXPECT_LT((step - exact.select(1, i)).abs().max().item<double>(), 1e-5 * scale) << name << " position " << i;
    }
    EXPECT_TRUE(pyramidion::generate(model, src, mask, options).tokens.equal(plain_tokens)) << name;
    model->to(at::kDouble);  // the packed copies are now stale: the double weights are used
    const auto as_double = model->forward(src, mask, tgt);
    EXPECT_EQ(as_double.scalar_type(), at::kDouble);
    EXPECT_LT((as_double.to(at::kFloat) - exact).abs().max().item<double>(), 1e-5 * scale) << name;
    model->unpack();
    EXPECT_FALSE(model->prepacked());
  }
  auto bf16 = make_model(preset("tiny-vanilla"));
  bf16->to(at::kBFloat16);
  EXPECT_THROW(bf16->prepack_fp32(), std::invalid_argument);
}

TEST(Seq2SeqModel, InvalidInputsRaise) {
  torch::NoGradGuard no_grad;
  auto model = make_model(preset("tiny-vanilla"));  // max_source_length 64, max_target_length 32
  const auto tgt = at::full({1, 3}, 5, at::kLong);
  const auto ok = at::full({1, 8}, 5, at::kLong);
  const auto ok_mask = at::ones({1, 8}, at::kBool);
  EXPECT_NO_THROW(model->forward(ok, ok_mask, tgt));

  const auto too_long = error_of([&] { model->forward(at::full({1, 65}, 5, at::kLong), at::ones({1, 65}, at::kBool), tgt); });
  EXPECT_NE(too_long.find("65"), std::string::npos) << too_long;
  EXPECT_NE(too_long.find("max_source_length = 64"), std::string::npos) << too_long;
  const auto long_target = error_of([&] { model->forward(ok, ok_mask, at::full({1, 33}, 5, at::kLong)); });
  EXPECT_NE(long_target.find("max_target_length = 32"), std::string::npos) << long_target;

  const auto bad_id = error_of([&] { model->forward(ok.clone().index_put_({0, 3}, 64), ok_mask, tgt); });
  EXPECT_NE(bad_id.find("64"), std::string::npos) << bad_id;
  EXPECT_NE(bad_id.find("vocab_size"), std::string::npos) << bad_id;
  EXPECT_THROW(model->forward(ok, ok_mask, tgt.clone().index_put_({0, 0}, -1)), std::invalid_argument);
  EXPECT_THROW(model->forward(ok.to(at::kInt), ok_mask, tgt), std::invalid_argument);
  EXPECT_THROW(model->forward(ok, at::ones({1, 7}, at::kBool), tgt), std::invalid_argument);
  EXPECT_THROW(model->forward(ok, at::ones({1, 8}, at::kLong), tgt), std::invalid_argument);
  EXPECT_THROW(model->forward(ok, ok_mask, at::full({2, 3}, 5, at::kLong)), std::invalid_argument);

  auto state = model->start_decoding(model->encode(ok, ok_mask));
  EXPECT_THROW(model->decode_step(at::full({1, 2}, 5, at::kLong), state), std::invalid_argument);
  EXPECT_THROW(model->decode_step(at::full({2, 1}, 5, at::kLong), state), std::invalid_argument);

  auto bad = preset("tiny-vanilla");
  bad.heads = 3;
  EXPECT_THROW(Seq2Seq model_with_bad_config(bad), std::invalid_argument);
}

}  // namespace

namespace {

// A tiny DeepPyramidion learns one batch by heart: the training loss falls from ~ln(64) = 4.2 to
// below 0.05 in 200 Adam steps, and greedy decoding with the cache then reproduces the targets.
TEST(Seq2SeqTraining, TinyModelOverfitsOneBatch) {
  auto config = preset("tiny-deep-pyramidion");
  at::manual_seed(7);
  Seq2Seq model(config);
  model->train();
  const auto mask = lengths_mask({40, 30}, 40);
  const auto src = random_ids(mask);                          // (b, n)
  const auto body = at::randint(3, 64, {2, 10}, at::kLong);  // (b, t - 1)
  const auto bos = at::full({2, 1}, config.bos_id, at::kLong);
  const auto eos = at::full({2, 1}, config.eos_id, at::kLong);
  const auto tgt_in = at::cat({bos, body}, 1);   // (b, t)
  const auto tgt_out = at::cat({body, eos}, 1);  // (b, t)
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(3e-3));
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 200; ++step) {
    const auto logits = model->forward(src, mask, tgt_in);  // (b, t, v)
    const auto loss = at::cross_entropy_loss(logits.reshape({-1, config.vocab_size}), tgt_out.reshape({-1}));
    adam.zero_grad();
    loss.backward();
    adam.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_GT(first, 3.0);
  EXPECT_LT(last, 0.05) << "loss " << first << " -> " << last;

  torch::NoGradGuard no_grad;
  model->eval();
  auto state = model->start_decoding(model->encode(src, mask));
  auto token = bos;  // (b, 1)
  std::vector<at::Tensor> generated;
  for (int64_t i = 0; i < tgt_out.size(1); ++i) {
    token = model->decode_step(token, state).argmax(-1, /*keepdim=*/true);  // (b, v) -> (b, 1)
    generated.push_back(token);
  }
  EXPECT_TRUE(at::equal(at::cat(generated, 1), tgt_out));
}

}  // namespace
