// Tests of the one device parser (src/util/device.cpp).
#include <pyramidion/device.h>

#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <string>

namespace {

using pyramidion::DeviceSpec;
using pyramidion::parse_device;
using pyramidion_test::error_of;

TEST(Device, NamesRoundTrip) {
  for (const std::string name : {"cpu", "cuda", "cuda:0", "cuda:12"})
    EXPECT_EQ(pyramidion::to_string(parse_device(name)), name);
  EXPECT_EQ(parse_device("cuda").index, -1);
  EXPECT_EQ(parse_device("cuda:3"), (DeviceSpec{DeviceSpec::Kind::cuda, 3}));
  EXPECT_EQ(parse_device("cpu"), DeviceSpec{});
}

TEST(Device, BadNamesAreInvalidArgumentsNamingTheValue) {
  for (const std::string name : {"gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "cuda:99999999", " cpu", ""})
    EXPECT_EQ(error_of<std::invalid_argument>([&] { parse_device(name, "--device"); }),
              "--device = \"" + name + "\" must be \"cpu\", \"cuda\" or \"cuda:N\"")
        << name;
}

TEST(Device, ResolvesToTheLocalRanksDeviceOrSaysWhyNot) {
  EXPECT_EQ(parse_device("cpu").resolve(3), at::Device(at::kCPU));
  const auto count = static_cast<int>(torch::cuda::device_count());
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(error_of<std::runtime_error>([] { parse_device("cuda").resolve(0); }),
              "device \"cuda\": no CUDA device is available here (use \"cpu\")");
    return;
  }
  EXPECT_EQ(parse_device("cuda").resolve(0), at::Device(at::kCUDA, 0));
  EXPECT_NE(error_of<std::runtime_error>([&] { parse_device("cuda").resolve(count); }).find("does not exist"),
            std::string::npos);
}

}  // namespace
