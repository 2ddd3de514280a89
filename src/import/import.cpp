// import_hf (see include/pyramidion/import.h): one loader for the PEGASUS family over Seq2Seq.
//
// The definitions followed (transformers 5.x, read, not copied): modeling_pegasus.py and
// modeling_bigbird_pegasus.py (pre-norm layers, embed_scale = sqrt(d) when scale_embedding,
// positions from 0 without a padding offset, final LayerNorms "layer_norm" / "layernorm_embedding",
// lm_head tied to "model.shared" plus final_logits_bias), configuration_*.py for the defaults of
// keys a config.json leaves out, tokenization_pegasus.py and convert_slow_tokenizer.py for the
// ids (pegasus_vocabulary.h) and generation/configuration_utils.py for generation_config.json.
//
// Legend: d model size, v vocabulary, P the checkpoint's position table rows.
#include <pyramidion/import.h>

#include <pyramidion/model.h>
#include <pyramidion/summarizer.h>
#include <pyramidion/tokenizer.h>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "import/hf_weights.h"
#include "import/pegasus_vocabulary.h"
#include "models/checkpoint.h"
#include "util/directory_checksums.h"
#include "util/json_fields.h"
#include "util/output_file.h"
#include "util/tensor_text.h"
#include "util/text.h"

namespace pyramidion {
namespace {

namespace fs = std::filesystem;
using detail::json;

const char* const kPegasus = "PegasusForConditionalGeneration";
const char* const kBigBird = "BigBirdPegasusForConditionalGeneration";

// config.json, with the defaults of the architecture's configuration class for absent keys.
class HfConfig {
 public:
  HfConfig(json root, json defaults, std::string path)
      : root_(std::move(root)), defaults_(std::move(defaults)), path_(std::move(path)) {}

  const json& value(const std::string& key) const {
    const auto it = root_.find(key);
    if (it != root_.end() && !it->is_null()) return *it;
    const auto d = defaults_.find(key);
    if (d == defaults_.end()) throw std::invalid_argument("import: " + path_ + " has no \"" + key + "\"");
    return *d;
  }
  int64_t integer(const std::string& key) const {
    const json& v = value(key);
    if (!v.is_number_integer())
      throw std::invalid_argument("import: " + path_ + ": \"" + key + "\" = " + detail::describe_json(v) +
                                  " is not an integer");
    return v.get<int64_t>();
  }
  double number(const std::string& key) const {
    const json& v = value(key);
    if (!v.is_number()) throw std::invalid_argument("import: " + path_ + ": \"" + key + "\" is not a number");
    return v.get<double>();
  }
  bool boolean(const std::string& key) const {
    const json& v = value(key);
    if (!v.is_boolean()) throw std::invalid_argument("import: " + path_ + ": \"" + key + "\" is not true or false");
    return v.get<bool>();
  }
  std::string text(const std::string& key) const {
    const json& v = value(key);
    if (!v.is_string()) throw std::invalid_argument("import: " + path_ + ": \"" + key + "\" is not a string");
    return v.get<std::string>();
  }
  const std::string& path() const { return path_; }

