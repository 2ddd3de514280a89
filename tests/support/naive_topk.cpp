// Test-only references (see naive_topk.h). Deliberately plain: per example, per round, no
// batching, no shared code with the library.
//
// Legend: b batch, n inputs, m candidates this round, m2 next round, k outputs, c byes, p pairs,
// d representation size.
#include "support/naive_topk.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace pyramidion_test {
namespace {

// The inputs of one batch as plain arrays.
struct Inputs {
  int64_t b = 0, n = 0, d = 0;
  std::vector<double> x;      // b * n * d
  std::vector<double> score;  // b * n
  std::vector<char> valid;    // b * n
};

Inputs read_inputs(const at::Tensor& x, const at::Tensor& scores, const at::Tensor& mask) {
  Inputs in;
  in.b = x.size(0);
  in.n = x.size(1);
  in.d = x.size(2);
  const auto xc = x.detach().to(at::kDouble).contiguous();
  const auto sc = scores.detach().to(at::kDouble).contiguous();
  in.x.assign(xc.data_ptr<double>(), xc.data_ptr<double>() + xc.numel());
  in.score.assign(sc.data_ptr<double>(), sc.data_ptr<double>() + sc.numel());
  in.valid.assign(in.b * in.n, 1);
  if (mask.defined()) {
    const auto mc = mask.to(at::kBool).contiguous();
    const bool* mp = mc.data_ptr<bool>();
    for (int64_t i = 0; i < in.b * in.n; ++i) in.valid[i] = mp[i] ? 1 : 0;
  }
  return in;
}

// One candidate of a round.
struct Candidate {
  double score = 0;         // 0 for padding
  bool valid = false;       // holds at least one real input
  std::vector<double> rep;  // d numbers; zero for padding
  int64_t winner = -1;      // input position followed down the better-ranked sides
};

// The leaves of example e: real tokens as given, padding with score 0 and a zero vector.
std::vector<Candidate> leaves(const Inputs& in, int64_t e) {
  std::vector<Candidate> list(in.n);
  for (int64_t i = 0; i < in.n; ++i) {
    Candidate& c = list[i];
    c.valid = in.valid[e * in.n + i] != 0;
    c.winner = i;
    c.rep.assign(in.d, 0.0);
    if (c.valid) {
      c.score = in.score[e * in.n + i];
      for (int64_t j = 0; j < in.d; ++j) c.rep[j] = in.x[(e * in.n + i) * in.d + j];
    }
  }
  return list;
}

// Strict weak order of a round's sort: real before padding, higher score first.
bool ranks_before(const Candidate& a, const Candidate& b) {
  if (a.valid != b.valid) return a.valid;
  if (!a.valid) return false;
  return a.score > b.score;
}

// softmax([base^s_a, base^s_b])_0, with the limit when both powers overflow.
double pair_weight(double s_a, double s_b, double base) {
  const double diff = std::pow(base, s_a) - std::pow(base, s_b);
  if (std::isnan(diff)) return s_a > s_b ? 1.0 : (s_a < s_b ? 0.0 : 0.5);
  return 1.0 / (1.0 + std::exp(-diff));
}

// One pair, a ranked better than b.
Candidate play_pair(const Candidate& a, const Candidate& b, double base) {
  if (!a.valid && b.valid) throw std::logic_error("naive: padding ranked before a real candidate");
  if (!b.valid) {
    if (a.valid) return a;  // real + padding: weight 1 to the real side
    Candidate pad;          // padding + padding: stays padding
    pad.rep.assign(a.rep.size(), 0.0);
    pad.winner = a.winner;
    return pad;
  }
  const double w = pair_weight(a.score, b.score, base);
  Candidate out;
  out.valid = true;
  out.winner = a.winner;
  out.score = w * a.score + (1 - w) * b.score;
  out.rep.resize(a.rep.size());
  for (size_t j = 0; j < a.rep.size(); ++j) out.rep[j] = w * a.rep[j] + (1 - w) * b.rep[j];
  return out;
}

// Rounds until k candidates remain (header rules 1-4).
std::vector<Candidate> tournament(std::vector<Candidate> list, int64_t k, double base) {
  while (static_cast<int64_t>(list.size()) > k) {
    const int64_t m = static_cast<int64_t>(list.size());
    const int64_t m2 = std::max(k, (m + 1) / 2);
    const int64_t c = 2 * m2 - m, p = m - m2;
    std::stable_sort(list.begin(), list.end(), ranks_before);
    std::vector<Candidate> next(list.begin(), list.begin() + c);  // byes, best first
    for (int64_t j = 0; j < p; ++j) next.push_back(play_pair(list[c + j], list[m - 1 - j], base));
    list = std::move(next);
  }
  return list;
}

// Outputs by winner position, outputs holding no real input last.
void keep_order_sort(std::vector<Candidate>& list) {
  std::stable_sort(list.begin(), list.end(), [](const Candidate& a, const Candidate& b) {
    if (a.valid != b.valid) return a.valid;
    return a.winner < b.winner;
  });
}

NaiveResult to_result(const std::vector<std::vector<Candidate>>& out, int64_t k, int64_t d) {
  const int64_t b = static_cast<int64_t>(out.size());
  NaiveResult r;
  r.values = at::zeros({b, k, d}, at::kDouble);
  r.scores = at::zeros({b, k}, at::kDouble);
  r.mask = at::zeros({b, k}, at::kBool);
  r.indices = at::zeros({b, k}, at::kLong);
  double* vp = r.values.data_ptr<double>();
  double* sp = r.scores.data_ptr<double>();
  bool* mp = r.mask.data_ptr<bool>();
  int64_t* ip = r.indices.data_ptr<int64_t>();
  for (int64_t e = 0; e < b; ++e) {
    if (static_cast<int64_t>(out[e].size()) != k) throw std::logic_error("naive: wrong output count");
    for (int64_t i = 0; i < k; ++i) {
      const Candidate& c = out[e][i];
      sp[e * k + i] = c.score;
      mp[e * k + i] = c.valid;
      ip[e * k + i] = c.winner;
      for (int64_t j = 0; j < d; ++j) vp[(e * k + i) * d + j] = c.rep[j];
    }
  }
  return r;
}

}  // namespace

