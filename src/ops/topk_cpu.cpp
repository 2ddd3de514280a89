// CPU kernels of the successive-halving top-k operators (see topk_ops.h), parallel over examples or
// rows with at::parallel_for. Representations may be 16-bit (bfloat16, float16): the kernels read
// and write them in their storage type and accumulate in float32 (topk_ops.h, "Precision"). The per-element math lives in src/ops/topk_math.h, shared with the CUDA kernels.
//
// Legend: b batch, n inputs, k outputs, L leaves per output tree, d representation size.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "ops/kernel_checks.h"
#include "ops/topk_math.h"

namespace pyramidion {
namespace detail {
namespace {

// Rows of d elements are at least this many elements of work per parallel task.
constexpr int64_t kGrainElements = 32768;

int64_t grain_rows(int64_t d) { return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(d, 1)); }

// combine and leaf_dot read every row of x once. Each output's L leaves lie scattered over its
// example, so gathering them leaf by leaf jumps through memory; instead each example's x is streamed
// in input order (what the hardware prefetcher serves best) and every row is applied to the output
// that holds it, whose (k, d) block stays in cache. This needs the inverse of the leaf index, which
// the operator's trees always have (every input sits in at most one leaf); the general contract of
// the kernels allows repeated inputs, and then, or with fewer examples than threads, the kernels
// gather leaf by leaf, requesting the row kPrefetchLeaves leaves ahead. Measured on 16 x 8192 x 512
// fp32, one thread: combine 45-50 ms (leaf by leaf), 20 ms (with prefetch), 16 ms (streamed).
constexpr int64_t kPrefetchLeaves = 2;

// GCC sees a function that only prefetches as free of side effects and deletes calls to it unless
// it was inlined first: force the inlining.
#if defined(__GNUC__)
#define PYR_PREFETCH_INLINE inline __attribute__((always_inline))
#else
#define PYR_PREFETCH_INLINE inline
#endif

template <typename T>
PYR_PREFETCH_INLINE void prefetch_row(const T* row, int64_t d) {
#if defined(__GNUC__)
  constexpr int64_t kLine = 64 / sizeof(T);  // elements per cache line
  for (int64_t j = 0; j < d; j += kLine) __builtin_prefetch(row + j);
#endif
}

// Prefetches the x row of flat leaf `leaf` (of index (b, k, L), leaves_per_example = k * L) when it
// lies before `end` (this task's last leaf) and holds an input.
template <typename T>
PYR_PREFETCH_INLINE void prefetch_leaf(const T* x, const int64_t* index, int64_t leaf, int64_t end,
                                       int64_t leaves_per_example, int64_t n, int64_t d) {
  if (leaf >= end) return;
  const int64_t src = index[leaf];
  if (src >= 0) prefetch_row(x + (leaf / leaves_per_example * n + src) * d, d);
}

// <a, b> over d elements with kLanes independent partial sums. One running sum is a chain of
// dependent additions that the compiler may not reorder (no -ffast-math), which made leaf_dot
// compute-bound; the partial sums vectorise. Rounding differs from a sequential sum by O(d eps).
// In the accumulation type A (T's own for float32 and float64).
template <typename T, typename A>
inline A dot(const T* __restrict__ a, const T* __restrict__ b, int64_t d) {
  constexpr int kLanes = 16;
  A acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= d; j += kLanes)
    for (int u = 0; u < kLanes; ++u) acc[u] += static_cast<A>(a[j + u]) * static_cast<A>(b[j + u]);
  A tail = 0;
  for (; j < d; ++j) tail += static_cast<A>(a[j]) * static_cast<A>(b[j]);
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int u = 0; u < width; ++u) acc[u] += acc[u + width];
  return acc[0] + tail;
}

// Accumulation rows of A for storage T: for T == A the output itself, otherwise a buffer of this
// thread that round() converts into the output.
template <typename T, typename A>
class Accumulator {
 public:
  // The A row of `d` elements standing for out[0..d), zeroed.
  A* zeroed(T* out, int64_t d) {
    if constexpr (std::is_same<T, A>::value) {
      std::fill(out, out + d, T(0));
      return out;
    } else {
      buffer_.assign(static_cast<size_t>(d), A(0));
      return buffer_.data();
    }
  }
  // Writes the accumulated row into out[0..d) (nothing to do when it is the output).
  void round(T* out, int64_t d) {
    if constexpr (!std::is_same<T, A>::value)
      for (int64_t j = 0; j < d; ++j) out[j] = static_cast<T>(buffer_[static_cast<size_t>(j)]);
  }

 private:
  std::vector<A> buffer_;
};

