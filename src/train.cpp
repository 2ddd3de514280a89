// Training (see include/pyramidion/train.h): the config, the data pipeline, the update loop,
// validation, checkpoints and resume.
#include <pyramidion/train.h>

#include <pyramidion/batching.h>
#include <pyramidion/config.h>
#include <pyramidion/data.h>
#include <pyramidion/distributed.h>
#include <pyramidion/generate.h>
#include <pyramidion/model.h>
#include <pyramidion/rouge.h>
#include <pyramidion/tokenizer.h>

#include "json_fields.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace pyramidion {
namespace {

namespace fs = std::filesystem;
using detail::json;
using detail::ObjectReader;

constexpr const char* kOwner = "TrainConfig";
constexpr const char* const kFields[] = {
    "model", "model_overrides", "train", "valid", "out", "data_format", "skip_bad_records", "truncate",
    "tokenizer", "vocab_size", "max_steps", "max_tokens", "bucket_size", "update_freq", "lr", "warmup_steps",
    "lr_decay", "min_lr", "weight_decay", "beta1", "beta2", "adam_eps", "clip_norm", "label_smoothing", "seed",
    "threads", "device", "log_every", "validate_every", "valid_max_docs", "valid_rouge_docs", "checkpoint_every", "keep_checkpoints", "distributed_timeout", nullptr};

std::vector<std::string> field_list() {
  std::vector<std::string> v;
  for (const char* const* f = kFields; *f; ++f) v.emplace_back(*f);
  return v;
}

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || base_dir.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

// Reads the fields present in `object` into c (absent ones are left as they are).
void read_fields(const json& object, TrainConfig& c) {
  if (!object.is_object())
    throw std::invalid_argument(std::string(kOwner) + ": the JSON must be an object of fields, got " +
                                detail::describe_json(object));
  detail::reject_unknown_keys(kOwner, object, "", field_list());
  const ObjectReader r(object, kOwner);
  r.read("model", c.model);
  if (const json* m = r.find("model_overrides")) {
    if (!m->is_object()) r.wrong_type("model_overrides", *m, "an object of ModelConfig fields");
    for (const auto& item : m->items()) c.model_overrides[item.key()] = item.value().dump();
  }
  r.read("train", c.train);
  r.read("valid", c.valid);
  r.read("out", c.out);
  r.read("data_format", c.data_format);
  r.read("skip_bad_records", c.skip_bad_records);
  r.read("truncate", c.truncate);
  r.read("tokenizer", c.tokenizer);
  r.read("vocab_size", c.vocab_size);
  r.read("max_steps", c.max_steps);
  r.read("max_tokens", c.max_tokens);
  r.read("bucket_size", c.bucket_size);
  r.read("update_freq", c.update_freq);
  r.read("lr", c.lr);
  r.read("warmup_steps", c.warmup_steps);
  r.read("lr_decay", c.lr_decay);
  r.read("min_lr", c.min_lr);
  r.read("weight_decay", c.weight_decay);
  r.read("beta1", c.beta1);
  r.read("beta2", c.beta2);
  r.read("adam_eps", c.adam_eps);
  r.read("clip_norm", c.clip_norm);
  r.read("label_smoothing", c.label_smoothing);
  if (const json* s = r.find("seed")) {
    const int64_t seed = r.to_int("seed", *s);
    if (seed < 0) detail::fail_field(kOwner, "seed", std::to_string(seed), "must be >= 0");
    c.seed = static_cast<uint64_t>(seed);
  }
  r.read("threads", c.threads);
  r.read("device", c.device);
  r.read("log_every", c.log_every);
  r.read("validate_every", c.validate_every);
  r.read("valid_max_docs", c.valid_max_docs);
  r.read("valid_rouge_docs", c.valid_rouge_docs);
  r.read("checkpoint_every", c.checkpoint_every);
  r.read("keep_checkpoints", c.keep_checkpoints);
  r.read("distributed_timeout", c.distributed_timeout);
}

// The model preset with the overrides applied; vocab_size is the tokenizer's when given (> 0).
ModelConfig model_config(const TrainConfig& c, int64_t vocab_size) {
  json preset = detail::parse_strict("TrainConfig.model ('" + c.model + "')",
                                     detail::read_file("TrainConfig.model", c.model));
  if (!preset.is_object())
    throw std::invalid_argument("TrainConfig.model: '" + c.model + "' is not a JSON object");
  for (const auto& [key, value] : c.model_overrides)
    preset[key] = detail::parse_strict("TrainConfig.model_overrides." + key, value);
  if (vocab_size > 0) preset["vocab_size"] = vocab_size;
  try {
    return ModelConfig::from_json_string(preset.dump());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("TrainConfig.model ('" + c.model + "' with model_overrides): " + e.what());
  }
}

void check_min(const char* field, int64_t value, int64_t minimum) {
  if (value < minimum) detail::fail_field(kOwner, field, std::to_string(value), "must be >= " + std::to_string(minimum));
}

void check_file(const char* field, const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw std::runtime_error(std::string(kOwner) + "." + field + " = '" + path + "': no such file");
  std::ifstream in(path);
  if (!in) throw std::runtime_error(std::string(kOwner) + "." + field + " = '" + path + "': cannot be read");
}

// "cpu", "cuda" (cuda:local_rank) or "cuda:N" -> a device; std::invalid_argument for anything
// else, std::runtime_error when CUDA is asked for and absent.
at::Device parse_device(const std::string& name, int local_rank) {
  if (name == "cpu") return at::kCPU;
  int index = local_rank;
  if (name.rfind("cuda:", 0) == 0) {
    size_t used = 0;
    try {
      index = std::stoi(name.substr(5), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != name.size() - 5 || index < 0)
      detail::fail_field(kOwner, "device", "\"" + name + "\"", "must be \"cpu\", \"cuda\" or \"cuda:N\"");
  } else if (name != "cuda") {
    detail::fail_field(kOwner, "device", "\"" + name + "\"", "must be \"cpu\", \"cuda\" or \"cuda:N\"");
  }
  if (!torch::cuda::is_available())
    throw std::runtime_error(std::string(kOwner) + ".device = \"" + name +
                             "\": no CUDA device is available here (use \"cpu\")");
  if (index >= static_cast<int>(torch::cuda::device_count()))
    throw std::runtime_error(std::string(kOwner) + ".device = \"" + name + "\": device " + std::to_string(index) +
                             " does not exist (" + std::to_string(torch::cuda::device_count()) + " CUDA devices)");
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s / 60 % 60));
  else
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%06lld", static_cast<long long>(step));
  return buf;
}

