// Linear (see include/pyramidion/linear.h).
//
// Legend: i in_features, o out_features.
#include <pyramidion/linear.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>

#include <cmath>
#include <fstream>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>

#include "util/tensor_text.h"

namespace pyramidion {
namespace {

// The operator `name` of the dispatcher, or nullopt when this LibTorch has none.
using OptionalOp = std::optional<c10::OperatorHandle>;

// Runs a registered operator on boxed arguments; returns its first output. `op` is looked up once
// per operator by the caller (forward() runs at every decoder step).
c10::IValue call_op(const OptionalOp& op, const char* name, std::vector<c10::IValue> stack) {
  if (!op)
    throw std::runtime_error(std::string("Linear: this LibTorch has no ") + name +
                             " operator (int8 inference needs the fbgemm quantized kernels, x86-64 builds; "
                             "prepacked float32, the oneDNN ones, builds with MKLDNN)");
  op->callBoxed(&stack);
  return stack.front();
}

const OptionalOp& linear_dynamic_op() {
  static const OptionalOp op = c10::Dispatcher::singleton().findSchema({"quantized::linear_dynamic", ""});
  return op;
}

const OptionalOp& linear_prepack_op() {
  static const OptionalOp op = c10::Dispatcher::singleton().findSchema({"quantized::linear_prepack", ""});
  return op;
}

// oneDNN's matmul: mkldnn::_reorder_linear_weight(Tensor self, int? batch_size=None) and
// mkldnn::_linear_pointwise(Tensor X, Tensor W, Tensor? B, str attr, Scalar?[] scalars, str? algorithm),
// registered by LibTorch's aten/src/ATen/native/mkldnn (the kernels of torch.compile's CPU freezing).
const OptionalOp& reorder_linear_weight_op() {
  static const OptionalOp op = c10::Dispatcher::singleton().findSchema({"mkldnn::_reorder_linear_weight", ""});
  return op;
}

const OptionalOp& linear_pointwise_op() {
  static const OptionalOp op = c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""});
  return op;
}

// LibTorch warns that quantized tensors are deprecated (pytorch#184982) when one is created; the
// int8 weight lives only inside the packed parameters, and the warning would reach every user.
class QuietWarnings : public c10::WarningHandler {
 public:
  void process(const c10::Warning&) override {}
};

// Whether the CPU multiplies int8 with VNNI (vpdpbusd: exact int32 sums). Without it, fbgemm's
// vpmaddubsw adds pairs of u8 x s8 products into int16 with saturation, so the input is quantized
// to 7 bits (LibTorch's reduce_range, the default of its dynamic quantization); with it, to 8 bits,
// which halves the input's rounding step.
bool has_vnni() {
  static const bool vnni = [] {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("flags", 0) == 0)
        return line.find(" avx512_vnni") != std::string::npos || line.find(" avx_vnni") != std::string::npos;
    return false;
  }();
  return vnni;
}

}  // namespace

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool bias)
    : in_features_(in_features), out_features_(out_features), has_bias_(bias) {
  if (in_features < 1 || out_features < 1)
    throw std::invalid_argument("Linear: in_features and out_features must be >= 1, got " +
                                std::to_string(in_features) + " and " + std::to_string(out_features));
  reset();
}

LinearImpl::LinearImpl(const at::Tensor& weight_, const at::Tensor& bias_)
    : in_features_(weight_.defined() && weight_.dim() == 2 ? weight_.size(1) : 0),
      out_features_(weight_.defined() && weight_.dim() == 2 ? weight_.size(0) : 0),
      has_bias_(bias_.defined()) {
  if (!weight_.defined() || weight_.dim() != 2 || weight_.numel() == 0 ||
      (bias_.defined() && (bias_.dim() != 1 || bias_.size(0) != weight_.size(0))))
    throw std::invalid_argument("Linear: weight must be (o, i) with o, i >= 1 and bias (o) or undefined, got weight " +
                                detail::describe(weight_) + " and bias " + detail::describe(bias_));
  weight = register_parameter("weight", weight_);
  if (has_bias_) bias = register_parameter("bias", bias_);
}

void LinearImpl::reset() {
  // torch::nn::Linear's parameters and initialisation, in its order (same random draws).
  weight = register_parameter("weight", at::empty({out_features_, in_features_}));  // (o, i)
  bias = has_bias_ ? register_parameter("bias", at::empty({out_features_})) : at::Tensor();  // (o)
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (has_bias_) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features_));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
  unpack();
}

void LinearImpl::pretty_print(std::ostream& stream) const {
  stream << "pyramidion::Linear(in_features=" << in_features_ << ", out_features=" << out_features_
         << ", bias=" << (has_bias_ ? "true" : "false") << (quantized() ? ", int8" : "")
         << (prepacked() ? ", prepacked" : "") << ")";
}

