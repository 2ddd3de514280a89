// Training a Seq2Seq on summarization data: the library behind pyramidion-train.
//
//   auto config = pyramidion::TrainConfig::from_json_file("configs/train/aclsum-small.json");
//   config.set("max_steps", "200");                 // any field, as text (the CLI's --set)
//   config.set("model.dropout", "0.2");             // any model field, applied to the preset
//   pyramidion::TrainResult r = pyramidion::train(config, pyramidion::TrainRunOptions().resume(pyramidion::Resume::required));
//
// A run: read the training and validation files (data.h), train or load the sentencepiece
// tokenizer (tokenizer.h), tokenize and truncate, then AdamW updates on token-budget batches
// (batching.h), with warmup and decay, gradient accumulation, clipping, periodic validation loss,
// a progress line, a JSON-lines metrics log, and atomic checkpoints that hold everything a resumed
// run needs to continue exactly as an uninterrupted one (weights, optimizer state, schedule
// position, data position; dropout is seeded from (seed, step, rank), so it needs no saved RNG state). Data-parallel over c10d when the environment says so
// (distributed.h): every rank computes the same batch list and takes its share of every update.
//
// Output directory layout (only rank 0 writes):
//   out/tokenizer.model                 the tokenizer (trained at the first run)
//   out/train_config.json               the effective training config
//   out/metrics.jsonl                   one JSON object per log interval / validation
//   out/checkpoints/step-000200/        config.json weights.pt tokenizer.model optimizer.pt
//                                       trainer_state.json generation.json (Seq2Seq::load-able)
//   out/latest -> checkpoints/step-...  the newest checkpoint
#pragma once

#include <pyramidion/config.h>
#include <pyramidion/data.h>
#include <pyramidion/device.h>
#include <pyramidion/precision.h>

#include <torch/arg.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace pyramidion {

/// The learning rate after warmup. JSON: "linear" (to min_lr at max_steps) | "cosine" |
/// "inverse_sqrt" | "constant".
enum class LrDecay { linear, cosine, inverse_sqrt, constant };

/// "linear" / "cosine" / "inverse_sqrt" / "constant"; throws std::invalid_argument for a value
/// outside the enum.
std::string to_string(LrDecay decay);

/// Every option of a training run. JSON keys are the field names; "model_overrides" is an object
/// of ModelConfig fields applied on top of the `model` preset. Relative paths in a JSON file are
/// relative to that file's directory.
struct TrainConfig {
  // ---- data and model
  std::string model;        // ModelConfig JSON (a preset in configs/); required unless `init` is set
  std::string init;         // a model directory to start from (pyramidion-import's output, a checkpoint):
                            // its architecture, weights and tokenizer, then a fresh optimizer at step 0;
                            // `model` and model_overrides may change only Seq2Seq::kRetrainableFields
  std::map<std::string, std::string> model_overrides;  // ModelConfig field -> JSON value text
  std::string train;        // training data (JSON lines: arXiv/PubMed or plain); this or `data`
  std::string valid;        // validation data (JSON lines); "" = the dataset's "valid" split, or none
  std::string data;         // a preprocessed dataset (dataset.h, pyramidion-preprocess), memory-mapped:
                            // its "train" split (and "valid", unless `valid` is set) and its tokenizer
  std::string out;          // output directory; required
  DataFormat data_format = DataFormat::automatic;  // JSON "auto" (by each record's keys) | "arxiv" | "plain"
  bool skip_bad_records = false;     // skip (and count) malformed records instead of failing
  bool truncate = true;     // truncate long sources/summaries to the model's maximum lengths (counted
                            // and reported); false: a long example is an error
  // ---- tokenizer
  std::string tokenizer;    // an existing sentencepiece model; "" = the data's, or one trained on a
                            // bounded sample of the training split (train_tokenizer_on_file)
  int64_t vocab_size = 8000;  // of a trained tokenizer; the model's vocab_size follows the tokenizer
  std::vector<std::string> reserved_symbols;  // pieces of their own in a trained tokenizer (never split
                            // or merged: TokenizerTrainOptions::reserved_symbols), e.g. the selection
                            // task's markers; a given tokenizer must hold each as one piece
  // ---- optimisation
  int64_t max_steps = 1000;   // optimizer updates; >= 1
  int64_t max_tokens = 16384; // padded source + target tokens per micro-batch; >= max source + target length
  int64_t bucket_size = 1024; // examples sorted by length together when batching
  int64_t update_freq = 1;    // micro-batches accumulated per update (per rank)
  double lr = 5e-4;           // peak learning rate
  int64_t warmup_steps = 100; // linear warmup from 0 to lr
  LrDecay lr_decay = LrDecay::linear;  // after warmup
  double min_lr = 0.0;
  double weight_decay = 0.01;  // AdamW's decoupled weight decay
  double scorer_lr_scale = 1.0;       // the pooling layers' scorers (encoder_poolers.*) train at
                                      // lr x scorer_lr_scale (their own AdamW parameter groups); 0:
                                      // they stay at their random initialisation and the encoder
                                      // learns to present what to keep (docs/training.md: what
                                      // each setting did)
  double scorer_weight_decay = 0.01;  // AdamW weight decay of the scorers' weights (their biases: none)
  double beta1 = 0.9, beta2 = 0.98, adam_eps = 1e-8;
  double clip_norm = 1.0;      // global gradient norm clip; 0 = none
  double label_smoothing = 0.1;
  std::vector<std::string> freeze;  // parameter-name prefixes kept at their initial values (not
                            // trained, no weight decay), e.g. "encoder_poolers." for the selection
                            // task's frozen-scorer ablation; each must match some parameter
  bool detach_scorer_input = false;  // the scorers read detached representations (Seq2Seq::
                                     // set_detach_scorer_input): the selection's gradient stops there
  uint64_t seed = 1;           // weights, data order, dropout
  int64_t threads = 0;         // intra-op threads; 0 = LibTorch's default
  DeviceSpec device;           // JSON "cpu", "cuda" (device LOCAL_RANK: one GPU per process) or "cuda:N"
  Precision precision = Precision::fp32;  // "bf16": autocast (matrix products in bfloat16; weights and
                                          // AdamW state stay float32); "fp16": the same in float16 with
                                          // dynamic loss scaling, CUDA only
  // ---- bookkeeping
  int64_t log_every = 10;         // progress line + metrics entry every N updates
  int64_t validate_every = 100;   // validation loss every N updates (and at the end); 0 = only at the end
  int64_t valid_max_docs = 0;     // validation documents used; 0 = all
  int64_t valid_rouge_docs = 8;   // at each validation, greedy summaries of the first N validation
                                  // documents scored with ROUGE-1/2/L (rank 0); 0 = off
  int64_t checkpoint_every = 100; // checkpoint every N updates (and at the end); 0 = only at the end
  int64_t keep_checkpoints = 3;   // newest checkpoints kept; >= 1
  int64_t distributed_timeout = 1800;  // seconds a rank waits in a collective (rendezvous, rank 0
                                       // training the tokenizer or writing a checkpoint); >= 1