// The complete checkpoints in out/checkpoints, oldest first (temporary ".step-..." dirs excluded).
std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& out) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  const fs::path dir = out / "checkpoints";
  if (!fs::is_directory(dir, ec)) return found;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) != 0 || !entry.is_directory()) continue;
    try {
      size_t used = 0;
      const int64_t step = std::stoll(name.substr(5), &used);
      if (used == name.size() - 5 && fs::is_regular_file(entry.path() / "trainer_state.json"))
        found.emplace_back(step, entry.path());
    } catch (const std::exception&) {
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

// Where the stream of batches is: every update consumes world * update_freq batches, in order,
// across epoch boundaries.
struct DataCursor {
  int64_t epoch = 0;
  int64_t index = 0;  // next batch of the epoch
};

// The epoch's batch list, computed once per epoch.
class BatchStream {
 public:
  BatchStream(const TokenizedCorpus& corpus, BatchingOptions options) : corpus_(corpus), options_(options) {}
  // The batch at `cursor`, then advances it.
  const std::vector<int64_t>& next(DataCursor& cursor) {
    load(cursor.epoch);
    if (cursor.index >= static_cast<int64_t>(batches_.size())) {
      ++cursor.epoch;
      cursor.index = 0;
      load(cursor.epoch);
    }
    return batches_[static_cast<size_t>(cursor.index++)];
  }

 private:
  void load(int64_t epoch) {
    if (epoch == loaded_) return;
    batches_ = make_batches(corpus_, options_, epoch);
    loaded_ = epoch;
  }
  const TokenizedCorpus& corpus_;
  BatchingOptions options_;
  std::vector<std::vector<int64_t>> batches_;
  int64_t loaded_ = -1;
};

struct Counts {
  int64_t documents = 0, skipped = 0, truncated_sources = 0, truncated_targets = 0;
};

// How the config says data files are read.
ReaderOptions reader_options(const TrainConfig& c) {
  ReaderOptions options;
  options.format = data_format_from_string(c.data_format);
  options.skip_bad = c.skip_bad_records;
  return options;
}

// Reads `path` and tokenizes it into a corpus, truncating to the model's lengths (or failing).
// `progress` hears about every 10,000 documents (a large training set takes minutes).
TokenizedCorpus tokenize_file(const TrainConfig& c, const std::string& path, const Tokenizer& tokenizer,
                              const ModelConfig& model, int64_t max_docs, Counts& counts,
                              const std::function<void(const std::string&)>& progress) {
  DocumentReader reader(path, reader_options(c));
  TokenizedCorpus corpus;
  Document doc;
  const int64_t max_source = model.max_source_length, max_target = model.max_target_length - 1;  // + eos
  while ((max_docs <= 0 || corpus.size() < max_docs) && reader.next(doc)) {
    auto source = tokenizer.encode(doc.document);
    auto target = tokenizer.encode(doc.summary);
    if (source.empty() || target.empty()) {
      const std::string what = path + ":" + std::to_string(doc.line) + ": record '" + doc.id + "' has an empty " +
                               (source.empty() ? "document" : "summary") + " after tokenization";
      if (!c.skip_bad_records) throw std::runtime_error(what);
      ++counts.skipped;
      continue;
    }
    if (static_cast<int64_t>(source.size()) > max_source || static_cast<int64_t>(target.size()) > max_target) {
      if (!c.truncate)
        throw std::runtime_error(path + ":" + std::to_string(doc.line) + ": record '" + doc.id + "' has " +
                                 std::to_string(source.size()) + " source and " + std::to_string(target.size()) +
                                 " summary tokens; the model takes at most " + std::to_string(max_source) + " and " +
                                 std::to_string(max_target) + " (set truncate to true to cut them)");
      if (static_cast<int64_t>(source.size()) > max_source) {
        source.resize(static_cast<size_t>(max_source));
        ++counts.truncated_sources;
      }
      if (static_cast<int64_t>(target.size()) > max_target) {
        target.resize(static_cast<size_t>(max_target));
        ++counts.truncated_targets;
      }
    }
    corpus.add(doc.id, source, target);
    if (corpus.size() % 10000 == 0)
      progress(path + ": " + std::to_string(corpus.size()) + " documents tokenized, " +
               std::to_string(corpus.source_tokens()) + " source tokens");
  }
  counts.documents = corpus.size();
  counts.skipped += reader.skipped();
  return corpus;
}

// Summed token-level cross-entropy of a batch (pad positions ignored). Returns the loss (a
// scalar with autograd) and, unsmoothed, the negative log-likelihood sum.
std::pair<at::Tensor, double> batch_loss(Seq2Seq& model, const Batch& batch, const ModelConfig& config,
                                         double label_smoothing) {
  const auto logits = model->forward(batch.src_ids, batch.src_mask, batch.tgt_in);  // (b, t, v)
  const auto flat = logits.reshape({-1, logits.size(2)});                          // (b*t, v)
  const auto target = batch.tgt_out.reshape({-1});                                 // (b*t)
  const auto loss = at::cross_entropy_loss(flat, target, {}, at::Reduction::Sum, config.pad_id, label_smoothing);
  double nll = 0;
  if (label_smoothing == 0) {
    nll = loss.item<double>();
  } else {
    at::NoGradGuard no_grad;
    nll = at::cross_entropy_loss(flat, target, {}, at::Reduction::Sum, config.pad_id, 0.0).item<double>();
  }
  return {loss, nll};
}

// Mean NLL per target token over the validation corpus, shared among the ranks by batch.
double validation_loss(Seq2Seq& model, const TokenizedCorpus& corpus, const TrainConfig& c,
                       const ModelConfig& config, ProcessGroup& group, at::Device device) {
  if (corpus.size() == 0) return -1;
  at::NoGradGuard no_grad;
  model->eval();
  const auto batches = make_batches(corpus, BatchingOptions().max_tokens(c.max_tokens).bucket_size(c.bucket_size).seed(c.seed), 0);
  double nll = 0, tokens = 0;
  for (size_t i = static_cast<size_t>(group.rank()); i < batches.size(); i += static_cast<size_t>(group.world_size())) {
    const Batch batch = collate(corpus, batches[i], config).to(device);
    nll += batch_loss(model, batch, config, 0.0).second;
    tokens += static_cast<double>(batch.target_tokens);
  }
  model->train();
  nll = group.allreduce_sum(nll);
  tokens = group.allreduce_sum(tokens);
  return nll / tokens;
}

// ROUGE F1 (stemmed, as summarization papers report) of greedy summaries of the first `docs`
// validation examples against their (truncated) reference summaries, both detokenized.
RougeScores validation_rouge(Seq2Seq& model, const TokenizedCorpus& corpus, int64_t docs, const Tokenizer& tokenizer,
                             const ModelConfig& config, at::Device device) {
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < std::min(docs, corpus.size()); ++i) indices.push_back(i);
  at::NoGradGuard no_grad;
  model->eval();
  const Batch batch = collate(corpus, indices, config).to(device);
  const auto generation = generate(model, batch.src_ids, batch.src_mask, GenerateOptions().no_repeat_ngram_size(3));
  model->train();
  const auto tokens = generation.tokens.cpu();  // (b, t)
  const auto token = tokens.accessor<int64_t, 2>();
  std::vector<std::string> predictions, references;
  for (size_t r = 0; r < indices.size(); ++r) {
    std::vector<int64_t> ids;
    for (int64_t j = 0; j < tokens.size(1); ++j) {
      const int64_t id = token[static_cast<int64_t>(r)][j];
      if (id == config.eos_id || id == config.pad_id) break;
      ids.push_back(id);
    }
    predictions.push_back(tokenizer.decode(ids));
    references.push_back(tokenizer.decode(corpus.target(indices[r])));
  }
  RougeCorpusOptions options;
  options.rouge.use_stemmer = true;
  options.bootstrap_samples = 0;
  const auto report = rouge_corpus(predictions, references, options);
  RougeScores mean;
  mean.rouge1.f1 = report.rouge1.f1.mid;
  mean.rouge2.f1 = report.rouge2.f1.mid;
  mean.rougeL.f1 = report.rougeL.f1.mid;
  return mean;
}

