// Private: a whole file mapped read-only into memory (POSIX mmap), for the token files of a
// dataset: its pages come from the OS cache, are read only when touched and are shared by every
// process that maps the same file (the ranks of one machine), so a process's memory does not grow
// with the file's size.
//
//   MappedFile tokens("data/train/source.tokens", MappedFile::Access::random);
//   tokens.data(), tokens.size()
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pyramidion {
namespace detail {

class MappedFile {
 public:
  /// How the pages will be read: the OS's hint (madvise). random: no read-ahead (a batch reads a
  /// few documents anywhere in the file); sequential: read-ahead (a scan).
  enum class Access { random, sequential };

  MappedFile() = default;
  /// Maps `path`; an empty file maps to size() 0 and data() null. Throws std::runtime_error
  /// "cannot map '<path>': <reason>".
  explicit MappedFile(const std::string& path, Access access = Access::random);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release();
  std::string path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace detail
}  // namespace pyramidion
