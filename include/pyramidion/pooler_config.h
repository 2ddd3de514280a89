// PoolerConfig: the settings of a trainable pooling layer (TopKPooler, pooling.h) that a model
// configuration carries for all its pooling layers (ModelConfig::pooler, config.h). Defined once
// here, used by both.
//
// This header needs no LibTorch: it compiles as C++17.
#pragma once

#include <string>

namespace pyramidion {

struct PoolerConfig {
  /// Base of the pair weights' double exponential (TopKOptions::base); finite and > 1.
  double base = 20.0;
  /// Order the kept representations by input position (the authors' `sort_back`).
  bool keep_order = true;
  /// In eval mode, select the exact top-k (hard_topk) instead of the soft tournament.
  bool hard_at_inference = false;
  /// Added to the sigmoid scores so that none is exactly 0 (the authors' code: 1e-5); finite and >= 0.
  double score_epsilon = 1e-5;
};

/// Throws std::invalid_argument "<owner>.base = 1 must be finite and > 1" (or score_epsilon) for
/// the first invalid field.
void validate(const PoolerConfig& config, const std::string& owner);

/// Field-by-field equality (doubles compared exactly).
bool operator==(const PoolerConfig& a, const PoolerConfig& b);
bool operator!=(const PoolerConfig& a, const PoolerConfig& b);

}  // namespace pyramidion
