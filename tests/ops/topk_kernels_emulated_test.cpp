// Tests of cuda/topk_kernels.cu run on the CPU (tests/ops/topk_kernels_emulated.cpp compiles it
// through cuda/emulation/: every CUDA thread an OS thread, __syncthreads() a barrier, shuffles an
// exchange among a warp's 32 threads, shared memory and the H100's launch limits). Every launcher
// against the CPU kernels, through its real launch configuration:
//   - the tournament (float, double) bit for bit, the sort's pairs in shared memory (raised above
//     the standard limit, too) and in global memory, outputs pre-filled with two byte patterns so
//     that an element no thread writes shows;
//   - the tree backward bit for bit; combine, leaf_dot and expand for float, double, bfloat16 and
//     half within another summation order's rounding; pair_blend and node_backward bit for bit;
//   - the grid limits: a grid above 2^31 - 1 blocks is refused, nothing runs.
// The paper's size (n = 8192, 1024 threads, 64 KiB of shared memory) is the *PaperSize test.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/topk_kernels.h"
#include "ops/topk_ops.h"
#include "ops/tournament.h"
#include "support/tournament_checks.h"

namespace {

namespace cuda = pyramidion::cuda;
namespace emulation = pyramidion::emulation;
namespace kernels = pyramidion::kernels;
using pyramidion::detail::Tournament;
using pyramidion_test::make_mask;

void fill_bytes(const at::Tensor& t, unsigned char pattern) { std::memset(t.data_ptr(), pattern, t.nbytes()); }

// The tournament by the emulated kernel: one block per example, outputs pre-filled with `pattern`.
Tournament emulated_tournament(const at::Tensor& scores, const at::Tensor& mask, int64_t k, double log_base,
                               bool keep_order, unsigned char pattern) {
  const int64_t b = scores.size(0), n = scores.size(1);
  Tournament t = pyramidion::detail::empty_tournament(b, n, k, scores.options());
  pyramidion_test::fill_tournament(t, pattern);
  const auto shape = kernels::tournament_shape(n, k);
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "emulated_tournament", [&] {
    const int64_t stride = cuda::tournament_workspace_bytes<scalar_t>(shape);
    EXPECT_GE(stride, 0);
    EXPECT_EQ(stride % 16, 0);
    auto workspace = at::empty({b * stride + 1}, at::kByte);
    fill_bytes(workspace, static_cast<unsigned char>(~pattern));
    EXPECT_EQ(cuda::tournament(scores.data_ptr<scalar_t>(), mask.data_ptr<bool>(), shape,
                               static_cast<scalar_t>(log_base), keep_order, b, workspace.data_ptr<uint8_t>(),
                               pyramidion::detail::program_outputs<scalar_t>(t), nullptr),
              cudaSuccess);
  });
  return t;
}

at::Tensor emulated_scores_grad(const Tournament& t, const at::Tensor& dots, const at::Tensor& grad_scores,
                                double log_base) {
  const int64_t b = dots.size(0), k = dots.size(1), L = dots.size(2), n = t.input_leaf.size(1);
  auto grad = at::empty({b, n}, dots.options());
  fill_bytes(grad, 0xEE);
  AT_DISPATCH_FLOATING_TYPES(dots.scalar_type(), "emulated_scores_grad", [&] {
    cuda::TreeLevels<scalar_t> levels;
    for (int64_t h = 1; h <= t.rounds; ++h) levels.weight[h - 1] = t.weight[h - 1].data_ptr<scalar_t>();
    for (int64_t h = 0; h <= t.rounds; ++h) levels.score[h] = t.score[h].data_ptr<scalar_t>();
    auto scratch = at::empty({b * k * 6 * L}, dots.options());
    auto leaf_sigma = at::empty({b, k * L}, dots.options());
    fill_bytes(scratch, 0x5A);
    EXPECT_EQ(cuda::tree_backward<scalar_t>(levels, t.rounds, dots.data_ptr<scalar_t>(),
                                            grad_scores.data_ptr<scalar_t>(), t.input_leaf.data_ptr<int64_t>(),
                                            static_cast<scalar_t>(log_base), b, n, k, scratch.data_ptr<scalar_t>(),
                                            leaf_sigma.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(), nullptr),
              cudaSuccess);
  });
  return grad;
}

