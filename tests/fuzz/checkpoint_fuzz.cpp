// Fuzz target: the weights of a model directory, read by Seq2Seq::load (include/pyramidion/model.h,
// src/models/checkpoint.cpp).
//
// The input is written as <scratch>/model/weights.pt next to a valid config.json of a very small
// model (written once); no checksums.json is written, so that the loader parses the bytes instead
// of rejecting them by their checksum. A weights file that loads gives a model whose forward() is
// run once on a valid input.
//
// The seed (corpus/checkpoint/) is this model's own weights.pt, written by
//   PYRAMIDION_FUZZ_WRITE_SEED=tests/fuzz/corpus/checkpoint/weights.pt build-sanitize/tests/fuzz/checkpoint_fuzz
// (to rerun when the config below or the weights format changes).
#include <pyramidion/config.h>
#include <pyramidion/model.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/utils.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "fuzz_support.h"

namespace {

namespace fs = std::filesystem;
using pyramidion_fuzz::fail;

std::string model_dir;

pyramidion::ModelConfig small_config() {
  pyramidion::ModelConfig c;
  c.vocab_size = 16;
  c.d_model = 8;
  c.heads = 2;
  c.ffn_size = 16;
  c.encoder_layers = 1;
  c.decoder_layers = 1;
  c.dropout = 0.0;
  c.max_source_length = 16;
  c.max_target_length = 8;
  c.block_size = 4;
  c.pooled_lengths = {4};
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  if (const char* seed = std::getenv("PYRAMIDION_FUZZ_WRITE_SEED")) {
    at::manual_seed(0);
    const std::string dir = pyramidion_fuzz::scratch_dir() + "/seed";
    pyramidion::Seq2Seq(small_config())->save(dir);
    fs::copy_file(fs::path(dir) / "weights.pt", seed, fs::copy_options::overwrite_existing);
    std::printf("wrote %s\n", seed);
    std::exit(0);
  }
  model_dir = pyramidion_fuzz::scratch_dir() + "/model";
  fs::create_directories(model_dir);
  small_config().to_json_file(model_dir + "/config.json");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (fs::exists(model_dir + "/checksums.json")) fail("a checksums.json appeared in the fuzz model directory");
  pyramidion_fuzz::write_file(model_dir + "/weights.pt", std::string_view(reinterpret_cast<const char*>(data), size));
  pyramidion::Seq2Seq model{nullptr};
  if (!pyramidion_fuzz::accepts([&] { model = pyramidion::Seq2Seq::load(model_dir); })) return 0;
  // The loaded model runs (its weights may hold NaN or inf, which forward() may refuse: an
  // exception, not a finding).
  pyramidion_fuzz::accepts([&] {
    model->eval();
    torch::NoGradGuard no_grad;
    const auto src = at::arange(3, 13, at::kLong).view({1, 10});  // (1, 10)
    const auto tgt = at::arange(1, 5, at::kLong).view({1, 4});    // (1, 4)
    (void)model->forward(src, at::ones({1, 10}, at::kBool), tgt);
  });
  return 0;
}
