// Shared by the libFuzzer targets of tests/fuzz: the input as text, a scratch directory for the
// readers that take a path, and the one way a target reports a broken invariant.
//
// A target calls the library the way a tool does. Bad input must end in an exception that the
// library documents (std::invalid_argument, std::runtime_error, c10::Error from LibTorch's
// readers, all std::exception): the target catches those. Anything else is a finding: a sanitizer
// report, a signal, an uncaught exception of another type, an exceeded -timeout or -rss_limit_mb,
// or fail() below (a documented property that did not hold, e.g. a config that loads but does
// not reload from its own dump).
#pragma once

#include <c10/util/Exception.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "util/output_file.h"  // remove_tree (not std::filesystem::remove_all: scripts/check_banned_calls.py)

namespace pyramidion_fuzz {

inline std::string text_of(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

/// A directory of this process, made once (mkdtemp under $TMPDIR or /tmp) and removed at exit:
/// every iteration rewrites the same files in it.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/pyramidion-fuzz-XXXXXX";
    if (!mkdtemp(pattern.data())) {
      std::perror("pyramidion fuzz: mkdtemp");
      std::abort();
    }
    static const std::string removed_at_exit = pattern;
    std::atexit([] { pyramidion::detail::remove_tree(removed_at_exit); });
    return pattern;
  }();
  return dir;
}

/// Writes `bytes` to `path` (truncating); aborts when it cannot (the environment, not the input).
inline void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "pyramidion fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

/// A documented property did not hold for this input: a finding (libFuzzer saves the input).
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "pyramidion fuzz: property violated: %s\n", what.c_str());
  std::abort();
}

/// Runs `f`; the exceptions that bad input may raise are swallowed and reported as false.
template <typename F>
bool accepts(F&& f) {
  try {
    f();
    return true;
  } catch (const c10::Error&) {  // LibTorch's readers (a std::exception too; named for clarity)
    return false;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace pyramidion_fuzz
