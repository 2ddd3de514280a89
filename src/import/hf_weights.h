// Private: the tensors of a Hugging Face model directory, read by name.
//
// The formats transformers writes (save_pretrained) and the Hub holds:
//   model.safetensors                      one file (the safetensors format: an 8-byte little-endian
//                                          header size, a JSON header of name -> {dtype, shape,
//                                          data_offsets}, then the raw data);
//   model.safetensors.index.json + shards  {"weight_map": {name -> shard file name}};
//   pytorch_model.bin                      torch.save of a state dict (a zip of pickle and data);
//   pytorch_model.bin.index.json + shards  the same index over .bin shards.
// The first one present is read, in that order. Tensors are converted to float32 when asked for,
// so that a checkpoint's unused tensors of other types cost nothing.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pyramidion {
namespace detail {

class HfWeights {
 public:
  /// Opens the weights of the Hugging Face model directory `dir`. Throws std::invalid_argument
  /// naming the directory and the files looked for when none is there, and naming the file for a
  /// damaged one (a truncated file, a header that does not parse, a tensor whose bytes lie
  /// outside the file or disagree with its shape and type, a shard name outside the directory).
  explicit HfWeights(const std::string& dir);
  ~HfWeights();
  HfWeights(HfWeights&&) noexcept;
  HfWeights& operator=(HfWeights&&) noexcept;

  /// What was read: "model.safetensors", "model.safetensors.index.json (3 shards)", ...
  const std::string& source() const { return source_; }
  /// Every tensor name, sorted.
  std::vector<std::string> names() const;
  bool has(const std::string& name) const;
  /// The shape of tensor `name` (std::invalid_argument when absent).
  std::vector<int64_t> shape(const std::string& name) const;
  /// Tensor `name` as a float32 CPU tensor of its own (std::invalid_argument when absent or of a
  /// type that is not a floating point one: F64, F32, F16, BF16).
  at::Tensor get(const std::string& name) const;

  struct File;  // one weights file (src/import/hf_weights.cpp)

 private:
  struct Entry {
    const File* file = nullptr;
    std::string dtype;             // the safetensors name: "F32", "BF16", ... ("torch" for .bin)
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;   // byte range in the file's data (safetensors)
    at::Tensor tensor;             // the tensor itself (.bin)
  };
  std::string dir_;
  std::string source_;
  std::vector<std::unique_ptr<File>> files_;
  std::map<std::string, Entry> entries_;
  void add_file(const std::string& file_name, const std::vector<std::string>* only);
};

}  // namespace detail
}  // namespace pyramidion
