#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "base/fs.h"
#include "files/mirror.h"
#include "files/writer.h"
#include "temp_dir.h"

namespace nfc::files {
namespace {

namespace pb = ::nfc::guest::v1;
using test_support::TempDir;

void Write(const std::string& path, const std::string& text, mode_t mode = 0644) {
  ASSERT_TRUE(fs::MakeDirs(fs::DirName(path), 0755).ok());
  std::ofstream(path, std::ios::trunc) << text;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

std::string Read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Replaces path the way Nomad's template renderer does: a new file renamed over the old one.
void ReplaceByRename(const std::string& path, const std::string& text) {
  Write(path + ".new", text);
  ASSERT_EQ(rename((path + ".new").c_str(), path.c_str()), 0);
}

void SetMtime(const std::string& path, int64_t sec) {
  struct timespec t[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW), 0);
}

class MirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::MakeDir(host_root(), 0755).ok());
    ASSERT_TRUE(fs::MakeDir(guest_root(), 0755).ok());
    host_ = Open(host_root(), host_options_);
    guest_ = Open(guest_root(), guest_options_);
  }

  std::string host_root() const { return dir_.Path("host"); }
  std::string guest_root() const { return dir_.Path("guest"); }

  std::unique_ptr<Mirror> Open(const std::string& root, Mirror::Options o) {
    o.name = "local";
    o.root = root;
    auto m = Mirror::Open(o);
    EXPECT_TRUE(m.ok()) << m.error().ToString();
    return m.ok() ? std::move(m).value() : nullptr;
  }

  // host -> guest; returns the entries sent.
  size_t Sync(Mirror& from, Mirror& to) {
    auto sent = from.SendChanges([&](pb::FileBatch& b) {
      batches_++;
      size_t data = 0;
      for (const auto& e : b.entries()) data += e.data().size();
      max_batch_data_ = std::max(max_batch_data_, data);
      return to.Apply(b);
    });
    EXPECT_TRUE(sent.ok()) << sent.error().ToString();
    return sent.ok() ? *sent : 0;
  }

  // Both trees hold the same names, kinds, modes, owners, contents, link targets and file mtimes.
  void ExpectSameTrees() {
    auto a = ScanTree(host_root(), {});
    auto b = ScanTree(guest_root(), {});
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size());
    for (const auto& [path, meta] : *a) {
      auto it = b->find(path);
      ASSERT_NE(it, b->end()) << path;
      EXPECT_TRUE(SameState(meta, it->second, false)) << path;
      if (meta.kind == EntryKind::kFile) {
        EXPECT_EQ(Read(host_root() + "/" + path), Read(guest_root() + "/" + path)) << path;
      }
    }
  }

  TempDir dir_{"files"};
  Mirror::Options host_options_, guest_options_;
  std::unique_ptr<Mirror> host_, guest_;
  size_t batches_ = 0;
  size_t max_batch_data_ = 0;
};

