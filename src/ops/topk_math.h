// Per-element math of the successive-halving top-k, shared by the CPU kernels (src/ops/topk_cpu.cpp)
// and the CUDA kernels (cuda/topk_kernels.cu). Plain C++ with no LibTorch: tests run it on the CPU.
//
// Bit-identical on the CPU and the GPU: every function here is a fixed sequence of IEEE additions,
// multiplications and divisions (the library compiles with -ffp-contract=off and the kernels with
// --fmad=false, so no product is fused into its sum), and the exponential is this header's own
// (exp_) rather than the C library's or CUDA's, whose last bits differ. So the tournament, whose
// pairings depend on every comparison of blended scores, makes the same choices on both.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>

#if defined(__CUDACC__)
#define PYR_HD __host__ __device__ __forceinline__
#else
#define PYR_HD inline
#endif

namespace pyramidion {
namespace kernels {

template <typename T>
PYR_HD bool is_finite_(T v) {
  return v == v && v - v == v - v;  // false for NaN and +-inf, without <cmath> overloads on device
}
template <typename T>
PYR_HD T infinity_() {
  return static_cast<T>(HUGE_VAL);
}
template <typename T>
PYR_HD T quiet_nan_() {
  const T inf = infinity_<T>();
  return inf - inf;
}

/// 2^e exactly, for e in the normal exponent range ([-126, 127] float, [-1022, 1023] double).
PYR_HD float pow2_(float, int e) {
  const uint32_t bits = static_cast<uint32_t>(e + 127) << 23;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}
PYR_HD double pow2_(double, int e) {
  const uint64_t bits = static_cast<uint64_t>(e + 1023) << 52;
  double f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/// e^v within 1 ulp (float) / 4e-16 relative (double; tests/ops/topk_math_test.cpp measures it),
/// +inf above the largest finite result, 0 below half the smallest subnormal, NaN for NaN. Cody
/// and Waite's reduction v = k ln 2 + r with |r| <= ln 2 / 2 (ln 2 split in a high part whose
/// products with k are exact, and a low part), a Taylor polynomial of e^r (degree 7 for float,
/// 13 for double: the truncation is below half an ulp), then 2^k as two exact powers of two so
/// that subnormal results round once.
PYR_HD float exp_(float v) {
  if (v != v) return v;
  if (v > 88.7228394f) return infinity_<float>();
  if (v < -103.972084f) return 0.0f;
  const float kf = floorf(v * 1.44269504f + 0.5f);                 // nearest integer to v / ln 2
  const float r = (v - kf * 0.693145752f) - kf * 1.42860677e-6f;  // ln 2 = 0.693145752 + 1.42860677e-6
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int k = static_cast<int>(kf), k1 = k / 2;
  return p * pow2_(p, k1) * pow2_(p, k - k1);
}
PYR_HD double exp_(double v) {
  if (v != v) return v;
  if (v > 709.782712893383973) return infinity_<double>();
  if (v < -745.133219101941108) return 0.0;
  const double kf = floor(v * 1.4426950408889634 + 0.5);
  const double r = (v - kf * 6.93147180369123816490e-01) - kf * 1.90821492927058770002e-10;  // fdlibm's ln 2 split
  const double inverse_factorial[14] = {1.0,
                                        1.0,
                                        1.0 / 2,
                                        1.0 / 6,
                                        1.0 / 24,
                                        1.0 / 120,
                                        1.0 / 720,
                                        1.0 / 5040,
                                        1.0 / 40320,
                                        1.0 / 362880,
                                        1.0 / 3628800,
                                        1.0 / 39916800,
                                        1.0 / 479001600,
                                        1.0 / 6227020800.0};
  double p = inverse_factorial[13];
  for (int i = 12; i >= 0; --i) p = p * r + inverse_factorial[i];
  const int k = static_cast<int>(kf), k1 = k / 2;
  return p * pow2_(p, k1) * pow2_(p, k - k1);
}

/// The unsigned integer of a float's size whose ascending order is the float's descending order
/// (+inf first, -inf last; -0 and +0 equal, so that they tie). NaN must not be ranked.
template <typename T>
using UnsignedOf = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;
template <typename T>
PYR_HD UnsignedOf<T> descending_image(T v) {
  using U = UnsignedOf<T>;
  const T canonical = v + T(0);  // -0 becomes +0
  U bits;
  memcpy(&bits, &canonical, sizeof(T));
  const U sign = U(1) << (8 * sizeof(U) - 1);
  const U ascending = (bits & sign) ? U(~bits) : U(bits | sign);
  return U(~ascending);
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