NaiveResult naive_successive_halving(const at::Tensor& x, const at::Tensor& scores, const at::Tensor& mask,
                                     int64_t k, double base, bool keep_order) {
  const Inputs in = read_inputs(x, scores, mask);
  std::vector<std::vector<Candidate>> out;
  for (int64_t e = 0; e < in.b; ++e) {
    // Only the real tokens play; an example with at most k of them keeps its input order.
    std::vector<Candidate> real, padding;
    for (auto& c : leaves(in, e)) (c.valid ? real : padding).push_back(std::move(c));
    auto list = static_cast<int64_t>(real.size()) > k ? tournament(std::move(real), k, base) : std::move(real);
    if (keep_order) keep_order_sort(list);
    // Padding rows after the real ones, holding the first padding positions.
    for (size_t i = 0; static_cast<int64_t>(list.size()) < k; ++i) list.push_back(padding[i]);
    out.push_back(std::move(list));
  }
  return to_result(out, k, in.d);
}

NaiveResult naive_plain_halving(const at::Tensor& x, const at::Tensor& scores, int64_t k, double base) {
  const Inputs in = read_inputs(x, scores, at::Tensor());
  int64_t ratio = in.n / k;
  if (in.n % k != 0 || (ratio & (ratio - 1)) != 0)
    throw std::logic_error("naive_plain_halving: n / k must be a power of two");
  std::vector<std::vector<Candidate>> out;
  for (int64_t e = 0; e < in.b; ++e) {
    auto list = leaves(in, e);
    while (static_cast<int64_t>(list.size()) > k) {
      const size_t m = list.size();
      std::stable_sort(list.begin(), list.end(), ranks_before);
      std::vector<Candidate> next;
      for (size_t i = 0; i < m / 2; ++i) next.push_back(play_pair(list[i], list[m - 1 - i], base));
      list = std::move(next);
    }
    out.push_back(std::move(list));
  }
  return to_result(out, k, in.d);
}

NaiveResult naive_hard_topk(const at::Tensor& x, const at::Tensor& scores, const at::Tensor& mask, int64_t k,
                            bool keep_order) {
  const Inputs in = read_inputs(x, scores, mask);
  std::vector<std::vector<Candidate>> out;
  for (int64_t e = 0; e < in.b; ++e) {
    auto list = leaves(in, e);
    std::stable_sort(list.begin(), list.end(), ranks_before);
    list.resize(k);
    if (keep_order) keep_order_sort(list);
    out.push_back(std::move(list));
  }
  return to_result(out, k, in.d);
}

NaiveResult naive_iterative_softmax(const at::Tensor& x, const at::Tensor& scores, const at::Tensor& mask,
                                    int64_t k, double temperature) {
  const Inputs in = read_inputs(x, scores, mask);
  std::vector<std::vector<Candidate>> out(in.b);
  for (int64_t e = 0; e < in.b; ++e) {
    const auto list = leaves(in, e);
    std::vector<char> available(in.n);
    for (int64_t i = 0; i < in.n; ++i) available[i] = list[i].valid;
    for (int64_t step = 0; step < k; ++step) {
      int64_t best = -1;
      for (int64_t i = 0; i < in.n; ++i)
        if (available[i] && (best < 0 || list[i].score > list[best].score)) best = i;
      Candidate c;
      c.rep.assign(in.d, 0.0);
      if (best >= 0) {
        const double top = list[best].score;
        std::vector<double> p(in.n, 0.0);
        double total = 0;
        for (int64_t i = 0; i < in.n; ++i) {
          if (!available[i]) continue;
          const double diff = list[i].score - top;
          p[i] = std::exp(-diff * diff / temperature);
          total += p[i];
        }
        for (int64_t i = 0; i < in.n; ++i) {
          const double pi = p[i] / total;
          c.score += pi * list[i].score;
          for (int64_t j = 0; j < in.d; ++j) c.rep[j] += pi * list[i].rep[j];
        }
        c.valid = true;
        c.winner = best;
        available[best] = 0;
      }
      out[e].push_back(std::move(c));
    }
  }
  return to_result(out, k, in.d);
}