  /// Sets one field from text: `key` is a field name above or "model.<ModelConfig field>"; `value`
  /// is parsed as JSON of the field's type (a bare word is taken as a string). Throws
  /// std::invalid_argument naming the key and value (unknown key with a suggestion, wrong type).
  void set(const std::string& key, const std::string& value);
  /// Throws std::invalid_argument naming the first invalid field and value, and std::runtime_error
  /// when a required file is missing or unreadable (named).
  void validate() const;
  static TrainConfig from_json_string(const std::string& text, const std::string& base_dir = "");
  static TrainConfig from_json_file(const std::string& path);
  std::string to_json_string() const;
  /// Every field with its default and a one-line description, in declaration order (--help).
  static std::string help_text();
  /// The model preset `model` with `model_overrides` applied and, when vocab_size > 0, that
  /// vocabulary (the tokenizer's). With `init`: init's config.json, with the preset's and the
  /// overrides' Seq2Seq::kRetrainableFields; any other field that they set differently is refused.
  /// Throws std::invalid_argument naming the preset and the field.
  ModelConfig model_config(int64_t vocab_size = 0) const;
};

/// How a run begins with respect to the checkpoints already in its output directory.
///   never:     a fresh run; an output directory that already holds checkpoints is an error
///              (nothing is overwritten). pyramidion-train without --resume.
///   required:  from the newest checkpoint; an error when there is none (nothing is created).
///              pyramidion-train --resume.
///   automatic: from the newest checkpoint when there is one, else a fresh run (said in the log):
///              the one command line for a launcher that restarts a failed job (torchrun
///              --max-restarts, Slurm --requeue). pyramidion-train --resume auto.
enum class Resume { never, required, automatic };

/// "never" / "required" / "automatic"; throws std::invalid_argument for a value outside the enum.
std::string to_string(Resume resume);

/// How to run (not part of the config: the same config can be resumed, interrupted, ...).
struct TrainRunOptions {
  using Stream = std::ostream*;              // aliases: TORCH_ARG pastes `const T&`
  using StopFlag = const std::atomic<bool>*;
  /// Whether to continue from the checkpoints in out/checkpoints (see Resume).
  TORCH_ARG(Resume, resume) = Resume::never;
  /// Progress lines and messages (rank 0 only); nullptr = silent.
  TORCH_ARG(Stream, log) = nullptr;
  /// Polled between updates: when true, a checkpoint is saved and train() returns (interrupted).
  TORCH_ARG(StopFlag, stop) = nullptr;
  /// Called after every update with its number (progress hooks, fault-injection tests).
  TORCH_ARG(std::function<void(int64_t)>, on_update);
};

struct TrainResult {
  int64_t step = 0;             // updates done in total
  double train_loss = 0;        // mean per-token loss of the last log interval
  double valid_loss = -1;       // last validation loss per token; -1 = none
  double valid_rouge1 = -1, valid_rouge2 = -1, valid_rougeL = -1;  // last validation ROUGE F1; -1 = none
  bool interrupted = false;     // stopped by TrainRunOptions::stop before max_steps
  std::string checkpoint;       // the last checkpoint written ("" on ranks other than 0)
};

/// Runs (or resumes) training. Throws std::invalid_argument for an invalid config and
/// std::runtime_error for I/O, data and communication failures, with a message naming the file,
/// line or rank.
TrainResult train(const TrainConfig& config, const TrainRunOptions& run = {});

/// The learning rate after `step` updates (1-based) of a run with `config`: warmup then decay.
double learning_rate(const TrainConfig& config, int64_t step);

}  // namespace pyramidion
