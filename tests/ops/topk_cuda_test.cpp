// Tests of the CUDA implementation (src/ops/cuda/). Registration is checked on every machine built with
// CUDA; the numerical comparisons with the CPU kernels need a GPU and skip at run time without
// one (they are never compiled out).
#include <pyramidion/topk.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

namespace {

const char* const kOperators[] = {"pyramidion::sh_tournament", "pyramidion::sh_tree_backward", "pyramidion::sh_rank", "pyramidion::sh_combine", "pyramidion::sh_leaf_dot", "pyramidion::sh_expand",
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

class TopKCudaMatchesCpu : public ::testing::TestWithParam<at::ScalarType> {};

TEST_P(TopKCudaMatchesCpu, ForwardAndBackward) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine";
  const auto dtype = GetParam();
  // float32 and 16-bit inputs run the same float32 arithmetic; a 16-bit result can differ by one
  // ulp of its type where the devices' float32 results round differently.
  const double tol = dtype == at::kDouble ? 1e-10 : dtype == at::kFloat ? 1e-4 : dtype == at::kHalf ? 4e-3 : 3e-2;
  at::manual_seed(7);
  for (const auto& [b, n, k, d] : std::vector<std::array<int64_t, 4>>{{3, 64, 8, 33}, {2, 300, 37, 130}, {1, 5, 5, 1}}) {
    const auto x = at::randn({b, n, d}, at::TensorOptions().dtype(dtype));
    const auto s = at::rand({b, n}, at::TensorOptions().dtype(dtype));
    const auto lengths = at::randint(1, n + 1, {b});
    const auto mask = at::arange(n).unsqueeze(0) < lengths.unsqueeze(1);  // (b, n)
    const auto gy = at::randn({b, k, d}, x.options());
    const auto gs = at::randn({b, k}, x.options());
    std::vector<at::Tensor> grads[2];
    pyramidion::TopKResult out[2];
    int i = 0;
    for (const auto& device : {at::Device(at::kCPU), at::Device(at::kCUDA)}) {
      const auto xd = x.to(device).requires_grad_(), sd = s.to(device).requires_grad_();
      out[i] = pyramidion::successive_halving_topk(
          xd, sd, k, pyramidion::TopKOptions().mask(mask.to(device)).keep_order(b == 2));
      torch::autograd::backward({out[i].values, out[i].scores}, {gy.to(device), gs.to(device)});
      grads[i] = {xd.grad().cpu(), sd.grad().cpu()};
      ++i;
    }
    EXPECT_EQ(out[1].values.scalar_type(), dtype);
    EXPECT_EQ(grads[1][0].scalar_type(), dtype);
    EXPECT_TRUE(at::allclose(out[0].values, out[1].values.cpu(), tol, tol));
    EXPECT_TRUE(at::allclose(out[0].scores, out[1].scores.cpu(), tol, tol));
    EXPECT_TRUE(out[0].indices.equal(out[1].indices.cpu()));
    EXPECT_TRUE(out[0].mask.equal(out[1].mask.cpu()));
    EXPECT_TRUE(at::allclose(grads[0][0], grads[1][0], tol, tol));
    EXPECT_TRUE(at::allclose(grads[0][1], grads[1][1], tol, tol));
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, TopKCudaMatchesCpu,
                         ::testing::Values(at::kFloat, at::kDouble, at::kBFloat16, at::kHalf));

}  // namespace
