// Seq2Seq: the paper's encoder-decoder (arXiv 2009.05169, Figure 1) built from one ModelConfig:
// vanilla (full attention), blockwise, pooler and (Deep)Pyramidion are settings of the same blocks.
//
//   token embeddings (times sqrt(d)) + positions of the whole document (config.positions), dropout
//   encoder layer i: self-attention (full or blockwise, config.block_size) and FFN, pre- or
//                    post-norm; then, when config.pooled_lengths[i] > 0, a TopKPooler to that
//                    length, whose mask every later layer and the decoder's cross-attention use
//   decoder layer:   causal self-attention (KV cache when decoding step by step), cross-attention
//                    over the encoder's (pooled) memory with its keys/values projected once per
//                    source, FFN; final LayerNorm when pre-norm; output projection to the vocabulary
//                    (the embedding matrix when config.shared_embeddings), plus config.logits_bias
//
// Inputs are checked at the boundary: ids must be int64 in [0, vocab_size), masks (b, n) bool,
// sources no longer than config.max_source_length and targets no longer than
// config.max_target_length. Longer inputs raise std::invalid_argument naming the lengths: the model
// never truncates; truncation is the caller's job.
//
// Shape legend: b batch, n source tokens, k memory rows (after pooling), t target positions,
// d model size, h heads, v vocabulary size.
#pragma once

#include <pyramidion/attention.h>
#include <pyramidion/config.h>
#include <pyramidion/generate_options.h>
#include <pyramidion/linear.h>
#include <pyramidion/pooling.h>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {

namespace detail {
class BeamSearch;  // src/decoding/generate.cpp: decodes ids it made itself, without re-checking their values
}

/// One encoder layer: self-attention (full or blockwise) and a feed-forward sublayer, each with a
/// residual connection, dropout and a LayerNorm placed as config.norm says.
class EncoderLayerImpl : public torch::nn::Module {
 public:
  explicit EncoderLayerImpl(const ModelConfig& config);
  /// x: (b, n, d); mask: (b, n) bool. Returns (b, n, d).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);

  MultiHeadAttention self_attn{nullptr};
  torch::nn::LayerNorm self_attn_norm{nullptr};
  Linear fc1{nullptr};
  Linear fc2{nullptr};
  torch::nn::LayerNorm ffn_norm{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  bool pre_norm_;
  Activation activation_;
};
TORCH_MODULE(EncoderLayer);

/// One decoder layer: causal self-attention, cross-attention over the encoder's memory and a
/// feed-forward sublayer, each with a residual connection, dropout and a LayerNorm.
class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const ModelConfig& config);
  /// Teacher forcing. x: (b, t, d); cross: the memory's projected K/V (b, h, k, dh);
  /// memory_mask: (b, k) bool. Returns (b, t, d).
  at::Tensor forward(const at::Tensor& x, const KV& cross, const at::Tensor& memory_mask);
  /// One step: x_t (b*beams, 1, d) appended to `cache`; `cross` (b, h, k, dh) and memory_mask
  /// (b, k) serve `beams` consecutive rows each. Returns (b*beams, 1, d); equal to forward() at
  /// that position.
  at::Tensor step(const at::Tensor& x_t, KVCache& cache, const KV& cross, const at::Tensor& memory_mask,
                  int64_t beams = 1);

  MultiHeadAttention self_attn{nullptr};
  torch::nn::LayerNorm self_attn_norm{nullptr};
  MultiHeadAttention cross_attn{nullptr};
  torch::nn::LayerNorm cross_attn_norm{nullptr};
  Linear fc1{nullptr};
  Linear fc2{nullptr};
  torch::nn::LayerNorm ffn_norm{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  // x (b*beams, t, d): beams consecutive rows share a memory row of cross / memory_mask.
  at::Tensor cross_and_ffn(at::Tensor x, const KV& cross, const at::Tensor& memory_mask, int64_t beams);
  bool pre_norm_;
  Activation activation_;
};
TORCH_MODULE(DecoderLayer);

