// ModelConfig: the configuration of a pyramidion encoder-decoder, read from and written to JSON.
//
// One configuration describes the paper's four architectures (arXiv 2009.05169, Figure 1) as
// settings of the same blocks:
//   vanilla          block_size = 0, pooled_lengths = []           (full attention, no pooling)
//   blockwise        block_size = 512, pooled_lengths = []
//   pooler           block_size = 512, pooled_lengths = [0, ..., 0, k]   (once, after the encoder)
//   (deep) pyramidion block_size = 512, pooled_lengths = [n/2, n/4, ...]  (after every layer)
// Presets of each are in configs/ (configs/README.md).
//
// JSON: an object whose keys are the field names below ("pooler" is a nested object, the enums are
// strings). Missing keys take the defaults; unknown keys, duplicate keys and values of the wrong
// type are errors naming the key. Loading validates.
//
// This header needs no LibTorch and no JSON library: it compiles as C++17.
#pragma once

#include <pyramidion/pooler_config.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {

/// The feed-forward activation. JSON: "relu" | "gelu" (the exact, erf form) | "gelu_tanh" (the tanh
/// approximation of Hendrycks and Gimpel 2016, eq. in Section 2: transformers' "gelu_new", which
/// BigBird-PEGASUS uses).
enum class Activation { relu, gelu, gelu_tanh };

/// Where each sublayer's LayerNorm sits. JSON: "pre" (x + f(norm(x))) | "post" (norm(x + f(x))).
enum class Norm { pre, post };

/// The position embeddings added to the token embeddings. JSON:
///   "sinusoidal"          fairseq's table: sin(p w_i) in the first half of d, cos(p w_i) in the
///                         second, w_i = 10000^(-i / (d/2 - 1)); a zero column when d is odd;
///   "sinusoidal_pegasus"  PEGASUS's table (transformers' PegasusSinusoidalPositionalEmbedding):
///                         sin(p w_i) for i < ceil(d/2), then cos(p w_i) for i < floor(d/2),
///                         w_i = 10000^(-2i / d), computed in float64 and rounded once;
///   "learned"             trained tables, "encoder_positions" (max_source_length, d) and
///                         "decoder_positions" (max_target_length, d) (BigBird-PEGASUS, BART).
/// The sinusoidal tables need no parameters and extend to any length.
enum class Positions { sinusoidal, sinusoidal_pegasus, learned };

/// "relu" / "gelu"; throws std::invalid_argument for a value outside the enum.
std::string to_string(Activation activation);
/// "pre" / "post"; throws std::invalid_argument for a value outside the enum.
std::string to_string(Norm norm);
/// "sinusoidal" / "sinusoidal_pegasus" / "learned"; throws std::invalid_argument outside the enum.
std::string to_string(Positions positions);

/// An encoder-decoder Transformer with optional blockwise encoder attention and top-k pooling.
///
/// The defaults are the authors' code defaults (their fairseq fork of arXiv 2009.05169) for a
/// vanilla model: no blocks, no pooling. Every check of validate() is listed on its field.
struct ModelConfig {
  /// The newest configuration format this library reads and writes.
  static constexpr int64_t kFormatVersion = 1;

  /// Format of the JSON file; 1 <= format_version <= kFormatVersion (newer files are rejected).
  int64_t format_version = kFormatVersion;

  /// Vocabulary size (sentencepiece); >= 1 and larger than every token id below.
  int64_t vocab_size = 32000;
  /// Model width d; >= 1 and a multiple of heads.
  int64_t d_model = 512;
  /// Attention heads; >= 1 and divides d_model.
  int64_t heads = 8;
  /// Inner size of the feed-forward sublayers; >= 1.
  int64_t ffn_size = 2048;
  /// Encoder layers; >= 1.
  int64_t encoder_layers = 6;
  /// Decoder layers; >= 1.
  int64_t decoder_layers = 6;

  /// Dropout after embeddings, attention and feed-forward sublayers; in [0, 1).
  double dropout = 0.1;
  /// Dropout on the attention weights; in [0, 1). 0 as in fairseq's transformer default.
  double attention_dropout = 0.0;
  /// Feed-forward activation.
  Activation activation = Activation::relu;
  /// LayerNorm placement; post-norm as in the authors' code.
  Norm norm = Norm::post;
  /// Biases in the attention layers' q, k, v and output projections (false for BigBird-PEGASUS,
  /// whose use_bias is false).
  bool attention_bias = true;

