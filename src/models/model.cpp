// Seq2Seq (see include/pyramidion/model.h).
//
// Legend: b batch, n source tokens, k memory rows (after pooling), t target positions, d model
// size, h heads, dh = d / h, v vocabulary size.
#include <pyramidion/model.h>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "util/tensor_text.h"

namespace pyramidion {

namespace {

using detail::describe;

at::Tensor activate(Activation activation, const at::Tensor& x) {
  switch (activation) {
    case Activation::gelu: return at::gelu(x);
    case Activation::gelu_tanh: return at::gelu(x, "tanh");
    case Activation::relu: break;
  }
  return at::relu(x);
}

Linear make_linear(int64_t in, int64_t out) {
  // fairseq's Linear: Xavier-uniform weight, zero bias.
  Linear linear(in, out);
  torch::nn::init::xavier_uniform_(linear->weight);
  torch::nn::init::zeros_(linear->bias);
  return linear;
}

MultiHeadAttention make_attention(const ModelConfig& config, int64_t block_size) {
  return MultiHeadAttention(MultiHeadAttentionOptions(config.d_model, config.heads)
                                .dropout(config.attention_dropout)
                                .bias(config.attention_bias)
                                .block_size(block_size));
}

torch::nn::LayerNorm make_norm(int64_t d) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}));
}

// A sublayer with its residual connection: x + dropout(f(norm(x))) in pre-norm,
// norm(x + dropout(f(x))) in post-norm. (b, t, d) -> (b, t, d)
template <typename F>
at::Tensor residual(const at::Tensor& x, bool pre_norm, torch::nn::LayerNorm& norm, torch::nn::Dropout& dropout,
                    F&& f) {
  if (pre_norm) return x + dropout->forward(f(norm->forward(x)));
  return norm->forward(x + dropout->forward(f(x)));
}

}  // namespace

at::Tensor sinusoidal_positions(int64_t n, int64_t d, int64_t offset, at::Device device) {
  // fairseq's SinusoidalPositionalEmbedding: frequencies 10000^(-i / (half - 1)), sin | cos.
  const int64_t half = d / 2;
  const double step = std::log(10000.0) / static_cast<double>(std::max<int64_t>(half - 1, 1));
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  const auto freq = at::exp(at::arange(half, options) * -step);                    // (half)
  const auto pos = at::arange(offset, offset + n, options);                        // (n)
  const auto angles = pos.unsqueeze(1) * freq.unsqueeze(0);                        // (n, half)
  auto table = at::cat({at::sin(angles), at::cos(angles)}, 1);                     // (n, 2 * half)
  if (d % 2 == 1) table = at::constant_pad_nd(table, {0, 1});                      // (n, d)
  return table;
}

at::Tensor pegasus_positions(int64_t n, int64_t d, int64_t offset, at::Device device) {
  // transformers' PegasusSinusoidalPositionalEmbedding.create_weight (modeling_pegasus.py): angle
  // p / 10000^(2i / d), sines of i < ceil(d/2), then cosines of i < floor(d/2), in float64 (numpy
  // there), rounded to float32 once: at p = 8192 a float32 angle would be off by ~5e-4.
  const int64_t sines = (d + 1) / 2, cosines = d / 2;
  const auto options = at::TensorOptions().dtype(at::kDouble).device(device);
  const auto pos = at::arange(offset, offset + n, options).unsqueeze(1);                       // (n, 1)
  const auto freq = [&](int64_t count) {                                                       // (count)
    return at::pow(10000.0, at::arange(count, options) * (-2.0 / static_cast<double>(d)));
  };
  return at::cat({at::sin(pos * freq(sines).unsqueeze(0)), at::cos(pos * freq(cosines).unsqueeze(0))}, 1)
      .to(at::kFloat);  // (n, d)
}

// ---- layers ----------------------------------------------------------------------------------------