TEST_F(MirrorTest, MirrorsFilesDirectoriesAndLinksWithModesAndMtimes) {
  Write(host_root() + "/config.json", "{\"a\":1}\n", 0640);
  Write(host_root() + "/nested/deep/script.sh", "#!/bin/sh\necho hi\n", 0755);
  ASSERT_EQ(symlink("deep/script.sh", (host_root() + "/nested/run").c_str()), 0);
  ASSERT_EQ(mkdir((host_root() + "/empty").c_str(), 0711), 0);
  SetMtime(host_root() + "/config.json", 1700000000);
  EXPECT_EQ(Sync(*host_, *guest_), 6u);
  ExpectSameTrees();
  struct stat st;
  ASSERT_EQ(stat((guest_root() + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1700000000);
  EXPECT_EQ(st.st_mode & 07777, 0640u);

  EXPECT_EQ(Sync(*host_, *guest_), 0u) << "nothing changed, nothing sent";
  EXPECT_EQ(Sync(*guest_, *host_), 0u) << "what was applied is not echoed back";
}

TEST_F(MirrorTest, AFileReplacedByRenameIsSeenEvenWithTheSameSizeAndMtime) {
  Write(host_root() + "/app.conf", "port=8080\n");
  SetMtime(host_root() + "/app.conf", 1700000000);
  Sync(*host_, *guest_);
  ReplaceByRename(host_root() + "/app.conf", "port=9090\n");
  SetMtime(host_root() + "/app.conf", 1700000000);
  EXPECT_EQ(Sync(*host_, *guest_), 1u);
  EXPECT_EQ(Read(guest_root() + "/app.conf"), "port=9090\n");
}

TEST_F(MirrorTest, RemovalsAndKindChangesPropagate) {
  Write(host_root() + "/gone/a/b.txt", "x");
  Write(host_root() + "/gone/c.txt", "y");
  Write(host_root() + "/becomes-dir", "file");
  Write(host_root() + "/becomes-file/inner", "z");
  Sync(*host_, *guest_);
  ASSERT_TRUE(fs::RemoveTree(host_root() + "/gone").ok());
  ASSERT_EQ(unlink((host_root() + "/becomes-dir").c_str()), 0);
  Write(host_root() + "/becomes-dir/now", "inside");
  ASSERT_TRUE(fs::RemoveTree(host_root() + "/becomes-file").ok());
  Write(host_root() + "/becomes-file", "flat");
  // gone (one removal for the subtree), becomes-dir + now, becomes-file/inner removed + becomes-file.
  EXPECT_EQ(Sync(*host_, *guest_), 5u);
  ExpectSameTrees();
  EXPECT_FALSE(fs::Exists(guest_root() + "/gone"));
}

TEST_F(MirrorTest, LargeFilesTravelInChunksWithinTheFrameBudgetAndLandAtomically) {
  host_options_.chunk_bytes = 4096;
  host_options_.batch_bytes = 10000;
  host_ = Open(host_root(), host_options_);
  std::string big(100000, '\0');
  for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>('a' + i % 26);
  Write(host_root() + "/artifact.bin", big);
  Write(host_root() + "/small", "s");
  size_t entries = 0;
  auto sent = host_->SendChanges([&](pb::FileBatch& b) {
    size_t data = 0;
    for (const auto& e : b.entries()) data += e.data().size();
    EXPECT_LE(data, 10000u + 4096u);
    entries += static_cast<size_t>(b.entries_size());
    Status s = guest_->Apply(b);
    // Until the last chunk arrives the old name does not exist and only a temp file is there.
    if (!fs::Exists(guest_root() + "/small")) {
      EXPECT_FALSE(fs::Exists(guest_root() + "/artifact.bin"));
    }
    return s;
  });
  ASSERT_TRUE(sent.ok());
  EXPECT_GE(entries, 25u);
  ExpectSameTrees();
}

TEST_F(MirrorTest, APeerCannotWriteOutsideTheRootOrThroughALink) {
  TempDir outside("files-outside");
  ASSERT_EQ(symlink(outside.path().c_str(), (host_root() + "/escape").c_str()), 0);
  for (const std::string path : {"../x", "/etc/x", "a//b", "a/./b", "escape/planted", ""}) {
    pb::FileBatch b;
    b.set_root("alloc");
    auto* e = b.add_entries();
    e->set_path(path);
    e->set_kind(pb::FILE_KIND_FILE);
    e->set_data("boom");
    e->set_size(4);
    e->set_last(true);
    Status s = host_->Apply(b);
    EXPECT_FALSE(s.ok()) << "path \"" << path << "\" was accepted";
  }
  auto left = ScanTree(outside.path(), {});
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty()) << "something was written through the link";
  auto tree = ScanTree(host_root(), {});
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(tree->size(), 1u) << "a temp file was left behind";
}

TEST_F(MirrorTest, TheHostDropsSetIdBitsFromWhatAGuestSends) {
  guest_options_.writer.strip_setid = true;  // "guest_" plays the host here: it receives
  guest_ = Open(guest_root(), guest_options_);
  Write(host_root() + "/suid", "#!/bin/sh\n", 06755);
  Sync(*host_, *guest_);
  struct stat st;
  ASSERT_EQ(stat((guest_root() + "/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(MirrorTest, LimitsAreEnforcedOnBothSides) {
  host_options_.limits.max_bytes = 1000;
  host_ = Open(host_root(), host_options_);
  Write(host_root() + "/big", std::string(1001, 'x'));
  auto sent = host_->SendChanges([](pb::FileBatch&) { return Ok(); });
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(sent.error().message().find("1000"), std::string::npos) << sent.error().message();

  guest_options_.limits.max_bytes = 1000;
  guest_ = Open(guest_root(), guest_options_);
  pb::FileBatch b;
  auto* e = b.add_entries();
  e->set_path("big");
  e->set_kind(pb::FILE_KIND_FILE);
  e->set_size(5000);
  e->set_data("x");
  Status applied = guest_->Apply(b);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(applied.error().message().find("big"), std::string::npos) << applied.error().message();
}

// First chunks of files that are never finished: each may fit the limit alone, but not all of them together,
// and a peer cannot keep more than TreeWriter::kMaxReceiving open (found by the file_batch fuzz target).
TEST_F(MirrorTest, FilesBeingReceivedCountTowardsTheLimitsTogether) {
  guest_options_.limits.max_bytes = 1000;
  guest_ = Open(guest_root(), guest_options_);
  auto first_chunk = [](const std::string& path, uint64_t size) {
    pb::FileBatch b;
    auto* e = b.add_entries();
    e->set_path(path);
    e->set_kind(pb::FILE_KIND_FILE);
    e->set_size(size);
    e->set_data("x");
    return b;
  };
  ASSERT_TRUE(guest_->Apply(first_chunk("one", 600)).ok());
  Status second = guest_->Apply(first_chunk("two", 600));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(second.error().message().find("\"two\" (600 bytes)"), std::string::npos)
      << second.error().message();
  EXPECT_TRUE(guest_->Apply(first_chunk("one", 900)).ok())
      << "a file that starts over replaces its own share";
  Status huge = guest_->Apply(first_chunk("three", ~uint64_t{0}));
  ASSERT_FALSE(huge.ok()) << "a size near 2^64 must not wrap the sum";
  EXPECT_EQ(huge.error().code(), ErrorCode::kResourceExhausted);

  guest_options_.limits.max_bytes = 1 << 20;
  guest_ = Open(guest_root(), guest_options_);
  for (size_t i = 0; i < TreeWriter::kMaxReceiving; i++) {
    ASSERT_TRUE(guest_->Apply(first_chunk("f" + std::to_string(i), 10)).ok()) << i;
  }
  Status one_more = guest_->Apply(first_chunk("last", 10));
  ASSERT_FALSE(one_more.ok());
  EXPECT_EQ(one_more.error().code(), ErrorCode::kResourceExhausted) << one_more.error().message();
  EXPECT_NE(one_more.error().message().find("\"last\""), std::string::npos);
}

// "conf.bak" sorts between "conf" and "conf/x": removing "conf" must still forget everything below it, or the
// next scan sends the peer removals of what it removed itself (found by the file_batch fuzz target).
TEST_F(MirrorTest, RemovingADirectoryForgetsItsSubtreePastSiblingsThatSortBetween) {
  pb::FileBatch b;
  for (const char* dir : {"conf", "conf/d"}) {
    auto* e = b.add_entries();
    e->set_path(dir);
    e->set_kind(pb::FILE_KIND_DIRECTORY);
    e->set_mode(0755);
  }
  for (const char* file : {"conf.bak", "conf-1", "conf/x", "conf/d/y"}) {
    auto* e = b.add_entries();
    e->set_path(file);
    e->set_kind(pb::FILE_KIND_FILE);
    e->set_mode(0644);
    e->set_size(1);
    e->set_data("z");
    e->set_last(true);
  }
  b.add_entries()->set_path("conf");
  b.mutable_entries(b.entries_size() - 1)->set_kind(pb::FILE_KIND_REMOVED);
  ASSERT_TRUE(guest_->Apply(b).ok());
  std::vector<std::string> echoed;
  auto sent = guest_->SendChanges([&](pb::FileBatch& batch) {
    for (const auto& e : batch.entries()) echoed.push_back(e.path());
    return Ok();
  });
  ASSERT_TRUE(sent.ok());
  EXPECT_TRUE(echoed.empty()) << echoed.front();
}

TEST(Diff, ARemovedSubtreeIsOneRemovalEvenWithSiblingsSortedInside) {
  Snapshot before;
  for (const char* path : {"a", "a.txt", "a/b", "a/b/c", "a-1"}) before[path] = EntryMeta{};
  Snapshot after;
  after["a.txt"] = EntryMeta{};
  std::vector<Change> changes = Diff(before, after, true);
  std::vector<std::string> paths;
  paths.reserve(changes.size());
  for (const Change& c : changes) paths.push_back(c.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"a", "a-1"}));
}

TEST_F(MirrorTest, AChunkThatDoesNotFollowIsRefusedAndLeavesNoTempFile) {
  pb::FileBatch b;
  auto* first = b.add_entries();
  first->set_path("f");
  first->set_kind(pb::FILE_KIND_FILE);
  first->set_size(10);
  first->set_data("12345");
  auto* gap = b.add_entries();
  *gap = *first;
  gap->set_offset(7);
  gap->set_data("890");
  gap->set_last(true);
  EXPECT_FALSE(guest_->Apply(b).ok());
  pb::FileBatch grow;
  auto* g = grow.add_entries();
  *g = *first;
  g->set_data(std::string(11, 'x'));
  EXPECT_FALSE(guest_->Apply(grow).ok());
  guest_.reset();  // pending temp files go with the writer
  auto tree = ScanTree(guest_root(), {});
  ASSERT_TRUE(tree.ok());
  EXPECT_TRUE(tree->empty());
  EXPECT_EQ(rmdir(guest_root().c_str()), 0) << "the root still holds a temp file";
}

TEST_F(MirrorTest, HostWinsAConflictAndBothSidesConverge) {
  host_options_.local_wins_conflicts = true;
  host_ = Open(host_root(), host_options_);
  Write(host_root() + "/shared", "v1");
  Sync(*host_, *guest_);
  ReplaceByRename(host_root() + "/shared", "host");
  ReplaceByRename(guest_root() + "/shared", "guest");
  Write(guest_root() + "/guest-only", "g");
  Sync(*guest_, *host_);
  EXPECT_EQ(Read(host_root() + "/shared"), "host") << "the host's unsent change was overwritten";
  EXPECT_EQ(Read(host_root() + "/guest-only"), "g");
  Sync(*host_, *guest_);
  EXPECT_EQ(Read(guest_root() + "/shared"), "host");
  EXPECT_EQ(Sync(*guest_, *host_), 0u);
  EXPECT_EQ(Sync(*host_, *guest_), 0u);
  ExpectSameTrees();
}

TEST_F(MirrorTest, WhatAFailedSendCarriedIsSentAgain) {
  Write(host_root() + "/a", "1");
  Write(host_root() + "/b", "2");
  auto failed = host_->SendChanges([](pb::FileBatch&) { return Error::Unavailable("connection lost"); });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), ErrorCode::kUnavailable);
  ASSERT_EQ(unlink((host_root() + "/b").c_str()), 0);
  Sync(*host_, *guest_);
  EXPECT_EQ(Read(guest_root() + "/a"), "1");
  EXPECT_FALSE(fs::Exists(guest_root() + "/b"));
  host_->ForgetPeer();
  EXPECT_EQ(Sync(*host_, *guest_), 1u) << "after ForgetPeer everything is sent again";
}

