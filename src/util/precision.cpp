// Precision names and checks (include/pyramidion/precision.h).
#include <pyramidion/precision.h>

#include <stdexcept>

#include "util/enum_names.h"

namespace pyramidion {
namespace {

const detail::EnumNames<Precision>& precision_names() {
  static const detail::EnumNames<Precision> names = {
      {Precision::fp32, "fp32"}, {Precision::bf16, "bf16"}, {Precision::fp16, "fp16"}};
  return names;
}

const detail::EnumNames<Quantization>& quantization_names() {
  static const detail::EnumNames<Quantization> names = {{Quantization::none, "none"}, {Quantization::int8, "int8"}};
  return names;
}

}  // namespace

std::string to_string(Precision precision) { return detail::name_of(precision_names(), precision, "Precision"); }

Precision parse_precision(const std::string& name, const std::string& what) {
  return detail::value_of(precision_names(), name, what);
}

c10::ScalarType dtype_of(Precision precision) {
  switch (precision) {
    case Precision::fp32: return c10::kFloat;
    case Precision::bf16: return c10::kBFloat16;
    case Precision::fp16: return c10::kHalf;
  }
  throw std::invalid_argument(detail::name_of(precision_names(), precision, "Precision"));  // names the value
}

void check_precision(Precision precision, c10::Device device) {
  to_string(precision);  // one of the enum's values
  if (precision == Precision::fp16 && !device.is_cuda())
    throw std::invalid_argument("precision \"fp16\" runs on CUDA only, not on " + device.str() +
                                " (use \"bf16\" or \"fp32\" there)");
}

std::string to_string(Quantization quantization) {
  return detail::name_of(quantization_names(), quantization, "Quantization");
}

Quantization parse_quantization(const std::string& name, const std::string& what) {
  return detail::value_of(quantization_names(), name, what);
}

void check_quantization(Quantization quantization, Precision precision, c10::Device device) {
  to_string(quantization);  // one of the enum's values
  if (quantization != Quantization::int8) return;
  if (!device.is_cpu())
    throw std::invalid_argument("quantization \"int8\" runs on the CPU only, not on " + device.str() +
                                " (use precision \"bf16\" or \"fp16\" there)");
  if (precision != Precision::fp32)
    throw std::invalid_argument("quantization \"int8\" needs precision \"fp32\" (the int8 kernels take and return "
                                "float32), got precision \"" + to_string(precision) + "\"");
}

}  // namespace pyramidion
