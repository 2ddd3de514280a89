#include "naive_reference.h"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace pyramidion {
namespace bench {

bool naive_supports(int64_t n, int64_t k) {
  if (k < 1 || n < k || n % k != 0) return false;
  const int64_t ratio = n / k;
  return (ratio & (ratio - 1)) == 0;
}

NaiveTopKResult naive_successive_halving_topk(const at::Tensor& x, const at::Tensor& scores, int64_t k,
                                              double base) {
  const int64_t b = x.size(0), n = x.size(1);
  if (!naive_supports(n, k))
    throw std::invalid_argument("naive_successive_halving_topk: n / k must be a power of two, got n = " +
                                std::to_string(n) + ", k = " + std::to_string(k));
  std::vector<at::Tensor> values, out_scores;
  // The Python loop over the batch of the authors' code, kept on purpose: it is what is measured.
  // The examples come from unbind, not from indexing one at a time as the authors' code does
  // (`embs[i]`): each indexing's backward writes a zero gradient the size of the whole batch,
  // O(b^2 n d), which would flatter the comparison several times over.
  const auto xs = x.unbind(0);       // b x (n, d)
  const auto ss = scores.unbind(0);  // b x (n)
  for (int64_t i = 0; i < b; ++i) {
    at::Tensor xi = xs[i];  // (n, d)
    at::Tensor si = ss[i];  // (n)
    for (int64_t m = n; m > k; m /= 2) {
      const int64_t half = m / 2;
      // Stable, as the library's sort: equal scores pair up the same way in both.
      const auto order =
          std::get<1>(si.detach().sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));  // (m)
      const auto best = order.narrow(0, 0, half);                                          // (m/2) best first
      const auto worst = order.narrow(0, half, half).flip(0);  // (m/2) worst first
      const auto s_pair = at::stack({si.index_select(0, best), si.index_select(0, worst)}, 0);  // (2, m/2)
      const auto w = at::softmax(at::pow(base, s_pair), 0);                                     // (2, m/2)
      si = (w * s_pair).sum(0);                                                                 // (m/2)
      xi = w[0].unsqueeze(1) * xi.index_select(0, best) +
           w[1].unsqueeze(1) * xi.index_select(0, worst);  // (m/2, d)
    }
    values.push_back(xi);
    out_scores.push_back(si);
  }
  return {at::stack(values), at::stack(out_scores)};  // (b, k, d), (b, k)
}

}  // namespace bench
}  // namespace pyramidion
