// TopKPooler (see include/pyramidion/pooling.h).
//
// Legend: b batch, n input tokens, k kept tokens, d model size.
#include <pyramidion/pooling.h>
#include <pyramidion/topk.h>

#include <ATen/ATen.h>

#include <cmath>
#include <ostream>
#include <stdexcept>
#include <string>
#include <tuple>

#include "util/tensor_text.h"
#include "util/text.h"

namespace pyramidion {

void validate(const PoolerConfig& c, const std::string& owner) {
  if (!(c.base > 1.0) || std::isinf(c.base))
    throw std::invalid_argument(owner + ".base = " + detail::format_double(c.base) + " must be finite and > 1");
  if (!(c.score_epsilon >= 0.0) || std::isinf(c.score_epsilon))
    throw std::invalid_argument(owner + ".score_epsilon = " + detail::format_double(c.score_epsilon) +
                                " must be finite and >= 0");
}

bool operator==(const PoolerConfig& a, const PoolerConfig& b) {
  return std::tie(a.base, a.keep_order, a.hard_at_inference, a.score_epsilon) ==
         std::tie(b.base, b.keep_order, b.hard_at_inference, b.score_epsilon);
}
bool operator!=(const PoolerConfig& a, const PoolerConfig& b) { return !(a == b); }

TopKPoolerImpl::TopKPoolerImpl(const TopKPoolerOptions& options_) : options(options_) {
  if (options.d_model() < 1)
    throw std::invalid_argument("TopKPooler: d_model must be >= 1, got " + std::to_string(options.d_model()));
  if (options.target_length() < 1)
    throw std::invalid_argument("TopKPooler: target_length must be >= 1, got " +
                                std::to_string(options.target_length()));
  validate(options.pooler(), "TopKPoolerOptions.pooler");
  reset();
}

void TopKPoolerImpl::reset() {
  scorer = register_module("scorer", Linear(options.d_model(), 1));
}

void TopKPoolerImpl::pretty_print(std::ostream& stream) const {
  const auto& p = options.pooler();
  stream << "pyramidion::TopKPooler(d_model=" << options.d_model() << ", target_length=" << options.target_length()
         << ", base=" << p.base << ", keep_order=" << p.keep_order << ", hard_at_inference=" << p.hard_at_inference
         << ")";
}

at::Tensor TopKPoolerImpl::score(const at::Tensor& x) {
  if (!x.defined() || x.dim() != 3 || x.size(2) != options.d_model())
    throw std::invalid_argument("TopKPooler: x must have shape (b, n, d_model = " +
                                std::to_string(options.d_model()) + "), got " + detail::describe(x));
  // Under autocast the scorer's product comes out in 16 bits: the scores follow x's dtype, as the
  // soft top-k requires.
  const auto input = detach_scorer_input ? x.detach() : x;  // (b, n, d)
  return (at::sigmoid(scorer->forward(input).squeeze(-1)) + options.pooler().score_epsilon).to(x.scalar_type());  // (b, n, 1) -> (b, n)
}

PoolerOutput TopKPoolerImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  const auto s = score(x);  // (b, n)
  const int64_t b = x.size(0), n = x.size(1), k = options.target_length();
  if (n <= k) {
    // Nothing to pool: pass through (the model's schedule may expect longer inputs).
    const auto m = mask.defined() ? mask : at::ones({b, n}, x.options().dtype(at::kBool));
    if (m.dim() != 2 || m.size(0) != b || m.size(1) != n)
      throw std::invalid_argument("TopKPooler: mask must have shape (b, n) = [" + std::to_string(b) + ", " +
                                  std::to_string(n) + "], got " + detail::describe(m));
    return {x, m, at::arange(n, x.options().dtype(at::kLong)).expand({b, n}), s};
  }
  const auto& p = options.pooler();
  const auto opts = TopKOptions()
                        .base(p.base)
                        .mask(mask)
                        .keep_order(p.keep_order)
                        .hard(p.hard_at_inference && !is_training());
  auto r = successive_halving_topk(x, s, k, opts);
  return {r.values, r.mask, r.indices, r.scores};
}

}  // namespace pyramidion