EncoderLayerImpl::EncoderLayerImpl(const ModelConfig& config)
    : pre_norm_(config.norm == Norm::pre), activation_(config.activation) {
  self_attn = register_module("self_attn", make_attention(config, config.block_size));
  self_attn_norm = register_module("self_attn_norm", make_norm(config.d_model));
  fc1 = register_module("fc1", make_linear(config.d_model, config.ffn_size));
  fc2 = register_module("fc2", make_linear(config.ffn_size, config.d_model));
  ffn_norm = register_module("ffn_norm", make_norm(config.d_model));
  dropout = register_module("dropout", torch::nn::Dropout(config.dropout));
}

at::Tensor EncoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  auto y = residual(x, pre_norm_, self_attn_norm, dropout,
                    [&](const at::Tensor& h) { return self_attn->forward(h, mask); });  // (b, n, d)
  return residual(y, pre_norm_, ffn_norm, dropout, [&](const at::Tensor& h) {
    return fc2->forward(activate(activation_, fc1->forward(h)));  // (b, n, d) -> (b, n, f) -> (b, n, d)
  });
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& config)
    : pre_norm_(config.norm == Norm::pre), activation_(config.activation) {
  self_attn = register_module("self_attn", make_attention(config, 0));
  self_attn_norm = register_module("self_attn_norm", make_norm(config.d_model));
  cross_attn = register_module("cross_attn", make_attention(config, 0));
  cross_attn_norm = register_module("cross_attn_norm", make_norm(config.d_model));
  fc1 = register_module("fc1", make_linear(config.d_model, config.ffn_size));
  fc2 = register_module("fc2", make_linear(config.ffn_size, config.d_model));
  ffn_norm = register_module("ffn_norm", make_norm(config.d_model));
  dropout = register_module("dropout", torch::nn::Dropout(config.dropout));
}

at::Tensor DecoderLayerImpl::cross_and_ffn(at::Tensor x, const KV& cross, const at::Tensor& memory_mask,
                                           int64_t beams) {
  x = residual(x, pre_norm_, cross_attn_norm, dropout, [&](const at::Tensor& h) {
    if (beams == 1) return cross_attn->attend(h, cross, memory_mask);  // (b, t, d)
    // The beams of a source are extra query positions of one attention over its memory.
    const int64_t t = h.size(1), d = h.size(2);
    return cross_attn->attend(h.reshape({-1, beams * t, d}), cross, memory_mask)  // (b, beams*t, d)
        .view({-1, t, d});                                                        // (b*beams, t, d)
  });
  return residual(x, pre_norm_, ffn_norm, dropout, [&](const at::Tensor& h) {
    return fc2->forward(activate(activation_, fc1->forward(h)));  // (b, t, d) -> (b, t, f) -> (b, t, d)
  });
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const KV& cross, const at::Tensor& memory_mask) {
  // No target mask: padding sits at the end of a target, and causality keeps it out of every real
  // position's view.
  auto y = residual(x, pre_norm_, self_attn_norm, dropout,
                    [&](const at::Tensor& h) { return self_attn->forward_causal(h); });  // (b, t, d)
  return cross_and_ffn(y, cross, memory_mask, 1);
}

at::Tensor DecoderLayerImpl::step(const at::Tensor& x_t, KVCache& cache, const KV& cross,
                                  const at::Tensor& memory_mask, int64_t beams) {
  auto y = residual(x_t, pre_norm_, self_attn_norm, dropout,
                    [&](const at::Tensor& h) { return self_attn->forward_step(h, cache); });  // (b*beams, 1, d)
  return cross_and_ffn(y, cross, memory_mask, beams);
}

void DecoderState::expand(int64_t new_beams) {
  if (new_beams < 1 || beams != 1)
    throw std::invalid_argument("DecoderState::expand: beams = " + std::to_string(new_beams) +
                                " must be >= 1 and the state not expanded yet (it has beams = " +
                                std::to_string(beams) + ")");
  if (new_beams == 1) return;
  if (length() > 0) {
    const auto index = at::arange(rows(), memory_mask.options().dtype(at::kLong)).repeat_interleave(new_beams);
    for (auto& cache : self_attn) cache.reorder(index);  // (b, h, t, dh) -> (b*beams, h, t, dh)
  }
  beams = new_beams;
}

