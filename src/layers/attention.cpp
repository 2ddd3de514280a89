// MultiHeadAttention (see include/pyramidion/attention.h).
//
// Legend: b batch, n tokens, t queries, s memory rows (keys), d model size, h heads, dh = d / h,
// c block size, m = ceil(n / c) blocks per example.
#include <pyramidion/attention.h>

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>

#include "util/tensor_text.h"

namespace pyramidion {
namespace {

using detail::describe;

// x must be (b, n, d_model) floating point.
void check_sequence(const char* fn, const char* name, const at::Tensor& x, int64_t d_model) {
  if (!x.defined() || x.dim() != 3 || x.size(2) != d_model)
    throw std::invalid_argument(std::string("MultiHeadAttention::") + fn + ": " + name +
                                " must have shape (b, n, d_model = " + std::to_string(d_model) + "), got " +
                                describe(x));
  if (!x.is_floating_point())
    throw std::invalid_argument(std::string("MultiHeadAttention::") + fn + ": " + name +
                                " must be floating point, got " + std::string(c10::toString(x.scalar_type())));
}

// mask must be undefined or (b, n) bool.
void check_mask(const char* fn, const char* name, const at::Tensor& mask, int64_t b, int64_t n) {
  if (!mask.defined()) return;
  if (mask.dim() != 2 || mask.size(0) != b || mask.size(1) != n)
    throw std::invalid_argument(std::string("MultiHeadAttention::") + fn + ": " + name + " must have shape (b, n) = [" +
                                std::to_string(b) + ", " + std::to_string(n) + "], got " + describe(mask));
  if (mask.scalar_type() != at::kBool)
    throw std::invalid_argument(std::string("MultiHeadAttention::") + fn + ": " + name +
                                " must be bool (true = real token), got " +
                                std::string(c10::toString(mask.scalar_type())));
}

// k and v must both be (b, h, s, dh) with the same s.
void check_heads(const char* fn, const char* what, const at::Tensor& k, const at::Tensor& v, int64_t b, int64_t h,
                 int64_t dh) {
  const auto bad = [&](const at::Tensor& t) {
    return !t.defined() || t.dim() != 4 || t.size(0) != b || t.size(1) != h || t.size(3) != dh;
  };
  if (bad(k) || bad(v) || k.size(2) != v.size(2))
    throw std::invalid_argument(std::string("MultiHeadAttention::") + fn + ": " + what +
                                " k and v must both have shape (b, h, s, dh) = [" + std::to_string(b) + ", " +
                                std::to_string(h) + ", s, " + std::to_string(dh) + "], got k " + describe(k) +
                                " and v " + describe(v));
}

}  // namespace

void KVCache::set_views(int64_t t) {
  k = k_storage_.narrow(2, 0, t);  // (b, h, capacity, dh) -> (b, h, t, dh)
  v = v_storage_.narrow(2, 0, t);  // (b, h, capacity, dh) -> (b, h, t, dh)
}

void KVCache::reserve(int64_t positions) {
  at::NoGradGuard no_grad;  // no gradient flows through the cache
  if (positions < 0)
    throw std::invalid_argument("KVCache::reserve: positions must be >= 0, got " + std::to_string(positions));
  reserved_ = std::max(reserved_, positions);
  if (!k_storage_.defined() || positions <= capacity()) return;
  const int64_t t = length();
  auto sizes = k_storage_.sizes().vec();
  sizes[2] = positions;
  auto k_grown = at::empty(sizes, k_storage_.options());  // (b, h, positions, dh)
  auto v_grown = at::empty(sizes, v_storage_.options());  // (b, h, positions, dh)
  k_grown.narrow(2, 0, t).copy_(k);
  v_grown.narrow(2, 0, t).copy_(v);
  k_storage_ = std::move(k_grown);
  v_storage_ = std::move(v_grown);
  k_spare_ = v_spare_ = at::Tensor();
  set_views(t);
}

void KVCache::append(const at::Tensor& k_new, const at::Tensor& v_new) {
  at::NoGradGuard no_grad;  // no gradient flows through the cache
  const auto shaped = [](const at::Tensor& x) { return x.defined() && x.dim() == 4 && x.size(2) >= 1; };
  if (!shaped(k_new) || !shaped(v_new) || k_new.sizes() != v_new.sizes() ||
      k_new.options().dtype() != v_new.options().dtype() || k_new.device() != v_new.device())
    throw std::invalid_argument("KVCache::append: k_new and v_new must have the same shape (b, h, t, dh) with t >= 1, "
                                "dtype and device, got k " + describe(k_new) + " and v " + describe(v_new));
  const int64_t t = length(), added = k_new.size(2);
  if (k_storage_.defined()) {
    const bool same = k_new.size(0) == k.size(0) && k_new.size(1) == k.size(1) && k_new.size(3) == k.size(3) &&
                      k_new.scalar_type() == k.scalar_type() && k_new.device() == k.device();
    if (!same)
      throw std::invalid_argument("KVCache::append: new positions " + describe(k_new) + " " +
                                  std::string(c10::toString(k_new.scalar_type())) + " do not match the cached " +
                                  describe(k) + " " + std::string(c10::toString(k.scalar_type())));
    if (t + added > capacity()) reserve(std::max(t + added, 2 * capacity()));
  } else {
    const int64_t cap = std::max({added, reserved_, int64_t{16}});
    k_storage_ = at::empty({k_new.size(0), k_new.size(1), cap, k_new.size(3)}, k_new.options());  // (b, h, cap, dh)
    v_storage_ = at::empty({v_new.size(0), v_new.size(1), cap, v_new.size(3)}, v_new.options());  // (b, h, cap, dh)
  }
  k_storage_.narrow(2, t, added).copy_(k_new);
  v_storage_.narrow(2, t, added).copy_(v_new);
  set_views(t + added);
}

void KVCache::reorder(const at::Tensor& index) {
  if (!index.defined() || index.dim() != 1 || index.scalar_type() != at::kLong)
    throw std::invalid_argument("KVCache::reorder: index must be a 1-d int64 tensor, got " + describe(index));
  if (!k.defined()) return;
  at::NoGradGuard no_grad;  // no gradient flows through the cache
  const int64_t t = length(), rows = index.size(0);
  if (!k_spare_.defined() || k_spare_.size(0) != rows || k_spare_.size(2) != capacity()) {
    auto sizes = k_storage_.sizes().vec();
    sizes[0] = rows;
    k_spare_ = at::empty(sizes, k_storage_.options());  // (b', h, capacity, dh)
    v_spare_ = at::empty(sizes, v_storage_.options());  // (b', h, capacity, dh)
  }
  auto k_into = k_spare_.narrow(2, 0, t);  // (b', h, t, dh)
  auto v_into = v_spare_.narrow(2, 0, t);  // (b', h, t, dh)
  at::index_select_out(k_into, k, 0, index);  // (b, h, t, dh) -> (b', h, t, dh)
  at::index_select_out(v_into, v, 0, index);  // (b, h, t, dh) -> (b', h, t, dh)
  std::swap(k_storage_, k_spare_);
  std::swap(v_storage_, v_spare_);
  set_views(t);
}

MultiHeadAttentionImpl::MultiHeadAttentionImpl(const MultiHeadAttentionOptions& options_) : options(options_) {
  const auto d = options.d_model(), h = options.heads();
  if (d < 1) throw std::invalid_argument("MultiHeadAttention: d_model must be >= 1, got " + std::to_string(d));
  if (h < 1) throw std::invalid_argument("MultiHeadAttention: heads must be >= 1, got " + std::to_string(h));
  if (d % h != 0)
    throw std::invalid_argument("MultiHeadAttention: d_model must be a multiple of heads, got d_model " +
                                std::to_string(d) + " and heads " + std::to_string(h));
  if (!(options.dropout() >= 0.0 && options.dropout() < 1.0))
    throw std::invalid_argument("MultiHeadAttention: dropout must be in [0, 1), got " +
                                std::to_string(options.dropout()));
  if (options.block_size() < 0)
    throw std::invalid_argument("MultiHeadAttention: block_size must be >= 0 (0 = full attention), got " +
                                std::to_string(options.block_size()));
  reset();
}

void MultiHeadAttentionImpl::reset() {
  const auto d = options.d_model();
  const auto linear = [&] { return Linear(d, d, options.bias()); };
  q_proj = register_module("q_proj", linear());
  k_proj = register_module("k_proj", linear());
  v_proj = register_module("v_proj", linear());
  out_proj = register_module("out_proj", linear());
  // The initialisation of fairseq's MultiheadAttention (the authors' code): Xavier-uniform weights,
  // scaled by 1/sqrt(2) for the input projections, and a zero output bias.
  for (auto* p : {&q_proj, &k_proj, &v_proj}) torch::nn::init::xavier_uniform_((*p)->weight, 1.0 / std::sqrt(2.0));
  torch::nn::init::xavier_uniform_(out_proj->weight);
  if (options.bias()) torch::nn::init::zeros_(out_proj->bias);
}

void MultiHeadAttentionImpl::pretty_print(std::ostream& stream) const {
  stream << "pyramidion::MultiHeadAttention(d_model=" << options.d_model() << ", heads=" << options.heads()
         << ", dropout=" << options.dropout() << ", bias=" << options.bias()
         << ", block_size=" << options.block_size() << ")";
}

at::Tensor MultiHeadAttentionImpl::split_heads(const at::Tensor& x) const {
  const int64_t b = x.size(0), n = x.size(1), h = options.heads();
  return x.reshape({b, n, h, options.d_model() / h}).transpose(1, 2);  // (b, n, d) -> (b, h, n, dh)
}

at::Tensor MultiHeadAttentionImpl::merge_heads(const at::Tensor& x) const {
  const int64_t b = x.size(0), n = x.size(2);
  return x.transpose(1, 2).reshape({b, n, options.d_model()});  // (b, h, n, dh) -> (b, n, d)
}

at::Tensor MultiHeadAttentionImpl::sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& attn_mask, bool is_causal) {
  const double p = is_training() ? options.dropout() : 0.0;
  if (!attn_mask.defined())
    return at::scaled_dot_product_attention(q, k, v, std::nullopt, p, is_causal);  // (b, h, t, dh)
  // A query whose mask row is all false has no defined softmax, and the backends disagree on it
  // (NaN in older releases and some GPU kernels, zeros in the CPU flash kernel, a uniform average
  // in the math fallback used e.g. with dropout): let such rows attend to every key, which is
  // finite in value and gradient everywhere, then zero their context.
  const auto no_key = attn_mask.any(-1, /*keepdim=*/true).logical_not();  // (b, 1, t or 1, 1)
  const auto safe = attn_mask.logical_or(no_key);                          // as attn_mask
  const auto ctx = at::scaled_dot_product_attention(q, k, v, safe, p);     // (b, h, t, dh)
  return ctx.masked_fill(no_key, 0.0);                                     // (b, h, t, dh)
}

