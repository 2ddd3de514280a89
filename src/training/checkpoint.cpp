// Training checkpoints (training/checkpoint.h).
#include "training/checkpoint.h"

#include <pyramidion/summarizer.h>

#include <c10/util/Exception.h>
#include <torch/serialize.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "models/checkpoint.h"
#include "util/output_file.h"
#include "util/directory_checksums.h"
#include "util/json_fields.h"

namespace pyramidion {
namespace detail {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kWho = "train: checkpoint";

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%06lld", static_cast<long long>(step));
  return buf;
}

}  // namespace

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& out) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  const fs::path dir = out / "checkpoints";
  if (!fs::is_directory(dir, ec)) return found;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) != 0 || !entry.is_directory()) continue;
    try {
      size_t used = 0;
      const int64_t step = std::stoll(name.substr(5), &used);
      if (used == name.size() - 5 && fs::is_regular_file(entry.path() / "trainer_state.json"))
        found.emplace_back(step, entry.path());
    } catch (const std::exception&) {
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::string write_checkpoint(const fs::path& out, const Seq2SeqImpl& model, torch::optim::Optimizer& optimizer,
                             const Tokenizer& tokenizer, const TrainConfig& config, const TrainerState& state) {
  const fs::path dir = out / "checkpoints";
  fs::create_directories(dir);
  remove_temporaries(dir.string());  // leftovers of checkpoints that a crash interrupted
  const fs::path final_dir = dir / step_name(state.step);
  AtomicDirectory checkpoint(kWho, final_dir.string());  // replaces a rerun of the same step
  write_model_files(model, checkpoint);
  checkpoint.write("tokenizer.model", tokenizer.serialized());
  std::ostringstream optimizer_bytes;
  torch::save(optimizer, optimizer_bytes);
  checkpoint.write("optimizer.pt", optimizer_bytes.str());
  json trainer_state{{"step", state.step},
                           {"epoch", state.cursor.epoch},
                           {"batch_in_epoch", state.cursor.index},
                           {"world_size", state.world_size},
                           {"update_freq", state.update_freq},
                           {"train_config", state.train_config}};
  if (!state.loss_scaler.is_null()) trainer_state["loss_scaler"] = state.loss_scaler;
  checkpoint.write("trainer_state.json", trainer_state.dump(2) + "\n");
  // The generation settings pyramidion-summarize starts from (SummarizeOptions::from_checkpoint);
  // edit the file to change a checkpoint's defaults.
  SummarizeOptions generation;
  generation.search().max_length(model.config().max_target_length);
  checkpoint.write("generation.json", generation.to_generation_json());
  write_checksums(checkpoint);
  checkpoint.commit();
  replace_symlink(kWho, (out / "latest").string(), (fs::path("checkpoints") / step_name(state.step)).string());

  auto all = list_checkpoints(out);
  while (static_cast<int64_t>(all.size()) > config.keep_checkpoints) {
    // Hidden first (one rename), then deleted: a crash never leaves a half-deleted step-N.
    if (all.front().first != state.step) discard_directory(all.front().second.string());
    all.erase(all.begin());
  }
  return final_dir.string();
}

TrainerState read_checkpoint_state(const fs::path& dir, torch::optim::Optimizer& optimizer) {
  constexpr const char* who = "train: resume";
  const std::string optimizer_path = (dir / "optimizer.pt").string();
  const std::string optimizer_bytes = read_file(who, optimizer_path);
  verify_checksum(who, dir.string(), "optimizer.pt", optimizer_bytes);
  try {
    std::istringstream in(optimizer_bytes);
    torch::load(optimizer, in);
  } catch (const c10::Error& e) {
    throw std::runtime_error(std::string(who) + ": '" + optimizer_path + "' (" + std::to_string(optimizer_bytes.size()) +
                             " bytes) is not the optimizer state of this model: " + e.what_without_backtrace());
  }
  const std::string state_path = (dir / "trainer_state.json").string();
  const std::string text = read_file(who, state_path);
  verify_checksum(who, dir.string(), "trainer_state.json", text);
  TrainerState out;
  out.step = out.cursor.epoch = out.cursor.index = -1;  // required: -1 = absent
  try {
    const json state = json::parse(text);
    // Integers as every config reads them (an integer JSON number; 1e300 or 1.5 are refused, where
    // get<int64_t>() would cast them: undefined, or silently cut).
    const ObjectReader fields(state, "trainer_state.json");
    fields.read("step", out.step);
    fields.read("epoch", out.cursor.epoch);
    fields.read("batch_in_epoch", out.cursor.index);
    fields.read("world_size", out.world_size);
    fields.read("update_freq", out.update_freq);
    out.train_config = state.at("train_config");
    if (state.contains("loss_scaler")) out.loss_scaler = state.at("loss_scaler");
  } catch (const json::exception& e) {  // cut short, not an object, train_config missing
    throw std::runtime_error(std::string(who) + ": '" + state_path + "' is damaged: " + e.what());
  } catch (const std::invalid_argument& e) {  // a field of the wrong type
    throw std::runtime_error(std::string(who) + ": '" + state_path + "' is damaged: " + e.what());
  }
  if (out.step < 0 || out.cursor.epoch < 0 || out.cursor.index < 0 || out.world_size < 1 || out.update_freq < 1)
    throw std::runtime_error(std::string(who) + ": '" + state_path + "' is damaged: step " + std::to_string(out.step) +
                             ", epoch " + std::to_string(out.cursor.epoch) + ", batch_in_epoch " +
                             std::to_string(out.cursor.index) + ", world_size " + std::to_string(out.world_size) +
                             ", update_freq " + std::to_string(out.update_freq) + " are not all valid");
  return out;
}

}  // namespace detail
}  // namespace pyramidion
