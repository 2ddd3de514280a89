// Linear: the model's affine layer y = x W^T + b, with the parameters (and the initialisation) of
// torch::nn::Linear, plus weights packed for CPU inference: float32 reordered for oneDNN, or int8.
//
//   Linear fc(512, 2048);
//   fc->prepack_fp32();      // CPU, fp32: the weight reordered once for oneDNN's matmul
//   fc->quantize_int8();     // or: CPU, fp32: weights packed for fbgemm, per output channel
//   auto y = fc->forward(x); // x (..., 512) float32 -> (..., 2048) float32
//
// prepack_fp32() keeps the arithmetic float32 and changes only how the weight is laid out in memory:
// forward() then calls oneDNN's matmul (LibTorch's mkldnn::_linear_pointwise over a weight from
// mkldnn::_reorder_linear_weight, what torch.compile's CPU weight freezing uses) for inputs of at
// most kPackedMaxRows rows, the decoder's steps, where LibTorch's default sgemm reads the weight
// several times slower than memory allows on some CPUs (measured on an AMD EPYC, 2 threads:
// 4 x 1024 x 96103 in 102 ms by at::linear, 23 ms packed; docs/benchmarks/pegasus.md). Larger inputs,
// inputs that need a gradient, and any call after the weight changed (an optimizer step, a move,
// a conversion: its storage or version differs from the packed one's) take at::linear, so the
// result never comes from stale weights. The sums are the same products in another order: results
// differ from at::linear's in the last bits only.
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
#include <c10/core/Storage.h>
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
  /// Reorders the float32 weight for oneDNN (see above); std::invalid_argument for other dtypes or
  /// devices, std::runtime_error when this LibTorch has no oneDNN operators. Calling it again
  /// repacks. The packed copy holds as much memory again as the weight; after a move or a
  /// conversion of the module, the old weight's storage too, until unpack() or a repack.
  void prepack_fp32();
  /// Drops the packed weights (int8 or float32): forward() uses the float parameters again.
  void unpack();
  bool quantized() const { return packing_ == Packing::int8; }
  bool prepacked() const { return packing_ == Packing::fp32; }

  /// The largest number of input rows (the product of x's leading sizes) that forward() sends to
  /// the prepacked weight; above it, at::linear (whose blocked sgemm catches up: measured at 256 to
  /// 512 rows for 1024 x 4096 layers).
  static constexpr int64_t kPackedMaxRows = 256;

  /// One layer computing [a(x); b(x); ...] along the output features: the weights (and biases)
  /// concatenated, quantized or prepacked when the first part is. All parts must have the same in_features,
  /// dtype and device, and all or none a bias. Not registered anywhere, no gradient.
  static std::shared_ptr<LinearImpl> concat(const std::vector<const LinearImpl*>& parts);

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  at::Tensor weight;  // (o, i)
  at::Tensor bias;    // (o), undefined without bias

 private:
  int64_t in_features_, out_features_;
  bool has_bias_;
  enum class Packing { none, int8, fp32 };
  // Whether x may go to the prepacked float32 weight: see prepack_fp32().
  bool use_prepacked(const at::Tensor& x) const;

  Packing packing_ = Packing::none;
  // int8: fbgemm's packed weight and bias (LinearPackedParamsBase); fp32: oneDNN's reordered
  // weight (an opaque mkldnn tensor, (o, i)); None otherwise.
  c10::IValue packed_;
  // fp32: the storage of the weight the packed copy was made from (held, so that its address
  // cannot be reused by another tensor), and the weight's version at that time.
  c10::Storage packed_from_;
  int64_t packed_version_ = -1;
};

TORCH_MODULE(Linear);

}  // namespace pyramidion
