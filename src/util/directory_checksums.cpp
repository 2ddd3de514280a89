// checksums.json of model directories and checkpoints (util/directory_checksums.h).
#include "util/directory_checksums.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <stdexcept>

#include "util/checksum.h"

namespace pyramidion {
namespace detail {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kFormat = 1;

// The entry of `name` in dir/checksums.json; nullopt when there is no checksums.json or it does
// not list the file.
std::optional<FileChecksum> recorded(const std::string& who, const std::string& dir, const std::string& name) {
  const fs::path path = fs::path(dir) / kChecksumsFile;
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  const std::string text = read_file(who, path.string());
  try {
    const json root = json::parse(text);
    const auto& format = root.at("format");
    // A later version's file is not damaged: this version cannot read it (checked before the
    // rest, whose layout that version may have changed).
    if (format.is_number_integer() && format.get<int64_t>() > kFormat)
      throw std::invalid_argument("format " + format.dump() + " is newer than this version reads (" +
                                  std::to_string(kFormat) + ")");
    if (!format.is_number_integer() || format.get<int64_t>() != kFormat)
      throw std::runtime_error("format " + format.dump() + " is not " + std::to_string(kFormat));
    const auto& files = root.at("files");
    if (!files.contains(name)) return std::nullopt;
    const auto& entry = files.at(name);
    return FileChecksum{entry.at("bytes").get<int64_t>(), entry.at("checksum").get<std::string>()};
  } catch (const std::invalid_argument& e) {  // the newer format above (nlohmann's errors are not one)
    throw std::runtime_error(who + ": '" + path.string() + "': " + e.what() +
                             "; read it with a newer pyramidion, or delete the file to load the directory unchecked");
  } catch (const std::exception& e) {  // nlohmann's errors, and the format above
    throw std::runtime_error(who + ": '" + path.string() + "' is damaged (" + e.what() +
                             "); restore the directory from a good copy, or delete the file to load it unchecked");
  }
}

// Throws unless `actual` is what checksums.json recorded (`expected`; none: unchecked).
void compare(const std::string& who, const std::string& dir, const std::string& name,
             const std::optional<FileChecksum>& expected, const FileChecksum& actual) {
  if (!expected || (expected->bytes == actual.bytes && expected->checksum == actual.checksum)) return;
  const std::string path = (fs::path(dir) / name).string();
  throw std::runtime_error(who + ": '" + path + "' does not match " + kChecksumsFile + " (" +
                           std::to_string(actual.bytes) + " bytes with checksum " + actual.checksum + ", written as " +
                           std::to_string(expected->bytes) + " bytes with checksum " + expected->checksum +
                           "): the file changed after it was written (a damaged disk or copy, or an edit); restore "
                           "it from a good copy (or delete " + kChecksumsFile + " to load it unchecked)");
}

}  // namespace

void write_checksums(AtomicDirectory& dir) {
  json files = json::object();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir.staging_path(), ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name == "generation.json" || name == kChecksumsFile) continue;
    const auto sum = checksum_file("write_checksums", entry.path().string());
    files[name] = {{"bytes", sum.bytes}, {"checksum", sum.checksum}};
  }
  if (ec) throw std::runtime_error("write_checksums: cannot list '" + dir.staging_path() + "': " + ec.message());
  dir.write(kChecksumsFile, json{{"format", kFormat}, {"files", files}}.dump(2) + "\n");
}

void verify_checksum(const std::string& who, const std::string& dir, const std::string& name, std::string_view bytes) {
  Checksum sum;
  sum.update(bytes);
  compare(who, dir, name, recorded(who, dir, name), FileChecksum{static_cast<int64_t>(bytes.size()), sum.hex()});
}

void verify_file_checksum(const std::string& who, const std::string& dir, const std::string& name) {
  const auto expected = recorded(who, dir, name);
  if (!expected) return;  // unchecked: the file is not read at all
  compare(who, dir, name, expected, checksum_file(who, (fs::path(dir) / name).string()));
}

}  // namespace detail
}  // namespace pyramidion
