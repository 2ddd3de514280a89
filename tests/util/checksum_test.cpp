// Tests of the dataset checksum (src/util/checksum.cpp): independent of how the bytes are split
// into updates, sensitive to every byte and to the length, and the same for a file as for its bytes.
#include "util/checksum.h"

#include "util/output_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>
#include <string>

namespace {

using pyramidion::detail::Checksum;

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string sum_of(const std::string& bytes) {
  Checksum c;
  c.update(bytes);
  return c.hex();
}

TEST(Checksum, DoesNotDependOnHowTheBytesAreSplit) {
  const std::string bytes = random_bytes(1000, 1);
  const std::string whole = sum_of(bytes);
  std::mt19937 rng(2);
  for (int trial = 0; trial < 50; ++trial) {
    Checksum c;
    for (size_t at = 0; at < bytes.size();) {
      const size_t n = std::min(bytes.size() - at, static_cast<size_t>(rng() % 20));
      c.update(bytes.data() + at, n);  // pieces of 0 to 19 bytes, across word boundaries
      at += n;
    }
    EXPECT_EQ(c.hex(), whole) << "trial " << trial;
  }
}

// An empty buffer may come as a null pointer (std::vector<char>().data(), e.g. an empty weights.pt
// in Seq2Seq::load): no memcpy from null (UBSan's invalid-null-argument, found by
// tests/fuzz/checkpoint_fuzz), and the same sum as no update.
TEST(Checksum, AnEmptyUpdateFromANullPointerChangesNothing) {
  Checksum c;
  c.update(nullptr, 0);
  EXPECT_EQ(c.hex(), sum_of(""));
  c.update("abc", 3);
  c.update(nullptr, 0);
  EXPECT_EQ(c.hex(), sum_of("abc"));
}

TEST(Checksum, EveryByteAndTheLengthCount) {
  const std::string bytes = random_bytes(67, 3);
  std::set<std::string> seen{sum_of(bytes)};
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string changed = bytes;
      changed[i] = static_cast<char>(changed[i] ^ (1 << bit));
      EXPECT_TRUE(seen.insert(sum_of(changed)).second) << "byte " << i << " bit " << bit;
    }
  }
  // Trailing zero bytes are bytes: "", "\0", "\0\0", ... all differ (the length is hashed).
  std::string zeros;
  for (int n = 0; n < 17; ++n, zeros.push_back('\0')) EXPECT_TRUE(seen.insert(sum_of(zeros)).second) << n;
  EXPECT_EQ(sum_of("").size(), 16u);
}

TEST(Checksum, OfAFileEqualsOfItsBytes) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("pyramidion_checksum_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string bytes = random_bytes((size_t{1} << 20) + 13, 4);  // more than one read block
  pyramidion::detail::write_output_file("test", (dir / "f").string(), bytes);
  const auto file = pyramidion::detail::checksum_file("test", (dir / "f").string());
  EXPECT_EQ(file.bytes, static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(file.checksum, sum_of(bytes));
  EXPECT_THROW(pyramidion::detail::checksum_file("test", (dir / "missing").string()), std::runtime_error);
  pyramidion::detail::remove_tree(dir.string());
}

}  // namespace
