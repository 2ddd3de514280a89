// The model directory (models/checkpoint.h): Seq2Seq::save and Seq2Seq::load.
#include "models/checkpoint.h"

#include <ATen/core/Dict.h>
#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <c10/util/Exception.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/serialize.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/directory_checksums.h"
#include "util/text.h"
#include "util/tensor_text.h"

namespace pyramidion {
namespace detail {

void write_model_files(const Seq2SeqImpl& model, AtomicDirectory& dir) {
  model.config().validate();  // never write a config that would not load
  dir.write("config.json", model.config().to_json_string() + "\n");
  c10::Dict<std::string, at::Tensor> weights;
  for (const auto& p : model.named_parameters()) weights.insert(p.key(), p.value().detach().cpu());
  for (const auto& p : model.named_buffers()) weights.insert(p.key(), p.value().detach().cpu());
  const auto bytes = torch::pickle_save(weights);  // a dict of name -> tensor, torch.load-able
  dir.write("weights.pt", std::string_view(bytes.data(), bytes.size()));
}

at::Tensor fit_position_table(const at::Tensor& table, int64_t rows) {
  const int64_t length = table.size(0);
  if (length == rows) return table;
  return table.repeat({(rows + length - 1) / length, 1}).narrow(0, 0, rows);  // (P, d) -> (rows, d)
}

// torch::pickle_load(bytes), read through a bounds-checked adapter: pickle_load's own reader
// copies whatever range the zip's records ask for, so a damaged weights.pt read past the buffer
// (an ASan heap overflow that tests/fuzz checkpoint found); MemoryReadAdapter clamps every read
// to the bytes, and the same file is then the c10::Error "failed finding central directory".
c10::IValue unpickle(const std::vector<char>& bytes) {
  caffe2::serialize::PyTorchStreamReader reader(
      std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), static_cast<off_t>(bytes.size())));
  return torch::jit::readArchiveAndTensors("data", "", "", std::nullopt, std::nullopt, std::nullopt, reader);
}

}  // namespace detail

void Seq2SeqImpl::save(const std::string& dir) const {
  detail::AtomicDirectory out("Seq2Seq::save", dir);
  detail::write_model_files(*this, out);
  detail::write_checksums(out);
  out.commit();
}

