// The C++ API as operators for the Python tests and benchmark (python/tests, python/benchmarks):
// each runs the library's C++ functions, forward and backward, entirely in C++, so that Python can
// compare the Python path (torch.ops.pyramidion.successive_halving_topk, pyramidion.TopKPooler)
// with the C++ one on the same inputs, and time the two side by side in one process. Not part of
// the library: a module loaded with torch.ops.load_library(PYRAMIDION_CPP_API).
//
// Registered as CompositeImplicitAutograd: the kernel runs above autograd, so the C++ calls inside
// record and run their own backward.
//
// Legend: b batch, n inputs, k outputs, d representation size.
#include <pyramidion/model.h>
#include <pyramidion/pooling.h>
#include <pyramidion/topk.h>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <exception>
#include <string>
#include <tuple>
#include <vector>

namespace {

using Tensors6 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// Leaves of a fresh graph: x and scores detached and requiring grad.
std::pair<at::Tensor, at::Tensor> leaves(const at::Tensor& x, const at::Tensor& scores) {
  return {x.detach().requires_grad_(true), scores.detach().requires_grad_(true)};
}

// Gradients of <values, grad_values> + <scores, grad_scores> with respect to (x, scores).
std::vector<at::Tensor> backward(const pyramidion::TopKResult& r, const at::Tensor& grad_values,
                                 const at::Tensor& grad_scores, const at::Tensor& x, const at::Tensor& s) {
  return torch::autograd::grad({r.values, r.scores}, {x, s}, {grad_values, grad_scores}, /*retain_graph=*/false,
                               /*create_graph=*/false, /*allow_unused=*/true);
}

pyramidion::TopKOptions options(const c10::optional<at::Tensor>& mask, double base, bool keep_order, bool hard) {
  return pyramidion::TopKOptions().mask(mask.value_or(at::Tensor())).base(base).keep_order(keep_order).hard(hard);
}

// pyramidion::successive_halving_topk, forward and backward.
Tensors6 topk(const at::Tensor& x_in, const at::Tensor& scores_in, int64_t k, const c10::optional<at::Tensor>& mask,
              double base, bool keep_order, bool hard, const at::Tensor& grad_values, const at::Tensor& grad_scores) {
  auto [x, s] = leaves(x_in, scores_in);
  const auto r = pyramidion::successive_halving_topk(x, s, k, options(mask, base, keep_order, hard));
  const auto g = backward(r, grad_values, grad_scores, x, s);
  return {r.values.detach(), r.scores.detach(), r.mask, r.indices, g[0], g[1]};
}

// pyramidion::hard_topk, forward and backward.
Tensors6 hard_topk(const at::Tensor& x_in, const at::Tensor& scores_in, int64_t k,
                   const c10::optional<at::Tensor>& mask, bool keep_order, const at::Tensor& grad_values,
                   const at::Tensor& grad_scores) {
  auto [x, s] = leaves(x_in, scores_in);
  const auto r = pyramidion::hard_topk(x, s, k, options(mask, 20.0, keep_order, false));
  const auto g = backward(r, grad_values, grad_scores, x, s);
  return {r.values.detach(), r.scores.detach(), r.mask, r.indices, g[0], g[1]};
}

// The message of the std::invalid_argument that pyramidion::successive_halving_topk throws for
// these arguments, or "" when it accepts them.
std::string topk_error(const at::Tensor& x, const at::Tensor& scores, int64_t k, const c10::optional<at::Tensor>& mask,
                       double base, bool keep_order, bool hard) {
  try {
    pyramidion::successive_halving_topk(x, scores, k, options(mask, base, keep_order, hard));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// A C++ TopKPooler with these scorer weights, forward (in training or eval mode) and backward:
// values, mask, indices, scores, and the gradients of x, the weight and the bias.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> pooler(
    const at::Tensor& x_in, const c10::optional<at::Tensor>& mask, const at::Tensor& weight, const at::Tensor& bias,
    int64_t target_length, double base, bool keep_order, bool hard_at_inference, double score_epsilon, bool training,
    const at::Tensor& grad_values, const at::Tensor& grad_scores) {
  pyramidion::PoolerConfig config;
  config.base = base;
  config.keep_order = keep_order;
  config.hard_at_inference = hard_at_inference;
  config.score_epsilon = score_epsilon;
  pyramidion::TopKPooler pool(pyramidion::TopKPoolerOptions(x_in.size(2), target_length, config));
  pool->to(x_in.scalar_type());
  {
    at::NoGradGuard no_grad;
    pool->scorer->weight.copy_(weight);
    pool->scorer->bias.copy_(bias);
  }
  pool->train(training);
  const auto x = x_in.detach().requires_grad_(true);
  const auto out = pool->forward(x, mask.value_or(at::Tensor()));
  const auto g = torch::autograd::grad({out.values, out.scores}, {x, pool->scorer->weight, pool->scorer->bias},
                                       {grad_values, grad_scores}, false, false, /*allow_unused=*/true);
  return {out.values.detach(), out.mask, out.indices, out.scores.detach(), g[0], g[1], g[2]};
}

// A model of this configuration (random weights, seeded) saved to `dir` by Seq2Seq::save; returns
// its parameter and buffer names and values as the C++ module holds them, loaded back by
// Seq2Seq::load.
std::tuple<std::vector<std::string>, std::vector<at::Tensor>> save_model(std::string config_json, std::string dir,
                                                                        int64_t seed) {
  at::manual_seed(seed);
  pyramidion::Seq2Seq model(pyramidion::ModelConfig::from_json_string(config_json));
  model->save(dir);
  const auto loaded = pyramidion::Seq2Seq::load(dir);
  std::vector<std::string> names;
  std::vector<at::Tensor> values;
  for (const auto& p : loaded->named_parameters()) names.push_back(p.key()), values.push_back(p.value().detach());
  for (const auto& p : loaded->named_buffers()) names.push_back(p.key()), values.push_back(p.value().detach());
  return {names, values};
}

}  // namespace

TORCH_LIBRARY(pyramidion_cpp, m) {
  m.def("topk(Tensor x, Tensor scores, int k, Tensor? mask, float base, bool keep_order, bool hard, "
        "Tensor grad_values, Tensor grad_scores) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("hard_topk(Tensor x, Tensor scores, int k, Tensor? mask, bool keep_order, Tensor grad_values, "
        "Tensor grad_scores) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("topk_error(Tensor x, Tensor scores, int k, Tensor? mask, float base, bool keep_order, bool hard) -> str");
  m.def("pooler(Tensor x, Tensor? mask, Tensor weight, Tensor bias, int target_length, float base, "
        "bool keep_order, bool hard_at_inference, float score_epsilon, bool training, Tensor grad_values, "
        "Tensor grad_scores) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  // No tensor argument: a catch-all kernel.
  m.def("save_model(str config_json, str dir, int seed) -> (str[], Tensor[])", &save_model);
}

TORCH_LIBRARY_IMPL(pyramidion_cpp, CompositeImplicitAutograd, m) {
  m.impl("topk", &topk);
  m.impl("hard_topk", &hard_topk);
  m.impl("topk_error", &topk_error);
  m.impl("pooler", &pooler);
}