void append_line(const fs::path& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << '\n';
  if (!out) throw std::runtime_error("train: cannot write " + path.string());
}

// Writes out/checkpoints/step-N: the model (Seq2Seq::save), the tokenizer, the optimizer state
// and the trainer state, assembled under a temporary name and renamed when complete. Keeps the
// newest `keep` checkpoints and points out/latest at the new one.
std::string save_checkpoint(const fs::path& out, Seq2Seq& model, torch::optim::AdamW& optimizer,
                            const Tokenizer& tokenizer, const TrainConfig& c, int64_t step, const DataCursor& cursor,
                            int64_t world) {
  const std::string who = "train: checkpoint";
  const fs::path dir = out / "checkpoints";
  fs::create_directories(dir);
  const fs::path final_dir = dir / step_name(step);
  const fs::path partial = dir / ("." + step_name(step) + ".partial");
  std::error_code ec;
  // Leftovers of checkpoints that a crash interrupted (any step) are removed first.
  std::vector<fs::path> leftovers;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename().string().rfind(".step-", 0) == 0) leftovers.push_back(entry.path());
  for (const auto& path : leftovers) fs::remove_all(path, ec);
  model->save(partial.string());  // config.json + weights.pt
  tokenizer.save((partial / "tokenizer.model").string());
  torch::save(optimizer, (partial / "optimizer.pt").string());
  detail::sync_path(who, (partial / "optimizer.pt").string());
  json state;
  state["step"] = step;
  state["epoch"] = cursor.epoch;
  state["batch_in_epoch"] = cursor.index;
  state["world_size"] = world;
  state["update_freq"] = c.update_freq;
  state["train_config"] = json::parse(c.to_json_string());
  detail::write_file_atomically(who, (partial / "trainer_state.json").string(), state.dump(2) + "\n");
  // The generation settings pyramidion-summarize starts from (SummarizeOptions::from_checkpoint);
  // edit the file to change a checkpoint's defaults.
  const json generation{{"beam_size", 4},
                        {"max_length", model->config().max_target_length},
                        {"min_length", 0},
                        {"length_penalty", 1.0},
                        {"no_repeat_ngram_size", 3}};
  detail::write_file_atomically(who, (partial / "generation.json").string(), generation.dump(2) + "\n");
  detail::sync_path(who, partial.string());
  if (fs::exists(final_dir)) fs::remove_all(final_dir);  // a rerun of the same step after a resume
  fs::rename(partial, final_dir);
  detail::sync_path(who, dir.string());

  // out/latest -> checkpoints/step-N, replaced atomically.
  const fs::path link_tmp = out / ".latest.tmp";
  fs::remove(link_tmp, ec);
  fs::create_directory_symlink(fs::path("checkpoints") / step_name(step), link_tmp);
  fs::rename(link_tmp, out / "latest");

  auto all = list_checkpoints(out);
  while (static_cast<int64_t>(all.size()) > c.keep_checkpoints) {
    if (all.front().first != step) {
      // Hidden first (one rename), then deleted: a crash never leaves a half-deleted step-N.
      const fs::path doomed = dir / ("." + all.front().second.filename().string() + ".deleting");
      fs::rename(all.front().second, doomed, ec);
      fs::remove_all(ec ? all.front().second : doomed, ec);
    }
    all.erase(all.begin());
  }
  return final_dir.string();
}

