// Dataset (see include/pyramidion/dataset.h): opening and checking a dataset directory, and its
// splits as memory-mapped TokenizedCorpus storage (data/corpus_storage.h).
#include <pyramidion/dataset.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "data/corpus_storage.h"
#include "data/dataset_format.h"
#include "util/output_file.h"
#include "util/checksum.h"
#include "util/mapped_file.h"

namespace pyramidion {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool little_endian_host() {
  const uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

std::runtime_error dataset_error(const fs::path& file, const std::string& what) {
  return std::runtime_error("dataset: '" + file.string() + "' " + what);
}

template <typename T>
T field(const json& object, const char* key, const fs::path& manifest) {
  const auto it = object.find(key);
  if (it == object.end()) throw dataset_error(manifest, std::string("has no \"") + key + "\"");
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw dataset_error(manifest, std::string("has a \"") + key + "\" of the wrong type (" + it->type_name() + ")");
  }
}

SplitStats read_stats(const json& entry, const fs::path& manifest) {
  SplitStats s;
  s.documents = field<int64_t>(entry, "documents", manifest);
  s.skipped = field<int64_t>(entry, "skipped", manifest);
  s.truncated_sources = field<int64_t>(entry, "truncated_sources", manifest);
  s.truncated_targets = field<int64_t>(entry, "truncated_targets", manifest);
  s.source_tokens = field<int64_t>(entry, "source_tokens", manifest);
  s.target_tokens = field<int64_t>(entry, "target_tokens", manifest);
  s.skip_reasons = field<std::vector<std::string>>(entry, "skip_reasons", manifest);
  for (const int64_t count : {s.documents, s.skipped, s.truncated_sources, s.truncated_targets, s.source_tokens,
                              s.target_tokens})
    if (count < 0) throw dataset_error(manifest, "has a negative count (" + std::to_string(count) + ")");
  if (s.documents > (int64_t{1} << 40)) throw dataset_error(manifest, "claims " + std::to_string(s.documents) + " documents");
  return s;
}

/// Every offset array starts at 0, never decreases and ends at its file's length.
void check_offsets(const int64_t* offsets, int64_t documents, int64_t length, const fs::path& index,
                   const std::string& what, const fs::path& data) {
  if (offsets[0] != 0) throw dataset_error(index, "is corrupt: its " + what + " offsets do not start at 0");
  for (int64_t i = 0; i < documents; ++i) {
    if (offsets[i + 1] < offsets[i] || offsets[i + 1] > length)
      throw dataset_error(index, "points past the end of '" + data.string() + "': document " + std::to_string(i) +
                                     "'s " + what + " is [" + std::to_string(offsets[i]) + ", " +
                                     std::to_string(offsets[i + 1]) + ") of " + std::to_string(length));
  }
  if (offsets[documents] != length)
    throw dataset_error(index, "does not cover '" + data.string() + "': its " + what + " offsets end at " +
                                   std::to_string(offsets[documents]) + " of " + std::to_string(length));
}

}  // namespace

struct Dataset::Impl {
  std::string path;
  std::optional<Tokenizer> tokenizer;
  std::string tokenizer_checksum;
  int64_t max_source = 0, max_target = 0;
  json manifest;
  std::map<std::string, SplitStats> stats;
  std::map<std::string, std::shared_ptr<TokenizedCorpus::Storage>> storage;
};

std::string tokenizer_checksum(const Tokenizer& tokenizer) {
  detail::Checksum sum;
  sum.update(tokenizer.serialized());
  return sum.hex();
}

