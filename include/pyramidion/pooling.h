// TopKPooler: the paper's trainable representation pooling layer (arXiv 2009.05169, Section 3):
// a scorer Linear(d, 1) with scores sigmoid(logit) + epsilon, then the successive-halving soft
// top-k down to a target length fixed at construction.
//
// Shape legend: b batch, n input tokens, k kept tokens (target_length), d model size.
#pragma once

#include <pyramidion/linear.h>
#include <pyramidion/pooler_config.h>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

namespace pyramidion {

struct TopKPoolerOptions {
  TopKPoolerOptions(int64_t d_model, int64_t target_length, PoolerConfig pooler = {})
      : d_model_(d_model), target_length_(target_length), pooler_(pooler) {}
  /// Size d of the representations; >= 1.
  TORCH_ARG(int64_t, d_model);
  /// Number k of representations kept; >= 1. An input with n <= k passes through unchanged.
  TORCH_ARG(int64_t, target_length);
  /// base, keep_order, hard_at_inference, score_epsilon (pooler_config.h).
  TORCH_ARG(PoolerConfig, pooler);
};

struct PoolerOutput {
  at::Tensor values;   // (b, k, d) pooled representations (zero where mask is false)
  at::Tensor mask;     // (b, k) bool, true where the output holds a real input
  at::Tensor indices;  // (b, k) int64 input position of each output's winner (for visualisation)
  at::Tensor scores;   // (b, k) pooled scores
};

class TopKPoolerImpl : public torch::nn::Module {
 public:
  explicit TopKPoolerImpl(const TopKPoolerOptions& options);

  /// x: (b, n, d); mask: (b, n) bool or undefined (all real). Throws std::invalid_argument on
  /// shapes that do not match the options.
  PoolerOutput forward(const at::Tensor& x, const at::Tensor& mask = {});

  /// The scores the pooler ranks by: sigmoid(Linear(x)) + score_epsilon, (b, n, d) -> (b, n).
  at::Tensor score(const at::Tensor& x);

  void reset();
  void pretty_print(std::ostream& stream) const override;

  TopKPoolerOptions options;
  Linear scorer{nullptr};
  /// When true, the scorer reads x.detach(): the selection's gradient (through the tournament's
  /// pair weights) still reaches the scorer's own weights but not the layers that made x, so
  /// those cannot learn to be kept. A training switch (the selection task's "no learning"
  /// control, docs/selection.md); not part of the options and not saved.
  bool detach_scorer_input = false;
};

TORCH_MODULE(TopKPooler);

}  // namespace pyramidion
