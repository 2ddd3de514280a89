// Tests of the one file writer (src/util/output_file.cpp): complete files or none, the previous
// version kept on failure, errors that name the path and the OS reason, and the temporary names a
// killed writer leaves, which remove_temporaries() recognises (and nothing else).
#include "util/output_file.h"

#include "support/test_support.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using pyramidion::detail::AtomicDirectory;
using pyramidion::detail::OutputFile;
using pyramidion_test::die;
using pyramidion_test::error_of;
using pyramidion_test::FileSizeLimit;
using pyramidion_test::killed_while;
using pyramidion_test::read_text;

fs::path fresh(const std::string& name) {
  const auto dir = fs::path(::testing::TempDir()) / ("pyramidion_atomic_" + name + "_" + std::to_string(::getpid()));
  pyramidion::detail::remove_tree(fs::path(dir).string());
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(RemoveTree, RemovesNestedDirectoriesAndLinksWithoutFollowingThem) {
  const auto dir = fresh("tree");
  const auto outside = dir / "outside";
  fs::create_directories(outside);
  pyramidion::detail::write_output_file("test", (outside / "keep.txt").string(), "kept");
  const auto tree = dir / "tree";
  fs::create_directories(tree / "a" / "b" / "c");
  pyramidion::detail::write_output_file("test", (tree / "a" / "b" / "c" / "f").string(), "x");
  pyramidion::detail::write_output_file("test", (tree / "top").string(), "y");
  fs::create_directory_symlink(outside, tree / "a" / "link");
  EXPECT_EQ(pyramidion::detail::remove_tree(tree.string()), 0);
  EXPECT_FALSE(fs::exists(tree));
  EXPECT_EQ(read_text(outside / "keep.txt"), "kept") << "a link is removed, not followed";
  EXPECT_EQ(pyramidion::detail::remove_tree((dir / "missing").string()), 0) << "nothing to remove is no error";
  EXPECT_EQ(pyramidion::detail::remove_tree((outside / "keep.txt").string()), 0) << "a plain file";
  EXPECT_FALSE(fs::exists(outside / "keep.txt"));
  EXPECT_EQ(pyramidion::detail::remove_tree((dir / "missing" / "x").string()), 0);
  EXPECT_EQ(pyramidion::detail::remove_tree(std::string(5000, 'a')), ENAMETOOLONG) << "the errno comes back";
}

TEST(OutputFile, WritesReplacesAndLeavesNoTemporary) {
  const auto dir = fresh("write");
  const auto path = (dir / "a.json").string();
  pyramidion::detail::write_output_file("test", path, "one");
  pyramidion::detail::write_output_file("test", path, "two");
  EXPECT_EQ(read_text(path), "two");
  OutputFile pieces("test", (dir / "b.txt").string());
  pieces.write("x");
  pieces.flush();
  pieces.write("y");
  EXPECT_FALSE(fs::exists(dir / "b.txt")) << "published only at commit";
  pieces.commit();
  EXPECT_EQ(read_text(dir / "b.txt"), "xy");
  EXPECT_EQ(entries(dir), (std::vector<std::string>{"a.json", "b.txt"}));
  {
    OutputFile abandoned("test", (dir / "c.txt").string());
    abandoned.write("never");
  }
  EXPECT_EQ(entries(dir), (std::vector<std::string>{"a.json", "b.txt"})) << "an uncommitted file leaves nothing";
}

TEST(OutputFile, AFullDiskNamesThePathAndTheReasonAndKeepsTheOldFile) {
  const auto dir = fresh("full");
  const auto path = (dir / "report.md").string();
  pyramidion::detail::write_output_file("test", path, "the old report");
  std::string message;
  {
    FileSizeLimit limit(1024);
    message = error_of<std::runtime_error>(
        [&] { pyramidion::detail::write_output_file("bench", path, std::string(4096, 'x')); });
  }
  EXPECT_EQ(message, "bench: cannot write '" + path + "': File too large");
  EXPECT_EQ(read_text(path), "the old report");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"report.md"});
  EXPECT_NE(error_of<std::runtime_error>([&] {
              pyramidion::detail::write_output_file("test", (dir / "no" / "x").string(), "x");
            }).find("'" + (dir / "no" / "x").string() + "': No such file or directory"),
            std::string::npos);
}

