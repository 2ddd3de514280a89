// ModelConfig (see include/pyramidion/config.h): validation, JSON reading and atomic writing.
#include <pyramidion/config.h>

#include "json_fields.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace pyramidion {
namespace {

using detail::json;
using detail::ObjectReader;
using detail::format_double;

std::string format_list(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// "ModelConfig.<field> = <value> <requirement>"
[[noreturn]] void fail(const std::string& field, const std::string& value, const std::string& requirement) {
  detail::fail_field("ModelConfig", field, value, requirement);
}

void check_at_least(const char* field, int64_t value, int64_t minimum) {
  if (value < minimum) fail(field, std::to_string(value), "must be >= " + std::to_string(minimum));
}

void check_probability(const char* field, double value) {
  if (!(value >= 0.0 && value < 1.0)) fail(field, format_double(value), "must be in [0, 1)");
}

void check_format_version(int64_t version) {
  if (version < 1) fail("format_version", std::to_string(version), "must be >= 1");
  if (version > ModelConfig::kFormatVersion)
    fail("format_version", std::to_string(version),
         "is newer than this library reads (<= " + std::to_string(ModelConfig::kFormatVersion) +
             "); upgrade pyramidion");
}

void check_token_id(const char* field, int64_t id, int64_t vocab_size) {
  if (id < 0 || id >= vocab_size)
    fail(field, std::to_string(id), "must be in [0, vocab_size = " + std::to_string(vocab_size) + ")");
}

// ---- JSON reading ---------------------------------------------------------------------------

// In the order to_json_string() writes them.
const std::vector<std::string> kTopKeys = {
    "format_version",
    "vocab_size", "d_model", "heads", "ffn_size", "encoder_layers", "decoder_layers",
    "dropout", "attention_dropout", "activation", "norm",
    "max_source_length", "max_target_length", "block_size", "pooled_lengths", "pooler",
    "shared_embeddings", "pad_id", "bos_id", "eos_id"};
const std::vector<std::string> kPoolerKeys = {"base", "keep_order", "hard_at_inference", "score_epsilon"};

}  // namespace

std::string to_string(Activation activation) {
  switch (activation) {
    case Activation::relu: return "relu";
    case Activation::gelu: return "gelu";
  }
  throw std::invalid_argument("pyramidion::Activation: unknown value " + std::to_string(static_cast<int>(activation)) +
                              " (allowed: relu, gelu)");
}

std::string to_string(Norm norm) {
  switch (norm) {
    case Norm::pre: return "pre";
    case Norm::post: return "post";
  }
  throw std::invalid_argument("pyramidion::Norm: unknown value " + std::to_string(static_cast<int>(norm)) +
                              " (allowed: pre, post)");
}

void ModelConfig::validate() const {
  check_format_version(format_version);

  check_at_least("vocab_size", vocab_size, 1);
  check_at_least("d_model", d_model, 1);
  check_at_least("heads", heads, 1);
  if (d_model % heads != 0)
    fail("heads", std::to_string(heads), "must divide d_model = " + std::to_string(d_model));
  check_at_least("ffn_size", ffn_size, 1);
  check_at_least("encoder_layers", encoder_layers, 1);
  check_at_least("decoder_layers", decoder_layers, 1);

  check_probability("dropout", dropout);
  check_probability("attention_dropout", attention_dropout);
  if (activation != Activation::relu && activation != Activation::gelu)
    fail("activation", std::to_string(static_cast<int>(activation)), "must be one of relu, gelu");
  if (norm != Norm::pre && norm != Norm::post)
    fail("norm", std::to_string(static_cast<int>(norm)), "must be one of pre, post");

  check_at_least("max_source_length", max_source_length, 1);
  check_at_least("max_target_length", max_target_length, 1);
  check_at_least("block_size", block_size, 0);

  if (!pooled_lengths.empty()) {
    if (static_cast<int64_t>(pooled_lengths.size()) != encoder_layers)
      fail("pooled_lengths", format_list(pooled_lengths),
           "must have one entry per encoder layer (encoder_layers = " + std::to_string(encoder_layers) +
               "; 0 = no pooling after that layer), or be [] for no pooling");
    int64_t previous = -1;  // index of the previous set entry
    for (size_t i = 0; i < pooled_lengths.size(); ++i) {
      const int64_t kept = pooled_lengths[i];
      const std::string field = "pooled_lengths[" + std::to_string(i) + "]";
      if (kept < 0) fail(field, std::to_string(kept), "must be >= 0 (0 = no pooling after that layer)");
      if (kept == 0) continue;
      if (kept > max_source_length)
        fail(field, std::to_string(kept), "must be <= max_source_length = " + std::to_string(max_source_length));
      if (previous >= 0 && kept > pooled_lengths[previous])
        fail(field, std::to_string(kept),
             "must be <= pooled_lengths[" + std::to_string(previous) + "] = " +
                 std::to_string(pooled_lengths[previous]) + " (kept lengths never grow)");
      previous = static_cast<int64_t>(i);
    }
  }
  if (!(pooler.base > 1.0) || std::isinf(pooler.base))
    fail("pooler.base", format_double(pooler.base), "must be finite and > 1");
  if (!(pooler.score_epsilon >= 0.0) || std::isinf(pooler.score_epsilon))
    fail("pooler.score_epsilon", format_double(pooler.score_epsilon), "must be finite and >= 0");

  check_token_id("pad_id", pad_id, vocab_size);
  check_token_id("bos_id", bos_id, vocab_size);
  check_token_id("eos_id", eos_id, vocab_size);
  if (bos_id == pad_id) fail("bos_id", std::to_string(bos_id), "must differ from pad_id = " + std::to_string(pad_id));
  if (eos_id == pad_id) fail("eos_id", std::to_string(eos_id), "must differ from pad_id = " + std::to_string(pad_id));
}

ModelConfig ModelConfig::from_json_string(const std::string& text) {
  const json root = detail::parse_strict("ModelConfig", text);
  if (!root.is_object())
    throw std::invalid_argument("ModelConfig: the JSON must be an object of fields, got " + detail::describe_json(root));
  ModelConfig c;
  const ObjectReader top(root, "ModelConfig");
  // The version first: a newer file may well hold keys this library does not know.
  top.read("format_version", c.format_version);
  check_format_version(c.format_version);
  std::vector<std::string> pooler_keys;
  for (const auto& k : kPoolerKeys) pooler_keys.push_back("pooler." + k);
  detail::reject_unknown_keys("ModelConfig", root, "", kTopKeys, pooler_keys);

  top.read("vocab_size", c.vocab_size);
  top.read("d_model", c.d_model);
  top.read("heads", c.heads);
  top.read("ffn_size", c.ffn_size);
  top.read("encoder_layers", c.encoder_layers);
  top.read("decoder_layers", c.decoder_layers);
  top.read("dropout", c.dropout);
  top.read("attention_dropout", c.attention_dropout);
  top.read_enum("activation", c.activation, {Activation::relu, Activation::gelu}, {"relu", "gelu"});
  top.read_enum("norm", c.norm, {Norm::pre, Norm::post}, {"pre", "post"});
  top.read("max_source_length", c.max_source_length);
  top.read("max_target_length", c.max_target_length);
  top.read("block_size", c.block_size);
  top.read("pooled_lengths", c.pooled_lengths);
  if (const json* p = top.find("pooler")) {
    if (!p->is_object()) top.wrong_type("pooler", *p, "an object");
    detail::reject_unknown_keys("ModelConfig", *p, "pooler.", kPoolerKeys);
    const ObjectReader pooler(*p, "ModelConfig", "pooler.");
    pooler.read("base", c.pooler.base);
    pooler.read("keep_order", c.pooler.keep_order);
    pooler.read("hard_at_inference", c.pooler.hard_at_inference);
    pooler.read("score_epsilon", c.pooler.score_epsilon);
  }
  top.read("shared_embeddings", c.shared_embeddings);
  top.read("pad_id", c.pad_id);
  top.read("bos_id", c.bos_id);
  top.read("eos_id", c.eos_id);
  c.validate();
  return c;
}

ModelConfig ModelConfig::from_json_file(const std::string& path) {
  const std::string where = "ModelConfig::from_json_file('" + path + "')";
  const std::string text = detail::read_file(where, path);
  try {
    return from_json_string(text);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
}

std::string ModelConfig::to_json_string() const {
  nlohmann::ordered_json pooler_json;
  pooler_json["base"] = pooler.base;
  pooler_json["keep_order"] = pooler.keep_order;
  pooler_json["hard_at_inference"] = pooler.hard_at_inference;
  pooler_json["score_epsilon"] = pooler.score_epsilon;

  nlohmann::ordered_json j;
  j["format_version"] = format_version;
  j["vocab_size"] = vocab_size;
  j["d_model"] = d_model;
  j["heads"] = heads;
  j["ffn_size"] = ffn_size;
  j["encoder_layers"] = encoder_layers;
  j["decoder_layers"] = decoder_layers;
  j["dropout"] = dropout;
  j["attention_dropout"] = attention_dropout;
  j["activation"] = to_string(activation);
  j["norm"] = to_string(norm);
  j["max_source_length"] = max_source_length;
  j["max_target_length"] = max_target_length;
  j["block_size"] = block_size;
  j["pooled_lengths"] = pooled_lengths;
  j["pooler"] = std::move(pooler_json);
  j["shared_embeddings"] = shared_embeddings;
  j["pad_id"] = pad_id;
  j["bos_id"] = bos_id;
  j["eos_id"] = eos_id;
  return j.dump(2);
}

void ModelConfig::to_json_file(const std::string& path) const {
  validate();  // never write a file that would not load
  detail::write_file_atomically("ModelConfig::to_json_file", path, to_json_string() + "\n");
}

bool operator==(const PoolerConfig& a, const PoolerConfig& b) {
  return std::tie(a.base, a.keep_order, a.hard_at_inference, a.score_epsilon) ==
         std::tie(b.base, b.keep_order, b.hard_at_inference, b.score_epsilon);
}
bool operator!=(const PoolerConfig& a, const PoolerConfig& b) { return !(a == b); }

bool operator==(const ModelConfig& a, const ModelConfig& b) {
  auto fields = [](const ModelConfig& c) {
    return std::tie(c.format_version, c.vocab_size, c.d_model, c.heads, c.ffn_size, c.encoder_layers,
                    c.decoder_layers, c.dropout, c.attention_dropout, c.activation, c.norm, c.max_source_length,
                    c.max_target_length, c.block_size, c.pooled_lengths, c.pooler, c.shared_embeddings, c.pad_id,
                    c.bos_id, c.eos_id);
  };
  return fields(a) == fields(b);
}
bool operator!=(const ModelConfig& a, const ModelConfig& b) { return !(a == b); }

}  // namespace pyramidion
