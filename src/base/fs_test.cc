#include "base/fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "temp_dir.h"

namespace nfc::fs {
namespace {

class FsTest : public ::testing::Test {
 protected:
  // RemoveTree of the whole directory is one more RemoveTree test; TempDir then finds nothing left.
  void TearDown() override {
    ASSERT_TRUE(RemoveTree(dir_.path()).ok());
    EXPECT_FALSE(Exists(dir_.path()));
  }
  std::string Path(const std::string& name) const { return dir_.Path(name); }
  std::vector<std::string> Entries() const { return dir_.Entries(); }
  test_support::TempDir dir_{"fs-test"};
};

TEST_F(FsTest, WriteThenReadRoundTripsAndSetsMode) {
  ASSERT_TRUE(WriteFileDurably(Path("f"), "hello\n", 0600).ok());
  auto text = ReadFile(Path("f"), 100);
  ASSERT_TRUE(text.ok()) << text.error().message();
  EXPECT_EQ(*text, "hello\n");
  struct stat st {};
  ASSERT_EQ(::stat(Path("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(FsTest, DurableWriteReplacesAndLeavesNoTempFiles) {
  ASSERT_TRUE(WriteFileDurably(Path("f"), "old").ok());
  ASSERT_TRUE(WriteFileDurably(Path("f"), "new contents").ok());
  EXPECT_EQ(ReadFile(Path("f"), 100).value(), "new contents");
  // The temp file was renamed over f, not left behind.
  EXPECT_EQ(Entries(), std::vector<std::string>{"f"});
}

TEST_F(FsTest, DurableWriteIntoMissingDirectoryNamesTheTempFile) {
  Status s = WriteFileDurably(Path("missing/f"), "x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(s.error().message().find(Path("missing/f")), std::string::npos) << s.error().message();
}

TEST_F(FsTest, ConcurrentDurableWritesOfOnePathLeaveOneWholeValue) {
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int i = 0; i < 8; i++) {
    threads.emplace_back([this, i] {
      for (int j = 0; j < 20; j++)
        EXPECT_TRUE(WriteFileDurably(Path("f"), std::string(100, char('a' + i))).ok());
    });
  }
  for (auto& t : threads) t.join();
  std::string text = ReadFile(Path("f"), 1000).value();
  ASSERT_EQ(text.size(), 100u);
  EXPECT_EQ(text, std::string(100, text[0]));
}

TEST_F(FsTest, ReadFileEnforcesTheLimitAndNamesIt) {
  ASSERT_TRUE(WriteFileDurably(Path("f"), std::string(100, 'x')).ok());
  EXPECT_TRUE(ReadFile(Path("f"), 100).ok());
  auto r = ReadFile(Path("f"), 99);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(r.error().message().find(Path("f")), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("99"), std::string::npos) << r.error().message();
  EXPECT_EQ(ReadFile(Path("f"), 0).error().code(), ErrorCode::kResourceExhausted);
}

TEST_F(FsTest, ReadFileOfMissingPathIsNotFoundAndNamesIt) {
  auto r = ReadFile(Path("nope"), 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find(Path("nope")), std::string::npos);
}

TEST_F(FsTest, ReadFileRefusesAFinalSymlink) {
  ASSERT_TRUE(WriteFileDurably(Path("f"), "secret").ok());
  ASSERT_EQ(::symlink(Path("f").c_str(), Path("link").c_str()), 0);
  EXPECT_FALSE(ReadFile(Path("link"), 100).ok());
}

TEST_F(FsTest, ReadFileFollowsAFinalSymlinkOnlyWhenAsked) {
  ASSERT_TRUE(WriteFileDurably(Path("f"), "target").ok());
  ASSERT_EQ(::symlink(Path("f").c_str(), Path("link").c_str()), 0);
  EXPECT_EQ(ReadFile(Path("link"), 100, FinalSymlink::kFollow).value(), "target");
  auto refused = ReadFile(Path("link"), 100, FinalSymlink::kRefuse);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find(Path("link")), std::string::npos) << refused.error().message();
}

TEST_F(FsTest, ReadFileReadsProcFilesWhoseSizeIsZero) {
  auto r = ReadFile("/proc/self/stat", 4096);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE(r->empty());
}

TEST_F(FsTest, MakeDirAcceptsAnExistingDirectoryButNotAFile) {
  ASSERT_TRUE(MakeDir(Path("d"), 0700).ok());
  EXPECT_TRUE(MakeDir(Path("d"), 0700).ok());
  ASSERT_TRUE(WriteFileDurably(Path("f"), "").ok());
  Status s = MakeDir(Path("f"), 0700);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.error().message().find(Path("f")), std::string::npos);
  EXPECT_EQ(MakeDir(Path("x/y"), 0700).error().code(), ErrorCode::kNotFound);
}

TEST_F(FsTest, MakeDirsCreatesEveryParentWithTheMode) {
  ASSERT_TRUE(MakeDirs(Path("a/b//c/"), 0710).ok());
  EXPECT_TRUE(MakeDirs(Path("a/b/c"), 0710).ok());
  struct stat st {};
  ASSERT_EQ(::stat(Path("a/b").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(
      st.st_mode & 0777, 0710u & ~[] {
        mode_t m = ::umask(0);
        ::umask(m);
        return m;
      }());
  ASSERT_TRUE(WriteFileDurably(Path("file"), "").ok());
  EXPECT_EQ(MakeDirs(Path("file/sub"), 0755).error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(MakeDirs("/", 0755).ok());
  EXPECT_FALSE(MakeDirs("", 0755).ok());
}

TEST_F(FsTest, RemoveTreeRemovesNestedEntriesButNotSymlinkTargets) {
  test_support::TempDir elsewhere("fs-test-outside");  // cleans up should an assertion below stop the test
  std::string outside = elsewhere.Path("outside");
  ASSERT_TRUE(MakeDirs(outside + "/keep", 0755).ok());
  ASSERT_TRUE(WriteFileDurably(outside + "/keep/file", "kept").ok());
  ASSERT_TRUE(MakeDirs(Path("t/a/b"), 0755).ok());
  ASSERT_TRUE(WriteFileDurably(Path("t/a/b/f"), "x").ok());
  ASSERT_TRUE(WriteFileDurably(Path("t/g"), "y").ok());
  ASSERT_EQ(::symlink((outside + "/keep").c_str(), Path("t/a/link").c_str()), 0);

  ASSERT_TRUE(RemoveTree(Path("t")).ok());
  EXPECT_FALSE(Exists(Path("t")));
  EXPECT_EQ(ReadFile(outside + "/keep/file", 100).value(), "kept");
  EXPECT_TRUE(RemoveTree(Path("t")).ok());  // absent: OK
  ASSERT_TRUE(RemoveTree(outside).ok());
}

TEST_F(FsTest, RemoveTreeOfASymlinkRemovesOnlyTheLink) {
  ASSERT_TRUE(MakeDirs(Path("real"), 0755).ok());
  ASSERT_TRUE(WriteFileDurably(Path("real/f"), "x").ok());
  ASSERT_EQ(::symlink(Path("real").c_str(), Path("link").c_str()), 0);
  ASSERT_TRUE(RemoveTree(Path("link")).ok());
  EXPECT_FALSE(Exists(Path("link")));
  EXPECT_TRUE(Exists(Path("real/f")));
}

TEST_F(FsTest, ExistsCountsDanglingSymlinks) {
  EXPECT_FALSE(Exists(Path("nope")));
  ASSERT_EQ(::symlink(Path("nope").c_str(), Path("dangling").c_str()), 0);
  EXPECT_TRUE(Exists(Path("dangling")));
}

TEST_F(FsTest, FileLocksShareReadersAndGiveAWriterTheFileAlone) {
  std::string disk = Path("volume.img");
  ASSERT_TRUE(WriteFileDurably(disk, "x").ok());
  auto reader1 = TryLockFile(disk, LockMode::kShared);
  auto reader2 = TryLockFile(disk, LockMode::kShared);
  ASSERT_TRUE(reader1.ok()) << reader1.error().ToString();
  ASSERT_TRUE(reader2.ok()) << reader2.error().ToString();
  auto writer = TryLockFile(disk, LockMode::kExclusive);
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(writer.error().message().find(disk), std::string::npos) << writer.error().message();
  reader1->Reset();
  reader2->Reset();
  writer = TryLockFile(disk, LockMode::kExclusive);
  ASSERT_TRUE(writer.ok()) << writer.error().ToString();
  auto late_reader = TryLockFile(disk, LockMode::kShared);
  ASSERT_FALSE(late_reader.ok());
  EXPECT_EQ(late_reader.error().code(), ErrorCode::kUnavailable);
  // A child that inherited the descriptor keeps the lock after ours is closed (the VMM holds it).
  int inherited = ::dup(writer->get());
  ASSERT_GE(inherited, 0);
  writer->Reset();
  EXPECT_FALSE(TryLockFile(disk, LockMode::kShared).ok());
  ::close(inherited);
  EXPECT_TRUE(TryLockFile(disk, LockMode::kShared).ok());
  auto missing = TryLockFile(Path("absent"), LockMode::kShared);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST(FsDirNameTest, Cases) {
  EXPECT_EQ(DirName("a/b"), "a");
  EXPECT_EQ(DirName("/a"), "/");
  EXPECT_EQ(DirName("a"), ".");
  EXPECT_EQ(DirName("/a/b/c"), "/a/b");
}

TEST(WriteAllTest, WritesEverythingThroughAPipe) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::string big(200000, 'z');
  std::thread reader([&] {
    std::string got;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(got, big);
  });
  EXPECT_TRUE(WriteAll(p[1], big, "pipe").ok());
  ::close(p[1]);
  reader.join();
  ::close(p[0]);
  EXPECT_FALSE(WriteAll(p[1], "x", "closed pipe").ok());
}

}  // namespace
}  // namespace nfc::fs