TEST(OutputFile, KeepAsPartialHoldsWhatWasWritten) {
  const auto dir = fresh("partial");
  OutputFile file("test", (dir / "out.jsonl").string());
  file.write("{\"a\": 1}\n");
  file.flush();
  EXPECT_EQ(file.keep_as_partial(), (dir / ".out.jsonl.partial").string());
  EXPECT_EQ(read_text(dir / ".out.jsonl.partial"), "{\"a\": 1}\n");
  EXPECT_EQ(entries(dir), std::vector<std::string>{".out.jsonl.partial"});
}

TEST(OutputFile, KeepAsPartialKeepsOnlyWhatWasFlushedAndNoCutPiece) {
  const auto dir = fresh("partial_cut");
  {
    OutputFile file("test", (dir / "out.jsonl").string());
    file.write("{\"a\": 1}\n");
    file.flush();
    std::string message;
    {
      FileSizeLimit limit(1024);  // the disk fills up in the middle of the next piece
      message = error_of<std::runtime_error>([&] { file.write(std::string(4096, 'x')); });
    }
    EXPECT_EQ(message, "test: cannot write '" + (dir / "out.jsonl").string() + "': File too large");
    EXPECT_EQ(file.keep_as_partial(), (dir / ".out.jsonl.partial").string());
  }
  EXPECT_EQ(read_text(dir / ".out.jsonl.partial"), "{\"a\": 1}\n");
  {
    OutputFile nothing("test", (dir / "empty.jsonl").string());
    nothing.write("never flushed");
    EXPECT_EQ(nothing.keep_as_partial(), "") << "nothing complete to keep";
  }
  EXPECT_EQ(entries(dir), std::vector<std::string>{".out.jsonl.partial"});
}

TEST(AtomicDirectory, PublishesWholeAndReplacesAnOldOne) {
  const auto dir = fresh("dir");
  const auto path = (dir / "step-000004").string();
  {
    AtomicDirectory d("test", path);
    d.write("weights.pt", "old");
    d.commit();
  }
  {
    AtomicDirectory d("test", path + "/");  // a trailing separator names the same directory
    d.write("weights.pt", "new");
    d.write("config.json", "{}");
    EXPECT_EQ(read_text(fs::path(path) / "weights.pt"), "old") << "the old one stays until commit";
    d.commit();
  }
  EXPECT_EQ(read_text(fs::path(path) / "weights.pt"), "new");
  EXPECT_EQ(entries(path), (std::vector<std::string>{"config.json", "weights.pt"}));
  EXPECT_EQ(entries(dir), std::vector<std::string>{"step-000004"}) << "no temporary or set-aside directory left";
  {
    AtomicDirectory abandoned("test", (dir / "step-000008").string());
    abandoned.write("weights.pt", "x");
  }
  EXPECT_EQ(entries(dir), std::vector<std::string>{"step-000004"});
  std::string message;
  {
    FileSizeLimit limit(1024);
    AtomicDirectory d("train: checkpoint", (dir / "step-000012").string());
    message = error_of<std::runtime_error>([&] { d.write("optimizer.pt", std::string(4096, 'x')); });
  }
  EXPECT_EQ(message, "train: checkpoint: cannot write '" + (dir / "step-000012" / "optimizer.pt").string() +
                         "': File too large");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"step-000004"});
}

