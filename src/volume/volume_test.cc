#include "volume/volume.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "base/fs.h"
#include "temp_dir.h"

namespace nfc::volume {
namespace {

Request Mount(std::string host, std::string task, bool ro = false) {
  return {Request::Kind::kMount, "mounts[0]", std::move(host), std::move(task), ro};
}

const std::vector<std::string> kTaskDirs = {"/local", "/secrets", "/alloc"};

std::string CheckError(const std::vector<Request>& requests) {
  Status s = CheckRequests(requests, kTaskDirs);
  EXPECT_FALSE(s.ok());
  if (s.ok()) return "";
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  return s.error().message();
}

TEST(VolumeRequestsTest, TaskPathsMustBeCleanAbsoluteAndFree) {
  EXPECT_TRUE(CheckRequests({Mount("/srv/a", "/data"), Mount("/srv/b", "/data/logs", true)}, kTaskDirs).ok());
  for (const char* bad : {"data", "/", "/data/", "/a//b", "/a/../b", "/a/./b", ""}) {
    std::string msg = CheckError({Mount("/srv/a", bad)});
    EXPECT_NE(msg.find("mounts[0].task_path: \"" + std::string(bad) + "\""), std::string::npos) << msg;
  }
  EXPECT_NE(CheckError({Mount("/srv/a", "/alloc/data")}).find("overlaps /alloc"), std::string::npos);
  EXPECT_NE(CheckError({Mount("/srv/a", "/secrets")}).find("overlaps /secrets"), std::string::npos);
  EXPECT_NE(CheckError({Mount("/srv/a", "/proc/x")}).find("overlaps the guest's /proc"), std::string::npos);
  EXPECT_NE(CheckError({Mount("relative", "/data")}).find("mounts[0].host_path: \"relative\""),
            std::string::npos);
  Request second = Mount("/srv/b", "/data");
  second.field = "mounts[1]";
  EXPECT_NE(CheckError({Mount("/srv/a", "/data"), second}).find("mounts[1].task_path: \"/data\" is also"),
            std::string::npos);
  // A device node lives under /dev, where a mount may not go.
  Request device{Request::Kind::kDevice, "devices[0]", "/dev/loop0", "/dev/xvdb", false};
  EXPECT_TRUE(CheckRequests({device}, kTaskDirs).ok());
}

TEST(VolumeDiskNameTest, FollowsTheKernelsScheme) {
  EXPECT_EQ(GuestDiskName(0), "vda");
  EXPECT_EQ(GuestDiskName(2), "vdc");
  EXPECT_EQ(GuestDiskName(25), "vdz");
  EXPECT_EQ(GuestDiskName(26), "vdaa");
  EXPECT_EQ(GuestDiskName(27), "vdab");
  EXPECT_EQ(GuestDiskName(26 + 26 * 26), "vdaaa");
}

// debugfs's view of the image's root directory ("User:  1234   Group:  5678 ...").
std::string RootInode(const std::string& image) {
  std::string out;
  FILE* p = ::popen(("debugfs -R 'stat /' " + image + " 2>/dev/null").c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  return out;
}

class VolumePrepareTest : public ::testing::Test {
 protected:
  std::string Dir(const std::string& name) {
    std::string p = dir_.Path(name);
    EXPECT_EQ(::mkdir(p.c_str(), 0750), 0);
    return p;
  }
  test_support::TempDir dir_{"volume-test"};
};

TEST_F(VolumePrepareTest, ADirectoryGetsOneSparseImageOwnedLikeTheDirectory) {
  std::string vol = Dir("data");
  ASSERT_EQ(::chown(vol.c_str(), 1234, 5678), 0) << "the test runs as root";
  auto first = Prepare(Mount(vol, "/data"), 64 << 20);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(first->path, vol + "/" + kImageName);
  EXPECT_TRUE(first->image_file);
  EXPECT_TRUE(first->created);
  struct stat st {};
  ASSERT_EQ(::stat(first->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 64 << 20);
  EXPECT_LT(st.st_blocks * 512, 8 << 20) << "the image is sparse";
  std::string root = RootInode(first->path);
  EXPECT_NE(root.find("User:  1234"), std::string::npos) << root;
  EXPECT_NE(root.find("Group:  5678"), std::string::npos) << root;
  // The next start finds it, whatever size it asks for; nothing else was left in the directory.
  auto again = Prepare(Mount(vol, "/data"), 128 << 20);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_FALSE(again->created);
  ASSERT_EQ(::stat(again->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 64 << 20);
  EXPECT_EQ(dir_.Entries("data"), std::vector<std::string>{kImageName}) << "no temporary file is left behind";
}

TEST_F(VolumePrepareTest, AWriterNeedsTheVolumeAloneReadersShare) {
  std::string vol = Dir("shared");
  auto made = Prepare(Mount(vol, "/data", true), 32 << 20);
  ASSERT_TRUE(made.ok()) << made.error().ToString();
  auto reader = fs::TryLockFile(made->path, fs::LockMode::kShared);  // a running read-only VM
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE(Prepare(Mount(vol, "/data", true), 32 << 20).ok());
  auto writer = Prepare(Mount(vol, "/data"), 32 << 20);
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(writer.error().message().find("mounts[0] (/data)"), std::string::npos)
      << writer.error().message();
  EXPECT_NE(writer.error().message().find("in use by another VM"), std::string::npos)
      << writer.error().message();
  reader->Reset();
  EXPECT_TRUE(Prepare(Mount(vol, "/data"), 32 << 20).ok());
}

TEST_F(VolumePrepareTest, RefusesWhatCannotBeADisk) {
  std::string file = dir_.Path("file");
  ASSERT_TRUE(fs::WriteFileDurably(file, "x").ok());
  auto regular = Prepare(Mount(file, "/data"), 32 << 20);
  ASSERT_FALSE(regular.ok());
  EXPECT_NE(regular.error().message().find("neither a directory nor a block device"), std::string::npos);
  auto missing = Prepare(Mount(dir_.Path("absent"), "/data"), 32 << 20);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("mounts[0].host_path"), std::string::npos);
  Request gpu{Request::Kind::kDevice, "devices[0]", "/dev/null", "/dev/gpu0", false};
  auto chr = Prepare(gpu, 0);
  ASSERT_FALSE(chr.ok());
  EXPECT_EQ(chr.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(chr.error().message().find("devices[0].host_path: /dev/null is a character device"),
            std::string::npos)
      << chr.error().message();
  auto tiny = Prepare(Mount(Dir("tiny"), "/data"), 1 << 20);
  ASSERT_FALSE(tiny.ok());
  EXPECT_NE(tiny.error().message().find("below 16 MiB"), std::string::npos);
  // Where the image belongs, something else: never replaced.
  std::string taken = Dir("taken");
  ASSERT_EQ(::mkdir((taken + "/" + kImageName).c_str(), 0700), 0);
  auto blocked = Prepare(Mount(taken, "/data"), 32 << 20);
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.error().code(), ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace nfc::volume
