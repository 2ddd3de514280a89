// Private: the checksum that a dataset's manifest records for its files and for the tokenizer, so
// that a changed, truncated or swapped file is detected. A 64-bit hash over 8-byte little-endian
// words (multiply-rotate rounds, then MurmurHash3's fmix64 finalizer): fast (several GB/s, so
// that a multi-GB token file costs seconds) and sensitive to any changed byte, but not
// cryptographic: it guards against accidents, not against an adversary.
//
//   Checksum c; c.update(bytes); c.update(more); c.hex()   // "5c0f...": 16 hex digits
//
// The value depends only on the bytes, not on how they were split into update() calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pyramidion {
namespace detail {

class Checksum {
 public:
  void update(const void* data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  /// The hash of every byte given so far (update() may still follow).
  uint64_t value() const;
  /// value() as 16 lowercase hex digits.
  std::string hex() const;

 private:
  uint64_t state_ = 0x9e3779b97f4a7c15ULL;
  uint64_t length_ = 0;
  unsigned char tail_[8] = {};
  size_t tail_size_ = 0;  // bytes in tail_, < 8
  void mix(uint64_t word);
};

/// The checksum and size of a whole file, read in 1 MiB blocks. Throws std::runtime_error
/// "<who>: cannot read '<path>': <reason>".
struct FileChecksum {
  int64_t bytes = 0;
  std::string checksum;
};
FileChecksum checksum_file(const std::string& who, const std::string& path);

}  // namespace detail
}  // namespace pyramidion
