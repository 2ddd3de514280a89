// Private: a whole file mapped read-only into memory (POSIX mmap), for the token files of a
// dataset: its pages come from the OS cache, are read only when touched and are shared by every
// process that maps the same file (the ranks of one machine), so a process's memory does not grow
// with the file's size.
//
//   MappedFile tokens("data/train/source.tokens", MappedFile::Access::random);
//   tokens.data(), tokens.size()
//   tokens.check_unchanged();   // after reading: throws FileChanged if the file shrank under us
//
// A mapped file that another process truncates makes a read of its lost pages raise SIGBUS, which
// kills the process with no message. A process that maps a file therefore has a SIGBUS handler
// (installed with the first mapping; other faults keep their previous handling) that, for an
// address inside one of these mappings, puts a page of zeros there and marks the mapping: the read
// goes on, and the next check_unchanged() throws, naming the file. Readers call it after reading
// (and before trusting what they read).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace pyramidion {
namespace detail {

/// A mapped file changed while in use (truncated, or pages of it lost): what was read is not the
/// file that was opened.
class FileChanged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

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

  /// True when a read of this mapping faulted (its file lost pages): no system call.
  bool faulted() const;
  /// Throws FileChanged "'<path>' changed while it was in use (...)" when a read faulted or the
  /// file is no longer the size it was mapped at (one fstat).
  void check_unchanged() const;

 private:
  void release();
  std::string path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;    // kept open for check_unchanged()
  int slot_ = -1;  // the mapping's entry in the SIGBUS handler's table; -1: none
};

}  // namespace detail
}  // namespace pyramidion
