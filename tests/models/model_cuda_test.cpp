// Tests of the models on CUDA (they skip without a GPU, never compiled out): the tiny presets'
// forward pass (teacher forcing) and greedy and beam-4 generation on CUDA against the CPU, from the
// same weights. The pooling's tournament is bit-identical on both devices (tests/ops/topk_cuda_test.cpp);
// the matrix products are not (cuBLAS and the CPU sum in other orders), so logits are compared
// within a tolerance and generations token for token.
#include <pyramidion/generate.h>
#include <pyramidion/model.h>

#include "support/model_fixtures.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <string>

namespace {

using pyramidion_test::lengths_mask;
using pyramidion_test::make_model;
using pyramidion_test::preset;
using pyramidion_test::random_ids;

TEST(ModelCuda, ForwardAndGenerationMatchTheCpu) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  for (const std::string name : {"tiny-vanilla", "tiny-blockwise", "tiny-pooler", "tiny-deep-pyramidion"}) {
    SCOPED_TRACE(name);
    auto cpu = make_model(preset(name), 3);
    auto gpu = make_model(preset(name), 3);
    gpu->to(at::Device(at::kCUDA, 0));
    torch::NoGradGuard no_grad;
    at::manual_seed(4);
    const auto mask = lengths_mask({60, 37, 5}, 60);
    const auto src = random_ids(mask);
    const auto tgt = at::randint(3, 64, {3, 9}, at::kLong);
    const auto logits_cpu = cpu->forward(src, mask, tgt);
    const auto logits_gpu = gpu->forward(src.cuda(), mask.cuda(), tgt.cuda()).cpu();
    EXPECT_TRUE(at::allclose(logits_cpu, logits_gpu, 1e-4, 1e-4))
        << "max difference " << (logits_cpu - logits_gpu).abs().max().item<double>();
    for (const int64_t beam : {1, 4}) {
      const auto options = pyramidion::GenerateOptions().beam_size(beam).max_length(12);
      const auto g_cpu = pyramidion::generate(cpu, src, mask, options);
      const auto g_gpu = pyramidion::generate(gpu, src.cuda(), mask.cuda(), options);
      EXPECT_TRUE(g_cpu.tokens.equal(g_gpu.tokens.cpu())) << "beam " << beam;
    }
  }
}

}  // namespace
