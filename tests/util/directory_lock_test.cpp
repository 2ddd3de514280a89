// Tests of the directory lock (src/util/directory_lock.cpp): one holder at a time, the second
// refused naming the holder's pid, released at destruction and when the holder is SIGKILLed.
#include "util/directory_lock.h"

#include "support/test_support.h"
#include "support/train_fixtures.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
using pyramidion::detail::DirectoryLock;
using pyramidion_test::error_of;

TEST(DirectoryLock, OneHolderAtATimeAndTheSecondIsToldWho) {
  const auto dir = pyramidion_test::fresh_dir("lock") / "out";  // created by the lock
  {
    DirectoryLock first("train", dir.string());
    EXPECT_TRUE(fs::is_directory(dir));
    const auto message = error_of<std::runtime_error>([&] { DirectoryLock second("train", dir.string()); });
    EXPECT_EQ(message.rfind("train: '" + dir.string() + "' is in use by another process (pid " +
                                std::to_string(::getpid()) + " on host ",
                            0),
              0u)
        << message;
  }
  EXPECT_NO_THROW(DirectoryLock("train", dir.string())) << "released with its holder";
}

TEST(DirectoryLock, ASigkilledHolderReleasesIt) {
  const auto dir = pyramidion_test::fresh_dir("lock_killed");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    DirectoryLock held("train", dir.string());
    (void)!::write(ready[1], "x", 1);
    ::pause();  // until killed: no destructor runs
    std::_Exit(1);
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { DirectoryLock("train", dir.string()); }),
                  "(pid " + std::to_string(child) + " on host ");
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  EXPECT_TRUE(fs::exists(dir / ".lock")) << "the file stays; the lock does not";
  EXPECT_NO_THROW(DirectoryLock("train", dir.string()));
}

}  // namespace
