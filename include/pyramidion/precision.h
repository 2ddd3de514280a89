// Precision: the dtype a model runs in. "fp32" (the default), "bf16" (bfloat16: float32's range with
// 8 significant bits; fast where the CPU has AVX512-BF16 or AMX, and on GPUs from Ampere) or
// "fp16" (float16: 11 significant bits, a narrow range; CUDA only, where its kernels are).
//
//   const auto precision = pyramidion::parse_precision("bf16");
//   pyramidion::check_precision(precision, device);   // fp16 on a CPU: std::invalid_argument
//   model->to(device, pyramidion::dtype_of(precision));
//
// Quantization: how the linear layers' weights are stored for inference. "none" (the precision's
// dtype) or "int8" (dynamic quantization: int8 weights per output row, inputs quantized per call,
// int32 accumulation; CPU and fp32 only: see linear.h).
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace pyramidion {

enum class Precision { fp32, bf16, fp16 };

/// "fp32" / "bf16" / "fp16"; throws std::invalid_argument for a value outside the enum.
std::string to_string(Precision precision);
/// The inverse of to_string; throws std::invalid_argument "<what> = \"x\" must be one of ...".
Precision parse_precision(const std::string& name, const std::string& what = "precision");
/// at::kFloat, at::kBFloat16 or at::kHalf.
c10::ScalarType dtype_of(Precision precision);
/// Throws std::invalid_argument naming both when `precision` cannot run on `device` (fp16 needs CUDA).
void check_precision(Precision precision, c10::Device device);

enum class Quantization { none, int8 };

/// "none" / "int8".
std::string to_string(Quantization quantization);
/// The inverse of to_string; throws std::invalid_argument "<what> = \"x\" must be one of ...".
Quantization parse_quantization(const std::string& name, const std::string& what = "quantization");
/// Throws std::invalid_argument naming them when `quantization` cannot run with `precision` on
/// `device` (int8 needs fp32 on the CPU).
void check_quantization(Quantization quantization, Precision precision, c10::Device device);

}  // namespace pyramidion
