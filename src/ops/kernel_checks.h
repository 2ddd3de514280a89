// Private: argument checks shared by the CPU and CUDA kernel bindings. The public front
// (src/ops/topk.cpp) validates user input; these catch internal misuse with a readable message.
#pragma once

#include <c10/util/Exception.h>

#define PYR_CHECK_SHAPE(x, ...)                                                           \
  TORCH_CHECK((x).sizes() == at::IntArrayRef({__VA_ARGS__}), #x " must have shape (" #__VA_ARGS__ \
              "), got ",                                                                  \
              (x).sizes())
#define PYR_CHECK_DTYPE(x, dtype) \
  TORCH_CHECK((x).scalar_type() == (dtype), #x " must be ", (dtype), ", got ", (x).scalar_type())
#define PYR_CHECK_SAME_DEVICE(x, y) \
  TORCH_CHECK((x).device() == (y).device(), #x " is on ", (x).device(), " but " #y " is on ", (y).device())