at::Tensor MultiHeadAttentionImpl::full_self_attention(const at::Tensor& x, const at::Tensor& mask) {
  const int64_t b = x.size(0), n = x.size(1);
  const auto q = split_heads(q_proj->forward(x));  // (b, n, d) -> (b, h, n, dh)
  const auto k = split_heads(k_proj->forward(x));  // (b, n, d) -> (b, h, n, dh)
  const auto v = split_heads(v_proj->forward(x));  // (b, n, d) -> (b, h, n, dh)
  const auto key_mask = mask.defined() ? mask.view({b, 1, 1, n}) : at::Tensor();  // (b, 1, 1, n)
  const auto out = out_proj->forward(merge_heads(sdpa(q, k, v, key_mask)));       // (b, n, d)
  if (!mask.defined()) return out;
  return out.masked_fill(mask.logical_not().unsqueeze(-1), 0.0);  // zero padding rows, (b, n, d)
}

at::Tensor MultiHeadAttentionImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  check_sequence("forward", "x", x, options.d_model());
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2), c = options.block_size();
  check_mask("forward", "mask", mask, b, n);
  if (c == 0 || c >= n) return full_self_attention(x, mask);

  // Blockwise (the paper's model B): attention within non-overlapping blocks of c tokens, as a
  // batch of b * m independent sequences. The tail is padded to a whole block and masked.
  const int64_t m = (n + c - 1) / c, pad = m * c - n;
  auto xp = x;
  auto mp = mask;
  if (pad > 0) {
    xp = at::constant_pad_nd(x, {0, 0, 0, pad});  // (b, n, d) -> (b, m * c, d)
    const auto real = mask.defined() ? mask : at::ones({b, n}, x.options().dtype(at::kBool));  // (b, n)
    mp = at::cat({real, at::zeros({b, pad}, real.options())}, 1);  // (b, n) -> (b, m * c)
  }
  const auto xb = xp.reshape({b * m, c, d});                                    // (b, m*c, d) -> (b*m, c, d)
  const auto mb = mp.defined() ? mp.reshape({b * m, c}) : at::Tensor();         // (b, m*c) -> (b*m, c)
  const auto out = full_self_attention(xb, mb);                                 // (b*m, c, d)
  return out.reshape({b, m * c, d}).narrow(1, 0, n);  // (b*m, c, d) -> (b, m*c, d) -> (b, n, d)
}