void DecoderState::reserve(int64_t positions) {
  for (auto& cache : self_attn) cache.reserve(positions);
}

void DecoderState::reorder(const at::Tensor& index, const at::Tensor& memory_index) {
  if (!index.defined() || index.dim() != 1 || index.scalar_type() != at::kLong)
    throw std::invalid_argument("DecoderState::reorder: index must be a 1-d int64 tensor, got " + describe(index));
  if (memory_index.defined() && (memory_index.dim() != 1 || memory_index.scalar_type() != at::kLong))
    throw std::invalid_argument("DecoderState::reorder: memory_index must be a 1-d int64 tensor, got " +
                                describe(memory_index));
  const int64_t memory_rows = memory_index.defined() ? memory_index.size(0) : memory_mask.size(0);
  if ((beams > 1 || memory_index.defined()) && index.size(0) != memory_rows * beams)
    throw std::invalid_argument("DecoderState::reorder: index " + describe(index) + " must have " +
                                std::to_string(memory_rows) + " memory rows x " + std::to_string(beams) +
                                " beams entries");
  for (auto& cache : self_attn) cache.reorder(index);  // (b*beams, h, t, dh) -> (b'*beams, h, t, dh)
  // Without beams, decoder rows are memory rows: they move together.
  const auto& rows_index = memory_index.defined() ? memory_index : (beams == 1 ? index : at::Tensor());
  if (!rows_index.defined()) return;
  for (auto& kv : cross_attn) {
    kv.k = kv.k.index_select(0, rows_index);  // (b, h, k, dh) -> (b', h, k, dh)
    kv.v = kv.v.index_select(0, rows_index);  // (b, h, k, dh) -> (b', h, k, dh)
  }
  if (memory_mask.defined()) memory_mask = memory_mask.index_select(0, rows_index);  // (b, k) -> (b', k)
}

// ---- the model -------------------------------------------------------------------------------------