// The inverse of one example's leaf index (k*L leaves): leaf_of[p] = the flat leaf i*L + l holding
// input p, -1 for none. False when an input sits in two leaves.
bool invert_leaves(const int64_t* index, int64_t leaves, int64_t n, int64_t* leaf_of) {
  std::fill(leaf_of, leaf_of + n, int64_t(-1));
  for (int64_t f = 0; f < leaves; ++f) {
    const int64_t src = index[f];
    if (src < 0) continue;
    if (leaf_of[src] >= 0) return false;
    leaf_of[src] = f;
  }
  return true;
}

// Whether to stream examples (one task per example) rather than gather rows (tasks over rows).
bool stream_examples(int64_t b) { return b >= at::get_num_threads(); }

// y rows [row_begin, row_end) of (b*k, d), leaf by leaf.
template <typename T, typename A>
void combine_gather(const T* xp, const int64_t* ip, const A* cp, T* yp, int64_t row_begin, int64_t row_end,
                    int64_t n, int64_t k, int64_t L, int64_t d) {
  Accumulator<T, A> accumulator;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t batch = row / k;
    A* __restrict__ out = accumulator.zeroed(yp + row * d, d);
    for (int64_t l = 0; l < L; ++l) {
      prefetch_leaf(xp, ip, row * L + l + kPrefetchLeaves, row_end * L, k * L, n, d);
      const int64_t src = ip[row * L + l];
      if (src < 0) continue;
      const A c = cp[row * L + l];
      const T* __restrict__ in = xp + (batch * n + src) * d;
      for (int64_t j = 0; j < d; ++j) out[j] += c * static_cast<A>(in[j]);
    }
    accumulator.round(yp + row * d, d);
  }
}

// One example's y (k, d) from its x (n, d) read in input order; leaf_of from invert_leaves.
template <typename T, typename A>
void combine_stream(const T* x, const int64_t* leaf_of, const A* coef, T* y, int64_t n, int64_t k, int64_t L,
                    int64_t d) {
  Accumulator<T, A> accumulator;
  A* acc = accumulator.zeroed(y, k * d);
  for (int64_t p = 0; p < n; ++p) {
    const int64_t leaf = leaf_of[p];
    if (leaf < 0) continue;
    const A c = coef[leaf];
    const T* __restrict__ in = x + p * d;
    A* __restrict__ out = acc + leaf / L * d;
    for (int64_t j = 0; j < d; ++j) out[j] += c * static_cast<A>(in[j]);
  }
  accumulator.round(y, k * d);
}

// q rows [row_begin, row_end) of (b*k, L), leaf by leaf.
template <typename T, typename A>
void leaf_dot_gather(const T* gp, const T* xp, const int64_t* ip, A* qp, int64_t row_begin, int64_t row_end,
                     int64_t n, int64_t k, int64_t L, int64_t d) {
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t batch = row / k;
    const T* __restrict__ g = gp + row * d;
    for (int64_t l = 0; l < L; ++l) {
      prefetch_leaf(xp, ip, row * L + l + kPrefetchLeaves, row_end * L, k * L, n, d);
      const int64_t src = ip[row * L + l];
      qp[row * L + l] = src < 0 ? A(0) : dot<T, A>(g, xp + (batch * n + src) * d, d);
    }
  }
}

// One example's q (k, L) from its x (n, d) read in input order; leaf_of from invert_leaves.
template <typename T, typename A>
void leaf_dot_stream(const T* g, const T* x, const int64_t* leaf_of, A* q, int64_t n, int64_t k, int64_t L,
                     int64_t d) {
  std::fill(q, q + k * L, A(0));
  for (int64_t p = 0; p < n; ++p) {
    const int64_t leaf = leaf_of[p];
    if (leaf >= 0) q[leaf] = dot<T, A>(g + leaf / L * d, x + p * d, d);
  }
}

// Runs a kernel over the batch: per example, streaming its x in input order when its leaves
// invert (each input in at most one leaf) and there are enough examples for the threads;
// otherwise, or for an example whose leaves repeat an input, gathering rows [row_begin, row_end).
template <typename Gather, typename Stream>
void for_each_example(int64_t b, int64_t n, int64_t k, int64_t L, int64_t d, const int64_t* index,
                      const Gather& gather, const Stream& stream) {
  if (!stream_examples(b)) {
    at::parallel_for(0, b * k, grain_rows(d * L), [&](int64_t begin, int64_t end) { gather(begin, end); });
    return;
  }
  at::parallel_for(0, b, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> leaf_of(n);
    for (int64_t batch = begin; batch < end; ++batch) {
      if (invert_leaves(index + batch * k * L, k * L, n, leaf_of.data()))
        stream(batch, leaf_of.data());
      else
        gather(batch * k, (batch + 1) * k);
    }
  });
}