/// What the encoder leaves for the decoder.
struct EncoderOutput {
  at::Tensor memory;       // (b, k, d) the last layer's (pooled) representations, zero at padding
  at::Tensor memory_mask;  // (b, k) bool, true at real rows
  /// One entry per pooling layer (each i with config.pooled_lengths[i] > 0), in layer order:
  /// (b, k_i) int64, the ORIGINAL source position of each kept row's winner (indices of indices,
  /// for highlighting), -1 at padding rows.
  std::vector<at::Tensor> kept_positions;
};

/// The decoder's state while generating step by step.
///
/// Beam search decodes `beams` rows per source: decoder row r belongs to memory row r / beams. The
/// memory's keys/values are kept once per source, not once per beam, and the beams' queries attend
/// to them together (one (beams, k) attention per source and head instead of beams (1, k) ones):
/// reordering beams then never copies the memory, which at k = 8192 is 6 layers x 2 x 16 MiB.
struct DecoderState {
  std::vector<KVCache> self_attn;  // per decoder layer: past keys/values, (b*beams, h, t, dh) each
  std::vector<KV> cross_attn;      // per decoder layer: the memory's keys/values, (b, h, k, dh) each
  at::Tensor memory_mask;          // (b, k) bool
  at::Tensor positions;            // (max_target_length, d) the decoder's positions, the model's dtype
  int64_t beams = 1;               // decoder rows per memory row

  /// Number t of target positions decoded so far.
  int64_t length() const { return self_attn.empty() ? 0 : self_attn.front().length(); }
  /// Number of decoder rows (b * beams).
  int64_t rows() const { return memory_mask.defined() ? memory_mask.size(0) * beams : 0; }
  /// Makes `beams` decoder rows of every current one (rows r*beams .. r*beams + beams-1 copy row
  /// r), without copying the memory. Needs beams == 1 before; throws std::invalid_argument
  /// otherwise or for beams < 1.
  void expand(int64_t beams);
  /// Preallocates every self-attention cache for `positions` target positions in total (see
  /// KVCache::reserve); decoding past it still works, growing the caches.
  void reserve(int64_t positions);
  /// Keeps the decoder rows `index` (int64, (b'*beams)), in that order, and, when `memory_index`
  /// (int64, (b')) is given, the memory rows memory_index. Row index[j] must belong to memory row
  /// memory_index[j / beams] (memory row j / beams when memory_index is undefined: beams reordered
  /// within their source); the sizes are checked, the pairing is the caller's contract.
  void reorder(const at::Tensor& index, const at::Tensor& memory_index = {});
};

class Seq2SeqImpl : public torch::nn::Module {
 public:
  /// Validates the config (ModelConfig::validate, std::invalid_argument) and builds the modules.
  explicit Seq2SeqImpl(const ModelConfig& config);

  /// Teacher forcing. src_ids (b, n) int64; src_mask (b, n) bool (true = real token); tgt_in_ids
  /// (b, t) int64 (bos followed by the target, shifted right). Returns logits (b, t, v); position i
  /// sees the target positions <= i only; padding at the end of a target needs no mask. Checks as
  /// encode(), and 1 <= t <= max_target_length with the batch size of src_ids.
  at::Tensor forward(const at::Tensor& src_ids, const at::Tensor& src_mask, const at::Tensor& tgt_in_ids);

  /// Runs the encoder (and its pooling schedule). src_mask may be undefined (every token real).
  /// Throws std::invalid_argument for ids that are not int64 (b, n) with 1 <= n <=
  /// max_source_length and values in [0, vocab_size), and for a mask that is not bool (b, n).
  EncoderOutput encode(const at::Tensor& src_ids, const at::Tensor& src_mask);

  /// A decoding state over `encoded`: empty self-attention caches and every layer's cross-attention
  /// keys/values, projected once here.
  DecoderState start_decoding(const EncoderOutput& encoded);

  /// Feeds one target position: tgt_ids (state.rows(), 1) int64 (the first step feeds bos).
  /// Returns the next-token logits (state.rows(), v), equal to forward()'s at that position.
  /// Checks the ids' values like encode() (one device-to-host copy on CUDA).
  at::Tensor decode_step(const at::Tensor& tgt_ids, DecoderState& state);

