// CPU kernel of sh_rank (see topk_ops.h): per row, a stable descending argsort by radix sort
// (radix_rank.h), parallel over rows. On 16 x 8192 fp32 keys it is several times faster than
// LibTorch's stable comparison sort.
//
// Legend: b rows (examples), m keys per row.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "ops/kernel_checks.h"
#include "ops/radix_rank.h"

namespace pyramidion {
namespace detail {
namespace {

at::Tensor rank_cpu(const at::Tensor& key_in) {
  const auto key = key_in.contiguous();  // (b, m)
  TORCH_CHECK(key.dim() == 2, "key must have shape (b, m), got ", key.sizes());
  const int64_t b = key.size(0), m = key.size(1);
  auto perm = at::empty({b, m}, key.options().dtype(at::kLong));  // (b, m)
  AT_DISPATCH_FLOATING_TYPES(key.scalar_type(), "sh_rank_cpu", [&] {
    const scalar_t* kp = key.data_ptr<scalar_t>();
    int64_t* pp = perm.data_ptr<int64_t>();
    at::parallel_for(0, b, 1, [&](int64_t begin, int64_t end) {
      RankScratch<scalar_t> scratch;
      for (int64_t row = begin; row < end; ++row) radix_rank_row(kp + row * m, m, pp + row * m, scratch);
    });
  });
  return perm;
}

}  // namespace
}  // namespace detail
}  // namespace pyramidion

TORCH_LIBRARY_IMPL(pyramidion, CPU, m) { m.impl("sh_rank", &pyramidion::detail::rank_cpu); }
