// Checks of user-given paths (util/paths.h).
#include "util/paths.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pyramidion {
namespace detail {

void check_input_file(const std::string& what, const std::string& path) {
  const std::string named = what + " = '" + path + "'";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int error = errno;
    throw std::invalid_argument(named + (error == ENOENT ? ": no such file" : ": " + std::string(std::strerror(error))));
  }
  if (S_ISDIR(st.st_mode)) throw std::invalid_argument(named + ": is a directory, not a file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw std::invalid_argument(named + ": cannot be read: " + std::strerror(errno));
  ::close(fd);
}

void check_output_file(const std::string& what, const std::string& path) {
  if (path.empty() || path == "-") return;
  const std::string named = what + " = '" + path + "'";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) throw std::invalid_argument(named + ": is a directory");
  const auto slash = path.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (::stat(parent.c_str(), &st) != 0)
    throw std::invalid_argument(named + ": the directory '" + parent + "' does not exist");
  if (!S_ISDIR(st.st_mode)) throw std::invalid_argument(named + ": '" + parent + "' is not a directory");
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (a.empty() || b.empty() || ::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void check_not_an_input(const std::string& what, const std::string& output,
                        const std::vector<std::pair<std::string, std::string>>& inputs) {
  if (output.empty() || output == "-") return;
  // Writing a device or a pipe destroys nothing: /dev/stdin and /dev/stdout may be one terminal.
  struct stat st {};
  if (::stat(output.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) return;
  for (const auto& [input_what, input] : inputs)
    if (input != "-" && same_file(output, input))
      throw std::invalid_argument(what + " = '" + output + "' is the same file as " + input_what + " = '" + input +
                                  "'; writing it would destroy that input");
}

}  // namespace detail
}  // namespace pyramidion
