// Private: an exclusive lock on a directory that one process at a time may write, e.g. a training
// run's output directory: a second pyramidion-train on the same --out (started together, or with
// --resume while the first runs) is refused instead of deleting the other's checkpoints and
// interleaving its logs.
//
//   DirectoryLock lock("train", out);  // throws std::runtime_error naming the holder
//
// An flock(2) on "<dir>/.lock" (or, for a directory that is replaced whole, such as a dataset that
// pyramidion-preprocess publishes by a rename, on ".<name>.lock" beside it: DirectoryLock::beside),
// which holds the holder's pid and host for the message. The kernel
// drops the lock when the holder exits, however it ends (SIGKILL included): a stale .lock file
// never blocks a later run.
#pragma once

#include <string>

namespace pyramidion {
namespace detail {

class DirectoryLock {
 public:
  /// Creates `dir` when absent and locks it. Throws std::runtime_error "<who>: '<dir>' is in use
  /// by another process (pid N on host H, ...)" when another process holds the lock, and naming
  /// the OS reason when the lock file cannot be made.
  DirectoryLock(const std::string& who, const std::string& dir);
  /// Locks `dir` by the file ".<name>.lock" in its parent directory (created when absent); `dir`
  /// itself is neither needed nor created (it may be replaced by a rename while locked). The same
  /// errors.
  static DirectoryLock beside(const std::string& who, const std::string& dir);
  ~DirectoryLock();
  DirectoryLock(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

  /// The lock file.
  const std::string& path() const { return path_; }

 private:
  DirectoryLock(const std::string& who, const std::string& dir, std::string lock_path);
  std::string path_;
  int fd_ = -1;
};

}  // namespace detail
}  // namespace pyramidion