bool LinearImpl::use_prepacked(const at::Tensor& x) const {
  if (packing_ != Packing::fp32 || !x.defined() || x.scalar_type() != at::kFloat || !x.device().is_cpu() ||
      x.dim() < 1 || x.size(-1) != in_features_ || x.numel() == 0 || x.numel() / in_features_ > kPackedMaxRows)
    return false;
  const bool bias_grad = has_bias_ && bias.requires_grad();
  if (at::GradMode::is_enabled() && (weight.requires_grad() || x.requires_grad() || bias_grad)) return false;
  // The weight the copy was made from, unchanged (the bias is read as it is now).
  // packed_from_ keeps that storage alive, so no other tensor can be given its address meanwhile.
  return weight.scalar_type() == at::kFloat && weight.device().is_cpu() && weight.has_storage() &&
         weight.storage().unsafeGetStorageImpl() == packed_from_.unsafeGetStorageImpl() &&
         weight._version() == packed_version_ && (!has_bias_ || bias.scalar_type() == at::kFloat);
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  if (use_prepacked(x)) {
    auto sizes = x.sizes().vec();
    sizes.back() = out_features_;
    const auto rows = x.reshape({-1, in_features_}).contiguous();  // (r, i)
    c10::IValue b = has_bias_ ? c10::IValue(bias.contiguous()) : c10::IValue();
    const auto y = call_op(linear_pointwise_op(), "mkldnn::_linear_pointwise",
                           {rows, packed_, b, std::string("none"), c10::List<std::optional<at::Scalar>>(),
                            c10::IValue(std::string())})
                       .toTensor();  // (r, o)
    return y.view(sizes);            // (..., o)
  }
  if (!quantized()) return at::linear(x, weight, bias);  // (..., i) -> (..., o)
  if (!x.defined() || x.scalar_type() != at::kFloat || !x.device().is_cpu() || x.dim() < 1 ||
      x.size(-1) != in_features_)
    throw std::invalid_argument("Linear (int8): the input must be float32 on the CPU with " +
                                std::to_string(in_features_) + " features, got " + detail::describe(x) + " " +
                                (x.defined() ? std::string(c10::toString(x.scalar_type())) + " on " + x.device().str()
                                             : std::string()));
  if (at::GradMode::is_enabled() && (weight.requires_grad() || x.requires_grad()))
    throw std::invalid_argument("Linear (int8): the int8 kernels have no gradient; run under torch::NoGradGuard "
                                "(inference), or unpack() before training");
  if (x.numel() == 0) {
    auto sizes = x.sizes().vec();
    sizes.back() = out_features_;
    return at::zeros(sizes, x.options());  // (..., o)
  }
  return call_op(linear_dynamic_op(), "quantized::linear_dynamic", {x.contiguous(), packed_, /*reduce_range=*/!has_vnni()}).toTensor();
}

void LinearImpl::quantize_int8() {
  if (weight.scalar_type() != at::kFloat || !weight.device().is_cpu())
    throw std::invalid_argument(std::string("Linear::quantize_int8: int8 weights are made from float32 weights on the "
                                            "CPU, got ") +
                                c10::toString(weight.scalar_type()) + " on " + weight.device().str());
  torch::NoGradGuard no_grad;
  unpack();
  const auto w = weight.detach().contiguous();                             // (o, i)
  const auto scales = (w.abs().amax(1).to(at::kDouble) / 127.0).clamp_min(1e-12);  // (o)
  const auto zero_points = at::zeros({out_features_}, at::kLong);          // (o) symmetric
  QuietWarnings quiet;
  c10::WarningUtils::WarningHandlerGuard guard(&quiet);
  const auto qweight = at::quantize_per_channel(w, scales, zero_points, 0, at::kQInt8);  // (o, i) int8
  c10::IValue b = has_bias_ ? c10::IValue(bias.detach().contiguous()) : c10::IValue();
  packed_ = call_op(linear_prepack_op(), "quantized::linear_prepack", {qweight, b});
  packing_ = Packing::int8;
}

void LinearImpl::prepack_fp32() {
  if (weight.scalar_type() != at::kFloat || !weight.device().is_cpu())
    throw std::invalid_argument(std::string("Linear::prepack_fp32: needs float32 weights on the CPU, got ") +
                                c10::toString(weight.scalar_type()) + " on " + weight.device().str());
  torch::NoGradGuard no_grad;
  unpack();
  packed_ = call_op(reorder_linear_weight_op(), "mkldnn::_reorder_linear_weight",
                    {weight.detach().contiguous(), c10::IValue()});  // (o, i), oneDNN's layout (a copy)
  packed_from_ = weight.storage();
  packed_version_ = weight._version();
  packing_ = Packing::fp32;
}

void LinearImpl::unpack() {
  packed_ = c10::IValue();
  packed_from_ = c10::Storage();
  packed_version_ = -1;
  packing_ = Packing::none;
}

std::shared_ptr<LinearImpl> LinearImpl::concat(const std::vector<const LinearImpl*>& parts) {
  if (parts.empty()) throw std::invalid_argument("Linear::concat: no parts");
  const auto& first = *parts.front();
  std::vector<at::Tensor> weights, biases;
  for (const auto* p : parts) {
    if (p->in_features_ != first.in_features_ || p->has_bias_ != first.has_bias_ ||
        p->weight.scalar_type() != first.weight.scalar_type() || p->weight.device() != first.weight.device())
      throw std::invalid_argument("Linear::concat: the parts must share in_features, bias, dtype and device, got " +
                                  detail::describe(first.weight) + " and " + detail::describe(p->weight));
    weights.push_back(p->weight.detach());
    if (p->has_bias_) biases.push_back(p->bias.detach());
  }
  torch::NoGradGuard no_grad;
  auto fused = std::make_shared<LinearImpl>(at::cat(weights, 0),                                   // (sum o, i)
                                            first.has_bias_ ? at::cat(biases, 0) : at::Tensor());  // (sum o)
  if (first.quantized()) fused->quantize_int8();
  if (first.prepacked()) fused->prepack_fp32();
  return fused;
}

}  // namespace pyramidion
