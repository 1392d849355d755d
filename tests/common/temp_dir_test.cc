// TempDir keeps its promises: a private directory named by the prefix, removed whole (links, not their
// targets), a failed removal reported as a test failure, no test running without its directory.
#include "temp_dir.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

namespace nfc::test_support {
namespace {

namespace fs = std::filesystem;

TEST(TempDirTest, IsAPrivateDirectoryNamedByItsPrefix) {
  TempDir a("temp-dir-test");
  TempDir b("temp-dir-test");
  const std::string stem = "/tmp/nfc-temp-dir-test-";
  ASSERT_EQ(a.path().rfind(stem, 0), 0u) << a.path();
  EXPECT_EQ(a.path().size(), stem.size() + 6);
  EXPECT_NE(a.path(), b.path());
  struct stat st {};
  ASSERT_EQ(::lstat(a.path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(a.Path("x/y"), a.path() + "/x/y");
}

TEST(TempDirTest, RemovesTheWholeTreeButNotWhatItsLinksPointTo) {
  TempDir outside("temp-dir-test");
  ASSERT_TRUE(fs::create_directory(outside.Path("keep")));
  std::ofstream(outside.Path("keep/file")) << "kept";
  std::string path;
  {
    TempDir dir("temp-dir-test");
    path = dir.path();
    ASSERT_TRUE(fs::create_directories(dir.Path("a/b")));
    std::ofstream(dir.Path("a/b/f")) << "x";
    ASSERT_EQ(::symlink(outside.Path("keep").c_str(), dir.Path("a/dir-link").c_str()), 0);
    ASSERT_EQ(::symlink(outside.Path("keep/file").c_str(), dir.Path("file-link").c_str()), 0);
    ASSERT_EQ(::mkfifo(dir.Path("a/fifo").c_str(), 0600), 0);
  }
  EXPECT_FALSE(fs::exists(fs::symlink_status(path)));
  std::ifstream kept(outside.Path("keep/file"));
  std::string text;
  kept >> text;
  EXPECT_EQ(text, "kept");
}

// An entry in a directory without write permission cannot be removed by an ordinary user. Root is not held by
// permissions, so as root the check runs in a child that drops to an unprivileged uid first.
int FailedRemovalInChild() {
  if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) return 2;
  auto dir = std::make_unique<TempDir>("temp-dir-test");
  const std::string path = dir->path();
  const std::string locked = dir->Path("locked");
  if (::mkdir(locked.c_str(), 0700) != 0) return 3;
  std::ofstream(locked + "/file") << "x";
  if (::chmod(locked.c_str(), 0500) != 0) return 4;
  EXPECT_NONFATAL_FAILURE(dir.reset(), "cannot remove the test directory " + path);
  ::chmod(locked.c_str(), 0700);
  std::error_code ec;
  fs::remove_all(path, ec);
  return ::testing::Test::HasFailure() || ec ? 1 : 0;
}

TEST(TempDirTest, FailedRemovalIsATestFailure) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(FailedRemovalInChild());
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2-4: the child could not set up; 1: the failure was not reported";
}

TEST(TempDirDeathTest, AbortsWhenTheDirectoryCannotBeMade) {
  EXPECT_DEATH(TempDir("no-such-parent/x"),
               "TempDir: mkdtemp /tmp/nfc-no-such-parent/x-XXXXXX: No such file");
}

}  // namespace
}  // namespace nfc::test_support