at::Tensor combine_cpu(const at::Tensor& x_in, const at::Tensor& index_in, const at::Tensor& coef_in) {
  const auto x = x_in.contiguous();          // (b, n, d)
  const auto index = index_in.contiguous();  // (b, k, L)
  const auto coef = coef_in.contiguous();    // (b, k, L)
  TORCH_CHECK(x.dim() == 3 && index.dim() == 3 && index.size(0) == x.size(0),
              "x must have shape (b, n, d) and index (b, k, L), got ", x.sizes(), " and ", index.sizes());
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2), k = index.size(1), L = index.size(2);
  PYR_CHECK_SHAPE(coef, b, k, L);
  PYR_CHECK_DTYPE(index, at::kLong);
  PYR_CHECK_DTYPE(coef, at::toOpMathType(x.scalar_type()));
  check_index_range(index, -1, n, "sh_combine: index");
  auto y = at::empty({b, k, d}, x.options());  // (b, k, d)
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "sh_combine_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const int64_t* ip = index.data_ptr<int64_t>();
    const acc_t* cp = coef.data_ptr<acc_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    for_each_example(
        b, n, k, L, d, ip,
        [&](int64_t row_begin, int64_t row_end) { combine_gather(xp, ip, cp, yp, row_begin, row_end, n, k, L, d); },
        [&](int64_t batch, const int64_t* leaf_of) {
          combine_stream(xp + batch * n * d, leaf_of, cp + batch * k * L, yp + batch * k * d, n, k, L, d);
        });
  });
  return y;
}

at::Tensor leaf_dot_cpu(const at::Tensor& grad_y_in, const at::Tensor& x_in, const at::Tensor& index_in) {
  const auto gy = grad_y_in.contiguous();    // (b, k, d)
  const auto x = x_in.contiguous();          // (b, n, d)
  const auto index = index_in.contiguous();  // (b, k, L)
  TORCH_CHECK(x.dim() == 3 && index.dim() == 3 && index.size(0) == x.size(0),
              "x must have shape (b, n, d) and index (b, k, L), got ", x.sizes(), " and ", index.sizes());
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2), k = index.size(1), L = index.size(2);
  PYR_CHECK_SHAPE(gy, b, k, d);
  PYR_CHECK_DTYPE(index, at::kLong);
  PYR_CHECK_DTYPE(gy, x.scalar_type());
  check_index_range(index, -1, n, "sh_leaf_dot: index");
  auto q = at::empty({b, k, L}, x.options().dtype(at::toOpMathType(x.scalar_type())));  // (b, k, L)
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "sh_leaf_dot_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* gp = gy.data_ptr<scalar_t>();
    const int64_t* ip = index.data_ptr<int64_t>();
    acc_t* qp = q.data_ptr<acc_t>();
    for_each_example(
        b, n, k, L, d, ip,
        [&](int64_t row_begin, int64_t row_end) { leaf_dot_gather(gp, xp, ip, qp, row_begin, row_end, n, k, L, d); },
        [&](int64_t batch, const int64_t* leaf_of) {
          leaf_dot_stream(gp + batch * k * d, xp + batch * n * d, leaf_of, qp + batch * k * L, n, k, L, d);
        });
  });
  return q;
}

// out[0..d) = c * g[0..d). expand writes a gradient the size of x that nothing reads soon: on x86,
// streaming (non-temporal) stores skip the read-for-ownership of every destination line and keep
// the cache for g. Call stream_fence() after the last row.
template <typename T, typename A>
inline void scale_row_plain(T* __restrict__ out, const T* __restrict__ g, A c, int64_t d) {
  for (int64_t j = 0; j < d; ++j) out[j] = static_cast<T>(c * static_cast<A>(g[j]));
}
template <typename T, typename A>
inline void scale_row(T* __restrict__ out, const T* __restrict__ g, A c, int64_t d) {
  scale_row_plain(out, g, c, d);
}
#if defined(__SSE2__)
template <>
inline void scale_row<float, float>(float* __restrict__ out, const float* __restrict__ g, float c, int64_t d) {
  if (reinterpret_cast<uintptr_t>(out) % 16 != 0 || d % 4 != 0) return scale_row_plain(out, g, c, d);
  const __m128 cv = _mm_set1_ps(c);
  for (int64_t j = 0; j < d; j += 4) _mm_stream_ps(out + j, _mm_mul_ps(cv, _mm_loadu_ps(g + j)));
}
template <>
inline void scale_row<double, double>(double* __restrict__ out, const double* __restrict__ g, double c, int64_t d) {
  if (reinterpret_cast<uintptr_t>(out) % 16 != 0 || d % 2 != 0) return scale_row_plain(out, g, c, d);
  const __m128d cv = _mm_set1_pd(c);
  for (int64_t j = 0; j < d; j += 2) _mm_stream_pd(out + j, _mm_mul_pd(cv, _mm_loadu_pd(g + j)));
}
inline void stream_fence() { _mm_sfence(); }
#else
inline void stream_fence() {}
#endif

