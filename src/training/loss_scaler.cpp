// Dynamic loss scaling (training/loss_scaler.h).
#include "training/loss_scaler.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

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
    // Counts of updates, which update() increments: an integer in [0, 2^53] (a run never gets
    // near it; a negative or huge count, or a float that get<int64_t>() would convert out of
    // range, comes from a damaged or edited file and would overflow int64_t as the run goes on).
    const auto count = [&](const char* key) {
      const nlohmann::json& v = state.at(key);
      constexpr int64_t kMaxCount = int64_t{1} << 53;
      if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{kMaxCount}) ||
          v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxCount)
        throw std::runtime_error(std::string(key) + " = " + v.dump() + " must be an integer in [0, 2^53]");
      return v.get<int64_t>();
    };
    const int64_t good_steps = count("good_steps");
    const int64_t skipped = count("skipped");
    scale_ = scale;
    good_steps_ = good_steps;
    skipped_ = skipped;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(where + ": the loss scaler's state is malformed: " + e.what());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(where + ": " + e.what());
  }
}

}  // namespace detail
}  // namespace pyramidion