TEST(Temporaries, EveryNameAKilledWriterLeavesIsRecognisedAndNothingElse) {
  const auto dir = fresh("killed");
  std::ofstream(dir / "keep.json") << "{}";
  std::ofstream(dir / ".keep.jsonl.partial") << "kept on purpose";
  std::ofstream(dir / ".hidden-by-the-user") << "x";
  fs::create_directories(dir / "step-000004");
  killed_while([&] {
    OutputFile f("test", (dir / "train_config.json").string());
    f.write("half");
    die();
  });
  killed_while([&] {
    AtomicDirectory d("test", (dir / "step-000008").string());
    d.write("weights.pt", "half a checkpoint");
    die();
  });
  // What AtomicDirectory::commit and discard_directory leave when killed between setting a
  // directory aside and removing it.
  fs::create_directories(dir / ".step-000002.old-Ab12Cd" / "sub");
  const auto leftovers = [&] {
    std::vector<std::string> found;
    for (const auto& name : entries(dir))
      if (pyramidion::detail::is_temporary_name(name)) found.push_back(name);
    return found;
  };
  EXPECT_EQ(leftovers().size(), 3u) << "a file, a directory and a set-aside directory";
  // The temporaries of one path only, then all of them.
  EXPECT_EQ(pyramidion::detail::remove_temporaries_of((dir / "train_config.json").string()), 1);
  EXPECT_EQ(pyramidion::detail::remove_temporaries_of((dir / "train_config").string()), 0);
  EXPECT_EQ(leftovers().size(), 2u);
  EXPECT_EQ(pyramidion::detail::remove_temporaries(dir.string()), 2);
  EXPECT_EQ(entries(dir),
            (std::vector<std::string>{".hidden-by-the-user", ".keep.jsonl.partial", "keep.json", "step-000004"}));
  for (const std::string name : {".a.tmp-12345", ".a.tmp-1234567", ".a.old-12 456", "a.tmp-123456", ".tmp-123456"})
    EXPECT_FALSE(pyramidion::detail::is_temporary_name(name)) << name;
  EXPECT_TRUE(pyramidion::detail::is_temporary_name("..step-000004.partial.tmp-Q1w2E3"));
}

TEST(Temporaries, DiscardDirectoryRemovesItWhole) {
  const auto dir = fresh("discard");
  fs::create_directories(dir / "step-000002" / "sub");
  std::ofstream(dir / "step-000002" / "sub" / "w") << "x";
  EXPECT_TRUE(pyramidion::detail::discard_directory((dir / "step-000002").string()));
  EXPECT_TRUE(entries(dir).empty());
}

TEST(AppendToFile, AppendsAndNamesThePathOnError) {
  const auto dir = fresh("append");
  const auto path = (dir / "metrics.jsonl").string();
  pyramidion::detail::append_to_file("train", path, "a\n");
  pyramidion::detail::append_to_file("train", path, "b\n");
  EXPECT_EQ(read_text(path), "a\nb\n");
  EXPECT_EQ(error_of<std::runtime_error>([&] { pyramidion::detail::append_to_file("train", dir.string(), "x"); }),
            "train: cannot open '" + dir.string() + "': Is a directory");
}

// ---- paths that are not regular files (STYLE.md rule 15) -------------------------------------------
// They used to be replaced by a regular file: a FIFO or a device node became a file holding the
// output (nothing reached the reader or the device; /dev/null itself, for root), a link became a
// file with its target left as it was, and /dev/fd/N failed.

TEST(OutputFile, ANamedPipeIsWrittenThroughInOrderAndStaysAPipe) {
  const auto dir = fresh("fifo");
  const auto fifo = (dir / "pipe").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string received;
  std::thread reader([&] {
    const int fd = ::open(fifo.c_str(), O_RDONLY);
    received = pyramidion_test::read_until_closed(fd);
    ::close(fd);
  });
  {
    OutputFile out("test", fifo);
    EXPECT_TRUE(out.through());
    for (int i = 0; i < 200; ++i) {
      out.write("line " + std::to_string(i) + "\n");
      out.flush();
    }
    out.commit();
  }
  reader.join();
  std::string expected;
  for (int i = 0; i < 200; ++i) expected += "line " + std::to_string(i) + "\n";
  EXPECT_EQ(received, expected);
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the pipe was replaced";
  EXPECT_EQ(entries(dir), std::vector<std::string>{"pipe"}) << "no temporary next to it";
  // check_writable looks at a pipe without opening it (an open would wait for a reader).
  EXPECT_NO_THROW(pyramidion::detail::check_writable("test", fifo));
  EXPECT_TRUE(pyramidion::detail::writes_through(fifo));
}

