// Importing pretrained checkpoints: a Hugging Face model directory in, a pyramidion model
// directory out (config.json, weights.pt, tokenizer.model, generation.json, checksums), which
// Seq2Seq::load, Summarizer::load, pyramidion-summarize and pyramidion-train --init read as any
// other.
//
//   import_hf("pegasus-arxiv", "pegasus-arxiv-pyramidion",
//             ImportOptions().max_source_length(8192).block_size(512)
//                            .pooled_lengths({0, 0, 0, 0, 0, 0, 0, 0, 4096, 0, 0, 0, 2048, 0, 0, 1024}));
//
// Architectures (config.json's "architectures"): PegasusForConditionalGeneration and
// BigBirdPegasusForConditionalGeneration. Both are ModelConfig settings of the same blocks
// (pre-norm, ReLU or tanh-GELU, scaled embeddings, a logits bias, eos after every source, the
// decoder starting from decoder_start_token_id); PEGASUS has sinusoidal positions
// (Positions::sinusoidal_pegasus), BigBird-PEGASUS learned ones and no attention biases. Anything
// else is refused (std::invalid_argument naming it and the supported list).
//
// What it reads: config.json; the weights (model.safetensors, sharded safetensors with their
// index, or pytorch_model.bin; float16 and bfloat16 weights become float32); the tokenizer's
// sentencepiece model spiece.model (required: a directory with only tokenizer.json is refused),
// rewritten so that its ids are PegasusTokenizer's (docs/pretrained.md); generation_config.json
// when present (beam size, lengths, length penalty, no-repeat n-grams).
//
// Long inputs: sinusoidal positions extend to any max_source_length; learned ones are extended
// by repeating the checkpoint's table (as LED did for BART). BigBird's block-sparse attention
// becomes full attention (block_size 0, what BigBird-PEGASUS itself runs as "original_full") or
// this library's blockwise attention when block_size > 0. pooled_lengths makes the encoder a
// (Deep)Pyramidion: its new scorers start as a fresh TopKPooler's (LibTorch's Linear
// initialisation, weight and bias uniform in [-1/sqrt(d), 1/sqrt(d)]), drawn from `seed`.
#pragma once

#include <pyramidion/config.h>
#include <pyramidion/pooler_config.h>

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {

/// Options of import_hf(). Every length 0 means "the checkpoint's".
struct ImportOptions {
  /// Longest source in tokens (eos included); 0 = the checkpoint's max_position_embeddings; >= 0.
  TORCH_ARG(int64_t, max_source_length) = 0;
  /// Longest target in tokens (eos included); 0 = the checkpoint's max_position_embeddings; >= 0.
  TORCH_ARG(int64_t, max_target_length) = 0;
  /// Blockwise encoder self-attention within blocks of this many tokens; 0 = full attention.
  TORCH_ARG(int64_t, block_size) = 0;
  /// The pooling schedule (ModelConfig::pooled_lengths): one entry per encoder layer, or empty.
  TORCH_ARG(std::vector<int64_t>, pooled_lengths) = {};
  /// Options of every pooling layer.
  TORCH_ARG(PoolerConfig, pooler) = {};
  /// Dropout of the imported model (training); < 0 = the checkpoint's "dropout".
  TORCH_ARG(double, dropout) = -1.0;
  /// Seed of the new scorers' initialisation.
  TORCH_ARG(uint64_t, seed) = 1;
};

/// What import_hf() did.
struct ImportReport {
  std::string architecture;        // config.json's, e.g. "PegasusForConditionalGeneration"
  std::string weights_source;      // e.g. "model.safetensors"
  ModelConfig config;              // the written config.json
  int64_t parameters = 0;          // parameters of the written model
  std::vector<std::string> notes;  // what did not carry over as it was (one line each)
};

/// Imports the Hugging Face model directory `hf_dir` into the pyramidion model directory
/// `out_dir`, written atomically (as Seq2Seq::save). Throws std::invalid_argument for an
/// unsupported architecture, a missing or damaged file, settings this library cannot represent,
/// or weights that disagree with config.json (each naming the file, the tensor and the shapes),
/// and std::runtime_error when writing fails. The imported model computes what transformers'
/// computes, in float32 (tests/import).
ImportReport import_hf(const std::string& hf_dir, const std::string& out_dir, const ImportOptions& options = {});

/// The architectures import_hf() reads.
const std::vector<std::string>& supported_hf_architectures();

}  // namespace pyramidion