TEST(TreeWatcher, SeesChangesAnywhereBelowIncludingNewDirectories) {
  TempDir dir("watch");
  auto w = TreeWatcher::Open(dir.path());
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  auto drained = (*w)->Drain();
  ASSERT_TRUE(drained.ok());
  EXPECT_FALSE(*drained);
  ASSERT_EQ(mkdir(dir.Path("new").c_str(), 0755), 0);
  drained = (*w)->Drain();
  ASSERT_TRUE(drained.ok());
  EXPECT_TRUE(*drained);
  Write(dir.Path("new/file"), "x");
  pollfd p{(*w)->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1) << "no event for a file in a directory created after the watch";
  drained = (*w)->Drain();
  ASSERT_TRUE(drained.ok());
  EXPECT_TRUE(*drained);
  // Our writer's temp files are not changes.
  Write(dir.Path(std::string(kTempPrefix) + "1-x"), "t");
  drained = (*w)->Drain();
  ASSERT_TRUE(drained.ok());
  EXPECT_FALSE(*drained);
}

TEST(RelativePath, AcceptsPlainPathsOnly) {
  EXPECT_TRUE(CheckRelativePath("a").ok());
  EXPECT_TRUE(CheckRelativePath("a/b.c/..d").ok());
  EXPECT_TRUE(CheckRelativePath("a/x.nfc-sync-").ok());  // only a component's start is reserved
  for (std::string_view bad :
       {"", "/a", "a/", "a//b", ".", "..", "a/../b", "./a", ".nfc-sync-x", "a/.nfc-sync-"}) {
    EXPECT_FALSE(CheckRelativePath(bad).ok()) << bad;
  }
  EXPECT_FALSE(CheckRelativePath(std::string(256, 'x')).ok());
  EXPECT_FALSE(CheckRelativePath(std::string("a\0b", 3)).ok());
}

}  // namespace
}  // namespace nfc::files
