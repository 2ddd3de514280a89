// The exit status of every pyramidion tool, one contract (docs/reliability.md):
//   0  done;
//   1  the environment failed the work: a write that failed (a full disk, permissions), a device
//      that is absent, memory; the message names the path and the OS reason;
//   2  bad input, found before any work where it can be: flags CLI11 rejects (unknown, repeated
//      where one is allowed, a value of the wrong type or range), invalid values, input files that
//      are missing, not files or malformed, an output that is one of the inputs;
//   3  done, but some records were bad and skipped (pyramidion-summarize; each one was reported
//      with its file and line).
// The library says which is which by the exception's type: std::invalid_argument is bad input,
// anything else an error. A tool's main is
//
//   if (const auto status = pyramidion::tools::parse(app, argc, argv)) return *status;
//   return pyramidion::tools::run(kName, [&] { ...; return pyramidion::tools::kDone; });
#pragma once

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <charconv>
#include <cstdint>
#include <exception>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>

namespace pyramidion {
namespace tools {

enum ExitStatus : int { kDone = 0, kError = 1, kBadInput = 2, kBadRecords = 3 };

/// Parses the command line. nullopt: go on; otherwise the status to exit with (0 after --help,
/// kBadInput after a parse error, which CLI11 has printed).
inline std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kDone : kBadInput;
  }
  return std::nullopt;
}

/// A flag's value must be a whole decimal int64: CLI11 (2.1) reads "99999999999999999999" as
/// 9223372036854775807 without a word, so that the error (or worse, the run) is about a number the
/// user never gave. Use as `->check(tools::int64_text())` on every integer flag.
inline CLI::Validator int64_text() {
  return CLI::Validator(
      [](std::string& text) {
        int64_t value = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, value);
        if (!text.empty() && ec == std::errc() && ptr == end) return std::string();
        return ec == std::errc::result_out_of_range ? text + " is out of range (an integer must be within +-" +
                                                          std::to_string(INT64_MAX) + ")"
                                                    : text + " is not an integer";
      },
      "INT");
}

/// The message of `e` on one line, without the backtrace that a LibTorch error carries.
inline std::string one_line(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string message = c10_error ? c10_error->what_without_backtrace() : e.what();
  for (auto& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  return message;
}

/// Runs the tool's work: its status, or kBadInput after std::invalid_argument and kError after any
/// other exception, with the message on stderr as "<tool>: bad input: ..." or "<tool>: error: ...".
template <typename Body>
int run(const char* tool, Body&& body) {
  try {
    return body();
  } catch (const std::invalid_argument& e) {
    std::cerr << tool << ": bad input: " << one_line(e) << std::endl;
    return kBadInput;
  } catch (const std::exception& e) {
    std::cerr << tool << ": error: " << one_line(e) << std::endl;
    return kError;
  }
}

}  // namespace tools
}  // namespace pyramidion
