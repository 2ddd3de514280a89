// Fuzz target: ModelConfig's JSON (include/pyramidion/config.h), a model directory's config.json.
//
// Properties checked: a text that loads is a valid config (validate() passes) and reloads equal
// from its own dump; and a small valid config builds a model whose forward pass runs on a valid
// input (what validate() accepts, the model must be able to run: a gap between the two is a bug).
#include <pyramidion/config.h>
#include <pyramidion/model.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "fuzz_support.h"

namespace {

using pyramidion::ModelConfig;
using pyramidion_fuzz::fail;

// Sizes for which building and running the model takes milliseconds (parameters, positions).
bool small(const ModelConfig& c) {
  const double layers = static_cast<double>(c.encoder_layers + c.decoder_layers);
  const double d = static_cast<double>(c.d_model);
  const double params = static_cast<double>(c.vocab_size) * d * (c.shared_embeddings ? 1 : 3) +
                        layers * (4 * d * d + 2 * d * static_cast<double>(c.ffn_size));
  return params <= 2e5 && c.encoder_layers <= 4 && c.decoder_layers <= 4 && c.heads <= 8 &&
         c.max_source_length <= 4096 && c.max_target_length <= 4096;
}

void run_model(const ModelConfig& c) {
  at::manual_seed(0);
  pyramidion::Seq2Seq model(c);
  model->eval();
  torch::NoGradGuard no_grad;
  // One document of two blocks and a bit (or the longest allowed), one shorter padded one.
  const int64_t n = std::min<int64_t>(c.max_source_length, std::max<int64_t>(2 * c.block_size + 3, 5));
  const int64_t t = std::min<int64_t>(c.max_target_length, 3);
  const auto src = at::randint(0, c.vocab_size, {2, n}, at::kLong);
  auto mask = at::ones({2, n}, at::kBool);
  mask.index_put_({1, at::indexing::Slice(n / 2 + 1)}, false);
  const auto tgt = at::randint(0, c.vocab_size, {2, t}, at::kLong);
  const auto logits = model->forward(src, mask, tgt);  // (2, t, v)
  if (logits.sizes() != at::IntArrayRef({2, t, c.vocab_size}))
    fail("forward: logits of shape " + std::to_string(logits.dim()) + "-d, not (2, t, vocab_size)");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ModelConfig c;
  if (!pyramidion_fuzz::accepts([&] { c = ModelConfig::from_json_string(pyramidion_fuzz::text_of(data, size)); }))
    return 0;
  if (!pyramidion_fuzz::accepts([&] { c.validate(); })) fail("from_json_string returned a config that does not validate");
  const std::string dump = c.to_json_string();
  ModelConfig again;
  if (!pyramidion_fuzz::accepts([&] { again = ModelConfig::from_json_string(dump); }))
    fail("a loaded config does not reload from its own dump:\n" + dump);
  if (again != c) fail("a loaded config reloads different from its own dump:\n" + dump);
  if (small(c)) {
    try {
      run_model(c);
    } catch (const std::exception& e) {
      fail(std::string("a valid config whose model does not run on a valid input: ") + e.what() + "\n" + dump);
    }
  }
  return 0;
}
