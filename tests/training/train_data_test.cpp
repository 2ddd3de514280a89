// Tests of training from a preprocessed dataset (TrainConfig.data, src/training/trainer.cpp):
// the same batches and updates as from the JSON lines (bit-identical weights), exact resume, two
// ranks on loopback reading the same files, and the checks that run before training starts.
#include <pyramidion/dataset.h>
#include <pyramidion/model.h>
#include <pyramidion/train.h>

#include "support/train_fixtures.h"

#include <gtest/gtest.h>

#include <atomic>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using pyramidion::PreprocessOptions;
using pyramidion::TrainConfig;
using pyramidion_test::error_of;
using pyramidion_test::fresh_dir;
using pyramidion_test::read_text;
using pyramidion_test::tiny_config;
using pyramidion_test::weight_diff;


// The tiny JSON-lines run (it trains the tokenizer) and its splits preprocessed with that
// tokenizer into `dataset`.
pyramidion::TrainResult json_run_and_dataset(const TrainConfig& json, const std::string& dataset,
                                             const PreprocessOptions& options = {}) {
  const auto result = pyramidion::train(json);
  const auto tokenizer = pyramidion::Tokenizer::load((fs::path(json.out) / "tokenizer.model").string());
  pyramidion::preprocess({{"train", json.train}, {"valid", json.valid}}, tokenizer, dataset, options);
  return result;
}

// tiny_config's splits preprocessed into dir/d with the tokenizer of a one-update JSON-lines run
// (dir/json); that run's config.
TrainConfig dataset_in(const fs::path& dir) {
  auto json = tiny_config(dir);
  json.out = (dir / "json").string();
  json.max_steps = 1;
  json_run_and_dataset(json, (dir / "d").string());
  return json;
}

TrainConfig from_data(TrainConfig c, const std::string& dataset, const fs::path& out) {
  c.train.clear();
  c.valid.clear();  // the dataset's valid split
  c.data = dataset;
  c.out = out.string();
  return c;
}

