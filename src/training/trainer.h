// Private: the trainer behind pyramidion::train() (include/pyramidion/train.h), as named steps.
// train() is:
//
//   Trainer t(config, run);     // validate the config, connect the ranks, choose the device
//   t.locate_start();           // a fresh output directory, or the newest checkpoint to resume
//   t.prepare_tokenizer();      // the checkpoint's, the given one, or trained on the training split
//   t.prepare_data();           // the training and validation corpora
//   t.build_model_and_optimizer();
//   t.resume();                 // (with --resume) optimizer, step and data position
//   t.start_logs();             // train_config.json, metrics.jsonl, the model line
//   while (!done) { t.update(); log, checkpoint and validate on their schedules }
//   t.finish();                 // the last checkpoint and validation
//
// A new precision or a new dataset kind plugs into one of these steps. Work that rank 0 does alone
// (every write to the output directory, tokenizer training, ROUGE) goes through on_main(), so that
// a failure there stops every rank with its message.
#pragma once

#include <pyramidion/batching.h>
#include <pyramidion/config.h>
#include <pyramidion/corpus.h>
#include <pyramidion/dataset.h>
#include <pyramidion/distributed.h>
#include <pyramidion/model.h>
#include <pyramidion/tokenizer.h>
#include <pyramidion/train.h>

#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "training/checkpoint.h"
#include "training/loss_scaler.h"
#include "util/directory_lock.h"
#include "util/mapped_file.h"

namespace pyramidion {
namespace detail {

/// The epoch's batch list of a corpus, computed once per epoch, read in stream order.
class BatchStream {
 public:
  BatchStream(const TokenizedCorpus& corpus, BatchingOptions options) : corpus_(corpus), options_(options) {}
  /// The batch at `cursor`, then advances it (to the next epoch after the last batch).
  const std::vector<int64_t>& next(DataCursor& cursor);

 private:
  void load(int64_t epoch);
  const TokenizedCorpus& corpus_;
  BatchingOptions options_;
  std::vector<std::vector<int64_t>> batches_;
  int64_t loaded_ = -1;
};

class Trainer {
 public:
  /// Validates the config, connects to the other ranks (distributed.h), sets the threads and
  /// resolves the device.
  Trainer(const TrainConfig& config, const TrainRunOptions& run);
  // The batch stream refers to the training corpus of this object.
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// The whole run, step by step (see the top of this file).
  TrainResult run();

  /// The ranks compare their settings (the config but the per-machine fields, and --resume) and
  /// refuse together, naming the first that differs (ProcessGroup::check_same).
  void agree_on_settings();
  void locate_start();
  void prepare_tokenizer();
  void prepare_data();
  /// The same for what the settings led to: the checkpoint resumed, the tokenizer, the model and
  /// the data (counts of documents and tokens), whose paths may differ between machines.
  void agree_on_data();
  void build_model_and_optimizer();
  // AdamW over the model's parameters in groups (trainer.cpp, make_optimizer); `legacy`: the two
  // groups of checkpoints written before the scorers had their own.
  std::unique_ptr<torch::optim::AdamW> make_optimizer(bool legacy);
  // TrainConfig::freeze: matching parameters stop requiring gradients (AdamW then skips them).
  void freeze_parameters();
  void resume();
  void start_logs();
  /// True when some rank was asked to stop (all ranks agree, so that all stop after one update).
  bool stop_requested();
  /// One optimizer update: this rank's share of the next world * update_freq batches.
  void update();
  void log_progress();
  /// Whether every gradient is finite (float16: the scaled loss did not overflow).
  bool gradients_finite() const;
  void validate();
  void checkpoint();
  void finish(bool interrupted);
  /// A data file changed under the run (util/mapped_file.h): saves the last good state when it can
  /// and throws std::runtime_error "train: the data changed while training: ...".
  [[noreturn]] void data_changed(const FileChanged& e);

 private:
  /// True when this run continues from a checkpoint (resume_dir_, set by locate_start()).
  bool resuming() const { return !resume_dir_.empty(); }
  void say(const std::string& line) const;
  void on_main(const std::string& what, const std::function<void()>& work);
  void append_metrics(const nlohmann::json& entry);
  void describe_corpus(const char* name, const std::string& path, const CorpusStats& stats,
                       const TokenizedCorpus& corpus) const;
  /// A JSON-lines file, tokenized (and a hint to preprocess when that was slow).
  TokenizedCorpus read_json_lines(const std::string& path, const CorpusOptions& options, const char* name);
  /// A split of the dataset, memory-mapped, cut to the model's lengths (from the index alone).
  TokenizedCorpus map_split(const std::string& split) const;

  // Fixed at construction.
  const TrainConfig config_;
  const TrainRunOptions run_;
  ProcessGroup group_;
  std::ostream* log_ = nullptr;  // rank 0's progress stream
  at::Device device_;
  std::filesystem::path out_;
  std::chrono::steady_clock::time_point start_;

  // Made by the steps, in order.
  std::filesystem::path resume_dir_;  // empty: a fresh run
  std::unique_ptr<DirectoryLock> lock_;  // rank 0's, on out_, for the whole run
  std::optional<Dataset> dataset_;  // config.data's
  std::optional<Tokenizer> tokenizer_;
  ModelConfig model_config_;
  TokenizedCorpus train_corpus_, valid_corpus_;
  Seq2Seq model_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  struct GroupSettings {
    double lr_scale, weight_decay;  // the group's lr = lr_ x lr_scale
  };
  std::vector<GroupSettings> group_settings_;  // per parameter group of optimizer_ (make_optimizer)
  std::unique_ptr<BatchStream> stream_;

  // Where the run is.
  int64_t step_ = 0, first_step_ = 0;
  int64_t checkpointed_step_ = -1;  // the step of the newest checkpoint of this run's state; -1: none
  DataCursor cursor_;
  LossScaler scaler_;  // float16 only; disabled otherwise
  double lr_ = 0, grad_norm_ = 0;                                         // of the last update
  double interval_loss_ = 0, interval_tokens_ = 0, interval_source_ = 0;  // since the last log line
  std::chrono::steady_clock::time_point loop_start_, interval_start_;
  std::string last_checkpoint_;
  TrainResult result_;
};

}  // namespace detail
}  // namespace pyramidion
