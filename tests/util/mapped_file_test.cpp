// Tests of MappedFile (src/util/mapped_file.cpp): a file truncated under its mapping (another
// process, `truncate -s 0` under a running job) used to kill the process with SIGBUS at the next
// read of a lost page; the read now goes on (zeros) and check_unchanged() names the file. Faults
// outside these mappings keep their usual ending.
#include "util/mapped_file.h"

#include "support/test_support.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using pyramidion::detail::FileChanged;
using pyramidion::detail::MappedFile;
using pyramidion_test::error_of;

fs::path file_of(const std::string& name, size_t bytes) {
  const auto dir = fs::path(::testing::TempDir()) / ("pyramidion_mapped_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary) << std::string(bytes, 'x');
  return path;
}

TEST(MappedFile, ATruncatedFileIsAnErrorNamingItNotASigbus) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGE_SIZE));
  const auto path = file_of("tokens", 3 * page);
  const MappedFile mapped(path.string());
  EXPECT_NO_THROW(mapped.check_unchanged());
  EXPECT_EQ(mapped.data()[2 * page + 5], 'x');
  fs::resize_file(path, 0);
  // Reading a page that is gone: SIGBUS without the handler.
  const volatile unsigned char* data = mapped.data();
  const unsigned char byte = data[2 * page + 7];
  EXPECT_EQ(byte, 0);
  EXPECT_TRUE(mapped.faulted());
  const auto message = error_of<FileChanged>([&] { mapped.check_unchanged(); });
  EXPECT_NE(message.find("'" + path.string() + "' changed while it was in use (pages of it are gone"), std::string::npos)
      << message;
}

TEST(MappedFile, AFileCutWithinItsLastPageIsFoundBySize) {
  const auto path = file_of("short", 1000);
  const MappedFile mapped(path.string());
  fs::resize_file(path, 998);  // no page lost: no fault, but the size tells
  EXPECT_FALSE(mapped.faulted());
  const auto message = error_of<FileChanged>([&] { mapped.check_unchanged(); });
  EXPECT_NE(message.find("it is now 998 bytes, 1000 when it was opened"), std::string::npos) << message;
}

TEST(MappedFile, AFaultOutsideItsMappingsStillEndsTheProcess) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGE_SIZE));
  const auto ours = file_of("ours", page);
  const MappedFile mapped(ours.string());  // the handler is installed
  const auto other = file_of("other", 2 * page);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = ::open(other.c_str(), O_RDONLY);
    auto* p = static_cast<const volatile unsigned char*>(::mmap(nullptr, 2 * page, PROT_READ, MAP_SHARED, fd, 0));
    ::ftruncate(::open(other.c_str(), O_WRONLY), 0);
    volatile unsigned char byte = p[page + 1];  // not a MappedFile's: SIGBUS as usual
    (void)byte;
    std::_Exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  // Killed by SIGBUS (or, under AddressSanitizer, whose handler comes next, ended by its report).
  EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  if (WIFSIGNALED(status)) EXPECT_EQ(WTERMSIG(status), SIGBUS);
}

}  // namespace