at::Tensor MultiHeadAttentionImpl::forward_causal(const at::Tensor& x, const at::Tensor& mask) {
  check_sequence("forward_causal", "x", x, options.d_model());
  const int64_t b = x.size(0), t = x.size(1);
  check_mask("forward_causal", "mask", mask, b, t);
  const auto q = split_heads(q_proj->forward(x));  // (b, t, d) -> (b, h, t, dh)
  const auto k = split_heads(k_proj->forward(x));  // (b, t, d) -> (b, h, t, dh)
  const auto v = split_heads(v_proj->forward(x));  // (b, t, d) -> (b, h, t, dh)
  if (!mask.defined()) return out_proj->forward(merge_heads(sdpa(q, k, v, {}, /*is_causal=*/true)));  // (b, t, d)
  const auto causal = at::ones({t, t}, mask.options()).tril().view({1, 1, t, t});  // (1, 1, t, t)
  const auto attn_mask = causal.logical_and(mask.view({b, 1, 1, t}));              // (b, 1, t, t)
  const auto out = out_proj->forward(merge_heads(sdpa(q, k, v, attn_mask)));       // (b, t, d)
  return out.masked_fill(mask.logical_not().unsqueeze(-1), 0.0);                  // (b, t, d)
}

at::Tensor MultiHeadAttentionImpl::forward_step(const at::Tensor& x_t, KVCache& cache) {
  check_sequence("forward_step", "x_t", x_t, options.d_model());
  const int64_t b = x_t.size(0), h = options.heads(), dh = options.d_model() / h;
  if (x_t.size(1) != 1)
    throw std::invalid_argument("MultiHeadAttention::forward_step: x_t must have shape (b, 1, d_model), got " +
                                describe(x_t));
  if (cache.k.defined() || cache.v.defined()) check_heads("forward_step", "cache", cache.k, cache.v, b, h, dh);
  if (!cache.qkv || cache.qkv->weight.scalar_type() != q_proj->weight.scalar_type() ||
      cache.qkv->weight.device() != q_proj->weight.device() || cache.qkv->quantized() != q_proj->quantized() ||
      cache.qkv->prepacked() != q_proj->prepacked())
    cache.qkv = LinearImpl::concat({q_proj.get(), k_proj.get(), v_proj.get()});  // d -> 3d
  const auto qkv = cache.qkv->forward(x_t).chunk(3, -1);  // (b, 1, d) -> (b, 1, 3d) -> 3 x (b, 1, d)
  const auto q = split_heads(qkv[0]);  // (b, 1, d) -> (b, h, 1, dh)
  cache.append(split_heads(qkv[1]), split_heads(qkv[2]));  // (b, h, t, dh) -> (b, h, t+1, dh)
  // The newest position sees all the cached ones: no mask (is_causal would align top-left).
  return out_proj->forward(merge_heads(sdpa(q, cache.k, cache.v, {})));  // (b, h, 1, dh) -> (b, 1, d)
}