 private:
  json root_, defaults_;
  std::string path_;
};

// The defaults of transformers' PegasusConfig and BigBirdPegasusConfig (configuration_*.py).
json defaults_of(const std::string& architecture) {
  json d = {{"vocab_size", 50265},     {"max_position_embeddings", 1024}, {"encoder_layers", 12},
            {"encoder_ffn_dim", 4096}, {"encoder_attention_heads", 16},   {"decoder_layers", 12},
            {"decoder_ffn_dim", 4096}, {"decoder_attention_heads", 16},   {"activation_function", "gelu"},
            {"d_model", 1024},         {"dropout", 0.1},                  {"attention_dropout", 0.0},
            {"activation_dropout", 0.0}, {"decoder_start_token_id", 0},   {"scale_embedding", false},
            {"pad_token_id", 0},       {"eos_token_id", 1},               {"tie_word_embeddings", true},
            {"use_bias", true},        {"attention_type", "original_full"}};
  if (architecture == kBigBird) {
    d["vocab_size"] = 96103;
    d["max_position_embeddings"] = 4096;
    d["encoder_layers"] = 16;
    d["decoder_layers"] = 16;
    d["activation_function"] = "gelu_new";
    d["decoder_start_token_id"] = 2;
    d["scale_embedding"] = true;
    d["use_bias"] = false;
    d["attention_type"] = "block_sparse";
  }
  return d;
}

json read_json(const fs::path& path) {
  return detail::parse_strict("import: " + path.string(), detail::read_file("import", path.string()));
}

std::string architecture_of(const json& root, const std::string& path) {
  const auto it = root.find("architectures");
  std::string name;
  if (it != root.end() && it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    name = (*it)[0].get<std::string>();
  } else {
    // A config saved without its model (config.save_pretrained) names only the model type.
    const auto type = root.find("model_type");
    const std::string model_type = type != root.end() && type->is_string() ? type->get<std::string>() : "";
    if (model_type == "pegasus") return kPegasus;
    if (model_type == "bigbird_pegasus") return kBigBird;
    throw std::invalid_argument("import: " + path + " has no \"architectures\": [\"<name>\"] and no known "
                                "\"model_type\" (supported: " + detail::quoted_list(supported_hf_architectures()) + ")");
  }
  for (const auto& s : supported_hf_architectures())
    if (s == name) return name;
  throw std::invalid_argument("import: " + path + ": the architecture \"" + name +
                              "\" is not supported; supported: " + detail::quoted_list(supported_hf_architectures()) +
                              " (T5 and LongT5 need relative position biases, which pyramidion does not have)");
}

Activation activation_of(const HfConfig& c, std::vector<std::string>& notes) {
  const std::string a = c.text("activation_function");
  if (a == "relu") return Activation::relu;
  if (a == "gelu") return Activation::gelu;
  if (a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu_fast") {
    if (a == "gelu_fast") notes.push_back("activation gelu_fast computed as gelu_tanh (the same function)");
    return Activation::gelu_tanh;
  }
  throw std::invalid_argument("import: " + c.path() + ": \"activation_function\" = \"" + a +
                              "\" is not one of relu, gelu, gelu_new, gelu_pytorch_tanh");
}

int64_t single_id(const HfConfig& c, const char* key) {
  const json& v = c.value(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_array() && v.size() == 1 && v[0].is_number_integer()) return v[0].get<int64_t>();
  throw std::invalid_argument("import: " + c.path() + ": \"" + key + "\" = " + detail::describe_json(v) +
                              " must be one token id");
}

ModelConfig model_config(const HfConfig& c, const std::string& architecture, const ImportOptions& o,
                         std::vector<std::string>& notes) {
  const bool bigbird = architecture == kBigBird;
  const auto same = [&](const char* a, const char* b) {
    if (c.integer(a) != c.integer(b))
      throw std::invalid_argument("import: " + c.path() + ": \"" + a + "\" = " + std::to_string(c.integer(a)) +
                                  " and \"" + b + "\" = " + std::to_string(c.integer(b)) +
                                  " differ; pyramidion's encoder and decoder share one setting");
  };
  same("encoder_ffn_dim", "decoder_ffn_dim");
  same("encoder_attention_heads", "decoder_attention_heads");
  ModelConfig m;
  m.vocab_size = c.integer("vocab_size");
  m.d_model = c.integer("d_model");
  m.heads = c.integer("encoder_attention_heads");
  m.ffn_size = c.integer("encoder_ffn_dim");
  m.encoder_layers = c.integer("encoder_layers");
  m.decoder_layers = c.integer("decoder_layers");
  m.dropout = o.dropout() >= 0 ? o.dropout() : c.number("dropout");
  m.attention_dropout = c.number("attention_dropout");
  if (c.number("activation_dropout") != 0.0)
    notes.push_back("activation_dropout = " + detail::format_double(c.number("activation_dropout")) +
                    " is not applied (pyramidion has no dropout inside the feed-forward sublayer)");
  m.activation = activation_of(c, notes);
  m.norm = Norm::pre;
  m.attention_bias = bigbird ? c.boolean("use_bias") : true;
  m.positions = bigbird ? Positions::learned : Positions::sinusoidal_pegasus;
  const int64_t table = c.integer("max_position_embeddings");
  m.max_source_length = o.max_source_length() > 0 ? o.max_source_length() : table;
  m.max_target_length = o.max_target_length() > 0 ? o.max_target_length() : table;
  if (bigbird && m.max_source_length > table)
    notes.push_back("the encoder's learned positions (" + std::to_string(table) + ") were extended to " +
                    std::to_string(m.max_source_length) + " by repeating the table");
  if (bigbird && m.max_target_length > table)
    notes.push_back("the decoder's learned positions (" + std::to_string(table) + ") were extended to " +
                    std::to_string(m.max_target_length) + " by repeating the table");
  m.block_size = o.block_size();
  if (bigbird && c.text("attention_type") == "block_sparse")
    notes.push_back(std::string("BigBird's block-sparse encoder attention became ") +
                    (o.block_size() > 0 ? "blockwise attention within blocks of " + std::to_string(o.block_size())
                                        : std::string("full attention (BigBird's own \"original_full\")")));
  m.pooled_lengths = o.pooled_lengths();
  m.pooler = o.pooler();
  m.shared_embeddings = c.boolean("tie_word_embeddings");
  m.scale_embeddings = c.boolean("scale_embedding");
  m.logits_bias = true;
  m.pad_id = c.integer("pad_token_id");
  m.eos_id = single_id(c, "eos_token_id");
  m.bos_id = c.integer("decoder_start_token_id");
  m.source_eos = true;
  try {
    m.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("import: " + c.path() + " with these options gives an invalid model: " + e.what());
  }
  return m;
}

// The checkpoint's name of each of our tensors ("" = none: computed here).
std::string hf_name(const std::string& ours, bool bigbird) {
  // ours: encoder_layers.3.self_attn.q_proj.weight, decoder_layers.0.cross_attn_norm.bias, ...
  static const std::map<std::string, std::string> layer_parts = {
      {"self_attn_norm", "self_attn_layer_norm"}, {"cross_attn_norm", "encoder_attn_layer_norm"},
      {"ffn_norm", "final_layer_norm"},           {"cross_attn", "encoder_attn"},
      {"self_attn", "self_attn"},                 {"fc1", "fc1"},
      {"fc2", "fc2"}};
  const std::string final_norm = bigbird ? "layernorm_embedding" : "layer_norm";
  if (ours == "embed_tokens.weight") return "model.shared.weight";
  // Untied (tie_word_embeddings false): transformers 5 keeps separate encoder and decoder tables;
  // transformers 4 saved both as copies of model.shared.
  if (ours == "encoder_embed.weight") return "model.encoder.embed_tokens.weight";
  if (ours == "decoder_embed.weight") return "model.decoder.embed_tokens.weight";
  if (ours == "output_projection.weight") return "lm_head.weight";
  if (ours == "logits_bias") return "final_logits_bias";
  if (ours == "encoder_positions") return "model.encoder.embed_positions.weight";
  if (ours == "decoder_positions") return "model.decoder.embed_positions.weight";
  for (const char* side : {"encoder", "decoder"}) {
    const std::string norm = std::string(side) + "_norm.";
    if (ours.rfind(norm, 0) == 0) return "model." + std::string(side) + "." + final_norm + "." + ours.substr(norm.size());
    const std::string layers = std::string(side) + "_layers.";
    if (ours.rfind(layers, 0) != 0) continue;
    const auto rest = ours.substr(layers.size());           // "3.self_attn.q_proj.weight"
    const auto dot = rest.find('.');
    const auto index = rest.substr(0, dot);
    const auto tail = rest.substr(dot + 1);                 // "self_attn.q_proj.weight"
    const auto part_end = tail.find('.');
    const auto part = tail.substr(0, part_end);             // "self_attn"
    const auto leaf = tail.substr(part_end + 1);            // "q_proj.weight"
    const auto it = layer_parts.find(part);
    if (it == layer_parts.end()) return "";
    std::string mapped_leaf = leaf;
    if (bigbird && std::string(side) == "encoder" && part == "self_attn") {
      // BigBirdPegasusEncoderAttention: self.{query,key,value} and output.
      static const std::map<std::string, std::string> bb = {
          {"q_proj", "self.query"}, {"k_proj", "self.key"}, {"v_proj", "self.value"}, {"out_proj", "output"}};
      const auto p = leaf.find('.');
      mapped_leaf = bb.at(leaf.substr(0, p)) + leaf.substr(p);
    }
    return "model." + std::string(side) + ".layers." + index + "." + it->second + "." + mapped_leaf;
  }
  return "";
}

// Copies the checkpoint's tensors into `model`; returns the names read.
std::set<std::string> load_weights(Seq2SeqImpl& model, const detail::HfWeights& w, bool bigbird,
                                   const std::string& config_path) {
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  const auto where = "import: the checkpoint's weights (" + w.source() + ") do not match " + config_path + ": ";
  const auto fill = [&](const std::string& ours, at::Tensor dst) {
    if (ours.find("encoder_poolers.") == 0) return;  // new: the pooling layers' scorers
    std::string name = hf_name(ours, bigbird);
    if (name.empty()) throw std::logic_error("import: no checkpoint name for '" + ours + "'");
    if (name == "model.shared.weight" && !w.has(name) && w.has("model.encoder.embed_tokens.weight"))
      name = "model.encoder.embed_tokens.weight";
    if ((name == "model.encoder.embed_tokens.weight" || name == "model.decoder.embed_tokens.weight") && !w.has(name))
      name = "model.shared.weight";
    if (name == "final_logits_bias" && !w.has(name)) {  // transformers makes it zero when absent
      dst.zero_();
      return;
    }
    if (!w.has(name))
      throw std::invalid_argument(where + "tensor '" + name + "' (for " + ours + ", shape " +
                                  detail::format_sizes(dst.sizes()) + ") is missing");
    auto src = w.get(name);
    used.insert(name);
    if (name == "final_logits_bias") src = src.reshape({-1});  // (1, v) -> (v)
    const bool positions = ours == "encoder_positions" || ours == "decoder_positions";
    if (positions && src.dim() == 2 && src.size(1) == dst.size(1) && src.size(0) > 0)
      src = detail::fit_position_table(src, dst.size(0));
    if (src.sizes() != dst.sizes())
      throw std::invalid_argument(where + "tensor '" + name + "' has shape " + detail::format_sizes(src.sizes()) +
                                  " but config.json makes it " + detail::format_sizes(dst.sizes()));
    dst.copy_(src);
  };
  for (auto& p : model.named_parameters()) fill(p.key(), p.value());
  for (auto& p : model.named_buffers()) fill(p.key(), p.value());
  return used;
}

// Tensors of the checkpoint that the model does not read: refused, unless they are copies of one
// that it does (tied embeddings) or the sinusoidal tables that pyramidion computes.
void check_unused(const detail::HfWeights& w, const std::set<std::string>& used, const ModelConfig& m,
                  const std::string& architecture) {
  for (const auto& name : w.names()) {
    if (used.count(name)) continue;
    const bool tied_copy = name == "model.shared.weight" || name == "model.encoder.embed_tokens.weight" ||
                           name == "model.decoder.embed_tokens.weight" ||
                           (m.shared_embeddings && name == "lm_head.weight");
    const bool computed = m.positions != Positions::learned &&
                          (name == "model.encoder.embed_positions.weight" || name == "model.decoder.embed_positions.weight");
    if (computed) {
      // transformers keeps PEGASUS's sinusoidal table as a frozen weight: it must be the table
      // pyramidion computes (to any length), or the checkpoint is not the model it claims to be.
      const auto table = w.get(name);  // (P, d)
      if (table.dim() != 2 || table.size(1) != m.d_model)
        throw std::invalid_argument("import: the checkpoint's '" + name + "' has shape " +
                                    detail::format_sizes(table.sizes()) + ", not (positions, d_model = " +
                                    std::to_string(m.d_model) + ")");
      const auto ours = pegasus_positions(table.size(0), m.d_model);  // (P, d)
      const double err = table.numel() ? (table - ours).abs().max().item<double>() : 0.0;
      if (err > 1e-4)
        throw std::invalid_argument("import: the checkpoint's '" + name + "' differs from PEGASUS's sinusoidal "
                                    "positions by up to " + detail::format_double(err) +
                                    "; pyramidion computes that table and cannot load another");
      continue;
    }
    if (tied_copy) continue;
    throw std::invalid_argument("import: the checkpoint's tensor '" + name + "' (shape " +
                                detail::format_sizes(w.shape(name)) + ") has no place in a " + architecture +
                                " as pyramidion reads it");
  }
}

// generation_config.json (or the generation keys of config.json, where older checkpoints keep
// them) as generation.json. transformers counts max_length and min_length with the decoder's start
// token; pyramidion counts generated tokens.
SummarizeOptions generation_settings(const fs::path& dir, const json& config_root, const ModelConfig& m,
                                     std::vector<std::string>& notes) {
  json g = config_root;
  const auto path = dir / "generation_config.json";
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) g = read_json(path);
  SummarizeOptions o;
  auto& s = o.search();
  const auto integer = [&](const char* key, int64_t fallback) {
    const auto it = g.find(key);
    return it != g.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
  };
  s.beam_size(std::max<int64_t>(1, integer("num_beams", 1)));
  const int64_t max_new = integer("max_new_tokens", 0);
  const int64_t max_length = max_new > 0 ? max_new : integer("max_length", 0) - 1;
  s.max_length(std::min(std::max<int64_t>(max_length, 0), m.max_target_length));
  const int64_t min_new = integer("min_new_tokens", 0);
  s.min_length(std::max<int64_t>(0, min_new > 0 ? min_new : integer("min_length", 0) - 1));
  if (s.max_length() > 0) s.min_length(std::min(s.min_length(), s.max_length()));
  if (const auto it = g.find("length_penalty"); it != g.end() && it->is_number()) s.length_penalty(it->get<double>());
  s.no_repeat_ngram_size(std::min(integer("no_repeat_ngram_size", 0), m.max_target_length));
  if (const auto it = g.find("early_stopping"); it != g.end() && !(it->is_boolean() && it->get<bool>()) &&
                                                s.beam_size() > 1)
    notes.push_back("generation early_stopping = " + it->dump() +
                    " has no equal here: beam search stops when beam_size hypotheses are finished "
                    "(transformers' early_stopping = true); GenerateOptions::early_stopping(false) continues "
                    "while a better one is possible");
  return o;
}

Tokenizer tokenizer_of(const fs::path& dir, const ModelConfig& m) {
  const auto spiece = dir / "spiece.model";
  std::error_code ec;
  if (!fs::is_regular_file(spiece, ec)) {
    const bool json_only = fs::is_regular_file(dir / "tokenizer.json", ec);
    throw std::invalid_argument("import: " + dir.string() + " has no spiece.model" +
                                (json_only ? " (only tokenizer.json, which this importer does not read)" : "") +
                                ": the PEGASUS tokenizer is built from the sentencepiece model that the published "
                                "checkpoints carry; copy their spiece.model into the directory");
  }
  int64_t offset = 103;  // PegasusTokenizer's default
  const auto tokenizer_config = dir / "tokenizer_config.json";
  if (fs::is_regular_file(tokenizer_config, ec)) {
    const auto t = read_json(tokenizer_config);
    if (const auto it = t.find("offset"); it != t.end() && it->is_number_integer()) offset = it->get<int64_t>();
  }
  const std::string who = "import: " + spiece.string();
  auto tokenizer = Tokenizer::from_serialized(
      detail::pegasus_vocabulary(detail::read_file("import", spiece.string()), offset, who));
  try {
    tokenizer.check_fits(m, who);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(e.what()) + "; with PegasusTokenizer's offset " + std::to_string(offset));
  }
  return tokenizer;
}

}  // namespace