std::string scientific(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", v);
  return buf;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

}  // namespace

// ---- TrainConfig --------------------------------------------------------------------------------

std::string TrainConfig::help_text() {
  // One line per field of kFields, same order.
  static const char* const kHelp[] = {
      "model preset (ModelConfig JSON, e.g. configs/small-deep-pyramidion.json); required",
      "ModelConfig fields over the preset, e.g. {\"dropout\": 0.2} (--set model.FIELD=VALUE)",
      "training data: JSON lines, arXiv/PubMed or {id, document, summary}; required",
      "validation data (same formats); \"\" = no validation",
      "output directory (checkpoints, tokenizer, metrics.jsonl, latest); required",
      "\"automatic\" (by each record's keys), \"arxiv\" or \"plain\"",
      "skip (and count) malformed records instead of stopping at the first",
      "cut sources/summaries to the model's maximum lengths (counted); false = a long example is an error",
      "an existing sentencepiece model; \"\" = train one on the training split",
      "vocabulary of a trained tokenizer (the model's vocab_size follows the tokenizer)",
      "optimizer updates in total",
      "micro-batch budget: examples x (longest source + longest target) tokens",
      "examples sorted by length together when batching",
      "micro-batches accumulated per update, per process",
      "peak learning rate",
      "linear warmup updates",
      "after warmup: \"linear\" (to min_lr at max_steps), \"cosine\", \"inverse_sqrt\" or \"constant\"",
      "floor of the decay",
      "AdamW decoupled weight decay (not on biases and LayerNorm gains)",
      "AdamW beta1",
      "AdamW beta2",
      "AdamW epsilon",
      "global gradient-norm clipping; 0 = none",
      "label smoothing of the training loss (the logged loss is plain NLL)",
      "seed of the weights, the data order and dropout",
      "intra-op threads; 0 = LibTorch's default",
      "\"cpu\", \"cuda\" (device LOCAL_RANK) or \"cuda:N\"",
      "progress line and metrics entry every N updates",
      "validation every N updates (and at the end); 0 = only at the end",
      "validation documents used; 0 = all",
      "greedy summaries of this many validation documents scored with ROUGE at each validation; 0 = off",
      "checkpoint every N updates (and at the end, and on SIGINT/SIGTERM); 0 = only then",
      "newest checkpoints kept",
      "seconds a process waits in a collective (data-parallel runs)"};
  static_assert(sizeof(kHelp) / sizeof(kHelp[0]) == sizeof(kFields) / sizeof(kFields[0]) - 1,
                "one help line per field");
  const json defaults = json::parse(TrainConfig().to_json_string());
  std::string text;
  for (size_t i = 0; kFields[i]; ++i) {
    std::string line = std::string("  ") + kFields[i] + " = " + defaults.at(kFields[i]).dump();
    if (line.size() < 34) line.resize(34, ' ');
    text += line + "  " + kHelp[i] + "\n";
  }
  return text;
}

void TrainConfig::set(const std::string& key, const std::string& value) {
  json parsed;
  try {
    parsed = json::parse(value);
  } catch (const json::exception&) {
    parsed = value;  // a bare word: a string
  }
  if (key.rfind("model.", 0) == 0) {
    const std::string field = key.substr(6);
    if (field.empty()) throw std::invalid_argument("TrainConfig: empty model field in '" + key + "'");
    // Checked when the model config is built (validate()), with the preset's other fields.
    model_overrides[field] = parsed.dump();
    return;
  }
  // Strings stay strings even when they look like JSON numbers ("--set out=2024").
  const bool is_string_field = key == "model" || key == "train" || key == "valid" || key == "out" ||
                               key == "data_format" || key == "tokenizer" || key == "lr_decay" || key == "device";
  json object;
  object[key] = is_string_field ? json(value) : parsed;
  try {
    read_fields(object, *this);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(e.what()) + " (from '" + key + "=" + value + "')");
  }
}

