// Dynamic loss scaling (training/loss_scaler.h).
#include "training/loss_scaler.h"

#include <cmath>
#include <stdexcept>

namespace pyramidion {
namespace detail {

LossScaler::LossScaler(bool enabled, LossScalerOptions options)
    : enabled_(enabled), options_(options), scale_(options.init_scale) {}

bool LossScaler::update(bool finite) {
  if (!enabled_) return true;
  if (!finite) {
    scale_ *= options_.backoff_factor;
    good_steps_ = 0;
    ++skipped_;
    return false;
  }
  if (++good_steps_ >= options_.growth_interval) {
    scale_ *= options_.growth_factor;
    good_steps_ = 0;
  }
  return true;
}

nlohmann::json LossScaler::state() const {
  return {{"enabled", enabled_}, {"scale", scale_}, {"good_steps", good_steps_}, {"skipped", skipped_}};
}

void LossScaler::load(const nlohmann::json& state, const std::string& where) {
  try {
    const bool enabled = state.at("enabled").get<bool>();
    if (enabled != enabled_)
      throw std::runtime_error(std::string("the checkpoint's loss scaling is ") + (enabled ? "on" : "off") +
                               " but this run's is " + (enabled_ ? "on" : "off") + " (another precision)");
    const double scale = state.at("scale").get<double>();
    if (!(scale > 0) || !std::isfinite(scale)) throw std::runtime_error("scale " + std::to_string(scale));
    scale_ = scale;
    good_steps_ = state.at("good_steps").get<int64_t>();
    skipped_ = state.at("skipped").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(where + ": the loss scaler's state is malformed: " + e.what());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(where + ": " + e.what());
  }
}

}  // namespace detail
}  // namespace pyramidion
