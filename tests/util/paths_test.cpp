// Tests of the checks of user-given paths (src/util/paths.cpp): an input that is not a readable
// file, an output whose directory is missing, and an output that is an input under another name
// (the same device and inode), each refused as bad input with the path in the message.
#include "util/paths.h"

#include "support/test_support.h"
#include "support/train_fixtures.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using pyramidion::detail::check_input_file;
using pyramidion::detail::check_not_an_input;
using pyramidion::detail::check_output_file;
using pyramidion::detail::same_file;
using pyramidion_test::error_of;

TEST(Paths, AnInputMustBeAReadableFile) {
  const auto dir = pyramidion_test::fresh_dir("paths_input");
  const auto file = (dir / "in.jsonl").string();
  std::ofstream(file) << "{}\n";
  EXPECT_NO_THROW(check_input_file("--input", file));
  EXPECT_NO_THROW(check_input_file("--input", "/dev/null"));  // a character device reads like a file
  EXPECT_EQ(error_of<std::invalid_argument>([&] { check_input_file("--input", (dir / "nope").string()); }),
            "--input = '" + (dir / "nope").string() + "': no such file");
  EXPECT_EQ(error_of<std::invalid_argument>([&] { check_input_file("--train", dir.string()); }),
            "--train = '" + dir.string() + "': is a directory, not a file");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { check_input_file("--input", file + "/x"); }),
                  "Not a directory");
}

TEST(Paths, SameFileComparesDeviceAndInodeNotNames) {
  const auto dir = pyramidion_test::fresh_dir("paths_same");
  const auto a = (dir / "a.jsonl").string(), b = (dir / "b.jsonl").string();
  std::ofstream(a) << "a\n";
  std::ofstream(b) << "a\n";  // same content, another file
  fs::create_hard_link(a, dir / "hard.jsonl");
  fs::create_symlink(a, dir / "soft.jsonl");
  EXPECT_TRUE(same_file(a, a));
  EXPECT_TRUE(same_file(a, (dir / "." / "a.jsonl").string()));
  EXPECT_TRUE(same_file(a, (dir / "hard.jsonl").string()));
  EXPECT_TRUE(same_file(a, (dir / "soft.jsonl").string()));
  EXPECT_FALSE(same_file(a, b));
  EXPECT_FALSE(same_file(a, (dir / "missing").string()));
  EXPECT_FALSE(same_file((dir / "missing").string(), (dir / "missing").string())) << "nothing exists to destroy";
}

TEST(Paths, AnOutputThatIsAnInputIsRefusedNamingBoth) {
  const auto dir = pyramidion_test::fresh_dir("paths_output");
  const auto in = (dir / "in.jsonl").string(), other = (dir / "other.jsonl").string();
  std::ofstream(in) << "x\n";
  std::ofstream(other) << "x\n";
  fs::create_symlink(in, dir / "link.jsonl");
  const auto link = (dir / "link.jsonl").string();
  EXPECT_EQ(error_of<std::invalid_argument>([&] { check_not_an_input("--output", link, {{"--references", other}, {"--input", in}}); }),
            "--output = '" + link + "' is the same file as --input = '" + in + "'; writing it would destroy that input");
  EXPECT_NO_THROW(check_not_an_input("--output", other, {{"--input", in}}));
  EXPECT_NO_THROW(check_not_an_input("--output", (dir / "new.jsonl").string(), {{"--input", in}}));
  EXPECT_NO_THROW(check_not_an_input("--output", "-", {{"--input", "-"}})) << "standard streams are not files";
  EXPECT_NO_THROW(check_not_an_input("--json", "", {{"--input", in}})) << "no output asked for";
}

TEST(Paths, AnOutputNeedsAnExistingDirectory) {
  const auto dir = pyramidion_test::fresh_dir("paths_outdir");
  EXPECT_NO_THROW(check_output_file("--output", (dir / "new.jsonl").string()));
  EXPECT_NO_THROW(check_output_file("--output", "-"));
  const auto missing = (dir / "nodir" / "o.jsonl").string();
  EXPECT_EQ(error_of<std::invalid_argument>([&] { check_output_file("--output", missing); }),
            "--output = '" + missing + "': the directory '" + (dir / "nodir").string() + "' does not exist");
  EXPECT_EQ(error_of<std::invalid_argument>([&] { check_output_file("--output", dir.string()); }),
            "--output = '" + dir.string() + "': is a directory");
  std::ofstream(dir / "file") << "x";
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { check_output_file("--json", (dir / "file" / "r.json").string()); }),
                  "is not a directory");
}

}  // namespace