// The tournament and its gradient, emulated against the CPU kernels, with both byte patterns.
void expect_tournament_matches(at::ScalarType dtype, int64_t b, int64_t n, int64_t k, int mask_kind, bool keep_order) {
  SCOPED_TRACE(std::string(c10::toString(dtype)) + " b=" + std::to_string(b) + " n=" + std::to_string(n) +
               " k=" + std::to_string(k) + " mask " + std::to_string(mask_kind) +
               (keep_order ? " keep_order" : ""));
  const auto mask = make_mask(mask_kind, b, n);
  const auto scores = at::where(mask, at::floor(at::rand({b, n}, at::kDouble) * 7) / 7, 0.0).to(dtype);  // ties
  const double log_base = std::log(20.0);
  const Tournament cpu = pyramidion::detail::run_tournament(scores, mask, k, log_base, keep_order);
  for (const unsigned char pattern : {0x00, 0xFF}) {
    const Tournament emulated = emulated_tournament(scores, mask, k, log_base, keep_order, pattern);
    pyramidion_test::expect_identical(emulated, cpu);
  }
  const auto dots = at::randn({b, k, cpu.leaf_index.size(2)}, scores.options());
  const auto grad_scores = at::randn({b, k}, scores.options());
  EXPECT_TRUE(emulated_scores_grad(cpu, dots, grad_scores, log_base)
                  .equal(pyramidion::detail::scores_grad(cpu, dots, grad_scores, log_base)));
}

TEST(TopKKernelsEmulated, TournamentAndTreeBackwardEqualTheCpuKernelsBitForBit) {
  at::manual_seed(31);
  const int64_t launches = emulation::launches();
  for (const auto dtype : {at::kFloat, at::kDouble})
    for (const int64_t n : {1, 2, 5, 33, 100})
      for (const int64_t k : {int64_t{1}, std::max<int64_t>(1, n / 3), std::max<int64_t>(1, n - 1), n})
        for (int mask_kind = 0; mask_kind < 3; ++mask_kind)
          expect_tournament_matches(dtype, 2, n, k, mask_kind, (n + k + mask_kind) % 2 == 0);
  EXPECT_GT(emulation::launches(), launches);  // the launches ran (a refused one would not count)
}

// The sort's pairs in shared memory at the standard limit, above it (raised through the function
// attribute: the path of n > 4096 on a real GPU, here reached at n = 300 with a 1 KiB standard),
// and in global memory when even the opt-in limit is too small.
TEST(TopKKernelsEmulated, TournamentTakesEverySortPlacement) {
  at::manual_seed(32);
  emulation::Limits raised;
  raised.shared_default = 1024;  // P = 512: 4 KiB of pairs for float, 6 KiB for double
  emulation::Limits global;
  global.shared_optin = 1024;
  for (const auto* limits : {&raised, &global}) {
    const emulation::ScopedLimits scoped(*limits);
    for (const auto dtype : {at::kFloat, at::kDouble}) {
      expect_tournament_matches(dtype, 3, 300, 100, 1, true);
      expect_tournament_matches(dtype, 1, 300, 7, 2, false);
    }
  }
}

// The emulation itself refuses what a GPU refuses: more dynamic shared memory than allowed
// without the attribute, and the attribute above the opt-in limit.
TEST(TopKKernelsEmulated, LaunchChecksAreTheGpus) {
  emulation::Limits small;
  small.shared_default = 1024;
  small.shared_optin = 2048;  // P = 512 needs 4 KiB: the sort goes to global memory
  const emulation::ScopedLimits scoped(small);
  const auto shape = kernels::tournament_shape(300, 10);
  EXPECT_EQ(cuda::tournament_workspace_bytes<float>(shape), kernels::tournament_scratch_bytes<float>(shape, true));
  int optin = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0), cudaSuccess);
  EXPECT_EQ(optin, 2048);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