at::Tensor expand_cpu(const at::Tensor& grad_y_in, const at::Tensor& row_in, const at::Tensor& coef_in) {
  const auto gy = grad_y_in.contiguous();  // (b, k, d)
  const auto row = row_in.contiguous();    // (b, n)
  const auto coef = coef_in.contiguous();  // (b, n)
  TORCH_CHECK(gy.dim() == 3 && row.dim() == 2 && row.size(0) == gy.size(0),
              "grad_y must have shape (b, k, d) and row (b, n), got ", gy.sizes(), " and ", row.sizes());
  const int64_t b = gy.size(0), k = gy.size(1), d = gy.size(2), n = row.size(1);
  PYR_CHECK_SHAPE(coef, b, n);
  PYR_CHECK_DTYPE(row, at::kLong);
  PYR_CHECK_DTYPE(coef, at::toOpMathType(gy.scalar_type()));
  check_index_range(row, 0, k, "sh_expand: row");
  auto gx = at::empty({b, n, d}, gy.options());  // (b, n, d)
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, gy.scalar_type(), "sh_expand_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = gy.data_ptr<scalar_t>();
    const int64_t* rp = row.data_ptr<int64_t>();
    const acc_t* cp = coef.data_ptr<acc_t>();
    scalar_t* op = gx.data_ptr<scalar_t>();
    at::parallel_for(0, b * n, grain_rows(d), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t batch = p / n;
        scale_row<scalar_t, acc_t>(op + p * d, gp + (batch * k + rp[p]) * d, cp[p], d);
      }
      stream_fence();
    });
  });
  return gx;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> pair_blend_cpu(const at::Tensor& s_in,
                                                              const at::Tensor& valid_in,
                                                              double log_base) {
  const auto s = s_in.contiguous();          // (N, 2)
  const auto valid = valid_in.contiguous();  // (N, 2)
  const int64_t N = s.size(0);
  PYR_CHECK_SHAPE(s, N, 2);
  PYR_CHECK_SHAPE(valid, N, 2);
  PYR_CHECK_DTYPE(valid, at::kBool);
  auto w = at::empty({N}, s.options());
  auto out = at::empty({N}, s.options());
  auto out_valid = at::empty({N}, valid.options());
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "sh_pair_blend_cpu", [&] {
    const scalar_t* sp = s.data_ptr<scalar_t>();
    const bool* vp = valid.data_ptr<bool>();
    scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    bool* ovp = out_valid.data_ptr<bool>();
    const auto lb = static_cast<scalar_t>(log_base);
    at::parallel_for(0, N, kGrainElements, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        kernels::pair_blend(sp[2 * i], sp[2 * i + 1], vp[2 * i], vp[2 * i + 1], lb, wp + i, op + i, ovp + i);
    });
  });
  return {w, out, out_valid};
}

at::Tensor node_backward_cpu(const at::Tensor& rho_in, const at::Tensor& sigma_in, const at::Tensor& w_in,
                             const at::Tensor& s_child_in, const at::Tensor& q_child_in, double log_base) {
  const auto rho = rho_in.contiguous(), sigma = sigma_in.contiguous(), w = w_in.contiguous();  // (N)
  const auto s_child = s_child_in.contiguous(), q_child = q_child_in.contiguous();            // (N, 2)
  const int64_t N = rho.numel();
  PYR_CHECK_SHAPE(sigma, N);
  PYR_CHECK_SHAPE(w, N);
  PYR_CHECK_SHAPE(s_child, N, 2);
  PYR_CHECK_SHAPE(q_child, N, 2);
  auto out = at::empty({N, 2}, rho.options());  // (N, 2)
  AT_DISPATCH_FLOATING_TYPES(rho.scalar_type(), "sh_node_backward_cpu", [&] {
    const scalar_t *rp = rho.data_ptr<scalar_t>(), *gp = sigma.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    const scalar_t *sp = s_child.data_ptr<scalar_t>(), *qp = q_child.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const auto lb = static_cast<scalar_t>(log_base);
    at::parallel_for(0, N, kGrainElements, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        kernels::node_backward(rp[i], gp[i], wp[i], sp[2 * i], sp[2 * i + 1], qp[2 * i], qp[2 * i + 1], lb,
                               op + 2 * i, op + 2 * i + 1);
    });
  });
  return out;
}

}  // namespace
}  // namespace detail
}  // namespace pyramidion

TORCH_LIBRARY_IMPL(pyramidion, CPU, m) {
  using namespace pyramidion::detail;
  m.impl("sh_combine", &combine_cpu);
  m.impl("sh_leaf_dot", &leaf_dot_cpu);
  m.impl("sh_expand", &expand_cpu);
  m.impl("sh_pair_blend", &pair_blend_cpu);
  m.impl("sh_node_backward", &node_backward_cpu);
}
