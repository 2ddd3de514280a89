// The exit status contract of every tool (tools/common/exit_status.h, docs/reliability.md), run
// as a user runs the tools: 0 done, 1 the environment failed the work, 2 bad input (before any
// work, with the offending value named), 3 done with bad records. Each case also checks that an
// input is never destroyed and that the message names the path or value.
#include "support/summarize_fixtures.h"
#include "support/test_support.h"
#include "support/train_fixtures.h"

#include <gtest/gtest.h>

#include <torch/cuda.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using pyramidion_test::fresh_dir;
using pyramidion_test::read_text;

struct ToolRun {
  std::string command;  // the tool and its arguments, for the failure messages
  int status;
  std::string log;
};

ToolRun run(const std::string& tool, const std::vector<std::string>& args, const fs::path& dir,
            const fs::path& input = {}) {
  const auto log = dir / "tool.log";
  std::string command = fs::path(tool).filename().string();
  for (const auto& a : args) command += " " + a;
  const int status = pyramidion_test::run_process(tool, args, {}, log, input);
  return {command, status, read_text(log)};
}

// The run ended with `status` and said `needle` (a function, not a macro: the arguments hold
// braced lists).
void expect_run(const ToolRun& r, int status, const std::string& needle) {
  EXPECT_EQ(r.status, status) << r.command << "\n" << r.log;
  EXPECT_NE(r.log.find(needle), std::string::npos) << r.command << "\n'" << needle << "' not in: " << r.log;
}

// Starts `tool` with the standard streams that `streams` sets up (posix_spawn file actions).
pid_t spawn_with(const std::string& tool, const std::vector<std::string>& args,
                 const std::function<void(posix_spawn_file_actions_t*)>& streams) {
  std::vector<std::string> argv_s = {tool};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  streams(&actions);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, tool.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) ADD_FAILURE() << "cannot start " << tool << ": " << std::strerror(rc);
  return rc == 0 ? pid : -1;
}

// Runs `tool` with standard input closed (stdin_path "") or from a file, standard output to
// `stdout_path` (e.g. /dev/full) and standard error to dir/tool.log.
ToolRun run_with_streams(const std::string& tool, const std::vector<std::string>& args, const fs::path& dir,
                         const std::string& stdin_path, const std::string& stdout_path) {
  const auto log = dir / "tool.log";
  const pid_t pid = spawn_with(tool, args, [&](posix_spawn_file_actions_t* actions) {
    if (stdin_path.empty()) {
      posix_spawn_file_actions_addclose(actions, 0);
    } else {
      posix_spawn_file_actions_addopen(actions, 0, stdin_path.c_str(), O_RDONLY, 0);
    }
    posix_spawn_file_actions_addopen(actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  });
  const int status = pid > 0 ? pyramidion_test::wait_process(pid, log) : -1;
  std::string command = fs::path(tool).filename().string();
  for (const auto& a : args) command += " " + a;
  return {command, status, read_text(log)};
}

// A reader of the named pipe `path` on a thread of its own: text() is what came through.
class PipeReader {
 public:
  explicit PipeReader(const fs::path& path) : path_(path) {
    EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0);
    thread_ = std::thread([this] {
      const int fd = ::open(path_.c_str(), O_RDONLY);
      text_ = pyramidion_test::read_until_closed(fd);
      ::close(fd);
    });
  }
  ~PipeReader() {
    if (thread_.joinable()) {  // the tool never opened it: open it ourselves so that the reader ends
      const int fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
      thread_.join();
    }
  }
  const std::string& text() {
    if (thread_.joinable()) thread_.join();
    return text_;
  }

 private:
  fs::path path_;
  std::string text_;
  std::thread thread_;
};