TEST(OutputFile, ALinkIsFollowedItsTargetReplacedAndTheLinkKept) {
  const auto dir = fresh("link");
  fs::create_directories(dir / "real");
  std::ofstream(dir / "real" / "out.jsonl") << "old";
  fs::create_symlink("real/out.jsonl", dir / "link.jsonl");          // relative to the link's directory
  fs::create_symlink(dir / "link.jsonl", dir / "link2.jsonl");        // a chain
  pyramidion::detail::write_output_file("test", (dir / "link2.jsonl").string(), "new");
  EXPECT_TRUE(fs::is_symlink(dir / "link.jsonl"));
  EXPECT_TRUE(fs::is_symlink(dir / "link2.jsonl"));
  EXPECT_EQ(read_text(dir / "real" / "out.jsonl"), "new");
  EXPECT_EQ(entries(dir / "real"), std::vector<std::string>{"out.jsonl"});
  // A dangling link: its target is created.
  fs::create_symlink("real/later.jsonl", dir / "dangling.jsonl");
  pyramidion::detail::write_output_file("test", (dir / "dangling.jsonl").string(), "made");
  EXPECT_TRUE(fs::is_symlink(dir / "dangling.jsonl"));
  EXPECT_EQ(read_text(dir / "real" / "later.jsonl"), "made");
  // A loop of links is an error naming the path, not a hang.
  fs::create_symlink("loop_b", dir / "loop_a");
  fs::create_symlink("loop_a", dir / "loop_b");
  EXPECT_NE(error_of<std::runtime_error>([&] {
              pyramidion::detail::write_output_file("test", (dir / "loop_a").string(), "x");
            }).find("loop_a"),
            std::string::npos);
}

TEST(OutputFile, ADescriptorIsWrittenThroughItselfAndADeviceKept) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string received;
  std::thread reader([&] { received = pyramidion_test::read_until_closed(fds[0]); });
  pyramidion::detail::write_output_file("test", "/dev/fd/" + std::to_string(fds[1]), "through the pipe\n");
  pyramidion::detail::write_output_file("test", "/proc/self/fd/" + std::to_string(fds[1]), "and again\n");
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  EXPECT_EQ(received, "through the pipe\nand again\n");
  // "-" is standard output (here a pipe put in its place).
  ASSERT_EQ(::pipe(fds), 0);
  const int saved = ::dup(1);
  ::dup2(fds[1], 1);
  ::close(fds[1]);
  pyramidion::detail::write_output_file("test", "-", "to stdout\n");
  ::dup2(saved, 1);
  ::close(saved);
  EXPECT_EQ(pyramidion_test::read_until_closed(fds[0]), "to stdout\n");
  ::close(fds[0]);
  // A device: /dev/full fails with the OS reason, through a descriptor (so that even a regression
  // could not replace the system's node).
  const int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(full, 0);
  const auto path = "/dev/fd/" + std::to_string(full);
  EXPECT_EQ(error_of<std::runtime_error>([&] { pyramidion::detail::write_output_file("test", path, "x"); }),
            "test: cannot write '" + path + "': No space left on device");
  ::close(full);
  // A descriptor that is not open, or open for reading only.
  EXPECT_NE(error_of<std::runtime_error>([] { pyramidion::detail::write_output_file("test", "/dev/fd/999", "x"); })
                .find("'/dev/fd/999': Bad file descriptor"),
            std::string::npos);
  // A device node of our own (root only: mknod), which must stay a device.
  if (::geteuid() == 0) {
    const auto dir = fresh("device");
    const auto null = (dir / "null").string();
    ASSERT_EQ(::mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    pyramidion::detail::write_output_file("test", null, "into the void");
    struct stat st {};
    ASSERT_EQ(::lstat(null.c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << "the device node was replaced by a file";
    EXPECT_EQ(entries(dir), std::vector<std::string>{"null"});
  }
}

TEST(AtomicDirectory, ALinkToADirectoryIsFollowedAndKept) {
  const auto dir = fresh("dir_link");
  fs::create_directories(dir / "models" / "v1");
  std::ofstream(dir / "models" / "v1" / "old") << "x";
  fs::create_symlink("models/v1", dir / "current");
  {
    AtomicDirectory out("test", (dir / "current").string());
    out.write("new", "y");
    out.commit();
  }
  EXPECT_TRUE(fs::is_symlink(dir / "current"));
  EXPECT_EQ(entries(dir / "models" / "v1"), std::vector<std::string>{"new"});
}

}  // namespace