void TrainConfig::validate() const {
  const auto require = [](const char* field, const std::string& v) {
    if (v.empty()) detail::fail_field(kOwner, field, "\"\"", "is required");
  };
  require("model", model);
  require("train", train);
  require("out", out);
  try {
    data_format_from_string(data_format);  // the reader's own list of formats
  } catch (const std::invalid_argument&) {
    detail::fail_field(kOwner, "data_format", "\"" + data_format + "\"",
                       "must be one of \"automatic\", \"arxiv\", \"plain\"");
  }
  if (lr_decay != "linear" && lr_decay != "cosine" && lr_decay != "inverse_sqrt" && lr_decay != "constant")
    detail::fail_field(kOwner, "lr_decay", "\"" + lr_decay + "\"",
                       "must be one of \"linear\", \"cosine\", \"inverse_sqrt\", \"constant\"");
  check_min("vocab_size", vocab_size, 16);
  check_min("max_steps", max_steps, 1);
  check_min("max_tokens", max_tokens, 2);
  check_min("bucket_size", bucket_size, 1);
  check_min("update_freq", update_freq, 1);
  check_min("warmup_steps", warmup_steps, 0);
  check_min("threads", threads, 0);
  parse_device(device, 0);  // the syntax, and that CUDA is there when asked for
  check_min("log_every", log_every, 1);
  check_min("validate_every", validate_every, 0);
  check_min("valid_max_docs", valid_max_docs, 0);
  check_min("valid_rouge_docs", valid_rouge_docs, 0);
  check_min("checkpoint_every", checkpoint_every, 0);
  check_min("keep_checkpoints", keep_checkpoints, 1);
  check_min("distributed_timeout", distributed_timeout, 1);
  const auto positive = [](const char* field, double v) {
    if (!(v > 0 && std::isfinite(v))) detail::fail_field(kOwner, field, detail::format_double(v), "must be finite and > 0");
  };
  const auto unit = [](const char* field, double v) {
    if (!(v >= 0 && v < 1)) detail::fail_field(kOwner, field, detail::format_double(v), "must be in [0, 1)");
  };
  positive("lr", lr);
  positive("adam_eps", adam_eps);
  if (!(min_lr >= 0 && min_lr <= lr))
    detail::fail_field(kOwner, "min_lr", detail::format_double(min_lr), "must be in [0, lr = " + detail::format_double(lr) + "]");
  if (!(weight_decay >= 0 && std::isfinite(weight_decay)))
    detail::fail_field(kOwner, "weight_decay", detail::format_double(weight_decay), "must be finite and >= 0");
  if (!(clip_norm >= 0 && std::isfinite(clip_norm)))
    detail::fail_field(kOwner, "clip_norm", detail::format_double(clip_norm), "must be finite and >= 0 (0 = no clipping)");
  unit("beta1", beta1);
  unit("beta2", beta2);
  unit("label_smoothing", label_smoothing);

  check_file("model", model);
  check_file("train", train);
  if (!valid.empty()) check_file("valid", valid);
  if (!tokenizer.empty()) check_file("tokenizer", tokenizer);
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    throw std::runtime_error(std::string(kOwner) + ".out = '" + out + "' exists and is not a directory");
  const ModelConfig m = model_config(*this, 0);  // the preset and overrides are valid
  if (max_tokens < m.max_source_length + m.max_target_length)
    detail::fail_field(kOwner, "max_tokens", std::to_string(max_tokens),
                       "must be >= max_source_length + max_target_length = " +
                           std::to_string(m.max_source_length + m.max_target_length) +
                           " of the model, so that every example fits a batch");
}

TrainConfig TrainConfig::from_json_string(const std::string& text, const std::string& base_dir) {
  TrainConfig c;
  read_fields(detail::parse_strict(kOwner, text), c);
  for (std::string* path : {&c.model, &c.train, &c.valid, &c.out, &c.tokenizer}) *path = resolve(base_dir, *path);
  return c;
}