  /// Greedy decoding or beam search: pyramidion::generate(*this, ...) (generate.h; defined with it,
  /// in src/decoding/generate.cpp). Does not change the module's mode: call eval() first.
  Generation generate(const at::Tensor& src_ids, const at::Tensor& src_mask, const GenerateOptions& options);

  /// Writes dir/config.json and dir/weights.pt atomically: into a temporary directory next to
  /// `dir` (".<name>.tmp-XXXXXX", flushed to disk), then renamed over it; an existing `dir` is
  /// first moved aside (".<name>.old-XXXXXX") and removed afterwards. A crash leaves either the old
  /// or the new complete checkpoint at `dir`, or none (with the old one aside), never a partial
  /// one. weights.pt is a pickled dict of every named parameter and buffer (name -> CPU tensor);
  /// Python reads it with torch.load(path, weights_only=True) once the TorchScript type tag the
  /// dict carries is allowed (torch.serialization.safe_globals([torch.jit._pickle.restore_type_tag])),
  /// which pyramidion.load_checkpoint does (docs/python.md). Throws std::runtime_error naming the
  /// path when writing fails.
  void save(const std::string& dir) const;

  const ModelConfig& config() const { return config_; }

  /// Makes every pooling layer select the exact top-k in eval mode (true) or blend with the soft
  /// tournament as in training (false): PoolerConfig::hard_at_inference, which config() then
  /// reports and save() writes. Training mode always uses the soft tournament.
  void set_hard_at_inference(bool hard);

  /// Sets TopKPoolerImpl::detach_scorer_input of every pooling layer: true stops the selection's
  /// gradient at the scorers, so the encoder layers below them cannot learn to be kept.
  void set_detach_scorer_input(bool detach);

  /// Int8 weights for CPU inference (linear.h): every linear layer of the encoder and the decoder
  /// and the output projection (the embedding matrix, when shared) run LibTorch's dynamic int8
  /// kernels; the poolers' scorers, the embeddings and the norms stay float32. Needs the model in
  /// float32 on the CPU (std::invalid_argument otherwise); do it after to(). The float weights stay
  /// (save() writes them); training a quantized model is not supported: unpack() first.
  void quantize_int8();
  /// Float32 weights reordered for oneDNN's matmul (linear.h, LinearImpl::prepack_fp32) for the
  /// layers that every decoder step runs on a few rows: the decoder's linear layers except the
  /// cross-attention's keys and values (computed once per document), and the output projection
  /// (the embedding matrix, when shared). The same arithmetic, about twice the decoder's speed on
  /// the CPU (docs/benchmarks/pegasus.md), for a second copy of those weights in memory. The
  /// encoder, which runs on whole documents, keeps LibTorch's sgemm. Needs the model in float32 on
  /// the CPU (std::invalid_argument otherwise); do it after to(). Calls that need a gradient, and
  /// any after the weights changed, use the parameters as they are. Summarizer::to() does it for
  /// fp32 on the CPU.
  void prepack_fp32();
  /// Back to the float weights as they are (drops int8 or prepacked copies).
  void unpack();
  /// Whether quantize_int8() / prepack_fp32() is in effect.
  bool quantized() const { return quantized_; }
  bool prepacked() const { return prepacked_; }

  // Token embeddings: `embed_tokens` when shared (encoder input, decoder input and output
  // projection); otherwise `encoder_embed`, `decoder_embed` and `output_projection`.
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::Embedding encoder_embed{nullptr};
  torch::nn::Embedding decoder_embed{nullptr};
  Linear output_projection{nullptr};
  torch::nn::ModuleList encoder_layers{nullptr};
  /// One TopKPooler per entry of config.pooled_lengths that is > 0, in layer order.
  torch::nn::ModuleList encoder_poolers{nullptr};
  torch::nn::LayerNorm encoder_norm{nullptr};  // pre-norm only
  torch::nn::ModuleList decoder_layers{nullptr};
  torch::nn::LayerNorm decoder_norm{nullptr};  // pre-norm only
  torch::nn::Dropout dropout{nullptr};
  /// config.positions == Positions::learned: the trained position tables, (max_source_length, d)
  /// and (max_target_length, d); undefined otherwise.
  at::Tensor encoder_positions;
  at::Tensor decoder_positions;
  /// config.logits_bias: (v) added to every logit (a buffer); undefined otherwise.
  at::Tensor logits_bias;

