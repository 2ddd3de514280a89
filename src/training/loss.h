// Private: the training objective, shared by the update step and the validation loss.
//
// Legend: b batch, t target positions, v vocabulary size.
#pragma once

#include <pyramidion/batching.h>
#include <pyramidion/model.h>

#include <ATen/core/Tensor.h>

#include <utility>

namespace pyramidion {
namespace detail {

/// Summed token-level cross-entropy of a batch (pad positions ignored), with label smoothing.
/// Returns the loss (a scalar with autograd) and, unsmoothed, the negative log-likelihood sum.
std::pair<at::Tensor, double> batch_loss(Seq2Seq& model, const Batch& batch, double label_smoothing);

}  // namespace detail
}  // namespace pyramidion
