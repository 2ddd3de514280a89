// Test-only helpers shared by the training and summarization tests: scratch directories, slices of
// the bundled ACLSum data, and a small, fast training config.
#pragma once

#include <pyramidion/train.h>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace pyramidion_test {

namespace fs = std::filesystem;

inline const std::string kSource = PYRAMIDION_SOURCE_DIR;

inline fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("pyramidion_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The first `n` records of the converted aclsum split (scripts/get_data.sh), as a file in `dir`.
inline std::string data_slice(const fs::path& dir, const std::string& split, int n) {
  const fs::path full = fs::path(kSource) / "data" / "aclsum" / (split + ".jsonl");
  std::ifstream in(full);
  if (!in) ADD_FAILURE() << full << " is missing: run scripts/get_data.sh (scripts/test.sh does)";
  const fs::path out = dir / (split + ".jsonl");
  std::ofstream o(out);
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i) o << line << '\n';
  return out.string();
}

// A small, fast run: the tiny DeepPyramidion (sources cut to 64 tokens, summaries to 31), a
// 300-token vocabulary, 6 examples per micro-batch.
inline pyramidion::TrainConfig tiny_config(const fs::path& dir, int docs = 12) {
  pyramidion::TrainConfig c;
  c.model = kSource + "/configs/tiny-deep-pyramidion.json";
  c.train = data_slice(dir, "train", docs);
  c.valid = data_slice(dir, "valid", 4);
  c.out = (dir / "out").string();
  c.vocab_size = 300;
  c.max_tokens = 6 * 96;
  c.max_steps = 8;
  c.warmup_steps = 2;
  c.lr = 3e-3;
  c.log_every = 2;
  c.validate_every = 4;
  c.checkpoint_every = 4;
  c.threads = 1;
  return c;
}

// Starts `program` with `args` and extra environment variables ("KEY=VALUE"); stdout and stderr to
// `log`, stdin from `input` (when not empty). Returns the pid (-1 on failure, reported).
inline pid_t spawn_process(const std::string& program, const std::vector<std::string>& args,
                           const std::vector<std::string>& env, const fs::path& log, const fs::path& input = {}) {
  std::vector<std::string> argv_s = {program};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    const std::string v = *e;
    bool overridden = false;
    for (const auto& x : env) overridden |= v.substr(0, v.find('=')) == x.substr(0, x.find('='));
    if (!overridden) env_s.push_back(v);
  }
  env_s.insert(env_s.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  if (!input.empty()) posix_spawn_file_actions_addopen(&actions, 0, input.c_str(), O_RDONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start " << argv[0] << ": " << std::strerror(rc);
    return -1;
  }
  return pid;
}

// Waits for `pid`: its exit status, 128 + signal when killed. Fails the test (and kills the
// child) after `deadline`.
inline int wait_process(pid_t pid, const fs::path& log, std::chrono::seconds deadline = std::chrono::seconds(300)) {
  if (pid < 0) return -1;
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

inline int run_process(const std::string& program, const std::vector<std::string>& args,
                       const std::vector<std::string>& env, const fs::path& log, const fs::path& input = {}) {
  return wait_process(spawn_process(program, args, env, log, input), log);
}

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace pyramidion_test
