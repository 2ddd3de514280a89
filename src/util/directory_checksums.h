// Private: checksums.json, the list of a model directory's or checkpoint's files with their sizes
// and checksums (util/checksum.h), written when the directory is assembled and checked when a
// file of it is read, so that bit rot, a truncated copy or a swapped file is refused by name
// instead of loading (LibTorch does not check the CRCs of its archives: overwritten floats in
// weights.pt load silently).
//
//   {"format": 1, "files": {"weights.pt": {"bytes": 234635, "checksum": "5c0f..."}, ...}}
//
// generation.json is left out: it holds search defaults that users are told to edit. A directory
// without checksums.json (written before it existed, or with it removed on purpose) loads
// unchecked.
#pragma once

#include <string>
#include <string_view>

#include "util/output_file.h"

namespace pyramidion {
namespace detail {

constexpr const char* kChecksumsFile = "checksums.json";

/// Writes checksums.json into `dir` (before commit()) for every regular file already in its
/// staging directory except generation.json.
void write_checksums(AtomicDirectory& dir);

/// Checks `bytes`, the content of the file `name` of directory `dir`, against checksums.json.
/// Throws std::runtime_error "<who>: '<dir>/<name>' does not match checksums.json (...)" naming
/// both sizes and checksums on a mismatch, and when checksums.json is not valid. A file that
/// checksums.json does not list, or a directory without checksums.json, passes.
void verify_checksum(const std::string& who, const std::string& dir, const std::string& name, std::string_view bytes);

/// verify_checksum() of the file as it is on disk (read in blocks).
void verify_file_checksum(const std::string& who, const std::string& dir, const std::string& name);

}  // namespace detail
}  // namespace pyramidion