bool is_named_pipe(const fs::path& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

const std::vector<std::string>& all_tools() {
  static const std::vector<std::string> tools = {PYRAMIDION_TRAIN_BIN, PYRAMIDION_SUMMARIZE_BIN,
                                                 PYRAMIDION_EVALUATE_BIN, PYRAMIDION_PREPROCESS_BIN,
                                                 PYRAMIDION_IMPORT_BIN};
  return tools;
}

// CLI11's own errors (an unknown flag, a repeated one, a value of the wrong type or range) used
// to exit 105 to 114 in some tools; the contract says 2, and --help is 0.
TEST(ExitStatus, EveryToolGivesTwoForFlagsItRejectsAndZeroForHelp) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_flags");
  for (const auto& tool : all_tools()) {
    SCOPED_TRACE(tool);
    expect_run(run(tool, {"--no-such-flag"}, dir), 2, "");  // (summarize first says what is required)
    EXPECT_EQ(run(tool, {"--help"}, dir).status, 0);
  }
  const std::string bench = PYRAMIDION_BENCH_BIN;
  expect_run(run(bench, {"topk", "--no-such-flag"}, dir), 2, "--no-such-flag");
  expect_run(run(bench, {}, dir), 2, "subcommand");
  expect_run(run(bench, {"topk", "--threads", "100000"}, dir), 2, "--threads = 100000 is out of range");
  expect_run(run(bench, {"topk", "--threads", "x"}, dir), 2, "--threads");
  EXPECT_EQ(run(bench, {"--help"}, dir).status, 0);
  const std::string summarize = PYRAMIDION_SUMMARIZE_BIN;
  const auto ckpt = pyramidion_test::tiny_checkpoint();
  const auto in = dir / "in.jsonl";
  std::ofstream(in) << "{\"id\": \"a\", \"document\": \"some text\"}\n";
  const std::vector<std::string> base = {"--checkpoint", ckpt, "--input", in.string(), "--output", (dir / "o.jsonl").string()};
  for (const auto& extra : std::vector<std::vector<std::string>>{
           {"--chunk", "0"}, {"--format", "xml"}, {"--output", "again.jsonl"}, {"--beam", "two"},
           {"--threads", "2147483648"}, {"--quantize", "int4"}, {"--device", "tpu"}, {"--no-such-flag", "x"}}) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    SCOPED_TRACE(extra.front() + " " + extra.back());
    EXPECT_EQ(run(summarize, args, dir).status, 2);
  }
  EXPECT_FALSE(fs::exists(dir / "o.jsonl"));
}

TEST(ExitStatus, TrainGivesTwoForInputsThatAreNotThere) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_train");
  const auto c = pyramidion_test::tiny_config(dir);
  const std::string train = PYRAMIDION_TRAIN_BIN;
  const std::vector<std::string> base = {"--model", c.model, "--max-steps", "1", "--set", "vocab_size=300",
                                         "max_tokens=" + std::to_string(c.max_tokens)};
  const auto with = [&](std::vector<std::string> extra) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return run(train, args, dir);
  };
  expect_run(with({"--train", (dir / "nope.jsonl").string(), "--out", (dir / "o").string()}), 2,
             "TrainConfig.train = '" + (dir / "nope.jsonl").string() + "': no such file");
  expect_run(with({"--train", dir.string(), "--out", (dir / "o").string()}), 2, "is a directory, not a file");
  std::ofstream(dir / "a_file") << "x";
  expect_run(with({"--train", c.train, "--out", (dir / "a_file").string()}), 2, "exists and is not a directory");
  std::ofstream(dir / "empty.jsonl").flush();
  expect_run(with({"--train", (dir / "empty.jsonl").string(), "--out", (dir / "o").string()}), 2,
             (dir / "empty.jsonl").string() + " holds no usable record");
  expect_run(with({"--config", (dir / "nope.json").string()}), 2, "nope.json");
}

