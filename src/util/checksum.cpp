// Checksum (see checksum.h).
#include "util/checksum.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace pyramidion {
namespace detail {
namespace {

constexpr uint64_t kPrime1 = 0x9e3779b185ebca87ULL;
constexpr uint64_t kPrime2 = 0xc2b2ae3d27d4eb4fULL;

uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

uint64_t load_le(const unsigned char* p) {
  uint64_t w = 0;
  for (int i = 7; i >= 0; --i) w = (w << 8) | p[i];  // little-endian on any host
  return w;
}

}  // namespace

void Checksum::mix(uint64_t word) {
  state_ ^= rotl(word * kPrime2, 31) * kPrime1;
  state_ = rotl(state_, 27) * kPrime1 + 0x52dce729;
}

void Checksum::update(const void* data, size_t size) {
  // Nothing to add; and `data` may then be null (an empty vector's data()), which memcpy must not
  // be given even for 0 bytes.
  if (size == 0) return;
  const auto* p = static_cast<const unsigned char*>(data);
  length_ += size;
  if (tail_size_ > 0) {  // complete a word begun by an earlier call
    const size_t take = std::min(size, sizeof tail_ - tail_size_);
    std::memcpy(tail_ + tail_size_, p, take);
    tail_size_ += take;
    p += take;
    size -= take;
    if (tail_size_ < sizeof tail_) return;
    mix(load_le(tail_));
    tail_size_ = 0;
  }
  for (; size >= 8; p += 8, size -= 8) mix(load_le(p));
  std::memcpy(tail_, p, size);  // size < 8
  tail_size_ = size;
}

uint64_t Checksum::value() const {
  uint64_t h = state_;
  if (tail_size_ > 0) {
    unsigned char last[8] = {};
    std::memcpy(last, tail_, tail_size_);
    h ^= rotl(load_le(last) * kPrime2, 31) * kPrime1;
  }
  return fmix64(h ^ (length_ * kPrime2));
}

std::string Checksum::hex() const {
  static const char* digits = "0123456789abcdef";
  const uint64_t v = value();
  std::string out(16, '0');
  for (int i = 0; i < 16; ++i) out[static_cast<size_t>(i)] = digits[(v >> (60 - 4 * i)) & 0xf];
  return out;
}

FileChecksum checksum_file(const std::string& who, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) throw std::runtime_error(who + ": cannot read '" + path + "': " + std::strerror(errno));
  Checksum sum;
  std::vector<char> block(size_t{1} << 20);
  FileChecksum out;
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const auto got = in.gcount();
    if (got <= 0) break;
    sum.update(block.data(), static_cast<size_t>(got));
    out.bytes += got;
  }
  if (in.bad()) throw std::runtime_error(who + ": read error in '" + path + "': " + std::strerror(errno));
  out.checksum = sum.hex();
  return out;
}

}  // namespace detail
}  // namespace pyramidion
