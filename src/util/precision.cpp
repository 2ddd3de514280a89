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

}  // namespace pyramidion