Seq2Seq Seq2Seq::load(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path config_path = fs::path(dir) / "config.json";
  const fs::path weights_path = fs::path(dir) / "weights.pt";
  if (!fs::is_regular_file(config_path)) throw std::invalid_argument("Seq2Seq::load: missing " + config_path.string());
  if (!fs::is_regular_file(weights_path)) throw std::invalid_argument("Seq2Seq::load: missing " + weights_path.string());
  detail::verify_file_checksum("Seq2Seq::load", dir, "config.json");
  Seq2Seq model(ModelConfig::from_json_file(config_path.string()));

  std::ifstream file(weights_path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (!file.good() && !file.eof()) throw std::runtime_error("Seq2Seq::load: cannot read " + weights_path.string());
  detail::verify_checksum("Seq2Seq::load", dir, "weights.pt", std::string_view(bytes.data(), bytes.size()));
  c10::Dict<std::string, at::Tensor> weights;
  try {
    weights = c10::impl::toTypedDict<std::string, at::Tensor>(detail::unpickle(bytes).toGenericDict());
  } catch (const c10::Error& e) {
    throw std::runtime_error("Seq2Seq::load: " + weights_path.string() +
                             " is not a weights file (a dict of name -> tensor): " + e.what_without_backtrace());
  }

  const auto where = "Seq2Seq::load: " + weights_path.string() + " does not match " + config_path.string() + ": ";
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  const auto load_one = [&](const std::string& name, at::Tensor& dst) {
    expected.insert(name);
    const auto it = weights.find(name);
    if (it == weights.end())
      throw std::runtime_error(where + "tensor '" + name + "' (shape " + detail::format_sizes(dst.sizes()) +
                               ") is missing");
    const auto& src = it->value();
    if (src.sizes() != dst.sizes())
      throw std::runtime_error(where + "tensor '" + name + "' has shape " + detail::format_sizes(src.sizes()) +
                               " in the file but the config expects " + detail::format_sizes(dst.sizes()));
    dst.copy_(src);
  };
  for (auto& p : model->named_parameters()) load_one(p.key(), p.value());
  for (auto& p : model->named_buffers()) load_one(p.key(), p.value());
  for (const auto& entry : weights)
    if (!expected.count(entry.key()))
      throw std::runtime_error(where + "tensor '" + entry.key() + "' (shape " +
                               detail::format_sizes(entry.value().sizes()) + ") is not part of the model");
  return model;
}

const std::vector<std::string> Seq2Seq::kRetrainableFields = {
    "dropout", "attention_dropout", "max_source_length", "max_target_length", "block_size", "pooled_lengths", "pooler"};

bool Seq2Seq::retrainable(const std::string& field) {
  return std::find(kRetrainableFields.begin(), kRetrainableFields.end(), field) != kRetrainableFields.end();
}

Seq2Seq Seq2Seq::from_pretrained(const std::string& dir, const ModelConfig& config) {
  config.validate();
  const Seq2Seq saved = Seq2Seq::load(dir);
  for (const auto& field : differing_fields(saved->config(), config)) {
    if (!retrainable(field))
      throw std::invalid_argument("Seq2Seq::from_pretrained: ModelConfig." + field + " differs from " +
                                  (std::filesystem::path(dir) / "config.json").string() +
                                  "'s; starting from pretrained weights, only " + detail::quoted_list(kRetrainableFields) +
                                  " may change");
  }
  // Pooling layers by the encoder layer they follow: encoder_poolers.<k> is the k-th pooling layer.
  const auto pooler_layers = [](const ModelConfig& c) {
    std::vector<int64_t> layers;
    for (size_t i = 0; i < c.pooled_lengths.size(); ++i)
      if (c.pooled_lengths[i] > 0) layers.push_back(static_cast<int64_t>(i));
    return layers;
  };
  const auto old_layers = pooler_layers(saved->config()), new_layers = pooler_layers(config);
  std::map<std::string, std::string> renamed;  // new pooler prefix -> old one
  for (size_t j = 0; j < new_layers.size(); ++j)
    for (size_t k = 0; k < old_layers.size(); ++k)
      if (new_layers[j] == old_layers[k])
        renamed["encoder_poolers." + std::to_string(j) + "."] = "encoder_poolers." + std::to_string(k) + ".";

  Seq2Seq model(config);
  const auto from = saved->named_parameters();
  const auto from_buffers = saved->named_buffers();
  torch::NoGradGuard no_grad;
  const auto fill = [&](const std::string& name, at::Tensor& dst) {
    std::string source = name;
    if (name.rfind("encoder_poolers.", 0) == 0) {
      const auto dot = name.find('.', std::string("encoder_poolers.").size());
      const auto it = renamed.find(name.substr(0, dot + 1));
      if (it == renamed.end()) return;  // a new pooling layer: as initialised
      source = it->second + name.substr(dot + 1);
    }
    const at::Tensor* src = from.find(source);
    if (!src) src = from_buffers.find(source);
    if (!src)
      throw std::invalid_argument("Seq2Seq::from_pretrained: " + dir + " has no tensor '" + source + "'");
    at::Tensor value = *src;
    if (name == "encoder_positions" || name == "decoder_positions")
      value = detail::fit_position_table(value, dst.size(0));  // (P, d) -> (rows, d)
    if (value.sizes() != dst.sizes())
      throw std::invalid_argument("Seq2Seq::from_pretrained: tensor '" + source + "' of " + dir + " has shape " +
                                  detail::format_sizes(value.sizes()) + ", the model needs " +
                                  detail::format_sizes(dst.sizes()));
    dst.copy_(value);
  };
  for (auto& p : model->named_parameters()) fill(p.key(), p.value());
  for (auto& p : model->named_buffers()) fill(p.key(), p.value());
  return model;
}

}  // namespace pyramidion
