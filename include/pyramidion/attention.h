// MultiHeadAttention: the attention layer of the encoder and the decoder (arXiv 2009.05169,
// Figure 1), on LibTorch's fused scaled-dot-product attention.
//
// One module, four uses:
//   forward(x, mask)                  encoder self-attention, full or blockwise (options.block_size:
//                                     the paper's model B; a tail shorter than a block is padded and
//                                     masked, never dropped);
//   forward_causal(x, mask)           decoder self-attention over a whole target prefix (training);
//   forward_step(x_t, cache)          the same, one position at a time with a key/value cache
//                                     (generation); equal to forward_causal over the prefix;
//   project_memory / attend           decoder cross-attention, with the memory's keys and values
//                                     computed once per source (forward_cross does both).
//
// Masks are bool, true = a real token. A query with no key to attend to (a padding query in a
// padding block, or any query over an empty memory) outputs zeros, never NaN, and so does every
// padding query of self-attention.
//
// Shape legend: b batch, n tokens (self-attention), t target positions (queries), s memory rows
// (keys), d model size, h heads, dh = d / h.
#pragma once

#include <pyramidion/linear.h>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <iosfwd>
#include <memory>

namespace pyramidion {

struct MultiHeadAttentionOptions {
  MultiHeadAttentionOptions(int64_t d_model, int64_t heads) : d_model_(d_model), heads_(heads) {}
  /// Model size d; must be a multiple of heads.
  TORCH_ARG(int64_t, d_model);
  /// Number of heads h.
  TORCH_ARG(int64_t, heads);
  /// Dropout on the attention weights, in training mode only (the authors' code: 0).
  TORCH_ARG(double, dropout) = 0.0;
  /// Biases in the q, k, v and output projections.
  TORCH_ARG(bool, bias) = true;
  /// Self-attention (forward) within non-overlapping blocks of this many tokens; 0 = full
  /// attention. A block at least as long as the input is full attention. The causal and
  /// cross-attention methods ignore it.
  TORCH_ARG(int64_t, block_size) = 0;
};

/// Keys and values of a memory, projected and split into heads: (b, h, s, dh) each.
struct KV {
  at::Tensor k;
  at::Tensor v;
};

/// Past keys and values of causal self-attention, for generation (no gradient flows through it).
///
/// The positions live in a preallocated storage (b, h, capacity, dh): appending a position writes
/// one slot instead of copying the whole cache (at::cat would copy O(t) per step, O(t^2) over a
/// summary). reserve() sizes it for a known length; without it the capacity doubles when full.
/// Beam reordering gathers the cached positions into a second storage of the same size, kept for
/// the next reorder, so a beam step copies the cache once and allocates nothing.
struct KVCache {
  /// The cached positions, (b, h, t, dh) each: views of the storage, undefined before the first
  /// append, valid until the next append() or reorder().
  at::Tensor k;
  at::Tensor v;
  /// The fused [q; k; v] projection of the layer that owns the cache, d -> 3d (int8 when the
  /// layer's projections are): made by MultiHeadAttention::forward_step at the first step of a
  /// decoding, so a step runs one matrix product instead of three. The weights are read then: a
  /// decoding sees the weights it started with.
  std::shared_ptr<LinearImpl> qkv;

  /// Number t of cached positions (0 when empty).
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
  /// Positions the storage holds before it must grow (0 before the first append).
  int64_t capacity() const { return k_storage_.defined() ? k_storage_.size(2) : 0; }
  /// Makes room for `positions` in total (allocated at the first append when the cache is empty).
  /// Throws std::invalid_argument for positions < 0.
  void reserve(int64_t positions);
  /// Appends one position or more: k_new and v_new (b, h, t', dh), with the b, h and dh of the
  /// cached positions, same dtype and device. Throws std::invalid_argument otherwise.
  void append(const at::Tensor& k_new, const at::Tensor& v_new);
  /// Keeps the rows `index` (int64, (b')) of the batch, in that order (beam search reordering).
  void reorder(const at::Tensor& index);

 private:
  void set_views(int64_t t);
  at::Tensor k_storage_, v_storage_;  // (b, h, capacity, dh)
  at::Tensor k_spare_, v_spare_;      // (b', h, capacity, dh): reorder()'s target, or undefined
  int64_t reserved_ = 0;
};

class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiHeadAttentionImpl(const MultiHeadAttentionOptions& options);

  /// Self-attention, full or blockwise (options.block_size). x: (b, n, d); mask: (b, n) bool or
  /// undefined (all real). Returns (b, n, d), zero at padding positions.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask = {});

  /// Causal self-attention: position i attends to the real positions j <= i. x: (b, t, d);
  /// mask: (b, t) bool or undefined. Returns (b, t, d), zero at padding positions.
  at::Tensor forward_causal(const at::Tensor& x, const at::Tensor& mask = {});

  /// One step of causal self-attention: appends the keys and values of x_t (b, 1, d) to `cache`
  /// and attends to every cached position. Returns (b, 1, d). The q, k and v projections run as one
  /// product with the cache's fused weight (made from q_proj, k_proj and v_proj at the first step).
  /// For generation: no gradient flows through the cache.
  at::Tensor forward_step(const at::Tensor& x_t, KVCache& cache);

  /// Keys and values of a memory (b, s, d), to reuse across decoder steps.
  KV project_memory(const at::Tensor& memory);

  /// Cross-attention of queries q (b, t, d) to projected memory `kv` with memory_mask (b, s) bool
  /// or undefined. Returns (b, t, d); zero for the examples whose memory has no real row.
  at::Tensor attend(const at::Tensor& q, const KV& kv, const at::Tensor& memory_mask = {});

  /// attend(q, project_memory(memory), memory_mask).
  at::Tensor forward_cross(const at::Tensor& q, const at::Tensor& memory, const at::Tensor& memory_mask = {});

  void reset();
  void pretty_print(std::ostream& stream) const override;

  MultiHeadAttentionOptions options;
  Linear q_proj{nullptr};
  Linear k_proj{nullptr};
  Linear v_proj{nullptr};
  Linear out_proj{nullptr};

 private:
  at::Tensor split_heads(const at::Tensor& x) const;  // (b, n, d) -> (b, h, n, dh)
  at::Tensor merge_heads(const at::Tensor& x) const;  // (b, h, n, dh) -> (b, n, d)
  // Full (bidirectional) self-attention; mask (b, n) bool or undefined. Returns (b, n, d).
  at::Tensor full_self_attention(const at::Tensor& x, const at::Tensor& mask);
  // Fused attention of q (b, h, t, dh) to k, v (b, h, s, dh) under attn_mask (bool, broadcastable
  // to (b, h, t, s), or undefined); queries with no key get a zero context. Returns (b, h, t, dh).
  at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& attn_mask,
                  bool is_causal = false);
};

TORCH_MODULE(MultiHeadAttention);

}  // namespace pyramidion