  /// Longest source (document) in tokens; >= 1. Sinusoidal positions cover the whole document.
  int64_t max_source_length = 8192;
  /// Longest target (summary) in tokens, bos/eos included; >= 1.
  int64_t max_target_length = 1024;
  /// The position embeddings (see Positions).
  Positions positions = Positions::sinusoidal;

  /// Encoder self-attention runs within non-overlapping blocks of this many tokens (a tail
  /// shorter than a block is padded and masked); 0 = full attention; >= 0.
  int64_t block_size = 0;

  /// The pooling schedule: the sequence length kept after each encoder layer.
  ///   - empty: no pooling anywhere;
  ///   - otherwise exactly encoder_layers entries; entry i is the number of representations kept
  ///     after encoder layer i (a TopKPooler to that length), or 0 for no pooling after layer i.
  /// Set entries (> 0) are <= max_source_length and non-increasing from layer to layer; no entry
  /// is negative. An input already no longer than an entry passes that pooling unchanged. The
  /// decoder cross-attends to what the last layer (and its pooling) leaves.
  std::vector<int64_t> pooled_lengths = {};
  /// Options shared by every pooling layer of the schedule (validated as "ModelConfig.pooler").
  PoolerConfig pooler = {};

  /// One embedding matrix for the encoder input, the decoder input and the output projection
  /// (fairseq's --share-all-embeddings, as in the authors' training command).
  bool shared_embeddings = true;
  /// Token embeddings are multiplied by sqrt(d_model) (fairseq; transformers' scale_embedding).
  bool scale_embeddings = true;
  /// A fixed vector "logits_bias" (v) added to the output logits (transformers'
  /// final_logits_bias of PEGASUS and BART): a buffer, saved with the weights, never trained.
  bool logits_bias = false;

  /// Padding token id; in [0, vocab_size) and different from eos_id.
  int64_t pad_id = 0;
  /// Beginning-of-sequence id, the decoder's first input; in [0, vocab_size). It may equal pad_id:
  /// PEGASUS starts decoding from the padding token (transformers' decoder_start_token_id = 0).
  int64_t bos_id = 1;
  /// End-of-sequence id; in [0, vocab_size).
  int64_t eos_id = 2;
  /// Every source ends with eos (PegasusTokenizer appends it): the model reads at most
  /// max_source_length - 1 tokens of a document and then eos_id. Applied where sources become
  /// batches (collate), so corpora and datasets hold the document's tokens only.
  bool source_eos = false;

  /// Throws std::invalid_argument naming the first invalid field, its value and what is allowed,
  /// e.g. "ModelConfig.heads = 3 must divide d_model = 512".
  void validate() const;

  /// Parses and validates JSON text. Throws std::invalid_argument on malformed JSON, unknown or
  /// duplicate keys, values of the wrong type and invalid values (each naming the key).
  static ModelConfig from_json_string(const std::string& text);
  /// Reads, parses and validates a JSON file. Throws std::runtime_error when the file cannot be
  /// read and std::invalid_argument for its content, both naming the path.
  static ModelConfig from_json_file(const std::string& path);

  /// Every field, in declaration order, as indented JSON (does not validate: a dump of what is).
  /// Throws std::invalid_argument only for an enum value outside its enum.
  std::string to_json_string() const;
  /// Validates, then writes to_json_string() atomically: to a temporary file in the same
  /// directory, flushed to disk, then renamed over `path`, so that `path` holds either the old or
  /// the new complete file. Throws std::runtime_error naming the path when writing fails.
  void to_json_file(const std::string& path) const;

  /// Every field with its default and a one-line description, in declaration order (the help of
  /// pyramidion-train's --set model.FIELD=VALUE).
  static std::string help_text();
};

/// Field-by-field equality (doubles compared exactly).
bool operator==(const ModelConfig& a, const ModelConfig& b);

/// The JSON names of the fields in which a and b differ, in declaration order ("pooler" for any
/// of its settings).
std::vector<std::string> differing_fields(const ModelConfig& a, const ModelConfig& b);
bool operator!=(const ModelConfig& a, const ModelConfig& b);

}  // namespace pyramidion
