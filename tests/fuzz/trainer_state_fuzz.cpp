// Fuzz target: a training checkpoint's trainer_state.json, read on resume by
// detail::read_checkpoint_state (src/training/checkpoint.cpp), then used as Trainer::resume() uses
// it: the saved config compared with the run's (train_config_table().changes) and the float16 loss
// scaler's state restored (LossScaler::load).
//
// The checkpoint directory also holds a valid optimizer.pt (AdamW over two parameters, one update
// taken), written once: only trainer_state.json comes from the input.
#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "training/checkpoint.h"
#include "training/loss_scaler.h"
#include "training/train_config_table.h"
#include "util/field_table.h"

namespace {

std::string checkpoint_dir;

std::vector<at::Tensor> parameters() {
  return {at::ones({3, 2}).requires_grad_(true), at::zeros({2}).requires_grad_(true)};
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  checkpoint_dir = pyramidion_fuzz::scratch_dir() + "/checkpoint";
  std::filesystem::create_directories(checkpoint_dir);
  auto params = parameters();
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(1e-3));
  (params[0].sum() + params[1].sum()).backward();
  optimizer.step();
  torch::save(optimizer, checkpoint_dir + "/optimizer.pt");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pyramidion_fuzz::write_file(checkpoint_dir + "/trainer_state.json", pyramidion_fuzz::text_of(data, size));
  auto params = parameters();
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(1e-3));
  pyramidion::detail::TrainerState state;
  if (!pyramidion_fuzz::accepts([&] { state = pyramidion::detail::read_checkpoint_state(checkpoint_dir, optimizer); }))
    return 0;
  const auto current = nlohmann::json::parse(pyramidion::TrainConfig().to_json_string());
  pyramidion_fuzz::accepts([&] {
    (void)pyramidion::detail::train_config_table().changes(state.train_config, current,
                                                           pyramidion::detail::kContinuation);
  });
  if (!state.loss_scaler.is_null()) {
    pyramidion::detail::LossScaler scaler(true);
    if (pyramidion_fuzz::accepts([&] { scaler.load(state.loss_scaler, checkpoint_dir + "/trainer_state.json"); })) {
      // The next updates of the resumed run, one taken and one skipped (their counters go on from
      // the restored ones).
      scaler.update(true);
      scaler.update(false);
    }
  }
  return 0;
}
