// Tests of dynamic loss scaling (src/training/loss_scaler.cpp) on injected overflows: the update
// is skipped and the scale backs off; a run of finite updates grows it; the state round-trips.
#include "training/loss_scaler.h"

#include "support/test_support.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace {

using pyramidion::detail::LossScaler;
using pyramidion::detail::LossScalerOptions;
using pyramidion_test::error_of;

TEST(LossScaler, OverflowsSkipAndBackOffFiniteRunsGrow) {
  LossScalerOptions o;
  o.init_scale = 1024;
  o.growth_interval = 3;
  LossScaler s(true, o);
  EXPECT_EQ(s.scale(), 1024);
  EXPECT_FALSE(s.update(false)) << "an overflow skips the update";
  EXPECT_EQ(s.scale(), 512);
  EXPECT_FALSE(s.update(false));
  EXPECT_EQ(s.scale(), 256);
  EXPECT_EQ(s.skipped(), 2);
  EXPECT_TRUE(s.update(true));
  EXPECT_TRUE(s.update(true));
  EXPECT_EQ(s.scale(), 256) << "two finite updates: not yet";
  EXPECT_FALSE(s.update(false)) << "an overflow restarts the count";
  EXPECT_EQ(s.scale(), 128);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(s.update(true));
  EXPECT_EQ(s.scale(), 128);
  EXPECT_TRUE(s.update(true));
  EXPECT_EQ(s.scale(), 256) << "growth_interval finite updates in a row double it";
  EXPECT_EQ(s.skipped(), 3);
}

TEST(LossScaler, DisabledScalesByOneAndNeverSkips) {
  LossScaler s(false);
  EXPECT_EQ(s.scale(), 1);
  EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 1);
  EXPECT_EQ(s.skipped(), 0);
}

TEST(LossScaler, StateRoundTripsAndMismatchesAreNamed) {
  LossScalerOptions o;
  o.growth_interval = 2;
  LossScaler a(true, o);
  a.update(false);
  a.update(true);
  LossScaler b(true, o);
  b.load(a.state(), "ckpt/trainer_state.json");
  EXPECT_EQ(b.state(), a.state());
  // The continuation equals the original's: one more finite update grows both.
  EXPECT_EQ(a.update(true), b.update(true));
  EXPECT_EQ(a.scale(), b.scale());
  LossScaler off(false);
  EXPECT_NE(error_of<std::runtime_error>([&] { off.load(a.state(), "ckpt/trainer_state.json"); })
                .find("ckpt/trainer_state.json: the checkpoint's loss scaling is on but this run's is off"),
            std::string::npos);
  EXPECT_NE(error_of<std::runtime_error>([&] { b.load(nlohmann::json{{"enabled", true}}, "x.json"); })
                .find("x.json: the loss scaler's state is malformed"),
            std::string::npos);
}

// Counters that update() would overflow (found by tests/fuzz/trainer_state_fuzz: UBSan's
// signed-integer-overflow at the first update after resuming from skipped = 2^63 - 1), negative
// ones and floats (get<int64_t>() of 1e300 is undefined) are refused, naming the key and the file;
// the scaler is then unchanged.
TEST(LossScaler, CountersOutsideZeroToTwoPow53AreRefused) {
  LossScaler b(true);
  const auto before = b.state();
  for (const auto& [key, bad] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"skipped", INT64_MAX}, {"good_steps", INT64_MAX}, {"skipped", -1}, {"good_steps", -3},
           {"skipped", UINT64_MAX}, {"good_steps", 1e300}, {"skipped", 1.5}, {"good_steps", (int64_t{1} << 53) + 1}}) {
    nlohmann::json state{{"enabled", true}, {"scale", 1024.0}, {"good_steps", 0}, {"skipped", 0}};
    state[key] = bad;
    const std::string message = error_of<std::runtime_error>([&] { b.load(state, "ckpt/trainer_state.json"); });
    EXPECT_NE(message.find("ckpt/trainer_state.json: " + key + " = "), std::string::npos) << message;
    EXPECT_NE(message.find("must be an integer in [0, 2^53]"), std::string::npos) << message;
    EXPECT_EQ(b.state(), before) << key << " = " << bad.dump();
  }
  b.load(nlohmann::json{{"enabled", true}, {"scale", 2.0}, {"good_steps", int64_t{1} << 53}, {"skipped", 0}}, "x.json");
  EXPECT_EQ(b.scale(), 2.0);
}

}  // namespace