// An output that is an input (by device and inode: a link or another spelling counts) is refused
// and the input is left as it was; pyramidion-summarize used to replace its input with summaries
// and pyramidion-evaluate its predictions with scores, both with status 0.
TEST(ExitStatus, AnOutputThatIsAnInputIsRefusedAndTheInputKept) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_same_file");
  const std::string summarize = PYRAMIDION_SUMMARIZE_BIN, evaluate = PYRAMIDION_EVALUATE_BIN;
  const auto ckpt = pyramidion_test::tiny_checkpoint();
  const auto in = (dir / "in.jsonl").string();
  const std::string content = "{\"id\": \"a\", \"document\": \"some text\", \"summary\": \"text\"}\n";
  std::ofstream(in) << content;
  fs::create_symlink(in, dir / "link.jsonl");
  expect_run(run(summarize, {"--checkpoint", ckpt, "--input", in, "--output", in}, dir), 2,
             "is the same file as SummarizeFileOptions.input");
  expect_run(run(summarize, {"--checkpoint", ckpt, "--input", (dir / "link.jsonl").string(), "--output",
                             (dir / "." / "in.jsonl").string()}, dir),
             2, "writing it would destroy that input");
  expect_run(run(summarize, {"--checkpoint", ckpt, "--input", in, "--output", (dir / "o.jsonl").string(),
                             "--highlight", in}, dir),
             2, "SummarizeFileOptions.highlight");
  EXPECT_EQ(read_text(in), content);

  const auto predictions = (dir / "p.jsonl").string();
  const std::string summaries = "{\"id\": \"a\", \"summary\": \"text\"}\n";
  std::ofstream(predictions) << summaries;
  expect_run(run(evaluate, {"--predictions", predictions, "--references", in, "--per-document", predictions}, dir), 2,
             "EvaluateOptions.per_document = '" + predictions + "' is the same file as EvaluateOptions.predictions");
  expect_run(run(evaluate, {"--predictions", predictions, "--references", in, "--json", (dir / "link.jsonl").string()}, dir),
             2, "is the same file as EvaluateOptions.references");
  EXPECT_EQ(read_text(predictions), summaries);
  EXPECT_EQ(read_text(in), content);
  expect_run(run(evaluate, {"--predictions", predictions, "--references", in, "--per-document", (dir / "d.jsonl").string()}, dir),
             0, "ROUGE");
  expect_run(run(evaluate, {"--predictions", predictions, "--references", in, "--bootstrap", "1000000000000"}, dir), 2,
             "bootstrap_samples = 1000000000000 must be in [0, 1000000]");
  expect_run(run(evaluate, {"--predictions", (dir / "nope").string(), "--references", in}, dir), 2, "no such file");
}

// pyramidion-summarize's inputs and outputs: each mistake is named, with status 2, before any
// work; the checkpoint's own files are named when they are wrong.
TEST(ExitStatus, SummarizeNamesWhatIsWrongWithItsInputs) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_summarize");
  const std::string summarize = PYRAMIDION_SUMMARIZE_BIN;
  const auto ckpt = pyramidion_test::tiny_checkpoint();
  const auto in = (dir / "in.jsonl").string(), out = (dir / "o.jsonl").string();
  std::ofstream(in) << "{\"id\": \"a\", \"document\": \"some text\"}\n";
  expect_run(run(summarize, {"--checkpoint", (dir / "nock").string(), "--input", in, "--output", out}, dir), 2,
             "missing " + (dir / "nock").string() + "/");
  expect_run(run(summarize, {"--checkpoint", ckpt, "--input", (dir / "nope.jsonl").string(), "--output", out}, dir), 2,
             "SummarizeFileOptions.input = '" + (dir / "nope.jsonl").string() + "': no such file");
  expect_run(run(summarize, {"--checkpoint", ckpt, "--input", dir.string(), "--output", out}, dir), 2,
             "is a directory, not a file");
  expect_run(run(summarize, {"--checkpoint", ckpt, "--input", in, "--output", (dir / "nodir" / "o.jsonl").string()}, dir),
             2, "the directory '" + (dir / "nodir").string() + "' does not exist");
  // Plain text on standard input, read as JSON lines: one error per line, then the hint.
  std::ofstream(dir / "text.txt") << "hello world\nthis is text\n";
  expect_run(run(summarize, {"--checkpoint", ckpt, "--input", "-", "--output", out}, dir, dir / "text.txt"), 2,
             "if it is plain text, pass --format text");
  // A text file of blank lines is no document (it was summarized as 3 newline tokens).
  std::ofstream(dir / "blank.txt") << "\n\n  \n";
  expect_run(run(summarize, {"--checkpoint", ckpt, "--input", (dir / "blank.txt").string(), "--format", "text",
                             "--output", out}, dir),
             2, "has no text (5 bytes of whitespace)");
  EXPECT_FALSE(fs::exists(out));
  // A bad value in the checkpoint's generation.json names the file.
  const auto copy = dir / "ckpt";
  fs::copy(ckpt, copy, fs::copy_options::recursive);
  std::ofstream(copy / "generation.json") << "{\"beam_size\": -3}\n";
  expect_run(run(summarize, {"--checkpoint", copy.string(), "--input", in, "--output", out}, dir), 2,
             "generation.json ('" + (copy / "generation.json").string() + "'): generate: GenerateOptions.beam_size = -3");
  expect_run(run(summarize, {"--checkpoint", copy.string(), "--input", in, "--output", out, "--beam", "2"}, dir), 2,
             "beam_size = -3");
}

