// Layers -> ext4, checked entry by entry against the expected tree (read back with libext2fs, no mount) and
// with e2fsck. No registry needed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include "base/unique_fd.h"
#include "ext4_snapshot.h"
#include "image/cache_fs.h"
#include "image/growing_blob.h"
#include "image/rootfs_builder.h"
#include "test_layers.h"

namespace nfc::image {
namespace {

using testing::E;

class RootfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nfc-rootfs-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  Result<RootfsStats> Build(const std::vector<std::pair<std::vector<E>, std::string>>& layers) {
    std::vector<LayerFile> files;
    for (size_t i = 0; i < layers.size(); ++i) {
      std::string p = dir_ + "/layer" + std::to_string(i);
      auto d = testing::WriteLayer(p, layers[i].first, layers[i].second);
      if (!d.ok()) return d.error();
      files.push_back({p, "layer" + std::to_string(i), 1});
    }
    return BuildRootfs(files, dir_ + "/rootfs.ext4", "test");
  }
  // The size of layer i's tar stream, decompressed by another tool.
  uint64_t TarBytes(const std::string& decompress, int i) {
    std::string cmd = decompress + " < '" + dir_ + "/layer" + std::to_string(i) + "' | wc -c";
    FILE* f = ::popen(cmd.c_str(), "r");
    unsigned long long n = 0;
    EXPECT_TRUE(f && std::fscanf(f, "%llu", &n) == 1) << cmd;
    if (f) {
      EXPECT_EQ(::pclose(f), 0) << cmd;
    }
    return n;
  }
  std::string dir_;
};

std::string Sha(const std::string& s) {
  return testing::Sha256Hex(s).substr(0, 12);
}

TEST_F(RootfsTest, MultiLayerImageMatchesExpectedTreeExactly) {
  std::string big(3 * 1024 * 1024 + 123, '\0');
  std::mt19937 rng(42);
  for (auto& c : big) c = static_cast<char>(rng());
  const std::string cap("\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                        20);
  std::vector<E> l0 = {
      {'d', "./", 0755},
      {'d', "bin/", 0755},
      {'f', "bin/busybox", 0755, "BUSYBOX-V1"},
      {'h', "bin/sh", 0755, "bin/busybox"},  // a link's header sets the shared inode's metadata
      {'l', "bin/ls", 0777, "busybox"},
      {'d', "etc/", 0755},
      {'f', "etc/passwd", 0644, "root:x:0:0::/root:/bin/sh\n"},
      {'f', "etc/shadow", 0640, "secret", 0, 42},
      {'d', "var/cache/", 0755},
      {'f', "var/cache/a", 0644, "a"},
      {'d', "var/cache/sub/", 0700},
      {'f', "var/cache/sub/b", 0644, "b"},
      {'f', "usr/bin/ping", 0755, "PING", 0, 0, {{"security.capability", cap}}},
      {'f', "usr/bin/su", 04755, "SU", 0, 0},
      {'f', "usr/share/big.bin", 0644, big, 1000, 1000, {}, 1700000123},
      {'l', "usr/lib64", 0777, std::string(100, 'x')},
      {'c', "dev/null", 0666, "", 0, 0, {}, 1700000000, 1, 3},
      {'b', "dev/sda", 0660, "", 0, 6, {}, 1700000000, 8, 0},
      {'c', "dev/big", 0600, "", 0, 0, {}, 1700000000, 300, 70000},
      {'p', "run/fifo", 0600},
      {'f', "tmp/user-xattr", 0600, "u", 7, 8, {{"user.note", "hello"}, {"trusted.t", "x"}}},
  };
  std::vector<E> l1 = {
      {'f', "etc/.wh.shadow", 0},
      {'f', "var/cache/.wh..wh..opq", 0},
      {'f', "var/cache/new", 0600, "new"},
      {'f', "bin/busybox", 0755, "BUSYBOX-V2"},  // replaces one name of a hard-linked pair
      {'h', "usr/bin/ping2", 0755, "usr/bin/ping"},
  };
  std::vector<E> l2 = {{'d', "srv/", 01777, "", 5, 6}, {'f', "srv/empty", 0444}};
  auto stats = Build({{l0, "gzip"}, {l1, "zstd"}, {l2, ""}});
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  ASSERT_TRUE(testing::CheckExt4(dir_ + "/rootfs.ext4").ok())
      << testing::CheckExt4(dir_ + "/rootfs.ext4").error().message();
  auto snap = testing::SnapshotExt4(dir_ + "/rootfs.ext4");
  ASSERT_TRUE(snap.ok()) << snap.error().message();
  const std::string t = " mtime=1700000000.0";
  const std::string capx = " x:security.capability=0100000200040000000000000000000000000000";
  std::map<std::string, std::string> want = {
      {"/bin", "dir 0755 0:0 nlink=2" + t},
      {"/bin/busybox", "file 0755 0:0 nlink=1 size=10 sha=" + Sha("BUSYBOX-V2") + t},
      {"/bin/sh", "file 0755 0:0 nlink=1 size=10 sha=" + Sha("BUSYBOX-V1") + t},
      {"/bin/ls", "symlink 0777 0:0 nlink=1 -> busybox" + t},
      {"/etc", "dir 0755 0:0 nlink=2" + t},
      {"/etc/passwd", "file 0644 0:0 nlink=1 size=26 sha=" + Sha("root:x:0:0::/root:/bin/sh\n") + t},
      {"/var", "dir 0755 0:0 nlink=3 mtime=0.0"},
      {"/var/cache", "dir 0755 0:0 nlink=2" + t},
      {"/var/cache/new", "file 0600 0:0 nlink=1 size=3 sha=" + Sha("new") + t},
      {"/usr", "dir 0755 0:0 nlink=4 mtime=0.0"},
      {"/usr/bin", "dir 0755 0:0 nlink=2 mtime=0.0"},
      {"/usr/bin/ping", "file 0755 0:0 nlink=2 ino=#0 size=4 sha=" + Sha("PING") + capx + t},
      {"/usr/bin/ping2", "file 0755 0:0 nlink=2 ino=#0 size=4 sha=" + Sha("PING") + capx + t},
      {"/usr/bin/su", "file 4755 0:0 nlink=1 size=2 sha=" + Sha("SU") + t},
      {"/usr/share", "dir 0755 0:0 nlink=2 mtime=0.0"},
      {"/usr/share/big.bin", "file 0644 1000:1000 nlink=1 size=" + std::to_string(big.size()) +
                                 " sha=" + Sha(big) + " mtime=1700000123.0"},
      {"/usr/lib64", "symlink 0777 0:0 nlink=1 -> " + std::string(100, 'x') + t},
      {"/dev", "dir 0755 0:0 nlink=2 mtime=0.0"},
      {"/dev/null", "chr 0666 0:0 nlink=1 dev=1:3" + t},
      {"/dev/sda", "blk 0660 0:6 nlink=1 dev=8:0" + t},
      {"/dev/big", "chr 0600 0:0 nlink=1 dev=300:70000" + t},
      {"/run", "dir 0755 0:0 nlink=2 mtime=0.0"},
      {"/run/fifo", "fifo 0600 0:0 nlink=1" + t},
      {"/tmp", "dir 0755 0:0 nlink=2 mtime=0.0"},
      {"/tmp/user-xattr",
       "file 0600 7:8 nlink=1 size=1 sha=" + Sha("u") + " x:user.note=68656c6c6f" + t},  // no trusted.*
      {"/srv", "dir 1777 5:6 nlink=2" + t},
      {"/srv/empty", "file 0444 0:0 nlink=1 size=0 sha=" + Sha("") + t},
  };
  for (const auto& [path, desc] : want) {
    auto it = snap->find(path);
    if (it == snap->end()) {
      ADD_FAILURE() << "missing " << path;
      continue;
    }
    EXPECT_EQ(it->second, desc) << path;
  }
  for (const auto& [path, desc] : *snap) {
    EXPECT_TRUE(want.count(path)) << "unexpected " << path << ": " << desc;
  }
  EXPECT_EQ(stats->tree.regular_files, 9u);
  // Each layer was decompressed once, whole: the bytes read are those of the three tar streams.
  EXPECT_EQ(stats->layer_passes, 3);
  EXPECT_EQ(stats->tar_bytes, TarBytes("gzip -dc", 0) + TarBytes("zstd -dc", 1) + TarBytes("cat", 2));
}

TEST_F(RootfsTest, TinyImageWithoutEtc) {
  auto stats = Build({{{{'f', "hello", 0755, "static binary"}}, "gzip"}});
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  ASSERT_TRUE(testing::CheckExt4(dir_ + "/rootfs.ext4").ok());
  auto snap = testing::SnapshotExt4(dir_ + "/rootfs.ext4");
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->size(), 1u);
  EXPECT_EQ(snap->begin()->first, "/hello");
  EXPECT_LT(stats->image_bytes, 32u << 20) << "a tiny image must give a small filesystem";
}

TEST_F(RootfsTest, HostileArchiveIsRejectedWithItsEntryNamed) {
  auto stats = Build({{{{'f', "ok", 0644, "x"}, {'f', "../../etc/cron.d/evil", 0644, "x"}}, "gzip"}});
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.error().message().find("../../etc/cron.d/evil"), std::string::npos)
      << stats.error().message();
  EXPECT_NE(stats.error().message().find("layer0"), std::string::npos) << stats.error().message();
}