const std::vector<std::string>& supported_hf_architectures() {
  static const std::vector<std::string> names = {kPegasus, kBigBird};
  return names;
}

ImportReport import_hf(const std::string& hf_dir, const std::string& out_dir, const ImportOptions& options) {
  for (const auto& [name, value] : {std::pair<const char*, int64_t>{"max_source_length", options.max_source_length()},
                                    {"max_target_length", options.max_target_length()},
                                    {"block_size", options.block_size()}})
    if (value < 0)
      throw std::invalid_argument("import: ImportOptions." + std::string(name) + " = " + std::to_string(value) +
                                  " must be >= 0 (0 = the checkpoint's)");
  const fs::path dir(hf_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::invalid_argument("import: " + hf_dir + " is not a directory");
  const auto config_path = dir / "config.json";
  if (!fs::is_regular_file(config_path, ec))
    throw std::invalid_argument("import: " + hf_dir + " has no config.json (a Hugging Face model directory holds "
                                "config.json, the weights and the tokenizer)");
  const json root = read_json(config_path);
  ImportReport report;
  report.architecture = architecture_of(root, config_path.string());
  const HfConfig hf(root, defaults_of(report.architecture), config_path.string());
  report.config = model_config(hf, report.architecture, options, report.notes);
  const Tokenizer tokenizer = tokenizer_of(dir, report.config);
  const auto generation = generation_settings(dir, root, report.config, report.notes);

  const detail::HfWeights weights(hf_dir);
  report.weights_source = weights.source();
  torch::manual_seed(options.seed());  // the new scorers' initialisation
  Seq2Seq model(report.config);
  const bool bigbird = report.architecture == kBigBird;
  const auto used = load_weights(*model, weights, bigbird, config_path.string());
  check_unused(weights, used, report.config, report.architecture);
  for (const auto& p : model->parameters()) report.parameters += p.numel();

  detail::AtomicDirectory out("import", out_dir);
  detail::write_model_files(*model, out);
  out.write("tokenizer.model", tokenizer.serialized());
  out.write("generation.json", generation.to_generation_json());
  detail::write_checksums(out);
  out.commit();
  return report;
}

}  // namespace pyramidion
