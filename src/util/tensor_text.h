// Private: how error messages describe a tensor, the same in every layer.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace pyramidion {
namespace detail {

/// Sizes as "[2, 3, 4]".
std::string format_sizes(c10::IntArrayRef sizes);
/// A tensor's sizes ("[2, 3, 4]"), or "an undefined tensor".
std::string describe(const at::Tensor& t);

}  // namespace detail
}  // namespace pyramidion