TrainConfig TrainConfig::from_json_file(const std::string& path) {
  const std::string where = "TrainConfig::from_json_file('" + path + "')";
  const std::string text = detail::read_file(where, path);
  try {
    return from_json_string(text, fs::path(path).parent_path().string());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
}

std::string TrainConfig::to_json_string() const {
  nlohmann::ordered_json j;
  j["model"] = model;
  nlohmann::ordered_json overrides = nlohmann::ordered_json::object();
  for (const auto& [k, v] : model_overrides) overrides[k] = nlohmann::ordered_json::parse(v);
  j["model_overrides"] = overrides;
  j["train"] = train;
  j["valid"] = valid;
  j["out"] = out;
  j["data_format"] = data_format;
  j["skip_bad_records"] = skip_bad_records;
  j["truncate"] = truncate;
  j["tokenizer"] = tokenizer;
  j["vocab_size"] = vocab_size;
  j["max_steps"] = max_steps;
  j["max_tokens"] = max_tokens;
  j["bucket_size"] = bucket_size;
  j["update_freq"] = update_freq;
  j["lr"] = lr;
  j["warmup_steps"] = warmup_steps;
  j["lr_decay"] = lr_decay;
  j["min_lr"] = min_lr;
  j["weight_decay"] = weight_decay;
  j["beta1"] = beta1;
  j["beta2"] = beta2;
  j["adam_eps"] = adam_eps;
  j["clip_norm"] = clip_norm;
  j["label_smoothing"] = label_smoothing;
  j["seed"] = seed;
  j["threads"] = threads;
  j["device"] = device;
  j["log_every"] = log_every;
  j["validate_every"] = validate_every;
  j["valid_max_docs"] = valid_max_docs;
  j["valid_rouge_docs"] = valid_rouge_docs;
  j["checkpoint_every"] = checkpoint_every;
  j["keep_checkpoints"] = keep_checkpoints;
  j["distributed_timeout"] = distributed_timeout;
  return j.dump(2);
}

double learning_rate(const TrainConfig& c, int64_t step) {
  const double s = static_cast<double>(std::max<int64_t>(step, 1));
  if (c.warmup_steps > 0 && step <= c.warmup_steps) return c.lr * s / static_cast<double>(c.warmup_steps);
  const double w = static_cast<double>(c.warmup_steps);
  const double span = std::max(1.0, static_cast<double>(c.max_steps) - w);
  const double progress = std::min(1.0, (s - w) / span);  // 0 after warmup .. 1 at max_steps
  if (c.lr_decay == "linear") return c.min_lr + (c.lr - c.min_lr) * (1.0 - progress);
  if (c.lr_decay == "cosine") return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
  if (c.lr_decay == "inverse_sqrt") return std::max(c.min_lr, c.lr * std::sqrt(std::max(w, 1.0) / s));
  return c.lr;  // constant
}

// ---- the run ------------------------------------------------------------------------------------

TrainResult train(const TrainConfig& config, const TrainRunOptions& run) {
  config.validate();
  DistributedOptions distributed;
  distributed.timeout = std::chrono::seconds(config.distributed_timeout);
  ProcessGroup group = ProcessGroup::from_environment(distributed);
  const bool main = group.is_main();
  std::ostream* log = main ? run.log() : nullptr;
  const auto say = [&](const std::string& line) {
    if (log) *log << line << std::endl;
  };
  // Work that rank 0 does alone (every write to the output directory, tokenizer training, ROUGE)
  // while the others wait:
  // every rank learns whether it succeeded, so that a failure on rank 0 stops all of them with
  // its message instead of leaving them in a collective until it times out.
  const auto on_main = [&](const std::string& what, const std::function<void()>& work) {
    std::string error;
    if (main) {
      try {
        work();
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    if (group.allreduce_sum(error.empty() ? 0.0 : 1.0) > 0)
      throw std::runtime_error(main ? error : "train: rank 0 failed while " + what + " (its log says why)");
  };
  const fs::path out(config.out);
  const auto start_time = std::chrono::steady_clock::now();
  if (config.threads > 0) at::set_num_threads(static_cast<int>(config.threads));
  const at::Device device = parse_device(config.device, group.local_rank());

  // ---- where we start
  const auto checkpoints = list_checkpoints(out);
  if (run.resume() && checkpoints.empty())
    throw std::runtime_error("train: --resume, but " + (out / "checkpoints").string() + " holds no checkpoint");
  if (!run.resume() && !checkpoints.empty())
    throw std::runtime_error("train: " + (out / "checkpoints").string() + " already holds checkpoints (newest " +
                             checkpoints.back().second.filename().string() +
                             "); pass --resume to continue that run, or choose another output directory");
  const fs::path resume_dir = run.resume() ? checkpoints.back().second : fs::path();
  group.barrier();  // every rank has looked before rank 0 writes anything
  on_main("creating the output directory", [&] { fs::create_directories(out / "checkpoints"); });

  // ---- tokenizer: the checkpoint's, the given one, or trained on the training split by rank 0
  const fs::path tokenizer_path = out / "tokenizer.model";
  std::string tokenizer_source;
  if (run.resume()) {
    tokenizer_source = (resume_dir / "tokenizer.model").string();
  } else if (!config.tokenizer.empty()) {
    tokenizer_source = config.tokenizer;
  } else {
    on_main("training the tokenizer", [&] {
      say("training a " + std::to_string(config.vocab_size) + "-token sentencepiece model on " + config.train);
      DocumentReader reader(config.train, reader_options(config));
      // The first documents up to kTokenizerTextBytes of text: plenty for a subword vocabulary,
      // and bounded memory on a multi-gigabyte training set.
      constexpr size_t kTokenizerTextBytes = size_t{256} << 20;
      std::vector<std::string> texts;
      size_t bytes = 0;
      Document doc;
      while (bytes < kTokenizerTextBytes && reader.next(doc)) {
        bytes += doc.document.size() + doc.summary.size();
        texts.push_back(std::move(doc.document));
        texts.push_back(std::move(doc.summary));
      }
      TokenizerTrainOptions topts;
      topts.vocab_size = config.vocab_size;
      Tokenizer::train(texts, topts).save(tokenizer_path.string());
    });
    tokenizer_source = tokenizer_path.string();
  }
  const Tokenizer tokenizer = Tokenizer::load(tokenizer_source);
  on_main("saving the tokenizer", [&] {
    if (tokenizer_source != tokenizer_path.string()) tokenizer.save(tokenizer_path.string());
  });
  ModelConfig mconfig = model_config(config, tokenizer.vocab_size());
  if (tokenizer.pad_id() != mconfig.pad_id || tokenizer.bos_id() != mconfig.bos_id || tokenizer.eos_id() != mconfig.eos_id)
    throw std::invalid_argument("train: the tokenizer's pad/bos/eos ids (" + std::to_string(tokenizer.pad_id()) + ", " +
                                std::to_string(tokenizer.bos_id()) + ", " + std::to_string(tokenizer.eos_id()) +
                                ") differ from the model's (" + std::to_string(mconfig.pad_id) + ", " +
                                std::to_string(mconfig.bos_id) + ", " + std::to_string(mconfig.eos_id) + ")");

  // ---- data
  Counts train_counts, valid_counts;
  const TokenizedCorpus train_corpus = tokenize_file(config, config.train, tokenizer, mconfig, 0, train_counts, say);
  if (train_corpus.size() == 0) throw std::runtime_error("train: " + config.train + " holds no usable record");
  const auto describe_counts = [&](const char* name, const std::string& path, const Counts& n,
                                   const TokenizedCorpus& corpus) {
    say(std::string(name) + ": " + path + ": " + std::to_string(n.documents) + " documents, " +
        std::to_string(corpus.source_tokens()) + " source and " + std::to_string(corpus.target_tokens()) +
        " summary tokens; " + std::to_string(n.truncated_sources) + " sources truncated to " +
        std::to_string(mconfig.max_source_length) + " tokens, " + std::to_string(n.truncated_targets) +
        " summaries to " + std::to_string(mconfig.max_target_length - 1) + "; " + std::to_string(n.skipped) +
        " bad records skipped");
  };
  describe_counts("train", config.train, train_counts, train_corpus);
  TokenizedCorpus valid_corpus;
  if (!config.valid.empty()) {
    valid_corpus = tokenize_file(config, config.valid, tokenizer, mconfig, config.valid_max_docs, valid_counts, say);
    describe_counts("valid", config.valid, valid_counts, valid_corpus);
  }

  // ---- model and optimizer
  at::manual_seed(config.seed);
  Seq2Seq model = run.resume() ? Seq2Seq::load(resume_dir.string()) : Seq2Seq(mconfig);
  if (run.resume() && model->config() != mconfig)
    throw std::invalid_argument("train: the model config of " + resume_dir.string() +
                                " differs from the one this run's config builds; resume with the same model settings");
  model->to(device);
  model->train();
  group.broadcast_parameters(*model);
  std::vector<at::Tensor> decay, no_decay;  // no weight decay on biases and LayerNorm gains
  for (const auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(config.lr)
                                     .betas({config.beta1, config.beta2})
                                     .eps(config.adam_eps)
                                     .weight_decay(config.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(config.lr)
                                        .betas({config.beta1, config.beta2})
                                        .eps(config.adam_eps)
                                        .weight_decay(0.0)));
  torch::optim::AdamW optimizer(std::move(groups));

  int64_t step = 0;
  DataCursor cursor;
  if (run.resume()) {
    torch::load(optimizer, (resume_dir / "optimizer.pt").string());
    const json state = json::parse(detail::read_file("train: resume", (resume_dir / "trainer_state.json").string()));
    step = state.at("step").get<int64_t>();
    cursor.epoch = state.at("epoch").get<int64_t>();
    cursor.index = state.at("batch_in_epoch").get<int64_t>();
    say("resumed from " + resume_dir.string() + " at step " + std::to_string(step));
    // The optimizer file restores AdamW's moments and its hyperparameters: the config's win.
    for (size_t g = 0; g < optimizer.param_groups().size(); ++g) {
      auto& o = static_cast<torch::optim::AdamWOptions&>(optimizer.param_groups()[g].options());
      o.betas({config.beta1, config.beta2}).eps(config.adam_eps).weight_decay(g == 0 ? config.weight_decay : 0.0);
    }
    // Settings that make the continuation differ from an uninterrupted run: said, not refused.
    const json saved = state.at("train_config");
    const json now = json::parse(config.to_json_string());
    std::string changed;
    for (const char* key : {"seed", "max_tokens", "bucket_size", "label_smoothing", "lr", "warmup_steps", "lr_decay",
                            "min_lr", "max_steps", "clip_norm", "weight_decay", "beta1", "beta2", "adam_eps"})
      if (saved.contains(key) && saved.at(key) != now.at(key))
        changed += std::string(changed.empty() ? "" : ", ") + key + " " + saved.at(key).dump() + " -> " + now.at(key).dump();
    const int64_t saved_batches = state.value("world_size", int64_t{1}) * state.value("update_freq", int64_t{1});
    if (saved_batches != group.world_size() * config.update_freq)
      changed += std::string(changed.empty() ? "" : ", ") + "batches per update " + std::to_string(saved_batches) +
                 " -> " + std::to_string(group.world_size() * config.update_freq);
    if (!changed.empty())
      say("warning: resuming with changed settings (" + changed +
          "); the run will not match an uninterrupted one");
    if (step >= config.max_steps)
      say("the checkpoint is at step " + std::to_string(step) + " >= max_steps = " + std::to_string(config.max_steps) +
          ": nothing to train (raise --max-steps to continue)");
  }
  on_main("writing train_config.json", [&] {
    detail::write_file_atomically("train", (out / "train_config.json").string(), config.to_json_string() + "\n");
    if (run.resume()) append_line(out / "metrics.jsonl", json{{"event", "resume"}, {"step", step}}.dump());
  });
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  say("model: " + std::to_string(params) + " parameters, " + std::to_string(mconfig.encoder_layers) + "+" +
      std::to_string(mconfig.decoder_layers) + " layers, d_model " + std::to_string(mconfig.d_model) +
      "; ranks: " + std::to_string(group.world_size()) + "; updates " + std::to_string(step) + " -> " +
      std::to_string(config.max_steps));

  // ---- the update loop
  BatchStream stream(train_corpus,
                     BatchingOptions().max_tokens(config.max_tokens).bucket_size(config.bucket_size).seed(config.seed));
  const int64_t world = group.world_size(), rank = group.rank();
  TrainResult result;
  double interval_loss = 0, interval_tokens = 0, interval_source = 0;
  auto interval_start = std::chrono::steady_clock::now();
  const auto run_start = interval_start;
  const int64_t first_step = step;
  std::string last_checkpoint;
  bool interrupted = false;
  const auto checkpoint = [&]() {
    on_main("writing a checkpoint", [&] {
      last_checkpoint = save_checkpoint(out, model, optimizer, tokenizer, config, step, cursor, world);
    });
    if (main) say("checkpoint " + last_checkpoint);
  };
  const auto validate = [&]() {
    if (valid_corpus.size() == 0) return;
    result.valid_loss = validation_loss(model, valid_corpus, config, mconfig, group, device);
    json entry{{"step", step}, {"valid_loss", result.valid_loss}, {"valid_ppl", std::exp(result.valid_loss)}};
    std::string rouge_text;
    on_main("scoring validation summaries", [&] {
      if (config.valid_rouge_docs == 0) return;
      const auto r = validation_rouge(model, valid_corpus, config.valid_rouge_docs, tokenizer, mconfig, device);
      result.valid_rouge1 = r.rouge1.f1;
      result.valid_rouge2 = r.rouge2.f1;
      result.valid_rougeL = r.rougeL.f1;
      entry["valid_rouge1"] = r.rouge1.f1;
      entry["valid_rouge2"] = r.rouge2.f1;
      entry["valid_rougeL"] = r.rougeL.f1;
      rouge_text = "  ROUGE-1/2/L " + fixed(100 * r.rouge1.f1, 2) + "/" + fixed(100 * r.rouge2.f1, 2) + "/" +
                   fixed(100 * r.rougeL.f1, 2) + " (greedy, " +
                   std::to_string(std::min(config.valid_rouge_docs, valid_corpus.size())) + " docs)";
    });
    say("step " + std::to_string(step) + "  valid loss " + fixed(result.valid_loss, 4) + "  ppl " +
        fixed(std::exp(result.valid_loss), 2) + rouge_text);
    on_main("writing metrics.jsonl", [&] { append_line(out / "metrics.jsonl", entry.dump()); });
  };

  while (step < config.max_steps) {
    // Stop requests are agreed on by every rank, so that all stop after the same update.
    const bool stop_here = run.stop() && run.stop()->load();
    if (group.allreduce_sum(stop_here ? 1.0 : 0.0) > 0) {
      interrupted = true;
      break;
    }
    ++step;
    // The update's world * update_freq batches, in stream order; this rank takes every world-th.
    std::vector<std::vector<int64_t>> mine;
    double global_tokens = 0;
    for (int64_t j = 0; j < world * config.update_freq; ++j) {
      const auto& batch = stream.next(cursor);
      for (const int64_t i : batch) global_tokens += static_cast<double>(train_corpus.target_length(i) + 1);
      if (j % world == rank) mine.push_back(batch);
    }
    // Dropout masks from (seed, step, rank): a resumed run draws what an uninterrupted one would.
    at::manual_seed(config.seed * 1000003ULL + static_cast<uint64_t>(step) * 7919ULL + static_cast<uint64_t>(rank));
    double local_nll = 0, local_source = 0;
    for (const auto& indices : mine) {
      const Batch batch = collate(train_corpus, indices, mconfig).to(device);
      auto [loss, nll] = batch_loss(model, batch, mconfig, config.label_smoothing);
      loss.backward();
      local_nll += nll;
      local_source += static_cast<double>(batch.source_tokens);
    }
    // Every rank checks the same sum, before any weight changes.
    const double update_nll = group.allreduce_sum(local_nll);
    if (!std::isfinite(update_nll))
      throw std::runtime_error("train: the loss became " + std::to_string(update_nll) + " at step " +
                               std::to_string(step) + " (lower lr, or check the data); the last checkpoint is intact");
    group.allreduce_gradients(*model, global_tokens);  // sum over ranks, / the update's target tokens
    double grad_norm = 0;
    if (config.clip_norm > 0) grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), config.clip_norm);
    const double lr = learning_rate(config, step);
    for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    optimizer.step();
    optimizer.zero_grad();
    interval_loss += update_nll;
    interval_tokens += global_tokens;
    interval_source += local_source;
    if (run.on_update()) run.on_update()(step);

    if (step % config.log_every == 0 || step == config.max_steps) {
      const double loss = interval_loss / interval_tokens;  // NLL per target token, all ranks
      const double source = group.allreduce_sum(interval_source);
      const auto now = std::chrono::steady_clock::now();
      const double seconds = std::chrono::duration<double>(now - interval_start).count();
      const double elapsed = std::chrono::duration<double>(now - run_start).count();
      const double per_step = elapsed / static_cast<double>(step - first_step);
      const double tokens_per_s = (interval_tokens + source) / std::max(seconds, 1e-9);
      result.train_loss = loss;
      say("step " + std::to_string(step) + "/" + std::to_string(config.max_steps) + "  loss " + fixed(loss, 4) +
          "  lr " + scientific(lr) + "  gnorm " + fixed(grad_norm, 2) + "  " +
          std::to_string(static_cast<int64_t>(tokens_per_s)) + " tok/s  epoch " + std::to_string(cursor.epoch) +
          "  elapsed " + format_duration(elapsed) + "  eta " +
          format_duration(per_step * static_cast<double>(config.max_steps - step)));
      on_main("writing metrics.jsonl", [&] {
        append_line(out / "metrics.jsonl", json{{"step", step},
                                                {"loss", loss},
                                                {"lr", lr},
                                                {"grad_norm", grad_norm},
                                                {"tokens_per_s", tokens_per_s},
                                                {"epoch", cursor.epoch},
                                                {"elapsed_s", elapsed}}
                                               .dump());
      });
      interval_loss = interval_tokens = interval_source = 0;
      interval_start = now;
    }
    // Checkpoint first: a validation that fails (e.g. out of memory) then loses nothing.
    if (config.checkpoint_every > 0 && step % config.checkpoint_every == 0 && step < config.max_steps) checkpoint();
    if (config.validate_every > 0 && step % config.validate_every == 0 && step < config.max_steps) validate();
  }
  if (step > first_step) checkpoint();
  if (last_checkpoint.empty() && run.resume()) last_checkpoint = main ? resume_dir.string() : "";
  if (!interrupted && step > first_step) validate();
  if (interrupted) say("stopped at step " + std::to_string(step) + "; continue with --resume");
  result.step = step;
  result.interrupted = interrupted;
  result.checkpoint = last_checkpoint;
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  say("done: " + std::to_string(step) + " updates in " + format_duration(total));
  return result;
}

}  // namespace pyramidion
