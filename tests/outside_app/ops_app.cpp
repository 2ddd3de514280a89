// An application that wants only the operator: it links pyramidion::ops (LibTorch its only other
// dependency), not the whole library. Checks the soft top-k against a naive reading of its
// definition where the answer is exact, and that its gradient flows.
#include <pyramidion/topk.h>

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

int main() {
  // k = n / 2 on n = 4 with keep_order: one round, pairs (best, worst) and (2nd, 3rd).
  torch::Tensor x = torch::arange(8.0, torch::dtype(torch::kFloat64)).reshape({1, 4, 2});  // (b, n, d)
  torch::Tensor scores = torch::tensor({{0.9, 0.1, 0.5, 0.3}}, torch::dtype(torch::kFloat64));  // (b, n)
  x.requires_grad_(true);
  pyramidion::TopKResult r = pyramidion::successive_halving_topk(x, scores, 2);
  // Naive: pair (0, 1) and (2, 3) by rank: best 0.9 (pos 0) with worst 0.1 (pos 1); 0.5 (pos 2) with 0.3 (pos 3).
  auto weight = [](double a, double b) { return 1.0 / (1.0 + std::exp(std::pow(20.0, b) - std::pow(20.0, a))); };
  double w0 = weight(0.9, 0.1), w1 = weight(0.5, 0.3);
  torch::Tensor expect = torch::stack({w0 * x[0][0] + (1 - w0) * x[0][1], w1 * x[0][2] + (1 - w1) * x[0][3]});  // (k, d)
  if (!torch::allclose(r.values[0], expect.detach(), 1e-12, 1e-12) ||
      r.indices[0][0].item<int64_t>() != 0 || r.indices[0][1].item<int64_t>() != 2) {
    std::fprintf(stderr, "ops_app: the soft top-k differs from its definition\n");
    return 1;
  }
  r.values.sum().backward();
  if (!x.grad().defined() || std::abs(x.grad().sum().item<double>() - 4.0) > 1e-12) {  // each pair's weights sum to 1, d = 2
    std::fprintf(stderr, "ops_app: the gradient does not flow\n");
    return 1;
  }
  std::printf("ops_app: pyramidion::ops ok\n");
  return 0;
}
