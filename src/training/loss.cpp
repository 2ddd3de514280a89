// The training objective (training/loss.h).
#include "training/loss.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

namespace pyramidion {
namespace detail {

std::pair<at::Tensor, double> batch_loss(Seq2Seq& model, const Batch& batch, double label_smoothing) {
  const int64_t pad = model->config().pad_id;
  // The loss in float32 whatever the logits' dtype (autocast makes them 16-bit).
  const auto logits = model->forward(batch.src_ids, batch.src_mask, batch.tgt_in).to(at::kFloat);  // (b, t, v)
  const auto flat = logits.reshape({-1, logits.size(2)});                           // (b*t, v)
  const auto target = batch.tgt_out.reshape({-1});                                  // (b*t)
  const auto loss = at::cross_entropy_loss(flat, target, {}, at::Reduction::Sum, pad, label_smoothing);
  double nll = 0;
  if (label_smoothing == 0) {
    nll = loss.item<double>();
  } else {
    at::NoGradGuard no_grad;
    nll = at::cross_entropy_loss(flat, target, {}, at::Reduction::Sum, pad, 0.0).item<double>();
  }
  return {loss, nll};
}

}  // namespace detail
}  // namespace pyramidion
