// Tests of the CUDA implementation (cuda/ and src/ops/topk_cuda.cpp). Registration is checked on every machine built
// with CUDA; everything else needs a GPU and skips at run time without one (never compiled out).
//
// The contract (include/pyramidion/topk.h): the tournament is bit-identical to the CPU's (indices,
// mask, pooled scores, every tree weight and coefficient), values and gradients agree within the
// rounding of another summation order. On the CPU the same programs are checked bit for bit by
// tests/ops/tournament_program_test.cpp.
#include <pyramidion/topk.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#ifdef PYRAMIDION_HAS_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "ops/topk_ops.h"
#include "ops/tournament.h"

namespace {

const char* const kOperators[] = {"pyramidion::sh_tournament", "pyramidion::sh_tree_backward", "pyramidion::sh_rank",
                                  "pyramidion::sh_combine",    "pyramidion::sh_leaf_dot",      "pyramidion::sh_expand",
                                  "pyramidion::sh_pair_blend", "pyramidion::sh_node_backward"};

TEST(TopKCuda, EveryOperatorHasACpuKernelAndACudaKernelWhenBuiltWithCuda) {
  for (const char* name : kOperators) {
    const auto handle = c10::Dispatcher::singleton().findSchema({name, ""});
    ASSERT_TRUE(handle.has_value()) << name << " is not registered";
    EXPECT_TRUE(handle->hasKernelForDispatchKey(c10::DispatchKey::CPU)) << name;
#ifdef PYRAMIDION_HAS_CUDA
    EXPECT_TRUE(handle->hasKernelForDispatchKey(c10::DispatchKey::CUDA)) << name << " has no CUDA kernel";
#else
    EXPECT_FALSE(handle->hasKernelForDispatchKey(c10::DispatchKey::CUDA)) << name;
#endif
  }
}

#define PYR_NEED_CUDA() \
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine"

// Values and gradients: float32 and the 16-bit types run the same float32 arithmetic; a 16-bit
// result can differ by one ulp of its type where another summation order rounds differently.
double tolerance(at::ScalarType dtype) {
  return dtype == at::kDouble ? 1e-10 : dtype == at::kFloat ? 1e-4 : dtype == at::kHalf ? 4e-3 : 3e-2;
}

struct Case {
  std::string name;
  at::Tensor x, scores;  // on the CPU; maybe non-contiguous
  int64_t k = 1;
  pyramidion::TopKOptions options;  // mask on the CPU
  bool grad_values = true, grad_scores = true;
};

// Runs a case on the CPU and on `device` and compares as the contract says.
void expect_cuda_equals_cpu(const Case& c, const at::Device& device = at::Device(at::kCUDA, 0)) {
  SCOPED_TRACE(c.name);
  const auto dtype = c.x.scalar_type();
  const double tol = tolerance(dtype);
  pyramidion::TopKResult out[2];
  at::Tensor gx[2], gs[2];
  const auto gy = at::randn({c.x.size(0), c.k, c.x.size(2)}, c.x.options().layout(at::kStrided));
  const auto gsc = at::randn({c.x.size(0), c.k}, c.x.options());
  int i = 0;
  for (const auto& dev : {at::Device(at::kCPU), device}) {
    // .to() keeps the strides of a non-contiguous input (a permuted copy on the device).
    auto x = c.x.to(dev).detach().requires_grad_(true);
    auto s = c.scores.to(dev).detach().requires_grad_(true);
    auto options = c.options;
    if (options.mask().defined()) options.mask(options.mask().to(dev));
    out[i] = pyramidion::successive_halving_topk(x, s, c.k, options);
    std::vector<at::Tensor> outputs, grads;
    if (c.grad_values) outputs.push_back(out[i].values), grads.push_back(gy.to(dev));
    if (c.grad_scores && !options.hard()) outputs.push_back(out[i].scores), grads.push_back(gsc.to(dev));
    if (!outputs.empty() && out[i].values.numel() > 0) torch::autograd::backward(outputs, grads);
    gx[i] = x.grad().defined() ? x.grad().cpu() : at::Tensor();
    gs[i] = s.grad().defined() ? s.grad().cpu() : at::Tensor();
    ++i;
  }
  ASSERT_EQ(out[1].values.device(), device);
  EXPECT_EQ(out[1].values.scalar_type(), dtype);
  EXPECT_TRUE(out[0].indices.equal(out[1].indices.cpu()));
  EXPECT_TRUE(out[0].mask.equal(out[1].mask.cpu()));
  EXPECT_TRUE(out[0].scores.equal(out[1].scores.cpu())) << "pooled scores must be bit-identical";
  EXPECT_TRUE(at::allclose(out[0].values, out[1].values.cpu(), tol, tol));
  for (int g = 0; g < 2; ++g) {
    const at::Tensor* cpu = g == 0 ? &gx[0] : &gs[0];
    const at::Tensor* gpu = g == 0 ? &gx[1] : &gs[1];
    ASSERT_EQ(cpu->defined(), gpu->defined()) << (g == 0 ? "x" : "scores") << " gradient";
    if (cpu->defined()) {
      EXPECT_EQ(gpu->scalar_type(), dtype);
      EXPECT_TRUE(at::allclose(*cpu, *gpu, tol, tol)) << (g == 0 ? "x" : "scores") << " gradient";
    }
  }
}

class TopKCudaMatchesCpu : public ::testing::TestWithParam<at::ScalarType> {};

TEST_P(TopKCudaMatchesCpu, ForwardAndBackward) {
  PYR_NEED_CUDA();
  const auto dtype = GetParam();
  const auto opts = at::TensorOptions().dtype(dtype);
  at::manual_seed(7);
  std::vector<Case> cases;
  for (const auto& [b, n, k, d] : std::vector<std::array<int64_t, 4>>{{3, 64, 8, 33}, {2, 300, 37, 130}, {1, 5, 5, 1},
                                                                      {4, 1000, 1, 64}, {2, 129, 128, 8}}) {
    const auto tag = " b=" + std::to_string(b) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
    const auto x = at::randn({b, n, d}, opts);
    const auto s = at::rand({b, n}, opts);
    const auto lengths = at::arange(n).unsqueeze(0) < at::randint(1, n + 1, {b}).unsqueeze(1);
    cases.push_back({"lengths" + tag, x, s, k, pyramidion::TopKOptions().mask(lengths).keep_order(b == 2)});
    cases.push_back({"no mask" + tag, x, s, k, {}});
    cases.push_back({"scattered mask" + tag, x, s, k, pyramidion::TopKOptions().mask(at::rand({b, n}) < 0.6)});
    auto with_empty = at::rand({b, n}) < 0.7;
    with_empty[0].fill_(false);  // an example of padding only
    cases.push_back({"all-padding example" + tag, x, s, k, pyramidion::TopKOptions().mask(with_empty).keep_order(true)});
    cases.push_back({"ties" + tag, x, (at::floor(at::rand({b, n}) * 4) / 4).to(dtype), k, {}});
    if (dtype != at::kHalf)  // 20^s overflows float32 (and bfloat16's range holds s up to ~60)
      cases.push_back({"overflowing powers" + tag, x, (at::rand({b, n}) * 40 + 20).to(dtype), k, {}});
    cases.push_back({"non-contiguous" + tag, at::randn({b, d, n}, opts).transpose(1, 2),
                     at::rand({n, b}, opts).t(), k, pyramidion::TopKOptions().mask(lengths)});
    cases.push_back({"values only" + tag, x, s, k, {}, true, false});
    cases.push_back({"scores only" + tag, x, s, k, {}, false, true});
    cases.push_back({"hard" + tag, x, s, k, pyramidion::TopKOptions().hard(true).mask(lengths), true, false});
  }
  cases.push_back({"b = 0", at::randn({0, 10, 4}, opts), at::rand({0, 10}, opts), 3, {}});
  cases.push_back({"d = 0", at::randn({2, 10, 0}, opts), at::rand({2, 10}, opts), 3, {}});
  for (const auto& c : cases) expect_cuda_equals_cpu(c);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, TopKCudaMatchesCpu,
                         ::testing::Values(at::kFloat, at::kDouble, at::kBFloat16, at::kHalf),
                         [](const ::testing::TestParamInfo<at::ScalarType>& info) {
                           return std::string(c10::toString(info.param));
                         });

// Small shapes of every path, for compute-sanitizer (scripts/gpu_check.sh: memcheck, racecheck,
// synccheck, each ~100x slower than the plain run): every dtype, masks, keep_order, all-padding
// examples, hard selection, one block of 256 threads (n = 300), and one tournament whose sort is in
// shared memory raised above 48 KiB (n = 5000: 64 KiB of pairs, 1024 threads).
TEST(TopKCuda, SmallShapesForTheSanitizers) {
  PYR_NEED_CUDA();
  at::manual_seed(9);
  for (const auto dtype : {at::kFloat, at::kDouble, at::kBFloat16, at::kHalf}) {
    const auto opts = at::TensorOptions().dtype(dtype);
    for (const auto& [b, n, k, d] : std::vector<std::array<int64_t, 4>>{{3, 40, 6, 33}, {2, 300, 37, 16}}) {
      const auto x = at::randn({b, n, d}, opts);
      const auto s = at::rand({b, n}, opts);
      auto mask = at::rand({b, n}) < 0.7;
      mask[0].fill_(false);
      expect_cuda_equals_cpu({"scattered " + std::to_string(n), x, s, k, pyramidion::TopKOptions().mask(mask).keep_order(true)});
      expect_cuda_equals_cpu({"hard " + std::to_string(n), x, s, k, pyramidion::TopKOptions().hard(true), true, false});
    }
  }
  const auto x = at::randn({1, 5000, 8}), s = at::rand({1, 5000});
  expect_cuda_equals_cpu({"n = 5000, sort in raised shared memory", x, s, 300, {}});
}

// The paper's size: b = 16, n = 8192 -> k = 512, d = 512 (4 rounds; the sort in shared memory).
TEST(TopKCuda, PaperSizeMatchesTheCpu) {
  PYR_NEED_CUDA();
  at::manual_seed(8);
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    const auto opts = at::TensorOptions().dtype(dtype);
    expect_cuda_equals_cpu({std::string("paper size ") + c10::toString(dtype), at::randn({16, 8192, 512}, opts),
                            at::rand({16, 8192}, opts), 512, pyramidion::TopKOptions().keep_order(true)});
  }
  // n beyond what the shared memory of one block holds: the sort runs in global memory.
  expect_cuda_equals_cpu({"n = 65536", at::randn({2, 65536, 4}), at::rand({2, 65536}), 100, {}});
}

