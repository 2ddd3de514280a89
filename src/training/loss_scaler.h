// Private: dynamic loss scaling for float16 training (Micikevicius et al. 2018, "Mixed Precision
// Training"; the rules of PyTorch's GradScaler). float16 gradients of small losses underflow: the
// loss is multiplied by `scale` before backward and the gradients divided by it before the step.
// When a gradient is not finite (the scaled loss overflowed), the update is skipped and the scale
// multiplied by backoff_factor; after growth_interval finite updates in a row it is multiplied by
// growth_factor. Disabled (scale 1, nothing skipped) for float32 and bfloat16, whose range needs no
// scaling.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace pyramidion {
namespace detail {

/// PyTorch's GradScaler defaults.
struct LossScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class LossScaler {
 public:
  explicit LossScaler(bool enabled, LossScalerOptions options = {});

  bool enabled() const { return enabled_; }
  /// What the loss is multiplied by before backward (1 when disabled).
  double scale() const { return enabled_ ? scale_ : 1.0; }
  /// Applies the rules after an update whose gradients were (not) all finite; returns whether the
  /// optimizer step is to be taken. Disabled: always true, whatever `finite` says.
  bool update(bool finite);
  /// Updates skipped so far (for the progress line and the metrics log).
  int64_t skipped() const { return skipped_; }

  /// The state a checkpoint records, and its restoration (std::runtime_error naming `where` for a
  /// state that is not one of these).
  nlohmann::json state() const;
  void load(const nlohmann::json& state, const std::string& where);

 private:
  bool enabled_;
  LossScalerOptions options_;
  double scale_;
  int64_t good_steps_ = 0;  // finite updates since the scale last changed
  int64_t skipped_ = 0;
};

}  // namespace detail
}  // namespace pyramidion