double naive_nccs(const at::Tensor& exact, const at::Tensor& approx) {
  const auto ex = exact.detach().to(at::kDouble).contiguous();
  const auto ap = approx.detach().to(at::kDouble).contiguous();
  const int64_t b = ex.size(0), k = ex.size(1), k2 = ap.size(1), d = ex.size(2);
  const double* ep = ex.data_ptr<double>();
  const double* app = ap.data_ptr<double>();
  auto norm = [d](const double* v) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += v[j] * v[j];
    return std::sqrt(s);
  };
  double total = 0;
  for (int64_t e = 0; e < b; ++e) {
    for (int64_t i = 0; i < k; ++i) {
      const double* u = ep + (e * k + i) * d;
      const double nu = norm(u);
      double best = -std::numeric_limits<double>::infinity();
      for (int64_t r = 0; r < k2; ++r) {
        const double* v = app + (e * k2 + r) * d;
        double dot = 0;
        for (int64_t j = 0; j < d; ++j) dot += u[j] * v[j];
        const double nv = norm(v);
        best = std::max(best, (nu > 0 && nv > 0) ? dot / (nu * nv) : 0.0);
      }
      total += best;
    }
  }
  return total / static_cast<double>(b * k);
}

NaiveResult torch_reference_successive_halving(const at::Tensor& x, const at::Tensor& scores,
                                               const at::Tensor& mask_in, int64_t k, double base,
                                               bool keep_order) {
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2);
  const auto mask = mask_in.defined() ? mask_in : at::ones({b, n}, x.options().dtype(at::kBool));
  const auto long_opts = x.options().dtype(at::kLong);
  std::vector<at::Tensor> values, out_scores, out_mask, indices;
  for (int64_t e = 0; e < b; ++e) {
    // Only the real tokens play; an example with at most k of them keeps its input order.
    const auto real = mask[e].nonzero().squeeze(1);              // (r) positions of real tokens
    const auto pads = mask[e].logical_not().nonzero().squeeze(1);  // (n - r) padding positions
    at::Tensor X = x[e].index_select(0, real);                   // (m, d)
    at::Tensor S = scores[e].index_select(0, real);              // (m)
    at::Tensor W = real;                                         // (m) winners
    while (X.size(0) > k) {
      const int64_t m = X.size(0), m2 = std::max(k, (m + 1) / 2);
      const int64_t c = 2 * m2 - m, p = m - m2;
      const auto perm = std::get<1>(S.detach().sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));  // (m)
      X = X.index_select(0, perm);
      S = S.index_select(0, perm);
      W = W.index_select(0, perm);
      const auto ia = at::arange(c, c + p, long_opts);              // (p) better sides
      const auto ib = at::arange(m - 1, m - 1 - p, -1, long_opts);  // (p) worse sides
      const auto Sa = S.index_select(0, ia), Sb = S.index_select(0, ib);
      const auto w = at::sigmoid(at::pow(base, Sa) - at::pow(base, Sb));  // (p)
      const auto Xp = w.unsqueeze(1) * X.index_select(0, ia) + (1 - w).unsqueeze(1) * X.index_select(0, ib);
      const auto Sp = w * Sa + (1 - w) * Sb;
      X = at::cat({X.narrow(0, 0, c), Xp}, 0);
      S = at::cat({S.narrow(0, 0, c), Sp}, 0);
      W = at::cat({W.narrow(0, 0, c), W.index_select(0, ia)}, 0);
    }
    if (keep_order) {
      const auto perm = std::get<1>(W.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
      X = X.index_select(0, perm);
      S = S.index_select(0, perm);
      W = W.index_select(0, perm);
    }
    // Padding rows after the real ones, holding the first padding positions.
    const int64_t r = X.size(0), extra = k - r;
    values.push_back(at::cat({X, at::zeros({extra, d}, x.options())}, 0));
    out_scores.push_back(at::cat({S, at::zeros({extra}, scores.options())}, 0));
    out_mask.push_back(at::arange(k, long_opts) < r);
    indices.push_back(at::cat({W, pads.narrow(0, 0, extra)}, 0));
  }
  if (b == 0) {
    return {at::zeros({0, k, d}, x.options()), at::zeros({0, k}, x.options()),
            at::zeros({0, k}, x.options().dtype(at::kBool)), at::zeros({0, k}, long_opts)};
  }
  return {at::stack(values), at::stack(out_scores), at::stack(out_mask), at::stack(indices)};
}

}  // namespace pyramidion_test
