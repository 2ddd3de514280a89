// Private: argument checks shared by the CPU and CUDA kernel bindings. The public front
// (src/ops/topk.cpp) validates user input; these catch internal misuse with a readable message.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>

#define PYR_CHECK_SHAPE(x, ...)                                                           \
  TORCH_CHECK((x).sizes() == at::IntArrayRef({__VA_ARGS__}), #x " must have shape (" #__VA_ARGS__ \
              "), got ",                                                                  \
              (x).sizes())
#define PYR_CHECK_DTYPE(x, dtype) \
  TORCH_CHECK((x).scalar_type() == (dtype), #x " must be ", (dtype), ", got ", (x).scalar_type())
#define PYR_CHECK_SAME_DEVICE(x, y) \
  TORCH_CHECK((x).device() == (y).device(), #x " is on ", (x).device(), " but " #y " is on ", (y).device())

namespace pyramidion {
namespace detail {

/// CPU kernels: every value of the contiguous int64 tensor `index` (named `what`) lies in
/// [lo, hi); otherwise an error naming the first offending value and where it is. (A bad index
/// from a caller of the dispatcher operators would otherwise read or write out of bounds. The CUDA
/// kernels instead skip such an index and make NaN: see cuda/topk_kernels.h.)
inline void check_index_range(const at::Tensor& index, int64_t lo, int64_t hi, const char* what) {
  const int64_t* p = index.data_ptr<int64_t>();
  const int64_t N = index.numel();
  for (int64_t i = 0; i < N; ++i)
    TORCH_CHECK(p[i] >= lo && p[i] < hi, what, " must lie in [", lo, ", ", hi, "), got ", p[i], " at flat position ",
                i);
}

}  // namespace detail
}  // namespace pyramidion