KV MultiHeadAttentionImpl::project_memory(const at::Tensor& memory) {
  check_sequence("project_memory", "memory", memory, options.d_model());
  return {split_heads(k_proj->forward(memory)),   // (b, s, d) -> (b, h, s, dh)
          split_heads(v_proj->forward(memory))};  // (b, s, d) -> (b, h, s, dh)
}

at::Tensor MultiHeadAttentionImpl::attend(const at::Tensor& q, const KV& kv, const at::Tensor& memory_mask) {
  check_sequence("attend", "q", q, options.d_model());
  const int64_t b = q.size(0), h = options.heads(), dh = options.d_model() / h;
  check_heads("attend", "kv", kv.k, kv.v, b, h, dh);
  const int64_t s = kv.k.size(2);
  check_mask("attend", "memory_mask", memory_mask, b, s);
  const auto qh = split_heads(q_proj->forward(q));  // (b, t, d) -> (b, h, t, dh)
  const auto key_mask = memory_mask.defined() ? memory_mask.view({b, 1, 1, s}) : at::Tensor();  // (b, 1, 1, s)
  const auto out = out_proj->forward(merge_heads(sdpa(qh, kv.k, kv.v, key_mask)));             // (b, t, d)
  if (!memory_mask.defined()) return out;
  const auto empty = memory_mask.any(1).logical_not().view({b, 1, 1});  // (b, 1, 1)
  return out.masked_fill(empty, 0.0);                                   // (b, t, d)
}

at::Tensor MultiHeadAttentionImpl::forward_cross(const at::Tensor& q, const at::Tensor& memory,
                                                 const at::Tensor& memory_mask) {
  check_sequence("forward_cross", "q", q, options.d_model());
  check_sequence("forward_cross", "memory", memory, options.d_model());
  if (memory.size(0) != q.size(0))
    throw std::invalid_argument("MultiHeadAttention::forward_cross: q " + describe(q) + " and memory " +
                                describe(memory) + " must have the same batch size");
  return attend(q, project_memory(memory), memory_mask);
}

}  // namespace pyramidion
