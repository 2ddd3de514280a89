// The trainer (training/trainer.h): pyramidion::train() as named steps.
//
// Legend: b batch, n source tokens, t target positions.
#include "training/trainer.h"

#include <pyramidion/data.h>
#include <pyramidion/threads.h>

#include <ATen/ATen.h>
#include <torch/nn/utils/clip_grad.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <stdexcept>
#include <utility>

#include "training/autocast.h"
#include "training/loss.h"
#include "training/train_config_table.h"
#include "training/validation.h"
#include "util/output_file.h"
#include "util/directory_checksums.h"
#include "util/text.h"

namespace pyramidion {
namespace detail {
namespace {

// The parameters of the pooling layers' scorers: their own optimizer groups (scorer_lr_scale,
// scorer_weight_decay).
constexpr const char* kScorerPrefix = "encoder_poolers.";

namespace fs = std::filesystem;
using nlohmann::json;

// Now in UTC, ISO 8601 ("2026-12-02T04:21:30Z").
std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// Tokenizing JSON lines for longer than this at a start: the log suggests pyramidion-preprocess.
constexpr double kPreprocessHintSeconds = 30;

ProcessGroup connect(const TrainConfig& config) {
  config.validate();
  return ProcessGroup::from_environment(DistributedOptions().timeout(std::chrono::seconds(config.distributed_timeout)));
}

ReaderOptions reader_options(const TrainConfig& c) {
  return ReaderOptions().format(c.data_format).skip_bad(c.skip_bad_records);
}

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

// ---- BatchStream -------------------------------------------------------------------------------

const std::vector<int64_t>& BatchStream::next(DataCursor& cursor) {
  load(cursor.epoch);
  if (cursor.index >= static_cast<int64_t>(batches_.size())) {
    ++cursor.epoch;
    cursor.index = 0;
    load(cursor.epoch);
  }
  return batches_[static_cast<size_t>(cursor.index++)];
}

void BatchStream::load(int64_t epoch) {
  if (epoch == loaded_) return;
  batches_ = make_batches(corpus_, options_, epoch);
  loaded_ = epoch;
}

// ---- the steps ---------------------------------------------------------------------------------

Trainer::Trainer(const TrainConfig& config, const TrainRunOptions& run)
    : config_(config),
      run_(run),
      group_(connect(config_)),
      device_(at::kCPU),
      out_(config.out),
      start_(std::chrono::steady_clock::now()),
      scaler_(config.precision == Precision::fp16) {
  log_ = group_.is_main() ? run_.log() : nullptr;
  set_threads(config_.threads, "TrainConfig.threads");
  device_ = config_.device.resolve(group_.local_rank());
}

void Trainer::say(const std::string& line) const {
  if (log_) *log_ << line << std::endl;
}

void Trainer::on_main(const std::string& what, const std::function<void()>& work) {
  group_.run_on_main("train", what, work);
}

void Trainer::append_metrics(const json& entry) {
  on_main("writing metrics.jsonl",
          [&] { append_to_file("train", (out_ / "metrics.jsonl").string(), entry.dump() + "\n"); });
}

void Trainer::agree_on_settings() {
  // Paths may differ between machines (what they lead to is compared in agree_on_data); the
  // threads and the timeout are each machine's own and change no result.
  static const char* kLocal[] = {"threads", "distributed_timeout", "model", "train", "valid", "data", "tokenizer", "out"};
  std::vector<std::pair<std::string, std::string>> values;
  const json config = json::parse(config_.to_json_string());
  for (const auto& [key, value] : config.items())
    if (std::find(std::begin(kLocal), std::end(kLocal), key) == std::end(kLocal)) values.emplace_back(key, value.dump());
  values.emplace_back("--resume (TrainRunOptions.resume)", to_string(run_.resume()));
  group_.check_same("train", values);
}

void Trainer::agree_on_data() {
  const auto counts = [](const TokenizedCorpus& c) {
    return std::to_string(c.size()) + " documents, " + std::to_string(c.source_tokens()) + " source and " +
           std::to_string(c.target_tokens()) + " summary tokens";
  };
  group_.check_same("train", {{"the checkpoint resumed", resume_dir_.empty() ? "none" : resume_dir_.filename().string()},
                              {"the tokenizer (checksum)", tokenizer_checksum(*tokenizer_)},
                              {"the model config", model_config_.to_json_string()},
                              {"the training data", counts(train_corpus_)},
                              {"the validation data", counts(valid_corpus_)}});
}

void Trainer::locate_start() {
  const auto none_to_resume = [&] {
    return std::runtime_error("train: --resume, but " + (out_ / "checkpoints").string() +
                              " holds no checkpoint (--resume auto starts a fresh run then)");
  };
  // Refused before the lock is taken: a --resume that finds nothing creates nothing.
  if (run_.resume() == Resume::required && list_checkpoints(out_).empty()) throw none_to_resume();
  // One run per output directory: a second one would delete the first's checkpoints.
  on_main("locking the output directory", [&] { lock_ = std::make_unique<DirectoryLock>("train", out_.string()); });
  const auto checkpoints = list_checkpoints(out_);  // again, under the lock
  if (run_.resume() == Resume::required && checkpoints.empty()) throw none_to_resume();
  if (run_.resume() == Resume::never && !checkpoints.empty())
    throw std::runtime_error("train: " + (out_ / "checkpoints").string() + " already holds checkpoints (newest " +
                             checkpoints.back().second.filename().string() +
                             "); pass --resume to continue that run, or choose another output directory");
  if (run_.resume() != Resume::never && !checkpoints.empty()) resume_dir_ = checkpoints.back().second;
  if (run_.resume() == Resume::automatic && checkpoints.empty())
    say("no checkpoint in " + (out_ / "checkpoints").string() + ": a fresh run (--resume auto)");
  group_.barrier();  // every rank has looked before rank 0 writes anything
  on_main("creating the output directory", [&] {
    fs::create_directories(out_ / "checkpoints");
    // Leftovers of this trainer's writers that a crash interrupted (checkpoints: before each one).
    for (const char* name : {"tokenizer.model", "train_config.json", "latest"})
      remove_temporaries_of((out_ / name).string());
  });
}

void Trainer::prepare_tokenizer() {
  const fs::path path = out_ / "tokenizer.model";
  std::string source;
  if (!config_.data.empty()) {
    dataset_ = Dataset::open(config_.data);  // checks the files before anything else is done
    say("data: " + config_.data + " (preprocessed; splits " + quoted_list(dataset_->splits()) + ")");
  }
  if (resuming()) {
    source = (resume_dir_ / "tokenizer.model").string();
    verify_file_checksum("train: resume", resume_dir_.string(), "tokenizer.model");
  } else if (!config_.init.empty()) {
    source = (fs::path(config_.init) / "tokenizer.model").string();
    verify_file_checksum("train: init", config_.init, "tokenizer.model");
  } else if (!config_.tokenizer.empty()) {
    source = config_.tokenizer;
  } else if (dataset_) {
    source = (fs::path(config_.data) / "tokenizer.model").string();
  } else {
    on_main("training the tokenizer", [&] {
      say("training a " + std::to_string(config_.vocab_size) + "-token sentencepiece model on " + config_.train);
      const auto started = std::chrono::steady_clock::now();
      train_tokenizer_on_file(config_.train,
                              TokenizerTrainOptions()
                                  .vocab_size(config_.vocab_size)
                                  .reserved_symbols(config_.reserved_symbols),
                              TokenizerSampleOptions().reader(reader_options(config_)))
          .save(path.string());
      say("tokenizer trained in " + format_duration(seconds_between(started, std::chrono::steady_clock::now())));
    });
    source = path.string();
  }
  tokenizer_ = Tokenizer::load(source);
  for (const auto& symbol : config_.reserved_symbols)
    if (tokenizer_->piece_to_id(symbol) < 0)
      throw std::invalid_argument("train: reserved_symbols: the tokenizer " + source + " has no piece \"" + symbol +
                                  "\" (it encodes to " + std::to_string(tokenizer_->encode(symbol).size()) +
                                  " ids); train a tokenizer with it reserved (leave `tokenizer` empty)");
  if (dataset_ && tokenizer_checksum(*tokenizer_) != dataset_->tokenizer_checksum())
    throw std::invalid_argument("train: the tokenizer " + source + " (checksum " + tokenizer_checksum(*tokenizer_) +
                                ") is not the one the dataset " + config_.data + " was made with (checksum " +
                                dataset_->tokenizer_checksum() + "): its token ids would mean other pieces");
  on_main("saving the tokenizer", [&] {
    if (source != path.string()) tokenizer_->save(path.string());
  });
  model_config_ = config_.model_config(tokenizer_->vocab_size());
  tokenizer_->check_fits(model_config_, "train");
}

void Trainer::describe_corpus(const char* name, const std::string& path, const CorpusStats& n,
                              const TokenizedCorpus& corpus) const {
  say(std::string(name) + ": " + path + ": " + std::to_string(n.documents) + " documents, " +
      std::to_string(corpus.source_tokens()) + " source and " + std::to_string(corpus.target_tokens()) +
      " summary tokens; " + std::to_string(n.truncated_sources) + " sources truncated to " +
      std::to_string(model_config_.max_source_length) + " tokens, " + std::to_string(n.truncated_targets) +
      " summaries to " + std::to_string(model_config_.max_target_length - 1) + "; " + std::to_string(n.skipped) +
      " bad records skipped");
  for (const auto& reason : n.skip_reasons) say(std::string(name) + ": skipped " + reason);
  if (n.skipped > static_cast<int64_t>(n.skip_reasons.size()))
    say(std::string(name) + ": ... and " + std::to_string(n.skipped - static_cast<int64_t>(n.skip_reasons.size())) +
        " more bad records");
}

TokenizedCorpus Trainer::read_json_lines(const std::string& path, const CorpusOptions& options, const char* name) {
  const auto started = std::chrono::steady_clock::now();
  CorpusStats stats;
  TokenizedCorpus corpus = tokenize_file(path, *tokenizer_, options, &stats, [this](const std::string& line) { say(line); });
  describe_corpus(name, path, stats, corpus);
  const double seconds = seconds_between(started, std::chrono::steady_clock::now());
  if (seconds >= kPreprocessHintSeconds)
    say(std::string(name) + ": tokenizing took " + format_duration(seconds) +
        " (at every start, on every rank); pyramidion-preprocess does it once, and training from its dataset "
        "(data) starts in seconds (docs/data.md)");
  return corpus;
}

TokenizedCorpus Trainer::map_split(const std::string& split) const {
  // The model's limits (targets, and sources with source_eos, leave room for eos), applied to the
  // stored lengths.
  const int64_t max_source = model_config_.max_source_length - (model_config_.source_eos ? 1 : 0);
  const int64_t max_target = model_config_.max_target_length - 1;
  TokenizedCorpus full = dataset_->split(split);
  TokenizedCorpus corpus = full.truncated(max_source, max_target);
  CorpusStats stats;
  stats.documents = corpus.size();
  stats.skipped = dataset_->stats(split).skipped;
  stats.truncated_sources = dataset_->stats(split).truncated_sources;
  stats.truncated_targets = dataset_->stats(split).truncated_targets;
  stats.skip_reasons = dataset_->stats(split).skip_reasons;
  for (int64_t i = 0; i < full.size(); ++i) {  // the index only: lengths, not tokens
    const bool long_source = full.source_length(i) > max_source, long_target = full.target_length(i) > max_target;
    if ((long_source || long_target) && !config_.truncate)
      throw std::invalid_argument("train: " + config_.data + ": " + split + " example '" + full.id(i) + "' has " +
                               std::to_string(full.source_length(i)) + " source and " +
                               std::to_string(full.target_length(i)) + " summary tokens; the model takes at most " +
                               std::to_string(max_source) + " and " + std::to_string(max_target) +
                               " (set truncate to true to cut them)");
    stats.truncated_sources += long_source;
    stats.truncated_targets += long_target;
  }
  describe_corpus(split.c_str(), config_.data, stats, corpus);
  const auto warn_cut = [&](int64_t stored, int64_t wanted, const char* side) {
    if (stored > 0 && stored < wanted)
      say("warning: " + config_.data + " was cut to " + std::to_string(stored) + " " + side +
          " tokens at preprocessing; the model takes " + std::to_string(wanted) + ": preprocess again to use them");
  };
  warn_cut(dataset_->max_source_length(), max_source, "source");
  warn_cut(dataset_->max_target_length(), max_target, "summary");
  return corpus;
}

void Trainer::prepare_data() {
  // The model's limits: targets, and sources with source_eos, leave room for eos.
  const auto options = CorpusOptions()
                           .reader(reader_options(config_))
                           .max_source_length(model_config_.max_source_length - (model_config_.source_eos ? 1 : 0))
                           .max_target_length(model_config_.max_target_length - 1)
                           .truncate(config_.truncate);
  train_corpus_ = dataset_ ? map_split("train") : read_json_lines(config_.train, options, "train");
  if (train_corpus_.size() == 0)
    throw std::invalid_argument("train: " + (dataset_ ? config_.data + "'s train split" : config_.train) +
                                " holds no usable record");
  if (!config_.valid.empty()) {
    valid_corpus_ =
        read_json_lines(config_.valid, CorpusOptions(options).max_documents(config_.valid_max_docs), "valid");
  } else if (dataset_ && dataset_->has_split("valid")) {
    valid_corpus_ = map_split("valid");
    if (config_.valid_max_docs > 0) valid_corpus_ = valid_corpus_.first(config_.valid_max_docs);
  }
  // Validation data that holds nothing would silently turn validation off.
  if ((!config_.valid.empty() || (dataset_ && dataset_->has_split("valid"))) && valid_corpus_.size() == 0)
    throw std::invalid_argument("train: the validation data " +
                                (config_.valid.empty() ? config_.data + "'s valid split" : config_.valid) +
                                " holds no usable record; give other validation data, or none");
  stream_ = std::make_unique<BatchStream>(
      train_corpus_,
      BatchingOptions().max_tokens(config_.max_tokens).bucket_size(config_.bucket_size).seed(config_.seed));
}

void Trainer::build_model_and_optimizer() {
  at::manual_seed(config_.seed);
  if (resuming()) {
    model_ = Seq2Seq::load(resume_dir_.string());
  } else if (!config_.init.empty()) {
    model_ = Seq2Seq::from_pretrained(config_.init, model_config_);  // new scorers drawn from the seed
    say("starting from " + config_.init + " (its weights and tokenizer; a fresh optimizer at step 0)");
  } else {
    model_ = Seq2Seq(model_config_);
  }
  if (resuming() && model_->config() != model_config_)
    throw std::invalid_argument("train: the model config of " + resume_dir_.string() +
                                " differs from the one this run's config builds; resume with the same model settings");
  model_->to(device_);
  model_->train();
  freeze_parameters();
  model_->set_detach_scorer_input(config_.detach_scorer_input);
  if (config_.detach_scorer_input)
    say("the scorers read detached representations: the selection's gradient stops at them");
  group_.broadcast_parameters(*model_);
  optimizer_ = make_optimizer(/*legacy=*/false);
  if (group_settings_.size() == 4 && config_.scorer_lr_scale == 0)
    say("the scorers stay at their initialisation (scorer_lr_scale 0): the encoder learns to present what to keep");
}

// The parameter groups: 0 the weight matrices (weight_decay), 1 biases and LayerNorm gains (no
// decay); in a model with pooling layers, 2 the scorers' weights (scorer_weight_decay) and 3
// their biases (no decay), both at lr x scorer_lr_scale. Each group's weight decay is also set
// again on resume (the config's, not the checkpoint's), and each group's lr at every update:
// both from group_settings_, which this sets (unless `legacy`: that layout is only read).
std::unique_ptr<torch::optim::AdamW> Trainer::make_optimizer(bool legacy) {
  std::vector<at::Tensor> params[4];  // in the group order above
  for (const auto& item : model_->named_parameters()) {
    const bool scorer = !legacy && item.key().rfind(kScorerPrefix, 0) == 0;
    params[(scorer ? 2 : 0) + (item.value().dim() >= 2 ? 0 : 1)].push_back(item.value());
  }
  const GroupSettings all[4] = {{1.0, config_.weight_decay},
                                {1.0, 0.0},
                                {config_.scorer_lr_scale, config_.scorer_weight_decay},
                                {config_.scorer_lr_scale, 0.0}};
  const int used = params[2].empty() && params[3].empty() ? 2 : 4;  // no pooling layers: two groups
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (int g = 0; g < used; ++g)
    groups.emplace_back(params[g], std::make_unique<torch::optim::AdamWOptions>(
                                       torch::optim::AdamWOptions(config_.lr)
                                           .betas({config_.beta1, config_.beta2})
                                           .eps(config_.adam_eps)
                                           .weight_decay(all[g].weight_decay)));
  if (!legacy) group_settings_.assign(all, all + used);
  return std::make_unique<torch::optim::AdamW>(std::move(groups));
}

void Trainer::freeze_parameters() {
  const auto named = model_->named_parameters();
  std::vector<int64_t> matched(config_.freeze.size(), 0);
  int64_t frozen = 0;
  for (const auto& item : named) {
    for (size_t i = 0; i < config_.freeze.size(); ++i) {
      if (item.key().rfind(config_.freeze[i], 0) != 0) continue;
      ++matched[i];
      if (item.value().requires_grad()) {
        item.value().set_requires_grad(false);
        frozen += item.value().numel();
      }
    }
  }
  for (size_t i = 0; i < matched.size(); ++i) {
    if (matched[i] > 0) continue;
    std::vector<std::string> tops;  // the names' first components, for the message
    for (const auto& item : named) {
      const std::string top = item.key().substr(0, item.key().find('.') + 1);
      if (std::find(tops.begin(), tops.end(), top) == tops.end()) tops.push_back(top);
    }
    throw std::invalid_argument("train: freeze[" + std::to_string(i) + "] = \"" + config_.freeze[i] +
                                "\" is the prefix of no parameter of this model (their names start with " +
                                quoted_list(tops) + ")");
  }
  if (!config_.freeze.empty())
    say("frozen at their initial values: " + std::to_string(frozen) + " weights (parameters starting with " +
        quoted_list(config_.freeze) + ")");
}

void Trainer::resume() {
  if (!resuming()) return;
  TrainerState state;
  try {
    state = read_checkpoint_state(resume_dir_, *optimizer_);
  } catch (const std::runtime_error& e) {
    // A checkpoint written before the scorers had their own groups holds two (LibTorch's load
    // says "loaded state dict has a different number of parameter groups"): read it in that
    // layout, then hand AdamW's moments (kept per parameter) to the groups of this run. Any
    // other error is the checkpoint's own.
    if (optimizer_->param_groups().size() <= 2 ||
        std::string(e.what()).find("different number of parameter groups") == std::string::npos)
      throw;
    auto legacy = make_optimizer(/*legacy=*/true);
    state = read_checkpoint_state(resume_dir_, *legacy);  // not that layout either: its error
    optimizer_->state() = std::move(legacy->state());
    say("the checkpoint's optimizer has the two parameter groups of before the scorers had their own: "
        "its moments carried over");
  }
  step_ = first_step_ = checkpointed_step_ = state.step;
  cursor_ = state.cursor;
  if (scaler_.enabled() && !state.loss_scaler.is_null())
    scaler_.load(state.loss_scaler, (resume_dir_ / "trainer_state.json").string());
  say("resumed from " + resume_dir_.string() + " at step " + std::to_string(step_));
  // The optimizer file restores AdamW's moments and its hyperparameters: the config's win.
  auto& param_groups = optimizer_->param_groups();
  for (size_t g = 0; g < param_groups.size(); ++g)
    static_cast<torch::optim::AdamWOptions&>(param_groups[g].options())
        .betas({config_.beta1, config_.beta2})
        .eps(config_.adam_eps)
        .weight_decay(group_settings_[g].weight_decay);
  // Settings that make the continuation differ from an uninterrupted run: said, not refused.
  // A run from before scorer_lr_scale existed trained its scorers at lr (scale 1, the default).
  if (group_settings_.size() == 4 && !state.train_config.contains("scorer_lr_scale") && config_.scorer_lr_scale != 1.0)
    say("warning: the checkpoint was written before scorer_lr_scale existed, and its scorers trained at lr (scale 1); "
        "this run trains them at lr x " + format_double(config_.scorer_lr_scale) +
        ": set scorer_lr_scale=1 to continue it as it was");
  std::string changed =
      train_config_table().changes(state.train_config, json::parse(config_.to_json_string()), kContinuation);
  const int64_t saved_batches = state.world_size * state.update_freq;
  const int64_t batches = group_.world_size() * config_.update_freq;
  if (saved_batches != batches)
    changed += std::string(changed.empty() ? "" : ", ") + "batches per update " + std::to_string(saved_batches) +
               " -> " + std::to_string(batches);
  if (!changed.empty())
    say("warning: resuming with changed settings (" + changed + "); the run will not match an uninterrupted one");
  if (step_ >= config_.max_steps)
    say("the checkpoint is at step " + std::to_string(step_) + " >= max_steps = " + std::to_string(config_.max_steps) +
        ": nothing to train (raise --max-steps to continue)");
}

void Trainer::start_logs() {
  on_main("writing train_config.json", [&] {
    write_output_file("train", (out_ / "train_config.json").string(), config_.to_json_string() + "\n");
    // Where each run begins, in a log that runs in this directory share.
    append_to_file("train", (out_ / "metrics.jsonl").string(),
                   json{{"event", resuming() ? "resume" : "start"}, {"step", step_}, {"time", utc_now()}}.dump() +
                       "\n");
  });
  int64_t params = 0;
  for (const auto& p : model_->parameters()) params += p.numel();
  say("model: " + std::to_string(params) + " parameters, " + std::to_string(model_config_.encoder_layers) + "+" +
      std::to_string(model_config_.decoder_layers) + " layers, d_model " + std::to_string(model_config_.d_model) +
      "; ranks: " + std::to_string(group_.world_size()) + "; updates " + std::to_string(step_) + " -> " +
      std::to_string(config_.max_steps));
  loop_start_ = interval_start_ = std::chrono::steady_clock::now();
}

bool Trainer::stop_requested() {
  const bool here = run_.stop() && run_.stop()->load();
  return group_.allreduce_sum(here ? 1.0 : 0.0) > 0;
}

void Trainer::update() {
  ++step_;
  const int64_t world = group_.world_size(), rank = group_.rank();
  // The update's world * update_freq batches, in stream order; this rank takes every world-th.
  std::vector<std::vector<int64_t>> mine;
  double global_tokens = 0;
  for (int64_t j = 0; j < world * config_.update_freq; ++j) {
    const auto& batch = stream_->next(cursor_);
    for (const int64_t i : batch) global_tokens += static_cast<double>(train_corpus_.target_length(i) + 1);
    if (j % world == rank) mine.push_back(batch);
  }
  // Dropout masks from (seed, step, rank): a resumed run draws what an uninterrupted one would.
  at::manual_seed(config_.seed * 1000003ULL + static_cast<uint64_t>(step_) * 7919ULL + static_cast<uint64_t>(rank));
  double local_nll = 0, local_source = 0;
  for (const auto& indices : mine) {
    const Batch batch = collate(train_corpus_, indices, model_config_).to(device_);
    std::pair<at::Tensor, double> loss;
    {
      const AutocastScope autocast(device_.type(), dtype_of(config_.precision));  // the forward pass only
      loss = batch_loss(model_, batch, config_.label_smoothing);
    }
    (scaler_.enabled() ? loss.first * scaler_.scale() : loss.first).backward();
    local_nll += loss.second;
    local_source += static_cast<double>(batch.source_tokens);
  }
  // Every rank checks the same sums, before any weight changes.
  const double update_nll = group_.allreduce_sum(local_nll);
  // The loss itself is never scaled (only its backward is): not finite is divergence in any precision.
  if (!std::isfinite(update_nll))
    throw std::runtime_error("train: the loss became " + std::to_string(update_nll) + " at step " +
                             std::to_string(step_) + " (lower lr, or check the data); the last checkpoint is intact");
  // Sum over ranks, then / the update's target tokens (and the loss scale: the gradients unscaled).
  group_.allreduce_gradients(*model_, global_tokens * scaler_.scale());
  lr_ = learning_rate(config_, step_);
  if (scaler_.update(!scaler_.enabled() || gradients_finite())) {
    grad_norm_ = config_.clip_norm > 0 ? torch::nn::utils::clip_grad_norm_(model_->parameters(), config_.clip_norm) : 0;
    auto& groups = optimizer_->param_groups();
    for (size_t g = 0; g < groups.size(); ++g)
      static_cast<torch::optim::AdamWOptions&>(groups[g].options()).lr(lr_ * group_settings_[g].lr_scale);
    optimizer_->step();
    interval_loss_ += update_nll;
    interval_tokens_ += global_tokens;
  }  // else an overflow of the scaled float16 loss: the update is skipped (and counted), the scale lowered
  optimizer_->zero_grad();
  interval_source_ += local_source;
  if (run_.on_update()) run_.on_update()(step_);
}

bool Trainer::gradients_finite() const {
  // One sum of every gradient: inf or NaN anywhere makes it non-finite. The same on every rank
  // (the gradients are all-reduced).
  std::vector<at::Tensor> sums;
  for (const auto& p : model_->parameters())
    if (p.grad().defined()) sums.push_back(p.grad().abs().sum().to(at::kFloat));
  return sums.empty() || at::stack(sums).sum().isfinite().item<bool>();
}

void Trainer::log_progress() {
  // NLL per target token of the updates taken, all ranks (NaN if float16 skipped every one).
  const double loss = interval_tokens_ > 0 ? interval_loss_ / interval_tokens_ : std::nan("");
  const double source = group_.allreduce_sum(interval_source_);
  const auto now = std::chrono::steady_clock::now();
  const double seconds = seconds_between(interval_start_, now);
  const double elapsed = seconds_between(loop_start_, now);  // of the updates of this invocation
  const double per_step = elapsed / static_cast<double>(step_ - first_step_);
  const double tokens_per_s = (interval_tokens_ + source) / std::max(seconds, 1e-9);
  result_.train_loss = loss;
  say("step " + std::to_string(step_) + "/" + std::to_string(config_.max_steps) + "  loss " + format_fixed(loss, 4) +
      "  lr " + format_scientific(lr_) + "  gnorm " + format_fixed(grad_norm_, 2) + "  " +
      std::to_string(static_cast<int64_t>(tokens_per_s)) + " tok/s  epoch " + std::to_string(cursor_.epoch) +
      "  elapsed " + format_duration(elapsed) + "  eta " +
      format_duration(per_step * static_cast<double>(config_.max_steps - step_)) +
      (scaler_.enabled() ? "  skipped " + std::to_string(scaler_.skipped()) + "  scale " +
                               format_double(scaler_.scale())
                         : ""));
  json entry{{"step", step_},        {"loss", loss},   {"lr", lr_},          {"grad_norm", grad_norm_},
             {"tokens_per_s", tokens_per_s}, {"epoch", cursor_.epoch}, {"elapsed_s", elapsed}};
  if (scaler_.enabled()) {
    entry["skipped_updates"] = scaler_.skipped();
    entry["loss_scale"] = scaler_.scale();
  }
  append_metrics(entry);
  interval_loss_ = interval_tokens_ = interval_source_ = 0;
  interval_start_ = now;
}

void Trainer::validate() {
  if (valid_corpus_.size() == 0) return;
  say("step " + std::to_string(step_) + "  validating on " + std::to_string(valid_corpus_.size()) + " documents");
  const AutocastScope autocast(device_.type(), dtype_of(config_.precision));  // validated as trained
  // A stop request abandons the validation within a batch (a scheduler's grace period is short);
  // the loop then checkpoints and returns.
  std::optional<double> loss;
  try {
    loss = validation_loss(model_, valid_corpus_, config_, group_, device_, [this] { return stop_requested(); });
  } catch (const FileChanged& e) {
    data_changed(e);
  }
  if (!loss) {
    say("step " + std::to_string(step_) + "  validation abandoned: stop requested");
    return;
  }
  result_.valid_loss = *loss;
  json entry{{"step", step_}, {"valid_loss", result_.valid_loss}, {"valid_ppl", std::exp(result_.valid_loss)}};
  std::string rouge_text;
  on_main("scoring validation summaries", [&] {
    if (config_.valid_rouge_docs == 0) return;
    const auto scores =
        validation_rouge(model_, valid_corpus_, config_.valid_rouge_docs, *tokenizer_, config_, run_.stop());
    if (!scores) {
      rouge_text = "  (ROUGE abandoned: stop requested)";
      return;
    }
    const auto& r = *scores;
    result_.valid_rouge1 = r.rouge1.f1;
    result_.valid_rouge2 = r.rouge2.f1;
    result_.valid_rougeL = r.rougeL.f1;
    entry["valid_rouge1"] = r.rouge1.f1;
    entry["valid_rouge2"] = r.rouge2.f1;
    entry["valid_rougeL"] = r.rougeL.f1;
    rouge_text = "  ROUGE-1/2/L " + format_fixed(100 * r.rouge1.f1, 2) + "/" + format_fixed(100 * r.rouge2.f1, 2) +
                 "/" + format_fixed(100 * r.rougeL.f1, 2) + " (greedy, " +
                 std::to_string(std::min(config_.valid_rouge_docs, valid_corpus_.size())) + " docs)";
  });
  say("step " + std::to_string(step_) + "  valid loss " + format_fixed(result_.valid_loss, 4) + "  ppl " +
      format_fixed(std::exp(result_.valid_loss), 2) + rouge_text);
  append_metrics(entry);
}

void Trainer::checkpoint() {
  TrainerState state;
  state.step = step_;
  state.cursor = cursor_;
  state.world_size = group_.world_size();
  state.update_freq = config_.update_freq;
  state.train_config = json::parse(config_.to_json_string());
  if (scaler_.enabled()) state.loss_scaler = scaler_.state();
  on_main("writing a checkpoint",
          [&] { last_checkpoint_ = write_checkpoint(out_, *model_, *optimizer_, *tokenizer_, config_, state); });
  checkpointed_step_ = step_;
  say("checkpoint " + last_checkpoint_);
}

void Trainer::data_changed(const FileChanged& e) {
  std::string kept = "the last checkpoint is " + (last_checkpoint_.empty() ? std::string("none") : last_checkpoint_);
  // One process: the updates since the last checkpoint are saved. Several: a checkpoint is a
  // collective, which the other ranks (in the middle of their update) would not join.
  if (group_.world_size() == 1 && step_ > checkpointed_step_) {
    checkpoint();
    kept = "the last good state (step " + std::to_string(step_) + ") is saved in " + last_checkpoint_;
  }
  throw std::runtime_error("train: the data changed while training: " + std::string(e.what()) + "; " + kept +
                           "; restore the data (or preprocess it anew), then continue with --resume");
}

void Trainer::finish(bool interrupted) {
  // Stopped before its first update, a fresh run still leaves a checkpoint (step 0, the initial
  // weights), so that "continue with --resume" holds.
  if (step_ > first_step_ || (interrupted && !resuming())) checkpoint();
  if (last_checkpoint_.empty() && resuming() && group_.is_main()) last_checkpoint_ = resume_dir_.string();
  if (!interrupted && step_ > first_step_) validate();
  if (interrupted) say("stopped at step " + std::to_string(step_) + "; continue with --resume");
  result_.step = step_;
  result_.interrupted = interrupted;
  result_.checkpoint = last_checkpoint_;
  say("done: " + std::to_string(step_) + " updates in " +
      format_duration(seconds_between(start_, std::chrono::steady_clock::now())));
}

TrainResult Trainer::run() {
  agree_on_settings();
  locate_start();
  prepare_tokenizer();
  prepare_data();
  agree_on_data();
  build_model_and_optimizer();
  resume();
  start_logs();
  bool interrupted = false;
  while (step_ < config_.max_steps) {
    if (stop_requested()) {
      interrupted = true;
      break;
    }
    const int64_t step_before = step_;
    const DataCursor cursor_before = cursor_;
    try {
      update();
    } catch (const FileChanged& e) {
      // Nothing of this update reached the weights (they change only after every batch is read):
      // the state before it is the last good one.
      step_ = step_before;
      cursor_ = cursor_before;
      optimizer_->zero_grad();
      data_changed(e);
    }
    if (step_ % config_.log_every == 0 || step_ == config_.max_steps) log_progress();
    // Checkpoint first: a validation that fails (e.g. out of memory) then loses nothing.
    if (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0 && step_ < config_.max_steps)
      checkpoint();
    if (config_.validate_every > 0 && step_ % config_.validate_every == 0 && step_ < config_.max_steps) validate();
  }
  finish(interrupted);
  return result_;
}

}  // namespace detail

TrainResult train(const TrainConfig& config, const TrainRunOptions& run) { return detail::Trainer(config, run).run(); }

}  // namespace pyramidion