TEST_F(RootfsTest, ManyFilesInOneDirectory) {
  std::vector<E> l;
  l.reserve(5000);
  for (int i = 0; i < 5000; ++i) l.push_back({'f', "d/f" + std::to_string(i), 0644, std::to_string(i)});
  auto stats = Build({{l, "gzip"}});
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  ASSERT_TRUE(testing::CheckExt4(dir_ + "/rootfs.ext4").ok())
      << testing::CheckExt4(dir_ + "/rootfs.ext4").error().message();
  auto snap = testing::SnapshotExt4(dir_ + "/rootfs.ext4");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->size(), 5001u);
  EXPECT_EQ(snap->at("/d/f4321"), "file 0644 0:0 nlink=1 size=4 sha=" + Sha("4321") + " mtime=1700000000.0");
}

TEST_F(RootfsTest, TheUncompressedLayerMustMatchTheImageConfigsDiffId) {
  ASSERT_TRUE(testing::WriteLayer(dir_ + "/layer0", {{'f', "hello", 0644, "hi"}}, "gzip").ok());
  FILE* f = ::popen(("gzip -dc < '" + dir_ + "/layer0' | sha256sum").c_str(), "r");
  ASSERT_NE(f, nullptr);
  char hex[65] = {};
  ASSERT_EQ(std::fscanf(f, "%64s", hex), 1);
  ASSERT_EQ(::pclose(f), 0);
  LayerInput in = ToLayerInput({dir_ + "/layer0", "layer0", 1, {}});
  in.diff_id = "sha256:" + std::string(hex);
  auto good = BuildRootfs(std::vector<LayerInput>{in}, dir_ + "/good.ext4", "test");
  ASSERT_TRUE(good.ok()) << good.error().message();

  in.diff_id = "sha256:" + std::string(64, '0');
  auto bad = BuildRootfs(std::vector<LayerInput>{in}, dir_ + "/bad.ext4", "test");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
  EXPECT_NE(bad.error().message().find("hashes to sha256:" + std::string(hex) +
                                       " but the image config's rootfs.diff_ids says sha256:000"),
            std::string::npos)
      << bad.error().message();
}

