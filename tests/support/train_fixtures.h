// Test-only helpers shared by the training and summarization tests: scratch directories, slices of
// the bundled ACLSum data, and a small, fast training config (processes: test_support.h).
#pragma once

#include <pyramidion/corpus.h>
#include <pyramidion/model.h>
#include <pyramidion/train.h>

#include "support/test_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include "util/output_file.h"

namespace pyramidion_test {

namespace fs = std::filesystem;

inline const std::string kSource = PYRAMIDION_SOURCE_DIR;

inline fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("pyramidion_train_" + name + "_" + std::to_string(::getpid()));
  pyramidion::detail::remove_tree(fs::path(dir).string());
  fs::create_directories(dir);
  return dir;
}

// The first `n` records of the converted aclsum split (scripts/get_data.sh), as a file in `dir`.
inline std::string data_slice(const fs::path& dir, const std::string& split, int n) {
  const fs::path full = fs::path(kSource) / "data" / "aclsum" / (split + ".jsonl");
  std::ifstream in(full);
  if (!in) ADD_FAILURE() << full << " is missing: run scripts/get_data.sh (scripts/test.sh does)";
  const fs::path out = dir / (split + ".jsonl");
  std::ofstream o(out);
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i) o << line << '\n';
  return out.string();
}

// A small, fast run: the tiny DeepPyramidion (sources cut to 64 tokens, summaries to 31), a
// 300-token vocabulary, 6 examples per micro-batch.
inline pyramidion::TrainConfig tiny_config(const fs::path& dir, int docs = 12) {
  pyramidion::TrainConfig c;
  c.model = kSource + "/configs/tiny-deep-pyramidion.json";
  c.train = data_slice(dir, "train", docs);
  c.valid = data_slice(dir, "valid", 4);
  c.out = (dir / "out").string();
  c.vocab_size = 300;
  c.max_tokens = 6 * 96;
  c.max_steps = 8;
  c.warmup_steps = 2;
  c.lr = 3e-3;
  c.log_every = 2;
  c.validate_every = 4;
  c.checkpoint_every = 4;
  c.threads = 1;
  return c;
}

// A 300-piece tokenizer trained on the first 12 training papers (made once per process).
inline const pyramidion::Tokenizer& small_tokenizer() {
  static const pyramidion::Tokenizer t = [] {
    const auto dir = fresh_dir("small_tokenizer");
    return pyramidion::train_tokenizer_on_file(data_slice(dir, "train", 12),
                                               pyramidion::TokenizerTrainOptions().vocab_size(300));
  }();
  return t;
}

// `config` trained whole into dir/whole, and again into dir/parts, stopped after update `stop_at`
// (TrainRunOptions::stop; 0 = before the first update) and then resumed: the three results, for exact-resume tests.
struct StoppedAndResumed {
  pyramidion::TrainResult whole, first, second;
};
inline StoppedAndResumed train_stopped_and_resumed(pyramidion::TrainConfig config, const fs::path& dir,
                                                   int64_t stop_at = 3) {
  StoppedAndResumed r;
  config.out = (dir / "whole").string();
  r.whole = pyramidion::train(config);
  config.out = (dir / "parts").string();
  std::atomic<bool> stop{stop_at == 0};  // 0: asked to stop before the first update
  r.first = pyramidion::train(
      config, pyramidion::TrainRunOptions().stop(&stop).on_update([&](int64_t step) { stop = step == stop_at; }));
  r.second = pyramidion::train(config, pyramidion::TrainRunOptions().resume(pyramidion::Resume::required));
  return r;
}

// Every parameter of two checkpoints: max |a - b|.
inline double weight_diff(const std::string& a, const std::string& b) {
  auto ma = pyramidion::Seq2Seq::load(a), mb = pyramidion::Seq2Seq::load(b);
  double diff = 0;
  const auto pa = ma->named_parameters(), pb = mb->named_parameters();
  EXPECT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) diff = std::max(diff, (p.value() - pb[p.key()]).abs().max().item<double>());
  return diff;
}

}  // namespace pyramidion_test
