// Linear: the model's affine layer y = x W^T + b, with the parameters (and the initialisation) of
// torch::nn::Linear, plus optional int8 weights for CPU inference.
//
//   Linear fc(512, 2048);
//   fc->quantize_int8();     // CPU, fp32: weights packed for fbgemm, per output channel
//   auto y = fc->forward(x); // x (..., 512) float32 -> (..., 2048) float32
//
// quantize_int8() is LibTorch's dynamic quantization (the quantized::linear_dynamic kernel, as
// torch.ao.nn.quantized.dynamic.Linear): the weight is quantized once, symmetric per output row
// (scale = max|W_row| / 127), and every call quantizes its input per tensor (to 8 bits on CPUs with
// VNNI, 7 elsewhere, where fbgemm's int16 pair sums could saturate), multiplies in int8 with int32
// accumulation, and returns float32. The float32 parameters stay (checkpoints, and
// fusing several layers into one with concat()); they are no longer used by forward().
//
// Shape legend: i in_features, o out_features.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <iosfwd>
#include <vector>

namespace pyramidion {

class LinearImpl : public torch::nn::Cloneable<LinearImpl> {
 public:
  /// weight (o, i) and, when `bias`, bias (o), initialised as torch::nn::Linear does (Kaiming
  /// uniform with a = sqrt(5); bias uniform in +-1/sqrt(i)), drawing the same random numbers.
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  /// A layer with these parameters (weight (o, i), bias (o) or undefined), no initialisation.
  /// Throws std::invalid_argument for other shapes.
  LinearImpl(const at::Tensor& weight, const at::Tensor& bias);

  /// x (..., i) -> (..., o). Quantized: x must be float32 on the CPU (std::invalid_argument
  /// otherwise).
  at::Tensor forward(const at::Tensor& x);

  /// Packs int8 weights for forward(). Needs float32 parameters on the CPU and a LibTorch with the
  /// fbgemm quantized kernels (x86-64); throws std::invalid_argument naming the dtype or device,
  /// std::runtime_error when the kernels are missing. Calling it again repacks (after the weights
  /// changed). Moving or converting the module afterwards is refused by forward().
  void quantize_int8();
  /// Drops the int8 weights: forward() uses the float parameters again.
  void dequantize();
  bool quantized() const { return !packed_.isNone(); }

  /// One layer computing [a(x); b(x); ...] along the output features: the weights (and biases)
  /// concatenated, quantized when the first part is. All parts must have the same in_features,
  /// dtype and device, and all or none a bias. Not registered anywhere, no gradient.
  static std::shared_ptr<LinearImpl> concat(const std::vector<const LinearImpl*>& parts);

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  at::Tensor weight;  // (o, i)
  at::Tensor bias;    // (o), undefined without bias

 private:
  int64_t in_features_, out_features_;
  bool has_bias_;
  c10::IValue packed_;  // fbgemm's packed int8 weight and bias (LinearPackedParamsBase), or None
};

TORCH_MODULE(Linear);

}  // namespace pyramidion
