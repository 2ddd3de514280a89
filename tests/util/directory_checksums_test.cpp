// Tests of checksums.json (src/util/directory_checksums.cpp): every file of an assembled
// directory is listed but the user-editable generation.json; one changed byte, a truncation or a
// swapped file is refused naming the file and both checksums; a directory without the list loads
// unchecked; a damaged list is refused.
#include "util/directory_checksums.h"

#include "support/test_support.h"
#include "support/train_fixtures.h"
#include "util/output_file.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using pyramidion::detail::verify_checksum;
using pyramidion::detail::verify_file_checksum;
using pyramidion_test::error_of;
using pyramidion_test::read_text;

// dir/ckpt with weights.pt (streamed in through the staging path, as a caller may), config.json
// and generation.json, and its checksums.json.
fs::path make_directory(const fs::path& dir) {
  pyramidion::detail::AtomicDirectory out("test", (dir / "ckpt").string());
  std::ofstream(fs::path(out.staging_path()) / "weights.pt", std::ios::binary) << std::string(100000, '\x01');
  out.write("config.json", "{\"d_model\": 32}\n");
  out.write("generation.json", "{\"beam_size\": 4}\n");
  pyramidion::detail::write_checksums(out);
  out.commit();
  return dir / "ckpt";
}

TEST(DirectoryChecksums, ListsEveryFileButGenerationJson) {
  const auto ckpt = make_directory(pyramidion_test::fresh_dir("checksums_list"));
  const auto list = nlohmann::json::parse(read_text(ckpt / "checksums.json"));
  EXPECT_EQ(list.at("format"), 1);
  EXPECT_EQ(list.at("files").size(), 2u);
  EXPECT_EQ(list.at("files").at("weights.pt").at("bytes"), 100000);
  EXPECT_EQ(list.at("files").at("config.json").at("bytes"), 16);
  EXPECT_FALSE(list.at("files").contains("generation.json")) << "users are told to edit it";
  EXPECT_NO_THROW(verify_file_checksum("test", ckpt.string(), "weights.pt"));
  EXPECT_NO_THROW(verify_checksum("test", ckpt.string(), "config.json", "{\"d_model\": 32}\n"));
  std::ofstream(ckpt / "generation.json") << "{\"beam_size\": 2}\n";
  EXPECT_NO_THROW(verify_file_checksum("test", ckpt.string(), "generation.json"));
}

TEST(DirectoryChecksums, AChangedByteOrATruncationIsRefusedNamingTheFile) {
  const auto ckpt = make_directory(pyramidion_test::fresh_dir("checksums_change"));
  const auto weights = (ckpt / "weights.pt").string();
  {
    std::fstream f(weights, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(51234);
    f.put('\x02');  // one byte, the size unchanged
  }
  const auto message = error_of<std::runtime_error>([&] { verify_file_checksum("Seq2Seq::load", ckpt.string(), "weights.pt"); });
  EXPECT_EQ(message.rfind("Seq2Seq::load: '" + weights + "' does not match checksums.json (100000 bytes with checksum ", 0), 0u)
      << message;
  EXPECT_CONTAINS(message, "written as 100000 bytes with checksum ");
  EXPECT_CONTAINS(message, "delete checksums.json to load it unchecked");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { verify_checksum("t", ckpt.string(), "config.json", "{\"d_model\": 3"); }),
                  "(13 bytes with checksum");
}

TEST(DirectoryChecksums, WithoutTheListFilesLoadUncheckedAndADamagedListIsRefused) {
  const auto ckpt = make_directory(pyramidion_test::fresh_dir("checksums_absent"));
  EXPECT_NO_THROW(verify_checksum("t", ckpt.string(), "unlisted.bin", "anything")) << "not listed: unchecked";
  std::ofstream(ckpt / "checksums.json") << "{\"format\": 1, \"files\": {\"weights.pt\": {\"bytes\": \"x\"}}}";
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { verify_file_checksum("t", ckpt.string(), "weights.pt"); }),
                  "checksums.json' is damaged");
  std::ofstream(ckpt / "checksums.json") << "{\"format\": 1, \"fil";
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { verify_file_checksum("t", ckpt.string(), "weights.pt"); }),
                  "checksums.json' is damaged");
  fs::remove(ckpt / "checksums.json");
  EXPECT_NO_THROW(verify_checksum("t", ckpt.string(), "weights.pt", "not the bytes")) << "an older directory";
}

// A checksums.json of a later format is not damaged: this version cannot read it, and says so (it
// was called "damaged", with advice to restore a good copy).
TEST(DirectoryChecksums, ANewerFormatIsNamedAsNewerNotDamaged) {
  const auto ckpt = make_directory(pyramidion_test::fresh_dir("checksums_newer"));
  std::ofstream(ckpt / "checksums.json") << "{\"format\": 2, \"files\": [\"a layout of the future\"]}";
  const auto message = error_of<std::runtime_error>([&] { verify_file_checksum("t", ckpt.string(), "weights.pt"); });
  EXPECT_CONTAINS(message, "t: '" + (ckpt / "checksums.json").string() + "': format 2 is newer than this version reads (1)");
  EXPECT_EQ(message.find("damaged"), std::string::npos) << message;
  std::ofstream(ckpt / "checksums.json") << "{\"format\": 0, \"files\": {}}";
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { verify_file_checksum("t", ckpt.string(), "weights.pt"); }),
                  "checksums.json' is damaged (format 0 is not 1)");
}

}  // namespace