// The tournament and its backward alone, bit for bit: every tensor of the tree, and the score
// gradient from the same leaf dots.
TEST(TopKCuda, TournamentAndTreeBackwardAreBitIdenticalToTheCpu) {
  PYR_NEED_CUDA();
  at::manual_seed(9);
  for (const auto dtype : {at::kFloat, at::kDouble}) {
    for (const auto& [n, k] : std::vector<std::array<int64_t, 2>>{{8192, 512}, {1000, 3}, {37, 36}, {64, 1}}) {
      const auto mask = at::rand({3, n}) < 0.9;
      const auto scores = at::rand({3, n}, at::kDouble).to(dtype).masked_fill(mask.logical_not(), 0);
      for (bool keep_order : {false, true}) {
        SCOPED_TRACE(std::string(c10::toString(dtype)) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
        const auto cpu = pyramidion::detail::sh_tournament(scores, mask, k, std::log(20.0), keep_order);
        const auto gpu = pyramidion::detail::sh_tournament(scores.cuda(), mask.cuda(), k, std::log(20.0), keep_order);
        ASSERT_EQ(cpu.size(), gpu.size());
        for (size_t i = 0; i < cpu.size(); ++i) EXPECT_TRUE(cpu[i].equal(gpu[i].cpu())) << "tensor " << i;
        const auto t = pyramidion::detail::unpack_tournament(cpu);
        const auto dots = at::randn(t.leaf_index.sizes(), scores.options()) * (t.leaf_index >= 0);
        const auto grad_scores = at::randn({3, k}, scores.options());
        std::vector<at::Tensor> gpu_tree;
        for (const auto& x : cpu) gpu_tree.push_back(x.cuda());
        EXPECT_TRUE(pyramidion::detail::sh_tree_backward(cpu, dots, grad_scores, std::log(20.0))
                        .equal(pyramidion::detail::sh_tree_backward(gpu_tree, dots.cuda(), grad_scores.cuda(),
                                                                    std::log(20.0))
                                   .cpu()));
      }
    }
  }
}

// No host sync on CUDA: a non-finite real score is not an exception there but NaN outputs and
// gradients for its example, the others as on the CPU.
TEST(TopKCuda, ANonFiniteRealScoreMakesItsExampleNaN) {
  PYR_NEED_CUDA();
  auto x = at::randn({3, 50, 8}).cuda().requires_grad_(true);
  auto s = at::rand({3, 50});
  s[1][4] = std::nan("");
  auto sc = s.cuda().requires_grad_(true);
  const auto out = pyramidion::successive_halving_topk(x, sc, 5);
  EXPECT_TRUE(out.values[1].isnan().all().item<bool>());
  EXPECT_TRUE(out.scores[1].isnan().all().item<bool>());
  const auto clean = pyramidion::successive_halving_topk(x.detach().cpu(), s.masked_fill(s.isnan(), 0), 5);
  EXPECT_TRUE(at::allclose(out.values[0].cpu(), clean.values[0], 1e-4, 1e-4));
  EXPECT_TRUE(out.indices[2].cpu().equal(clean.indices[2]));
  out.values.sum().backward();
  EXPECT_FALSE(x.grad()[0].isnan().any().item<bool>());
}

// A bad index handed to the kernel operators directly is not read: NaN results, and the CUDA
// context survives (the next operation works).
TEST(TopKCuda, KernelOperatorsSurviveIndicesOutOfRange) {
  PYR_NEED_CUDA();
  const auto x = at::randn({2, 5, 3}).cuda();
  auto index = at::zeros({2, 2, 2}, at::kLong);
  index[1][0][1] = 99;
  const auto y = pyramidion::detail::sh_combine(x, index.cuda(), at::ones({2, 2, 2}).cuda());
  EXPECT_TRUE(y[1][0].isnan().all().item<bool>());
  EXPECT_FALSE(y[0].isnan().any().item<bool>());
  auto row = at::zeros({2, 5}, at::kLong);
  row[0][1] = -7;
  const auto gx = pyramidion::detail::sh_expand(at::randn({2, 2, 3}).cuda(), row.cuda(), at::ones({2, 5}).cuda());
  EXPECT_TRUE(gx[0][1].isnan().all().item<bool>());
  EXPECT_FALSE(gx[1].isnan().any().item<bool>());
  EXPECT_EQ((at::ones({4}).cuda() * 2).sum().item<float>(), 8.0f);  // the context is alive
}

#ifdef PYRAMIDION_HAS_CUDA
// The kernels run on the current stream (not the default one) and on the tensors' device.
TEST(TopKCuda, RunsOnTheCurrentStreamAndOnAnyDevice) {
  PYR_NEED_CUDA();
  at::manual_seed(10);
  const auto x = at::randn({4, 300, 16}), s = at::rand({4, 300});
  const auto reference = pyramidion::successive_halving_topk(x, s, 20);
  {
    auto stream = c10::cuda::getStreamFromPool();
    const c10::cuda::CUDAStreamGuard guard(stream);
    const auto out = pyramidion::successive_halving_topk(x.cuda(), s.cuda(), 20);
    stream.synchronize();
    EXPECT_TRUE(out.indices.cpu().equal(reference.indices));
    EXPECT_TRUE(at::allclose(out.values.cpu(), reference.values, 1e-5, 1e-5));
  }
  if (at::getNumGPUs() < 2) GTEST_SKIP() << "one GPU: cuda:1 not tested";
  Case c{"cuda:1", x, s, 20, {}};
  expect_cuda_equals_cpu(c, at::Device(at::kCUDA, 1));
}
#endif

}  // namespace
