// Fuzz target: TrainConfig's JSON (include/pyramidion/train.h), a training run's config file.
//
// The text is read as a file in <scratch>/configs/train/ (relative paths resolve against it); the
// scratch directory holds the model presets of configs/ and two one-record data files, so that a
// config naming them ("../tiny-deep-pyramidion.json", "../../data/aclsum/train.jsonl") validates
// and builds its model config (preset + model_overrides). Properties checked: a config that loads
// writes JSON that reloads to the same config; a config that validates builds a valid model config
// and a learning-rate schedule within [0, lr] at every step.
#include <pyramidion/config.h>
#include <pyramidion/train.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_support.h"

namespace {

namespace fs = std::filesystem;
using pyramidion::TrainConfig;
using pyramidion_fuzz::fail;

std::string base_dir;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const fs::path root = pyramidion_fuzz::scratch_dir();
  fs::create_directories(root / "configs" / "train");
  fs::create_directories(root / "data" / "aclsum");
  for (const auto& entry : fs::directory_iterator(fs::path(PYRAMIDION_SOURCE_DIR) / "configs"))
    if (entry.path().extension() == ".json") fs::copy_file(entry.path(), root / "configs" / entry.path().filename());
  const std::string record =
      R"({"article_id": "a", "article_text": ["One sentence."], "abstract_text": ["<S> A summary . </S>"]})"
      "\n";
  for (const char* split : {"train", "valid", "test"})
    pyramidion_fuzz::write_file((root / "data" / "aclsum" / (std::string(split) + ".jsonl")).string(), record);
  base_dir = (root / "configs" / "train").string();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  TrainConfig c;
  if (!pyramidion_fuzz::accepts([&] { c = TrainConfig::from_json_string(pyramidion_fuzz::text_of(data, size), base_dir); }))
    return 0;
  const std::string dump = c.to_json_string();
  TrainConfig again;
  if (!pyramidion_fuzz::accepts([&] { again = TrainConfig::from_json_string(dump); }))
    fail("a loaded TrainConfig does not reload from its own dump:\n" + dump);
  if (again.to_json_string() != dump) fail("a loaded TrainConfig reloads different from its own dump:\n" + dump);
  pyramidion_fuzz::accepts([&] { (void)TrainConfig::help_text(); });

  if (!pyramidion_fuzz::accepts([&] { c.validate(); })) return 0;
  if (!pyramidion_fuzz::accepts([&] { c.model_config().validate(); }))
    fail("TrainConfig::validate() passed but model_config() fails:\n" + dump);
  const auto next = [](int64_t v) { return v < INT64_MAX ? v + 1 : v; };  // (no overflow in the harness)
  for (const int64_t step : {int64_t{0}, int64_t{1}, c.warmup_steps, next(c.warmup_steps), c.max_steps / 2, c.max_steps,
                             next(c.max_steps)}) {
    const double lr = pyramidion::learning_rate(c, step);
    if (!(std::isfinite(lr) && lr >= 0 && lr <= c.lr * (1 + 1e-12)))
      fail("learning_rate(step " + std::to_string(step) + ") = " + std::to_string(lr) + " outside [0, lr] for\n" + dump);
  }
  return 0;
}
