// Test-only helpers shared by the whole suite: exception messages, text files, child processes.
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

// The command-line tools, for the tests that run them; absent in a build without them.
#ifndef PYRAMIDION_IMPORT_BIN
#define PYRAMIDION_IMPORT_BIN ""
#endif
#ifndef PYRAMIDION_TRAIN_BIN
#define PYRAMIDION_TRAIN_BIN ""
#define PYRAMIDION_SUMMARIZE_BIN ""
#define PYRAMIDION_PREPROCESS_BIN ""
#define PYRAMIDION_EVALUATE_BIN ""
#define PYRAMIDION_BENCH_BIN ""
#endif
/// First statement of a test that runs a tool: skips it, saying why, in a build without the tools.
#define PYRAMIDION_REQUIRE_TOOLS()                                                             \
  do {                                                                                         \
    if (std::string(PYRAMIDION_TRAIN_BIN).empty())                                             \
      GTEST_SKIP() << "pyramidion was built without its tools (PYRAMIDION_BUILD_TOOLS=OFF)";   \
  } while (0)

namespace pyramidion_test {

namespace fs = std::filesystem;

/// The message of the exception of type E that f throws; a test failure (and "") if it throws
/// nothing or another type.
template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw an exception of another type: " << e.what();
    return {};
  }
  ADD_FAILURE() << "threw nothing";
  return {};
}

/// The message of the exception that f() throws when it is an Expected; "(another exception) ..."
/// for any other exception, "(no exception)" when none is thrown (for tests that expect none).
template <typename Expected = std::exception, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    if (dynamic_cast<const Expected*>(&e) != nullptr) return e.what();
    return std::string("(another exception) ") + e.what();
  }
  return "(no exception)";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "'" << (needle) << "' not in: " << (haystack)

// This process's environment ("KEY=VALUE" entries) without the variables that `drop` names,
// followed by `extra`.
inline std::vector<std::string> environment_with(const std::vector<std::string>& extra,
                                                 const std::function<bool(const std::string&)>& drop = {}) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = drop && drop(name);
    for (const auto& x : extra) replaced = replaced || name == x.substr(0, x.find('='));
    if (!replaced) env.push_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// Starts `program` with `args` and exactly the `environment` given; stdout and stderr to `log`,
// stdin from `input` (when not empty). Returns the pid; throws std::runtime_error when the
// program cannot be started.
inline pid_t spawn_process(const std::string& program, const std::vector<std::string>& args,
                           std::vector<std::string> environment, const fs::path& log, const fs::path& input = {}) {
  std::vector<std::string> argv_s = {program};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  if (!input.empty()) posix_spawn_file_actions_addopen(&actions, 0, input.c_str(), O_RDONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + program + ": " + std::strerror(rc));
  return pid;
}

// Waits for `pid`: its exit status, 128 + signal when killed. Fails the test (and kills the
// child) after `deadline`.
inline int wait_process(pid_t pid, const fs::path& log, std::chrono::seconds deadline = std::chrono::seconds(300)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "the tool did not finish within " << deadline.count() << " s; log " << log;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs `program` with this environment plus `extra` ("KEY=VALUE") and waits for it (above).
inline int run_process(const std::string& program, const std::vector<std::string>& args,
                       const std::vector<std::string>& extra, const fs::path& log, const fs::path& input = {}) {
  return wait_process(spawn_process(program, args, environment_with(extra), log, input), log);
}

/// Runs `write` in a forked child, which must end with die(): the child then stops in the middle of
/// the write with no destructor or cleanup run, as a SIGKILL would leave things.
[[noreturn]] inline void die() { std::_Exit(0); }
inline void killed_while(const std::function<void()>& write) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    write();
    std::_Exit(1);  // `write` did not die in the middle
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child did not reach die()";
}

/// While it lives, this process's writes beyond `bytes` in a file fail with EFBIG ("File too
/// large"): a full disk, for this process only.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    previous_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, previous_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  sighandler_t previous_ = SIG_DFL;
};

/// Everything that arrives at the read end `fd` of a pipe until every writer has closed it.
inline std::string read_until_closed(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

/// The whole file ("" when it cannot be read).
inline std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace pyramidion_test
