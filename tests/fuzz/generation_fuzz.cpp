// Fuzz target: a checkpoint's generation.json, read by SummarizeOptions::from_checkpoint
// (include/pyramidion/summarizer.h) into GenerateOptions (generate_options.h).
//
// Properties checked: settings that load write a generation.json that reloads to the same
// settings; and settings that check() accepts for a model run generate() on it (a random model of
// configs/tiny-deep-pyramidion.json, two documents) within the documented bounds: output lengths in
// [min_length, max_length], no pad token, and no repeated n-gram of no_repeat_ngram_size.
#include <pyramidion/config.h>
#include <pyramidion/generate.h>
#include <pyramidion/model.h>
#include <pyramidion/summarizer.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "fuzz_support.h"

namespace {

using pyramidion::SummarizeOptions;
using pyramidion_fuzz::fail;

std::string checkpoint_dir;

pyramidion::Seq2Seq& tiny_model() {
  static pyramidion::Seq2Seq model = [] {
    at::manual_seed(0);
    pyramidion::Seq2Seq m(pyramidion::ModelConfig::from_json_file(std::string(PYRAMIDION_SOURCE_DIR) +
                                                                  "/configs/tiny-deep-pyramidion.json"));
    m->eval();
    return m;
  }();
  return model;
}

SummarizeOptions load(const std::string& text) {
  pyramidion_fuzz::write_file(checkpoint_dir + "/generation.json", text);
  return SummarizeOptions::from_checkpoint(checkpoint_dir);
}

void run_generate(const pyramidion::GenerateOptions& o) {
  auto& model = tiny_model();
  const auto& c = model->config();
  torch::NoGradGuard no_grad;
  at::manual_seed(1);
  const auto src = at::randint(3, c.vocab_size, {2, 20}, at::kLong);
  auto mask = at::ones({2, 20}, at::kBool);
  mask.index_put_({1, at::indexing::Slice(12)}, false);
  const auto g = pyramidion::generate(model, src, mask, o);
  const int64_t max_length = o.max_length() > 0 ? o.max_length() : c.max_target_length;
  if (g.tokens.dim() != 2 || g.tokens.size(0) != 2 || g.tokens.size(1) > max_length)
    fail("generate: tokens of a wrong shape");
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t length = g.lengths[b].item<int64_t>();
    if (length < o.min_length() || length > max_length || length > g.tokens.size(1))
      fail("generate: output length " + std::to_string(length) + " outside [min_length, max_length]");
    std::vector<int64_t> ids(length);
    for (int64_t i = 0; i < length; ++i) ids[i] = g.tokens[b][i].item<int64_t>();
    for (const int64_t id : ids)
      if (id == c.pad_id || id < 0 || id >= c.vocab_size) fail("generate: pad or an id outside the vocabulary");
    const int64_t n = o.no_repeat_ngram_size();
    if (n > 0) {
      std::set<std::vector<int64_t>> seen;
      for (int64_t i = 0; i + n <= length; ++i)
        if (!seen.insert(std::vector<int64_t>(ids.begin() + i, ids.begin() + i + n)).second)
          fail("generate: an n-gram of no_repeat_ngram_size = " + std::to_string(n) + " repeats");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  checkpoint_dir = pyramidion_fuzz::scratch_dir() + "/checkpoint";
  std::filesystem::create_directories(checkpoint_dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SummarizeOptions o;
  if (!pyramidion_fuzz::accepts([&] { o = load(pyramidion_fuzz::text_of(data, size)); })) return 0;
  const std::string json = o.to_generation_json();
  SummarizeOptions again;
  if (!pyramidion_fuzz::accepts([&] { again = load(json); }))
    fail("loaded settings do not reload from their own generation.json:\n" + json);
  if (again.to_generation_json() != json) fail("loaded settings reload different from their generation.json:\n" + json);

  if (!pyramidion_fuzz::accepts([&] { o.check(tiny_model()->config()); })) return 0;
  if (o.search().beam_size() > 8) return 0;  // (bounded time per input)
  for (const bool early_stopping : {true, false}) {
    auto search = o.search();
    search.early_stopping(early_stopping || search.beam_size() == 1);
    try {
      run_generate(search);
    } catch (const std::exception& e) {
      fail(std::string("generate() refused settings that check() accepted: ") + e.what() + "\n" + json);
    }
  }
  return 0;
}