namespace {

/// Maps one split's files and checks them against the manifest entry.
std::shared_ptr<TokenizedCorpus::Storage> map_split(const fs::path& dir, const std::string& split, const json& entry,
                                                    const SplitStats& stats, int token_bytes,
                                                    const fs::path& manifest) {
  const json files = field<json>(entry, "files", manifest);
  auto storage = std::make_shared<TokenizedCorpus::Storage>();
  storage->mapped = true;
  storage->token_bytes = token_bytes;
  storage->documents = stats.documents;
  std::map<std::string, const detail::MappedFile*> by_kind;
  storage->files.reserve(4);  // by_kind points into it
  for (const char* kind : {detail::kSourceKind, detail::kTargetKind, detail::kIndexKind, detail::kIdsKind}) {
    const std::string name = detail::split_file(split, kind);
    const fs::path file = dir / name;
    const auto it = files.find(name);
    if (it == files.end()) throw dataset_error(manifest, "lists no file '" + name + "' for split '" + split + "'");
    const int64_t bytes = field<int64_t>(*it, "bytes", manifest);
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) throw dataset_error(file, "is missing (the manifest lists it)");
    const bool tokens = kind == detail::kSourceKind || kind == detail::kTargetKind;
    storage->files.emplace_back(file.string(), tokens ? detail::MappedFile::Access::random
                                                      : detail::MappedFile::Access::sequential);
    const detail::MappedFile& mapped = storage->files.back();
    if (static_cast<int64_t>(mapped.size()) != bytes)
      throw dataset_error(file, "has " + std::to_string(mapped.size()) + " bytes; the manifest says " +
                                    std::to_string(bytes) + ": it was truncated or replaced");
    if (!tokens) {  // small: checked whole at every open
      detail::Checksum sum;
      sum.update(mapped.data(), mapped.size());
      if (sum.hex() != field<std::string>(*it, "checksum", manifest))
        throw dataset_error(file, "does not match its checksum in the manifest: it was changed");
    }
    by_kind[kind] = &mapped;
  }
  const int64_t n = stats.documents;
  const fs::path index = dir / detail::split_file(split, detail::kIndexKind);
  if (static_cast<int64_t>(by_kind[detail::kIndexKind]->size()) != 3 * (n + 1) * 8)
    throw dataset_error(index, "has " + std::to_string(by_kind[detail::kIndexKind]->size()) + " bytes; " +
                                   std::to_string(n) + " documents need " + std::to_string(3 * (n + 1) * 8));
  const auto* offsets = reinterpret_cast<const int64_t*>(by_kind[detail::kIndexKind]->data());  // page-aligned
  storage->source_offsets = offsets;
  storage->target_offsets = offsets + (n + 1);
  storage->id_offsets = offsets + 2 * (n + 1);
  storage->source = by_kind[detail::kSourceKind]->data();
  storage->target = by_kind[detail::kTargetKind]->data();
  storage->ids = reinterpret_cast<const char*>(by_kind[detail::kIdsKind]->data());
  const auto tokens_of = [&](const char* kind) {
    const size_t bytes = by_kind[kind]->size();
    if (bytes % static_cast<size_t>(token_bytes) != 0)
      throw dataset_error(dir / detail::split_file(split, kind),
                          "has " + std::to_string(bytes) + " bytes, not a whole number of " +
                              std::to_string(token_bytes) + "-byte tokens");
    return static_cast<int64_t>(bytes) / token_bytes;
  };
  check_offsets(storage->source_offsets, n, tokens_of(detail::kSourceKind), index, "source",
                dir / detail::split_file(split, detail::kSourceKind));
  check_offsets(storage->target_offsets, n, tokens_of(detail::kTargetKind), index, "target",
                dir / detail::split_file(split, detail::kTargetKind));
  check_offsets(storage->id_offsets, n, static_cast<int64_t>(by_kind[detail::kIdsKind]->size()), index, "id",
                dir / detail::split_file(split, detail::kIdsKind));
  return storage;
}

}  // namespace

