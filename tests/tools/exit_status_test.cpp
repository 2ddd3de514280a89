// The exit status contract of every tool (tools/common/exit_status.h, docs/reliability.md), run
// as a user runs the tools: 0 done, 1 the environment failed the work, 2 bad input (before any
// work, with the offending value named), 3 done with bad records. Each case also checks that an
// input is never destroyed and that the message names the path or value.
#include "support/summarize_fixtures.h"
#include "support/test_support.h"
#include "support/train_fixtures.h"

#include <gtest/gtest.h>

#include <torch/cuda.h>

#include <filesystem>
#include <fstream>
#include <string>
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

const std::vector<std::string>& all_tools() {
  static const std::vector<std::string> tools = {PYRAMIDION_TRAIN_BIN, PYRAMIDION_SUMMARIZE_BIN,
                                                 PYRAMIDION_EVALUATE_BIN, PYRAMIDION_PREPROCESS_BIN};
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

}  // namespace