// The environment failing the work is status 1, with the OS reason, and what was written before
// is kept whole: a full disk while summarizing (RLIMIT_FSIZE, inherited by the tool) leaves only
// complete lines in the .partial file the message names.
TEST(ExitStatus, AFullDiskWhileSummarizingIsOneWithCompleteLinesKept) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_disk_full");
  const std::string summarize = PYRAMIDION_SUMMARIZE_BIN;
  const auto ckpt = pyramidion_test::tiny_checkpoint();
  const auto in = dir / "in.jsonl";
  {
    std::ofstream f(in);
    for (int i = 0; i < 40; ++i) f << "{\"id\": \"doc" << i << "\", \"document\": \"some text number " << i << "\"}\n";
  }
  ToolRun r;
  {
    const pyramidion_test::FileSizeLimit limit(3000);  // inherited by the child
    r = run(summarize, {"--checkpoint", ckpt, "--input", in.string(), "--output", (dir / "o.jsonl").string(), "--chunk",
                        "5", "--max-length", "8"}, dir);
  }
  EXPECT_EQ(r.status, 1) << r.log;
  EXPECT_NE(r.log.find("File too large"), std::string::npos) << r.log;
  const auto partial = dir / ".o.jsonl.partial";
  ASSERT_TRUE(fs::exists(partial)) << r.log;
  const auto text = read_text(partial);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n') << "no cut line";
  const auto lines = std::count(text.begin(), text.end(), '\n');
  EXPECT_NE(r.log.find("the " + std::to_string(lines) + " summaries written before the failure are in"), std::string::npos)
      << r.log;
  EXPECT_FALSE(fs::exists(dir / "o.jsonl"));
  if (!torch::cuda::is_available())
    expect_run(run(summarize, {"--checkpoint", ckpt, "--input", in.string(), "--output", (dir / "o.jsonl").string(),
                               "--device", "cuda"}, dir),
               1, "no CUDA device is available");
}

