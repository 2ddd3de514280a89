// Precision: the dtype a model runs in. "fp32" (the default), "bf16" (bfloat16: float32's range with
// 8 significant bits; fast where the CPU has AVX512-BF16 or AMX, and on GPUs from Ampere) or
// "fp16" (float16: 11 significant bits, a narrow range; CUDA only, where its kernels are).
//
//   const auto precision = pyramidion::parse_precision("bf16");
//   pyramidion::check_precision(precision, device);   // fp16 on a CPU: std::invalid_argument
//   model->to(device, pyramidion::dtype_of(precision));
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

}  // namespace pyramidion
