// Argument checks of the top-k front (ops/topk_checks.h) and the sh_checked_scores operator.
#include "ops/topk_checks.h"

#include "util/tensor_text.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <stdexcept>

namespace pyramidion {
namespace detail {

at::Tensor check_topk_args(const char* fn, const at::Tensor& x, const at::Tensor& scores, int64_t k,
                           const at::Tensor& mask) {
  auto fail = [&](const std::string& what) { throw std::invalid_argument(std::string(fn) + ": " + what); };
  if (!x.defined() || !scores.defined()) fail("x and scores must be defined tensors");
  if (x.dim() != 3) fail("x must have shape (b, n, d), got " + describe(x));
  if (scores.dim() != 2 || scores.size(0) != x.size(0) || scores.size(1) != x.size(1))
    fail("scores must have shape (b, n) = [" + std::to_string(x.size(0)) + ", " + std::to_string(x.size(1)) +
         "] to match x " + describe(x) + ", got " + describe(scores));
  const auto dt = x.scalar_type();
  if (dt != at::kFloat && dt != at::kDouble && dt != at::kBFloat16 && dt != at::kHalf)
    fail(std::string("x must be float32, float64, bfloat16 or float16, got ") + c10::toString(dt));
  if (scores.scalar_type() != dt)
    fail(std::string("scores must have the dtype of x (") + c10::toString(dt) + "), got " +
         c10::toString(scores.scalar_type()));
  if (scores.device() != x.device())
    fail("scores are on " + scores.device().str() + " but x is on " + x.device().str());
  const int64_t n = x.size(1);
  if (k < 1 || k > n)
    fail("k must satisfy 1 <= k <= n = " + std::to_string(n) + ", got k = " + std::to_string(k));
  at::Tensor m = mask;
  if (m.defined()) {
    if (m.dim() != 2 || m.size(0) != x.size(0) || m.size(1) != n)
      fail("mask must have shape (b, n) = [" + std::to_string(x.size(0)) + ", " + std::to_string(n) +
           "], got " + describe(m));
    if (m.scalar_type() != at::kBool)
      fail(std::string("mask must be bool (true for real tokens), got ") + c10::toString(m.scalar_type()));
    if (m.device() != x.device()) fail("mask is on " + m.device().str() + " but x is on " + x.device().str());
  } else {
    m = at::ones({x.size(0), n}, x.options().dtype(at::kBool));
  }
  return m;
}

void check_base(const char* fn, double base) {
  if (!std::isfinite(base) || base <= 1.0)
    throw std::invalid_argument(std::string(fn) + ": base must be finite and > 1, got " + std::to_string(base));
}

at::Tensor check_operator_args(const at::Tensor& x, const at::Tensor& scores, int64_t k,
                               const c10::optional<at::Tensor>& mask, double base) {
  constexpr const char* fn = "pyramidion::successive_halving_topk";
  const auto m = check_topk_args(fn, x, scores, k, mask.value_or(at::Tensor()));
  check_base(fn, base);
  return m;
}

void check_finite_scores(const char* fn, const at::Tensor& scores, const at::Tensor& mask) {
  const auto bad = scores.isfinite().logical_not().logical_and(mask);
  if (!bad.any().item<bool>()) return;
  const auto where = bad.nonzero().select(0, 0).cpu();  // (2,)
  const int64_t i = where[0].item<int64_t>(), j = where[1].item<int64_t>();
  throw std::invalid_argument(std::string(fn) + ": scores must be finite where mask is true; scores[" +
                              std::to_string(i) + ", " + std::to_string(j) +
                              "] = " + std::to_string(scores.select(0, i).select(0, j).item<double>()));
}

namespace {

// sh_checked_scores (ops/topk_ops.h). Non-finite scores of real tokens would silently poison every
// pair they meet. On the CPU the check is a pass over the scores; on CUDA it would make the host
// wait for the device at every call (and rule out graph capture), so there the tournament kernel
// poisons the example instead (NaN outputs and gradients: ops/tournament_program.h).
at::Tensor checked_scores_any(const at::Tensor& scores, const at::Tensor& mask, c10::string_view) {
  return scores.masked_fill(mask.logical_not(), 0);  // (b, n)
}

at::Tensor checked_scores_cpu(const at::Tensor& scores, const at::Tensor& mask, c10::string_view fn) {
  check_finite_scores(std::string(fn).c_str(), scores, mask);
  return checked_scores_any(scores, mask, fn);
}

}  // namespace
}  // namespace detail
}  // namespace pyramidion

// Every backend but the CPU (CUDA, and Meta for tracing) zeroes the padding without a check.
TORCH_LIBRARY_IMPL(pyramidion, CompositeExplicitAutograd, m) {
  m.impl("sh_checked_scores", &pyramidion::detail::checked_scores_any);
}
TORCH_LIBRARY_IMPL(pyramidion, CPU, m) { m.impl("sh_checked_scores", &pyramidion::detail::checked_scores_cpu); }
