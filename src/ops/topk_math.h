// Per-element math of the successive-halving top-k, shared by the CPU kernels (src/ops/topk_cpu.cpp)
// and the CUDA kernels (src/ops/cuda/topk_kernels.cu). Plain C++ with no LibTorch: tests run it on the CPU.
#pragma once

#include <math.h>

#if defined(__CUDACC__)
#define PYR_HD __host__ __device__ __forceinline__
#else
#define PYR_HD inline
#endif

namespace pyramidion {
namespace kernels {

PYR_HD float exp_(float v) { return expf(v); }
PYR_HD double exp_(double v) { return exp(v); }
template <typename T>
PYR_HD bool is_finite_(T v) {
  return v == v && v - v == v - v;  // false for NaN and +-inf, without <cmath> overloads on device
}
template <typename T>
PYR_HD T infinity_() {
  return static_cast<T>(HUGE_VAL);
}

/// Pair weight of the better-ranked side a: softmax([base^s_a, base^s_b])_0 = sigmoid(E_a - E_b)
/// with E = base^s = exp(s * log_base) (the paper's double exponential). A real side paired with
/// padding gets weight 1, and so does a padding-only pair (it stays padding; the weight is unused).
/// When both E overflow, the weight is the limit: 1, 0 or 1/2 by the sign of s_a - s_b.
template <typename T>
PYR_HD T pair_weight(T s_a, T s_b, bool valid_a, bool valid_b, T log_base) {
  if (!valid_b) return T(1);
  if (!valid_a) return T(0);
  T diff = exp_(s_a * log_base) - exp_(s_b * log_base);
  if (diff != diff) diff = s_a > s_b ? infinity_<T>() : (s_a < s_b ? -infinity_<T>() : T(0));
  return T(1) / (T(1) + exp_(-diff));
}

/// One tournament pair: weight of a, blended score, validity (true if either side is real).
/// The score of a padding-only pair is 0.
template <typename T>
PYR_HD void pair_blend(T s_a, T s_b, bool valid_a, bool valid_b, T log_base, T* w_out, T* s_out,
                       bool* valid_out) {
  const T w = pair_weight(s_a, s_b, valid_a, valid_b, log_base);
  const bool valid = valid_a || valid_b;
  // A padding side's score is never read: weight 0 (or an invalid node) makes it irrelevant.
  const T sa = valid_a ? s_a : T(0);
  const T sb = valid_b ? s_b : T(0);
  *w_out = w;
  *s_out = valid ? w * sa + (T(1) - w) * sb : T(0);
  *valid_out = valid;
}

/// Backward through one tree node n = w * a + (1 - w) * b (both the representation and the score),
/// with w = pair_weight(s_a, s_b).
///   rho:   the node's path product (d output / d node representation, a scalar factor of dY);
///   sigma: d loss / d node score;
///   q_a, q_b: <dY, representation of a>, <dY, representation of b> (the leaf dots, reduced up);
/// Returns d loss / d s_a and d loss / d s_b in *sigma_a, *sigma_b. Where the weight saturated
/// (w(1 - w) == 0, as for padding and byes) or base^s overflowed, no gradient flows through w.
template <typename T>
PYR_HD void node_backward(T rho, T sigma, T w, T s_a, T s_b, T q_a, T q_b, T log_base,
                          T* sigma_a, T* sigma_b) {
  const T dw = rho * (q_a - q_b) + sigma * (s_a - s_b);
  const T ww = w * (T(1) - w);
  const T e_a = exp_(s_a * log_base);
  const T e_b = exp_(s_b * log_base);
  T ga = w * sigma;
  T gb = (T(1) - w) * sigma;
  if (ww != T(0) && is_finite_(e_a) && is_finite_(e_b)) {
    const T t = dw * ww * log_base;  // d loss / d (E_a - E_b)
    ga += t * e_a;
    gb -= t * e_b;
  }
  *sigma_a = ga;
  *sigma_b = gb;
}

}  // namespace kernels
}  // namespace pyramidion
