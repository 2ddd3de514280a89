// The one file writer (util/output_file.h).
#include "util/output_file.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace pyramidion {
namespace detail {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTempTag = ".tmp-";
constexpr const char* kOldTag = ".old-";

[[noreturn]] void io_error(const std::string& who, const std::string& what, const std::string& path, int error) {
  throw std::runtime_error(who + ": " + what + " '" + path + "': " + std::strerror(error));
}

fs::path parent_of(const fs::path& target) { return target.has_parent_path() ? target.parent_path() : fs::path("."); }

// "<parent>/.<name><tag>XXXXXX", the pattern mkstemp and mkdtemp fill in.
std::string sibling_pattern(const fs::path& target, const char* tag) {
  return (parent_of(target) / ("." + target.filename().string() + tag + "XXXXXX")).string();
}

// Writes all of `bytes` to `fd`; false (errno set) on failure. `done` (when given) gets the bytes
// that did go out, also on failure.
bool write_all(int fd, std::string_view bytes, size_t* done = nullptr) {
  size_t written = 0;
  bool ok = true;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      ok = false;
      break;
    }
    written += static_cast<size_t>(n);
  }
  if (done) *done = written;
  return ok;
}

// The descriptor that `path` names: 1 for "-" and /dev/stdout, 2 for /dev/stderr, N for /dev/fd/N
// and /proc/self/fd/N (or /proc/<this pid>/fd/N); -1 for any other path.
int descriptor_named(const std::string& path) {
  if (path == "-" || path == "/dev/stdout") return 1;
  if (path == "/dev/stderr") return 2;
  for (const std::string prefix : {std::string("/dev/fd/"), std::string("/proc/self/fd/"),
                                   "/proc/" + std::to_string(::getpid()) + "/fd/"}) {
    if (path.size() <= prefix.size() || path.size() > prefix.size() + 9 || path.compare(0, prefix.size(), prefix) != 0)
      continue;
    int fd = 0;
    for (size_t i = prefix.size(); i < path.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(path[i]))) return -1;
      fd = fd * 10 + (path[i] - '0');
    }
    return fd;
  }
  return -1;
}

// True when `path` exists and is neither a regular file nor a directory (links followed): a
// device, a named pipe or a socket.
bool is_special(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

// Where `path`'s symbolic links lead, followed to the end (a dangling link's target, which the
// writer then creates); `path` itself when it is no link. Relative targets are relative to their
// link's directory.
std::string resolve_links(const std::string& who, const std::string& path) {
  std::string current = path;
  for (int hops = 0; hops < 40; ++hops) {  // Linux's own limit (MAXSYMLINKS)
    struct stat st {};
    if (::lstat(current.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return current;
    std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
    const ssize_t n = ::readlink(current.c_str(), target.data(), target.size());
    if (n < 0) io_error(who, "cannot read the link", current, errno);
    target.resize(static_cast<size_t>(n));
    current = target.front() == '/' ? target : (parent_of(fs::path(current)) / target).string();
  }
  io_error(who, "cannot follow the links of", path, ELOOP);
}

// Persists a rename in `dir`; a filesystem that cannot sync a directory has nothing to lose here.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// A directory path without a trailing separator ("ckpt/" -> "ckpt").
fs::path directory_target(const std::string& who, const std::string& path) {
  fs::path target = fs::path(path).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  if (target.empty() || target == ".") io_error(who, "not a directory name:", path, EINVAL);
  return target;
}

// Writes a new file at `path` (created or truncated) and flushes it.
void write_new_file(const std::string& who, const std::string& path, const std::string& shown, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error(who, "cannot create", shown, errno);
  if (!write_all(fd, bytes) || ::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    io_error(who, "cannot write", shown, error);
  }
  if (::close(fd) != 0) io_error(who, "cannot write", shown, errno);
}

}  // namespace

bool is_temporary_name(const std::string& filename) {
  if (filename.size() < 2 || filename[0] != '.') return false;
  for (const char* tag : {kTempTag, kOldTag}) {
    const size_t suffix = std::strlen(tag) + 6;  // the tag and mkstemp's six characters
    if (filename.size() <= suffix + 1 || filename.compare(filename.size() - suffix, std::strlen(tag), tag) != 0)
      continue;
    bool random = true;
    for (size_t i = filename.size() - 6; i < filename.size(); ++i)
      random = random && std::isalnum(static_cast<unsigned char>(filename[i]));
    if (random) return true;
  }
  return false;
}

int remove_tree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? 0 : errno;
  if (!S_ISDIR(st.st_mode)) return ::unlink(path.c_str()) == 0 || errno == ENOENT ? 0 : errno;
  static thread_local int first_error;  // nftw's callback takes no context
  first_error = 0;
  const auto remove_entry = [](const char* entry, const struct stat*, int type, struct FTW*) {
    const int rc = type == FTW_DP ? ::rmdir(entry) : ::unlink(entry);
    if (rc != 0 && errno != ENOENT && first_error == 0) first_error = errno;
    return 0;  // go on with the rest
  };
  if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && first_error == 0) first_error = errno;
  return first_error;
}