Seq2SeqImpl::Seq2SeqImpl(const ModelConfig& config) : config_(config) {
  config_.validate();
  const int64_t d = config_.d_model, v = config_.vocab_size;
  const auto make_embedding = [&] {
    // fairseq's Embedding: N(0, d^-1/2), the padding row zero (and never updated).
    torch::nn::Embedding e(torch::nn::EmbeddingOptions(v, d).padding_idx(config_.pad_id));
    torch::NoGradGuard no_grad;
    e->weight.normal_(0.0, std::pow(static_cast<double>(d), -0.5));
    e->weight[config_.pad_id].zero_();
    return e;
  };
  if (config_.shared_embeddings) {
    embed_tokens = register_module("embed_tokens", make_embedding());
  } else {
    encoder_embed = register_module("encoder_embed", make_embedding());
    decoder_embed = register_module("decoder_embed", make_embedding());
    output_projection = register_module("output_projection", Linear(d, v, /*bias=*/false));
    torch::nn::init::normal_(output_projection->weight, 0.0, std::pow(static_cast<double>(d), -0.5));
  }
  if (config_.positions == Positions::learned) {
    // fairseq's LearnedPositionalEmbedding initialisation, N(0, d^-1/2).
    encoder_positions = register_parameter("encoder_positions", at::empty({config_.max_source_length, d}));
    decoder_positions = register_parameter("decoder_positions", at::empty({config_.max_target_length, d}));
    torch::NoGradGuard no_grad;
    encoder_positions.normal_(0.0, std::pow(static_cast<double>(d), -0.5));
    decoder_positions.normal_(0.0, std::pow(static_cast<double>(d), -0.5));
  }
  if (config_.logits_bias) logits_bias = register_buffer("logits_bias", at::zeros({v}));  // (v)
  encoder_layers = register_module("encoder_layers", torch::nn::ModuleList());
  encoder_poolers = register_module("encoder_poolers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_.encoder_layers; ++i) {
    encoder_layers->push_back(EncoderLayer(config_));
    if (!config_.pooled_lengths.empty() && config_.pooled_lengths[i] > 0)
      encoder_poolers->push_back(TopKPooler(TopKPoolerOptions(d, config_.pooled_lengths[i], config_.pooler)));
  }
  decoder_layers = register_module("decoder_layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_.decoder_layers; ++i) decoder_layers->push_back(DecoderLayer(config_));
  if (config_.norm == Norm::pre) {
    encoder_norm = register_module("encoder_norm", make_norm(d));
    decoder_norm = register_module("decoder_norm", make_norm(d));
  }
  dropout = register_module("dropout", torch::nn::Dropout(config_.dropout));
}

void Seq2SeqImpl::check_ids(const char* fn, const char* name, const at::Tensor& ids, int64_t max_length,
                            const char* max_name, bool check_values) const {
  const std::string where = std::string("Seq2Seq::") + fn + ": ";
  if (!ids.defined() || ids.dim() != 2 || ids.size(0) < 1 || ids.size(1) < 1)
    throw std::invalid_argument(where + name + " must have shape (b, n) with b, n >= 1, got " + describe(ids));
  if (ids.scalar_type() != at::kLong)
    throw std::invalid_argument(where + name + " must be int64, got " + std::string(c10::toString(ids.scalar_type())));
  if (ids.size(1) > max_length)
    throw std::invalid_argument(where + name + " has length " + std::to_string(ids.size(1)) + " > " + max_name +
                                " = " + std::to_string(max_length) + " (truncate it before calling the model)");
  if (!check_values) return;
  // One sync at the boundary: an id outside the table would otherwise fail deep inside (or, on
  // CUDA, as an asynchronous device assert).
  const auto [lo, hi] = at::aminmax(ids);
  const auto range = at::stack({lo, hi}).cpu();  // (2)
  const int64_t min_id = range.data_ptr<int64_t>()[0], max_id = range.data_ptr<int64_t>()[1];
  if (min_id < 0 || max_id >= config_.vocab_size)
    throw std::invalid_argument(where + name + " holds ids in [" + std::to_string(min_id) + ", " +
                                std::to_string(max_id) + "], outside [0, vocab_size = " +
                                std::to_string(config_.vocab_size) + ")");
}

at::Tensor Seq2SeqImpl::position_table(bool encoder, int64_t n, int64_t offset, at::Device device) const {
  const int64_t d = config_.d_model;
  switch (config_.positions) {
    case Positions::learned: return (encoder ? encoder_positions : decoder_positions).narrow(0, offset, n);  // (n, d)
    case Positions::sinusoidal_pegasus: return pegasus_positions(n, d, offset, device);                     // (n, d)
    case Positions::sinusoidal: break;
  }
  return sinusoidal_positions(n, d, offset, device);  // (n, d)
}

at::Tensor Seq2SeqImpl::embed(torch::nn::Embedding table, bool encoder, const at::Tensor& ids, int64_t offset,
                              const at::Tensor& positions_table) {
  const int64_t n = ids.size(1);
  auto tokens = table->forward(ids);  // (b, n) -> (b, n, d)
  if (config_.scale_embeddings) tokens = tokens * std::sqrt(static_cast<double>(config_.d_model));
  const bool tabled = positions_table.defined() && positions_table.size(0) >= offset + n &&
                      positions_table.scalar_type() == tokens.scalar_type() &&
                      positions_table.device() == tokens.device();
  const auto positions = tabled ? positions_table.narrow(0, offset, n)  // (n, d)
                                : position_table(encoder, n, offset, tokens.device()).to(tokens.scalar_type());
  return dropout->forward(tokens + positions.unsqueeze(0));  // (b, n, d)
}

at::Tensor Seq2SeqImpl::project_out(const at::Tensor& x) {
  at::Tensor logits;
  // The packed copy of embed_tokens while it is still that parameter's storage (not after a move
  // or a conversion of the model).
  if (shared_output_ && shared_output_->weight.is_alias_of(embed_tokens->weight)) {
    logits = shared_output_->forward(x);  // (b, t, d) -> (b, t, v), int8 or prepacked
  } else if (config_.shared_embeddings) {
    logits = at::matmul(x, embed_tokens->weight.t());  // (b, t, d) x (d, v) -> (b, t, v)
  } else {
    logits = output_projection->forward(x);  // (b, t, d) -> (b, t, v)
  }
  if (config_.logits_bias) logits = logits + logits_bias.to(logits.scalar_type());  // (b, t, v) + (v)
  return logits;
}

void Seq2SeqImpl::set_hard_at_inference(bool hard) {
  config_.pooler.hard_at_inference = hard;
  for (size_t i = 0; i < encoder_poolers->size(); ++i)
    encoder_poolers->ptr<TopKPoolerImpl>(i)->options.pooler().hard_at_inference = hard;
}

void Seq2SeqImpl::set_detach_scorer_input(bool detach) {
  for (size_t i = 0; i < encoder_poolers->size(); ++i) encoder_poolers->ptr<TopKPoolerImpl>(i)->detach_scorer_input = detach;
}

void Seq2SeqImpl::pack_linears(const char* who, void (LinearImpl::*pack)(), bool step_layers_only) {
  const auto w = parameters().front();  // a copy: parameters() returns a temporary vector
  if (w.scalar_type() != at::kFloat || !w.device().is_cpu())
    throw std::invalid_argument(std::string("Seq2Seq::") + who + ": packed weights are made from a float32 model on "
                                "the CPU, got " + c10::toString(w.scalar_type()) + " on " + w.device().str());
  unpack();
  const auto apply = [&](Linear& linear) { ((*linear).*pack)(); };
  // The poolers' scorers (d -> 1) cost nothing and decide what is kept: they stay as they are.
  if (!step_layers_only) {
    for (size_t i = 0; i < encoder_layers->size(); ++i) {
      auto* layer = encoder_layers->ptr<EncoderLayerImpl>(i).get();
      for (auto* p : {&layer->self_attn->q_proj, &layer->self_attn->k_proj, &layer->self_attn->v_proj,
                      &layer->self_attn->out_proj, &layer->fc1, &layer->fc2})
        apply(*p);
    }
  }
  for (size_t i = 0; i < decoder_layers->size(); ++i) {
    auto* layer = decoder_layers->ptr<DecoderLayerImpl>(i).get();
    for (auto* p : {&layer->self_attn->q_proj, &layer->self_attn->k_proj, &layer->self_attn->v_proj,
                    &layer->self_attn->out_proj, &layer->cross_attn->q_proj, &layer->cross_attn->out_proj,
                    &layer->fc1, &layer->fc2})
      apply(*p);
    if (!step_layers_only) {  // the cross-attention's keys and values: once per document, over all of it
      apply(layer->cross_attn->k_proj);
      apply(layer->cross_attn->v_proj);
    }
  }
  if (output_projection) apply(output_projection);
  if (config_.shared_embeddings) {
    torch::NoGradGuard no_grad;
    shared_output_ = std::make_shared<LinearImpl>(embed_tokens->weight.detach(), at::Tensor());  // d -> v
    ((*shared_output_).*pack)();
  }
}

void Seq2SeqImpl::quantize_int8() {
  pack_linears("quantize_int8", &LinearImpl::quantize_int8, /*step_layers_only=*/false);
  quantized_ = true;
}

void Seq2SeqImpl::prepack_fp32() {
  pack_linears("prepack_fp32", &LinearImpl::prepack_fp32, /*step_layers_only=*/true);
  prepacked_ = true;
}

void Seq2SeqImpl::unpack() {
  for (const auto& module : modules())
    if (auto* linear = dynamic_cast<LinearImpl*>(module.get())) linear->unpack();
  shared_output_.reset();
  quantized_ = prepacked_ = false;
}

EncoderOutput Seq2SeqImpl::encode(const at::Tensor& src_ids, const at::Tensor& src_mask) {
  check_ids("encode", "src_ids", src_ids, config_.max_source_length, "max_source_length");
  const int64_t b = src_ids.size(0), n = src_ids.size(1);
  if (src_mask.defined() && (src_mask.dim() != 2 || src_mask.size(0) != b || src_mask.size(1) != n ||
                             src_mask.scalar_type() != at::kBool))
    throw std::invalid_argument("Seq2Seq::encode: src_mask must be bool with the shape of src_ids " +
                                describe(src_ids) + ", got " + describe(src_mask) + " " +
                                std::string(c10::toString(src_mask.scalar_type())));
  auto mask = src_mask.defined() ? src_mask : at::ones({b, n}, src_ids.options().dtype(at::kBool));  // (b, n)

  const auto& table = config_.shared_embeddings ? embed_tokens : encoder_embed;
  auto x = embed(table, /*encoder=*/true, src_ids, 0);  // (b, n, d); positions of the whole document, before any layer
  // Original document position of every current row (indices of indices through the poolings).
  auto positions = at::arange(n, src_ids.options()).expand({b, n});  // (b, n)
  EncoderOutput out;
  size_t pooler = 0;
  for (int64_t i = 0; i < config_.encoder_layers; ++i) {
    x = encoder_layers->ptr<EncoderLayerImpl>(i)->forward(x, mask);  // (b, n_i, d)
    if (config_.pooled_lengths.empty() || config_.pooled_lengths[i] <= 0) continue;
    // Pooling after layer i (Section 3): later layers and the decoder see the pooled rows only.
    auto r = encoder_poolers->ptr<TopKPoolerImpl>(pooler++)->forward(x, mask);
    x = r.values;                                  // (b, k_i, d)
    mask = r.mask;                                 // (b, k_i)
    positions = positions.gather(1, r.indices);    // (b, n_i) -> (b, k_i)
    out.kept_positions.push_back(positions.masked_fill(mask.logical_not(), -1));  // (b, k_i)
  }
  if (config_.norm == Norm::pre) x = encoder_norm->forward(x);   // (b, k, d)
  out.memory = x.masked_fill(mask.logical_not().unsqueeze(-1), 0.0);  // (b, k, d), zero at padding
  out.memory_mask = mask;                                              // (b, k)
  return out;
}

at::Tensor Seq2SeqImpl::forward(const at::Tensor& src_ids, const at::Tensor& src_mask, const at::Tensor& tgt_in_ids) {
  check_ids("forward", "tgt_in_ids", tgt_in_ids, config_.max_target_length, "max_target_length");
  if (src_ids.defined() && src_ids.dim() == 2 && src_ids.size(0) != tgt_in_ids.size(0))
    throw std::invalid_argument("Seq2Seq::forward: src_ids " + describe(src_ids) + " and tgt_in_ids " +
                                describe(tgt_in_ids) + " must have the same batch size");
  const auto encoded = encode(src_ids, src_mask);
  const auto& table = config_.shared_embeddings ? embed_tokens : decoder_embed;
  auto y = embed(table, /*encoder=*/false, tgt_in_ids, 0);  // (b, t, d)
  for (const auto& module : *decoder_layers) {
    auto layer = module->as<DecoderLayerImpl>();
    const auto cross = layer->cross_attn->project_memory(encoded.memory);  // (b, k, d) -> (b, h, k, dh) x 2
    y = layer->forward(y, cross, encoded.memory_mask);                     // (b, t, d)
  }
  if (config_.norm == Norm::pre) y = decoder_norm->forward(y);  // (b, t, d)
  return project_out(y);                                        // (b, t, v)
}

DecoderState Seq2SeqImpl::start_decoding(const EncoderOutput& encoded) {
  const auto& m = encoded.memory;
  if (!m.defined() || m.dim() != 3 || m.size(2) != config_.d_model)
    throw std::invalid_argument("Seq2Seq::start_decoding: memory must have shape (b, k, d_model = " +
                                std::to_string(config_.d_model) + "), got " + describe(m));
  const auto& mm = encoded.memory_mask;
  if (!mm.defined() || mm.dim() != 2 || mm.size(0) != m.size(0) || mm.size(1) != m.size(1) ||
      mm.scalar_type() != at::kBool)
    throw std::invalid_argument("Seq2Seq::start_decoding: memory_mask must be bool of shape (b, k) = [" +
                                std::to_string(m.size(0)) + ", " + std::to_string(m.size(1)) + "], got " +
                                describe(mm));
  DecoderState state;
  state.memory_mask = mm;
  const auto& table = config_.shared_embeddings ? embed_tokens : decoder_embed;
  state.positions = position_table(/*encoder=*/false, config_.max_target_length, 0, table->weight.device())
                        .detach()
                        .to(table->weight.scalar_type());  // (max_target_length, d), once per decoding
  state.self_attn.resize(decoder_layers->size());
  for (const auto& module : *decoder_layers)  // once per source: (b, k, d) -> (b, h, k, dh) x 2
    state.cross_attn.push_back(module->as<DecoderLayerImpl>()->cross_attn->project_memory(m));
  return state;
}

at::Tensor Seq2SeqImpl::decode_step(const at::Tensor& tgt_ids, DecoderState& state) {
  return decode(tgt_ids, state, /*check_values=*/true);
}

at::Tensor Seq2SeqImpl::decode(const at::Tensor& tgt_ids, DecoderState& state, bool check_values) {
  if (tgt_ids.defined() && tgt_ids.dim() == 2 && tgt_ids.size(1) != 1)
    throw std::invalid_argument("Seq2Seq::decode_step: tgt_ids must have shape (b, 1) (one position per step), got " +
                                describe(tgt_ids));
  check_ids("decode_step", "tgt_ids", tgt_ids, 1, "one position per step", check_values);
  const int64_t t = state.length();
  if (state.self_attn.size() != decoder_layers->size() || state.cross_attn.size() != decoder_layers->size())
    throw std::invalid_argument("Seq2Seq::decode_step: the state has " + std::to_string(state.self_attn.size()) +
                                " caches for " + std::to_string(decoder_layers->size()) +
                                " decoder layers; make it with start_decoding()");
  if (tgt_ids.size(0) != state.rows())
    throw std::invalid_argument("Seq2Seq::decode_step: tgt_ids " + describe(tgt_ids) + " must have one row per " +
                                "decoder row of the state (" + std::to_string(state.memory_mask.size(0)) +
                                " sources x " + std::to_string(state.beams) + " beams)");
  if (t >= config_.max_target_length)
    throw std::invalid_argument("Seq2Seq::decode_step: position " + std::to_string(t) +
                                " is past max_target_length = " + std::to_string(config_.max_target_length));
  const auto& table = config_.shared_embeddings ? embed_tokens : decoder_embed;
  auto y = embed(table, /*encoder=*/false, tgt_ids, t, state.positions);  // (b, 1, d), position t
  for (size_t i = 0; i < decoder_layers->size(); ++i)
    y = decoder_layers->ptr<DecoderLayerImpl>(i)->step(y, state.self_attn[i], state.cross_attn[i],
                                                         state.memory_mask, state.beams);  // (b*beams, 1, d)
  if (config_.norm == Norm::pre) y = decoder_norm->forward(y);  // (b, 1, d)
  return project_out(y).squeeze(1);                             // (b, 1, v) -> (b, v)
}

}  // namespace pyramidion
