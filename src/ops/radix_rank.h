// Private: a stable descending argsort of one row of float keys by LSD radix sort over an
// order-preserving integer image of the keys. Radix passes are stable, which gives the tie order
// (position order) for free, and cost O(m) each. Used by sh_rank (rank_cpu.cpp) and the fused CPU
// tournament (tournament_cpu.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "ops/topk_math.h"

namespace pyramidion {
namespace detail {

template <typename T>
using UnsignedOf = kernels::UnsignedOf<T>;
using kernels::descending_image;  // the order-preserving image (ops/topk_math.h), shared with the GPU sort

/// Reusable buffers of radix_rank_row (one per thread).
template <typename T>
struct RankScratch {
  std::vector<UnsignedOf<T>> keys, keys_tmp;
  std::vector<int64_t> idx_tmp;
};

/// out[0..m) = positions of key[0..m) ordered by key descending, ties in position order.
template <typename T>
void radix_rank_row(const T* key, int64_t m, int64_t* out, RankScratch<T>& scratch) {
  using U = UnsignedOf<T>;
  scratch.keys.resize(m);
  scratch.keys_tmp.resize(m);
  scratch.idx_tmp.resize(m);
  for (int64_t i = 0; i < m; ++i) {
    scratch.keys[i] = descending_image(key[i]);
    out[i] = i;
  }
  U* src_k = scratch.keys.data();
  U* dst_k = scratch.keys_tmp.data();
  int64_t* src_i = out;
  int64_t* dst_i = scratch.idx_tmp.data();
  for (unsigned shift = 0; shift < 8 * sizeof(U) && m > 1; shift += 8) {
    std::array<int64_t, 257> count{};
    for (int64_t i = 0; i < m; ++i) ++count[((src_k[i] >> shift) & 0xFF) + 1];
    // A byte that every key shares orders nothing: skip its pass.
    if (count[((src_k[0] >> shift) & 0xFF) + 1] == m) continue;
    for (int bucket = 0; bucket < 256; ++bucket) count[bucket + 1] += count[bucket];
    for (int64_t i = 0; i < m; ++i) {
      const int64_t to = count[(src_k[i] >> shift) & 0xFF]++;
      dst_k[to] = src_k[i];
      dst_i[to] = src_i[i];
    }
    std::swap(src_k, dst_k);
    std::swap(src_i, dst_i);
  }
  if (src_i != out) std::memcpy(out, src_i, sizeof(int64_t) * m);
}

}  // namespace detail
}  // namespace pyramidion