int remove_temporaries(const std::string& dir) {
  std::error_code ec;
  std::vector<fs::path> leftovers;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (is_temporary_name(entry.path().filename().string())) leftovers.push_back(entry.path());
  for (const auto& path : leftovers) remove_tree(path.string());
  return static_cast<int>(leftovers.size());
}

int remove_temporaries_of(const std::string& path) {
  const fs::path target = fs::path(path).lexically_normal();
  const std::string prefix = "." + target.filename().string() + ".";
  std::error_code ec;
  std::vector<fs::path> leftovers;
  for (const auto& entry : fs::directory_iterator(parent_of(target), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == prefix.size() + std::strlen(kTempTag) - 1 + 6 && name.compare(0, prefix.size(), prefix) == 0 &&
        is_temporary_name(name))
      leftovers.push_back(entry.path());
  }
  for (const auto& p : leftovers) remove_tree(p.string());
  return static_cast<int>(leftovers.size());
}

void write_output_file(const std::string& who, const std::string& path, std::string_view bytes) {
  OutputFile file(who, path);
  file.write(bytes);
  file.commit();
}

bool writes_through(const std::string& path) { return descriptor_named(path) >= 0 || is_special(path); }

void check_writable(const std::string& who, const std::string& path) {
  if (path.empty()) return;
  if (const int named = descriptor_named(path); named >= 0) {
    const int flags = ::fcntl(named, F_GETFL);
    if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY)
      io_error(who, "cannot write", path, flags < 0 ? errno : EBADF);
    return;
  }
  if (is_special(path)) {
    if (::access(path.c_str(), W_OK) != 0) io_error(who, "cannot write", path, errno);
    return;
  }
  OutputFile probe(who, path);  // a temporary next to the target, removed unwritten
}

void append_to_file(const std::string& who, const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) io_error(who, "cannot open", path, errno);
  if (!write_all(fd, bytes)) {
    const int error = errno;
    ::close(fd);
    io_error(who, "cannot write", path, error);
  }
  if (::close(fd) != 0) io_error(who, "cannot write", path, errno);
}

bool discard_directory(const std::string& path) {
  const fs::path target = fs::path(path).lexically_normal();
  std::string hidden = sibling_pattern(target, kOldTag);
  const bool renamed = ::mkdtemp(hidden.data()) != nullptr && ::rmdir(hidden.c_str()) == 0 &&
                       std::rename(target.c_str(), hidden.c_str()) == 0;
  return remove_tree(renamed ? hidden : target.string()) == 0;
}

void replace_symlink(const std::string& who, const std::string& link, const std::string& target) {
  std::string temp = sibling_pattern(fs::path(link), kTempTag);
  const int fd = ::mkstemp(temp.data());  // reserves a unique name of the temporary scheme
  if (fd < 0) io_error(who, "cannot create a temporary link to replace", link, errno);
  ::close(fd);
  ::unlink(temp.c_str());
  if (::symlink(target.c_str(), temp.c_str()) != 0) io_error(who, "cannot create a link to replace", link, errno);
  if (std::rename(temp.c_str(), link.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    io_error(who, "cannot replace the link", link, error);
  }
  sync_directory(parent_of(link));
}

std::string read_file(const std::string& who, const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw std::runtime_error(who + ": cannot read '" + path + "': is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) io_error(who, "cannot open", path, errno);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) io_error(who, "cannot read", path, errno);
  return text.str();
}

// ---- OutputFile ------------------------------------------------------------------------------

OutputFile::OutputFile(std::string who, std::string path) : who_(std::move(who)), path_(std::move(path)) {
  if (const int named = descriptor_named(path_); named >= 0) {
    // A copy of the descriptor: the same open file (its offset, its append mode), closed by us.
    through_ = true;
    fd_ = ::fcntl(named, F_DUPFD_CLOEXEC, 3);
    if (fd_ < 0) fail("cannot write", errno);
    const int flags = ::fcntl(fd_, F_GETFL);
    if ((flags & O_ACCMODE) == O_RDONLY) {
      ::close(fd_);
      fd_ = -1;
      fail("cannot write", EBADF);  // open for reading only
    }
    return;
  }
  if (is_special(path_)) {
    through_ = true;
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd_ < 0) fail("cannot open", errno);
    return;
  }
  target_ = resolve_links(who_, path_);
  const fs::path target(target_);
  if (target.filename().empty()) io_error(who_, "not a file path:", path_, EISDIR);
  temp_ = sibling_pattern(target, kTempTag);
  fd_ = ::mkstemp(temp_.data());
  if (fd_ < 0) io_error(who_, "cannot create a temporary file to write", path_, errno);
  if (::fchmod(fd_, 0644) != 0) {
    const int error = errno;
    ::close(fd_);
    ::unlink(temp_.c_str());
    fd_ = -1;
    io_error(who_, "cannot set the permissions of the file for", path_, error);
  }
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    if (!through_) ::unlink(temp_.c_str());
  }
}

