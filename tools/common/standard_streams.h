// The standard streams a tool was started with. A tool started with descriptor 0, 1 or 2 closed
// (`tool <&-`, or a daemon's child) would hand that number to the next file it opens: a
// checkpoint's file would then be read as standard input ("--input -"), or summaries and log lines
// written into a file that was opened for something else. So every tool's main begins with
//
//   const auto streams = pyramidion::tools::StandardStreams::secure();
//
// which opens /dev/null on each closed one before anything else is opened, remembers which were
// closed, and lets the tool refuse "-" for a stream that is not there (bad input, status 2).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <stdexcept>
#include <string>

#include "util/output_file.h"

namespace pyramidion {
namespace tools {

/// Writes `text` to standard output (after whatever std::cout holds), through the library's one
/// writer (util/output_file.h, "-"): std::runtime_error "<what>: cannot write to standard output:
/// <the OS reason>" when it fails (a full disk behind `>`, /dev/full), where std::cout would fail
/// silently and the tool would say "done". `what` names what is printed, e.g. "the report".
inline void print(const std::string& what, const std::string& text) {
  std::cout.flush();
  detail::write_output_file(what, "-", text);
}

class StandardStreams {
 public:
  /// Opens /dev/null on every one of descriptors 0, 1, 2 that is closed, and says which were.
  static StandardStreams secure() {
    StandardStreams s;
    for (int fd = 0; fd < 3; ++fd) {
      if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
      s.closed_[fd] = true;
      // The lowest free number is `fd` itself: the lower ones are open (or were just opened).
      const int opened = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
      if (opened >= 0 && opened != fd) {
        ::dup2(opened, fd);
        ::close(opened);
      }
    }
    return s;
  }

  bool input_closed() const { return closed_[0]; }
  bool output_closed() const { return closed_[1]; }

  /// Throws std::invalid_argument when `path` ("-" or /dev/stdin) names standard input and the
  /// tool was started without it.
  void require_input(const std::string& what, const std::string& path) const {
    if (closed_[0] && (path == "-" || path == "/dev/stdin" || path == "/dev/fd/0" || path == "/proc/self/fd/0"))
      throw std::invalid_argument(what + " = '" + path +
                                  "' is standard input, which is closed (the tool was started with <&-); "
                                  "give a file, or a pipe on standard input");
  }
  /// The same for standard output ("-", /dev/stdout).
  void require_output(const std::string& what, const std::string& path) const {
    if (closed_[1] && (path == "-" || path == "/dev/stdout" || path == "/dev/fd/1" || path == "/proc/self/fd/1"))
      throw std::invalid_argument(what + " = '" + path +
                                  "' is standard output, which is closed (the tool was started with >&-); "
                                  "give a file");
  }

 private:
  bool closed_[3] = {false, false, false};
};

}  // namespace tools
}  // namespace pyramidion
