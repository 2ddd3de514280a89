// Tests of the precision names and checks (src/util/precision.cpp).
#include <pyramidion/precision.h>

#include "support/test_support.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using pyramidion::Precision;
using pyramidion_test::error_of;

TEST(Precision, NamesDtypesAndDevices) {
  for (const std::string name : {"fp32", "bf16", "fp16"})
    EXPECT_EQ(pyramidion::to_string(pyramidion::parse_precision(name)), name);
  EXPECT_EQ(pyramidion::dtype_of(Precision::fp32), c10::kFloat);
  EXPECT_EQ(pyramidion::dtype_of(Precision::bf16), c10::kBFloat16);
  EXPECT_EQ(pyramidion::dtype_of(Precision::fp16), c10::kHalf);
  EXPECT_EQ(error_of<std::invalid_argument>([] { pyramidion::parse_precision("float16", "--precision"); }),
            "--precision = \"float16\" must be one of \"fp32\", \"bf16\", \"fp16\"");
  EXPECT_NO_THROW(pyramidion::check_precision(Precision::bf16, c10::Device(c10::kCPU)));
  EXPECT_NO_THROW(pyramidion::check_precision(Precision::fp16, c10::Device(c10::kCUDA, 0)));
  EXPECT_EQ(error_of<std::invalid_argument>([] { pyramidion::check_precision(Precision::fp16, c10::Device(c10::kCPU)); }),
            "precision \"fp16\" runs on CUDA only, not on cpu (use \"bf16\" or \"fp32\" there)");
  EXPECT_THROW(pyramidion::to_string(static_cast<Precision>(9)), std::invalid_argument);
}

TEST(Quantization, NamesAndWhereInt8Runs) {
  using pyramidion::Quantization;
  for (const std::string name : {"none", "int8"})
    EXPECT_EQ(pyramidion::to_string(pyramidion::parse_quantization(name)), name);
  EXPECT_EQ(error_of<std::invalid_argument>([] { pyramidion::parse_quantization("int4", "--quantize"); }),
            "--quantize = \"int4\" must be one of \"none\", \"int8\"");
  const c10::Device cpu(c10::kCPU), cuda(c10::kCUDA, 0);
  EXPECT_NO_THROW(pyramidion::check_quantization(Quantization::int8, Precision::fp32, cpu));
  EXPECT_NO_THROW(pyramidion::check_quantization(Quantization::none, Precision::fp16, cuda));
  EXPECT_EQ(error_of<std::invalid_argument>(
                [&] { pyramidion::check_quantization(Quantization::int8, Precision::bf16, cpu); }),
            "quantization \"int8\" needs precision \"fp32\" (the int8 kernels take and return float32), got "
            "precision \"bf16\"");
  EXPECT_NE(error_of<std::invalid_argument>(
                [&] { pyramidion::check_quantization(Quantization::int8, Precision::fp32, cuda); })
                .find("runs on the CPU only, not on cuda:0"),
            std::string::npos);
  EXPECT_THROW(pyramidion::to_string(static_cast<Quantization>(9)), std::invalid_argument);
}

}  // namespace
