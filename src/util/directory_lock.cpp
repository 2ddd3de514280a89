// The lock on a directory (util/directory_lock.h).
#include "util/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace pyramidion {
namespace detail {
namespace {

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

// What the holder wrote into the lock file ("pid 123 on host h"), or "" when unreadable.
std::string holder_of(int fd) {
  char buffer[512] = {};
  const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
  if (n <= 0) return "";
  std::string text(buffer, static_cast<size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

DirectoryLock::DirectoryLock(const std::string& who, const std::string& dir)
    : DirectoryLock(who, dir, [&] {
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (ec) throw std::runtime_error(who + ": cannot create the directory '" + dir + "': " + ec.message());
        return (std::filesystem::path(dir) / ".lock").string();
      }()) {}

DirectoryLock DirectoryLock::beside(const std::string& who, const std::string& dir) {
  auto target = std::filesystem::path(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "data/x/" -> "data/x"
  const auto parent = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) throw std::runtime_error(who + ": cannot create the directory '" + parent.string() + "': " + ec.message());
  return DirectoryLock(who, dir, (parent / ("." + target.filename().string() + ".lock")).string());
}

DirectoryLock::DirectoryLock(DirectoryLock&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

DirectoryLock::DirectoryLock(const std::string& who, const std::string& dir, std::string lock_path)
    : path_(std::move(lock_path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(who + ": cannot create the lock file '" + path_ + "': " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const std::string holder = error == EWOULDBLOCK ? holder_of(fd_) : "";
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK)
      throw std::runtime_error(who + ": '" + dir + "' is in use by another process (" +
                               (holder.empty() ? std::string("one that has not said which yet") : holder) +
                               ", holding " + path_ +
                               "); wait for it to finish or stop it, or choose another directory");
    throw std::runtime_error(who + ": cannot lock '" + path_ + "': " + std::strerror(error));
  }
  const std::string holder = "pid " + std::to_string(::getpid()) + " on host " + host_name() + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, holder.data(), holder.size(), 0) != static_cast<ssize_t>(holder.size())) {
    const int error = errno;
    ::close(fd_);
    throw std::runtime_error(who + ": cannot write the lock file '" + path_ + "': " + std::strerror(error));
  }
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace detail
}  // namespace pyramidion
