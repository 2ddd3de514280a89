// Private: the layout of a dataset directory (include/pyramidion/dataset.h), shared by its writer
// (preprocess.cpp) and its reader (dataset.cpp). docs/data.md describes it for users.
#pragma once

#include <string>

namespace pyramidion {
namespace detail {

constexpr const char* kDatasetFormat = "pyramidion-dataset";
/// Raised whenever a reader of an older version could misread the files.
constexpr int kDatasetVersion = 1;
/// The name the manifest gives the checksum of util/checksum.h.
constexpr const char* kDatasetChecksum = "pyramidion-checksum64";
constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kDatasetTokenizerFile = "tokenizer.model";

/// The files of a split: "<split>.<kind>".
constexpr const char* kSourceKind = "source";  // source token ids, token_bytes each
constexpr const char* kTargetKind = "target";  // target token ids
constexpr const char* kIndexKind = "index";    // int64: source offsets, target offsets, id offsets (n + 1 each)
constexpr const char* kIdsKind = "ids";        // the ids' bytes, back to back
inline std::string split_file(const std::string& split, const char* kind) { return split + "." + kind; }

/// Token width: 2 bytes when every id fits in uint16.
inline int token_bytes_for(int64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

}  // namespace detail
}  // namespace pyramidion
