// Private: a scope in which LibTorch's autocast runs the matrix products (linear, matmul, attention)
// of `device_type` in a 16-bit dtype while the weights stay float32 (mixed precision); the previous
// autocast settings come back at its end. Disabled (nothing changes) for float32.
#pragma once

#include <ATen/autocast_mode.h>

namespace pyramidion {
namespace detail {

class AutocastScope {
 public:
  AutocastScope(c10::DeviceType device_type, c10::ScalarType dtype) : device_type_(device_type) {
    enabled_ = dtype != c10::kFloat;
    if (!enabled_) return;
    was_enabled_ = at::autocast::is_autocast_enabled(device_type_);
    previous_dtype_ = at::autocast::get_autocast_dtype(device_type_);
    at::autocast::set_autocast_enabled(device_type_, true);
    at::autocast::set_autocast_dtype(device_type_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();  // the cached weight casts
    at::autocast::set_autocast_enabled(device_type_, was_enabled_);
    at::autocast::set_autocast_dtype(device_type_, previous_dtype_);
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_type_;
  bool enabled_ = false;
  bool was_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::kFloat;
};

}  // namespace detail
}  // namespace pyramidion
