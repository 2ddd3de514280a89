// Private precompiled header: the LibTorch headers every library source uses. Never included by
// public headers (they include only what they use).
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/library.h>
