// model.h alone is enough to call Seq2Seq::generate (the API form model->generate(src, mask,
// GenerateOptions()...)): the header that declares the member makes its options type complete.
// This file includes nothing else of pyramidion on purpose.
#include <pyramidion/model.h>

#include <gtest/gtest.h>

namespace {

TEST(Seq2SeqGenerateMember, NeedsOnlyModelH) {
  pyramidion::ModelConfig config;
  config.vocab_size = 20;
  config.d_model = 8;
  config.heads = 2;
  config.ffn_size = 16;
  config.encoder_layers = config.decoder_layers = 1;
  config.max_source_length = 16;
  config.max_target_length = 6;
  pyramidion::Seq2Seq model(config);
  model->eval();
  const auto src = at::randint(3, 20, {2, 7}, at::kLong);                          // (b, n)
  const auto mask = at::arange(7).unsqueeze(0) < at::tensor({7, 4}).unsqueeze(1);  // (b, n)
  const auto g = model->generate(src, mask, pyramidion::GenerateOptions().beam_size(2).max_length(5));
  EXPECT_EQ(g.tokens.size(0), 2);
  EXPECT_LE(g.tokens.size(1), 5);
  EXPECT_EQ(g.lengths.sizes(), (at::IntArrayRef{2}));
}

}  // namespace