// Outputs that are not regular files (issue 24, item 1): a named pipe, a link, a descriptor
// (/dev/fd/N, what `--output >(gzip > x.gz)` passes) and, for root, a device node are written
// through. They used to be replaced by a regular file with status 0: nothing reached the pipe or
// the device, the link's target kept its old content, and /dev/fd/N failed.
TEST(ExitStatus, OutputsThatAreNotRegularFilesAreWrittenThrough) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_special_outputs");
  const std::string summarize = PYRAMIDION_SUMMARIZE_BIN, evaluate = PYRAMIDION_EVALUATE_BIN;
  const auto ckpt = pyramidion_test::tiny_checkpoint();
  const auto in = (dir / "in.jsonl").string();
  std::ofstream(in) << "{\"id\": \"a\", \"document\": \"some text\", \"summary\": \"text\"}\n"
                       "{\"id\": \"b\", \"document\": \"more text here\", \"summary\": \"here\"}\n";
  const std::vector<std::string> search = {"--max-length", "4", "--beam", "1"};
  const auto summarize_to = [&](const std::string& output, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--checkpoint", ckpt, "--input", in, "--output", output};
    args.insert(args.end(), search.begin(), search.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return run(summarize, args, dir);
  };
  {  // a named pipe, and the highlight page into another one
    PipeReader summaries(dir / "summaries.pipe"), page(dir / "page.pipe");
    expect_run(summarize_to((dir / "summaries.pipe").string(), {"--highlight", (dir / "page.pipe").string()}), 0,
               "done: 2 documents");
    EXPECT_EQ(std::count(summaries.text().begin(), summaries.text().end(), '\n'), 2) << summaries.text();
    EXPECT_NE(summaries.text().find("\"id\":\"b\""), std::string::npos) << summaries.text();
    EXPECT_NE(page.text().find("<!DOCTYPE html>"), std::string::npos);
    EXPECT_TRUE(is_named_pipe(dir / "summaries.pipe")) << "the pipe was replaced by a file";
    EXPECT_TRUE(is_named_pipe(dir / "page.pipe"));
  }
  {  // a link: the file it leads to gets the output, the link stays
    std::ofstream(dir / "real.jsonl") << "old\n";
    fs::create_symlink("real.jsonl", dir / "link.jsonl");
    expect_run(summarize_to((dir / "link.jsonl").string()), 0, "done: 2 documents");
    EXPECT_TRUE(fs::is_symlink(dir / "link.jsonl"));
    EXPECT_NE(read_text(dir / "real.jsonl").find("\"id\":\"a\""), std::string::npos);
  }
  {  // pyramidion-evaluate's --json and --per-document into pipes
    const auto predictions = (dir / "p.jsonl").string();
    std::ofstream(predictions) << "{\"id\": \"a\", \"summary\": \"text\"}\n{\"id\": \"b\", \"summary\": \"here\"}\n";
    PipeReader report(dir / "report.pipe"), per_document(dir / "docs.pipe");
    expect_run(run(evaluate, {"--predictions", predictions, "--references", in, "--json",
                              (dir / "report.pipe").string(), "--per-document", (dir / "docs.pipe").string()},
                   dir),
               0, "ROUGE");
    EXPECT_NE(report.text().find("\"rouge1\""), std::string::npos) << report.text();
    EXPECT_EQ(std::count(per_document.text().begin(), per_document.text().end(), '\n'), 2) << per_document.text();
    EXPECT_TRUE(is_named_pipe(dir / "report.pipe"));
  }
  {  // /dev/fd/N: a pipe on descriptor 3 of the tool, as a shell's process substitution gives
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::string received;
    std::thread reader([&] { received = pyramidion_test::read_until_closed(fds[0]); });
    std::vector<std::string> args = {"--checkpoint", ckpt, "--input", in, "--output", "/dev/fd/3"};
    args.insert(args.end(), search.begin(), search.end());
    const pid_t pid = spawn_with(summarize, args, [&](posix_spawn_file_actions_t* actions) {
      posix_spawn_file_actions_adddup2(actions, fds[1], 3);
      posix_spawn_file_actions_addopen(actions, 2, (dir / "fd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    });
    ASSERT_GT(pid, 0);
    ::close(fds[1]);
    EXPECT_EQ(pyramidion_test::wait_process(pid, dir / "fd.log"), 0) << read_text(dir / "fd.log");
    reader.join();
    ::close(fds[0]);
    EXPECT_EQ(std::count(received.begin(), received.end(), '\n'), 2) << received << read_text(dir / "fd.log");
  }
  if (::geteuid() == 0) {  // root: a device node (a copy of /dev/null's) must stay a device
    const auto null = dir / "null";
    ASSERT_EQ(::mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    expect_run(summarize_to(null.string()), 0, "done: 2 documents");
    struct stat st {};
    ASSERT_EQ(::lstat(null.c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << "the device node was replaced by a regular file";
  }
}

// A failed write to standard output said "cannot write to standard output" without the OS reason
// (pyramidion-summarize), or went unnoticed with status 0 (pyramidion-evaluate's report).
TEST(ExitStatus, AFailedWriteToStandardOutputGivesTheOsReason) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_stdout_full");
  const auto ckpt = pyramidion_test::tiny_checkpoint();
  const auto in = (dir / "in.jsonl").string();
  std::ofstream(in) << "{\"id\": \"a\", \"document\": \"some text\", \"summary\": \"text\"}\n";
  auto r = run_with_streams(PYRAMIDION_SUMMARIZE_BIN,
                            {"--checkpoint", ckpt, "--input", in, "--output", "-", "--max-length", "4"}, dir, "/dev/null",
                            "/dev/full");
  expect_run(r, 1, "cannot write to standard output: No space left on device");
  const auto predictions = (dir / "p.jsonl").string();
  std::ofstream(predictions) << "{\"id\": \"a\", \"summary\": \"text\"}\n";
  r = run_with_streams(PYRAMIDION_EVALUATE_BIN, {"--predictions", predictions, "--references", in}, dir, "/dev/null",
                       "/dev/full");
  expect_run(r, 1, "cannot write to standard output: No space left on device");
}

// Standard input closed (`<&-`): "--input -" used to read whatever file then held descriptor 0 (the
// checkpoint's) and report "done: 0 documents" with status 0.
TEST(ExitStatus, StandardInputThatIsClosedIsRefused) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_stdin_closed");
  const auto ckpt = pyramidion_test::tiny_checkpoint();
  const auto out = (dir / "o.jsonl").string();
  auto r = run_with_streams(PYRAMIDION_SUMMARIZE_BIN, {"--checkpoint", ckpt, "--input", "-", "--output", out}, dir, "",
                            (dir / "stdout").string());
  expect_run(r, 2, "--input = '-' is standard input, which is closed");
  EXPECT_FALSE(fs::exists(out));
  std::ofstream(dir / "r.jsonl") << "{\"id\": \"a\", \"summary\": \"text\"}\n";
  r = run_with_streams(PYRAMIDION_EVALUATE_BIN, {"--predictions", "-", "--references", (dir / "r.jsonl").string()}, dir,
                       "", (dir / "stdout").string());
  expect_run(r, 2, "--predictions = '-' is standard input, which is closed");
}

// The search settings are bounded before any work (status 2, naming the value and the bound), on
// the command line and in generation.json. A beam of 2147483647 or 3000000000 aborted (SIGABRT,
// "tried to allocate 549755813632 bytes"), 1000000 after 9.4 GB, 99999999999999999999 overflowed.
TEST(ExitStatus, SearchSettingsOutOfBoundsAreRefusedBeforeAnyWork) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_search_bounds");
  const std::string summarize = PYRAMIDION_SUMMARIZE_BIN;
  const auto ckpt = pyramidion_test::tiny_checkpoint();
  const auto in = (dir / "in.jsonl").string(), out = (dir / "o.jsonl").string();
  std::ofstream(in) << "{\"id\": \"a\", \"document\": \"some text\"}\n";
  const std::vector<std::string> base = {"--checkpoint", ckpt, "--input", in, "--output", out};
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--beam", "2147483647"}, "beam_size = 2147483647 must be in [1, 1024]"},
      {{"--beam", "3000000000"}, "beam_size = 3000000000 must be in [1, 1024]"},
      {{"--beam", "1000000"}, "beam_size = 1000000 must be in [1, 1024]"},
      {{"--beam", "99999999999999999999"}, "--beam: 99999999999999999999 is out of range"},
      {{"--max-tokens", "99999999999999999999"}, "--max-tokens: 99999999999999999999 is out of range"},
      {{"--max-tokens", "9000000000000"}, "max_tokens = 9000000000000 must be in [1, 4294967296]"},
      {{"--no-repeat-ngram", "99999999999"}, "no_repeat_ngram_size = 99999999999 must be in [0, max_target_length = "},
  };
  for (const auto& [extra, needle] : cases) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    SCOPED_TRACE(extra.back());
    const auto started = std::chrono::steady_clock::now();
    expect_run(run(summarize, args, dir), 2, needle);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 60.0);
  }
  EXPECT_FALSE(fs::exists(out));
  const auto copy = dir / "ckpt";
  fs::copy(ckpt, copy, fs::copy_options::recursive);
  std::ofstream(copy / "generation.json") << "{\"beam_size\": 5000}\n";
  expect_run(run(summarize, {"--checkpoint", copy.string(), "--input", in, "--output", out}, dir), 2,
             "generation.json ('" + (copy / "generation.json").string() + "'): generate: GenerateOptions.beam_size = 5000");
}

// A malformed record in the training data is bad input (status 2, file and line named) in
// pyramidion-train and pyramidion-preprocess, as in the other tools; it was status 1.
TEST(ExitStatus, AMalformedTrainingRecordIsBadInputInEveryTool) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_bad_record");
  auto c = pyramidion_test::tiny_config(dir);
  const auto bad = dir / "bad.jsonl";
  {
    std::ofstream f(bad);
    f << read_text(c.train);
    f << "{\"id\": \"broken\", \"document\": \n";  // line 13
  }
  expect_run(run(PYRAMIDION_TRAIN_BIN, {"--model", c.model, "--train", bad.string(), "--out", (dir / "o").string(),
                                        "--max-steps", "1", "--set", "vocab_size=300", "max_tokens=576"},
                 dir),
             2, bad.string() + ":13: invalid JSON");
  expect_run(run(PYRAMIDION_PREPROCESS_BIN, {"--train", bad.string(), "--vocab-size", "300", "--out",
                                             (dir / "d1").string()},
                 dir),
             2, bad.string() + ":13: invalid JSON");
  const auto tokenizer = dir / "tok.model";
  pyramidion_test::small_tokenizer().save(tokenizer.string());
  expect_run(run(PYRAMIDION_PREPROCESS_BIN, {"--train", bad.string(), "--tokenizer", tokenizer.string(), "--out",
                                             (dir / "d2").string()},
                 dir),
             2, bad.string() + ":13: invalid JSON");
  EXPECT_FALSE(fs::exists(dir / "d1"));
  EXPECT_FALSE(fs::exists(dir / "d2"));
}

