// TrainConfig (see include/pyramidion/train.h): one table of fields for reading, writing, --help,
// --set and the resume diff; validation; the model config it builds; the learning-rate schedule.
#include <pyramidion/model.h>
#include <pyramidion/train.h>
#include <pyramidion/threads.h>
#include <pyramidion/tokenizer.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/data_format.h"
#include "training/train_config_table.h"
#include "util/output_file.h"
#include "util/json_fields.h"
#include "util/paths.h"
#include "util/text.h"

namespace pyramidion {
namespace {

namespace fs = std::filesystem;
using detail::json;
using Table = detail::FieldTable<TrainConfig>;
using detail::kContinuation;
using detail::kPathField;

constexpr const char* kOwner = "TrainConfig";

const detail::EnumNames<LrDecay>& lr_decay_names() {
  static const detail::EnumNames<LrDecay> names = {{LrDecay::linear, "linear"},
                                                   {LrDecay::cosine, "cosine"},
                                                   {LrDecay::inverse_sqrt, "inverse_sqrt"},
                                                   {LrDecay::constant, "constant"}};
  return names;
}

// "model_overrides": an object of ModelConfig fields, kept as JSON text until the model config is
// built (validate(), model_config()).
Table::Field model_overrides_field() {
  Table::Field f{"model_overrides",
                 "ModelConfig fields over the preset, e.g. {\"dropout\": 0.2} (--set model.FIELD=VALUE)",
                 0,
                 false,
                 nullptr,
                 nullptr};
  f.read = [](const detail::ObjectReader& r, TrainConfig& c) {
    const json* m = r.find("model_overrides");
    if (!m) return;
    if (!m->is_object()) r.wrong_type("model_overrides", *m, "an object of ModelConfig fields");
    for (const auto& item : m->items()) c.model_overrides[item.key()] = item.value().dump();
  };
  f.write = [](const TrainConfig& c) {
    auto overrides = nlohmann::ordered_json::object();
    for (const auto& [k, v] : c.model_overrides) overrides[k] = nlohmann::ordered_json::parse(v);
    return overrides;
  };
  return f;
}

// "device": a name that parse_device() reads.
Table::Field device_field() {
  Table::Field f{"device", "\"cpu\", \"cuda\" (device LOCAL_RANK) or \"cuda:N\"", 0, true, nullptr, nullptr};
  f.read = [](const detail::ObjectReader& r, TrainConfig& c) {
    std::string name;
    r.read("device", name);
    if (r.find("device")) c.device = parse_device(name, std::string(kOwner) + ".device");
  };
  f.write = [](const TrainConfig& c) { return nlohmann::ordered_json(to_string(c.device)); };
  return f;
}

// "precision": a name that parse_precision() reads.
Table::Field precision_field() {
  Table::Field f{"precision",
                 "\"fp32\", \"bf16\" (autocast; weights and AdamW state stay fp32) or \"fp16\" (the same with "
                 "dynamic loss scaling; CUDA only)",
                 kContinuation, true, nullptr, nullptr};
  f.read = [](const detail::ObjectReader& r, TrainConfig& c) {
    std::string name;
    r.read("precision", name);
    if (r.find("precision")) c.precision = parse_precision(name, std::string(kOwner) + ".precision");
  };
  f.write = [](const TrainConfig& c) { return nlohmann::ordered_json(to_string(c.precision)); };
  return f;
}

void check_min(const char* field, int64_t value, int64_t minimum) {
  if (value < minimum)
    detail::fail_field(kOwner, field, std::to_string(value), "must be >= " + std::to_string(minimum));
}

void check_file(const char* field, const std::string& path) {
  detail::check_input_file(std::string(kOwner) + "." + field, path);
}

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || base_dir.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

}  // namespace

namespace detail {

const Table& train_config_table() {
  static const Table table =
      Table(kOwner)
          .add("model", &TrainConfig::model,
               "model preset (ModelConfig JSON, e.g. configs/small-deep-pyramidion.json); required unless init",
               kPathField)
          .add("init", &TrainConfig::init,
               "a model directory to start from (pyramidion-import's output, a checkpoint): its architecture, "
               "weights and tokenizer; the pooling schedule, block size, lengths and dropout may change",
               kPathField)
          .add(model_overrides_field())
          .add("train", &TrainConfig::train,
               "training data: JSON lines, arXiv/PubMed or {id, document, summary}; this or data",
               kPathField | kContinuation)
          .add("valid", &TrainConfig::valid,
               "validation data (same formats); \"\" = the data's \"valid\" split, or no validation", kPathField)
          .add("data", &TrainConfig::data,
               "a dataset made by pyramidion-preprocess, memory-mapped (its train and valid splits, its tokenizer); "
               "this or train",
               kPathField | kContinuation)
          .add("out", &TrainConfig::out, "output directory (checkpoints, tokenizer, metrics.jsonl, latest); required",
               kPathField)
          .add("data_format", &TrainConfig::data_format, data_format_names(),
               "\"auto\" (by each record's keys), \"arxiv\" or \"plain\"")
          .add("skip_bad_records", &TrainConfig::skip_bad_records,
               "skip (and count) malformed records instead of stopping at the first")
          .add("truncate", &TrainConfig::truncate,
               "cut sources/summaries to the model's maximum lengths (counted); false = a long example is an error")
          .add("tokenizer", &TrainConfig::tokenizer,
               "an existing sentencepiece model; \"\" = the data's, or one trained on a sample of the training split",
               kPathField)
          .add("vocab_size", &TrainConfig::vocab_size,
               "vocabulary of a trained tokenizer (the model's vocab_size follows the tokenizer)")
          .add("reserved_symbols", &TrainConfig::reserved_symbols,
               "symbols that get a piece of their own in a trained tokenizer, e.g. [\"\u27e6\", \"\u27e7\"] (a given "
               "tokenizer must hold each as one piece)")
          .add("max_steps", &TrainConfig::max_steps, "optimizer updates in total", kContinuation)
          .add("max_tokens", &TrainConfig::max_tokens,
               "micro-batch budget: examples x (longest source + longest target) tokens", kContinuation)
          .add("bucket_size", &TrainConfig::bucket_size, "examples sorted by length together when batching",
               kContinuation)
          .add("update_freq", &TrainConfig::update_freq, "micro-batches accumulated per update, per process")
          .add("lr", &TrainConfig::lr, "peak learning rate", kContinuation)
          .add("warmup_steps", &TrainConfig::warmup_steps, "linear warmup updates", kContinuation)
          .add("lr_decay", &TrainConfig::lr_decay, lr_decay_names(),
               "after warmup: \"linear\" (to min_lr at max_steps), \"cosine\", \"inverse_sqrt\" or \"constant\"",
               kContinuation)
          .add("min_lr", &TrainConfig::min_lr, "floor of the decay", kContinuation)
          .add("weight_decay", &TrainConfig::weight_decay,
               "AdamW decoupled weight decay (not on biases and LayerNorm gains)", kContinuation)
          .add("scorer_lr_scale", &TrainConfig::scorer_lr_scale,
               "the pooling layers' scorers (encoder_poolers.*) train at lr x this (their own parameter groups; "
               "1: the paper's setting); 0: they stay at their random initialisation and the encoder learns what to keep",
               kContinuation)
          .add("scorer_weight_decay", &TrainConfig::scorer_weight_decay,
               "AdamW weight decay of the scorers' weights (not their biases)", kContinuation)
          .add("beta1", &TrainConfig::beta1, "AdamW beta1", kContinuation)
          .add("beta2", &TrainConfig::beta2, "AdamW beta2", kContinuation)
          .add("adam_eps", &TrainConfig::adam_eps, "AdamW epsilon", kContinuation)
          .add("clip_norm", &TrainConfig::clip_norm, "global gradient-norm clipping; 0 = none", kContinuation)
          .add("label_smoothing", &TrainConfig::label_smoothing,
               "label smoothing of the training loss (the logged loss is plain NLL)", kContinuation)
          .add("freeze", &TrainConfig::freeze,
               "parameter-name prefixes kept at their initial values, e.g. [\"encoder_poolers.\"] (the scorers)",
               kContinuation)
          .add("detach_scorer_input", &TrainConfig::detach_scorer_input,
               "the scorers read detached representations: the selection's gradient stops at them (with "
               "freeze [\"encoder_poolers.\"]: pooling that learns nothing)",
               kContinuation)
          .add("seed", &TrainConfig::seed, "seed of the weights, the data order and dropout", kContinuation)
          .add("threads", &TrainConfig::threads, "intra-op threads; 0 = LibTorch's default")
          .add(device_field())
          .add(precision_field())
          .add("log_every", &TrainConfig::log_every, "progress line and metrics entry every N updates")
          .add("validate_every", &TrainConfig::validate_every,
               "validation every N updates (and at the end); 0 = only at the end")
          .add("valid_max_docs", &TrainConfig::valid_max_docs, "validation documents used; 0 = all")
          .add("valid_rouge_docs", &TrainConfig::valid_rouge_docs,
               "greedy summaries of this many validation documents scored with ROUGE at each validation; 0 = off")
          .add("checkpoint_every", &TrainConfig::checkpoint_every,
               "checkpoint every N updates (and at the end, and on SIGINT/SIGTERM); 0 = only then")
          .add("keep_checkpoints", &TrainConfig::keep_checkpoints, "newest checkpoints kept")
          .add("distributed_timeout", &TrainConfig::distributed_timeout,
               "seconds a process waits in a collective (data-parallel runs)");
  return table;
}

}  // namespace detail

std::string to_string(LrDecay decay) { return detail::name_of(lr_decay_names(), decay, "LrDecay"); }

std::string to_string(Resume resume) {
  static const detail::EnumNames<Resume> names = {
      {Resume::never, "never"}, {Resume::required, "required"}, {Resume::automatic, "automatic"}};
  return detail::name_of(names, resume, "Resume");
}

std::string TrainConfig::help_text() { return detail::train_config_table().help(TrainConfig()); }

void TrainConfig::set(const std::string& key, const std::string& value) {
  if (key.rfind("model.", 0) == 0) {
    const std::string field = key.substr(6);
    if (field.empty()) throw std::invalid_argument("TrainConfig: empty model field in '" + key + "'");
    json parsed;
    try {
      parsed = json::parse(value);
    } catch (const json::exception&) {
      parsed = value;  // a bare word: a string
    }
    // Checked when the model config is built (validate()), with the preset's other fields.
    model_overrides[field] = parsed.dump();
    return;
  }
  detail::train_config_table().set(*this, key, value);
}

ModelConfig TrainConfig::model_config(int64_t vocab_size) const {
  const auto read_object = [](const std::string& what, const std::string& path) {
    json object = detail::parse_strict(what + " ('" + path + "')", detail::read_file(what, path));
    if (!object.is_object()) throw std::invalid_argument(what + ": '" + path + "' is not a JSON object");
    return object;
  };
  const auto build = [](const json& object, const std::string& what) {
    try {
      return ModelConfig::from_json_string(object.dump());
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(what + ": " + e.what());
    }
  };
  json preset;
  ModelConfig pretrained;
  const std::string init_config = init.empty() ? "" : (fs::path(init) / "config.json").string();
  if (!init.empty()) pretrained = ModelConfig::from_json_file(init_config);
  if (!model.empty()) {
    preset = read_object("TrainConfig.model", model);
    if (!init.empty()) {  // the preset may say otherwise only where a pretrained model may change
      const auto from_preset = build(preset, "TrainConfig.model ('" + model + "')");
      for (const auto& field : differing_fields(from_preset, pretrained))
        if (!Seq2Seq::retrainable(field) && field != "vocab_size")
          throw std::invalid_argument("TrainConfig.model ('" + model + "') sets " + field +
                                      " otherwise than init's " + init_config + "; starting from pretrained "
                                      "weights, only " + detail::quoted_list(Seq2Seq::kRetrainableFields) +
                                      " may change");
      json base = json::parse(pretrained.to_json_string());
      for (const auto& field : Seq2Seq::kRetrainableFields)
        if (preset.contains(field)) base[field] = preset[field];
      preset = base;
    }
  } else {
    preset = json::parse(pretrained.to_json_string());
  }
  for (const auto& [key, value] : model_overrides) {
    if (!init.empty() && !Seq2Seq::retrainable(key) && key.rfind("pooler.", 0) != 0)
      throw std::invalid_argument("TrainConfig.model_overrides." + key + ": init's " + init_config + " fixes " + key +
                                  "; starting from pretrained weights, only " +
                                  detail::quoted_list(Seq2Seq::kRetrainableFields) + " may change");
    preset[key] = detail::parse_strict("TrainConfig.model_overrides." + key, value);
  }
  if (vocab_size > 0) preset["vocab_size"] = vocab_size;
  return build(preset, init.empty() ? "TrainConfig.model ('" + model + "' with model_overrides)"
                                    : "TrainConfig.init ('" + init + "' with model_overrides)");
}

void TrainConfig::validate() const {
  const auto require = [](const char* field, const std::string& v) {
    if (v.empty()) detail::fail_field(kOwner, field, "\"\"", "is required");
  };
  if (model.empty() && init.empty())
    detail::fail_field(kOwner, "model", "\"\"", "is required (or init: a model directory to start from)");
  if (!init.empty() && !tokenizer.empty())
    detail::fail_field(kOwner, "tokenizer", "\"" + tokenizer + "\"",
                       "and init = \"" + init + "\" are both set; a run from init uses init's tokenizer");
  if (train.empty() && data.empty()) detail::fail_field(kOwner, "train", "\"\"", "is required (or data: a preprocessed dataset)");
  if (!train.empty() && !data.empty())
    detail::fail_field(kOwner, "data", "\"" + data + "\"",
                       "and train = \"" + train + "\" are both set; give one: the JSON lines or the dataset made from them");
  require("out", out);
  to_string(data_format);  // the enums hold one of their values (not a cast integer)
  to_string(lr_decay);
  check_min("vocab_size", vocab_size, 16);
  try {
    pyramidion::validate(TokenizerTrainOptions().vocab_size(vocab_size).reserved_symbols(reserved_symbols));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(kOwner) + ": " + e.what());
  }
  for (size_t i = 0; i < freeze.size(); ++i)
    if (freeze[i].empty())
      detail::fail_field(kOwner, ("freeze[" + std::to_string(i) + "]").c_str(), "\"\"",
                         "must be a parameter-name prefix, e.g. \"encoder_poolers.\"");
  check_min("max_steps", max_steps, 1);
  check_min("max_tokens", max_tokens, 2);
  check_min("bucket_size", bucket_size, 1);
  check_min("update_freq", update_freq, 1);
  check_min("warmup_steps", warmup_steps, 0);
  check_threads(threads, std::string(kOwner) + ".threads");
  const auto resolved = device.resolve(0);  // CUDA is there when asked for
  try {
    check_precision(precision, resolved);  // fp16 only on CUDA
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(kOwner) + ".precision: " + e.what());
  }
  check_min("log_every", log_every, 1);
  check_min("validate_every", validate_every, 0);
  check_min("valid_max_docs", valid_max_docs, 0);
  check_min("valid_rouge_docs", valid_rouge_docs, 0);
  check_min("checkpoint_every", checkpoint_every, 0);
  check_min("keep_checkpoints", keep_checkpoints, 1);
  check_min("distributed_timeout", distributed_timeout, 1);
  const auto positive = [](const char* field, double v) {
    if (!(v > 0 && std::isfinite(v)))
      detail::fail_field(kOwner, field, detail::format_double(v), "must be finite and > 0");
  };
  const auto unit = [](const char* field, double v) {
    if (!(v >= 0 && v < 1)) detail::fail_field(kOwner, field, detail::format_double(v), "must be in [0, 1)");
  };
  positive("lr", lr);
  positive("adam_eps", adam_eps);
  if (!(min_lr >= 0 && min_lr <= lr))
    detail::fail_field(kOwner, "min_lr", detail::format_double(min_lr),
                       "must be in [0, lr = " + detail::format_double(lr) + "]");
  if (!(weight_decay >= 0 && std::isfinite(weight_decay)))
    detail::fail_field(kOwner, "weight_decay", detail::format_double(weight_decay), "must be finite and >= 0");
  if (!(scorer_lr_scale >= 0 && std::isfinite(scorer_lr_scale)))
    detail::fail_field(kOwner, "scorer_lr_scale", detail::format_double(scorer_lr_scale),
                       "must be finite and >= 0 (0 = scorers that do not move)");
  if (!(scorer_weight_decay >= 0 && std::isfinite(scorer_weight_decay)))
    detail::fail_field(kOwner, "scorer_weight_decay", detail::format_double(scorer_weight_decay),
                       "must be finite and >= 0");
  if (!(clip_norm >= 0 && std::isfinite(clip_norm)))
    detail::fail_field(kOwner, "clip_norm", detail::format_double(clip_norm),
                       "must be finite and >= 0 (0 = no clipping)");
  unit("beta1", beta1);
  unit("beta2", beta2);
  unit("label_smoothing", label_smoothing);

  if (!model.empty()) check_file("model", model);
  std::error_code ec;
  if (!init.empty()) {
    for (const char* file : {"config.json", "weights.pt", "tokenizer.model"})
      if (!fs::is_regular_file(fs::path(init) / file, ec))
        throw std::invalid_argument(std::string(kOwner) + ".init = '" + init + "' has no " + file +
                                    " (a model directory: pyramidion-import's output or a checkpoint)");
  }
  if (!train.empty()) check_file("train", train);
  if (!data.empty() && !fs::is_directory(data, ec))
    throw std::invalid_argument(std::string(kOwner) + ".data = '" + data + "' is not a directory");
  if (!valid.empty()) check_file("valid", valid);
  if (!tokenizer.empty()) check_file("tokenizer", tokenizer);
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    throw std::invalid_argument(std::string(kOwner) + ".out = '" + out + "' exists and is not a directory");
  for (const auto& [field, path] : {std::pair<const char*, const std::string&>{"train", train}, {"valid", valid},
                                    {"model", model}, {"tokenizer", tokenizer}})
    if (!path.empty() && detail::same_file(out, path))
      detail::fail_field(kOwner, "out", "'" + out + "'", std::string("is ") + field + "; choose another directory");
  const ModelConfig m = model_config();  // the preset and overrides are valid
  if (max_tokens < m.max_source_length + m.max_target_length)
    detail::fail_field(kOwner, "max_tokens", std::to_string(max_tokens),
                       "must be >= max_source_length + max_target_length = " +
                           std::to_string(m.max_source_length + m.max_target_length) +
                           " of the model, so that every example fits a batch");
}

