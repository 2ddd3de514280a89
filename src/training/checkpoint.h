// Private: the training checkpoint, a model directory (models/checkpoint.h) with what a resumed
// run needs besides the weights:
//   out/checkpoints/step-000200/   config.json weights.pt           the model (Seq2Seq::load-able)
//                                  tokenizer.model                  the tokenizer
//                                  optimizer.pt                     AdamW's state (torch::save)
//                                  trainer_state.json               step, data position, the config
//                                  generation.json                  pyramidion-summarize's defaults
//   out/latest -> checkpoints/step-000200
// Each checkpoint is assembled in one temporary directory (util/output_file.h) and renamed when
// complete; leftovers of a killed run (any temporary name) are removed before the next one.
#pragma once

#include <pyramidion/model.h>
#include <pyramidion/tokenizer.h>
#include <pyramidion/train.h>

#include <nlohmann/json.hpp>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace pyramidion {
namespace detail {

/// Where the stream of batches is: every update consumes world * update_freq batches, in order,
/// across epoch boundaries.
struct DataCursor {
  int64_t epoch = 0;
  int64_t index = 0;  // next batch of the epoch
};

/// trainer_state.json.
struct TrainerState {
  int64_t step = 0;
  DataCursor cursor;
  int64_t world_size = 1;
  int64_t update_freq = 1;
  nlohmann::json train_config;  // TrainConfig::to_json_string() of the run that wrote it
  nlohmann::json loss_scaler;   // LossScaler::state() of a float16 run; null otherwise
};

/// The complete checkpoints in out/checkpoints (those with a trainer_state.json), oldest first.
std::vector<std::pair<int64_t, std::filesystem::path>> list_checkpoints(const std::filesystem::path& out);

/// Writes out/checkpoints/step-N (see the top of this file), points out/latest at it and keeps the
/// newest `config.keep_checkpoints`. Returns the checkpoint's path. Throws std::runtime_error
/// naming the path and the OS reason when writing fails; the previous checkpoints are then intact.
std::string write_checkpoint(const std::filesystem::path& out, const Seq2SeqImpl& model,
                             torch::optim::Optimizer& optimizer, const Tokenizer& tokenizer, const TrainConfig& config,
                             const TrainerState& state);

/// Reads dir/trainer_state.json and dir/optimizer.pt into `optimizer`.
TrainerState read_checkpoint_state(const std::filesystem::path& dir, torch::optim::Optimizer& optimizer);

}  // namespace detail
}  // namespace pyramidion