 private:
  // The encoder's or the decoder's positions offset .. offset + n - 1: (n, d), float32 when
  // computed, the parameter's dtype when learned.
  at::Tensor position_table(bool encoder, int64_t n, int64_t offset, at::Device device) const;
  // (b, n) ids -> (b, n, d): the embedding (times sqrt(d) when config.scale_embeddings) plus the
  // encoder's or decoder's positions from `offset`, dropout. The positions come from
  // positions_table (p, d) when it covers them in the right dtype and device, otherwise from
  // position_table().
  at::Tensor embed(torch::nn::Embedding table, bool encoder, const at::Tensor& ids, int64_t offset,
                   const at::Tensor& positions_table = {});
  // (b, t, d) -> (b, t, v)
  at::Tensor project_out(const at::Tensor& x);
  // check_values: also check that the ids lie in [0, vocab_size) (a host sync on CUDA).
  void check_ids(const char* fn, const char* name, const at::Tensor& ids, int64_t max_length, const char* max_name,
                 bool check_values = true) const;
  // decode_step; check_values false for ids the search chose itself (in range by construction),
  // so that a step on CUDA does not wait for the device.
  at::Tensor decode(const at::Tensor& tgt_ids, DecoderState& state, bool check_values);
  friend class detail::BeamSearch;

  // quantize_int8() and prepack_fp32(): `pack` on every linear layer, or (step_layers_only) on
  // those that decoder steps run (see prepack_fp32()).
  void pack_linears(const char* who, void (LinearImpl::*pack)(), bool step_layers_only);

  ModelConfig config_;
  // The output projection over embed_tokens, packed (int8 or prepacked), when shared.
  std::shared_ptr<LinearImpl> shared_output_;
  bool quantized_ = false;
  bool prepacked_ = false;
};

/// The module holder (TORCH_MODULE's, plus load()).
class Seq2Seq : public torch::nn::ModuleHolder<Seq2SeqImpl> {
 public:
  using torch::nn::ModuleHolder<Seq2SeqImpl>::ModuleHolder;
  using Impl = Seq2SeqImpl;

  /// Reads dir/config.json, builds the model and loads dir/weights.pt (on the CPU; the model is
  /// in training mode, as a new one). Throws std::runtime_error naming the path when a file is
  /// missing or unreadable, and naming the first missing, unexpected or mismatching tensor (name
  /// and shapes) when the weights do not match the config; std::invalid_argument for an invalid
  /// config.
  static Seq2Seq load(const std::string& dir);

  /// A model of `config` that starts from the weights of the model directory `dir` (an imported
  /// checkpoint or any saved model): fine-tuning with another pooling schedule, block size,
  /// lengths or dropout. `config` may differ from dir/config.json only in kRetrainableFields
  /// (std::invalid_argument naming the first other field that differs). Every tensor is dir's,
  /// except: a pooling layer after an encoder layer that had none is new (initialised as in a new
  /// model, from the current LibTorch seed; one where dir had one keeps its scorer); a learned
  /// position table of another length is dir's repeated or cut. Checks dir as load() does.
  static Seq2Seq from_pretrained(const std::string& dir, const ModelConfig& config);

  /// The ModelConfig fields that from_pretrained() lets differ from the pretrained model's.
  static const std::vector<std::string> kRetrainableFields;
  /// Whether `field` (a JSON name of ModelConfig) is one of kRetrainableFields.
  static bool retrainable(const std::string& field);
};

/// Sinusoidal positions (fairseq's layout: sines in the first half of d, cosines in the second) of
/// positions offset .. offset + n - 1: (n, d) float32 on `device` (Positions::sinusoidal).
at::Tensor sinusoidal_positions(int64_t n, int64_t d, int64_t offset = 0, at::Device device = at::kCPU);

/// PEGASUS's sinusoidal positions (Positions::sinusoidal_pegasus) of positions offset ..
/// offset + n - 1: (n, d) float32 on `device`.
at::Tensor pegasus_positions(int64_t n, int64_t d, int64_t offset = 0, at::Device device = at::kCPU);

}  // namespace pyramidion