Dataset Dataset::open(const std::string& dir_name) {
  const fs::path dir(dir_name);
  const fs::path manifest_path = dir / detail::kManifestFile;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw dataset_error(dir, "is not a directory");
  if (!fs::is_regular_file(manifest_path, ec))
    throw dataset_error(dir, std::string("is not a complete dataset: it has no ") + detail::kManifestFile +
                                 " (make one with pyramidion-preprocess)");
  if (!little_endian_host()) throw std::runtime_error("dataset: the files are little-endian; this host is not");
  auto impl = std::make_shared<Impl>();
  impl->path = dir_name;
  json& m = impl->manifest;
  try {
    m = json::parse(detail::read_file("dataset", manifest_path.string()));
  } catch (const json::exception& e) {  // syntax errors, and numbers no double holds (1e999)
    throw dataset_error(manifest_path, std::string("is not valid JSON: ") + e.what());
  }
  if (!m.is_object() || m.value("format", "") != detail::kDatasetFormat)
    throw dataset_error(manifest_path, std::string("is not a pyramidion dataset manifest (no \"format\": \"") +
                                           detail::kDatasetFormat + "\")");
  const int64_t version = field<int64_t>(m, "version", manifest_path);
  if (version != detail::kDatasetVersion)
    throw dataset_error(manifest_path, "has format version " + std::to_string(version) + "; this pyramidion reads " +
                                           std::to_string(detail::kDatasetVersion) + ": preprocess the data again");
  if (field<std::string>(m, "checksum", manifest_path) != detail::kDatasetChecksum)
    throw dataset_error(manifest_path, "uses an unknown checksum");
  const int token_bytes = static_cast<int>(field<int64_t>(m, "token_bytes", manifest_path));
  if (token_bytes != 2 && token_bytes != 4)
    throw dataset_error(manifest_path, "has token_bytes " + std::to_string(token_bytes) + " (2 or 4)");
  const json tok = field<json>(m, "tokenizer", manifest_path);
  const fs::path tokenizer_path = dir / field<std::string>(tok, "file", manifest_path);
  impl->tokenizer = Tokenizer::load(tokenizer_path.string());
  impl->tokenizer_checksum = field<std::string>(tok, "checksum", manifest_path);
  if (pyramidion::tokenizer_checksum(*impl->tokenizer) != impl->tokenizer_checksum)
    throw dataset_error(tokenizer_path, "is not the tokenizer the dataset was made with (its checksum differs from "
                                        "the manifest's)");
  if (detail::token_bytes_for(impl->tokenizer->vocab_size()) > token_bytes)
    throw dataset_error(manifest_path, "has " + std::to_string(token_bytes) + "-byte tokens for a vocabulary of " +
                                           std::to_string(impl->tokenizer->vocab_size()));
  impl->max_source = field<int64_t>(m, "max_source_length", manifest_path);
  impl->max_target = field<int64_t>(m, "max_target_length", manifest_path);
  const json splits = field<json>(m, "splits", manifest_path);
  if (!splits.is_object()) throw dataset_error(manifest_path, "has \"splits\" that are not an object");
  for (const auto& [split, entry] : splits.items()) {
    impl->stats[split] = read_stats(entry, manifest_path);
    impl->storage[split] = map_split(dir, split, entry, impl->stats[split], token_bytes, manifest_path);
    const auto& s = *impl->storage[split];
    if (s.source_offsets[s.documents] != impl->stats[split].source_tokens ||
        s.target_offsets[s.documents] != impl->stats[split].target_tokens)
      throw dataset_error(manifest_path, "counts other token totals for split '" + split + "' than its index holds");
  }
  Dataset d;
  d.impl_ = std::move(impl);
  return d;
}

const std::string& Dataset::path() const { return impl_->path; }
const Tokenizer& Dataset::tokenizer() const { return *impl_->tokenizer; }
const std::string& Dataset::tokenizer_checksum() const { return impl_->tokenizer_checksum; }
int64_t Dataset::max_source_length() const { return impl_->max_source; }
int64_t Dataset::max_target_length() const { return impl_->max_target; }

std::vector<std::string> Dataset::splits() const {
  std::vector<std::string> names;
  for (const auto& [name, stats] : impl_->stats) names.push_back(name);
  return names;
}

bool Dataset::has_split(const std::string& name) const { return impl_->stats.count(name) > 0; }

const SplitStats& Dataset::stats(const std::string& name) const {
  if (!has_split(name)) {
    std::string names;
    for (const auto& s : splits()) names += (names.empty() ? "" : ", ") + s;
    throw std::invalid_argument("dataset: '" + impl_->path + "' has no split '" + name + "' (it has: " + names + ")");
  }
  return impl_->stats.at(name);
}

TokenizedCorpus Dataset::split(const std::string& name) const {
  stats(name);  // the error for an unknown name
  return TokenizedCorpus(impl_->storage.at(name));
}

void Dataset::verify() const {
  const fs::path dir(impl_->path);
  for (const auto& [split, entry] : impl_->manifest.at("splits").items()) {
    for (const auto& [name, info] : entry.at("files").items()) {
      const auto sum = detail::checksum_file("dataset", (dir / name).string());
      if (sum.checksum != info.at("checksum").get<std::string>())
        throw dataset_error(dir / name, "does not match its checksum in the manifest: it was changed");
    }
  }
}

}  // namespace pyramidion