// A layer converted while it is being "downloaded" into a file: the writer below plays the download, and
// starts over once the reader has taken half of the blob (what a registry retry does).
class GrowingLayerTest : public RootfsTest {
 protected:
  void SetUp() override {
    RootfsTest::SetUp();
    std::vector<E> entries;
    entries.reserve(200);
    for (int i = 0; i < 200; ++i)
      entries.push_back({'f', "d/f" + std::to_string(i), 0644, std::string(3000, 'a' + i % 26)});
    auto written = testing::WriteLayer(dir_ + "/layer.tgz", entries, "gzip");
    ASSERT_TRUE(written.ok()) << written.error().message();
    auto bytes = ReadWholeFile(dir_ + "/layer.tgz");
    ASSERT_TRUE(bytes.ok());
    blob_ = *bytes;
    ASSERT_GT(blob_.size(), 4096u);
    fd_ = UniqueFd(::open((dir_ + "/download").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd_);
  }
  void Write(size_t from, size_t to) {
    ASSERT_EQ(::pwrite(fd_.get(), blob_.data() + from, to - from, static_cast<off_t>(from)),
              static_cast<ssize_t>(to - from));
    growing_.Grew(to);
  }
  Result<RootfsStats> Convert(const std::function<void(uint64_t)>& on_progress) {
    LayerInput in{"layer", blob_.size(), [this] { return growing_.Open(); },
                  [this] { return growing_.Settle(); }};
    BuildOptions o;
    o.progress = [&](uint64_t done, uint64_t) { on_progress(done); };
    return BuildRootfs(std::vector<LayerInput>{in}, dir_ + "/rootfs.ext4", "test", o);
  }

  std::string blob_;
  UniqueFd fd_;
  GrowingBlob growing_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t read_ = 0;
};

TEST_F(GrowingLayerTest, ADownloadThatStartsOverIsReadAgainAndTheImageIsTheFinalBlobs) {
  growing_.Attach(UniqueFd(::dup(fd_.get())));
  const size_t half = blob_.size() / 2;
  std::thread download([&] {
    // Half of a wrong blob first (all 0x1f 0x8b ... then garbage): what the reader takes of it is void.
    std::string wrong = blob_;
    for (size_t i = 1024; i < half; ++i) wrong[i] = static_cast<char>(i);
    ASSERT_EQ(::pwrite(fd_.get(), wrong.data(), half, 0), static_cast<ssize_t>(half));
    growing_.Grew(half);
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(20), [&] { return read_ > 0; });
    }
    growing_.Grew(0);  // the retry: told before the file is truncated
    ASSERT_EQ(::ftruncate(fd_.get(), 0), 0);
    Write(0, half);
    Write(half, blob_.size());
    growing_.Finish(Ok());
  });
  auto stats = Convert([&](uint64_t done) {
    std::lock_guard<std::mutex> lock(mu_);
    read_ = std::max(read_, done);
    cv_.notify_all();
  });
  download.join();
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  EXPECT_EQ(stats->layer_passes, 2) << "read once from the first attempt, once from the second";
  auto snap = testing::SnapshotExt4(dir_ + "/rootfs.ext4");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->size(), 201u);
  EXPECT_EQ(snap->at("/d/f27"),
            "file 0644 0:0 nlink=1 size=3000 sha=" + Sha(std::string(3000, 'b')) + " mtime=1700000000.0");
}

TEST_F(GrowingLayerTest, AFailedDownloadIsWhatTheBuildReports) {
  growing_.Attach(UniqueFd(::dup(fd_.get())));
  std::thread download([&] {
    Write(0, blob_.size() / 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    growing_.Finish(Error::DataLoss("blob sha256:x: digest mismatch"));
  });
  auto stats = Convert([](uint64_t) {});
  download.join();
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.error().message().find("digest mismatch"), std::string::npos) << stats.error().message();
  EXPECT_EQ(::access((dir_ + "/rootfs.ext4").c_str(), F_OK), -1)
      << "no image from a blob that did not verify";
}

}  // namespace
}  // namespace nfc::image
