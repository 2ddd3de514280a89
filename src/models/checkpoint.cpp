// The model directory (models/checkpoint.h): Seq2Seq::save and Seq2Seq::load.
#include "models/checkpoint.h"

#include <ATen/core/Dict.h>
#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <c10/util/Exception.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/serialize.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/directory_checksums.h"
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

}  // namespace detail

namespace {

// torch::pickle_load(bytes), read through a bounds-checked adapter: pickle_load's own reader
// copies whatever range the zip's records ask for, so a damaged weights.pt read past the buffer
// (an ASan heap overflow that tests/fuzz checkpoint found); MemoryReadAdapter clamps every read
// to the bytes, and the same file is then the c10::Error "failed finding central directory".
c10::IValue unpickle(const std::vector<char>& bytes) {
  caffe2::serialize::PyTorchStreamReader reader(
      std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), static_cast<off_t>(bytes.size())));
  return torch::jit::readArchiveAndTensors("data", "", "", std::nullopt, std::nullopt, std::nullopt, reader);
}

}  // namespace

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
    weights = c10::impl::toTypedDict<std::string, at::Tensor>(unpickle(bytes).toGenericDict());
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

}  // namespace pyramidion