std::string OutputFile::shown() const { return path_ == "-" ? "standard output" : "'" + path_ + "'"; }

void OutputFile::fail(const std::string& what, int error) const {
  throw std::runtime_error(who_ + ": " + what + (path_ == "-" ? " to " : " ") + shown() + ": " + std::strerror(error));
}

void OutputFile::write(std::string_view bytes) {
  if (fd_ < 0) throw std::logic_error(who_ + ": " + shown() + " is already committed or kept");
  size_t done = 0;
  const bool ok = write_all(fd_, bytes, &done);
  const int error = errno;
  // What a failed write got out, if anything, is counted: keep_as_partial() cuts it off.
  written_ += static_cast<int64_t>(done);
  if (!ok) fail("cannot write", error);
}

void OutputFile::flush() {
  if (fd_ < 0) throw std::logic_error(who_ + ": " + shown() + " is already committed or kept");
  if (!through_ && ::fsync(fd_) != 0) fail("cannot flush", errno);
  flushed_ = written_;
}

void OutputFile::commit() {
  flush();  // before the rename: a crash never leaves `path` naming an incomplete file
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int error = errno;
    if (!through_) ::unlink(temp_.c_str());
    fail("cannot write", error);
  }
  if (through_) return;
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp_.c_str());
    io_error(who_, "cannot rename the temporary file onto", target_, error);
  }
  sync_directory(parent_of(target_));
}

std::string OutputFile::keep_as_partial() {
  if (through_) {  // what was written is where it went
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return "";
  }
  if (fd_ < 0 || flushed_ == 0) return "";  // committed, already kept, or nothing complete to keep
  const fs::path target(target_);
  const std::string partial = (parent_of(target) / ("." + target.filename().string() + ".partial")).string();
  const int fd = fd_;
  fd_ = -1;
  // Only what flush() saw complete: a write that failed halfway leaves no cut piece behind.
  const bool cut = ::ftruncate(fd, static_cast<off_t>(flushed_)) == 0 && ::fsync(fd) == 0;
  const int cut_error = errno;
  ::close(fd);
  if (!cut || std::rename(temp_.c_str(), partial.c_str()) != 0) {
    const int error = cut ? errno : cut_error;
    ::unlink(temp_.c_str());
    io_error(who_, "cannot keep the partial output of", path_, error);
  }
  return partial;
}

// ---- AtomicDirectory -------------------------------------------------------------------------

AtomicDirectory::AtomicDirectory(std::string who, std::string path) : who_(std::move(who)) {
  const fs::path target = directory_target(who_, resolve_links(who_, directory_target(who_, path).string()));
  path_ = target.string();
  std::error_code ec;
  fs::create_directories(parent_of(target), ec);
  if (ec) io_error(who_, "cannot create the directory of", path_, ec.value());
  temp_ = sibling_pattern(target, kTempTag);
  if (::mkdtemp(temp_.data()) == nullptr) io_error(who_, "cannot create a temporary directory to write", path_, errno);
  // mkdtemp makes it private (0700); what we publish is as readable as any file we write.
  if (::chmod(temp_.c_str(), 0755) != 0) {
    const int error = errno;
    remove_tree(temp_);
    io_error(who_, "cannot set the permissions of the directory for", path_, error);
  }
}

AtomicDirectory::~AtomicDirectory() {
  if (committed_) return;
  remove_tree(temp_);
}

void AtomicDirectory::write(const std::string& name, std::string_view bytes) {
  write_new_file(who_, (fs::path(temp_) / name).string(), (fs::path(path_) / name).string(), bytes);
}

void AtomicDirectory::commit() {
  const int fd = ::open(temp_.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    io_error(who_, "cannot flush", path_, error);
  }
  ::close(fd);
  // A directory cannot be renamed over a non-empty one: the old one is set aside first.
  std::error_code ec;
  std::string old;
  if (fs::exists(path_, ec)) {
    old = sibling_pattern(path_, kOldTag);
    if (::mkdtemp(old.data()) == nullptr || ::rmdir(old.c_str()) != 0 || std::rename(path_.c_str(), old.c_str()) != 0)
      io_error(who_, "cannot set aside the previous", path_, errno);
  }
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    if (!old.empty()) std::rename(old.c_str(), path_.c_str());  // put the previous one back
    io_error(who_, "cannot rename the temporary directory onto", path_, error);
  }
  committed_ = true;
  sync_directory(parent_of(path_));
  if (!old.empty()) remove_tree(old);
}

}  // namespace detail
}  // namespace pyramidion