TrainConfig TrainConfig::from_json_string(const std::string& text, const std::string& base_dir) {
  json object = detail::parse_strict(kOwner, text);
  // Relative paths in a file are relative to its directory.
  if (object.is_object())
    for (const auto& f : detail::train_config_table().fields())
      if ((f.flags & kPathField) && object.contains(f.name) && object[f.name].is_string())
        object[f.name] = resolve(base_dir, object[f.name].get<std::string>());
  TrainConfig c;
  detail::train_config_table().read(object, c);
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

std::string TrainConfig::to_json_string() const { return detail::train_config_table().write(*this).dump(2); }

double learning_rate(const TrainConfig& c, int64_t step) {
  const double s = static_cast<double>(std::max<int64_t>(step, 1));
  if (c.warmup_steps > 0 && step <= c.warmup_steps) return c.lr * s / static_cast<double>(c.warmup_steps);
  const double w = static_cast<double>(c.warmup_steps);
  const double span = std::max(1.0, static_cast<double>(c.max_steps) - w);
  const double progress = std::min(1.0, (s - w) / span);  // 0 after warmup .. 1 at max_steps
  switch (c.lr_decay) {
    case LrDecay::linear:
      return c.min_lr + (c.lr - c.min_lr) * (1.0 - progress);
    case LrDecay::cosine:
      return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
    case LrDecay::inverse_sqrt:
      return std::max(c.min_lr, c.lr * std::sqrt(std::max(w, 1.0) / s));
    case LrDecay::constant:
      break;
  }
  return c.lr;
}

}  // namespace pyramidion
