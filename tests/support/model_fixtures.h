// Test-only helpers shared by the model and generation tests: the tiny presets and random inputs.
#pragma once

#include <pyramidion/config.h>
#include <pyramidion/model.h>

#include "support/test_support.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace pyramidion_test {

/// configs/<name>.json of the source tree.
inline pyramidion::ModelConfig preset(const std::string& name) {
  return pyramidion::ModelConfig::from_json_file(std::string(PYRAMIDION_SOURCE_DIR) + "/configs/" + name + ".json");
}

/// A model of `config` with weights drawn from `seed`, in eval mode.
inline pyramidion::Seq2Seq make_model(const pyramidion::ModelConfig& config, uint64_t seed = 0) {
  at::manual_seed(seed);
  pyramidion::Seq2Seq model(config);
  model->eval();
  return model;
}

/// (b, n) bool: position < length.
inline at::Tensor lengths_mask(const std::vector<int64_t>& lengths, int64_t n) {
  return at::arange(n).unsqueeze(0) < at::tensor(lengths).unsqueeze(1);
}

/// (b, n) ids in [3, 64) (no pad, bos, eos), pad_id (0) where the mask is false.
inline at::Tensor random_ids(const at::Tensor& mask) {
  return at::randint(3, 64, mask.sizes(), at::kLong).masked_fill(mask.logical_not(), 0);
}

}  // namespace pyramidion_test