TEST(TrainFromData, GivesTheWeightsOfTrainingFromTheJsonLines) {
  const auto dir = fresh_dir("data_same");
  auto json = tiny_config(dir);
  json.out = (dir / "json").string();
  const auto reference = json_run_and_dataset(json, (dir / "full").string());
  // Full-length data, cut by the trainer to the model's 64 / 31 tokens from the index.
  std::ostringstream log;
  const auto full = pyramidion::train(from_data(json, (dir / "full").string(), dir / "from_full"),
                                      pyramidion::TrainRunOptions().log(&log));
  EXPECT_EQ(weight_diff(reference.checkpoint, full.checkpoint), 0.0) << "same batches, same updates";
  EXPECT_EQ(full.valid_loss, reference.valid_loss);
  EXPECT_NE(log.str().find("train: " + (dir / "full").string() + ": 12 documents"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("sources truncated to 64 tokens"), std::string::npos);
  // Data cut at preprocessing to the same limits.
  pyramidion::preprocess({{"train", json.train}, {"valid", json.valid}},
                         pyramidion::Tokenizer::load((fs::path(json.out) / "tokenizer.model").string()),
                         (dir / "cut").string(), PreprocessOptions().max_source_length(64).max_target_length(31));
  const auto cut = pyramidion::train(from_data(json, (dir / "cut").string(), dir / "from_cut"));
  EXPECT_EQ(weight_diff(reference.checkpoint, cut.checkpoint), 0.0);
  // The tokenizer of the run is the dataset's.
  EXPECT_EQ(read_text(fs::path(full.checkpoint) / "tokenizer.model"), read_text(dir / "full" / "tokenizer.model"));
}

TEST(TrainFromData, StopAndResumeEqualsUninterrupted) {
  const auto dir = fresh_dir("data_resume");
  const TrainConfig json = dataset_in(dir);
  const auto runs =
      pyramidion_test::train_stopped_and_resumed(from_data(tiny_config(dir), (dir / "d").string(), dir / "out"), dir);
  ASSERT_EQ(runs.first.step, 3);
  EXPECT_EQ(runs.second.step, 8);
  EXPECT_EQ(weight_diff(runs.whole.checkpoint, runs.second.checkpoint), 0.0) << "the exact data position is resumed";
}

TEST(TrainFromData, ChecksTheDatasetAndTheTokenizerBeforeTraining) {
  const auto dir = fresh_dir("data_checks");
  const TrainConfig json = dataset_in(dir);
  const auto data = (dir / "d").string();
  // Another tokenizer than the dataset's.
  auto other = from_data(tiny_config(dir), data, dir / "other");
  const auto another = pyramidion::train_tokenizer_on_file(pyramidion_test::data_slice(dir, "test", 6),
                                                           pyramidion::TokenizerTrainOptions().vocab_size(300));
  another.save((dir / "other.model").string());
  other.tokenizer = (dir / "other.model").string();
  const auto message = error_of<std::invalid_argument>([&] { pyramidion::train(other); });
  EXPECT_NE(message.find("is not the one the dataset " + data + " was made with"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(fs::path(other.out) / "checkpoints" / "step-000000")) << "refused before training";
  // Both train and data; neither.
  auto both = from_data(tiny_config(dir), data, dir / "both");
  both.train = json.train;
  EXPECT_NE(error_of<std::invalid_argument>([&] { both.validate(); }).find("are both set; give one"),
            std::string::npos);
  both.train.clear();
  both.data.clear();
  EXPECT_NE(error_of<std::invalid_argument>([&] { both.validate(); }).find("train = \"\" is required (or data"),
            std::string::npos);
  // Examples over the model's limits, with truncate off.
  auto strict = from_data(tiny_config(dir), data, dir / "strict");
  strict.truncate = false;
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::train(strict); }).find("(set truncate to true to cut them)"),
            std::string::npos);
  // A damaged dataset: the error names the file, before any update.
  fs::resize_file(dir / "d" / "train.target", 10);
  const auto damaged = error_of<std::runtime_error>([&] { pyramidion::train(from_data(tiny_config(dir), data, dir / "x")); });
  EXPECT_NE(damaged.find("train.target' has 10 bytes"), std::string::npos) << damaged;
}

// A token file truncated under a running job (`truncate -s 0 DATASET/train.source`) used to kill it
// with SIGBUS (status 135, no message). Now the run stops with an error naming the file and
// "changed while training", after saving the last good state, which resumes.
TEST(TrainFromData, ADatasetTruncatedWhileTrainingIsAnErrorAndTheLastGoodStateIsSaved) {
  const auto dir = fresh_dir("data_truncated");
  const TrainConfig json = dataset_in(dir);
  auto c = from_data(tiny_config(dir), (dir / "d").string(), dir / "out");
  c.max_steps = 100;
  c.checkpoint_every = 50;
  const auto source = dir / "d" / "train.source";
  const auto message = error_of<std::runtime_error>([&] {
    pyramidion::train(c, pyramidion::TrainRunOptions().on_update([&](int64_t step) {
      if (step == 3) fs::resize_file(source, 0);  // another process, between two updates
    }));
  });
  EXPECT_NE(message.find("train: the data changed while training: '" + source.string() + "' changed"), std::string::npos)
      << message;
  EXPECT_NE(message.find("the last good state (step 3) is saved in"), std::string::npos) << message;
  const auto saved = dir / "out" / "checkpoints" / "step-000003";
  ASSERT_TRUE(fs::is_directory(saved)) << message;
  EXPECT_NO_THROW(pyramidion::Seq2Seq::load(saved.string()));
}