// pyramidion-preprocess: a split without a usable record is refused (it exited 0 and training
// refused the dataset later, or validation went silently off), and --verify with options that
// make a dataset is refused (they were ignored).
TEST(ExitStatus, PreprocessRefusesEmptySplitsAndOptionsThatVerifyIgnores) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_preprocess");
  const auto train = pyramidion_test::data_slice(dir, "train", 3);
  const auto tokenizer = dir / "tok.model";
  pyramidion_test::small_tokenizer().save(tokenizer.string());
  std::ofstream(dir / "empty.jsonl").flush();
  std::ofstream(dir / "bad.jsonl") << "{not json\n";
  const std::string preprocess = PYRAMIDION_PREPROCESS_BIN;
  const auto d = (dir / "d").string();
  expect_run(run(preprocess, {"--train", train, "--valid", (dir / "empty.jsonl").string(), "--tokenizer",
                              tokenizer.string(), "--out", d},
                 dir),
             2, "split 'valid' ('" + (dir / "empty.jsonl").string() + "') holds no usable record");
  expect_run(run(preprocess, {"--train", (dir / "bad.jsonl").string(), "--skip-bad", "--tokenizer",
                              tokenizer.string(), "--out", d},
                 dir),
             2, "split 'train' ('" + (dir / "bad.jsonl").string() + "') holds no usable record (1 skipped");
  EXPECT_FALSE(fs::exists(d));
  expect_run(run(preprocess, {"--train", train, "--tokenizer", tokenizer.string(), "--out", d}, dir), 0, "");
  for (const auto& extra : std::vector<std::vector<std::string>>{{"--train", train}, {"--out", (dir / "elsewhere").string()}}) {
    auto args = std::vector<std::string>{"--verify", d};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run(preprocess, args, dir);
    expect_run(r, 2, "excludes");
    EXPECT_NE(r.log.find(extra.front()), std::string::npos) << r.log;
  }
  EXPECT_FALSE(fs::exists(dir / "elsewhere"));
  expect_run(run(preprocess, {"--verify", d}, dir), 0, "every file matches the manifest");
}

// pyramidion-evaluate --seed -1 was read into the unsigned seed as 18446744073709551615.
TEST(ExitStatus, ANegativeSeedIsRefused) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("exit_seed");
  const auto predictions = (dir / "p.jsonl").string();
  std::ofstream(predictions) << "{\"id\": \"a\", \"summary\": \"text\"}\n";
  expect_run(run(PYRAMIDION_EVALUATE_BIN, {"--predictions", predictions, "--references", predictions, "--seed", "-1"},
                 dir),
             2, "must be an integer in [0, 2^64), got -1");
  expect_run(run(PYRAMIDION_EVALUATE_BIN, {"--predictions", predictions, "--references", predictions, "--seed", "7"},
                 dir),
             0, "ROUGE");
}

}  // namespace