// Grids of more than 2^31 - 1 blocks are refused before anything runs (a cast to unsigned would
// wrap at 2^32 and leave outputs unwritten): the pointers are never touched.
TEST(TopKKernelsEmulated, GridsAboveTheLimitAreRefused) {
  const int64_t launches = emulation::launches();
  const int64_t too_many = cuda::kMaxGridX + 1;
  EXPECT_EQ(cuda::pair_blend<float>(nullptr, nullptr, 1.0f, nullptr, nullptr, nullptr, too_many * cuda::kBlockThreads,
                                    nullptr),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ(cuda::node_backward<float>(nullptr, nullptr, nullptr, nullptr, nullptr, 1.0f, nullptr,
                                       too_many * cuda::kBlockThreads, nullptr),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ((cuda::expand<float, float>(nullptr, nullptr, nullptr, nullptr, too_many, 1, 1, 4, nullptr)),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ((cuda::combine<float, float>(nullptr, nullptr, nullptr, nullptr, too_many, 1, 1, 1, 4, nullptr)),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ((cuda::combine<float, float>(nullptr, nullptr, nullptr, nullptr, 1, 1, 1, 1, (cuda::kMaxGridY + 1) * 32,
                                         nullptr)),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ((cuda::leaf_dot<float, float>(nullptr, nullptr, nullptr, nullptr, too_many, 1, 1, 8, 4, nullptr)),
            cudaErrorInvalidConfiguration);
  const auto shape = kernels::tournament_shape(4, 2);
  EXPECT_EQ(cuda::tournament<float>(nullptr, nullptr, shape, 1.0f, false, too_many, nullptr, {}, nullptr),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ(cuda::tree_backward<float>({}, 1, nullptr, nullptr, nullptr, 1.0f, too_many, 1, 1, nullptr, nullptr,
                                       nullptr, nullptr),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ(emulation::launches(), launches);
}

double tolerance(at::ScalarType dtype) {
  return dtype == at::kDouble ? 1e-12 : dtype == at::kFloat ? 1e-5 : dtype == at::kHalf ? 2e-3 : 1e-2;
}

void expect_close(const at::Tensor& a, const at::Tensor& b, at::ScalarType dtype, const char* what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  ASSERT_EQ(a.scalar_type(), b.scalar_type()) << what;
  const double tol = tolerance(dtype);
  EXPECT_TRUE(at::allclose(a.to(at::kDouble), b.to(at::kDouble), tol, tol, /*equal_nan=*/true))
      << what << " " << c10::toString(dtype) << ": max difference "
      << (a.to(at::kDouble) - b.to(at::kDouble)).abs().nan_to_num(0).max().item<double>();
}

// The gathers of x by the emulated kernels, outputs pre-filled with NaN bytes: combine (a block of
// 32 x up to 8 warps, partial sums in shared memory), leaf_dot (a warp per leaf, shuffles), expand
// (a block per input). S: the kernels' storage type of T.
template <typename T>
std::vector<at::Tensor> emulated_gathers(const at::Tensor& x, const at::Tensor& grad_y, const at::Tensor& index,
                                         const at::Tensor& coef, const at::Tensor& row, const at::Tensor& in_coef) {
  using A = at::opmath_type<T>;
  using S = std::conditional_t<std::is_same<T, at::BFloat16>::value, cuda::BFloat16Bits,
                               std::conditional_t<std::is_same<T, at::Half>::value, cuda::HalfBits, T>>;
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2), k = index.size(1), L = index.size(2);
  auto y = at::empty({b, k, d}, x.options());
  auto q = at::empty({b, k, L}, coef.options());
  auto gx = at::empty({b, n, d}, x.options());
  for (const auto* t : {&y, &q, &gx}) fill_bytes(*t, 0xFF);
  auto ptr = [](const at::Tensor& t) { return reinterpret_cast<S*>(t.data_ptr()); };
  EXPECT_EQ((cuda::combine<S, A>(ptr(x), index.data_ptr<int64_t>(), coef.data_ptr<A>(), ptr(y), b, n, k, L, d,
                                 nullptr)),
            cudaSuccess);
  EXPECT_EQ((cuda::leaf_dot<S, A>(ptr(grad_y), ptr(x), index.data_ptr<int64_t>(), q.data_ptr<A>(), b, n, k, L, d,
                                  nullptr)),
            cudaSuccess);
  EXPECT_EQ((cuda::expand<S, A>(ptr(grad_y), row.data_ptr<int64_t>(), in_coef.data_ptr<A>(), ptr(gx), b, n, k, d,
                                nullptr)),
            cudaSuccess);
  return {y, q, gx};
}

// The gathers against the CPU kernels on a real tournament's trees, for the four storage types;
// then with a corrupt leaf index and row, whose outputs are NaN and the others unchanged.
TEST(TopKKernelsEmulated, GathersMatchTheCpuKernelsForEveryDtype) {
  at::manual_seed(33);
  const int64_t b = 2, n = 37, k = 5, d = 70;
  const auto mask = make_mask(1, b, n);
  const auto tournament = pyramidion::detail::run_tournament(at::rand({b, n}).masked_fill(~mask, 0), mask, k,
                                                             std::log(20.0), true);
  const auto& index = tournament.leaf_index;
  const auto& row = tournament.input_row;
  auto bad_index = index.clone();
  bad_index[1][2][0] = n;  // out of range
  auto bad_row = row.clone();
  bad_row[0][3] = k;
  for (const auto dtype : {at::kFloat, at::kDouble, at::kBFloat16, at::kHalf}) {
    const auto acc = dtype == at::kDouble ? at::kDouble : at::kFloat;
    const auto x = at::randn({b, n, d}).to(dtype);
    const auto grad_y = at::randn({b, k, d}).to(dtype);
    const auto coef = tournament.leaf_coef.to(acc);
    const auto in_coef = at::rand({b, n}).to(acc);
    std::vector<at::Tensor> good, bad;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dtype, "gathers", [&] {
      good = emulated_gathers<scalar_t>(x, grad_y, index, coef, row, in_coef);
      bad = emulated_gathers<scalar_t>(x, grad_y, bad_index, coef, bad_row, in_coef);
    });
    expect_close(good[0], pyramidion::detail::sh_combine(x, index, coef), dtype, "combine");
    expect_close(good[1], pyramidion::detail::sh_leaf_dot(grad_y, x, index), dtype, "leaf_dot");
    expect_close(good[2], pyramidion::detail::sh_expand(grad_y, row, in_coef), dtype, "expand");
    EXPECT_TRUE(bad[0][1][2].isnan().all().item<bool>()) << "a corrupt leaf index makes its output row NaN";
    EXPECT_TRUE(bad[1][1][2][0].isnan().item<bool>());
    EXPECT_TRUE(bad[2][0][3].isnan().all().item<bool>()) << "a corrupt row makes its input's gradient NaN";
    bad[0][1][2].copy_(good[0][1][2]);
    bad[1][1][2][0].copy_(good[1][1][2][0]);
    bad[2][0][3].copy_(good[2][0][3]);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(bad[i].equal(good[i])) << "elsewhere the same, output " << i;
  }
}

// The element-wise kernels of the per-element math, bit for bit (blocks of 256, a partial last one).
TEST(TopKKernelsEmulated, PairBlendAndNodeBackwardEqualTheCpuKernelsBitForBit) {
  at::manual_seed(34);
  const int64_t N = 300;
  for (const auto dtype : {at::kFloat, at::kDouble}) {
    const auto s = (at::rand({N, 2}, at::kDouble) * 60 - 30).to(dtype);
    const auto valid = at::rand({N, 2}) < 0.8;
    const auto rho = at::rand({N}, dtype), sigma = at::randn({N}, dtype), w = at::rand({N}, dtype);
    const auto q_child = at::randn({N, 2}, dtype);
    auto we = at::empty({N}, s.options()), se = at::empty({N}, s.options());
    auto ve = at::empty({N}, valid.options());
    auto sigma_child = at::empty({N, 2}, s.options());
    AT_DISPATCH_FLOATING_TYPES(dtype, "elementwise", [&] {
      const auto lb = static_cast<scalar_t>(std::log(20.0));
      EXPECT_EQ(cuda::pair_blend<scalar_t>(s.data_ptr<scalar_t>(), valid.data_ptr<bool>(), lb, we.data_ptr<scalar_t>(),
                                           se.data_ptr<scalar_t>(), ve.data_ptr<bool>(), N, nullptr),
                cudaSuccess);
      EXPECT_EQ(cuda::node_backward<scalar_t>(rho.data_ptr<scalar_t>(), sigma.data_ptr<scalar_t>(),
                                              w.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                                              q_child.data_ptr<scalar_t>(), lb, sigma_child.data_ptr<scalar_t>(), N,
                                              nullptr),
                cudaSuccess);
    });
    const auto [w_cpu, s_cpu, v_cpu] = pyramidion::detail::sh_pair_blend(s, valid, std::log(20.0));
    EXPECT_TRUE(we.equal(w_cpu));
    EXPECT_TRUE(se.equal(s_cpu));
    EXPECT_TRUE(ve.equal(v_cpu));
    EXPECT_TRUE(sigma_child.equal(pyramidion::detail::sh_node_backward(rho, sigma, w, s, q_child, std::log(20.0))));
  }
}

// The paper's size: n = 8192 to k = 512, one example: 1024 threads per block, 64 KiB of shared
// memory for float (raised above 48 KiB through the function attribute), 96 KiB for double.
TEST(TopKKernelsEmulated, PaperSizeEqualsTheCpuKernelBitForBit) {
  at::manual_seed(35);
  for (const auto dtype : {at::kFloat, at::kDouble}) expect_tournament_matches(dtype, 1, 8192, 512, 0, true);
}

}  // namespace