TEST(TrainFromData, TwoProcessesReadTheSameFilesAndMatchOneProcess) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("data_ddp");
  const TrainConfig json = dataset_in(dir);
  const auto args = [&](const std::string& out, bool accumulate) {
    std::vector<std::string> a = {"--model", json.model, "--data", (dir / "d").string(), "--out", out,
                                  "--max-steps", "8", "--set", "max_tokens=" + std::to_string(json.max_tokens),
                                  "warmup_steps=2", "lr=0.003", "log_every=2", "validate_every=4",
                                  "checkpoint_every=4", "threads=1"};
    if (accumulate) a.push_back("update_freq=2");
    return a;
  };
  const auto tool = [](const std::vector<std::string>& a, const std::vector<std::string>& env, const fs::path& log) {
    return pyramidion_test::run_process(PYRAMIDION_TRAIN_BIN, a, env, log);
  };
  ASSERT_EQ(tool(args((dir / "single").string(), true), {}, dir / "single.log"), 0) << read_text(dir / "single.log");
  const int port = 20000 + (::getpid() + 7) % 20000;
  const std::vector<std::string> common = {"WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)};
  int status1 = -1;
  std::thread second([&] {
    auto env = common;
    env.push_back("RANK=1");
    status1 = tool(args((dir / "ddp").string(), false), env, dir / "rank1.log");
  });
  auto env0 = common;
  env0.push_back("RANK=0");
  const int status0 = tool(args((dir / "ddp").string(), false), env0, dir / "rank0.log");
  second.join();
  ASSERT_EQ(status0, 0) << read_text(dir / "rank0.log");
  ASSERT_EQ(status1, 0) << read_text(dir / "rank1.log");
  EXPECT_LT(weight_diff((dir / "single/checkpoints/step-000008").string(), (dir / "ddp/checkpoints/step-000008").string()),
            1e-5)
      << "2 ranks on the mapped files vs 1 rank with update_freq 2";
  EXPECT_NE(read_text(dir / "rank0.log").find("(preprocessed; splits \"train\", \"valid\")"), std::string::npos);
}

TEST(PreprocessTool, WritesADatasetVerifiesItAndRefusesBadArguments) {
  PYRAMIDION_REQUIRE_TOOLS();
  const auto dir = fresh_dir("preprocess_tool");
  const auto train = pyramidion_test::data_slice(dir, "train", 6);
  const auto tool = [&](const std::vector<std::string>& a, const std::string& log) {
    return pyramidion_test::run_process(PYRAMIDION_PREPROCESS_BIN, a, {}, dir / log);
  };
  const auto out = (dir / "d").string();
  ASSERT_EQ(tool({"--train", train, "--vocab-size", "300", "--out", out, "--workers", "2"}, "make.log"), 0)
      << read_text(dir / "make.log");
  const auto log = read_text(dir / "make.log");
  EXPECT_NE(log.find("documents/s"), std::string::npos) << log;
  EXPECT_NE(log.find("MB/s"), std::string::npos);
  EXPECT_NE(log.find("train: 6 documents"), std::string::npos);
  EXPECT_EQ(pyramidion::Dataset::open(out).split("train").size(), 6);
  EXPECT_EQ(tool({"--verify", out}, "verify.log"), 0) << read_text(dir / "verify.log");
  EXPECT_EQ(tool({"--train", train, "--vocab-size", "300", "--out", out}, "again.log"), 2);
  EXPECT_NE(read_text(dir / "again.log").find("already exists"), std::string::npos);
  EXPECT_EQ(tool({"--train", train, "--out", (dir / "e").string()}, "notok.log"), 2);
  EXPECT_NE(read_text(dir / "notok.log").find("give either --tokenizer MODEL or --vocab-size N"), std::string::npos);
  EXPECT_EQ(tool({"--train", train, "--vocab-size", "300"}, "noout.log"), 2);
  EXPECT_EQ(tool({"--bogus"}, "bogus.log"), 2);
  // A token changed in place: open() cannot see it, --verify does (an environment error: status 1).
  std::string tokens = pyramidion::detail::read_file("test", out + "/train.source");
  tokens[10] = static_cast<char>(tokens[10] ^ 4);
  pyramidion::detail::write_output_file("test", out + "/train.source", tokens);
  EXPECT_EQ(tool({"--verify", out}, "bad.log"), 1);
  EXPECT_NE(read_text(dir / "bad.log").find("train.source' does not match its checksum"), std::string::npos);
}

}  // namespace
