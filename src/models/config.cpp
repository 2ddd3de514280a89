// ModelConfig (see include/pyramidion/config.h): validation, and JSON reading, writing and help
// through one table of fields.
#include <pyramidion/config.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/output_file.h"
#include "util/field_table.h"
#include "util/json_fields.h"
#include "util/text.h"

namespace pyramidion {
namespace {

using detail::format_double;
using detail::format_list;
using detail::json;

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

const detail::EnumNames<Activation>& activation_names() {
  static const detail::EnumNames<Activation> names = {
      {Activation::relu, "relu"}, {Activation::gelu, "gelu"}, {Activation::gelu_tanh, "gelu_tanh"}};
  return names;
}

const detail::EnumNames<Norm>& norm_names() {
  static const detail::EnumNames<Norm> names = {{Norm::pre, "pre"}, {Norm::post, "post"}};
  return names;
}

const detail::EnumNames<Positions>& positions_names() {
  static const detail::EnumNames<Positions> names = {{Positions::sinusoidal, "sinusoidal"},
                                                     {Positions::sinusoidal_pegasus, "sinusoidal_pegasus"},
                                                     {Positions::learned, "learned"}};
  return names;
}

using PoolerTable = detail::FieldTable<PoolerConfig>;
using ModelTable = detail::FieldTable<ModelConfig>;

// Read as the nested object "pooler" of ModelConfig's JSON.
const PoolerTable& pooler_table() {
  static const PoolerTable table =
      PoolerTable("ModelConfig")
          .add("base", &PoolerConfig::base, "base of the pair weights' double exponential; > 1")
          .add("keep_order", &PoolerConfig::keep_order, "kept representations in input order (sort back)")
          .add("hard_at_inference", &PoolerConfig::hard_at_inference, "exact top-k instead of blending in eval mode")
          .add("score_epsilon", &PoolerConfig::score_epsilon, "added to the sigmoid scores; >= 0");
  return table;
}

std::vector<std::string> nested_pooler_keys() {
  std::vector<std::string> keys;
  for (const auto& name : pooler_table().names()) keys.push_back("pooler." + name);
  return keys;
}

// In declaration order, as to_json_string() writes them and --help lists them.
// The nested object "pooler", read and written by its own table.
ModelTable::Field pooler_field() {
  ModelTable::Field f{"pooler", "options of every pooling layer (base, keep_order, hard_at_inference, score_epsilon)",
                      0, false, nullptr, nullptr};
  f.read = [](const detail::ObjectReader& r, ModelConfig& c) {
    const json* p = r.find("pooler");
    if (!p) return;
    if (!p->is_object()) r.wrong_type("pooler", *p, "an object");
    pooler_table().read(*p, c.pooler, "pooler.");
  };
  f.write = [](const ModelConfig& c) { return pooler_table().write(c.pooler); };
  return f;
}

const ModelTable& table() {
  static const ModelTable table =
      ModelTable("ModelConfig")
          .add("format_version", &ModelConfig::format_version, "format of the JSON file")
          .add("vocab_size", &ModelConfig::vocab_size, "vocabulary size (follows the tokenizer in training)")
          .add("d_model", &ModelConfig::d_model, "model width; a multiple of heads")
          .add("heads", &ModelConfig::heads, "attention heads")
          .add("ffn_size", &ModelConfig::ffn_size, "inner size of the feed-forward sublayers")
          .add("encoder_layers", &ModelConfig::encoder_layers, "encoder layers")
          .add("decoder_layers", &ModelConfig::decoder_layers, "decoder layers")
          .add("dropout", &ModelConfig::dropout, "dropout after embeddings, attention and feed-forward; [0, 1)")
          .add("attention_dropout", &ModelConfig::attention_dropout, "dropout on the attention weights; [0, 1)")
          .add("activation", &ModelConfig::activation, activation_names(), "\"relu\", \"gelu\" or \"gelu_tanh\"")
          .add("norm", &ModelConfig::norm, norm_names(), "LayerNorm placement: \"pre\" or \"post\"")
          .add("attention_bias", &ModelConfig::attention_bias, "biases in the attention projections")
          .add("max_source_length", &ModelConfig::max_source_length, "longest source in tokens")
          .add("max_target_length", &ModelConfig::max_target_length, "longest target in tokens, bos/eos included")
          .add("positions", &ModelConfig::positions, positions_names(),
               "position embeddings: \"sinusoidal\", \"sinusoidal_pegasus\" or \"learned\"")
          .add("block_size", &ModelConfig::block_size, "blockwise encoder attention within blocks; 0 = full")
          .add("pooled_lengths", &ModelConfig::pooled_lengths,
               "tokens kept after each encoder layer (0 = no pooling there); [] = none")
          .add(pooler_field())
          .add("shared_embeddings", &ModelConfig::shared_embeddings, "one embedding matrix for input and output")
          .add("scale_embeddings", &ModelConfig::scale_embeddings, "token embeddings times sqrt(d_model)")
          .add("logits_bias", &ModelConfig::logits_bias, "a fixed bias added to the logits (buffer logits_bias)")
          .add("pad_id", &ModelConfig::pad_id, "padding token id")
          .add("bos_id", &ModelConfig::bos_id, "beginning-of-sequence id")
          .add("eos_id", &ModelConfig::eos_id, "end-of-sequence id")
          .add("source_eos", &ModelConfig::source_eos, "every source ends with eos_id (PEGASUS)");
  return table;
}

}  // namespace

std::string to_string(Activation activation) {
  return detail::name_of(activation_names(), activation, "pyramidion::Activation");
}

std::string to_string(Norm norm) { return detail::name_of(norm_names(), norm, "pyramidion::Norm"); }

std::string to_string(Positions positions) {
  return detail::name_of(positions_names(), positions, "pyramidion::Positions");
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
  if (!detail::is_named(activation_names(), activation))
    fail("activation", std::to_string(static_cast<int>(activation)),
         "must be one of " + detail::joined_names(activation_names()));
  if (!detail::is_named(norm_names(), norm))
    fail("norm", std::to_string(static_cast<int>(norm)), "must be one of " + detail::joined_names(norm_names()));

  check_at_least("max_source_length", max_source_length, 1);
  check_at_least("max_target_length", max_target_length, 1);
  if (!detail::is_named(positions_names(), positions))
    fail("positions", std::to_string(static_cast<int>(positions)),
         "must be one of " + detail::joined_names(positions_names()));
  if (source_eos && max_source_length < 2)
    fail("max_source_length", std::to_string(max_source_length),
         "must be >= 2 with source_eos (a token of the document, then eos)");
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
  pyramidion::validate(pooler, "ModelConfig.pooler");

  check_token_id("pad_id", pad_id, vocab_size);
  check_token_id("bos_id", bos_id, vocab_size);
  check_token_id("eos_id", eos_id, vocab_size);
  if (eos_id == pad_id) fail("eos_id", std::to_string(eos_id), "must differ from pad_id = " + std::to_string(pad_id));
}

ModelConfig ModelConfig::from_json_string(const std::string& text) {
  const json root = detail::parse_strict("ModelConfig", text);
  ModelConfig c;
  // The version first: a newer file may well hold keys this library does not know.
  if (root.is_object()) {
    detail::ObjectReader(root, "ModelConfig").read("format_version", c.format_version);
    check_format_version(c.format_version);
  }
  table().read(root, c, "", nested_pooler_keys());
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

std::string ModelConfig::to_json_string() const { return table().write(*this).dump(2); }

std::string ModelConfig::help_text() { return table().help(ModelConfig{}); }

void ModelConfig::to_json_file(const std::string& path) const {
  validate();  // never write a file that would not load
  detail::write_output_file("ModelConfig::to_json_file", path, to_json_string() + "\n");
}

bool operator==(const ModelConfig& a, const ModelConfig& b) { return table().equal(a, b); }
bool operator!=(const ModelConfig& a, const ModelConfig& b) { return !(a == b); }

std::vector<std::string> differing_fields(const ModelConfig& a, const ModelConfig& b) {
  const auto x = table().write(a), y = table().write(b);
  std::vector<std::string> out;
  for (const auto& name : table().names())
    if (x.at(name) != y.at(name)) out.push_back(name);
  return out;
}

}  // namespace pyramidion
